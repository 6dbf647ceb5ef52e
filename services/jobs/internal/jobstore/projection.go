package jobstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
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
// then its entry is taken out of the bucket if it has not changed since.
// Applying an entry twice changes nothing, so a crash anywhere in between
// costs a repeat, never a loss: the entry stays in the bucket, where every
// read finds it, until its record is in MongoDB.
type Projection struct {
	s    *Store
	js   jetstream.JetStream
	kv   jetstream.KeyValue
	cons jetstream.Consumer
	log  *slog.Logger
	opt  ProjectionOptions
	loop *bus.BatchLoop
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
	p.loop = bus.ConsumeBatches(context.WithoutCancel(ctx), log, cons, o.Batch, o.Wait, time.Second, p.apply)
	return p, nil
}

// Stop stops the projection after the batch in hand.
func (p *Projection) Stop() { p.loop.Stop() }

// CatchUp waits until every entry the bucket held when it was called is
// projected (by whichever instance): a clear or a count that must see
// every finished job calls it first. The consumer's acknowledgement floor
// says so; its pending counts do not (they lag a message just stored), and
// a floor short of the target is checked against the stream itself: what
// lies between may have been deleted (a purge marker that expired).
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
			return nil
		}
		if ci.NumAckPending == 0 {
			left, err := p.stored(ctx, info.Config.Name, ci.AckFloor.Stream+1, target)
			if err != nil || !left {
				return err
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

type projected struct {
	rec Record
	rev uint64
}

// apply projects one batch of the bucket's entries.
func (p *Projection) apply(ctx context.Context, msgs []jetstream.Msg) error {
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
			return err
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
		return err
	}
	return p.takeOut(ctx, finals)
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
// entry). The markers left expire after markerTTL.
func (p *Projection) takeOut(ctx context.Context, finals []projected) error {
	var wg sync.WaitGroup
	errs := make([]error, len(finals))
	sem := make(chan struct{}, 256)
	for i, e := range finals {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := p.kv.Purge(ctx, e.rec.ID, jetstream.LastRevision(e.rev), jetstream.PurgeTTL(markerTTL))
			if err != nil && !revisionConflict(err) {
				errs[i] = fmt.Errorf("taking job %s out of the bucket: %w", e.rec.ID, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
