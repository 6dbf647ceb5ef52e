package uploads_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/natstest"
	"github.com/odavl/sync/services/ingest/internal/uploads"
)

func setup(t *testing.T) (*uploads.Uploads, *natstest.Bundle) {
	t.Helper()
	nb := natstest.Start(t)
	up, err := uploads.Open(context.Background(), nb.JS, 30*24*time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Wait)
	return up, nb
}

// received counts the received events stored for the tenant and product.
func received(t *testing.T, js jetstream.JetStream, p events.Product) uint64 {
	t.Helper()
	st, err := js.Stream(context.Background(), events.StreamSync)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background(), jetstream.WithSubjectFilter(events.ReceivedSubject("acme", "web", p)))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[events.ReceivedSubject("acme", "web", p)]
}

func upload(key, payload string) uploads.Upload {
	return uploads.Upload{OrganizationID: "acme", ProjectID: "web", Product: events.Autopilot, KeyID: "k1", IdempotencyKey: key, Canonical: []byte(payload)}
}

// A retry long after JetStream's dedupe window still gets the first receipt,
// and does not put a second event on the stream.
func TestReplayAfterDedupeWindow(t *testing.T) {
	up, nb := setup(t)
	ctx := context.Background()
	st, err := nb.JS.Stream(ctx, events.StreamSync)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	cfg.Duplicates = 100 * time.Millisecond
	if _, err := nb.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}

	first, err := up.Accept(ctx, upload("runId:r1", `{"runId":"r1"}`))
	if err != nil || first.Replay {
		t.Fatalf("first accept: %+v %v", first, err)
	}
	up.Wait()
	time.Sleep(400 * time.Millisecond) // well past the dedupe window
	again, err := up.Accept(ctx, upload("runId:r1", `{"runId":"r1"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !again.Replay || again.EventID != first.EventID || !again.ReceivedAt.Equal(first.ReceivedAt) {
		t.Errorf("replay %+v, want the first receipt %+v marked replay", again, first)
	}
	if n := received(t, nb.JS, events.Autopilot); n != 1 {
		t.Errorf("%d received events on the stream, want 1", n)
	}
	if _, err := up.Accept(ctx, upload("runId:r1", `{"runId":"r1","x":1}`)); !errors.Is(err, uploads.ErrConflict) {
		t.Errorf("other payload under the key: %v, want ErrConflict", err)
	}
}

// Concurrent uploads with one key: one is accepted, the rest are replays of
// it, and one event is stored.
func TestConcurrentSameKey(t *testing.T) {
	up, nb := setup(t)
	const n = 20
	var wg sync.WaitGroup
	rcs := make([]uploads.Receipt, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rcs[i], errs[i] = up.Accept(context.Background(), upload("runId:same", `{"runId":"same"}`))
		}()
	}
	wg.Wait()
	fresh := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("upload %d: %v", i, errs[i])
		}
		if !rcs[i].Replay {
			fresh++
		}
		if rcs[i].EventID != rcs[0].EventID || !rcs[i].ReceivedAt.Equal(rcs[0].ReceivedAt) {
			t.Errorf("receipt %d %+v differs from %+v", i, rcs[i], rcs[0])
		}
	}
	if fresh != 1 {
		t.Errorf("%d uploads not marked replay, want 1", fresh)
	}
	if got := received(t, nb.JS, events.Autopilot); got != 1 {
		t.Errorf("%d received events on the stream, want 1", got)
	}
}

// Upload ids depend on tenant, product and key only.
func TestUploadID(t *testing.T) {
	a := uploads.UploadID("acme", "web", events.Insight, "key:1")
	for _, other := range []string{
		uploads.UploadID("acme", "api", events.Insight, "key:1"),
		uploads.UploadID("acme", "web", events.Guardian, "key:1"),
		uploads.UploadID("acme", "web", events.Insight, "key:2"),
		uploads.UploadID("acm", "eweb", events.Insight, "key:1"),
	} {
		if other == a {
			t.Errorf("id %s shared by two different uploads", a)
		}
	}
	if a != uploads.UploadID("acme", "web", events.Insight, "key:1") {
		t.Error("upload id not stable")
	}
}
