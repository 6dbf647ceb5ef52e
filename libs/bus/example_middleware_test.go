package bus_test

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/events"
)

// A consumer runs the default middleware (tracing, metrics, logging,
// recovery) and keeps its deliveries alive for up to a minute of work.
func ExampleDefaults() {
	ctx := context.Background()
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	metrics := bus.NewMetrics(prometheus.NewRegistry())
	var js jetstream.JetStream // from jetstream.New(nc)

	cc := bus.ConsumerConfig{
		Stream: events.StreamSync, Durable: "example", Filters: []string{events.AllReceived},
		Backoff: []time.Duration{2 * time.Second, 4 * time.Second}, Workers: 8,
		Middleware: append(bus.Defaults(log, metrics, nil), bus.KeepAlive(time.Minute)),
	}
	metrics.Start(cc.Durable)
	cons, err := bus.EnsureConsumer(ctx, js, cc)
	if err != nil {
		return
	}
	loop, err := bus.Consume(ctx, log, cons, cc, func(ctx context.Context, d bus.Delivery) error {
		// ctx carries the consumer span: what is published with it joins the trace.
		return nil
	})
	if err != nil {
		return
	}
	defer loop.Stop()
}
