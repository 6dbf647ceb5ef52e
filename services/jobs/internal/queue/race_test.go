package queue_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/odavl/sync/libs/jobs"
	"github.com/odavl/sync/services/jobs/internal/queue"
)

// A job is readable at every moment: while it is submitted, cancelled,
// retried, run and moved from the live bucket to the store. Readers poll
// every job all along; none may ever answer "not found", nor an older
// state once a newer one was seen.
func TestJobIsReadableThroughCancelRetryAndCompletion(t *testing.T) {
	t.Parallel()
	b := setup(t, testConfig())
	q := b.start(t, map[string]queue.Handler{"TEST": func(ctx context.Context, j *queue.Job) (any, error) {
		return map[string]string{"ok": j.JobID}, nil
	}})
	ctx := context.Background()
	const n = 20
	var (
		mu    sync.Mutex
		ids   []string
		done  atomic.Bool
		wg    sync.WaitGroup
		fails atomic.Int64
	)
	// Readers: every known job, over and over; a miss is a job the user
	// sees vanish.
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !done.Load() {
				mu.Lock()
				cur := append([]string(nil), ids...)
				mu.Unlock()
				for _, id := range cur {
					if _, err := q.Get(ctx, "org1", "proj1", id); err != nil {
						if fails.Add(1) <= 5 {
							t.Errorf("get %s: %v", id, err)
						}
					}
				}
			}
		}()
	}
	// Load: quick jobs finishing all along keep the writer's batches busy.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !done.Load() {
			r, err := q.Submit(ctx, queue.Spec{Type: "TEST", OrganizationID: "org1", ProjectID: "proj1"})
			if err != nil {
				t.Errorf("submit: %v", err)
				return
			}
			mu.Lock()
			ids = append(ids, r.ID)
			mu.Unlock()
			time.Sleep(2 * time.Millisecond)
		}
	}()
	var retried []string
	for range n {
		// Scheduled a moment later: the retry keeps the schedule, so the
		// job completes once its time comes.
		later := time.Now().Add(300 * time.Millisecond)
		r := submit(t, q, queue.Spec{RunAt: &later, Durable: true})
		mu.Lock()
		ids = append(ids, r.ID)
		mu.Unlock()
		if c, err := q.Cancel(ctx, "org1", "proj1", r.ID); err != nil || c.Status != jobs.Cancelled {
			t.Fatalf("cancel %s: %v %s", r.ID, err, c.Status)
		}
		rr, err := q.Retry(ctx, "org1", "proj1", r.ID)
		if err != nil {
			t.Fatalf("retry of a cancelled job %s: %v", r.ID, err)
		}
		if rr.Generation != 1 || jobs.Terminal(rr.Status) && rr.Status != jobs.Completed {
			t.Fatalf("retried job: generation %d status %s", rr.Generation, rr.Status)
		}
		g, err := q.Get(ctx, "org1", "proj1", r.ID)
		if err != nil || g.Generation != 1 {
			t.Fatalf("get of a retried job %s: %v generation %d", r.ID, err, g.Generation)
		}
		retried = append(retried, r.ID)
	}
	for _, id := range retried {
		waitFor(t, id+" completed", 10*time.Second, func() bool {
			g, err := q.Get(ctx, "org1", "proj1", id)
			return err == nil && g.Status == jobs.Completed && g.Generation == 1
		})
	}
	done.Store(true)
	wg.Wait()
	if f := fails.Load(); f > 0 {
		t.Fatalf("%d reads answered a known job as not found", f)
	}
}

// A job cancelled while running and retried at once: the cancelled run,
// ending late, must not wipe out the retried generation's record.
func TestLateEndOfACancelledRunKeepsItsRetry(t *testing.T) {
	t.Parallel()
	b := setup(t, testConfig())
	ended := make(chan struct{})
	started := make(chan int, 2)
	release := make(chan struct{})
	q := b.start(t, map[string]queue.Handler{"TEST": func(ctx context.Context, j *queue.Job) (any, error) {
		started <- j.Attempt
		if j.Attempt == 1 {
			<-ctx.Done()
			time.Sleep(300 * time.Millisecond) // slow to notice its cancel
			close(ended)
			return nil, ctx.Err()
		}
		<-release
		return nil, nil
	}})
	defer close(release)
	ctx := context.Background()
	r := submit(t, q, queue.Spec{Durable: true})
	<-started
	if _, err := q.Cancel(ctx, "org1", "proj1", r.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Retry(ctx, "org1", "proj1", r.ID); err != nil {
		t.Fatalf("retry of a cancelled job: %v", err)
	}
	<-ended
	time.Sleep(200 * time.Millisecond)
	for range 10 {
		g, err := q.Get(ctx, "org1", "proj1", r.ID)
		if err != nil || g.Generation != 1 || jobs.Terminal(g.Status) {
			t.Fatalf("the retried job reads %v generation %d %s, want generation 1 waiting or running", err, g.Generation, g.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
