package bus_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

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
	var mu sync.Mutex
	seen := map[string][]attempt{}
	last := map[string]bool{}
	done := make(chan struct{}, 10)
	cons := consume(t, nb, cfg, func(_ context.Context, d bus.Delivery) error {
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
	for _, id := range []string{"ok", "permanent", "flaky"} {
		publish(ctx, t, nb, id)
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
	subj := events.ReceivedSubject("o", "p", events.Insight, "same-id")
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

// consume runs h on a consumer made from cfg until the test ends.
func consume(t *testing.T, nb *natstest.Bundle, cfg bus.ConsumerConfig, h bus.Handler) jetstream.Consumer {
	t.Helper()
	ctx := context.Background()
	cons, err := bus.EnsureConsumer(ctx, nb.JS, cfg)
	if err != nil {
		t.Fatal(err)
	}
	loop, err := bus.Consume(ctx, quiet, cons, cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(loop.Stop)
	return cons
}

// publish publishes an Insight received event with id, in ctx's trace.
func publish(ctx context.Context, t *testing.T, nb *natstest.Bundle, id string) {
	t.Helper()
	ev, _ := events.New(id, "/test", events.TypeInsightReceived, time.Now(), "o", "p", map[string]string{})
	if _, err := bus.Publish(ctx, nb.JS, events.ReceivedSubject("o", "p", events.Insight, id), ev); err != nil {
		t.Fatal(err)
	}
}
