// Package bus holds the JetStream plumbing every service shares: the streams
// of the event contract, publishing with the event id as Nats-Msg-Id (and
// the W3C trace context in the headers), and the one consumer loop, which
// maps a handler's result to an acknowledgement: nil → Ack, a Permanent
// error → Term, anything else → NakWithDelay with the consumer's backoff.
//
// Everything around a handler is Middleware (func(Handler) Handler), one
// file per concern, applied by the loop to every delivery: Recover,
// Log, KeepAlive, Measure (Metrics) and Trace. Defaults is the usual chain.
package bus
