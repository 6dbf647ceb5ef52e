package processor_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/jobs"
	"github.com/odavl/sync/libs/mongodb"
	"github.com/odavl/sync/libs/mongotest"
	"github.com/odavl/sync/libs/natstest"
	"github.com/odavl/sync/services/jobs/internal/jobstore"
	"github.com/odavl/sync/services/jobs/internal/processor"
	"github.com/odavl/sync/services/jobs/internal/results"
)

// A sync upload's job goes through the queue's record writer and publishes
// its lifecycle events like any queued job.
func TestSyncJobRecordsAndLifecycleEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	nb, store := f.nb, f.store
	rs, p := f.rs, f.p
	ictx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	p.UseInserter(results.NewInserter(ictx, rs))

	var mu sync.Mutex
	var got []string
	sub, err := nb.Conn.Subscribe(events.AllJobEvents, func(m *nats.Msg) {
		ev, _ := events.Decode(m.Data)
		var d events.JobStatusChanged
		_ = ev.DataAs(&d)
		mu.Lock()
		got = append(got, d.Status+"/"+ev.ID)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })

	// As the jobs service consumes uploads: a slow delivery is kept alive.
	f.consume(t, 100*time.Millisecond)

	ev := insightReceived("received-up_1", "up_1", "k")
	if _, err := bus.Publish(ctx, nb.JS, events.ReceivedSubject("o", "p", events.Insight, "up_1"), ev); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	var rec jobstore.Record
	for {
		rec, err = store.Get(ctx, "o", "p", "up_1")
		if err == nil && rec.Status == jobs.Completed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job record: %+v %v", rec, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if rec.Type != jobs.InsightAnalysis || rec.ResultID != "up_1" || rec.Attempts != 1 || rec.Progress != 100 {
		t.Fatalf("record %+v", rec)
	}
	if _, err := rs.Get(ctx, "o", "p", events.Insight, "up_1"); err != nil {
		t.Fatalf("result: %v", err)
	}
	for {
		mu.Lock()
		seq := slices.Clone(got)
		mu.Unlock()
		if slices.Contains(seq, "COMPLETED/up_1-COMPLETED-1") {
			if !slices.Contains(seq, "ACTIVE/up_1-ACTIVE-1") {
				t.Fatalf("events %v: no ACTIVE", seq)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events %v", seq)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A redelivery of an upload whose job completed and was cleared meanwhile
// (its ack was late, or it raced the first run) neither runs the job again
// nor brings its record back.
func TestRedeliveryAfterClearDoesNotRunTheUploadAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	nb, store, w := f.nb, f.store, f.w
	p := f.p

	ev := insightReceived("received-up_1", "up_1", "k")
	deliver := func(attempt int) {
		t.Helper()
		if err := p.Handle(ctx, bus.Delivery{Event: ev, Subject: events.ReceivedSubject("o", "p", events.Insight, "up_1"), Attempt: attempt, MaxAttempts: 4}); err != nil {
			t.Fatalf("delivery %d: %v", attempt, err)
		}
	}
	deliver(1)
	if err := f.proj.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := store.ClearCompleted(ctx, jobstore.Query{OrganizationID: "o", ProjectID: "p"}, time.Now()); err != nil || n != 1 {
		t.Fatalf("clear: %d %v", n, err)
	}
	deliver(2)
	w.Flush()

	if r, err := store.Get(ctx, "o", "p", "up_1"); !errors.Is(err, jobstore.ErrNotFound) {
		t.Fatalf("the cleared job is back: %+v %v", r, err)
	}
	byStatus, _, err := store.Counts(ctx, jobstore.Query{OrganizationID: "o", ProjectID: "p"})
	if err != nil || byStatus[jobs.Completed] != 0 || byStatus[jobs.Active] != 0 {
		t.Fatalf("after the redelivery: %v %v", byStatus, err)
	}
	stream, err := nb.JS.Stream(ctx, events.StreamJobs)
	if err != nil {
		t.Fatal(err)
	}
	// The completion's event is published (acknowledged) before Handle
	// returns: a second run would have left its own.
	m, err := stream.GetLastMsgForSubject(ctx, events.JobEventSubject("o", "p", jobs.Completed))
	if err != nil {
		t.Fatal(err)
	}
	if id := m.Header.Get(nats.MsgIdHdr); id != "up_1-COMPLETED-1" {
		t.Fatalf("last completion event %s: the upload ran again", id)
	}
}

// fixture is a processor over real embedded NATS and FerretDB.
type fixture struct {
	nb    *natstest.Bundle
	store *jobstore.Store
	rs    *results.Store
	w     *jobstore.Writer
	proj  *jobstore.Projection
	p     *processor.Processor
	log   *slog.Logger
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	nb := natstest.Start(t)
	mb := mongotest.Start(t)
	if err := mongodb.EnsureIndexes(ctx, mb.DB, append(results.Indexes(), jobstore.Indexes()...)); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := jobstore.New(mb.DB)
	w, err := jobstore.NewWriter(ctx, nb.JS, log, jobstore.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	proj, err := jobstore.StartProjection(ctx, nb.JS, store, log, jobstore.ProjectionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proj.Stop)
	rs := results.New(mb.DB)
	return &fixture{nb: nb, store: store, rs: rs, w: w, proj: proj, p: processor.New(log, nb.JS, rs, store, w, time.Now), log: log}
}

// consume runs the processor on uploads as the jobs service does (a slow
// delivery is kept alive), with one retry after backoff.
func (f *fixture) consume(t *testing.T, backoff time.Duration) {
	t.Helper()
	ctx := context.Background()
	cc := bus.ConsumerConfig{Stream: events.StreamSync, Durable: "t-sync", Filters: []string{events.AllReceived},
		Backoff: []time.Duration{backoff}, Workers: 4,
		Middleware: append(bus.Defaults(f.log, nil, nil), bus.KeepAlive(time.Minute))}
	cons, err := bus.EnsureConsumer(ctx, f.nb.JS, cc)
	if err != nil {
		t.Fatal(err)
	}
	loop, err := bus.Consume(ctx, f.log, cons, cc, f.p.Handle)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(loop.Stop)
}

// insightReceived is the received event of a one-issue Insight upload.
func insightReceived(eventID, uploadID, key string) events.Event {
	payload, _ := json.Marshal(events.InsightResult{OrganizationID: "o", ProjectID: "p", Timestamp: time.Now().UTC(), Detectors: []string{"eslint"},
		TotalIssues: 1, IssuesBySeverity: events.IssuesBySeverity{High: 1},
		Issues: []events.InsightIssue{{Detector: "eslint", Severity: "high", Message: "m", File: "a.ts", Line: 1, Column: 1}}})
	ev, _ := events.New(eventID, "/test", events.ReceivedType(events.Insight), time.Now(), "o", "p",
		events.Received{UploadID: uploadID, OrganizationID: "o", ProjectID: "p", Product: events.Insight, IdempotencyKey: key, ReceivedAt: time.Now().UTC(), Payload: payload})
	return ev
}
