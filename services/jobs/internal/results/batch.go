package results

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Inserter batches the inserts of concurrent callers into InsertMany calls
// (the embedded store takes ~9k batched inserts/s, ~1k single ones, and has
// one writer: a single insert costs it a transaction of its own). Each
// caller still gets its own answer: nil, ErrExists, or the error.
type Inserter struct {
	s    *Store
	mu   sync.Mutex
	reqs map[string][]insertReq // by collection
	kick chan struct{}
}

type insertReq struct {
	id   string
	doc  any
	done chan error
}

// NewInserter starts an inserter over s; it stops with ctx.
func NewInserter(ctx context.Context, s *Store) *Inserter {
	in := &Inserter{s: s, reqs: map[string][]insertReq{}, kick: make(chan struct{}, 1)}
	go in.loop(ctx)
	return in
}

// Insert stores r in the next batch and waits for it; a result stored
// already is ErrExists.
func (in *Inserter) Insert(ctx context.Context, r Result) error {
	return in.insert(ctx, Collection(r.Product), r.ID, r)
}

// InsertAlert stores a in the next batch of alerts and waits for it; an
// alert stored already is left as it is (nil), as Store.InsertAlert.
func (in *Inserter) InsertAlert(ctx context.Context, a Alert) error {
	if err := in.insert(ctx, AlertsCollection, a.ID, a); err != nil && !errors.Is(err, ErrExists) {
		return err
	}
	return nil
}

func (in *Inserter) insert(ctx context.Context, c, id string, doc any) error {
	req := insertReq{id: id, doc: doc, done: make(chan error, 1)}
	in.mu.Lock()
	in.reqs[c] = append(in.reqs[c], req)
	in.mu.Unlock()
	select {
	case in.kick <- struct{}{}:
	default:
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (in *Inserter) loop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			in.flush() // answer whoever still waits
			return
		case <-in.kick:
		}
		time.Sleep(2 * time.Millisecond) // let concurrent callers join
		in.flush()
	}
}

func (in *Inserter) flush() {
	in.mu.Lock()
	all := in.reqs
	in.reqs = map[string][]insertReq{}
	in.mu.Unlock()
	for coll, reqs := range all {
		for i := 0; i < len(reqs); i += 100 {
			in.write(coll, reqs[i:min(i+100, len(reqs))])
		}
	}
}

func (in *Inserter) write(coll string, reqs []insertReq) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	docs := make([]any, len(reqs))
	for i, q := range reqs {
		docs[i] = q.doc
	}
	_, err := in.s.db.Collection(coll).InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err == nil {
		for _, q := range reqs {
			q.done <- nil
		}
		return
	}
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil {
		for _, q := range reqs {
			q.done <- fmt.Errorf("inserting into %s: %w", coll, err)
		}
		return
	}
	failed := map[int]error{}
	for _, we := range bwe.WriteErrors {
		if mongo.IsDuplicateKeyError(we) {
			failed[we.Index] = ErrExists
		} else {
			failed[we.Index] = fmt.Errorf("inserting %s into %s: %s", reqs[we.Index].id, coll, we.Message)
		}
	}
	for i, q := range reqs {
		q.done <- failed[i]
	}
}
