package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/natstest"
)

// TestTraceJoinsThePublishersTrace checks that the trace context goes from
// a publisher's span through the message's headers to the consumer: the
// handler runs in a consumer span whose parent is the publish's producer
// span, itself a child of the publisher's span, all in one trace.
func TestTraceJoinsThePublishersTrace(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	nb := natstest.Start(t)
	ctx := context.Background()
	cfg := bus.ConsumerConfig{
		Stream: events.StreamSync, Durable: "test-trace", Filters: []string{events.AllReceived},
		Workers: 1, Middleware: []bus.Middleware{bus.Trace(tp)},
	}
	handled := make(chan trace.SpanContext, 2)
	cons := consume(t, nb, cfg, func(ctx context.Context, d bus.Delivery) error {
		handled <- trace.SpanContextFromContext(ctx)
		return nil
	})

	pctx, upload := tp.Tracer("test").Start(ctx, "upload")
	publish(pctx, t, nb, "traced")
	upload.End()
	var inHandler trace.SpanContext
	select {
	case inHandler = <-handled:
	case <-time.After(10 * time.Second):
		t.Fatal("not delivered")
	}
	natstest.Settled(t, cons)
	if inHandler.TraceID() != upload.SpanContext().TraceID() {
		t.Fatalf("handler's trace %s, want the publisher's %s", inHandler.TraceID(), upload.SpanContext().TraceID())
	}
	spans := map[string]tracetest.SpanStub{}
	for _, s := range exp.GetSpans() {
		spans[s.Name] = s
	}
	send, process := spans["send "+events.TypeInsightReceived], spans["process test-trace"]
	if send.SpanKind != trace.SpanKindProducer || send.Parent.SpanID() != upload.SpanContext().SpanID() {
		t.Errorf("send span %+v, want a producer span under the upload's", send)
	}
	if process.SpanKind != trace.SpanKindConsumer || process.Parent.SpanID() != send.SpanContext.SpanID() ||
		process.SpanContext.SpanID() != inHandler.SpanID() {
		t.Errorf("process span %+v, want the handler's consumer span under the send span", process)
	}

	// A publish outside any trace carries no trace context.
	msgs := make(chan *nats.Msg, 1)
	nc := natstest.Connect(t, nb.URL)
	if _, err := nc.ChanSubscribe("sync.v1.o.p.autopilot.received.untraced", msgs); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	ev, _ := events.New("untraced", "/test", events.TypeAutopilotReceived, time.Now(), "o", "p", map[string]string{})
	if _, err := bus.Publish(ctx, nb.JS, events.ReceivedSubject("o", "p", events.Autopilot, "untraced"), ev); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-msgs:
		if h := m.Header.Get("traceparent"); h != "" {
			t.Errorf("untraced publish has traceparent %q", h)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("untraced publish not seen")
	}
}
