package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/services/jobs/internal/jobstore"
)

const (
	keyPaused    = "paused"
	cancelPrefix = "cancel."
	pauseForever = 100 * 365 * 24 * time.Hour
)

// watchControl follows the control bucket: the pause flag and the
// cancelled jobs, whichever instance set them. It returns once the
// bucket's current state is applied.
func (q *Queue) watchControl(ctx context.Context) error {
	return bus.Follow(ctx, q.kv, q.stopped(), q.applyControl)
}

func (q *Queue) stopped() <-chan struct{} { return q.quit }

func (q *Queue) applyControl(e jetstream.KeyValueEntry) {
	deleted := e.Operation() != jetstream.KeyValuePut
	switch k := e.Key(); {
	case k == keyPaused:
		q.sched.setPaused(!deleted)
	case strings.HasPrefix(k, cancelPrefix) && !deleted:
		id := strings.TrimPrefix(k, cancelPrefix)
		gen, _ := strconv.Atoi(string(e.Value()))
		q.mu.Lock()
		if old, ok := q.cancelled[id]; !ok || gen > old {
			q.cancelled[id] = gen
		}
		rj := q.running[id]
		q.mu.Unlock()
		if rj != nil && rj.gen <= gen {
			rj.cancel(errCancelled)
		}
		if it := q.sched.remove(id); it != nil {
			if it.sub.Generation <= gen {
				_ = it.msg.Ack()
			} else {
				q.sched.push(it)
			}
		}
	}
}

func (q *Queue) isCancelled(id string, gen int) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	g, ok := q.cancelled[id]
	return ok && gen <= g
}

// Paused reports whether the queue is paused.
func (q *Queue) Paused() bool { return q.sched.isPaused() }

// Pause stops jobs from starting, in every instance: the priority consumers
// are paused on the server and the shared flag holds back what instances
// already pulled. Running jobs finish; waiting ones stay.
func (q *Queue) Pause(ctx context.Context) error {
	if _, err := q.kv.Put(ctx, keyPaused, []byte("1")); err != nil {
		return fmt.Errorf("pausing the queue: %w", err)
	}
	q.sched.setPaused(true)
	for _, p := range Priorities {
		if _, err := q.js.PauseConsumer(ctx, events.StreamJobs, ConsumerName(p.Name), time.Now().Add(pauseForever)); err != nil {
			return fmt.Errorf("pausing consumer %s: %w", ConsumerName(p.Name), err)
		}
	}
	return nil
}

// Resume lets jobs start again.
func (q *Queue) Resume(ctx context.Context) error {
	for _, p := range Priorities {
		if _, err := q.js.ResumeConsumer(ctx, events.StreamJobs, ConsumerName(p.Name)); err != nil {
			return fmt.Errorf("resuming consumer %s: %w", ConsumerName(p.Name), err)
		}
	}
	if err := q.kv.Delete(ctx, keyPaused); err != nil {
		return fmt.Errorf("resuming the queue: %w", err)
	}
	q.sched.setPaused(false)
	return nil
}

// Errors of the control requests.
var (
	ErrNotFound      = errors.New("job not found")
	ErrNotCancelable = errors.New("job is finished")
	ErrNotRetryable  = errors.New("job is not failed or cancelled")
)

// Get returns a job of a tenant as this instance knows it best: the
// finished record in MongoDB, the live one, or changes not yet written.
func (q *Queue) Get(ctx context.Context, org, project, id string) (jobstore.Record, error) {
	r, ok, err := q.writer.Read(id, func() (jobstore.Record, bool, error) {
		r, err := q.store.GetAny(ctx, id)
		if errors.Is(err, jobstore.ErrNotFound) {
			return jobstore.Record{}, false, nil
		}
		return r, err == nil, err
	})
	if err != nil {
		return jobstore.Record{}, err
	}
	if !ok || r.OrganizationID != org || (project != "" && r.ProjectID != project) {
		return jobstore.Record{}, ErrNotFound
	}
	return r, nil
}

