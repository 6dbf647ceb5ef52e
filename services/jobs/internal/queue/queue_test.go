package queue_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/jobs"
	"github.com/odavl/sync/libs/mongodb"
	"github.com/odavl/sync/libs/mongotest"
	"github.com/odavl/sync/libs/natstest"
	"github.com/odavl/sync/services/jobs/internal/jobstore"
	"github.com/odavl/sync/services/jobs/internal/queue"
)

type bundle struct {
	nats  *natstest.Bundle
	store *jobstore.Store
	cfg   queue.Config
}

func testConfig() queue.Config {
	return queue.Config{
		Workers: 4, Backoff: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond},
		AckWait: time.Second, RecordHold: 50 * time.Millisecond,
	}
}

func setup(t *testing.T, cfg queue.Config) *bundle {
	t.Helper()
	nb := natstest.Start(t)
	mb := mongotest.Start(t)
	if err := mongodb.EnsureIndexes(context.Background(), mb.DB, jobstore.Indexes()); err != nil {
		t.Fatal(err)
	}
	return &bundle{nats: nb, store: jobstore.New(mb.DB), cfg: cfg}
}

// start runs a queue instance with the handlers; it is stopped at cleanup.
func (b *bundle) start(t *testing.T, handlers map[string]queue.Handler) *queue.Queue {
	t.Helper()
	nc := natstest.Connect(t, b.nats.URL)
	q, err := queue.New(slog.New(slog.NewTextHandler(io.Discard, nil)), nc, b.store, b.cfg)
	if err != nil {
		t.Fatal(err)
	}
	for typ, h := range handlers {
		q.Handle(typ, h)
	}
	if err := q.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Stop)
	return q
}

func submit(t *testing.T, q *queue.Queue, s queue.Spec) jobstore.Record {
	t.Helper()
	if s.OrganizationID == "" {
		s.OrganizationID, s.ProjectID = "org1", "proj1"
	}
	if s.Type == "" {
		s.Type = "TEST"
	}
	r, err := q.Submit(context.Background(), s)
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	return r
}

