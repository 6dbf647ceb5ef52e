package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/jobs"
	"github.com/odavl/sync/services/jobs/internal/jobstore"
)

// An organization's admin pauses its own organization: its jobs stop
// starting, on every instance, while other organizations' go on. A paused
// organization's jobs must not sit in the consumers' hands (they would
// fill the look-ahead of a priority and starve everyone else), so they are
// set aside: published on JobHeldSubject, a subject of the JOBS stream no
// consumer reads, recorded PAUSED, and their message acknowledged. Jobs
// submitted, woken or due while it is paused go there directly. Resuming
// releases them, in stream order, to their priorities' subjects, each
// deleted from the stream once released; every instance releases on the
// resume it sees and at its start (a release cut short by a crash), and a
// release repeated is dropped by its message id or, after the dedupe
// window, by the run's check that its job is not finished already.

// orgPausedPrefix keys an organization's pause in the control bucket.
const orgPausedPrefix = "paused-org."

// OrganizationPaused reports whether org's jobs are paused.
func (q *Queue) OrganizationPaused(org string) bool {
	q.asideMu.RLock()
	defer q.asideMu.RUnlock()
	return q.pausedOrgs[org]
}

// PauseOrganization stops org's jobs from starting, on every instance.
// Running jobs finish.
func (q *Queue) PauseOrganization(ctx context.Context, org string) error {
	if _, err := q.kv.Put(ctx, orgPausedPrefix+org, []byte("1")); err != nil {
		return fmt.Errorf("pausing organization %s: %w", org, err)
	}
	q.applyOrgPause(org, true)
	return nil
}

// ResumeOrganization lets org's jobs start again and releases those set
// aside, before it returns.
func (q *Queue) ResumeOrganization(ctx context.Context, org string) error {
	if err := q.kv.Delete(ctx, orgPausedPrefix+org); err != nil {
		return fmt.Errorf("resuming organization %s: %w", org, err)
	}
	q.applyOrgPause(org, false)
	return q.release(ctx, org)
}

// followOrgPause applies a pause or resume seen in the control bucket; a
// resume made elsewhere is released here too (what this instance set
// aside late, after that release began).
func (q *Queue) followOrgPause(org string, paused bool) {
	if !q.applyOrgPause(org, paused) {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(q.ctx, time.Minute)
		defer cancel()
		if err := q.release(ctx, org); err != nil {
			q.log.Warn("releasing the jobs of a resumed organization", "organization", org, "err", err)
		}
	}()
}

// applyOrgPause follows a pause or resume of org, whichever instance made
// it, and reports whether it resumed org here.
func (q *Queue) applyOrgPause(org string, paused bool) (resumed bool) {
	q.asideMu.Lock()
	was := q.pausedOrgs[org]
	if paused {
		q.pausedOrgs[org] = true
	} else {
		delete(q.pausedOrgs, org)
	}
	q.asideMu.Unlock()
	if paused && !was {
		for _, it := range q.sched.removeOrg(org) {
			go func() { settle(it.msg, q.setAside(it)) }()
		}
	}
	return !paused && was
}

// setAside moves a delivered job of a paused organization to its held
// subject (or back to the scheduler, if the organization was resumed
// meanwhile). The attempts its message used are carried over.
func (q *Queue) setAside(it *item) outcome {
	q.asideMu.RLock()
	defer q.asideMu.RUnlock()
	if !q.pausedOrgs[it.sub.OrganizationID] {
		q.sched.push(it)
		return holdIt
	}
	meta, err := it.msg.Metadata()
	if err != nil {
		return retryIn(time.Second)
	}
	next := it.sub
	used := it.attempt - 1
	next.BaseAttempt += used
	next.GenAttempts += used
	next.Released = false
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	seq := meta.Sequence.Stream
	f, err := q.publishTo(events.JobHeldSubject(next.OrganizationID, next.Type), next, fmt.Sprintf("%s-held-%d-%d", next.JobID, next.Generation, seq))
	if err == nil {
		err = waitAll(ctx, []*bus.Pending{f})
	}
	if err != nil {
		q.log.Warn("setting aside a job of a paused organization", "job", next.JobID, "err", err)
		return retryIn(time.Second)
	}
	now := q.now().UTC()
	q.writer.Add(jobstore.Change{Base: q.baseRecord(next), Status: jobs.Paused, At: now})
	if err := q.emitAs(fmt.Sprintf("-held%d", seq), next, jobs.Paused, jobs.Waiting, 0, next.BaseAttempt, "", now)(); err != nil {
		q.log.Error("job event lost", "job", next.JobID, "err", err)
	}
	return ackIt
}

// release moves the held jobs of org ("" for every organization) whose
// organization is not paused to their priorities' subjects.
func (q *Queue) release(ctx context.Context, org string) error {
	stream, err := q.js.Stream(ctx, events.StreamJobs)
	if err != nil {
		return err
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.JobsHeldOf(org)}})
	if err != nil {
		return err
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return err
	}
	// Every job held when the release began (one held after it is set
	// aside by an instance that has not seen the resume yet, which releases
	// it on seeing it), less those another release takes meanwhile.
	for left := info.NumPending; left > 0; {
		batch, err := cons.Fetch(int(min(left, 256)), jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			if err := q.releaseOne(ctx, stream, m); err != nil {
				return err
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		left -= uint64(n)
		if n == 0 {
			if info, err = cons.Info(ctx); err != nil {
				return err
			}
			left = info.NumPending
		}
	}
	return nil
}

// releaseOne releases one held job (unless its organization is paused
// again, or the job was cancelled) and deletes it from the stream.
func (q *Queue) releaseOne(ctx context.Context, stream jetstream.Stream, m jetstream.Msg) error {
	meta, err := m.Metadata()
	if err != nil {
		return err
	}
	var sub Submission
	if _, err := events.DecodeInto(m.Data(), &sub); err != nil || sub.JobID == "" {
		q.log.Error("undecodable held job dropped", "subject", m.Subject(), "seq", meta.Sequence.Stream, "err", err)
		return deleteHeld(ctx, stream, meta.Sequence.Stream)
	}
	if q.OrganizationPaused(sub.OrganizationID) {
		return nil // paused again: it stays
	}
	seq := meta.Sequence.Stream
	if !q.isCancelled(sub.JobID, sub.Generation) {
		sub.Released = true
		now := q.now().UTC()
		status := jobs.Waiting
		if q.sched.isPaused() {
			status = jobs.Paused
		}
		q.writer.Add(jobstore.Change{Base: q.baseRecord(sub), Status: status, At: now})
		if err := q.resubmit(ctx, sub, fmt.Sprintf("%s-released-%d", sub.JobID, seq)); err != nil {
			return err
		}
		if err := q.emitAs(fmt.Sprintf("-released%d", seq), sub, status, jobs.Paused, 0, sub.BaseAttempt, "", now)(); err != nil {
			q.log.Error("job event lost", "job", sub.JobID, "err", err)
		}
	}
	return deleteHeld(ctx, stream, seq)
}

// The server's error codes for a message deleted already: 10043 (sequence
// not found, memory storage), 10057 (no message found, file storage).
var goneCodes = []string{"err_code=10043", "err_code=10057"}

func deleteHeld(ctx context.Context, stream jetstream.Stream, seq uint64) error {
	err := stream.DeleteMsg(ctx, seq)
	// nats.go wraps the server's answer as text (ErrMsgDeleteUnsuccessful).
	if errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) && slices.ContainsFunc(goneCodes, func(c string) bool { return strings.Contains(err.Error(), c) }) {
		return nil // released by another instance
	}
	return err
}