// Cancel cancels a waiting, delayed, paused or running job: the record is
// CANCELLED at once and every instance drops it or cancels its handler's
// context.
func (q *Queue) Cancel(ctx context.Context, org, project, id string) (jobstore.Record, error) {
	r, err := q.Get(ctx, org, project, id)
	if err != nil {
		return r, err
	}
	if jobstore.Terminal(r.Status) {
		return r, fmt.Errorf("%w: it is %s", ErrNotCancelable, r.Status)
	}
	if _, err := q.kv.Put(ctx, cancelPrefix+id, []byte(strconv.Itoa(r.Generation))); err != nil {
		return r, fmt.Errorf("cancelling job %s: %w", id, err)
	}
	q.mu.Lock()
	q.cancelled[id] = max(q.cancelled[id], r.Generation)
	q.mu.Unlock()
	now := q.now().UTC()
	if err := <-q.writer.Add(jobstore.Change{Base: r, Status: jobstore.Cancelled, At: now, Error: "cancelled", Durable: true}); err != nil {
		return r, err
	}
	if err := Emit(q.js, events.JobStatusChanged{JobID: r.ID, Type: r.Type, OrganizationID: r.OrganizationID, ProjectID: r.ProjectID,
		Generation: r.Generation, Status: jobstore.Cancelled, Previous: r.Status, Progress: r.Progress, Attempt: r.Attempts, Error: "cancelled", At: now})(); err != nil {
		return r, err
	}
	q.dropWait(ctx, id, r.Generation)
	if r.ParentID != "" {
		q.childDone(ctx, r.ParentID, r.ID) // a parent waiting for it goes on
	}
	return q.Get(ctx, org, project, id)
}

// Retry starts a FAILED or CANCELLED job again, as a new generation with
// fresh attempts.
func (q *Queue) Retry(ctx context.Context, org, project, id string) (jobstore.Record, error) {
	q.writer.Flush()
	r, err := q.Get(ctx, org, project, id)
	if err != nil {
		return r, err
	}
	if r.Status != jobstore.Failed && r.Status != jobstore.Cancelled {
		return r, fmt.Errorf("%w: it is %s", ErrNotRetryable, r.Status)
	}
	if _, ok := q.handlers[r.Type]; !ok {
		return r, fmt.Errorf("%w: the queue has no handler for %s jobs", ErrNotRetryable, r.Type)
	}
	now := q.now().UTC()
	next := r
	next.Generation++
	next.Error, next.Progress, next.FinishedAt = "", 0, nil
	// A job scheduled for later keeps its schedule (a job cancelled
	// before its time, then retried, does not run at once).
	status := jobstore.Waiting
	if r.RunAt == nil || !r.RunAt.After(now) {
		next.RunAt = nil
	} else {
		status = jobstore.Delayed
	}
	// Live first, then the submission: a crash in between leaves the newer
	// generation visible (and its older record), never nothing.
	if err := <-q.writer.Add(jobstore.Change{Base: next, Status: status, At: now, Durable: true}); err != nil {
		return r, err
	}
	sub := Submission{JobID: id, Type: r.Type, Priority: r.Priority, OrganizationID: r.OrganizationID,
		ProjectID: r.ProjectID, TimeoutMs: r.TimeoutMs, ParentID: r.ParentID, SubmittedAt: now,
		Generation: next.Generation, BaseAttempt: r.Attempts, RunAt: next.RunAt}
	if r.Payload != "" {
		sub.Payload = []byte(r.Payload)
	}
	err = q.resubmit(ctx, sub, fmt.Sprintf("%s-retry-%d", id, sub.Generation))
	if err != nil {
		return r, err
	}
	// The older generation's record stays in the store until the new one
	// finishes and replaces it; reads prefer the newer generation.
	if err := q.emit(sub, status, r.Status, 0, r.Attempts, "", now)(); err != nil {
		return r, err
	}
	if out, err := q.Get(ctx, org, project, id); err == nil {
		return out, nil
	}
	// The new generation may already be finishing (its record in flight
	// between the live bucket and the store): answer it as submitted.
	next.Status, next.UpdatedAt = status, now
	next.History = append(next.History, jobstore.Transition{Status: status, At: now})
	return next, nil
}

// Stats counts jobs by status and by type.
type Stats struct {
	ByStatus map[string]int64 `json:"byStatus"`
	ByType   map[string]int64 `json:"byType"`
	Total    int64            `json:"total"`
	Paused   bool             `json:"paused"`
}

