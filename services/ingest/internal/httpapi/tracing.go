package httpapi

import (
	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// tracerName is the instrumentation name of the gateway's request spans.
const tracerName = "github.com/odavl/sync/services/ingest/httpapi"

// traceRequests runs each request in a server span of tracer (the global
// tracer provider's) ("POST /api/v1/sync/insight": the method and the route), a child
// of the caller's span when it sends a W3C traceparent header: an upload's
// trace starts here (or joins the caller's) and goes on in the published
// event. With tracing off and no caller's trace it costs what the no-op
// span costs (~0.3 µs, 5 allocations per request, measured here); it is
// written by hand because otelgin costs ~6 µs and 23 allocations more
// per request even with a no-op provider.
func traceRequests(tracer trace.Tracer) gin.HandlerFunc {
	return func(c *gin.Context) { traceRequest(c, tracer) }
}

func traceRequest(c *gin.Context, tracer trace.Tracer) {
	ctx := c.Request.Context()
	if _, ok := c.Request.Header["Traceparent"]; ok {
		ctx = propagation.TraceContext{}.Extract(ctx, propagation.HeaderCarrier(c.Request.Header))
	}
	ctx, span := tracer.Start(ctx, c.Request.Method, trace.WithSpanKind(trace.SpanKindServer))
	if !span.SpanContext().IsValid() {
		c.Next() // not traced, and no caller's trace to carry on
		return
	}
	defer span.End()
	route := c.FullPath()
	if span.IsRecording() {
		if route != "" {
			span.SetName(c.Request.Method + " " + route)
		}
		span.SetAttributes(attribute.String("http.request.method", c.Request.Method), attribute.String("http.route", route),
			attribute.String("url.path", c.Request.URL.Path), attribute.String("client.address", c.ClientIP()))
	}
	c.Request = c.Request.WithContext(ctx)
	c.Next()
	if span.IsRecording() {
		status := c.Writer.Status()
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 500 {
			span.SetStatus(codes.Error, "")
		}
	}
}
