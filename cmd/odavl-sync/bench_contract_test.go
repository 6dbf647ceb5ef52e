package main

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/events"
)

// contractFloor is landingFloor plus the least of what the product's
// contracts add to each upload, each done once and as cheaply as the
// design allows: the job's ACTIVE, COMPLETED, alert and processed events
// (asynchronous publishes, awaited together), the critical alert's
// insert, the job's final record put in a KV bucket, its insert into a
// collection with the jobs' indexes and its take-out from the bucket, and
// a consumer that takes the three events the stats service counts. Left
// out, so that this bounds the product's landing from above: HTTP and
// validation, the JSON conversion, the watch and the projection's
// deliveries of the record, the stats' writes, middleware. It returns
// uploads/s, until every upload is handled and its events counted.
func (s *benchServer) contractFloor(b *testing.B, n int) float64 {
	ctx, cancel := context.WithCancel(context.Background()) // stops the batchers
	defer cancel()
	js, closeNATS := s.floorJetStream(b)
	defer closeNATS()
	kv, err := bus.OpenKV(ctx, js, jetstream.KeyValueConfig{Bucket: "bench_contract_live", History: 1, Storage: jetstream.FileStorage, LimitMarkerTTL: 10 * time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "BENCH_EVENTS", Subjects: []string{"bench.events.>"}, Storage: jetstream.FileStorage}); err != nil {
		b.Fatal(err)
	}
	counted, stop := s.countEvents(b, js, 3*n)
	defer stop()
	results := newFloorBatcher(ctx, s.floorCollection(b, "insight_results", "bench_contract"))
	alerts := newFloorBatcher(ctx, s.floorCollection(b, "alerts", "bench_contract_alerts"))
	jobs := newFloorBatcher(ctx, s.floorCollection(b, "jobs", "bench_contract_jobs"))
	return s.runFloor(b, js, "contract", s.floorDocs(b, n), func(ctx context.Context, id string, doc bson.Raw) error {
		active := publishFloorEvent(ctx, js, id, "counted.active")
		if err := results.insert(ctx, doc); err != nil {
			return err
		}
		alert, err := bson.Marshal(bson.D{{Key: "_id", Value: "alert-" + id}, {Key: "uploadId", Value: id}, {Key: "critical", Value: 1}})
		if err != nil {
			return bus.Permanent(err)
		}
		if err := alerts.insert(ctx, alert); err != nil {
			return err
		}
		record, err := bson.Marshal(bson.D{{Key: "_id", Value: id}, {Key: "organizationId", Value: s.cred.OrganizationID}, {Key: "projectId", Value: "landing"},
			{Key: "type", Value: "INSIGHT_ANALYSIS"}, {Key: "status", Value: "COMPLETED"}, {Key: "createdAt", Value: time.Now()}, {Key: "resultId", Value: id}})
		if err != nil {
			return bus.Permanent(err)
		}
		rev, err := kv.Put(ctx, id, record)
		if err != nil {
			return err
		}
		pending := []*bus.Pending{active, publishFloorEvent(ctx, js, id, "counted.completed"), publishFloorEvent(ctx, js, id, "alert"), publishFloorEvent(ctx, js, id, "counted.processed")}
		if err := jobs.insert(ctx, record); err != nil {
			return err
		}
		if err := kv.Purge(ctx, id, jetstream.LastRevision(rev), jetstream.PurgeTTL(10*time.Minute)); err != nil {
			return err
		}
		for _, p := range pending {
			if err := p.Acked(ctx); err != nil {
				return err
			}
		}
		return nil
	}, counted)
}

// publishFloorEvent publishes a small event about upload id on
// bench.events.<kind>, without waiting for its acknowledgement.
func publishFloorEvent(ctx context.Context, js jetstream.JetStream, id, kind string) *bus.Pending {
	ev, err := events.New(id+"-"+kind, "bench", "dev.odavl.bench.floor.v1", time.Now(), "org", "landing",
		map[string]any{"jobId": id, "type": "INSIGHT_ANALYSIS", "status": kind, "attempt": 1, "at": time.Now()})
	if err != nil {
		panic(err)
	}
	return bus.PublishAsync(ctx, js, "bench.events."+kind, ev)
}

// countEvents consumes the counted events (libs/bus's loop, 64 workers)
// and returns a wait for want of them, and the loop's stop.
func (s *benchServer) countEvents(b *testing.B, js jetstream.JetStream, want int) (wait func(), stop func()) {
	ctx := context.Background()
	cfg := bus.ConsumerConfig{Stream: "BENCH_EVENTS", Durable: "bench-counted", Filters: []string{"bench.events.counted.>"}, Workers: 64}
	cons, err := bus.EnsureConsumer(ctx, js, cfg)
	if err != nil {
		b.Fatal(err)
	}
	var seen atomic.Int64
	all := make(chan struct{})
	loop, err := bus.Consume(ctx, quietLog(), cons, cfg, func(context.Context, bus.Delivery) error {
		if seen.Add(1) == int64(want) {
			close(all)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return func() {
		select {
		case <-all:
		case <-time.After(10 * time.Minute):
			b.Fatalf("contract floor: %d of %d events counted after 10 minutes", seen.Load(), want)
		}
	}, loop.Stop
}
