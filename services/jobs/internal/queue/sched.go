package queue

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/odavl/sync/libs/jobs"
)

// item is a submission pulled from JetStream and waiting for a worker.
type item struct {
	msg     jetstream.Msg
	sub     Submission
	level   int
	attempt int // deliveries of this message, from 1
	held    time.Time
}

// numLevels is len(jobs.Priorities).
const numLevels = 4

// sched holds the pulled submissions and hands them to workers: across
// priorities by smooth weighted round robin (weights 20, 10, 5, 1: higher
// ones start first, lower ones are never starved), inside a priority round
// robin over organizations (one organization's flood does not hold back
// another's jobs).
type sched struct {
	mu      sync.Mutex
	cond    *sync.Cond
	levels  [numLevels]level
	current [numLevels]int
	byID    map[string]*item
	paused  bool
	closed  bool
	size    int
}

type level struct {
	queues map[string][]*item
	ring   []string
	next   int
}

func newSched() *sched {
	s := &sched{byID: map[string]*item{}}
	s.cond = sync.NewCond(&s.mu)
	for i := range s.levels {
		s.levels[i].queues = map[string][]*item{}
	}
	return s
}

func (s *sched) push(it *item) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.byID[it.sub.JobID]; old != nil {
		// A redelivery of a message we hold: keep the newest delivery.
		s.removeLocked(old)
	}
	l := &s.levels[it.level]
	org := it.sub.OrganizationID
	if len(l.queues[org]) == 0 {
		l.ring = append(l.ring, org)
	}
	l.queues[org] = append(l.queues[org], it)
	s.byID[it.sub.JobID] = it
	s.size++
	s.cond.Signal()
}

// next blocks until an item may start (the queue is not paused) and
// returns it; nil once closed.
func (s *sched) next() *item {
	s.mu.Lock()
	defer s.mu.Unlock()
	for !s.closed && (s.paused || s.size == 0) {
		s.cond.Wait()
	}
	if s.closed {
		return nil
	}
	total, pick := 0, -1
	for i := range s.levels {
		if len(s.levels[i].ring) == 0 {
			continue
		}
		w := jobs.Priorities[i].Value
		s.current[i] += w
		total += w
		if pick < 0 || s.current[i] > s.current[pick] {
			pick = i
		}
	}
	s.current[pick] -= total
	l := &s.levels[pick]
	l.next %= len(l.ring)
	org := l.ring[l.next]
	q := l.queues[org]
	it := q[0]
	q[0] = nil
	q = q[1:]
	if len(q) == 0 {
		delete(l.queues, org)
		l.ring = append(l.ring[:l.next], l.ring[l.next+1:]...)
	} else {
		l.queues[org] = q
		l.next++
	}
	delete(s.byID, it.sub.JobID)
	s.size--
	return it
}

// remove takes the item of a job out, if held.
func (s *sched) remove(jobID string) *item {
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.byID[jobID]
	if it != nil {
		s.removeLocked(it)
	}
	return it
}

func (s *sched) removeLocked(it *item) {
	l := &s.levels[it.level]
	org := it.sub.OrganizationID
	q := l.queues[org]
	for i, x := range q {
		if x == it {
			q = append(q[:i], q[i+1:]...)
			break
		}
	}
	if len(q) == 0 {
		delete(l.queues, org)
		for i, o := range l.ring {
			if o == org {
				l.ring = append(l.ring[:i], l.ring[i+1:]...)
				if l.next > i {
					l.next--
				}
				break
			}
		}
	} else {
		l.queues[org] = q
	}
	delete(s.byID, it.sub.JobID)
	s.size--
}

func (s *sched) setPaused(p bool) {
	s.mu.Lock()
	s.paused = p
	s.mu.Unlock()
	s.cond.Broadcast()
}

func (s *sched) isPaused() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.paused
}

// held returns the items held, for in-progress acks.
func (s *sched) held() []*item {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*item, 0, len(s.byID))
	for _, it := range s.byID {
		out = append(out, it)
	}
	return out
}

// close wakes every worker and returns the items still held.
func (s *sched) close() []*item {
	s.mu.Lock()
	s.closed = true
	out := make([]*item, 0, len(s.byID))
	for _, it := range s.byID {
		out = append(out, it)
	}
	s.mu.Unlock()
	s.cond.Broadcast()
	return out
}

func (s *sched) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size
}

// heldByLevel counts the items held per priority level.
func (s *sched) heldByLevel() [numLevels]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n [numLevels]int
	for _, it := range s.byID {
		n[it.level]++
	}
	return n
}

// removeOrg takes every item of an organization out and returns them.
func (s *sched) removeOrg(org string) []*item {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*item
	for _, it := range s.byID {
		if it.sub.OrganizationID == org {
			out = append(out, it)
		}
	}
	for _, it := range out {
		s.removeLocked(it)
	}
	return out
}
