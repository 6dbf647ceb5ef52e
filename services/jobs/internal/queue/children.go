package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/jobs"
	"github.com/odavl/sync/services/jobs/internal/jobstore"
)

// A job waiting for its children gives its worker back (BullMQ's
// "waiting-children"): its handler returns Job.WaitForChildren, the queue
// records the job DELAYED with the children it waits for, writes a wait
// entry into the KV bucket WaitBucket and re-submits the job on the delayed
// subject (same generation and attempt, Waits counted up), then acks the
// message it ran from. Nothing holds a worker or the job's message while
// the children run; both the entry and the parked submission are durable
// in JetStream.
//
// The parked submission is checked by the delayed consumer at once, then
// every Config.ChildPoll: once every child it waits for is finished it is
// woken. A finishing child also takes itself off its parent's entry and
// wakes the parent when it was the last one, so the poll is only a safety
// net. Waking moves the entry from parked to woken (compare-and-set: one
// waker wins), records the job WAITING and publishes it on its priority's
// subject; the first of its messages to start claims the entry (running,
// with its stream sequence), so a duplicate wake never runs the job twice.
// The resumed handler runs again from the top, finds its children finished
// and completes (or waits again).

// WaitBucket is the KV bucket of the jobs waiting for their children.
const WaitBucket = "jobs-waits"

// States of a wait entry.
const (
	waitParked  = "parked"
	waitWoken   = "woken"
	waitRunning = "running"
)

// waitEntry is a job waiting for its children.
type waitEntry struct {
	// Sub is the parked submission (Waits numbers this wait).
	Sub Submission `json:"sub"`
	// Pending are the children not yet seen finished.
	Pending []string `json:"pending"`
	State   string   `json:"state"`
	// Seq is the stream sequence of the message that claimed the wake.
	Seq uint64 `json:"seq,omitempty"`
	// WokenAt is when it was woken.
	WokenAt time.Time `json:"wokenAt,omitzero"`
}

// ChildrenWait is a handler's outcome that parks the job until the jobs
// named are finished (see Job.WaitForChildren).
type ChildrenWait struct{ IDs []string }

func (w *ChildrenWait) Error() string { return fmt.Sprintf("waiting for %d child jobs", len(w.IDs)) }

// WaitForChildren is the outcome of a handler that waits for child jobs
// (usually submitted with Job.Submit): `return nil, j.WaitForChildren(ids...)`.
// The job gives its worker back and is DELAYED, its record listing the
// children in waitingChildren; once every one of them is finished
// (COMPLETED, FAILED or CANCELLED) the handler runs again, in the same
// attempt, and reads their outcomes. The wait uses no attempt and has no
// time limit; the job's timeout applies to each run. An id that names no job
// is waited for until it does.
func (j *Job) WaitForChildren(ids ...string) error {
	return &ChildrenWait{IDs: slices.Compact(slices.Sorted(slices.Values(ids)))}
}

// SubmitMany submits child jobs of j (see Submit) with pipelined publishes.
func (j *Job) SubmitMany(ctx context.Context, specs []Spec) ([]jobstore.Record, error) {
	specs = slices.Clone(specs)
	for i := range specs {
		specs[i].OrganizationID, specs[i].ProjectID, specs[i].ParentID = j.OrganizationID, j.ProjectID, j.JobID
		if specs[i].Priority == 0 {
			specs[i].Priority = j.Priority
		}
	}
	return j.q.SubmitMany(ctx, specs)
}

// genAttempt is the attempt of the job's generation this delivery is, from 1.
func (it *item) genAttempt() int { return it.sub.GenAttempts + it.attempt }

func (q *Queue) startWaits(ctx context.Context) error {
	// Reads through the stream's leader: a wait entry read decides
	// whether a job is woken, run or dropped.
	kv, err := bus.OpenKV(ctx, q.js, jetstream.KeyValueConfig{
		Bucket: WaitBucket, Description: "ODAVL Sync jobs waiting for their children",
		History: 1, Storage: jetstream.FileStorage, Replicas: q.cfg.Replicas,
	})
	if err != nil {
		return err
	}
	q.waits = kv
	return nil
}

func (q *Queue) loadWait(ctx context.Context, id string) (waitEntry, uint64, error) {
	var e waitEntry
	kve, err := q.waits.Get(ctx, id)
	if err != nil {
		return e, 0, err
	}
	if err := json.Unmarshal(kve.Value(), &e); err != nil {
		return e, 0, fmt.Errorf("decoding the wait of %s: %w", id, err)
	}
	return e, kve.Revision(), nil
}

func (q *Queue) updateWait(ctx context.Context, e waitEntry, rev uint64) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	_, err = q.waits.Update(ctx, e.Sub.JobID, b, rev)
	return err
}

func gone(err error) bool {
	return errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted)
}

func conflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists)
}

// current reports whether a wait entry is the one of the submission sub.
func (e waitEntry) current(sub Submission) bool {
	return e.Sub.Generation == sub.Generation && e.Sub.Waits == sub.Waits
}

