package bus_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/natstest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type attempt struct {
	n  int
	at time.Time
}

// TestConsumeMapsResults checks the one consumer loop: nil acks, a Permanent
// error terminates after one delivery, any other error is redelivered after
// the backoff, and the last delivery is marked Last.
func TestConsumeMapsResults(t *testing.T) {
	t.Parallel()
	nb := natstest.Start(t)
	ctx := context.Background()
	cfg := bus.ConsumerConfig{
		Stream: events.StreamSync, Durable: "test", Filters: []string{events.AllReceived},
		Backoff: []time.Duration{100 * time.Millisecond, 300 * time.Millisecond}, Workers: 2,
	}
	cons, err := bus.EnsureConsumer(ctx, nb.JS, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string][]attempt{}
	last := map[string]bool{}
	done := make(chan struct{}, 10)
	loop, err := bus.Consume(ctx, quiet, cons, cfg, func(_ context.Context, d bus.Delivery) error {
		mu.Lock()
		seen[d.Event.ID] = append(seen[d.Event.ID], attempt{d.Attempt, time.Now()})
		if d.Last() {
			last[d.Event.ID] = true
		}
		mu.Unlock()
		defer func() { done <- struct{}{} }()
		switch d.Event.ID {
		case "ok":
			return nil
		case "permanent":
			return bus.Permanent(errors.New("bad payload"))
		default:
			return errors.New("transient")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer loop.Stop()
	for _, id := range []string{"ok", "permanent", "flaky"} {
		ev, _ := events.New(id, "/test", events.TypeInsightReceived, time.Now(), "o", "p", map[string]string{})
		if _, err := bus.Publish(ctx, nb.JS, events.ReceivedSubject("o", "p", events.Insight, id), ev); err != nil {
			t.Fatal(err)
		}
	}
	// ok: 1, permanent: 1, flaky: 3 (MaxDeliver = len(backoff)+1).
	for i := 0; i < 5; i++ {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d deliveries", i)
		}
	}
	// No further delivery can come once the consumer holds nothing pending:
	// every message acked, terminated or past its MaxDeliver.
	natstest.Settled(t, cons)
	mu.Lock()
	defer mu.Unlock()
	if n := len(seen["ok"]); n != 1 {
		t.Errorf("ok delivered %d times, want 1", n)
	}
	if n := len(seen["permanent"]); n != 1 {
		t.Errorf("permanent delivered %d times, want 1", n)
	}
	fl := seen["flaky"]
	if len(fl) != 3 {
		t.Fatalf("flaky delivered %d times, want 3", len(fl))
	}
	for i, want := range []time.Duration{100 * time.Millisecond, 300 * time.Millisecond} {
		if gap := fl[i+1].at.Sub(fl[i].at); gap < want {
			t.Errorf("redelivery %d after %v, want at least %v", i+1, gap, want)
		}
	}
	if !last["flaky"] || last["ok"] {
		t.Errorf("Last() = %v, want only the third flaky delivery", last)
	}
}

// TestPublishDedupesByEventID checks that a second publish of one event id is
// dropped by JetStream.
func TestPublishDedupesByEventID(t *testing.T) {
	t.Parallel()
	nb := natstest.Start(t)
	ev, _ := events.New("same-id", "/test", events.TypeInsightReceived, time.Now(), "o", "p", map[string]string{})
	subj := events.ReceivedSubject("o", "p", events.Insight, "up_same")
	a1, err := bus.Publish(context.Background(), nb.JS, subj, ev)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := bus.Publish(context.Background(), nb.JS, subj, ev)
	if err != nil {
		t.Fatal(err)
	}
	if !a2.Duplicate || a2.Sequence != a1.Sequence {
		t.Errorf("second publish: duplicate=%v seq=%d, want duplicate of seq %d", a2.Duplicate, a2.Sequence, a1.Sequence)
	}
}

// TestKeepAliveHoldsASlowDelivery checks that a handler that outlasts the
// ack wait (the first backoff) keeps its message for up to KeepAlive: it is
// not redelivered to another worker while it runs; a stuck one is, after.
func TestKeepAliveHoldsASlowDelivery(t *testing.T) {
	t.Parallel()
	nb := natstest.Start(t)
	ctx := context.Background()
	cfg := bus.ConsumerConfig{
		Stream: events.StreamSync, Durable: "test-keepalive", Filters: []string{events.AllReceived},
		Backoff: []time.Duration{500 * time.Millisecond, 500 * time.Millisecond}, Workers: 4, KeepAlive: 4 * time.Second,
	}
	cons, err := bus.EnsureConsumer(ctx, nb.JS, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string][]int{}
	loop, err := bus.Consume(ctx, quiet, cons, cfg, func(ctx context.Context, d bus.Delivery) error {
		mu.Lock()
		seen[d.Event.ID] = append(seen[d.Event.ID], d.Attempt)
		mu.Unlock()
		wait := 2 * time.Second // 4 ack waits, well inside KeepAlive
		if d.Event.ID == "stuck" && d.Attempt == 1 {
			wait = 8 * time.Second
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer loop.Stop()
	for _, id := range []string{"slow", "stuck"} {
		ev, _ := events.New(id, "/test", events.TypeInsightReceived, time.Now(), "o", "p", map[string]string{})
		if _, err := bus.Publish(ctx, nb.JS, events.ReceivedSubject("o", "p", events.Insight, id), ev); err != nil {
			t.Fatal(err)
		}
	}
	// The stuck delivery is handed out again once KeepAlive is over; then
	// everything is acked, and nothing more can come.
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(seen["stuck"])
		mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the stuck delivery was never handed out again")
		}
		time.Sleep(10 * time.Millisecond)
	}
	natstest.Settled(t, cons)
	mu.Lock()
	defer mu.Unlock()
	if got := seen["slow"]; len(got) != 1 {
		t.Errorf("slow delivery handled as attempts %v, want only 1", got)
	}
	if got := seen["stuck"]; len(got) < 2 {
		t.Errorf("stuck delivery handled as attempts %v, want a redelivery once KeepAlive is over", got)
	}
}
