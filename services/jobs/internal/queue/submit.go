package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/jobs"
	"github.com/odavl/sync/services/jobs/internal/jobstore"
)

// Spec describes a job to submit.
type Spec struct {
	// ID is the job id; empty: a new one. Submitting the same id twice
	// inside the dedupe window is one job.
	ID             string
	Type           string
	Priority       int
	OrganizationID string
	ProjectID      string
	Payload        json.RawMessage
	// RunAt delays the job: it is DELAYED until then.
	RunAt *time.Time
	// Timeout overrides the default run time limit.
	Timeout  time.Duration
	ParentID string
	// Durable waits until the WAITING record is written (an API caller reads
	// it next); otherwise the record may be collapsed with the job's next
	// transitions.
	Durable bool
}

// NewID returns a new job id.
func NewID() string { return "job_" + nuid.Next() }

// Submit submits one job and returns its record as submitted.
func (q *Queue) Submit(ctx context.Context, s Spec) (jobstore.Record, error) {
	rs, err := q.SubmitMany(ctx, []Spec{s})
	if err != nil {
		return jobstore.Record{}, err
	}
	return rs[0], nil
}

// SubmitMany submits jobs with pipelined publishes: it returns once every
// submission and its first lifecycle event are acknowledged by JetStream.
func (q *Queue) SubmitMany(ctx context.Context, specs []Spec) ([]jobstore.Record, error) {
	now := q.now().UTC()
	// Held for reading until every submission is acknowledged: a resume
	// of a paused organization releases what was set aside before it.
	q.asideMu.RLock()
	defer q.asideMu.RUnlock()
	subs, out, durable := q.records(specs, now)
	// Each submission is followed at once by its first lifecycle event on
	// the same connection, so the event is stored before a worker's ACTIVE.
	futs := make([]*bus.Pending, len(specs))
	waits := make([]func() error, 0, len(specs))
	for i, sub := range subs {
		f, err := q.publishSubmission(sub, sub.JobID)
		if err != nil {
			q.forgetAll(subs)
			return nil, err
		}
		futs[i] = f
		waits = append(waits, q.emit(sub, out[i].Status, "", 0, 0, "", now))
	}
	if err := waitAll(ctx, futs); err != nil {
		// An unacknowledged submission may be stored all the same (a
		// stream leader that died after storing it): publish again under
		// the same message id, which JetStream drops as a duplicate if so,
		// until acknowledged, or the records would be forgotten for a job
		// that runs, or kept for one that never does.
		if err := q.republish(ctx, subs); err != nil {
			q.forgetAll(subs)
			return nil, fmt.Errorf("submitting jobs: %w", err)
		}
	}
	ids := make([]string, len(subs))
	for i, sub := range subs {
		ids[i] = sub.JobID
	}
	q.writer.Published(ids...)
	for _, w := range waits {
		if err := w(); err != nil {
			return nil, err
		}
	}
	for _, ch := range durable {
		if err := <-ch; err != nil {
			return nil, err
		}
	}
	return out, nil
}

// records makes the submissions of specs and hands their records to the
// writer, held back until published (Change.Unpublished); durable are the
// answers of the specs that wait for their record. The caller holds
// asideMu for reading.
func (q *Queue) records(specs []Spec, now time.Time) (subs []Submission, out []jobstore.Record, durable []<-chan error) {
	paused := q.sched.isPaused()
	subs = make([]Submission, len(specs))
	out = make([]jobstore.Record, len(specs))
	// The records first: a worker may start the job as soon as it is published.
	for i, s := range specs {
		if s.ID == "" {
			s.ID = NewID()
		}
		if s.Priority == 0 {
			s.Priority = jobs.PriorityNormal
		}
		sub := Submission{JobID: s.ID, Type: s.Type, Priority: s.Priority, OrganizationID: s.OrganizationID,
			ProjectID: s.ProjectID, Payload: s.Payload, TimeoutMs: s.Timeout.Milliseconds(), ParentID: s.ParentID, SubmittedAt: now}
		if s.RunAt != nil && s.RunAt.After(now) {
			t := s.RunAt.UTC()
			sub.RunAt = &t
		}
		subs[i] = sub
		status := jobs.Waiting
		switch {
		case sub.RunAt != nil:
			status = jobs.Delayed
		case paused || q.pausedOrgs[sub.OrganizationID]:
			status = jobs.Paused
		}
		base := q.baseRecord(sub)
		if ch := q.writer.Add(jobstore.Change{Base: base, Create: true, Status: status, At: now, Durable: s.Durable, Unpublished: true}); ch != nil {
			durable = append(durable, ch)
		}
		r := base
		r.Status, r.UpdatedAt = status, now
		r.History = []jobstore.Transition{{Status: status, At: now}}
		out[i] = r
	}
	return subs, out, durable
}

// republishWithin bounds how long a submission is published again after a
// first publish went unacknowledged (a JetStream leader election takes a few
// seconds).
const republishWithin = 15 * time.Second

// republish publishes the submissions again, one at a time, each until
// JetStream acknowledges it, for republishWithin at most.
func (q *Queue) republish(ctx context.Context, subs []Submission) error {
	ctx, cancel := context.WithTimeout(ctx, republishWithin)
	defer cancel()
	for _, sub := range subs {
		for {
			err := q.resubmitHeld(ctx, sub, sub.JobID)
			if err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%w (job %s unacknowledged: %w)", ctx.Err(), sub.JobID, err)
			case <-time.After(250 * time.Millisecond):
			}
		}
	}
	return nil
}

