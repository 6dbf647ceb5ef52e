package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/natstest"
)

// PublishAsync stores the event as Publish does (its id as the message
// id: a second publish is a duplicate JetStream drops), and Wait says when
// it is acknowledged.
func TestPublishAsyncIsPublishWithoutWaiting(t *testing.T) {
	t.Parallel()
	nb := natstest.Start(t)
	ctx := context.Background()
	ev, _ := events.New("async-1", "/test", events.TypeInsightReceived, time.Now(), "o", "p", map[string]string{})
	subject := events.ReceivedSubject("o", "p", events.Insight, "async-1")
	for range 2 {
		if err := bus.PublishAsync(ctx, nb.JS, subject, ev).Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	s, err := nb.JS.Stream(ctx, events.StreamSync)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get("Nats-Msg-Id") != "async-1" || m.Header.Get("Ce-Type") != events.TypeInsightReceived {
		t.Fatalf("headers %v", m.Header)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("%d messages stored, want 1: the second publish is a duplicate", info.State.Msgs)
	}
}
