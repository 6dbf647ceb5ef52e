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
// it current for every organization. Product figures come from src (the
// stored results); job and file figures, whose source documents the stats
// service cannot read, are carried over from the current generations.
// Changes are held while it runs.
//
// It is safe to interrupt: the generation being written is recorded first,
// and Recover reports it so that the service finishes the rebuild before it
// counts anything else (the ledger may already hold ids that only the new
// generation counts).
//
// The changes organizations' own rebuilds deferred are not counted by
// Rebuild: call Drain after it.
func (s *Store) Rebuild(ctx context.Context, src Source) (res RebuildResult, err error) {
	s.rebuildMu.Lock()
	defer s.rebuildMu.Unlock()
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
	orgs, err := s.orgMetas(ctx)
	if err != nil {
		return RebuildResult{}, err
	}
	// Above every generation in use or being written by anyone.
	next := max(m.Generation+1, m.Rebuilding)
	for _, om := range orgs {
		next = max(next, om.Generation+1, om.Rebuilding+1)
	}
	if _, err := s.meta.UpdateOne(ctx, bson.D{{Key: "_id", Value: metaID}}, bson.D{{Key: "$set", Value: bson.D{{Key: "rebuilding", Value: next}}}}); err != nil {
		return RebuildResult{}, fmt.Errorf("recording rebuild: %w", err)
	}
	if _, err := s.agg.DeleteMany(ctx, bson.D{{Key: "gen", Value: next}}); err != nil {
		return RebuildResult{}, fmt.Errorf("clearing generation %d: %w", next, err)
	}
	b := newBuilder(next)
	if err := s.build(ctx, b, src, "", &res, &wroteLedger); err != nil {
		return RebuildResult{}, err
	}
	// Job and file figures are carried over from each organization's current generation.
	if err := s.carryOver(ctx, b, bson.D{{Key: "gen", Value: bson.D{{Key: "$lt", Value: next}}}}); err != nil {
		return RebuildResult{}, err
	}
	if err := s.write(ctx, b); err != nil {
		return RebuildResult{}, err
	}
	res.Aggregates = int64(len(b.aggs))

	if _, err := s.meta.UpdateOne(ctx, bson.D{{Key: "_id", Value: metaID}}, bson.D{{Key: "$set", Value: bson.D{{Key: "gen", Value: next}, {Key: "rebuilding", Value: int64(0)}}}}); err != nil {
		return RebuildResult{}, fmt.Errorf("switching to generation %d: %w", next, err)
	}
	s.gen.Store(next)
	res.Generation = next
	// Every organization is in the new generation now, those held by an
	// unfinished rebuild of their own included: the records of
	// organizations' generations are older than it, so ignored, and removed.
	s.orgMu.Lock()
	clear(s.orgGen)
	s.orgMu.Unlock()
	s.gate.releaseAll()
	if _, err := s.meta.DeleteMany(ctx, bson.D{{Key: "org", Value: bson.D{{Key: "$exists", Value: true}}}}); err != nil {
		return res, fmt.Errorf("removing organizations' generations: %w", err)
	}
	if _, err := s.agg.DeleteMany(ctx, bson.D{{Key: "gen", Value: bson.D{{Key: "$lt", Value: next}}}}); err != nil {
		return res, fmt.Errorf("dropping old generations: %w", err)
	}
	return res, nil
}

// orgMeta records the generation of an organization rebuilt on its own,
// and the one its rebuild is writing. Either is ignored when not newer than
// the deployment's generation (a rebuild of everything came after it).
type orgMeta struct {
	ID             string `bson:"_id"`
	OrganizationID string `bson:"org"`
	Generation     int64  `bson:"gen"`
	Rebuilding     int64  `bson:"rebuilding"`
}

func orgMetaID(org string) string { return "org|" + org }

