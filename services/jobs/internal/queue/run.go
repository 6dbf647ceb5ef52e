package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/jobs"
	"github.com/odavl/sync/services/jobs/internal/jobstore"
)

// run takes one delivery of a job through its handler and returns its
// outcome.
func (q *Queue) run(it *item) outcome {
	sub, msg := it.sub, it.msg
	if q.isCancelled(sub.JobID, sub.Generation) {
		return ackIt // the canceller wrote the record
	}
	attempt := sub.BaseAttempt + it.attempt
	if it.attempt > 1 || sub.Released {
		// A redelivery (or a release repeated): the previous delivery may
		// have finished the job and crashed before its ack.
		if r, ok, err := q.writer.Get(context.Background(), q.store, sub.JobID); err == nil && ok && r.Generation == sub.Generation && jobs.Terminal(r.Status) {
			return ackIt
		}
	}
	if sub.Waits > 0 || it.attempt > 1 {
		if ok, o := q.admit(it); !ok {
			return o // children.go: a duplicate wake, or a run that parked already
		}
	}
	h := q.handlers[sub.Type]
	base := q.baseRecord(sub)
	now := q.now().UTC()
	if h == nil {
		return q.finish(it, base, jobs.Failed, attempt, fmt.Sprintf("no handler for job type %q", sub.Type), "", now, true)
	}
	q.writer.Add(jobstore.Change{Base: base, Status: jobs.Active, At: now, Attempt: attempt})
	activeEv := q.emit(sub, jobs.Active, "", 0, attempt, "", now)

	timeout := q.cfg.Timeout
	if sub.TimeoutMs > 0 {
		timeout = time.Duration(sub.TimeoutMs) * time.Millisecond
	}
	ctx, cancel := context.WithCancelCause(q.ctx)
	ctx, cancelT := context.WithTimeoutCause(ctx, timeout, errTimeout)
	q.mu.Lock()
	q.running[sub.JobID] = &runningJob{gen: sub.Generation, cancel: cancel, msg: msg} // keepHeld keeps its message alive
	q.mu.Unlock()
	j := &Job{Submission: sub, Attempt: attempt, LastAttempt: it.genAttempt() >= q.cfg.MaxAttempts(), q: q, msg: msg, started: time.Now()}
	q.metrics.Started(sub.Type)
	out, err := safeRun(ctx, h, j)
	cause := context.Cause(ctx)
	cancelT()
	cancel(nil)
	q.mu.Lock()
	delete(q.running, sub.JobID)
	q.mu.Unlock()
	q.finishing.Add(1)
	go func() {
		defer q.finishing.Done()
		if err := activeEv(); err != nil {
			q.log.Error("job event lost", "job", sub.JobID, "err", err)
		}
	}()
	if q.isKilled() {
		return holdIt
	}
	if err != nil && errors.Is(cause, errTimeout) && !errors.As(err, new(*ChildrenWait)) {
		err = fmt.Errorf("timed out after %s", timeout)
	}
	return q.decide(it, base, j, out, err, errors.Is(cause, errCancelled))
}

// decide turns a handler's result into the job's next state and the
// delivery's outcome: cancelled, waiting for its children, completed,
// failed for good, or retried after its backoff.
func (q *Queue) decide(it *item, base jobstore.Record, j *Job, out any, err error, cancelled bool) outcome {
	sub, attempt, end := it.sub, j.Attempt, q.now().UTC()
	observe := func(outcome string) { q.metrics.ObserveRun(sub.Type, outcome, time.Since(j.started)) }
	var w *ChildrenWait
	switch {
	case cancelled || q.isCancelled(sub.JobID, sub.Generation):
		observe(OutcomeCancelled)
		q.writer.Forget(sub.JobID, sub.Generation) // the canceller wrote the record
		return ackIt
	case errors.As(err, &w):
		observe(OutcomeWaiting)
		return q.park(it, base, j, w, attempt, end)
	case err == nil:
		var output string
		if out != nil {
			b, merr := json.Marshal(out)
			if merr != nil {
				observe(OutcomeFailed)
				return q.finish(it, base, jobs.Failed, attempt, "encoding output: "+merr.Error(), "", end, true)
			}
			output = string(b)
		}
		observe(OutcomeCompleted)
		return q.finish(it, base, jobs.Completed, attempt, "", output, end, false)
	case bus.IsPermanent(err) || j.LastAttempt:
		observe(OutcomeFailed)
		return q.finish(it, base, jobs.Failed, attempt, err.Error(), "", end, true)
	}
	observe(OutcomeRetried)
	delay := bus.BackoffFor(q.cfg.Backoff, it.genAttempt())
	q.log.Warn("job failed, will retry", "job", sub.JobID, "type", sub.Type, "attempt", attempt, "retryIn", delay, "err", err)
	q.writer.Add(jobstore.Change{Base: base, Status: jobs.Delayed, At: end, Attempt: attempt, Error: err.Error()})
	if eerr := q.emit(sub, jobs.Delayed, jobs.Active, j.currentProgress(), attempt, err.Error(), end)(); eerr != nil {
		q.log.Error("job event lost", "job", sub.JobID, "err", eerr)
	}
	return retryIn(delay)
}