// park settles a run whose handler waits for children: the job is DELAYED,
// its wait entry written, its submission parked on the delayed subject, and
// only then is its message acked. Whatever fails, the message is redelivered.
func (q *Queue) park(it *item, base jobstore.Record, j *Job, w *ChildrenWait, attempt int, at time.Time) outcome {
	sub := it.sub
	next := sub
	next.Waits++
	next.BaseAttempt = attempt - 1
	next.GenAttempts = it.genAttempt() - 1
	due := at // the first check of the children at once: some may be finished
	next.RunAt = &due
	pending := slices.Clone(w.IDs)
	if pending == nil {
		pending = []string{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	fail := func(what string, err error) outcome {
		if q.isKilled() {
			return holdIt // a crash acks nothing: JetStream redelivers
		}
		q.log.Error("job could not wait for its children, redelivering", "job", sub.JobID, "step", what, "err", err)
		return retryIn(time.Second)
	}
	b, err := json.Marshal(waitEntry{Sub: next, Pending: pending, State: waitParked})
	if err != nil {
		return fail("encoding", err)
	}
	if _, err := q.waits.Put(ctx, sub.JobID, b); err != nil {
		return fail("wait entry", err)
	}
	// Durable before the job can be woken, possibly on another instance.
	ch := q.writer.Add(jobstore.Change{Base: base, Status: jobs.Delayed, At: at, Attempt: attempt,
		WaitingChildren: pending, Durable: true})
	ev := q.emitAs(fmt.Sprintf("-wait%d", next.Waits), sub, jobs.Delayed, jobs.Active, j.currentProgress(), attempt, "", at)
	if err := <-ch; err != nil {
		return fail("record", err)
	}
	if err := q.publishParked(ctx, next); err != nil {
		return fail("parked submission", err)
	}
	if err := ev(); err != nil {
		q.log.Error("job event lost", "job", sub.JobID, "err", err)
	}
	q.log.Debug("job waits for its children", "job", sub.JobID, "children", len(pending), "wait", next.Waits)
	return ackIt
}

// publishParked publishes the parked submission of a wait (a repeat of
// the same wait is dropped by its message id).
func (q *Queue) publishParked(ctx context.Context, next Submission) error {
	return q.resubmit(ctx, next, fmt.Sprintf("%s-wait-%d-%d", next.JobID, next.Generation, next.Waits))
}

// admit decides whether a woken job's delivery, or a redelivery, runs. Of a
// wake only the first message to start (and its redeliveries) runs; a run
// that parked its job already (its ack lost) is not run again: its parked
// submission is published again (a repeat is dropped) and it is acked. It
// acks or naks the messages that do not run.
func (q *Queue) admit(it *item) (bool, outcome) {
	sub := it.sub
	meta, err := it.msg.Metadata()
	if err != nil {
		return false, retryIn(time.Second)
	}
	seq := meta.Sequence.Stream
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 10 {
		e, rev, err := q.loadWait(ctx, sub.JobID)
		switch {
		case sub.Waits == 0 && (err != nil || e.Sub.Generation != sub.Generation):
			if err != nil && !gone(err) {
				q.log.Warn("reading the wait of a redelivered job", "job", sub.JobID, "err", err)
			}
			return true, holdIt // a redelivery of a job that never waited in this generation
		case gone(err):
			return false, ackIt // its wait is over: a stale duplicate
		case err != nil:
			q.log.Warn("reading the wait of a woken job", "job", sub.JobID, "err", err)
			return false, retryIn(time.Second)
		case e.Sub.Generation == sub.Generation && e.Sub.Waits == sub.Waits+1:
			// This run parked its job, then its ack was lost.
			if err := q.publishParked(ctx, e.Sub); err != nil {
				return false, retryIn(time.Second)
			}
			return false, ackIt
		case !e.current(sub):
			return false, ackIt // an older wake
		case e.State == waitRunning:
			if e.Seq == seq {
				return true, holdIt // a redelivery of the message that claimed it
			}
			return false, ackIt // a duplicate wake
		}
		e.State, e.Seq = waitRunning, seq
		err = q.updateWait(ctx, e, rev)
		if err == nil {
			return true, holdIt
		}
		if !conflict(err) {
			q.log.Warn("claiming the wake of a job", "job", sub.JobID, "err", err)
			return false, retryIn(time.Second)
		}
	}
	return false, retryIn(100 * time.Millisecond)
}

// dueWait handles a parked submission on the delayed consumer: it checks
// the children and wakes the job once they are all finished.
func (q *Queue) dueWait(ctx context.Context, sub Submission) outcome {
	if wait := sub.RunAt.Sub(q.now()); wait > 0 {
		return retryIn(min(wait, time.Hour))
	}
	for range 10 {
		e, rev, err := q.loadWait(ctx, sub.JobID)
		switch {
		case gone(err):
			return ackIt
		case err != nil:
			q.log.Warn("reading the wait of a job", "job", sub.JobID, "err", err)
			return retryIn(time.Second)
		case !e.current(sub) || e.State == waitRunning:
			return ackIt // woken and started already
		case e.State == waitWoken:
			// Its waker may have stopped before publishing it: after an ack
			// wait, publish again (JetStream drops the repeat; a duplicate
			// that gets through is dropped by admit).
			if left := q.cfg.AckWait - q.now().Sub(e.WokenAt); left > 0 {
				return retryIn(left)
			}
			if err := q.publishDue(ctx, e.Sub); err != nil {
				return retryIn(time.Second)
			}
			return ackIt
		}
		left, err := q.unfinished(ctx, e.Pending)
		if err != nil {
			q.log.Warn("reading the children of a job", "job", sub.JobID, "err", err)
			return retryIn(q.cfg.ChildPoll)
		}
		if len(left) > 0 {
			if len(left) < len(e.Pending) {
				e.Pending = left
				_ = q.updateWait(ctx, e, rev) // a conflict: the next check prunes
			}
			return retryIn(q.cfg.ChildPoll)
		}
		err = q.wake(ctx, e, rev)
		switch {
		case conflict(err):
			continue
		case err != nil:
			return retryIn(time.Second)
		}
		return ackIt
	}
	return retryIn(100 * time.Millisecond)
}

// unfinished returns the jobs of ids not finished (or not found).
func (q *Queue) unfinished(ctx context.Context, ids []string) ([]string, error) {
	var left []string
	for _, id := range ids {
		r, ok, err := q.writer.Get(ctx, q.store, id)
		if err != nil {
			return nil, err
		}
		if !ok || !jobs.Terminal(r.Status) {
			left = append(left, id)
		}
	}
	return left, nil
}

// wake moves a parked entry to woken (errors on a conflict with another
// waker), records the job WAITING (PAUSED) and publishes it on its
// priority's subject.
func (q *Queue) wake(ctx context.Context, e waitEntry, rev uint64) error {
	if q.isCancelled(e.Sub.JobID, e.Sub.Generation) {
		return nil
	}
	e.State, e.Pending, e.WokenAt = waitWoken, []string{}, q.now().UTC()
	if err := q.updateWait(ctx, e, rev); err != nil {
		return err
	}
	sub := e.Sub
	sub.RunAt = nil
	now := q.now().UTC()
	status := jobs.Waiting
	if q.sched.isPaused() || q.OrganizationPaused(sub.OrganizationID) {
		status = jobs.Paused
	}
	if err := <-q.writer.Add(jobstore.Change{Base: q.baseRecord(sub), Status: status, At: now, Durable: true}); err != nil {
		q.log.Warn("woken job's record", "job", sub.JobID, "err", err)
	}
	ev := q.emit(sub, status, jobs.Delayed, 0, sub.BaseAttempt, "", now)
	if err := q.publishDue(ctx, sub); err != nil {
		return err
	}
	if err := ev(); err != nil {
		q.log.Error("job event lost", "job", sub.JobID, "err", err)
	}
	q.log.Debug("job woken, its children are finished", "job", sub.JobID, "wait", sub.Waits)
	return nil
}

func (q *Queue) publishDue(ctx context.Context, sub Submission) error {
	sub.RunAt = nil
	err := q.resubmit(ctx, sub, dueID(sub))
	if err != nil {
		q.log.Warn("publishing a woken job", "job", sub.JobID, "err", err)
	}
	return err
}

// dueID is the message id of a delayed submission moved to its priority.
func dueID(sub Submission) string {
	if sub.Waits > 0 {
		return fmt.Sprintf("%s-due-%d-w%d", sub.JobID, sub.Generation, sub.Waits)
	}
	return fmt.Sprintf("%s-due-%d", sub.JobID, sub.Generation)
}

// settled follows a job's final outcome once it is durable: a child takes
// itself off its parent's wait (waking it if it was the last), a woken job
// that finished removes its wait entry.
func (q *Queue) settled(sub Submission) {
	if sub.ParentID == "" && sub.Waits == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if sub.Waits > 0 {
		if e, rev, err := q.loadWait(ctx, sub.JobID); err == nil && e.current(sub) {
			_ = q.waits.Delete(ctx, sub.JobID, jetstream.LastRevision(rev))
		}
	}
	if sub.ParentID != "" {
		q.childDone(ctx, sub.ParentID, sub.JobID)
	}
}

// dropWait removes the wait entry of a cancelled job (of generation gen or
// older), if it waits for children.
func (q *Queue) dropWait(ctx context.Context, id string, gen int) {
	if e, rev, err := q.loadWait(ctx, id); err == nil && e.Sub.Generation <= gen {
		_ = q.waits.Delete(ctx, id, jetstream.LastRevision(rev))
	}
}

// childDone takes a finished child off its parent's wait; the last one
// wakes the parent. Best effort: the parent's poll catches what is missed.
func (q *Queue) childDone(ctx context.Context, parent, child string) {
	for range 10 {
		e, rev, err := q.loadWait(ctx, parent)
		if err != nil || e.State != waitParked {
			return
		}
		i := slices.Index(e.Pending, child)
		if i < 0 {
			return
		}
		e.Pending = slices.Delete(e.Pending, i, i+1)
		if len(e.Pending) > 0 {
			err = q.updateWait(ctx, e, rev)
		} else {
			err = q.wake(ctx, e, rev)
		}
		if !conflict(err) {
			return
		}
	}
}
