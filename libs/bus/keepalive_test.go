package bus_test

import (
	"context"
	"slices"
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
		Stream: events.StreamSync, Durable: "test-keepalive", Filters: []string{events.AllReceived},
		Backoff: []time.Duration{500 * time.Millisecond, 500 * time.Millisecond}, Workers: 4,
		Middleware: []bus.Middleware{bus.KeepAlive(4 * time.Second)},
	}
	seen := &attempts{}
	cons := consume(t, nb, cfg, seen.handler(func(d bus.Delivery) time.Duration {
		if d.Event.ID == "stuck" && d.Attempt == 1 {
			return 8 * time.Second
		}
		return 2 * time.Second // 4 ack waits, well inside KeepAlive
	}))
	for _, id := range []string{"slow", "stuck"} {
		publish(ctx, t, nb, id)
	}
	// The stuck delivery is handed out again once KeepAlive is over; then
	// everything is acked, and nothing more can come.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if len(seen.of("stuck")) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the stuck delivery was never handed out again")
		}
		time.Sleep(10 * time.Millisecond)
	}
	natstest.Settled(t, cons)
	if got := seen.of("slow"); len(got) != 1 {
		t.Errorf("slow delivery handled as attempts %v, want only 1", got)
	}
	if got := seen.of("stuck"); len(got) < 2 {
		t.Errorf("stuck delivery handled as attempts %v, want a redelivery once KeepAlive is over", got)
	}
}

// TestKeepAliveHoldsADeliveryWaitingForAWorker checks that a delivery in
// hand while every worker is busy is kept alive too: the ack wait runs from
// the delivery, so without it JetStream would hand the waiting message out
// again (one more attempt than happened).
func TestKeepAliveHoldsADeliveryWaitingForAWorker(t *testing.T) {
	t.Parallel()
	nb := natstest.Start(t)
	ctx := context.Background()
	cfg := bus.ConsumerConfig{
		Stream: events.StreamSync, Durable: "test-keepalive-waiting", Filters: []string{events.AllReceived},
		Backoff: []time.Duration{500 * time.Millisecond}, Workers: 1,
		Middleware: []bus.Middleware{bus.KeepAlive(10 * time.Second)},
	}
	seen := &attempts{}
	// 4 ack waits each: the other message waits as long.
	cons := consume(t, nb, cfg, seen.handler(func(bus.Delivery) time.Duration { return 2 * time.Second }))
	for _, id := range []string{"first", "second"} {
		publish(ctx, t, nb, id)
	}
	natstest.Settled(t, cons)
	for _, id := range []string{"first", "second"} {
		if got := seen.of(id); len(got) != 1 {
			t.Errorf("%s handled as attempts %v, want only 1", id, got)
		}
	}
}

// attempts records the attempts at which each event was handled.
type attempts struct {
	mu   sync.Mutex
	seen map[string][]int
}

// handler records each delivery, then works for work(d), or until stopped.
func (a *attempts) handler(work func(bus.Delivery) time.Duration) bus.Handler {
	return func(ctx context.Context, d bus.Delivery) error {
		a.mu.Lock()
		if a.seen == nil {
			a.seen = map[string][]int{}
		}
		a.seen[d.Event.ID] = append(a.seen[d.Event.ID], d.Attempt)
		a.mu.Unlock()
		select {
		case <-time.After(work(d)):
		case <-ctx.Done():
		}
		return nil
	}
}

// of is the attempts at which id was handled so far.
func (a *attempts) of(id string) []int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.seen[id])
}
