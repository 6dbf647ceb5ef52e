package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/odavl/sync/libs/events"
)

// Delivery is one delivery of an event to a handler.
type Delivery struct {
	Event events.Event
	// Consumer is the durable consumer that made the delivery.
	Consumer string
	// Subject the message was published on.
	Subject string
	// Attempt counts deliveries of this message, from 1.
	Attempt int
	// MaxAttempts is the consumer's MaxDeliver (0: unlimited).
	MaxAttempts int
	// RetryIn is the delay before the redelivery that follows, should
	// this attempt fail with an error that is not Permanent.
	RetryIn time.Duration
	// AckWait is how long JetStream waits for this delivery's settlement
	// (or an in-progress ack) before it redelivers it.
	AckWait time.Duration
	// Received is when the loop took the message from JetStream.
	Received time.Time
	// Msg is the underlying message (its headers carry the trace context).
	Msg jetstream.Msg
}

// Last reports whether this is the last delivery the consumer will make.
func (d Delivery) Last() bool { return d.MaxAttempts > 0 && d.Attempt >= d.MaxAttempts }

// Handler processes one delivery. It must be idempotent: a delivery can be
// repeated. It never acknowledges by hand; its result decides (see Outcome).
type Handler func(ctx context.Context, d Delivery) error

// ConsumerConfig is the configuration of a durable pull consumer with the
// loop's defaults: explicit acks, MaxAckPending at least the worker count.
type ConsumerConfig struct {
	Stream  string
	Durable string
	// Filters are the subjects this consumer takes.
	Filters []string
	// Backoff between redeliveries; its length+1 is the MaxDeliver unless MaxDeliver is set.
	Backoff    []time.Duration
	MaxDeliver int
	// AckWait when Backoff is empty (default 30s).
	AckWait time.Duration
	// Workers is how many deliveries are handled at once (default 1).
	Workers int
	// Middleware wraps the handler, the first outermost: usually
	// Defaults(log, metrics, nil), with KeepAlive appended for handlers
	// that may outlast the ack wait. Without Recover a handler's panic
	// ends the process.
	Middleware []Middleware
}

// EnsureConsumer creates or updates the durable consumer described by c.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, c ConsumerConfig) (jetstream.Consumer, error) {
	workers := max(c.Workers, 1)
	cfg := jetstream.ConsumerConfig{
		Durable:        c.Durable,
		AckPolicy:      jetstream.AckExplicitPolicy,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		MaxAckPending:  max(4*workers, 256),
		FilterSubjects: c.Filters,
		BackOff:        c.Backoff,
		MaxDeliver:     c.MaxDeliver,
		AckWait:        c.AckWait,
	}
	if len(c.Filters) == 1 {
		cfg.FilterSubject, cfg.FilterSubjects = c.Filters[0], nil
	}
	if cfg.MaxDeliver == 0 && len(c.Backoff) > 0 {
		cfg.MaxDeliver = len(c.Backoff) + 1
	}
	if cfg.MaxDeliver == 0 {
		cfg.MaxDeliver = -1
	}
	if len(cfg.BackOff) > 0 {
		// The server uses the first backoff value as the ack wait.
		cfg.AckWait = 0
	} else if cfg.AckWait == 0 {
		cfg.AckWait = 30 * time.Second
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, c.Stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("creating consumer %s on %s: %w", c.Durable, c.Stream, err)
	}
	return cons, nil
}

// Loop runs a handler over a consumer's messages until stopped.
type Loop struct {
	cc     jetstream.ConsumeContext
	wg     sync.WaitGroup
	cancel context.CancelFunc
	once   sync.Once
}

