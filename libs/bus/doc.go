// Package bus holds the JetStream plumbing every service shares: the streams
// of the event contract, publishing with the event id as Nats-Msg-Id, and the
// one consumer loop, which maps a handler's result to an acknowledgement:
// nil → Ack, a Permanent error → Term, anything else → NakWithDelay with the
// consumer's backoff.
package bus
