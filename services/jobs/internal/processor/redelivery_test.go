package processor_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/natstest"
	"github.com/odavl/sync/services/jobs/internal/processor"
)

// A redelivered upload (its first run stored it and announced it, but the
// ack was lost) leaves one processed event on the stream, and a manual
// retry's generation one of its own: each generation's event has one id.
func TestRedeliveredUploadIsProcessedOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)

	// As the jobs service consumes uploads, except that the first delivery
	// of each event id fails after its handler succeeded, as if its ack
	// were lost: JetStream delivers it again.
	var mu sync.Mutex
	runs := map[string]int{}
	handle := func(ctx context.Context, d bus.Delivery) error {
		err := f.p.Handle(ctx, d)
		mu.Lock()
		defer mu.Unlock()
		runs[d.Event.ID]++
		if err == nil && runs[d.Event.ID] == 1 {
			return errors.New("the ack was lost")
		}
		return err
	}
	cc := bus.ConsumerConfig{Stream: events.StreamSync, Durable: "t-redeliver", Filters: []string{events.AllReceived},
		Backoff: []time.Duration{100 * time.Millisecond}, Workers: 2,
		Middleware: append(bus.Defaults(f.log, nil, nil), bus.KeepAlive(time.Minute))}
	cons, err := bus.EnsureConsumer(ctx, f.nb.JS, cc)
	if err != nil {
		t.Fatal(err)
	}
	loop, err := bus.Consume(ctx, f.log, cons, cc, handle)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(loop.Stop)

	subject := events.ReceivedSubject("o", "p", events.Insight, "up_d")
	first := insightReceived("up_d", "up_d", "key-d")
	if _, err := bus.Publish(ctx, f.nb.JS, subject, first); err != nil {
		t.Fatal(err)
	}
	handled := func(id string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			mu.Lock()
			n := runs[id]
			mu.Unlock()
			if n >= 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("event %s handled %d times, want a redelivery", id, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
		natstest.Settled(t, cons)
	}
	handled("up_d")
	if got, want := processedIDs(t, f.nb.JS, "up_d"), []string{processor.ProcessedID("up_d", 0)}; !slices.Equal(got, want) {
		t.Fatalf("processed events %v after a redelivery, want %v", got, want)
	}

	// A manual retry publishes the upload again as generation 1 (as
	// Processor.Retry does); it and its redelivery add one event.
	var rc events.Received
	if err := first.DataAs(&rc); err != nil {
		t.Fatal(err)
	}
	rc.Generation, rc.BaseAttempt = 1, 2
	retry, err := events.New("up_d-retry-1", "/test", events.ReceivedType(events.Insight), time.Now(), "o", "p", rc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bus.Publish(ctx, f.nb.JS, subject, retry); err != nil {
		t.Fatal(err)
	}
	handled("up_d-retry-1")
	if got, want := processedIDs(t, f.nb.JS, "up_d"), []string{processor.ProcessedID("up_d", 0), processor.ProcessedID("up_d", 1)}; !slices.Equal(got, want) {
		t.Fatalf("processed events %v after a retry generation and its redelivery, want %v", got, want)
	}
}

// processedIDs lists the ids of the processed events stored for an upload,
// in stream order, read with an ordered consumer as a subscriber would.
func processedIDs(t *testing.T, js jetstream.JetStream, uploadID string) []string {
	t.Helper()
	ctx := context.Background()
	st, err := js.Stream(ctx, events.StreamSync)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(events.AllProcessed))
	if err != nil {
		t.Fatal(err)
	}
	var total uint64
	for _, n := range info.State.Subjects {
		total += n
	}
	oc, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.AllProcessed}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range total {
		m, err := oc.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if ev, err := events.Decode(m.Data()); err == nil && ev.Subject == uploadID {
			ids = append(ids, m.Headers().Get(nats.MsgIdHdr))
		}
	}
	return ids
}
