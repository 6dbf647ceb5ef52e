package bus_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/natstest"
)

// TestKeepAliveHoldsASlowDelivery checks that a handler that outlasts the
// ack wait (the first backoff) keeps its message for up to KeepAlive: it is
// not redelivered to another worker while it runs; a stuck one is, after.
func TestKeepAliveHoldsASlowDelivery(t *testing.T) {
	t.Parallel()
	nb := natstest.Start(t)
	ctx := context.Background()
	cfg := bus.ConsumerConfig{
		Stream: events.StreamSync, Durable: "test-keepalive", Filters: []string{"sync.v1.*.*.*.received"},
		Backoff: []time.Duration{500 * time.Millisecond, 500 * time.Millisecond}, Workers: 4,
		Middleware: []bus.Middleware{bus.KeepAlive(4 * time.Second)},
	}
	var mu sync.Mutex
	seen := map[string][]int{}
	cons := consume(t, nb, cfg, func(ctx context.Context, d bus.Delivery) error {
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
	for _, id := range []string{"slow", "stuck"} {
		publish(ctx, t, nb, id)
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
	settled(t, cons)
	mu.Lock()
	defer mu.Unlock()
	if got := seen["slow"]; len(got) != 1 {
		t.Errorf("slow delivery handled as attempts %v, want only 1", got)
	}
	if got := seen["stuck"]; len(got) < 2 {
		t.Errorf("stuck delivery handled as attempts %v, want a redelivery once KeepAlive is over", got)
	}
}
