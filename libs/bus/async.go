package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/odavl/sync/libs/events"
)

// Pending is an event published without waiting for JetStream's
// acknowledgement (the job queue publishes thousands at once).
type Pending struct {
	js  jetstream.JetStream
	msg *nats.Msg
	f   jetstream.PubAckFuture
	err error
}

// PublishAsync publishes ev on subject as Publish does (the event id as
// Nats-Msg-Id, the trace context of ctx in the headers) and returns at once;
// Acked or Wait learn the outcome. js must be made with enough
// WithPublishAsyncMaxPending for the publisher's bursts.
func PublishAsync(ctx context.Context, js jetstream.JetStream, subject string, ev events.Event) *Pending {
	b, err := ev.MarshalJSON()
	if err != nil {
		return &Pending{err: fmt.Errorf("encoding event %s: %w", ev.ID, err)}
	}
	msg := &nats.Msg{Subject: subject, Data: b, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, ev.ID)
	msg.Header.Set("Ce-Type", ev.Type)
	end := tracePublish(ctx, msg)
	f, err := js.PublishMsgAsync(msg)
	end(err)
	if err != nil {
		err = fmt.Errorf("publishing %s on %s: %w", ev.ID, subject, err)
	}
	return &Pending{js: js, msg: msg, f: f, err: err}
}

// Acked waits for the acknowledgement (at most 10 s, or ctx).
func (p *Pending) Acked(ctx context.Context) error {
	if p.err != nil {
		return p.err
	}
	select {
	case <-p.f.Ok():
		return nil
	case err := <-p.f.Err():
		return fmt.Errorf("publishing on %s: %w", p.msg.Subject, err)
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(10 * time.Second):
		return fmt.Errorf("publishing on %s: no acknowledgement from JetStream in 10s", p.msg.Subject)
	}
}

// Wait is Acked, and an event not acknowledged is published again,
// synchronously (its id makes a repeat a duplicate JetStream drops), up to
// three times.
func (p *Pending) Wait(ctx context.Context) error {
	if p.f == nil && p.msg == nil {
		return p.err
	}
	first := p.Acked(ctx)
	if first == nil {
		return nil
	}
	last := first
	for i := range 3 {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, last = p.js.PublishMsg(actx, &nats.Msg{Subject: p.msg.Subject, Data: p.msg.Data, Header: p.msg.Header})
		cancel()
		if last == nil {
			return nil
		}
		if ctx.Err() != nil {
			break
		}
		time.Sleep(time.Duration(i+1) * 100 * time.Millisecond)
	}
	return errors.Join(first, last)
}
