package jobstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/jobs"
)

// ProjectionConsumer is the durable consumer of the bucket's stream that
// feeds the projection (shared by every instance: each batch is applied by
// one of them).
const ProjectionConsumer = "jobs-projection"

// ProjectionOptions tune a Projection.
type ProjectionOptions struct {
	// Batch is the most entries applied at once (default 2000); Wait is how
	// long a batch may wait to fill (default 50ms).
	Batch int
	Wait  time.Duration
	// Keep decides which finished records are kept (default: all).
	Keep Retention
	// Replicas is the bucket's replica count (as the Writer's).
	Replicas int
}

// Projection copies finished job records from the bucket to MongoDB, where
// the job history is listed, filtered and counted. It reads the bucket's
// stream with a durable consumer, in large batches; of each job only the
// batch's newest entry counts. A finished record is inserted (or replaces
// the record of an older generation; one of the same generation stands),
// then the batch is acknowledged, then the entry is taken out of the bucket
// if it has not changed since. Applying an entry twice changes nothing, so
// a crash anywhere in between costs a repeat, never a loss: the entry
// stays in the bucket, where every read finds it, until its record is in
// MongoDB. The entries are taken out after the acknowledgement because
// JetStream's purge of a key rewrites the state of the consumer, whose
// pending batch would make every purge cost as much as the batch; an
// entry a crash left behind after its batch was acknowledged is taken out
// when the projection starts again (sweep).
type Projection struct {
	s    *Store
	js   jetstream.JetStream
	kv   jetstream.KeyValue
	cons jetstream.Consumer
	log  *slog.Logger
	opt  ProjectionOptions
	loop *bus.BatchLoop
	// begun counts the batches whose entries are to be taken out once
	// acknowledged, taken those whose entries were (CatchUp waits for them).
	begun, taken atomic.Uint64
}

// StartProjection starts the projection of the bucket into s.
func StartProjection(ctx context.Context, js jetstream.JetStream, s *Store, log *slog.Logger, o ProjectionOptions) (*Projection, error) {
	if o.Batch <= 0 {
		o.Batch = 2000
	}
	if o.Wait <= 0 {
		o.Wait = 50 * time.Millisecond
	}
	kv, err := OpenBucket(ctx, js, o.Replicas)
	if err != nil {
		return nil, err
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading bucket %s: %w", Bucket, err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.Name, jetstream.ConsumerConfig{
		Durable:       ProjectionConsumer,
		Description:   "ODAVL Sync job records into MongoDB",
		AckPolicy:     jetstream.AckAllPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       time.Minute,
		MaxAckPending: 4 * o.Batch,
	})
	if err != nil {
		return nil, fmt.Errorf("creating consumer %s: %w", ProjectionConsumer, err)
	}
	p := &Projection{s: s, js: js, kv: kv, cons: cons, log: log, opt: o}
	if err := p.sweep(ctx); err != nil {
		return nil, err
	}
	p.loop = bus.ConsumeBatchesThen(context.WithoutCancel(ctx), log, cons, o.Batch, o.Wait, time.Second, p.apply)
	return p, nil
}

// sweep takes out of the bucket the finished entries already projected
// (at or below the consumer's acknowledgement floor) that a crash left
// there between a batch's acknowledgement and their purge.
func (p *Projection) sweep(ctx context.Context) error {
	ci, err := p.cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("reading consumer %s: %w", ProjectionConsumer, err)
	}
	floor := ci.AckFloor.Stream
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	wt, err := p.kv.WatchAll(wctx, jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("reading bucket %s: %w", Bucket, err)
	}
	defer func() { _ = wt.Stop() }()
	var left []projected
	for e := range wt.Updates() {
		if e == nil {
			break // the bucket as it was, read
		}
		if e.Revision() > floor {
			continue
		}
		var r Record
		if err := json.Unmarshal(e.Value(), &r); err == nil && jobs.Terminal(r.Status) && r.Status != jobs.Cleared {
			left = append(left, projected{r, e.Revision()})
		}
	}
	if wctx.Err() != nil {
		return fmt.Errorf("reading bucket %s: %w", Bucket, wctx.Err())
	}
	return p.takeOut(ctx, left)
}

// Stop stops the projection after the batch in hand.
func (p *Projection) Stop() { p.loop.Stop() }

