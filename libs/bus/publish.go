package bus

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/odavl/sync/libs/events"
)

// Publish publishes ev on subject and waits for JetStream's acknowledgement.
// The NATS subject is the message's; ev.Subject (the CloudEvents subject) is
// the resource the event is about, set by the publisher.
// The event id is the Nats-Msg-Id, so a second publish of the same event
// inside the dedupe window is dropped by the server (the ack says Duplicate).
// The trace context of ctx goes in the message's headers (see Trace);
// opts add expectations the server checks (jetstream.WithExpectLastSequencePerSubject).
func Publish(ctx context.Context, js jetstream.JetStream, subject string, ev events.Event, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	b, err := ev.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("encoding event %s: %w", ev.ID, err)
	}
	return PublishEncoded(ctx, js, subject, ev.ID, ev.Type, b, opts...)
}

// PublishEncoded is Publish of an envelope already encoded: b is the JSON
// of the event with the given id and type.
func PublishEncoded(ctx context.Context, js jetstream.JetStream, subject, id, typ string, b []byte, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	// The header's keys are written as Header.Set writes them (canonical).
	msg := &nats.Msg{Subject: subject, Data: b, Header: nats.Header{jetstream.MsgIDHeader: {id}, "Ce-Type": {typ}}}
	end := tracePublish(ctx, msg)
	ack, err := js.PublishMsg(ctx, msg, opts...)
	end(err)
	if err != nil {
		return nil, fmt.Errorf("publishing %s on %s: %w", id, subject, err)
	}
	return ack, nil
}
