package uploads_test

import (
	"context"
	"errors"
	"strings"
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
	up, err := uploads.Open(context.Background(), nb.JS, 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return up, nb
}

// dedupeWindow shortens the SYNC stream's dedupe window to d.
func dedupeWindow(t *testing.T, js jetstream.JetStream, d time.Duration) {
	t.Helper()
	ctx := context.Background()
	st, err := js.Stream(ctx, events.StreamSync)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	cfg.Duplicates = d
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
}

// received counts the received events stored for the tenant and product.
func received(t *testing.T, js jetstream.JetStream, p events.Product) uint64 {
	t.Helper()
	st, err := js.Stream(context.Background(), events.StreamSync)
	if err != nil {
		t.Fatal(err)
	}
	filter := "sync.v1.acme.web." + string(p) + ".received.*"
	info, err := st.Info(context.Background(), jetstream.WithSubjectFilter(filter))
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

func upload(key, payload string) uploads.Upload {
	return uploads.Upload{OrganizationID: "acme", ProjectID: "web", Product: events.Autopilot, KeyID: "k1", IdempotencyKey: key, Canonical: []byte(payload)}
}

// A retry long after JetStream's dedupe window still gets the first receipt,
// and does not put a second event on the stream.
func TestReplayAfterDedupeWindow(t *testing.T) {
	up, nb := setup(t)
	ctx := context.Background()
	dedupeWindow(t, nb.JS, 100*time.Millisecond)

	first, err := up.Accept(ctx, upload("runId:r1", `{"runId":"r1"}`))
	if err != nil || first.Replay {
		t.Fatalf("first accept: %+v %v", first, err)
	}
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
	oneUpload(t, up, nb.JS, 20)
}

// oneUpload makes n concurrent uploads under one key and checks that one
// is accepted, the rest are replays of it, one event is stored, and a
// different payload under the key is a conflict.
func oneUpload(t *testing.T, up *uploads.Uploads, js jetstream.JetStream, n int) {
	t.Helper()
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
	if _, err := up.Accept(context.Background(), upload("runId:same", `{"runId":"same","x":1}`)); !errors.Is(err, uploads.ErrConflict) {
		t.Errorf("another payload under the key: %v, want ErrConflict", err)
	}
	if got := received(t, js, events.Autopilot); got != 1 {
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

// An upload is made durable and remembered by one JetStream write: after
// it, the account holds one message (no idempotency bucket beside the
// stream), and the receipt endpoint's lookup finds the upload by it.
func TestOneWritePerUpload(t *testing.T) {
	up, nb := setup(t)
	ctx := context.Background()
	rc, err := up.Accept(ctx, upload("runId:one", `{"runId":"one"}`))
	if err != nil || rc.Replay {
		t.Fatalf("accept: %+v %v", rc, err)
	}
	var msgs uint64
	names := nb.JS.StreamNames(ctx)
	for name := range names.Name() {
		st, err := nb.JS.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		msgs += st.CachedInfo().State.Msgs
	}
	if names.Err() != nil {
		t.Fatal(names.Err())
	}
	if msgs != 1 {
		t.Errorf("%d messages in the account after one upload, want 1 (one write)", msgs)
	}
	rec, err := up.Lookup(ctx, "acme", "web", rc.UploadID)
	if err != nil || rec.Product != events.Autopilot || !rec.ReceivedAt.Equal(rc.ReceivedAt) || rec.PayloadHash != uploads.Hash([]byte(`{"runId":"one"}`)) {
		t.Errorf("lookup: %+v %v", rec, err)
	}
	if _, err := up.Lookup(ctx, "acme", "api", rc.UploadID); !errors.Is(err, uploads.ErrUnknown) {
		t.Errorf("lookup from another project: %v, want ErrUnknown", err)
	}
}

// After the idempotency TTL a key is free again: another payload under it
// is a new upload, not a conflict.
func TestKeyFreeAfterTTL(t *testing.T) {
	nb := natstest.Start(t)
	dedupeWindow(t, nb.JS, 100*time.Millisecond)
	const ttl = 300 * time.Millisecond
	up, err := uploads.Open(context.Background(), nb.JS, ttl)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first, err := up.Accept(ctx, upload("runId:t", `{"runId":"t"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Accept(ctx, upload("runId:t", `{"runId":"t","x":1}`)); !errors.Is(err, uploads.ErrConflict) {
		t.Fatalf("inside the TTL: %v, want ErrConflict", err)
	}
	time.Sleep(time.Until(first.ReceivedAt.Add(ttl + 50*time.Millisecond))) // the TTL itself is what is waited for
	again, err := up.Accept(ctx, upload("runId:t", `{"runId":"t","x":1}`))
	if err != nil || again.Replay || !again.ReceivedAt.After(first.ReceivedAt) {
		t.Fatalf("after the TTL: %+v %v, want a new upload", again, err)
	}
	if n := received(t, nb.JS, events.Autopilot); n != 2 {
		t.Errorf("%d received events, want 2", n)
	}
}

// The stream must keep received events as long as the TTL asks.
func TestOpenRefusesTTLBeyondStream(t *testing.T) {
	nb := natstest.Start(t)
	if _, err := uploads.Open(context.Background(), nb.JS, 31*24*time.Hour); err == nil || !strings.Contains(err.Error(), "IDEMPOTENCY_TTL") {
		t.Fatalf("Open with a TTL beyond the stream's max age: %v", err)
	}
}

// An upload an older version accepted (its record in the bucket it kept,
// its event published) is still a replay, or a conflict, after the upgrade.
func TestUploadsOfAnOlderVersionKeepTheirKeys(t *testing.T) {
	nb := natstest.Start(t)
	ctx := context.Background()
	kv, err := nb.JS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: uploads.LegacyBucket, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	id := uploads.UploadID("acme", "web", events.Autopilot, "runId:old")
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	if _, err := kv.Put(ctx, id, []byte(`{"uploadId":"`+id+`","organizationId":"acme","projectId":"web","product":"autopilot","payloadHash":"`+uploads.Hash([]byte(`{"runId":"old"}`))+`","receivedAt":"2026-12-03T10:00:00Z","published":true}`)); err != nil {
		t.Fatal(err)
	}
	up, err := uploads.Open(ctx, nb.JS, 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := up.Accept(ctx, upload("runId:old", `{"runId":"old"}`))
	if err != nil || !rc.Replay || rc.UploadID != id || !rc.ReceivedAt.Equal(at) {
		t.Fatalf("retry of an upload the older version accepted: %+v %v, want its first receipt", rc, err)
	}
	if _, err := up.Accept(ctx, upload("runId:old", `{"runId":"old","x":1}`)); !errors.Is(err, uploads.ErrConflict) {
		t.Fatalf("another payload under its key: %v, want ErrConflict", err)
	}
	if n := received(t, nb.JS, events.Autopilot); n != 0 {
		t.Errorf("%d received events published, want none", n)
	}
	if rc, err := up.Accept(ctx, upload("runId:new", `{"runId":"new"}`)); err != nil || rc.Replay {
		t.Fatalf("a new upload: %+v %v", rc, err)
	}
}