// forgetAll drops the records of submissions that were not accepted.
func (q *Queue) forgetAll(subs []Submission) {
	for _, s := range subs {
		q.writer.Forget(s.JobID, s.Generation)
	}
}

func (q *Queue) baseRecord(sub Submission) jobstore.Record {
	return jobstore.Record{
		ID: sub.JobID, Type: sub.Type, Priority: sub.Priority, OrganizationID: sub.OrganizationID, ProjectID: sub.ProjectID,
		MaxAttempts: q.cfg.MaxAttempts(), Payload: string(sub.Payload), ParentID: sub.ParentID, Generation: sub.Generation,
		TimeoutMs: sub.TimeoutMs, RunAt: sub.RunAt, CreatedAt: sub.SubmittedAt, Attempts: sub.BaseAttempt,
		History: []jobstore.Transition{},
	}
}

// subjectOf is where a submission goes: its priority's subject, or the
// delayed subject until its run-at time.
func subjectOf(sub Submission) string {
	if sub.RunAt != nil {
		return events.JobSubject("delayed", sub.Type)
	}
	return events.JobSubject(jobs.PriorityName(sub.Priority), sub.Type)
}

// subjectFor is subjectOf, or the held subject of a paused organization's
// job that is due. The caller holds asideMu for reading.
func (q *Queue) subjectFor(sub Submission) string {
	if sub.RunAt == nil && q.pausedOrgs[sub.OrganizationID] {
		return events.JobHeldSubject(sub.OrganizationID, sub.Type)
	}
	return subjectOf(sub)
}

// resubmit publishes a submission again (delayed, woken, parked, retried)
// under msgID and waits for its acknowledgement.
func (q *Queue) resubmit(ctx context.Context, sub Submission, msgID string) error {
	q.asideMu.RLock()
	defer q.asideMu.RUnlock()
	return q.resubmitHeld(ctx, sub, msgID)
}

// resubmitHeld is resubmit for a caller that holds asideMu for reading
// (a second RLock could wait behind a resume's Lock for ever).
func (q *Queue) resubmitHeld(ctx context.Context, sub Submission, msgID string) error {
	f, err := q.publishSubmission(sub, msgID)
	if err != nil {
		return err
	}
	return waitAll(ctx, []*bus.Pending{f})
}

// publishSubmission publishes a submission where it goes now; the caller
// holds asideMu for reading until it is acknowledged.
func (q *Queue) publishSubmission(sub Submission, msgID string) (*bus.Pending, error) {
	return q.publishTo(q.subjectFor(sub), sub, msgID)
}

func (q *Queue) publishTo(subject string, sub Submission, msgID string) (*bus.Pending, error) {
	ev, err := events.New(msgID, Source, events.TypeJobSubmitted, sub.SubmittedAt, sub.OrganizationID, sub.ProjectID, sub)
	if err != nil {
		return nil, err
	}
	ev.Subject = sub.JobID
	return bus.PublishAsync(context.Background(), q.js, subject, ev), nil
}

// waitAll waits for the acknowledgement of every submission.
func waitAll(ctx context.Context, ps []*bus.Pending) error {
	for _, p := range ps {
		if err := p.Acked(ctx); err != nil {
			return err
		}
	}
	return nil
}

// emit publishes a lifecycle event and returns a wait for its
// acknowledgement, which republishes synchronously if the first try failed.
// The events of a job resumed after waiting for its children (which runs
// again in the same attempt) have ids ending in -w<waits>.
func (q *Queue) emit(sub Submission, status, previous string, progress, attempt int, errMsg string, at time.Time) func() error {
	suffix := ""
	if sub.Waits > 0 {
		suffix = fmt.Sprintf("-w%d", sub.Waits)
	}
	return q.emitAs(suffix, sub, status, previous, progress, attempt, errMsg, at)
}

// emitAs is emit with the event id's suffix given.
func (q *Queue) emitAs(suffix string, sub Submission, status, previous string, progress, attempt int, errMsg string, at time.Time) func() error {
	return emit(q.js, suffix, events.JobStatusChanged{JobID: sub.JobID, Type: sub.Type, OrganizationID: sub.OrganizationID, ProjectID: sub.ProjectID,
		Generation: sub.Generation, Status: status, Previous: previous, Progress: progress, Attempt: attempt, Error: errMsg, At: at})
}

// Emit publishes the lifecycle event of a job (the sync processor uses it
// too). Its id is jobId-status-attempt, so a repeat is dropped by
// JetStream's dedupe; a progress report has status ACTIVE, Previous ACTIVE,
// goes on the "progress" subject and its id also names the percentage.
func Emit(js jetstream.JetStream, c events.JobStatusChanged) func() error {
	return emit(js, "", c)
}

func emit(js jetstream.JetStream, suffix string, c events.JobStatusChanged) func() error {
	jobID, org, project, status, attempt, at := c.JobID, c.OrganizationID, c.ProjectID, c.Status, c.Attempt, c.At
	id := fmt.Sprintf("%s-%s-%d", jobID, status, attempt) + suffix
	token := status
	if status == jobs.Active && c.Previous == jobs.Active {
		id = fmt.Sprintf("%s-progress-%d-%d", jobID, attempt, c.Progress) + suffix
		token = "progress"
	}
	ev, err := events.New(id, Source, events.TypeJobStatus, at, org, project, c)
	if err != nil {
		return func() error { return err }
	}
	ev.Subject = jobID
	p := bus.PublishAsync(context.Background(), js, events.JobEventSubject(org, project, token), ev)
	return func() error {
		if err := p.Wait(context.Background()); err != nil {
			return fmt.Errorf("publishing job event %s: %w", id, err)
		}
		return nil
	}
}
