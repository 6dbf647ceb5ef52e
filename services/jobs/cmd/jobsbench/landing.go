package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/events"
	jobsvc "github.com/odavl/sync/services/jobs"
	"github.com/odavl/sync/services/jobs/internal/results"
)

// landing is one run of the result documents' phase, in documents/s.
type landing struct{ landed, floor, raw float64 }

// benchResults measures insight uploads through the jobs service's sync
// processor until their result documents are stored; then, on the same
// servers, the floor of that design (resultsFloor) and a raw InsertMany of
// the same documents into a fresh collection of the same store.
func benchResults(ctx context.Context, dir string, n int) (landing, error) {
	rdir, err := os.MkdirTemp(dir, "results-")
	if err != nil {
		return landing{}, err
	}
	defer os.RemoveAll(rdir)
	nc, db, stop, err := servers(rdir)
	if err != nil {
		return landing{}, err
	}
	defer stop()
	cfg := jobsvc.DefaultConfig()
	cfg.DataDir = filepath.Join(dir, "data")
	svc, err := jobsvc.New(quiet(), nc, db, cfg)
	if err != nil {
		return landing{}, err
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(sctx) }()
	defer func() { cancel(); <-done }()
	for !svc.Ready() {
		time.Sleep(5 * time.Millisecond)
	}
	processed, err := count(nc, events.ProcessedSubject("org", "proj", events.Insight))
	if err != nil {
		return landing{}, err
	}
	t0 := time.Now()
	docs, err := publishUploads(nc, n, "upl", func(id string) string { return events.ReceivedSubject("org", "proj", events.Insight, id) })
	if err != nil {
		return landing{}, err
	}
	if err := processed.wait(int64(n), 5*time.Minute); err != nil {
		return landing{}, err
	}
	l := landing{landed: float64(n) / time.Since(t0).Seconds()}
	if err := waitCount(ctx, db.Collection("insight_results"), int64(n), time.Minute); err != nil {
		return landing{}, err
	}
	if l.floor, err = resultsFloor(ctx, nc, db, n); err != nil {
		return landing{}, err
	}
	l.raw, err = rawInsert(ctx, db.Collection("raw_insert"), docs)
	return l, err
}

// floorWorkers are the floor's workers: 256, where 64 (the sync
// consumer's) gave 0.30 of the raw rate and 1024 0.36 (2026-12-05, 3,000
// uploads): each waits for its batch.
const floorWorkers = 256

