package jobs_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/mongotest"
	"github.com/odavl/sync/libs/natstest"
	"github.com/odavl/sync/services/jobs"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type bundle struct {
	nats  *natstest.Bundle
	mongo *mongotest.Bundle
}

func setup(t *testing.T) bundle {
	t.Helper()
	return bundle{nats: natstest.Start(t), mongo: mongotest.Start(t)}
}

// start runs a jobs service until the returned stop is called.
func (b bundle) start(t *testing.T) (stop func()) {
	t.Helper()
	cfg := jobs.DefaultConfig()
	cfg.Backoff = []time.Duration{50 * time.Millisecond}
	cfg.DataDir = t.TempDir()
	svc, err := jobs.New(quiet, b.nats.Conn, b.mongo.DB, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for !svc.Ready() {
		select {
		case err := <-done:
			t.Fatalf("jobs service stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("jobs service not ready")
		}
		time.Sleep(2 * time.Millisecond)
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("jobs service: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

func received(t *testing.T, eventID, uploadID string) events.Event {
	t.Helper()
	payload, _ := json.Marshal(map[string]any{
		"organizationId": "acme", "projectId": "web", "timestamp": "2026-11-30T10:00:00Z",
		"detectors": []string{"eslint"}, "totalIssues": 1,
		"issuesBySeverity": map[string]int{"critical": 0, "high": 1, "medium": 0, "low": 0},
		"issues":           []map[string]any{{"detector": "eslint", "severity": "high", "message": "x", "file": "a.ts", "line": 1, "column": 1}},
	})
	now := time.Now().UTC()
	ev, err := events.New(eventID, "/test", events.TypeInsightReceived, now, "acme", "web", events.Received{
		UploadID: uploadID, OrganizationID: "acme", ProjectID: "web", Product: events.Insight,
		IdempotencyKey: "k", ReceivedAt: now, Payload: payload,
	})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func (b bundle) publish(t *testing.T, ev events.Event) {
	t.Helper()
	var rc events.Received
	if err := ev.DataAs(&rc); err != nil || rc.UploadID == "" {
		rc.UploadID = ev.ID // a bad event still needs a subject
	}
	if _, err := bus.Publish(context.Background(), b.nats.JS, events.ReceivedSubject("acme", "web", events.Insight, rc.UploadID), ev); err != nil {
		t.Fatal(err)
	}
}

func (b bundle) count(t *testing.T, coll string, filter bson.D) int64 {
	t.Helper()
	n, err := b.mongo.DB.Collection(coll).CountDocuments(context.Background(), filter)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (b bundle) waitCount(t *testing.T, coll string, filter bson.D, want int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for b.count(t, coll, filter) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d documents, want %d", coll, b.count(t, coll, filter), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// An upload published while the jobs service is down is stored once it is
// back, exactly once, with its job COMPLETED and a processed event.
func TestUploadPublishedWhileJobsServiceDownLandsOnceAfterRestart(t *testing.T) {
	t.Parallel()
	b := setup(t)
	stop := b.start(t)
	stop()

	b.publish(t, received(t, "up_1", "up_1"))
	time.Sleep(200 * time.Millisecond)
	if n := b.count(t, "insight_results", bson.D{}); n != 0 {
		t.Fatalf("%d results stored while the service was down", n)
	}

	b.start(t)
	b.waitCount(t, "insight_results", bson.D{{Key: "_id", Value: "up_1"}}, 1)
	b.waitCount(t, "jobs", bson.D{{Key: "_id", Value: "up_1"}, {Key: "status", Value: "COMPLETED"}}, 1)
	time.Sleep(200 * time.Millisecond)
	if n := b.count(t, "insight_results", bson.D{}); n != 1 {
		t.Errorf("%d results, want exactly 1", n)
	}
	info, err := b.nats.JS.Stream(context.Background(), events.StreamSync)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := info.GetLastMsgForSubject(context.Background(), events.ProcessedSubject("acme", "web", events.Insight))
	if err != nil {
		t.Fatalf("no processed event: %v", err)
	}
	ev, err := events.Decode(msg.Data)
	if err != nil || ev.Type != events.TypeInsightProcessed {
		t.Errorf("processed event %+v, %v", ev, err)
	}
}

// A duplicate publish of one event id — inside JetStream's dedupe window, and
// a re-publish of the same upload under another event id, as after the
// window — stores one document.
func TestDuplicatePublishStoresOneDocument(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.start(t)
	b.publish(t, received(t, "up_2", "up_2"))
	b.publish(t, received(t, "up_2", "up_2"))
	b.publish(t, received(t, "up_2-again", "up_2"))
	b.waitCount(t, "insight_results", bson.D{{Key: "_id", Value: "up_2"}}, 1)
	time.Sleep(300 * time.Millisecond)
	if n := b.count(t, "insight_results", bson.D{}); n != 1 {
		t.Errorf("%d results, want 1", n)
	}
	if n := b.count(t, "jobs", bson.D{}); n != 1 {
		t.Errorf("%d job records, want 1", n)
	}
}
