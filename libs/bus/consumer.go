package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/odavl/sync/libs/events"
)

// Delivery is one delivery of an event to a handler.
type Delivery struct {
	Event events.Event
	// Subject the message was published on.
	Subject string
	// Attempt counts deliveries of this message, from 1.
	Attempt int
	// MaxAttempts is the consumer's MaxDeliver (0: unlimited).
	MaxAttempts int
	// Msg is the underlying message, for InProgress on long work.
	Msg jetstream.Msg
}

// Last reports whether this is the last delivery the consumer will make.
func (d Delivery) Last() bool { return d.MaxAttempts > 0 && d.Attempt >= d.MaxAttempts }

// Handler processes one delivery. It must be idempotent: a delivery can be
// repeated. It never acknowledges by hand; its result decides.
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
	// KeepAlive is how long a delivery is kept alive with in-progress acks
	// while its handler runs (0: not at all). Without it a handler that
	// outlasts the ack wait (the first backoff, when there is one) sees its
	// message redelivered to another worker while it still runs; past it, a
	// stuck handler's message is redelivered.
	KeepAlive time.Duration
	// Metrics, when set, records the loop's deliveries.
	Metrics *Metrics
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

// Consume starts the loop: up to workers deliveries are handled at once, each
// acknowledged by the handler's result. Backoff is used for NakWithDelay by
// attempt (the last value repeats). Stop drains it.
func Consume(ctx context.Context, log *slog.Logger, cons jetstream.Consumer, c ConsumerConfig, h Handler) (*Loop, error) {
	workers := max(c.Workers, 1)
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l := &Loop{cancel: cancel}
	sem := make(chan struct{}, workers)
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
	c.Metrics.start(c.Durable)
	handle := func(msg jetstream.Msg, stopKeepAlive func()) {
		defer func() { <-sem; l.wg.Done() }()
		defer stopKeepAlive()
		t0 := time.Now()
		outcome := l.dispatch(hctx, log, msg, c.Backoff, maxDeliver, h)
		c.Metrics.done(c.Durable, outcome, time.Since(t0))
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		// The ack wait runs from the delivery, not from the moment a
		// worker is free: a message waiting for one is kept alive too, or
		// JetStream would hand it out again while it is still in hand
		// (seen under load as one more attempt than happened).
		stop := keepAlive(msg, ackWait/3, c.KeepAlive)
		c.Metrics.received(c.Durable)
		sem <- struct{}{}
		l.wg.Add(1)
		go handle(msg, stop)
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

// dispatch hands msg to h and settles it by the result, which it returns
// as an outcome (OutcomeAck, OutcomeTerm, OutcomeRetry).
func (l *Loop) dispatch(ctx context.Context, log *slog.Logger, msg jetstream.Msg, backoff []time.Duration, maxDeliver int, h Handler) string {
	meta, err := msg.Metadata()
	if err != nil {
		log.Error("message without metadata", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return OutcomeTerm
	}
	ev, err := events.Decode(msg.Data())
	if err != nil {
		// A message that is not an event can never be handled: terminate it and say so.
		log.Error("undecodable event terminated", "subject", msg.Subject(), "seq", meta.Sequence.Stream, "err", err)
		_ = msg.TermWithReason("undecodable event")
		return OutcomeTerm
	}
	d := Delivery{Event: ev, Subject: msg.Subject(), Attempt: int(meta.NumDelivered), MaxAttempts: maxDeliver, Msg: msg}
	err = safeCall(ctx, h, d)
	switch {
	case err == nil:
		if aerr := msg.DoubleAck(ctx); aerr != nil {
			log.Warn("ack failed", "event", ev.ID, "err", aerr)
		}
		return OutcomeAck
	case IsPermanent(err):
		log.Error("event terminated", "event", ev.ID, "type", ev.Type, "attempt", d.Attempt, "err", err)
		_ = msg.TermWithReason(truncate(err.Error(), 200))
		return OutcomeTerm
	default:
		delay := BackoffFor(backoff, d.Attempt)
		log.Warn("event failed, will retry", "event", ev.ID, "type", ev.Type, "attempt", d.Attempt, "retryIn", delay, "err", err)
		_ = msg.NakWithDelay(delay)
		return OutcomeRetry
	}
}

// keepAlive sends an in-progress ack for msg every interval for at most
// limit, until the returned stop is called.
func keepAlive(msg jetstream.Msg, every, limit time.Duration) (stop func()) {
	if limit <= 0 || every <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		end := time.After(limit)
		for {
			select {
			case <-done:
				return
			case <-end:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	return func() { close(done) }
}

// BackoffFor is the delay before the redelivery that follows attempt.
func BackoffFor(backoff []time.Duration, attempt int) time.Duration {
	if len(backoff) == 0 {
		return time.Second
	}
	i := min(max(attempt-1, 0), len(backoff)-1)
	return backoff[i]
}

func safeCall(ctx context.Context, h Handler, d Delivery) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panic: %v\n%s", r, debug.Stack())
		}
	}()
	return h(ctx, d)
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