// Stats counts the jobs of an organization (and project): the finished
// ones in MongoDB and the live ones.
func (q *Queue) Stats(ctx context.Context, org, project string) (Stats, error) {
	q.writer.Flush()
	bs, bt, err := q.store.Counts(ctx, jobstore.Query{OrganizationID: org, ProjectID: project})
	if err != nil {
		return Stats{}, err
	}
	for _, r := range q.writer.Live(matches(jobstore.Query{OrganizationID: org, ProjectID: project})) {
		bs[r.Status]++
		bt[r.Type]++
		if r.Generation > 0 {
			// A job retried by hand: its older record is still stored.
			if old, err := q.store.GetAny(ctx, r.ID); err == nil && old.Generation < r.Generation {
				bs[old.Status]--
				bt[old.Type]--
			}
		}
	}
	st := Stats{ByStatus: map[string]int64{}, ByType: map[string]int64{}, Paused: q.Paused()}
	for _, s := range jobstore.Statuses {
		st.ByStatus[s] = bs[s]
		st.Total += bs[s]
	}
	for _, t := range jobstore.Types {
		st.ByType[t] = bt[t]
	}
	for t, n := range bt {
		st.ByType[t] = n
	}
	return st, nil
}

func matches(qu jobstore.Query) func(jobstore.Record) bool {
	return func(r jobstore.Record) bool {
		return r.OrganizationID == qu.OrganizationID && (qu.ProjectID == "" || r.ProjectID == qu.ProjectID) &&
			(qu.Status == "" || r.Status == qu.Status) && (qu.Type == "" || r.Type == qu.Type) &&
			(qu.ParentID == "" || r.ParentID == qu.ParentID)
	}
}

// List returns a page of jobs, newest first: live and finished together.
func (q *Queue) List(ctx context.Context, qu jobstore.Query) ([]jobstore.Record, int64, error) {
	q.writer.Flush()
	live := q.writer.Live(matches(qu))
	page := qu
	page.Offset, page.Limit = 0, qu.Offset+qu.Limit
	if qu.Limit <= 0 {
		page.Limit = 0
	}
	stored, total, err := q.store.List(ctx, page)
	if err != nil {
		return nil, 0, err
	}
	newer := map[string]int{}
	for _, r := range live {
		newer[r.ID] = r.Generation
	}
	var all []jobstore.Record
	finished := map[string]bool{}
	for _, r := range stored {
		g, ok := newer[r.ID]
		if ok && g > r.Generation {
			total-- // superseded by its retry
			continue
		}
		if ok && jobstore.Terminal(r.Status) {
			// A live entry left behind by a finished job (until the writer
			// drops it): the finished record is the job.
			finished[r.ID] = true
		}
		all = append(all, r)
	}
	for _, r := range live {
		if !finished[r.ID] {
			all = append(all, r)
		}
	}
	total -= int64(len(finished))
	slices.SortStableFunc(all, func(a, b jobstore.Record) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	total += int64(len(live))
	lo := min(qu.Offset, len(all))
	hi := len(all)
	if qu.Limit > 0 {
		hi = min(lo+qu.Limit, len(all))
	}
	return all[lo:hi], total, nil
}

// ClearCompleted deletes COMPLETED jobs older than keep.
func (q *Queue) ClearCompleted(ctx context.Context, org, project string, keep time.Duration) (int64, error) {
	q.writer.Flush()
	return q.store.ClearCompleted(ctx, jobstore.Query{OrganizationID: org, ProjectID: project}, q.now().Add(-keep))
}

// RunCleanup clears COMPLETED jobs older than Config.KeepCompleted every
// Config.CleanupEvery until ctx is done (the store has no TTL indexes).
func (q *Queue) RunCleanup(ctx context.Context) {
	t := time.NewTicker(q.cfg.CleanupEvery)
	defer t.Stop()
	for {
		n, err := q.ClearCompleted(ctx, "", "", q.cfg.KeepCompleted)
		if err != nil && ctx.Err() == nil {
			q.log.Warn("clearing completed jobs", "err", err)
		} else if n > 0 {
			q.log.Info("cleared completed jobs", "deleted", n, "olderThan", q.cfg.KeepCompleted)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