// Consume starts the loop: up to workers deliveries are handled at once by
// h wrapped in c.Middleware, each settled by the result (see Outcome):
// nil acks, a Permanent error terminates, anything else is redelivered
// after Backoff by attempt (the last value repeats). Stop drains it.
func Consume(ctx context.Context, log *slog.Logger, cons jetstream.Consumer, c ConsumerConfig, h Handler) (*Loop, error) {
	workers := max(c.Workers, 1)
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l := &Loop{cancel: cancel}
	maxDeliver := c.MaxDeliver
	if maxDeliver == 0 && len(c.Backoff) > 0 {
		maxDeliver = len(c.Backoff) + 1
	}
	ackWait := c.AckWait
	if len(c.Backoff) > 0 {
		ackWait = slices.Min(c.Backoff)
	} else if ackWait == 0 {
		ackWait = 30 * time.Second
	}
	// A message is in hand from its receipt: while it is handled, or while
	// it waits for a worker (one at most: then the callback blocks). The
	// middleware wraps both, so that KeepAlive keeps a waiting message
	// alive too (the ack wait runs from the delivery: JetStream would hand
	// it out again while it is still in hand, seen under load as one more
	// attempt than happened) and Measure counts it in flight.
	inHand := make(chan struct{}, workers+1)
	working := make(chan struct{}, workers)
	run := Chain(func(ctx context.Context, d Delivery) error {
		working <- struct{}{}
		defer func() { <-working }()
		return h(ctx, d)
	}, c.Middleware...)
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		received := time.Now()
		inHand <- struct{}{}
		l.wg.Add(1)
		go func() {
			defer func() { <-inHand; l.wg.Done() }()
			l.dispatch(hctx, log, msg, c, ackWait, maxDeliver, received, run)
		}()
	}, jetstream.PullMaxMessages(max(2*workers, 16)),
		// A short pull expiry bounds the stall when the server has let go of
		// a pull request the client still counts on (seen in the job queue:
		// ~30s with the default).
		jetstream.PullExpiry(5*time.Second), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if !errors.Is(err, jetstream.ErrNoHeartbeat) {
				log.Debug("consume error", "consumer", c.Durable, "err", err)
			}
		}))
	if err != nil {
		cancel()
		return nil, fmt.Errorf("consuming %s: %w", c.Durable, err)
	}
	l.cc = cc
	go func() {
		<-ctx.Done()
		l.Stop()
	}()
	return l, nil
}

// Outcome is how the loop settles a delivery whose handler returned err:
// OutcomeAck for nil, OutcomeTerm for a Permanent error, OutcomeRetry
// otherwise.
func Outcome(err error) string {
	switch {
	case err == nil:
		return OutcomeAck
	case IsPermanent(err):
		return OutcomeTerm
	default:
		return OutcomeRetry
	}
}

// dispatch hands msg to h and settles it by the result. A message without
// metadata, or that is not an event, goes through h's middleware too, with
// a Permanent error in place of the handler's call: it is terminated, and
// logged, measured and traced like any other.
func (l *Loop) dispatch(ctx context.Context, log *slog.Logger, msg jetstream.Msg, c ConsumerConfig, ackWait time.Duration, maxDeliver int, received time.Time, h Handler) {
	d := Delivery{Consumer: c.Durable, Subject: msg.Subject(), MaxAttempts: maxDeliver, AckWait: ackWait, Received: received, Msg: msg}
	var bad error
	if meta, err := msg.Metadata(); err != nil {
		bad = fmt.Errorf("message without metadata: %w", err)
	} else {
		d.Attempt = int(meta.NumDelivered)
		d.RetryIn = BackoffFor(c.Backoff, d.Attempt)
		if d.Event, err = events.Decode(msg.Data()); err != nil {
			// A message that is not an event can never be handled.
			bad = fmt.Errorf("undecodable event (stream sequence %d): %w", meta.Sequence.Stream, err)
		}
	}
	run := h
	if bad != nil {
		run = Chain(func(context.Context, Delivery) error { return Permanent(bad) }, c.Middleware...)
	}
	err := run(ctx, d)
	switch Outcome(err) {
	case OutcomeAck:
		if aerr := msg.DoubleAck(ctx); aerr != nil {
			log.Warn("ack failed", "consumer", c.Durable, "event", d.Event.ID, "err", aerr)
		}
	case OutcomeTerm:
		_ = msg.TermWithReason(truncate(err.Error(), 200))
	default:
		_ = msg.NakWithDelay(d.RetryIn)
	}
}

// BackoffFor is the delay before the redelivery that follows attempt.
func BackoffFor(backoff []time.Duration, attempt int) time.Duration {
	if len(backoff) == 0 {
		return time.Second
	}
	i := min(max(attempt-1, 0), len(backoff)-1)
	return backoff[i]
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// Stop stops taking messages, waits for the deliveries in hand to finish, and
// returns. It is safe to call more than once.
func (l *Loop) Stop() {
	l.once.Do(func() {
		l.cc.Drain()
		<-l.cc.Closed()
		l.wg.Wait()
		l.cancel()
	})
}

// Kill stops at once, cancelling the handlers' context: deliveries in hand
// are neither acked nor nakked and will be redelivered after their ack wait.
// Tests use it to simulate a crash.
func (l *Loop) Kill() {
	l.once.Do(func() {
		l.cc.Stop()
		l.cancel()
		l.wg.Wait()
	})
}