// resultsFloor measures the least the design does to land an upload, on
// the servers the landing ran on: the same received events, on a stream
// of their own, consumed by libs/bus's loop (floorWorkers, no
// middleware), each converted by results.FromJSON and stored
// through the processor's batching inserter, then acknowledged. No job
// record, no lifecycle, processed or alert event, no stats: what carrying
// an upload through JetStream into the store costs, beside which the rest
// of the landing is the processor's own work. It returns documents/s.
func resultsFloor(ctx context.Context, nc *nats.Conn, db *mongo.Database, n int) (float64, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, err
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "RESULTS_FLOOR", Subjects: []string{"floor.results.>"}, Storage: jetstream.FileStorage}); err != nil {
		return 0, err
	}
	cfg := bus.ConsumerConfig{Stream: "RESULTS_FLOOR", Durable: "results-floor", Filters: []string{"floor.results.>"}, Workers: floorWorkers}
	cons, err := bus.EnsureConsumer(ctx, js, cfg)
	if err != nil {
		return 0, err
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	in := results.NewInserter(lctx, results.New(db))
	var stored atomic.Int64
	done := make(chan struct{})
	t0 := time.Now()
	loop, err := bus.Consume(lctx, quiet(), cons, cfg, func(ctx context.Context, d bus.Delivery) error {
		var rc events.Received
		if err := d.Event.DataAs(&rc); err != nil {
			return bus.Permanent(err)
		}
		data, err := results.FromJSON(rc.Payload)
		if err != nil {
			return bus.Permanent(err)
		}
		r := results.Result{ID: rc.UploadID, OrganizationID: rc.OrganizationID, ProjectID: rc.ProjectID, Product: rc.Product,
			IdempotencyKey: rc.IdempotencyKey, JobID: rc.UploadID, ReceivedAt: rc.ReceivedAt, ProcessedAt: time.Now(), Data: data}
		if err := in.Insert(ctx, r); err != nil && !errors.Is(err, results.ErrExists) { // stored by a delivery before
			return err
		}
		if stored.Add(1) == int64(n) {
			close(done)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	defer loop.Stop()
	if _, err := publishUploads(nc, n, "floor", func(id string) string { return "floor.results." + id }); err != nil {
		return 0, err
	}
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		return 0, fmt.Errorf("results floor: %d of %d stored after 5m", stored.Load(), n)
	}
	return float64(n) / time.Since(t0).Seconds(), nil
}

// rawInsert InsertManys docs (batches of 100, one client), encoded before
// the clock starts, twice under new ids, and returns the faster round's
// docs/s: the first inserts after a landing run beside what it left behind.
func rawInsert(ctx context.Context, coll *mongo.Collection, docs []bson.D) (float64, error) {
	var best float64
	for round := range 2 {
		raws := make([]any, len(docs))
		for i, d := range docs {
			d = append(bson.D{{Key: "_id", Value: fmt.Sprintf("raw%d-%07d", round, i)}}, d[1:]...)
			b, err := bson.Marshal(d)
			if err != nil {
				return 0, err
			}
			raws[i] = bson.Raw(b)
		}
		t0 := time.Now()
		for i := 0; i < len(raws); i += 100 {
			if _, err := coll.InsertMany(ctx, raws[i:min(i+100, len(raws))]); err != nil {
				return 0, err
			}
		}
		best = max(best, float64(len(raws))/time.Since(t0).Seconds())
	}
	return best, nil
}

// publishUploads publishes n received Insight uploads, as the gateway
// does, ids prefix_<i>, on subject(id), and returns the result documents
// the processor stores for them (_id first), for the raw InsertMany to
// compare with.
func publishUploads(nc *nats.Conn, n int, prefix string, subject func(id string) string) ([]bson.D, error) {
	js, _ := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(16384))
	now := time.Now().UTC()
	var docs []bson.D
	var futs []jetstream.PubAckFuture
	for i := range n {
		in := events.InsightResult{ProjectID: "proj", OrganizationID: "org", Timestamp: now, Detectors: []string{"eslint"}, TotalIssues: 2,
			IssuesBySeverity: events.IssuesBySeverity{High: 1, Low: 1},
			Issues: []events.InsightIssue{{Detector: "eslint", Severity: "high", Message: fmt.Sprintf("no-unused-vars %d", i), File: "src/a.ts", Line: 3, Column: 7},
				{Detector: "eslint", Severity: "low", Message: "prefer-const", File: "src/b.ts", Line: 9, Column: 1}}}
		payload, _ := json.Marshal(in)
		id := fmt.Sprintf("%s_%06d", prefix, i)
		ev, _ := events.New("received-"+id, "/bench", events.ReceivedType(events.Insight), now, "org", "proj",
			events.Received{UploadID: id, OrganizationID: "org", ProjectID: "proj", Product: events.Insight, IdempotencyKey: id, ReceivedAt: now, Payload: payload})
		ev.Subject = id
		b, _ := json.Marshal(ev)
		m := &nats.Msg{Subject: subject(id), Data: b, Header: nats.Header{}}
		m.Header.Set(jetstream.MsgIDHeader, ev.ID)
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			return nil, err
		}
		futs = append(futs, f)
		var raw bson.Raw
		_ = bson.UnmarshalExtJSON(payload, false, &raw)
		docs = append(docs, bson.D{{Key: "_id", Value: id}, {Key: "organizationId", Value: "org"}, {Key: "projectId", Value: "proj"},
			{Key: "product", Value: "insight"}, {Key: "receivedAt", Value: now}, {Key: "data", Value: raw}})
	}
	for _, f := range futs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return nil, err
		}
	}
	return docs, nil
}