func (s *Store) orgMetas(ctx context.Context) ([]orgMeta, error) {
	cur, err := s.meta.Find(ctx, bson.D{{Key: "org", Value: bson.D{{Key: "$exists", Value: true}}}})
	if err != nil {
		return nil, fmt.Errorf("reading organizations' generations: %w", err)
	}
	var out []orgMeta
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("reading organizations' generations: %w", err)
	}
	return out, nil
}

// RebuildOrganization recomputes org's aggregates alone, as Rebuild does
// every organization's, into a generation of its own, while the other
// organizations go on counting into theirs. Src may pass changes of other
// organizations: they are skipped.
//
// While it runs, org's changes are not counted but set aside (Apply
// returns once they are, so they hold neither workers nor pending
// acknowledgements that other organizations need); Drain counts them after
// it, through the ledger, so each counts once whether or not the rebuild's
// source had it. A failure after the ledger was written leaves org held
// (Held) until a rebuild of it, or of everything, finishes; an interrupted
// one is reported by Recover.
func (s *Store) RebuildOrganization(ctx context.Context, org string, src Source) (res RebuildResult, err error) {
	s.rebuildMu.Lock()
	defer s.rebuildMu.Unlock()
	if s.unfinished.Load() {
		return RebuildResult{}, ErrRebuildUnfinished
	}
	s.gate.hold(org)
	wroteLedger, recorded := false, false
	defer func() {
		if err != nil && wroteLedger {
			return // the ledger may hold ids org's current generation does not count: org stays held
		}
		if err != nil && recorded {
			if _, uerr := s.meta.UpdateOne(context.WithoutCancel(ctx), bson.D{{Key: "_id", Value: orgMetaID(org)}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "rebuilding", Value: int64(0)}}}}); uerr != nil {
				return // a restart would finish it: keep org held as the restart would
			}
		}
		s.gate.release(org)
	}()
	if err := s.sweep(ctx, org); err != nil {
		return RebuildResult{}, err
	}
	var om orgMeta
	if err := s.meta.FindOne(ctx, bson.D{{Key: "_id", Value: orgMetaID(org)}}).Decode(&om); err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return RebuildResult{}, fmt.Errorf("reading the generation of %s: %w", org, err)
	}
	old := s.GenerationOf(org)
	next := max(old+1, om.Rebuilding)
	if _, err := s.meta.UpdateOne(ctx, bson.D{{Key: "_id", Value: orgMetaID(org)}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "org", Value: org}, {Key: "rebuilding", Value: next}}}},
		options.UpdateOne().SetUpsert(true)); err != nil {
		return RebuildResult{}, fmt.Errorf("recording the rebuild of %s: %w", org, err)
	}
	recorded = true
	if _, err := s.agg.DeleteMany(ctx, bson.D{{Key: "gen", Value: next}, {Key: "org", Value: org}}); err != nil {
		return RebuildResult{}, fmt.Errorf("clearing generation %d of %s: %w", next, org, err)
	}
	b := newBuilder(next)
	if err := s.build(ctx, b, src, org, &res, &wroteLedger); err != nil {
		return RebuildResult{}, err
	}
	if err := s.carryOver(ctx, b, bson.D{{Key: "gen", Value: old}, {Key: "org", Value: org}}); err != nil {
		return RebuildResult{}, err
	}
	if err := s.write(ctx, b); err != nil {
		return RebuildResult{}, err
	}
	res.Aggregates = int64(len(b.aggs))
	if _, err := s.meta.UpdateOne(ctx, bson.D{{Key: "_id", Value: orgMetaID(org)}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "gen", Value: next}, {Key: "rebuilding", Value: int64(0)}}}}); err != nil {
		return RebuildResult{}, fmt.Errorf("switching %s to generation %d: %w", org, next, err)
	}
	s.orgMu.Lock()
	s.orgGen[org] = next
	s.orgMu.Unlock()
	res.Generation = next
	if _, err := s.agg.DeleteMany(ctx, bson.D{{Key: "org", Value: org}, {Key: "gen", Value: bson.D{{Key: "$lt", Value: next}}}}); err != nil {
		return res, fmt.Errorf("dropping old generations of %s: %w", org, err)
	}
	return res, nil
}

