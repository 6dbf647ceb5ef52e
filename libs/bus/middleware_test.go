package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/natstest"
)

// TestChainOrder checks that the first middleware is the outermost.
func TestChainOrder(t *testing.T) {
	t.Parallel()
	var got []string
	mw := func(name string) bus.Middleware {
		return func(next bus.Handler) bus.Handler {
			return func(ctx context.Context, d bus.Delivery) error {
				got = append(got, name+">")
				err := next(ctx, d)
				got = append(got, "<"+name)
				return err
			}
		}
	}
	h := bus.Chain(func(context.Context, bus.Delivery) error { got = append(got, "h"); return nil }, mw("a"), mw("b"))
	_ = h(context.Background(), bus.Delivery{})
	if diff := cmp.Diff([]string{"a>", "b>", "h", "<b", "<a"}, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

// TestMiddlewareSeesEveryDelivery checks that the consumer's middleware
// wraps every delivery with the consumer's details, a message that is not
// an event included (terminated without calling the handler).
func TestMiddlewareSeesEveryDelivery(t *testing.T) {
	t.Parallel()
	nb := natstest.Start(t)
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	seen := make(chan bus.Delivery, 4)
	spy := func(next bus.Handler) bus.Handler {
		return func(ctx context.Context, d bus.Delivery) error {
			err := next(ctx, d)
			d.Msg = nil
			seen <- d
			return err
		}
	}
	cfg := bus.ConsumerConfig{
		Stream: events.StreamSync, Durable: "test-every", Filters: []string{events.AllReceived},
		Backoff: []time.Duration{time.Second, 3 * time.Second}, Workers: 1,
		Middleware: append(bus.Defaults(quiet, bus.NewMetrics(reg), nil), spy),
	}
	handled := 0
	cons := consume(t, nb, cfg, func(context.Context, bus.Delivery) error { handled++; return nil })
	if _, err := nb.JS.Publish(ctx, "sync.v1.o.p.insight.received.u1", []byte("not an event")); err != nil {
		t.Fatal(err)
	}
	publish(ctx, t, nb, "fine")
	got := map[string]bus.Delivery{} // by event id: "" is the message that is not an event
	for len(got) < 2 {
		select {
		case d := <-seen:
			got[d.Event.ID] = d
		case <-time.After(10 * time.Second):
			t.Fatalf("middleware saw %d deliveries, want 2", len(got))
		}
	}
	natstest.Settled(t, cons)
	for _, id := range []string{"", "fine"} {
		d, ok := got[id]
		want := "sync.v1.o.p.insight.received.u1" // the message that is not an event
		if id != "" {
			want = events.ReceivedSubject("o", "p", events.Insight, id)
		}
		if !ok || d.Consumer != "test-every" || d.Subject != want || d.Attempt != 1 ||
			d.MaxAttempts != 3 || d.RetryIn != time.Second || d.AckWait != time.Second || d.Received.IsZero() {
			t.Errorf("delivery %q: %+v (seen: %v)", id, d, ok)
		}
	}
	if handled != 1 {
		t.Errorf("handler called %d times, want 1 (the event only)", handled)
	}
	if n := value(t, reg, "odavl_sync_consumer_handled_total", "test-every", bus.OutcomeTerm); n != 1 {
		t.Errorf("terminated deliveries measured: %v, want 1 (the message that is not an event)", n)
	}
}
