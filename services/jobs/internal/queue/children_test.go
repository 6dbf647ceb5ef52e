package queue_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/jobs"
	"github.com/odavl/sync/services/jobs/internal/queue"
)

func childConfig() queue.Config {
	cfg := testConfig()
	cfg.Workers = 1 // a child runs only if its parent gave the worker back
	cfg.Backoff = []time.Duration{100 * time.Millisecond}
	cfg.ChildPoll = 200 * time.Millisecond
	return cfg
}

// gates holds child jobs until released.
type gates struct {
	mu sync.Mutex
	m  map[string]chan struct{}
}

func (g *gates) get(id string) chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m == nil {
		g.m = map[string]chan struct{}{}
	}
	if g.m[id] == nil {
		g.m[id] = make(chan struct{})
	}
	return g.m[id]
}

func (g *gates) child(ctx context.Context, j *queue.Job) (any, error) {
	select {
	case <-g.get(j.JobID):
		return "sent", nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type run struct {
	attempt int
	last    bool
}

// stepParent waits for its children one at a time: run n submits child n
// and waits for it; once all are done it completes.
type stepParent struct {
	mu   sync.Mutex
	runs []run
}

func (p *stepParent) handle(children int) queue.Handler {
	return func(ctx context.Context, j *queue.Job) (any, error) {
		p.mu.Lock()
		p.runs = append(p.runs, run{j.Attempt, j.LastAttempt})
		p.mu.Unlock()
		for i := range children {
			id := fmt.Sprintf("%s-c%d", j.JobID, i)
			r, err := j.Queue().Get(ctx, j.OrganizationID, j.ProjectID, id)
			if err == nil && jobs.Terminal(r.Status) {
				continue
			}
			if err != nil {
				if _, err := j.Submit(ctx, queue.Spec{ID: id, Type: "CHILD"}); err != nil {
					return nil, err
				}
			}
			return nil, j.WaitForChildren(id)
		}
		return map[string]int{"attempt": j.Attempt}, nil
	}
}

func (p *stepParent) get() []run {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.runs)
}

// storedEvents reads the lifecycle events of a job kept in the JOBS stream
// (repeats of an event id are dropped there).
func (b *bundle) storedEvents(t *testing.T, id string) []string {
	t.Helper()
	ctx := context.Background()
	c, err := b.nats.JS.OrderedConsumer(ctx, events.StreamJobs, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.AllJobEvents}})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for {
		batch, err := c.FetchNoWait(500)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			ev, err := events.Decode(m.Data())
			if err != nil {
				t.Fatal(err)
			}
			var d events.JobStatusChanged
			_ = ev.DataAs(&d)
			if d.JobID == id && !(d.Status == jobs.Active && d.Previous == jobs.Active) {
				out = append(out, fmt.Sprintf("%s:%d", d.Status, d.Attempt))
			}
		}
		if n == 0 {
			return out
		}
	}
}