func waitFor(t *testing.T, what string, d time.Duration, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stored reads a job's record where it survives a crash: the bucket, else
// (once projected) MongoDB.
func (b *bundle) stored(t *testing.T, id string) jobstore.Record {
	t.Helper()
	kv, err := b.nats.JS.KeyValue(context.Background(), jobstore.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	var r jobstore.Record
	if e, err := kv.Get(context.Background(), id); err == nil {
		if err := json.Unmarshal(e.Value(), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	r, err = b.store.GetAny(context.Background(), id)
	if err != nil && !errors.Is(err, jobstore.ErrNotFound) {
		t.Fatal(err)
	}
	return r
}

// consumer reads the state of one of the queue's consumers.
func (b *bundle) consumer(t *testing.T, name string) *jetstream.ConsumerInfo {
	t.Helper()
	c, err := b.nats.JS.Consumer(context.Background(), events.StreamJobs, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// waitDeliveries waits until the consumer name has made n deliveries
// more than it had made at from (its Delivered.Consumer).
func (b *bundle) waitDeliveries(t *testing.T, name string, from uint64, n uint64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d more deliveries of %s", n, name), 10*time.Second, func() bool {
		return b.consumer(t, name).Delivered.Consumer >= from+n
	})
}

// waitSettled waits until the consumers have no message left to deliver
// and none delivered and unacknowledged: nothing more can run.
func (b *bundle) waitSettled(t *testing.T, names ...string) {
	t.Helper()
	for _, name := range names {
		c, err := b.nats.JS.Consumer(context.Background(), events.StreamJobs, name)
		if err != nil {
			t.Fatal(err)
		}
		natstest.Settled(t, c)
	}
}

func (b *bundle) waitStatus(t *testing.T, id, status string, d time.Duration) jobstore.Record {
	t.Helper()
	var r jobstore.Record
	waitFor(t, id+" "+status, d, func() bool { r = b.stored(t, id); return r.Status == status })
	return r
}

// collectEvents subscribes to the lifecycle events of every job.
func collectEvents(t *testing.T, nc *nats.Conn) func() []events.JobStatusChanged {
	var mu sync.Mutex
	var got []events.JobStatusChanged
	sub, err := nc.Subscribe(events.AllJobEvents, func(m *nats.Msg) {
		ev, err := events.Decode(m.Data)
		if err != nil {
			t.Errorf("bad event: %v", err)
			return
		}
		var d events.JobStatusChanged
		_ = ev.DataAs(&d)
		mu.Lock()
		got = append(got, d)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	_ = nc.Flush()
	return func() []events.JobStatusChanged {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}

func TestRetriesWithBackoffThenFailedThenManualRetry(t *testing.T) {
	t.Parallel()
	b := setup(t, testConfig())
	var mu sync.Mutex
	var at []time.Time
	succeed := atomic.Bool{}
	q := b.start(t, map[string]queue.Handler{"TEST": func(ctx context.Context, j *queue.Job) (any, error) {
		mu.Lock()
		at = append(at, time.Now())
		n := len(at)
		mu.Unlock()
		if succeed.Load() {
			return map[string]int{"attempt": j.Attempt}, nil
		}
		return nil, fmt.Errorf("boom %d", n)
	}})
	r := submit(t, q, queue.Spec{})
	failed := b.waitStatus(t, r.ID, jobs.Failed, 10*time.Second)
	if failed.Attempts != 4 || failed.Error != "boom 4" || failed.MaxAttempts != 4 {
		t.Fatalf("failed record: attempts %d/%d error %q, want 4/4 \"boom 4\"", failed.Attempts, failed.MaxAttempts, failed.Error)
	}
	time.Sleep(600 * time.Millisecond)
	mu.Lock()
	if len(at) != 4 {
		t.Fatalf("handler ran %d times, want 4 (3 retries)", len(at))
	}
	for i, want := range b.cfg.Backoff {
		if gap := at[i+1].Sub(at[i]); gap < want-20*time.Millisecond || gap > want+500*time.Millisecond {
			t.Errorf("retry %d came %v after the previous attempt, want about %v", i+1, gap, want)
		}
	}
	mu.Unlock()
	var delayed int
	for _, h := range failed.History {
		if h.Status == jobs.Delayed {
			delayed++
		}
	}
	if delayed != 3 {
		t.Errorf("history %+v: want 3 DELAYED (retry waits)", failed.History)
	}

	succeed.Store(true)
	if _, err := q.Retry(context.Background(), "org1", "proj1", r.ID); err != nil {
		t.Fatal(err)
	}
	done := b.waitStatus(t, r.ID, jobs.Completed, 5*time.Second)
	if done.Attempts != 5 || done.Generation != 1 || done.Error != "" || done.Output != `{"attempt":5}` {
		t.Fatalf("retried record: %+v", done)
	}
	if _, err := q.Retry(context.Background(), "org1", "proj1", r.ID); !errors.Is(err, queue.ErrNotRetryable) {
		t.Fatalf("retry of a completed job: %v, want ErrNotRetryable", err)
	}
}

func TestPermanentErrorIsNotRetried(t *testing.T) {
	t.Parallel()
	b := setup(t, testConfig())
	var runs atomic.Int32
	q := b.start(t, map[string]queue.Handler{"TEST": func(ctx context.Context, j *queue.Job) (any, error) {
		runs.Add(1)
		return nil, bus.Permanent(errors.New("bad address"))
	}})
	r := submit(t, q, queue.Spec{})
	f := b.waitStatus(t, r.ID, jobs.Failed, 5*time.Second)
	time.Sleep(300 * time.Millisecond)
	if runs.Load() != 1 || f.Attempts != 1 || f.Error != "bad address" {
		t.Fatalf("runs %d, record attempts %d error %q", runs.Load(), f.Attempts, f.Error)
	}
}

func TestCrashedWorkerJobIsRedeliveredAndCompletedOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, testConfig())
	var completions, starts atomic.Int32
	started := make(chan struct{}, 1)
	crashing := b.start(t, map[string]queue.Handler{"TEST": func(ctx context.Context, j *queue.Job) (any, error) {
		starts.Add(1)
		started <- struct{}{}
		<-ctx.Done() // stuck until the crash
		return nil, ctx.Err()
	}})
	r := submit(t, crashing, queue.Spec{})
	<-started
	crashing.Kill()
	healthy := b.start(t, map[string]queue.Handler{"TEST": func(ctx context.Context, j *queue.Job) (any, error) {
		completions.Add(1)
		return "done", nil
	}})
	_ = healthy
	rec := b.waitStatus(t, r.ID, jobs.Completed, 10*time.Second)
	// Acknowledged, with nothing left to deliver: nothing else may run.
	b.waitSettled(t, queue.ConsumerName("NORMAL"))
	if completions.Load() != 1 || starts.Load() != 1 {
		t.Fatalf("crashed starts %d, completions %d, want 1 and 1", starts.Load(), completions.Load())
	}
	if rec.Attempts != 2 {
		t.Fatalf("attempts %d, want 2 (the crashed one and the redelivery)", rec.Attempts)
	}
}

func TestHigherPrioritiesStartFirstAndLowIsNotStarved(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Workers = 1
	b := setup(t, cfg)
	var mu sync.Mutex
	var order []int
	q := b.start(t, map[string]queue.Handler{"TEST": func(ctx context.Context, j *queue.Job) (any, error) {
		mu.Lock()
		order = append(order, j.Priority)
		mu.Unlock()
		time.Sleep(2 * time.Millisecond)
		return nil, nil
	}})
	ctx := context.Background()
	if err := q.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	const each = 30
	var specs []queue.Spec
	for i := range each {
		for _, p := range []int{jobs.PriorityLow, jobs.PriorityNormal, jobs.PriorityHigh, jobs.PriorityCritical} {
			specs = append(specs, queue.Spec{Type: "TEST", Priority: p, OrganizationID: "org1", ProjectID: "proj1", ID: fmt.Sprintf("p%d-%d", p, i)})
		}
	}
	if _, err := q.SubmitMany(ctx, specs); err != nil {
		t.Fatal(err)
	}
	// Every job is stored and none delivered: the paused consumers hold
	// them on the server, and nothing starts.
	waitFor(t, "the jobs stored behind paused consumers", 10*time.Second, func() bool {
		var pending uint64
		for _, p := range jobs.Priorities {
			info := b.consumer(t, queue.ConsumerName(p.Name))
			if !info.Paused || info.NumAckPending != 0 {
				return false
			}
			pending += info.NumPending
		}
		return pending == 4*each
	})
	mu.Lock()
	if len(order) != 0 {
		t.Fatalf("%d jobs started while paused", len(order))
	}
	mu.Unlock()
	if err := q.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "all jobs", 20*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(order) == 4*each })
	mean := map[int]float64{}
	first, last := map[int]int{}, map[int]int{}
	for i, p := range order {
		mean[p] += float64(i) / each
		if _, ok := first[p]; !ok {
			first[p] = i
		}
		last[p] = i
	}
	t.Logf("mean start position by priority: %v; first low at %d, last critical at %d", mean, first[1], last[20])
	if !(mean[20] < mean[10] && mean[10] < mean[5] && mean[5] < mean[1]) {
		t.Errorf("mean start positions %v: want CRITICAL < HIGH < NORMAL < LOW", mean)
	}
	if first[1] > last[20] {
		t.Errorf("the first LOW job started at %d, after every CRITICAL one (last at %d): starved", first[1], last[20])
	}
}

func TestOneOrganizationsFloodDoesNotHoldBackAnother(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Workers = 2
	b := setup(t, cfg)
	var mu sync.Mutex
	var order []string
	q := b.start(t, map[string]queue.Handler{"TEST": func(ctx context.Context, j *queue.Job) (any, error) {
		mu.Lock()
		order = append(order, j.OrganizationID)
		mu.Unlock()
		time.Sleep(3 * time.Millisecond)
		return nil, nil
	}})
	ctx := context.Background()
	var flood []queue.Spec
	for range 300 {
		flood = append(flood, queue.Spec{Type: "TEST", OrganizationID: "flooder", ProjectID: "p"})
	}
	if _, err := q.SubmitMany(ctx, flood); err != nil {
		t.Fatal(err)
	}
	var small []queue.Spec
	for range 10 {
		small = append(small, queue.Spec{Type: "TEST", OrganizationID: "small", ProjectID: "p"})
	}
	if _, err := q.SubmitMany(ctx, small); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "all jobs", 20*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(order) >= 310
	})
	lastSmall := 0
	for i, o := range order {
		if o == "small" {
			lastSmall = i
		}
	}
	t.Logf("the small organization's last job started at position %d of 310", lastSmall)
	if lastSmall > 100 {
		t.Fatalf("the small organization's 10 jobs finished starting only at position %d: held back by the flood", lastSmall)
	}
}

func TestDelayedJobRunsAtItsTime(t *testing.T) {
	t.Parallel()
	b := setup(t, testConfig())
	ran := make(chan time.Time, 1)
	q := b.start(t, map[string]queue.Handler{"TEST": func(ctx context.Context, j *queue.Job) (any, error) {
		ran <- time.Now()
		return nil, nil
	}})
	runAt := time.Now().Add(700 * time.Millisecond)
	r := submit(t, q, queue.Spec{RunAt: &runAt, Durable: true})
	if r.Status != jobs.Delayed || b.stored(t, r.ID).Status != jobs.Delayed {
		t.Fatalf("submitted status %s, stored %s: want DELAYED", r.Status, b.stored(t, r.ID).Status)
	}
	select {
	case at := <-ran:
		if at.Before(runAt) {
			t.Fatalf("ran %v before its run-at time", runAt.Sub(at))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("delayed job never ran")
	}
	rec := b.waitStatus(t, r.ID, jobs.Completed, 5*time.Second)
	if rec.Attempts != 1 {
		t.Fatalf("attempts %d, want 1: waiting is no attempt", rec.Attempts)
	}
}

func TestPauseHoldsJobsAndCancelDropsAWaitingOne(t *testing.T) {
	t.Parallel()
	b := setup(t, testConfig())
	var ran sync.Map
	q := b.start(t, map[string]queue.Handler{"TEST": func(ctx context.Context, j *queue.Job) (any, error) {
		ran.Store(j.JobID, true)
		return nil, nil
	}})
	ctx := context.Background()
	if err := q.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	keep := submit(t, q, queue.Spec{Durable: true})
	drop := submit(t, q, queue.Spec{Durable: true})
	if keep.Status != jobs.Paused {
		t.Fatalf("status while paused %s, want PAUSED", keep.Status)
	}
	c, err := q.Cancel(ctx, "org1", "proj1", drop.ID)
	if err != nil || c.Status != jobs.Cancelled {
		t.Fatalf("cancel: %v %s", err, c.Status)
	}
	if _, err := q.Cancel(ctx, "org2", "proj1", keep.ID); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("cancel of another tenant's job: %v, want ErrNotFound", err)
	}
	// The job is stored behind the paused consumer, not delivered: it
	// cannot start.
	waitFor(t, "the job held on the server", 10*time.Second, func() bool {
		info := b.consumer(t, queue.ConsumerName("NORMAL"))
		return info.Paused && info.NumPending >= 1 && info.NumAckPending == 0
	})
	if _, ok := ran.Load(keep.ID); ok {
		t.Fatal("a job started while the queue was paused")
	}
	if err := q.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	b.waitStatus(t, keep.ID, jobs.Completed, 5*time.Second)
	time.Sleep(300 * time.Millisecond)
	if _, ok := ran.Load(drop.ID); ok {
		t.Fatal("the cancelled job ran")
	}
	if s := b.stored(t, drop.ID).Status; s != jobs.Cancelled {
		t.Fatalf("cancelled job is %s", s)
	}
	if _, err := q.Cancel(ctx, "org1", "proj1", keep.ID); !errors.Is(err, queue.ErrNotCancelable) {
		t.Fatalf("cancel of a completed job: %v", err)
	}
}

func TestCancelRunningJobCancelsItsContextOnAnotherInstance(t *testing.T) {
	t.Parallel()
	b := setup(t, testConfig())
	started := make(chan struct{}, 1)
	stopped := make(chan error, 1)
	worker := b.start(t, map[string]queue.Handler{"TEST": func(ctx context.Context, j *queue.Job) (any, error) {
		started <- struct{}{}
		<-ctx.Done()
		stopped <- ctx.Err()
		return nil, ctx.Err()
	}})
	b2 := *b
	b2.cfg.Workers = 1
	other := b2.start(t, nil) // answers the cancel; runs nothing of this type
	_ = worker
	r := submit(t, other, queue.Spec{})
	<-started
	if _, err := other.Cancel(context.Background(), "org1", "proj1", r.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-stopped:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("handler context ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the running handler's context was not cancelled")
	}
	time.Sleep(500 * time.Millisecond)
	rec := b.stored(t, r.ID)
	if rec.Status != jobs.Cancelled || rec.Error != "cancelled" {
		t.Fatalf("record %s error %q, want CANCELLED", rec.Status, rec.Error)
	}
}

func TestTimeoutFailsTheJob(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Backoff = []time.Duration{50 * time.Millisecond}
	b := setup(t, cfg)
	q := b.start(t, map[string]queue.Handler{"TEST": func(ctx context.Context, j *queue.Job) (any, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}})
	r := submit(t, q, queue.Spec{Timeout: 150 * time.Millisecond})
	rec := b.waitStatus(t, r.ID, jobs.Failed, 5*time.Second)
	if rec.Attempts != 2 || rec.Error != "timed out after 150ms" {
		t.Fatalf("record attempts %d error %q", rec.Attempts, rec.Error)
	}
}

func TestLongJobIsKeptAliveAndReportsProgress(t *testing.T) {
	t.Parallel()
	b := setup(t, testConfig()) // ack wait 1s
	evs := collectEvents(t, b.nats.Conn)
	mid := make(chan struct{})
	goOn := make(chan struct{})
	var runs atomic.Int32
	q := b.start(t, map[string]queue.Handler{"TEST": func(ctx context.Context, j *queue.Job) (any, error) {
		runs.Add(1)
		j.Progress(25)
		j.Progress(50)
		close(mid)
		<-goOn
		time.Sleep(2500 * time.Millisecond) // longer than the ack wait
		j.Progress(75)
		return nil, nil
	}})
	r := submit(t, q, queue.Spec{})
	<-mid
	got, err := q.Get(context.Background(), "org1", "proj1", r.ID)
	close(goOn)
	if err != nil || got.Progress != 50 || got.Status != jobs.Active {
		t.Fatalf("mid-run job: %v %s %d%%", err, got.Status, got.Progress)
	}
	b.waitStatus(t, r.ID, jobs.Completed, 10*time.Second)
	if runs.Load() != 1 {
		t.Fatalf("ran %d times: the long job was redelivered", runs.Load())
	}
	var seq []string
	waitFor(t, "the COMPLETED event", 5*time.Second, func() bool {
		seq = nil
		for _, e := range evs() {
			if e.JobID == r.ID {
				seq = append(seq, fmt.Sprintf("%s:%d", e.Status, e.Progress))
			}
		}
		return slices.Contains(seq, "COMPLETED:100")
	})
	want := []string{"WAITING:0", "ACTIVE:0", "ACTIVE:25", "ACTIVE:50", "ACTIVE:75", "COMPLETED:100"}
	if !slices.Equal(seq, want) {
		t.Fatalf("events %v, want %v", seq, want)
	}
}

func TestStatsListAndCleanup(t *testing.T) {
	t.Parallel()
	b := setup(t, testConfig())
	q := b.start(t, map[string]queue.Handler{
		"OK":   func(ctx context.Context, j *queue.Job) (any, error) { return nil, nil },
		"FAIL": func(ctx context.Context, j *queue.Job) (any, error) { return nil, bus.Permanent(errors.New("no")) },
	})
	var ids []string
	for i := range 5 {
		ids = append(ids, submit(t, q, queue.Spec{Type: "OK"}).ID)
		if i < 2 {
			ids = append(ids, submit(t, q, queue.Spec{Type: "FAIL"}).ID)
		}
	}
	submit(t, q, queue.Spec{Type: "OK", OrganizationID: "other", ProjectID: "p"})
	for _, id := range ids {
		waitFor(t, "finished", 15*time.Second, func() bool { return jobs.Terminal(b.stored(t, id).Status) })
	}
	ctx := context.Background()
	st, err := q.Stats(ctx, "org1", "proj1")
	if err != nil {
		t.Fatal(err)
	}
	if st.Total != 7 || st.ByStatus[jobs.Completed] != 5 || st.ByStatus[jobs.Failed] != 2 || st.ByType["OK"] != 5 || st.ByType["FAIL"] != 2 {
		t.Fatalf("stats %+v", st)
	}
	failed, total, err := q.List(ctx, jobstore.Query{OrganizationID: "org1", ProjectID: "proj1", Status: jobs.Failed, Limit: 10})
	if err != nil || total != 2 || len(failed) != 2 || failed[0].Type != "FAIL" {
		t.Fatalf("list failed: %v %d %+v", err, total, failed)
	}
	// Nothing is older than a day: nothing goes.
	if n, err := q.ClearCompleted(ctx, "org1", "proj1", 24*time.Hour); err != nil || n != 0 {
		t.Fatalf("clear with a day to keep: %d %v", n, err)
	}
	n, err := q.ClearCompleted(ctx, "org1", "proj1", 0)
	if err != nil || n != 5 {
		t.Fatalf("clear: %d %v, want the 5 completed", n, err)
	}
	st, _ = q.Stats(ctx, "org1", "proj1")
	if st.Total != 2 || st.ByStatus[jobs.Failed] != 2 {
		t.Fatalf("after clear: %+v (failed jobs are kept)", st)
	}
	other, _ := q.Stats(ctx, "other", "p")
	if other.Total != 1 {
		t.Fatalf("another tenant's jobs: %+v", other)
	}
}

// A job scheduled for later, cancelled and retried, keeps its schedule: it
// is DELAYED until its time, not run at once.
func TestRetriedScheduledJobKeepsItsSchedule(t *testing.T) {
	t.Parallel()
	b := setup(t, testConfig())
	q := b.start(t, map[string]queue.Handler{"TEST": func(context.Context, *queue.Job) (any, error) { return nil, nil }})
	at := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	r := submit(t, q, queue.Spec{RunAt: &at})
	if _, err := q.Cancel(context.Background(), "org1", "proj1", r.ID); err != nil {
		t.Fatal(err)
	}
	rr, err := q.Retry(context.Background(), "org1", "proj1", r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rr.Status != jobs.Delayed || rr.RunAt == nil || !rr.RunAt.Equal(at) {
		t.Fatalf("retried: %s run at %v, want DELAYED until %v", rr.Status, rr.RunAt, at)
	}
}
