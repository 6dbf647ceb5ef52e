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
	"github.com/odavl/sync/libs/jobs"
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
	case strings.HasPrefix(k, orgPausedPrefix):
		q.followOrgPause(strings.TrimPrefix(k, orgPausedPrefix), !deleted)
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
				settle(it.msg, ackIt)
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
	for _, p := range jobs.Priorities {
		if _, err := q.js.PauseConsumer(ctx, events.StreamJobs, ConsumerName(p.Name), time.Now().Add(pauseForever)); err != nil {
			return fmt.Errorf("pausing consumer %s: %w", ConsumerName(p.Name), err)
		}
	}
	return nil
}

// Resume lets jobs start again.
func (q *Queue) Resume(ctx context.Context) error {
	for _, p := range jobs.Priorities {
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
	r, ok, err := q.writer.Get(ctx, q.store, id)
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
	if jobs.Terminal(r.Status) {
		return r, fmt.Errorf("%w: it is %s", ErrNotCancelable, r.Status)
	}
	if _, err := q.kv.Put(ctx, cancelPrefix+id, []byte(strconv.Itoa(r.Generation))); err != nil {
		return r, fmt.Errorf("cancelling job %s: %w", id, err)
	}
	q.mu.Lock()
	q.cancelled[id] = max(q.cancelled[id], r.Generation)
	q.mu.Unlock()
	now := q.now().UTC()
	if err := <-q.writer.Add(jobstore.Change{Base: r, Status: jobs.Cancelled, At: now, Error: "cancelled", Durable: true}); err != nil {
		return r, err
	}
	if err := Emit(q.js, events.JobStatusChanged{JobID: r.ID, Type: r.Type, OrganizationID: r.OrganizationID, ProjectID: r.ProjectID,
		Generation: r.Generation, Status: jobs.Cancelled, Previous: r.Status, Progress: r.Progress, Attempt: r.Attempts, Error: "cancelled", At: now})(); err != nil {
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
	if r.Status != jobs.Failed && r.Status != jobs.Cancelled {
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
	status := jobs.Waiting
	if r.RunAt == nil || !r.RunAt.After(now) {
		next.RunAt = nil
	} else {
		status = jobs.Delayed
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

// Stats counts the jobs of an organization (and project): the records in
// MongoDB and the ones the bucket holds (unfinished jobs, and finished ones
// not yet projected).
func (q *Queue) Stats(ctx context.Context, org, project string) (Stats, error) {
	tenant := jobstore.Query{OrganizationID: org, ProjectID: project}
	q.catchUp(ctx)
	bs, bt, err := q.store.Counts(ctx, tenant)
	if err != nil {
		return Stats{}, err
	}
	held, superseded, err := q.held(ctx, tenant)
	if err != nil {
		return Stats{}, err
	}
	for _, r := range superseded {
		bs[r.Status]--
		bt[r.Type]--
	}
	for _, r := range held {
		bs[r.Status]++
		bt[r.Type]++
	}
	st := Stats{ByStatus: map[string]int64{}, ByType: map[string]int64{}, Paused: q.Paused() || q.OrganizationPaused(org)}
	for _, s := range jobs.Statuses {
		st.ByStatus[s] = bs[s]
		st.Total += bs[s]
	}
	for _, t := range jobs.Types {
		st.ByType[t] = bt[t]
	}
	for t, n := range bt {
		st.ByType[t] = n
	}
	return st, nil
}

// held returns the records of a tenant that the bucket holds and the store
// does not show yet, and the stored records they supersede (an older
// generation of a job retried by hand). A held record that the store
// shows already (projected, not yet taken out of the bucket) is left out.
func (q *Queue) held(ctx context.Context, tenant jobstore.Query) (held, superseded []jobstore.Record, err error) {
	q.writer.Flush()
	all := q.writer.Held(matches(tenant))
	var maybeStored []string
	for _, r := range all {
		if r.Generation > 0 || jobs.Terminal(r.Status) {
			maybeStored = append(maybeStored, r.ID)
		}
	}
	stored, err := q.store.ByIDs(ctx, maybeStored)
	if err != nil {
		return nil, nil, err
	}
	for _, r := range all {
		s, ok := stored[r.ID]
		switch {
		case ok && (s.Generation > r.Generation || s.Generation == r.Generation && jobs.Terminal(s.Status)):
			continue // the store shows it
		case ok:
			superseded = append(superseded, s)
		}
		held = append(held, r)
	}
	return held, superseded, nil
}

// catchUp lets the projection write what finished before a list or a
// count (at most a moment): the store's answers are several queries, and
// the bucket's finished records would otherwise move under them.
func (q *Queue) catchUp(ctx context.Context) {
	q.writer.Flush()
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := q.projection.CatchUp(cctx); err != nil && ctx.Err() == nil {
		q.log.Debug("listing jobs while the projection catches up", "err", err)
	}
}

func matches(qu jobstore.Query) func(jobstore.Record) bool {
	return func(r jobstore.Record) bool {
		return r.OrganizationID == qu.OrganizationID && (qu.ProjectID == "" || r.ProjectID == qu.ProjectID) &&
			(qu.Status == "" || r.Status == qu.Status) && (qu.Type == "" || r.Type == qu.Type) &&
			(qu.ParentID == "" || r.ParentID == qu.ParentID) && qu.Created(r.CreatedAt)
	}
}

// List returns a page of jobs, newest first: the bucket's and the store's
// together.
func (q *Queue) List(ctx context.Context, qu jobstore.Query) ([]jobstore.Record, int64, error) {
	q.catchUp(ctx)
	held, superseded, err := q.held(ctx, jobstore.Query{OrganizationID: qu.OrganizationID, ProjectID: qu.ProjectID})
	if err != nil {
		return nil, 0, err
	}
	page := qu
	page.Offset, page.Limit = 0, qu.Offset+qu.Limit
	if qu.Limit <= 0 {
		page.Limit = 0
	}
	stored, total, err := q.store.List(ctx, page)
	if err != nil {
		return nil, 0, err
	}
	keep := matches(qu)
	gone := map[string]bool{}
	for _, r := range superseded {
		if keep(r) {
			gone[r.ID] = true
			total--
		}
	}
	var all []jobstore.Record
	for _, r := range held {
		if keep(r) {
			all = append(all, r)
			total++
		}
	}
	for _, r := range stored {
		if !gone[r.ID] {
			all = append(all, r)
		}
	}
	slices.SortStableFunc(all, func(a, b jobstore.Record) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	lo := min(qu.Offset, len(all))
	hi := len(all)
	if qu.Limit > 0 {
		hi = min(lo+qu.Limit, len(all))
	}
	return all[lo:hi], total, nil
}

// ClearCompleted deletes COMPLETED jobs older than keep, those the bucket
// still holds included: the projection catches up first.
func (q *Queue) ClearCompleted(ctx context.Context, org, project string, keep time.Duration) (int64, error) {
	q.writer.Flush()
	if err := q.projection.CatchUp(ctx); err != nil {
		return 0, err
	}
	return q.store.ClearCompleted(ctx, jobstore.Query{OrganizationID: org, ProjectID: project}, q.now().Add(-keep))
}

// RunCleanup clears COMPLETED jobs older than their type's keep
// (Config.Keep) every Config.CleanupEvery until ctx is done (the store has
// no TTL indexes).
func (q *Queue) RunCleanup(ctx context.Context) {
	t := time.NewTicker(q.cfg.CleanupEvery)
	defer t.Stop()
	for {
		for _, typ := range jobs.Types {
			keep := q.cfg.Keep.For(typ)
			if keep.Age <= 0 {
				continue
			}
			n, err := q.store.ClearCompleted(ctx, jobstore.Query{Type: typ}, q.now().Add(-keep.Age))
			if err != nil && ctx.Err() == nil {
				q.log.Warn("clearing completed jobs", "type", typ, "err", err)
			} else if n > 0 {
				q.log.Info("cleared completed jobs", "type", typ, "deleted", n, "olderThan", keep.Age)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
