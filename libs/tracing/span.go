package tracing

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Name is the instrumentation name of the spans Span starts.
const Name = "github.com/odavl/sync"

// Span starts a span named name as a child of ctx's span, with that span's
// tracer provider: inside a traced request or delivery it joins the trace,
// outside any (or with tracing off) it is a no-op. end closes it, marking
// it failed with err when err is not nil.
func Span(ctx context.Context, name string, attrs ...attribute.KeyValue) (_ context.Context, end func(err error)) {
	parent := trace.SpanFromContext(ctx)
	if !parent.SpanContext().IsValid() {
		return ctx, func(error) {}
	}
	ctx, span := parent.TracerProvider().Tracer(Name).Start(ctx, name, trace.WithAttributes(attrs...))
	return ctx, func(err error) {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}
