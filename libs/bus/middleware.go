package bus

import (
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// Middleware wraps a Handler with one concern (recovery, logging,
// keep-alive, metrics, tracing) and returns the wrapped Handler. The
// consume loop applies a consumer's ConsumerConfig.Middleware to every
// delivery, including those it terminates without calling the handler (a
// message that is not an event): middleware sees every settlement.
type Middleware func(Handler) Handler

// Chain wraps h in ms, the first outermost: Chain(h, a, b) is a(b(h)).
func Chain(h Handler, ms ...Middleware) Handler {
	for i := len(ms) - 1; i >= 0; i-- {
		h = ms[i](h)
	}
	return h
}

// Defaults is the middleware every consumer of a process runs, outermost
// first: Trace (the consumer span, a child of the publisher's), Measure
// (m's figures; nil m: none), Log (why a delivery was terminated or will
// be retried) and Recover (a handler's panic is a retry, not a crash). A
// nil tp is the global tracer provider (otel.GetTracerProvider), which is a
// no-op unless tracing was turned on. Append KeepAlive for handlers that
// may outlast the ack wait.
func Defaults(log *slog.Logger, m *Metrics, tp trace.TracerProvider) []Middleware {
	return []Middleware{Trace(tp), Measure(m), Log(log), Recover()}
}