func TestWaitingForChildrenUsesNoWorkerAndNoAttempt(t *testing.T) {
	t.Parallel()
	b := setup(t, childConfig()) // 1 worker, 2 attempts
	g := &gates{}
	p := &stepParent{}
	q := b.start(t, map[string]queue.Handler{"PARENT": p.handle(3), "CHILD": g.child})
	r := submit(t, q, queue.Spec{Type: "PARENT"})
	first := r.ID + "-c0"

	// The first child runs on the only worker: its parent gave it back.
	waitFor(t, "the first child to run", 10*time.Second, func() bool { return b.stored(t, first).Status == jobs.Active })
	w := b.waitStatus(t, r.ID, jobs.Delayed, 5*time.Second)
	if !slices.Equal(w.WaitingChildren, []string{first}) || w.Attempts != 1 {
		t.Fatalf("waiting parent: waitingChildren %v attempts %d, want [%s] and 1", w.WaitingChildren, w.Attempts, first)
	}
	api, err := q.Get(context.Background(), "org1", "proj1", r.ID)
	if err != nil || api.API().Status != jobs.Delayed || !slices.Equal(api.API().WaitingChildren, []string{first}) {
		t.Fatalf("the API shows the waiting parent as %+v (%v)", api.API(), err)
	}
	// Three polls of the parked parent: it stays parked.
	b.waitDeliveries(t, queue.ConsumerName("delayed"), b.consumer(t, queue.ConsumerName("delayed")).Delivered.Consumer, 3)
	if n := len(p.get()); n != 1 {
		t.Fatalf("the parent ran %d times while its child ran, want 1", n)
	}
	for i := range 3 {
		close(g.get(fmt.Sprintf("%s-c%d", r.ID, i)))
	}
	done := b.waitStatus(t, r.ID, jobs.Completed, 10*time.Second)
	runs := p.get()
	if len(runs) != 4 {
		t.Fatalf("the parent ran %d times, want 4 (three waits, then done)", len(runs))
	}
	for i, rn := range runs {
		if rn.attempt != 1 || rn.last {
			t.Fatalf("run %d was attempt %d (last %v): waiting used an attempt (max 2)", i+1, rn.attempt, rn.last)
		}
	}
	if done.Attempts != 1 || done.Output != `{"attempt":1}` || len(done.WaitingChildren) != 0 {
		t.Fatalf("completed parent: attempts %d output %s waiting %v", done.Attempts, done.Output, done.WaitingChildren)
	}
	var statuses []string
	for _, h := range done.History {
		statuses = append(statuses, h.Status)
	}
	want := []string{"WAITING", "ACTIVE", "DELAYED", "WAITING", "ACTIVE", "DELAYED", "WAITING", "ACTIVE", "DELAYED", "WAITING", "ACTIVE", "COMPLETED"}
	if !slices.Equal(statuses, want) {
		t.Fatalf("history %v, want %v", statuses, want)
	}
	// Each run's events have ids of their own: none is dropped as a repeat
	// (their order is the publishing order, not asserted here).
	wantEvs := []string{"ACTIVE:1", "ACTIVE:1", "ACTIVE:1", "ACTIVE:1", "COMPLETED:1", "DELAYED:1", "DELAYED:1", "DELAYED:1", "WAITING:0", "WAITING:0", "WAITING:0", "WAITING:0"}
	deadline := time.Now().Add(5 * time.Second)
	for evs := slices.Sorted(slices.Values(b.storedEvents(t, r.ID))); !slices.Equal(evs, wantEvs); evs = slices.Sorted(slices.Values(b.storedEvents(t, r.ID))) {
		if time.Now().After(deadline) {
			t.Fatalf("stored events %v, want %v", evs, wantEvs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestCancelOfAWaitingParent(t *testing.T) {
	t.Parallel()
	b := setup(t, childConfig())
	g := &gates{}
	p := &stepParent{}
	q := b.start(t, map[string]queue.Handler{"PARENT": p.handle(1), "CHILD": g.child})
	r := submit(t, q, queue.Spec{Type: "PARENT"})
	child := r.ID + "-c0"
	b.waitStatus(t, r.ID, jobs.Delayed, 10*time.Second)
	c, err := q.Cancel(context.Background(), "org1", "proj1", r.ID)
	if err != nil || c.Status != jobs.Cancelled {
		t.Fatalf("cancel of the waiting parent: %v %s", err, c.Status)
	}
	close(g.get(child))
	b.waitStatus(t, child, jobs.Completed, 10*time.Second)
	// The parked submission is dropped when next checked: the delayed
	// consumer has nothing in hand, and the parent did not run again.
	b.waitSettled(t, queue.ConsumerName("delayed"))
	if n := len(p.get()); n != 1 {
		t.Fatalf("the cancelled parent ran %d times, want 1", n)
	}
	if rec := b.stored(t, r.ID); rec.Status != jobs.Cancelled || len(rec.WaitingChildren) != 0 {
		t.Fatalf("cancelled parent is %s waiting for %v", rec.Status, rec.WaitingChildren)
	}
	kv, err := b.nats.JS.KeyValue(context.Background(), queue.WaitBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(context.Background(), r.ID); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("the cancelled job's wait entry: %v, want it deleted", err)
	}
	waitFor(t, "the parked submission dropped", 5*time.Second, func() bool {
		cons, err := b.nats.JS.Consumer(context.Background(), events.StreamJobs, queue.ConsumerName("delayed"))
		if err != nil {
			t.Fatal(err)
		}
		info, err := cons.Info(context.Background())
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0
	})
}

func TestWaitingParentSurvivesACrash(t *testing.T) {
	t.Parallel()
	b := setup(t, childConfig())
	g := &gates{}
	p := &stepParent{}
	stuck := make(chan struct{}, 1)
	crashing := b.start(t, map[string]queue.Handler{"PARENT": p.handle(1), "CHILD": func(ctx context.Context, j *queue.Job) (any, error) {
		stuck <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	}})
	r := submit(t, crashing, queue.Spec{Type: "PARENT"})
	<-stuck
	b.waitStatus(t, r.ID, jobs.Delayed, 5*time.Second)
	crashing.Kill()
	close(g.get(r.ID + "-c0"))
	b.start(t, map[string]queue.Handler{"PARENT": p.handle(1), "CHILD": g.child})
	done := b.waitStatus(t, r.ID, jobs.Completed, 15*time.Second)
	if n := len(p.get()); n != 2 || done.Attempts != 1 {
		t.Fatalf("parent ran %d times, attempts %d: want 2 runs (before and after the wait) in attempt 1", n, done.Attempts)
	}
}

// A job waited for that is not a child (nothing wakes its waiter early) is
// found finished by the poll.
func TestWaitForAnyJobIsPolled(t *testing.T) {
	t.Parallel()
	cfg := childConfig()
	cfg.Workers = 2 // one for the job waited for, one for its waiter
	b := setup(t, cfg)
	g := &gates{}
	var q *queue.Queue
	var other string
	var mu sync.Mutex
	runs := 0
	q = b.start(t, map[string]queue.Handler{"CHILD": g.child, "PARENT": func(ctx context.Context, j *queue.Job) (any, error) {
		mu.Lock()
		runs++
		mu.Unlock()
		r, err := j.Queue().Get(ctx, "org1", "proj1", other)
		if err != nil || !jobs.Terminal(r.Status) {
			return nil, j.WaitForChildren(other)
		}
		return r.Status, nil
	}})
	other = submit(t, q, queue.Spec{Type: "CHILD", Durable: true}).ID
	r := submit(t, q, queue.Spec{Type: "PARENT"})
	b.waitStatus(t, r.ID, jobs.Delayed, 10*time.Second)
	close(g.get(other))
	done := b.waitStatus(t, r.ID, jobs.Completed, 10*time.Second)
	mu.Lock()
	defer mu.Unlock()
	if runs != 2 || done.Output != `"COMPLETED"` {
		t.Fatalf("parent ran %d times, output %s", runs, done.Output)
	}
}

// A woken job published twice (a wake repeated after JetStream's dedupe
// window) runs once: the first message claims the wake, the other is dropped,
// while the job runs and after it finished.
func TestDuplicateWakeRunsTheJobOnce(t *testing.T) {
	t.Parallel()
	cfg := childConfig()
	cfg.Workers = 2 // a free worker takes the duplicate while the job runs
	b := setup(t, cfg)
	g := &gates{}
	resumed, hold := make(chan struct{}, 1), make(chan struct{})
	var mu sync.Mutex
	runs := 0
	q := b.start(t, map[string]queue.Handler{"CHILD": g.child, "PARENT": func(ctx context.Context, j *queue.Job) (any, error) {
		mu.Lock()
		runs++
		n := runs
		mu.Unlock()
		if n == 1 {
			if _, err := j.Submit(ctx, queue.Spec{ID: j.JobID + "-c", Type: "CHILD"}); err != nil {
				return nil, err
			}
			return nil, j.WaitForChildren(j.JobID + "-c")
		}
		resumed <- struct{}{}
		<-hold
		return "done", nil
	}})
	r := submit(t, q, queue.Spec{Type: "PARENT"})
	b.waitStatus(t, r.ID, jobs.Delayed, 10*time.Second)
	close(g.get(r.ID + "-c"))
	<-resumed

	ctx := context.Background()
	kv, err := b.nats.JS.KeyValue(ctx, queue.WaitBucket)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	var entry struct {
		Sub   queue.Submission `json:"sub"`
		State string           `json:"state"`
	}
	if err := json.Unmarshal(e.Value(), &entry); err != nil || entry.State != "running" || entry.Sub.Waits != 1 {
		t.Fatalf("wait entry of the resumed job: %s (%v)", e.Value(), err)
	}
	dup := func(id string) {
		entry.Sub.RunAt = nil
		ev, err := events.New(id, queue.Source, events.TypeJobSubmitted, time.Now(), "org1", "proj1", entry.Sub)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bus.Publish(ctx, b.nats.JS, events.JobSubject("normal", "PARENT"), ev); err != nil {
			t.Fatal(err)
		}
	}
	dup("dup-while-running")
	// The duplicate is taken and acknowledged without running beside the
	// run that holds the wake: only that run's message is left in hand.
	waitFor(t, "the duplicate wake dropped", 10*time.Second, func() bool {
		info := b.consumer(t, queue.ConsumerName("NORMAL"))
		return info.NumPending == 0 && info.NumAckPending == 1
	})
	close(hold)
	b.waitStatus(t, r.ID, jobs.Completed, 10*time.Second)
	dup("dup-after")
	b.waitSettled(t, queue.ConsumerName("NORMAL"))
	mu.Lock()
	defer mu.Unlock()
	if runs != 2 {
		t.Fatalf("the job ran %d times, want 2 (before and after its wait)", runs)
	}
	if rec := b.stored(t, r.ID); rec.Status != jobs.Completed || rec.Output != `"done"` {
		t.Fatalf("record %s %s", rec.Status, rec.Output)
	}
	if _, err := kv.Get(ctx, r.ID); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("the finished job's wait entry: %v, want it deleted", err)
	}
}
