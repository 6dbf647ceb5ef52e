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
	// then is inserted into AlertsCollection in the same flush, once the
	// document is stored (or was already): a result's critical alert.
	then *Alert
	// answer is the document's own answer, kept while its alert is inserted.
	answer error
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

// InsertWithAlert stores r and then, in the same flush, its alert a (an
// alert is never stored before its result). The answer is r's: nil,
// ErrExists (a's insert made sure of all the same), or the first error.
func (in *Inserter) InsertWithAlert(ctx context.Context, r Result, a Alert) error {
	return in.enqueue(ctx, Collection(r.Product), insertReq{id: r.ID, doc: r, then: &a})
}

func (in *Inserter) insert(ctx context.Context, c, id string, doc any) error {
	return in.enqueue(ctx, c, insertReq{id: id, doc: doc})
}

func (in *Inserter) enqueue(ctx context.Context, c string, req insertReq) error {
	req.done = make(chan error, 1)
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
	alerts := all[AlertsCollection]
	delete(all, AlertsCollection)
	var after []insertReq // the requests waiting for their alert
	for coll, reqs := range all {
		for i := 0; i < len(reqs); i += 100 {
			for _, q := range in.write(coll, reqs[i:min(i+100, len(reqs))]) {
				if q.then == nil {
					continue
				}
				alerts = append(alerts, insertReq{id: q.then.ID, doc: *q.then, done: make(chan error, 1)})
				after = append(after, q)
			}
		}
	}
	for i := 0; i < len(alerts); i += 100 {
		in.write(AlertsCollection, alerts[i:min(i+100, len(alerts))])
	}
	for i, q := range after { // the alerts of these are the last len(after)
		err := <-alerts[len(alerts)-len(after)+i].done
		if err == nil || errors.Is(err, ErrExists) {
			err = q.answer
		}
		q.done <- err
	}
}

// write inserts one batch and answers its requests, except those with an
// alert to insert after them whose document is stored: it returns those,
// each with its answer kept.
func (in *Inserter) write(coll string, reqs []insertReq) []insertReq {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	docs := make([]any, len(reqs))
	for i, q := range reqs {
		docs[i] = q.doc
	}
	_, err := in.s.db.Collection(coll).InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	answers := make([]error, len(reqs))
	var bwe mongo.BulkWriteException
	switch {
	case err == nil:
	case !errors.As(err, &bwe) || bwe.WriteConcernError != nil:
		for i := range answers {
			answers[i] = fmt.Errorf("inserting into %s: %w", coll, err)
		}
	default:
		for _, we := range bwe.WriteErrors {
			if mongo.IsDuplicateKeyError(we) {
				answers[we.Index] = ErrExists
			} else {
				answers[we.Index] = fmt.Errorf("inserting %s into %s: %s", reqs[we.Index].id, coll, we.Message)
			}
		}
	}
	var then []insertReq
	for i, q := range reqs {
		if q.then != nil && (answers[i] == nil || errors.Is(answers[i], ErrExists)) {
			q.answer = answers[i]
			then = append(then, q)
			continue
		}
		q.done <- answers[i]
	}
	return then
}
