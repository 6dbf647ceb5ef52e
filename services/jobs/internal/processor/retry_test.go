package processor_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/jobs"
	"github.com/odavl/sync/services/jobs/internal/jobstore"
	"github.com/odavl/sync/services/jobs/internal/queue"
	"github.com/odavl/sync/services/jobs/internal/results"
)

// An upload that failed because the store was unavailable through every
// attempt is not lost: a retry by hand processes it again, as the job's
// next generation, and its result lands.
func TestFailedUploadIsProcessedAgainByRetry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	nb, store, w := f.nb, f.store, f.w
	rs, p := f.rs, f.p
	var down atomic.Bool
	down.Store(true)
	var tries atomic.Int32
	p.UseInsert(func(ctx context.Context, r results.Result) error {
		tries.Add(1)
		if down.Load() {
			return errors.New("store unavailable")
		}
		return rs.Insert(ctx, r)
	})
	// The first backoff is also the ack wait of a delivery in hand, which
	// keep-alives extend every third of it: 50 ms left a redelivery of the
	// retried upload possible when the machine was loaded enough to delay
	// a keep-alive that long (seen once as "attempts 4" in make test).
	f.consume(t, 300*time.Millisecond)

	ev := insightReceived("up_r", "up_r", "key-r")
	if _, err := bus.Publish(ctx, nb.JS, events.ReceivedSubject("o", "p", events.Insight, "up_r"), ev); err != nil {
		t.Fatal(err)
	}
	waitRecord := func(what string, ok func(jobstore.Record) bool) jobstore.Record {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			w.Flush()
			rec, err := store.Get(ctx, "o", "p", "up_r")
			if err == nil && ok(rec) {
				return rec
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: record %+v %v", what, rec, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	failed := waitRecord("FAILED after both attempts", func(r jobstore.Record) bool { return r.Status == jobs.Failed })
	if failed.Attempts != 2 || tries.Load() != 2 {
		t.Fatalf("failed after %d attempts (%d inserts), want 2", failed.Attempts, tries.Load())
	}
	if _, err := rs.Get(ctx, "o", "p", events.Insight, "up_r"); err == nil {
		t.Fatal("a result exists for the failed upload")
	}

	down.Store(false)
	next, err := p.Retry(ctx, failed)
	if err != nil {
		t.Fatal(err)
	}
	if next.Status != jobs.Waiting || next.Generation != 1 {
		t.Fatalf("retry answered %s generation %d", next.Status, next.Generation)
	}
	done := waitRecord("COMPLETED after the retry", func(r jobstore.Record) bool { return r.Status == jobs.Completed })
	if done.Generation != 1 || done.Attempts != 3 || done.ResultID != "up_r" {
		t.Fatalf("after the retry: generation %d attempts %d result %q", done.Generation, done.Attempts, done.ResultID)
	}
	res, err := rs.Get(ctx, "o", "p", events.Insight, "up_r")
	if err != nil || res.IdempotencyKey != "key-r" {
		t.Fatalf("result after the retry: %+v %v", res, err)
	}
	if _, err := p.Retry(ctx, done); !errors.Is(err, queue.ErrNotRetryable) {
		t.Fatalf("retry of a completed upload: %v", err)
	}
}
