package bus_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/natstest"
)

// A batch handler's follow-up runs once its batch is acknowledged, and not
// for a batch handed back.
func TestConsumeBatchesThenRunsAfterTheAck(t *testing.T) {
	t.Parallel()
	nb := natstest.Start(t)
	ctx := context.Background()
	if _, err := nb.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "BATCH", Subjects: []string{"batch.>"}}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := nb.JS.Publish(ctx, fmt.Sprintf("batch.%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := nb.JS.CreateOrUpdateConsumer(ctx, "BATCH", jetstream.ConsumerConfig{Durable: "b", AckPolicy: jetstream.AckAllPolicy})
	if err != nil {
		t.Fatal(err)
	}
	floors := make(chan uint64, 4)
	calls := 0
	loop := bus.ConsumeBatchesThen(ctx, quiet, cons, 10, 50*time.Millisecond, 10*time.Millisecond,
		func(ctx context.Context, msgs []jetstream.Msg) (func(context.Context), error) {
			if calls++; calls == 1 {
				return func(context.Context) { floors <- 0 }, errors.New("not applied")
			}
			return func(ctx context.Context) {
				ci, err := cons.Info(ctx)
				if err != nil {
					t.Error(err)
				}
				floors <- ci.AckFloor.Stream
			}, nil
		})
	defer loop.Stop()
	select {
	case floor := <-floors:
		if floor != 5 {
			t.Fatalf("the follow-up ran with the acknowledgement floor at %d, want 5 (and none for the batch handed back)", floor)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no follow-up ran")
	}
}