// builder collects the aggregates of a generation being written.
type builder struct {
	gen      int64
	aggs     map[string]*Aggregate
	projects map[string]map[string]bool
}

func newBuilder(gen int64) *builder {
	return &builder{gen: gen, aggs: map[string]*Aggregate{}, projects: map[string]map[string]bool{}}
}

func (b *builder) add(org, project, day string, inc map[string]int64) {
	month, dd := MonthOf(day)
	for _, period := range []string{month, AllTime} {
		key := Key(b.gen, org, project, period)
		a := b.aggs[key]
		if a == nil {
			a = &Aggregate{ID: key, Generation: b.gen, OrganizationID: org, ProjectID: project, Period: period}
			b.aggs[key] = a
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
	if b.projects[org] == nil {
		b.projects[org] = map[string]bool{}
	}
	b.projects[org][project] = true
}

// build adds the changes of src (org's only, unless org is empty) and
// records their ids in the ledger.
func (s *Store) build(ctx context.Context, b *builder, src Source, org string, res *RebuildResult, wroteLedger *bool) error {
	err := src(ctx, func(cs []tally.Change) error {
		ids := make([]any, 0, len(cs))
		for _, c := range cs {
			if org != "" && c.OrganizationID != org {
				continue // never in the ledger: another organization counts it
			}
			b.add(c.OrganizationID, c.ProjectID, c.Day, c.Inc)
			ids = append(ids, bson.D{{Key: "_id", Value: c.ID}, {Key: "at", Value: s.now().UTC()}})
		}
		if len(ids) == 0 {
			return nil
		}
		res.Changes += int64(len(ids))
		*wroteLedger = true
		return s.insertIgnoringDuplicates(ctx, s.ledger, ids)
	})
	if err != nil {
		return fmt.Errorf("reading the source documents: %w", err)
	}
	return nil
}

// carryOver adds the job and file figures of the current generation's
// month aggregates that filter selects (those of an organization's current
// generation only).
func (s *Store) carryOver(ctx context.Context, b *builder, filter bson.D) error {
	cur, err := s.agg.Find(ctx, filter)
	if err != nil {
		return fmt.Errorf("reading the current aggregates: %w", err)
	}
	defer func() { _ = cur.Close(ctx) }()
	for cur.Next(ctx) {
		var a Aggregate
		if err := cur.Decode(&a); err != nil {
			return fmt.Errorf("decoding aggregate: %w", err)
		}
		if a.Period == AllTime || a.ProjectID == "" || a.Generation != s.GenerationOf(a.OrganizationID) {
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
				b.add(a.OrganizationID, a.ProjectID, a.Period+"-"+dd, carried)
			}
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("reading the current aggregates: %w", err)
	}
	return nil
}

// write inserts the builder's aggregates and project lists.
func (s *Store) write(ctx context.Context, b *builder) error {
	docs := make([]any, 0, len(b.aggs)+len(b.projects))
	for _, a := range b.aggs {
		docs = append(docs, a)
	}
	for org, ps := range b.projects {
		set := bson.D{}
		for p := range ps {
			set = append(set, bson.E{Key: p, Value: true})
		}
		docs = append(docs, bson.D{{Key: "_id", Value: RegistryKey(b.gen, org)}, {Key: "gen", Value: b.gen}, {Key: "org", Value: org}, {Key: "period", Value: "~projects"}, {Key: "projects", Value: set}})
	}
	for i := 0; i < len(docs); i += 100 {
		if _, err := s.agg.InsertMany(ctx, docs[i:min(i+100, len(docs))]); err != nil {
			return fmt.Errorf("writing generation %d: %w", b.gen, err)
		}
	}
	return nil
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
