package processor_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/events"
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
	nb, store, w, log := f.nb, f.store, f.w, f.log
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
	cc := bus.ConsumerConfig{Stream: events.StreamSync, Durable: "t-sync", Filters: []string{events.AllReceived},
		Backoff: []time.Duration{50 * time.Millisecond}, Workers: 4, KeepAlive: time.Minute}
	cons, err := bus.EnsureConsumer(ctx, nb.JS, cc)
	if err != nil {
		t.Fatal(err)
	}
	loop, err := bus.Consume(ctx, log, cons, cc, p.Handle)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(loop.Stop)

	payload, _ := json.Marshal(events.InsightResult{OrganizationID: "o", ProjectID: "p", Timestamp: time.Now().UTC(), Detectors: []string{"eslint"},
		TotalIssues: 1, IssuesBySeverity: events.IssuesBySeverity{High: 1},
		Issues: []events.InsightIssue{{Detector: "eslint", Severity: "high", Message: "m", File: "a.ts", Line: 1, Column: 1}}})
	ev, _ := events.New("up_r", "/test", events.ReceivedType(events.Insight), time.Now(), "o", "p",
		events.Received{UploadID: "up_r", OrganizationID: "o", ProjectID: "p", Product: events.Insight, IdempotencyKey: "key-r", ReceivedAt: time.Now().UTC(), Payload: payload})
	if _, err := bus.Publish(ctx, nb.JS, events.ReceivedSubject("o", "p", events.Insight), ev); err != nil {
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
	failed := waitRecord("FAILED after both attempts", func(r jobstore.Record) bool { return r.Status == jobstore.Failed })
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
	if next.Status != jobstore.Waiting || next.Generation != 1 {
		t.Fatalf("retry answered %s generation %d", next.Status, next.Generation)
	}
	done := waitRecord("COMPLETED after the retry", func(r jobstore.Record) bool { return r.Status == jobstore.Completed })
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
