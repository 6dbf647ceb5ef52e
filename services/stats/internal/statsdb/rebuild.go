package statsdb

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/odavl/sync/services/stats/internal/tally"
)

// Source feeds a rebuild: it passes every change of the source documents to
// each, in batches.
type Source func(ctx context.Context, each func([]tally.Change) error) error

// RebuildResult reports a rebuild.
type RebuildResult struct {
	Generation int64
	Changes    int64
	Aggregates int64
}

// Rebuild recomputes every aggregate into a fresh generation and then makes
// it current. Product figures come from src (the stored results); job and
// file figures, whose source documents the stats service cannot read, are
// carried over from the current generation. Changes are held while it runs.
//
// It is safe to interrupt: the generation being written is recorded first,
// and Recover reports it so that the service finishes the rebuild before it
// counts anything else (the ledger may already hold ids that only the new
// generation counts).
func (s *Store) Rebuild(ctx context.Context, src Source) (res RebuildResult, err error) {
	s.genMu.Lock()
	defer s.genMu.Unlock()
	wroteLedger := false
	defer func() {
		switch {
		case err == nil:
			s.unfinished.Store(false)
		case !wroteLedger:
			// Nothing the current generation relies on changed: go on counting into it.
			if _, uerr := s.meta.UpdateOne(context.WithoutCancel(ctx), bson.D{{Key: "_id", Value: metaID}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "rebuilding", Value: int64(0)}}}}); uerr != nil {
				s.unfinished.Store(true)
			}
		default:
			// The ledger may hold ids the current generation does not count:
			// nothing is counted until a rebuild finishes.
			s.unfinished.Store(true)
		}
	}()
	if err := s.Sweep(ctx); err != nil {
		return RebuildResult{}, err
	}
	var m meta
	if err := s.meta.FindOne(ctx, bson.D{{Key: "_id", Value: metaID}}).Decode(&m); err != nil {
		return RebuildResult{}, fmt.Errorf("reading stats meta: %w", err)
	}
	old, next := m.Generation, max(m.Generation+1, m.Rebuilding)
	if _, err := s.meta.UpdateOne(ctx, bson.D{{Key: "_id", Value: metaID}}, bson.D{{Key: "$set", Value: bson.D{{Key: "rebuilding", Value: next}}}}); err != nil {
		return RebuildResult{}, fmt.Errorf("recording rebuild: %w", err)
	}
	if _, err := s.agg.DeleteMany(ctx, bson.D{{Key: "gen", Value: next}}); err != nil {
		return RebuildResult{}, fmt.Errorf("clearing generation %d: %w", next, err)
	}

	aggs := map[string]*Aggregate{}
	projects := map[string]map[string]bool{}
	add := func(org, project, day string, inc map[string]int64) {
		month, dd := MonthOf(day)
		for _, period := range []string{month, AllTime} {
			key := Key(next, org, project, period)
			a := aggs[key]
			if a == nil {
				a = &Aggregate{ID: key, Generation: next, OrganizationID: org, ProjectID: project, Period: period}
				aggs[key] = a
			}
			if period == AllTime {
				if a.Counters == nil {
					a.Counters = tally.Counters{}
				}
				a.Counters.Add(inc)
				continue
			}
			if a.Days == nil {
				a.Days = map[string]tally.Counters{}
			}
			if a.Days[dd] == nil {
				a.Days[dd] = tally.Counters{}
			}
			a.Days[dd].Add(inc)
		}
		if projects[org] == nil {
			projects[org] = map[string]bool{}
		}
		projects[org][project] = true
	}
	err = src(ctx, func(cs []tally.Change) error {
		ids := make([]any, 0, len(cs))
		for _, c := range cs {
			add(c.OrganizationID, c.ProjectID, c.Day, c.Inc)
			ids = append(ids, bson.D{{Key: "_id", Value: c.ID}, {Key: "at", Value: s.now().UTC()}})
		}
		res.Changes += int64(len(cs))
		wroteLedger = true
		return s.insertIgnoringDuplicates(ctx, s.ledger, ids)
	})
	if err != nil {
		return RebuildResult{}, fmt.Errorf("reading the source documents: %w", err)
	}

	// Job and file figures are carried over.
	cur, err := s.agg.Find(ctx, bson.D{{Key: "gen", Value: old}})
	if err != nil {
		return RebuildResult{}, fmt.Errorf("reading generation %d: %w", old, err)
	}
	for cur.Next(ctx) {
		var a Aggregate
		if err := cur.Decode(&a); err != nil {
			_ = cur.Close(ctx)
			return RebuildResult{}, fmt.Errorf("decoding aggregate: %w", err)
		}
		if a.Period == AllTime || a.ProjectID == "" {
			continue // the all-time figures are re-summed from the days
		}
		for dd, cs := range a.Days {
			carried := map[string]int64{}
			for k, v := range cs {
				if strings.HasPrefix(k, tally.JobPrefix) || strings.HasPrefix(k, tally.FilePrefix) {
					carried[k] = v
				}
			}
			if len(carried) > 0 {
				add(a.OrganizationID, a.ProjectID, a.Period+"-"+dd, carried)
			}
		}
	}
	if err := cur.Err(); err != nil {
		return RebuildResult{}, fmt.Errorf("reading generation %d: %w", old, err)
	}
	_ = cur.Close(ctx)

	docs := make([]any, 0, len(aggs)+len(projects))
	for _, a := range aggs {
		docs = append(docs, a)
	}
	for org, ps := range projects {
		set := bson.D{}
		for p := range ps {
			set = append(set, bson.E{Key: p, Value: true})
		}
		docs = append(docs, bson.D{{Key: "_id", Value: RegistryKey(next, org)}, {Key: "gen", Value: next}, {Key: "org", Value: org}, {Key: "period", Value: "~projects"}, {Key: "projects", Value: set}})
	}
	for i := 0; i < len(docs); i += 100 {
		if _, err := s.agg.InsertMany(ctx, docs[i:min(i+100, len(docs))]); err != nil {
			return RebuildResult{}, fmt.Errorf("writing generation %d: %w", next, err)
		}
	}
	res.Aggregates = int64(len(aggs))

	if _, err := s.meta.UpdateOne(ctx, bson.D{{Key: "_id", Value: metaID}}, bson.D{{Key: "$set", Value: bson.D{{Key: "gen", Value: next}, {Key: "rebuilding", Value: int64(0)}}}}); err != nil {
		return RebuildResult{}, fmt.Errorf("switching to generation %d: %w", next, err)
	}
	s.gen.Store(next)
	res.Generation = next
	if _, err := s.agg.DeleteMany(ctx, bson.D{{Key: "gen", Value: bson.D{{Key: "$lt", Value: next}}}}); err != nil {
		return res, fmt.Errorf("dropping old generations: %w", err)
	}
	return res, nil
}

func (s *Store) insertIgnoringDuplicates(ctx context.Context, coll *mongo.Collection, docs []any) error {
	for i := 0; i < len(docs); i += 500 {
		_, err := coll.InsertMany(ctx, docs[i:min(i+500, len(docs))], options.InsertMany().SetOrdered(false))
		var bwe mongo.BulkWriteException
		if errors.As(err, &bwe) && bwe.WriteConcernError == nil && allDuplicates(bwe) {
			continue
		}
		if err != nil && !mongo.IsDuplicateKeyError(err) {
			return fmt.Errorf("writing ledger: %w", err)
		}
	}
	return nil
}

func allDuplicates(e mongo.BulkWriteException) bool {
	for _, we := range e.WriteErrors {
		if we.Code != 11000 {
			return false
		}
	}
	return true
}
