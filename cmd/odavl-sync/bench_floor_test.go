package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/events"
)

// landingFloor measures the least this design can do to land an upload,
// on the server the landing ran on: the landing's stored documents, as
// BSON inside a CloudEvent (so no conversion from JSON), published with an
// acknowledged publish from 32 callers on a file stream of the server's
// NATS; libs/bus's consume loop (64 workers, no middleware) hands each to
// a batcher that InsertManys up to 100 at once into a collection with the
// results' indexes, and acknowledges it once stored. No HTTP, no
// validation, no job record, no lifecycle or processed event, no stats,
// no alert: what the architecture itself costs (an event carried by
// JetStream, a batched insert), beside which the rest of the landing is
// the product's own work per upload. It returns documents landed/s. Its
// payload travels as base64 inside the event's JSON; an upload's travels
// as JSON and is converted to BSON by the processor, a cost of the same
// order.
func (s *benchServer) landingFloor(b *testing.B, n int) float64 {
	ctx, cancel := context.WithCancel(context.Background()) // stops the batcher
	defer cancel()
	js, closeNATS := s.floorJetStream(b)
	defer closeNATS()
	batch := newFloorBatcher(ctx, s.floorCollection(b, "insight_results", "bench_floor"))
	return s.runFloor(b, js, "floor", s.floorDocs(b, n), func(ctx context.Context, _ string, doc bson.Raw) error {
		return batch.insert(ctx, doc)
	}, nil)
}

