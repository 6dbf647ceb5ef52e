package bus

import (
	"context"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// TracerName is the instrumentation name of the spans of this package.
const TracerName = "github.com/odavl/sync/libs/bus"

// traceContext is the W3C trace context (traceparent, tracestate), the
// format of the trace headers of every message published through Publish.
var traceContext propagation.TraceContext

// headerCarrier carries the trace context in NATS message headers.
type headerCarrier nats.Header

func (h headerCarrier) Get(key string) string { return nats.Header(h).Get(key) }
func (h headerCarrier) Set(key, value string) { nats.Header(h).Set(key, value) }
func (h headerCarrier) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}

// Trace runs the handler in a consumer span ("process <consumer>"), a child
// of the span that published the message (its trace context is read from
// the message's headers), so that what the handler does and publishes joins
// the publisher's trace. A failed delivery marks its span with the error. A
// nil tp is the global tracer provider at the time of each delivery.
func Trace(tp trace.TracerProvider) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, d Delivery) error {
			p := tp
			if p == nil {
				p = otel.GetTracerProvider()
			}
			if d.Msg != nil {
				ctx = traceContext.Extract(ctx, headerCarrier(d.Msg.Headers()))
			}
			ctx, span := p.Tracer(TracerName).Start(ctx, "process "+d.Consumer, trace.WithSpanKind(trace.SpanKindConsumer),
				trace.WithAttributes(
					attribute.String("messaging.system", "nats"),
					attribute.String("messaging.operation.type", "process"),
					attribute.String("messaging.destination.name", d.Subject),
					attribute.String("messaging.consumer.group.name", d.Consumer),
					attribute.String("messaging.message.id", d.Event.ID),
					attribute.String("cloudevents.event_type", d.Event.Type),
					attribute.Int("messaging.delivery.attempt", d.Attempt),
				))
			defer span.End()
			err := next(ctx, d)
			if err != nil {
				span.RecordError(err)
				span.SetStatus(codes.Error, "outcome "+Outcome(err))
			}
			return err
		}
	}
}

// tracePublish starts the producer span of a publish of msg ("send <event
// type>") as a child of ctx's span, with the tracer provider of that span
// (none without one: a publish outside any trace is not traced), and writes
// the trace context into msg's headers. end closes the span with the
// publish's result.
func tracePublish(ctx context.Context, msg *nats.Msg) (end func(error)) {
	parent := trace.SpanFromContext(ctx)
	if !parent.SpanContext().IsValid() {
		return func(error) {}
	}
	ctx, span := parent.TracerProvider().Tracer(TracerName).Start(ctx, "send "+msg.Header.Get("Ce-Type"), trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.operation.type", "send"),
			attribute.String("messaging.destination.name", msg.Subject),
			attribute.String("messaging.message.id", msg.Header.Get(nats.MsgIdHdr)),
			attribute.Int("messaging.message.body.size", len(msg.Data)),
		))
	traceContext.Inject(ctx, headerCarrier(msg.Header))
	return func(err error) {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "publish failed")
		}
		span.End()
	}
}