// CatchUp waits until every entry the bucket held when it was called is
// projected (by whichever instance): a clear or a count that must see
// every finished job calls it first. The consumer's acknowledgement floor
// says so; its pending counts do not (they lag a message just stored), and
// a floor short of the target is checked against the stream itself: what
// lies between may have been deleted (a purge marker that expired). It
// then waits for this instance's purges of what it projected (takenOut).
func (p *Projection) CatchUp(ctx context.Context) error {
	st, err := p.kv.Status(ctx)
	if err != nil {
		return fmt.Errorf("reading bucket %s: %w", Bucket, err)
	}
	info := st.(*jetstream.KeyValueBucketStatus).StreamInfo()
	target := info.State.LastSeq
	for {
		ci, err := p.cons.Info(ctx)
		if err != nil {
			return fmt.Errorf("reading consumer %s: %w", ProjectionConsumer, err)
		}
		if ci.AckFloor.Stream >= target {
			return p.takenOut(ctx)
		}
		if ci.NumAckPending == 0 {
			left, err := p.stored(ctx, info.Config.Name, ci.AckFloor.Stream+1, target)
			if err != nil {
				return err
			}
			if !left {
				return p.takenOut(ctx)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the job records are not all projected yet: %w", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// stored reports whether the bucket's stream holds a message with a
// sequence from from to to.
func (p *Projection) stored(ctx context.Context, stream string, from, to uint64) (bool, error) {
	s, err := p.js.Stream(ctx, stream)
	if err != nil {
		return false, err
	}
	m, err := s.GetMsg(ctx, from, jetstream.WithGetMsgSubject(">"))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return m.Sequence <= to, nil
}

// takenOut waits until this instance has taken out of the bucket the
// entries of every batch it has acknowledged so far (those of another
// instance follow at their own pace; reads find them as stored meanwhile).
func (p *Projection) takenOut(ctx context.Context) error {
	want := p.begun.Load()
	for p.taken.Load() < want {
		select {
		case <-ctx.Done():
			return fmt.Errorf("the projected entries are not all taken out yet: %w", ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

type projected struct {
	rec Record
	rev uint64
}

// apply projects one batch of the bucket's entries; what it returns takes
// the finished ones out of the bucket once the batch is acknowledged.
func (p *Projection) apply(ctx context.Context, msgs []jetstream.Msg) (func(context.Context), error) {
	newest := make(map[string]projected, len(msgs))
	for _, m := range msgs {
		if len(m.Data()) == 0 || m.Headers().Get("KV-Operation") != "" {
			continue // an entry taken out
		}
		var r Record
		if err := json.Unmarshal(m.Data(), &r); err != nil || r.ID == "" {
			p.log.Error("undecodable job entry skipped", "subject", m.Subject(), "err", err)
			continue
		}
		meta, err := m.Metadata()
		if err != nil {
			return nil, err
		}
		newest[r.ID] = projected{r, meta.Sequence.Stream}
	}
	var finals []projected
	var keep []any
	for _, e := range newest {
		if !jobs.Terminal(e.rec.Status) || e.rec.Status == jobs.Cleared {
			continue
		}
		finals = append(finals, e)
		if !p.opt.Keep.RemoveAtOnce(e.rec) {
			keep = append(keep, e.rec)
		}
	}
	if err := p.insert(ctx, keep); err != nil {
		return nil, err
	}
	if len(finals) == 0 {
		return nil, nil
	}
	p.begun.Add(1)
	return func(ctx context.Context) {
		defer p.taken.Add(1)
		if err := p.takeOut(ctx, finals); err != nil {
			// Left in the bucket, where reads find them as stored; the
			// next start sweeps them out.
			p.log.Warn("projected job entries not taken out of the bucket", "err", err)
		}
	}, nil
}

// insert writes finished records, in chunks side by side: the store
// decodes and encodes each document on its connection's goroutine, and
// only SQLite's own write is one at a time.
func (p *Projection) insert(ctx context.Context, docs []any) error {
	const chunk = 250
	var wg sync.WaitGroup
	errs := make([]error, (len(docs)+chunk-1)/chunk)
	sem := make(chan struct{}, 4)
	for i := 0; i < len(docs); i += chunk {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i/chunk] = p.insertChunk(ctx, docs[i:min(i+chunk, len(docs))])
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// insertChunk inserts records; one that exists already (a job retried by
// hand, or a repeat of this batch) is replaced only by a newer generation.
func (p *Projection) insertChunk(ctx context.Context, docs []any) error {
	_, err := p.s.coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err == nil {
		return nil
	}
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil {
		return fmt.Errorf("inserting job records: %w", err)
	}
	for _, we := range bwe.WriteErrors {
		if !mongo.IsDuplicateKeyError(we) {
			return fmt.Errorf("inserting job records: %w", we)
		}
		r := docs[we.Index].(Record)
		// Upsert: the older record may have been deleted meanwhile; a
		// record of the same generation makes it a duplicate, and stands.
		_, rerr := p.s.coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: r.ID}, {Key: "generation", Value: bson.D{{Key: "$lt", Value: r.Generation}}}},
			r, options.Replace().SetUpsert(true))
		if rerr != nil && !mongo.IsDuplicateKeyError(rerr) {
			return fmt.Errorf("replacing job record %s: %w", r.ID, rerr)
		}
	}
	return nil
}

// takeOut removes the entries of projected records from the bucket, each
// only if it is still the revision projected (a retry made since keeps its
// entry), trying each up to three times. The markers left expire after
// markerTTL.
func (p *Projection) takeOut(ctx context.Context, finals []projected) error {
	var wg sync.WaitGroup
	errs := make([]error, len(finals))
	sem := make(chan struct{}, 256)
	for i, e := range finals {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			for range 3 {
				err := p.kv.Purge(ctx, e.rec.ID, jetstream.LastRevision(e.rev), jetstream.PurgeTTL(markerTTL))
				if err == nil || revisionConflict(err) {
					errs[i] = nil
					return
				}
				errs[i] = fmt.Errorf("taking job %s out of the bucket: %w", e.rec.ID, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
