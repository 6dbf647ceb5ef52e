package bus_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/natstest"
)

// TestRecoverTurnsAPanicIntoARetry checks that a handler's panic is an
// error (naming the panic) that the loop retries: the next delivery is
// handled and acknowledged, and the process lives on.
func TestRecoverTurnsAPanicIntoARetry(t *testing.T) {
	t.Parallel()
	err := bus.Recover()(func(context.Context, bus.Delivery) error { panic("boom") })(context.Background(), bus.Delivery{})
	if err == nil || !strings.Contains(err.Error(), "handler panic: boom") || bus.IsPermanent(err) {
		t.Fatalf("Recover returned %v, want a retryable error naming the panic", err)
	}

	nb := natstest.Start(t)
	ctx := context.Background()
	cfg := bus.ConsumerConfig{
		Stream: events.StreamSync, Durable: "test-recover", Filters: []string{events.AllReceived},
		Backoff: []time.Duration{50 * time.Millisecond}, Workers: 1, Middleware: []bus.Middleware{bus.Recover()},
	}
	acked := make(chan int, 1)
	cons := consume(t, nb, cfg, func(_ context.Context, d bus.Delivery) error {
		if d.Attempt == 1 {
			panic("first attempt fails")
		}
		acked <- d.Attempt
		return nil
	})
	publish(ctx, t, nb, "panics-once")
	select {
	case n := <-acked:
		if n != 2 {
			t.Fatalf("handled at attempt %d, want 2", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the delivery that panicked was never handled again")
	}
	natstest.Settled(t, cons)
}