// finish records a final status durably and publishes its event; its
// finisher then acks (COMPLETED) or terminates (FAILED) the message. If
// either cannot be made durable the message is handed back: the
// redelivery finds the record finished or runs the job again.
//
// The worker does not wait: the record joins the writer's next batch (which
// is why batches grow past the worker count) and the finisher settles the
// message once the batch is written.
func (q *Queue) finish(it *item, base jobstore.Record, status string, attempt int, errMsg, output string, at time.Time, term bool) outcome {
	ch := q.writer.Add(jobstore.Change{Base: base, Status: status, At: at, Attempt: attempt, Error: errMsg, Output: output, Durable: true})
	ev := q.emit(it.sub, status, jobs.Active, progressOf(status), attempt, errMsg, at)
	q.finishing.Add(1)
	go func() {
		defer q.finishing.Done()
		settle(it.msg, q.conclude(it, base, status, attempt, errMsg, term, ch, ev))
	}()
	return holdIt
}

// conclude waits for a final record and its event to be durable and
// returns the outcome of the delivery that ended in it.
func (q *Queue) conclude(it *item, base jobstore.Record, status string, attempt int, errMsg string, term bool, ch <-chan error, ev func() error) outcome {
	werr, eerr := <-ch, ev()
	if q.isKilled() {
		return holdIt
	}
	if werr != nil || eerr != nil {
		q.log.Error("job outcome not durable, redelivering", "job", base.ID, "status", status, "recordErr", werr, "eventErr", eerr)
		return retryIn(time.Second)
	}
	q.settled(it.sub)
	if term {
		q.log.Error("job failed", "job", base.ID, "type", base.Type, "attempt", attempt, "err", errMsg)
		return terminate(errMsg)
	}
	return ackIt
}

func progressOf(status string) int {
	if status == jobs.Completed {
		return 100
	}
	return 0
}

func safeRun(ctx context.Context, h Handler, j *Job) (out any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panic: %v\n%s", r, debug.Stack())
		}
	}()
	return h(ctx, j)
}

// Progress reports the job's progress (0-100): it is stored and published.
func (j *Job) Progress(pct int) {
	pct = min(max(pct, 0), 100)
	j.mu.Lock()
	if pct == j.progress {
		j.mu.Unlock()
		return
	}
	j.progress = pct
	j.mu.Unlock()
	now := j.q.now().UTC()
	j.q.writer.Add(jobstore.Change{Base: j.q.baseRecord(j.Submission), At: now, Progress: &pct})
	if err := j.q.emit(j.Submission, jobs.Active, jobs.Active, pct, j.Attempt, "", now)(); err != nil {
		j.q.log.Warn("progress event lost", "job", j.JobID, "err", err)
	}
}

func (j *Job) currentProgress() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.progress
}

// KeepAlive tells JetStream the job is still running (the queue does it on
// a timer too).
func (j *Job) KeepAlive() { keepAlive(j.msg) }

// Submit submits a child job of j, in j's tenant and priority unless set.
func (j *Job) Submit(ctx context.Context, s Spec) (jobstore.Record, error) {
	s.OrganizationID, s.ProjectID, s.ParentID = j.OrganizationID, j.ProjectID, j.JobID
	if s.Priority == 0 {
		s.Priority = j.Priority
	}
	return j.q.Submit(ctx, s)
}

// Queue is the queue running j.
func (j *Job) Queue() *Queue { return j.q }

// startDelayed consumes delayed submissions: each waits (nakked with the
// delay, which counts no attempt of the job) until its run-at time, then
// moves to its priority's subject.
func (q *Queue) startDelayed(ctx context.Context) error {
	cons, err := q.js.CreateOrUpdateConsumer(ctx, events.StreamJobs, jetstream.ConsumerConfig{
		Durable:       ConsumerName("delayed"),
		Description:   "ODAVL Sync delayed jobs, until their run-at time",
		FilterSubject: events.JobSubject("delayed", "*"),
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       q.cfg.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: 10000,
	})
	if err != nil {
		return fmt.Errorf("creating consumer of delayed jobs: %w", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) { settle(m, q.delayed(ctx, m)) },
		jetstream.PullMaxMessages(256), jetstream.PullExpiry(pullExpiry))
	if err != nil {
		return fmt.Errorf("consuming delayed jobs: %w", err)
	}
	q.ccs = append(q.ccs, cc)
	return nil
}

// delayed takes a delayed submission: one due moves to its priority's
// subject, one not due yet waits (handed back with its delay, which counts
// no attempt of the job), a job waiting for its children is checked.
func (q *Queue) delayed(ctx context.Context, m jetstream.Msg) outcome {
	var sub Submission
	_, err := events.DecodeInto(m.Data(), &sub)
	switch {
	case err != nil || sub.RunAt == nil:
		return terminate("undecodable delayed submission")
	case q.isCancelled(sub.JobID, sub.Generation):
		return ackIt
	case sub.Waits > 0:
		return q.dueWait(ctx, sub) // a job waiting for its children
	}
	if wait := sub.RunAt.Sub(q.now()); wait > 0 {
		return retryIn(min(wait, time.Hour))
	}
	sub.RunAt = nil
	now := q.now().UTC()
	status := jobs.Waiting
	if q.sched.isPaused() || q.OrganizationPaused(sub.OrganizationID) {
		status = jobs.Paused
	}
	q.writer.Add(jobstore.Change{Base: q.baseRecord(sub), Status: status, At: now})
	if err := q.publishDue(ctx, sub); err != nil {
		return retryIn(time.Second)
	}
	if err := q.emit(sub, status, jobs.Delayed, 0, sub.BaseAttempt, "", now)(); err != nil {
		q.log.Error("job event lost", "job", sub.JobID, "err", err)
	}
	return ackIt
}