// floorJetStream connects to the server's NATS.
func (s *benchServer) floorJetStream(b *testing.B) (jetstream.JetStream, func()) {
	nc, err := nats.Connect(s.natsURL)
	if err != nil {
		b.Fatal(err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(16384))
	if err != nil {
		b.Fatal(err)
	}
	return js, nc.Close
}

// runFloor publishes docs as events (ids <name>-<i>) from 32 callers on a
// new file stream and hands each delivery to handle through libs/bus's
// loop (64 workers, no middleware), acknowledged once it returns nil. It
// returns docs/s, from the first publish until every delivery was handled
// and then wait (nil: nothing more) returned.
func (s *benchServer) runFloor(b *testing.B, js jetstream.JetStream, name string, docs [][]byte, handle func(ctx context.Context, id string, doc bson.Raw) error, wait func()) float64 {
	ctx := context.Background()
	stream, subjects := "BENCH_"+strings.ToUpper(name), "bench."+name+".>"
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{subjects}, Storage: jetstream.FileStorage}); err != nil {
		b.Fatal(err)
	}
	cfg := bus.ConsumerConfig{Stream: stream, Durable: "bench-" + name, Filters: []string{subjects}, Workers: 64}
	cons, err := bus.EnsureConsumer(ctx, js, cfg)
	if err != nil {
		b.Fatal(err)
	}
	n := len(docs)
	var handled atomic.Int64
	done := make(chan struct{})
	start := time.Now()
	loop, err := bus.Consume(ctx, quietLog(), cons, cfg, func(ctx context.Context, d bus.Delivery) error {
		var doc struct{ Doc []byte }
		if err := d.Event.DataAs(&doc); err != nil {
			return bus.Permanent(err)
		}
		if err := handle(ctx, d.Event.ID, bson.Raw(doc.Doc)); err != nil && !mongo.IsDuplicateKeyError(err) {
			return err
		}
		if handled.Add(1) == int64(n) {
			close(done)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	defer loop.Stop()
	_, _, failed := runConcurrent(32, n, func(i int) error {
		ev, err := events.New(fmt.Sprintf("%s-%d", name, i), "bench", "dev.odavl.bench.floor.v1", time.Now(), s.cred.OrganizationID, "landing", struct{ Doc []byte }{docs[i]})
		if err != nil {
			return err
		}
		_, err = bus.Publish(ctx, js, "bench."+name+".insight", ev)
		return err
	})
	if failed > 0 {
		b.Fatalf("%s: %d publishes failed", name, failed)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Minute):
		b.Fatalf("%s: %d of %d handled after 10 minutes", name, handled.Load(), n)
	}
	if wait != nil {
		wait()
	}
	return float64(n) / time.Since(start).Seconds()
}

// floorDocs are the landing's stored documents, under new ids, as BSON.
func (s *benchServer) floorDocs(b *testing.B, n int) [][]byte {
	ctx := context.Background()
	cur, err := s.db.Collection("insight_results").Find(ctx, bson.D{{Key: "projectId", Value: "landing"}}, options.Find().SetLimit(int64(n)))
	if err != nil {
		b.Fatal(err)
	}
	var docs [][]byte
	for i := 0; cur.Next(ctx); i++ {
		var d bson.D
		if err := cur.Decode(&d); err != nil {
			b.Fatal(err)
		}
		raw, err := bson.Marshal(setField(d, "_id", fmt.Sprintf("floor-%07d", i)))
		if err != nil {
			b.Fatal(err)
		}
		docs = append(docs, raw)
	}
	if len(docs) < n {
		b.Fatalf("floor: %d landed documents, want %d", len(docs), n)
	}
	return docs
}

// floorCollection is a new collection, name, with the indexes of from.
func (s *benchServer) floorCollection(b *testing.B, from, name string) *mongo.Collection {
	ctx := context.Background()
	cur, err := s.db.Collection(from).Indexes().List(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var models []mongo.IndexModel
	for cur.Next(ctx) {
		var spec struct {
			Name   string
			Key    bson.D
			Unique bool
		}
		if err := cur.Decode(&spec); err != nil {
			b.Fatal(err)
		}
		if spec.Name == "_id_" {
			continue
		}
		models = append(models, mongo.IndexModel{Keys: spec.Key, Options: options.Index().SetName(spec.Name).SetUnique(spec.Unique)})
	}
	coll := s.db.Collection(name)
	if len(models) > 0 {
		if _, err := coll.Indexes().CreateMany(ctx, models); err != nil {
			b.Fatal(err)
		}
	}
	return coll
}

// floorWriters is how many InsertManys the floor has under way at once:
// with one, each batch's encoding (which the store does before it takes
// its write lock) waits for the previous batch's write, as a single raw
// client's does; two overlap them (3,000 uploads, 2026-12-05: 0.69 of the
// raw rate with one writer, 0.78 with two, 0.73 with four).
const floorWriters = 2

// floorBatcher InsertManys the documents of concurrent callers in batches
// of up to 100, as the processor's inserter does, and answers each.
type floorBatcher struct {
	coll *mongo.Collection
	reqs chan floorReq
}

type floorReq struct {
	doc  bson.Raw
	done chan error
}

func newFloorBatcher(ctx context.Context, coll *mongo.Collection) *floorBatcher {
	fb := &floorBatcher{coll: coll, reqs: make(chan floorReq, 1024)}
	for range floorWriters {
		go fb.loop(ctx)
	}
	return fb
}

func (fb *floorBatcher) insert(ctx context.Context, doc bson.Raw) error {
	r := floorReq{doc: doc, done: make(chan error, 1)}
	fb.reqs <- r
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (fb *floorBatcher) loop(ctx context.Context) {
	for {
		var batch []floorReq
		select {
		case r := <-fb.reqs:
			batch = append(batch, r)
		case <-ctx.Done():
			return
		}
	more:
		for len(batch) < 100 {
			select {
			case r := <-fb.reqs:
				batch = append(batch, r)
			default:
				break more
			}
		}
		docs := make([]any, len(batch))
		for i, r := range batch {
			docs[i] = r.doc
		}
		_, err := fb.coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
		for _, r := range batch {
			r.done <- err // a duplicate (a redelivery) fails its whole batch here: the floor has none
		}
	}
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
