// Package statsdb keeps the stats service's aggregates in MongoDB: sums and
// counts per organization, project and UTC day, maintained with $inc
// upserts, plus the ledger that makes each counted change take effect
// exactly once. A project's days are kept in one document per month (field
// d.<DD>.<counter>), so a 30-day range is read with two lookups by _id, and
// a second document per project holds its all-time sums (c.<counter>).
//
// # Exactly once without transactions
//
// A change (one event) is applied in idempotent steps, under the lock of
// its project:
//
//  1. If the ledger holds the change's id, it was counted: done.
//  2. An in-flight record keyed by the change id is inserted (a duplicate
//     means an earlier attempt got this far).
//  3. Each aggregate document the change touches gets its $inc with a
//     filter {last: {$ne: id}} and $set {last: id}, upserted: a repeat
//     matches nothing and its upsert fails with a duplicate key, so it
//     cannot apply twice.
//  4. The change id goes into the ledger; 5. the in-flight record is deleted.
//
// Step 3 is safe because no other change is applied to a document while a
// change touching it is in flight: before applying a change, every
// unfinished change of the same project is finished first (the store keeps
// them in memory, and Recover loads them from the in-flight records a crash
// left). A crash at any point leaves the event unacknowledged, so it is
// redelivered, and its steps resume where they stopped.
//
// Changes of one project are applied in batches (group commit): while one
// batch is written, the changes that arrive wait for its end and then go
// together, as one in-flight record, one $inc per aggregate document and one
// ledger insert. The steps above hold for a batch as for one change.
//
// The serialisation per project is part of the algorithm, not a workaround
// of the store: step 3's guard only holds if no other change reaches the
// document between a change's steps. It lives in this process's memory, so
// one stats instance counts a store's changes (MongoDB would need a
// transaction or a lease per project to run several).
//
// # Generations
//
// Every aggregate belongs to a generation. A rebuild writes a fresh
// generation from the source documents and then switches the current one
// (see Rebuild); readers always read the current generation. An
// organization rebuilt on its own (RebuildOrganization) has a generation of
// its own, newer than the deployment's, while the others go on counting
// into theirs; its changes are set aside meanwhile and counted after it
// (Drain).
package statsdb

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nuid"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/odavl/sync/services/stats/internal/tally"
)

// Collections of the stats service.
const (
	AggregatesCollection = "stats_aggregates"
	LedgerCollection     = "stats_ledger"
	InflightCollection   = "stats_inflight"
	MetaCollection       = "stats_meta"
)

// AllTime is the period field of a project's all-time aggregate.
const AllTime = "all"

// MonthFormat is the layout of a month aggregate's period.
const MonthFormat = "2006-01"

const metaID = "meta"

// Aggregate is one aggregate document: a project's month (Days by day of
// the month, "01".."31") or its all time (Counters).
type Aggregate struct {
	ID             string                    `bson:"_id"`
	Generation     int64                     `bson:"gen"`
	OrganizationID string                    `bson:"org"`
	ProjectID      string                    `bson:"project"`
	Period         string                    `bson:"period"`
	Counters       tally.Counters            `bson:"c,omitempty"`
	Days           map[string]tally.Counters `bson:"d,omitempty"`
	Last           string                    `bson:"last,omitempty"`
}

// inflight is a change, or a batch of changes, being applied.
type inflight struct {
	ID             string `bson:"_id"` // the change's id; a batch's own id
	Generation     int64  `bson:"gen"`
	OrganizationID string `bson:"org"`
	ProjectID      string `bson:"project"`
	// One change: its day and increments.
	Day string           `bson:"day,omitempty"`
	Inc map[string]int64 `bson:"inc,omitempty"`
	// A batch: increments by day, and the ids of its changes.
	Days    map[string]map[string]int64 `bson:"days,omitempty"`
	Changes []string                    `bson:"changes,omitempty"`
}

// days returns f's increments by day.
func (f inflight) days() map[string]map[string]int64 {
	if f.Days != nil {
		return f.Days
	}
	return map[string]map[string]int64{f.Day: f.Inc}
}

// changes returns the ids of f's changes.
func (f inflight) changes() []string {
	if len(f.Changes) > 0 {
		return f.Changes
	}
	return []string{f.ID}
}

type meta struct {
	ID         string `bson:"_id"`
	Generation int64  `bson:"gen"`
	// Rebuilding is the generation a rebuild is writing, 0 when none runs.
	Rebuilding int64 `bson:"rebuilding"`
}

const stripes = 256

// Store keeps the aggregates.
type Store struct {
	db                           *mongo.Database
	agg, ledger, inflights, meta *mongo.Collection
	deferred                     *mongo.Collection
	now                          func() time.Time

	// genMu: Apply holds it shared, a rebuild of everything exclusively.
	genMu sync.RWMutex
	// gen is the deployment's generation: every organization's but those
	// rebuilt on their own since (orgGen).
	gen atomic.Int64
	// rebuildMu: one rebuild at a time.
	rebuildMu sync.Mutex
	// orgGen are the generations of organizations rebuilt on their own,
	// when newer than gen; gate holds their counting while they are rebuilt.
	orgMu  sync.RWMutex
	orgGen map[string]int64
	gate   *orgGate

	locks [stripes]sync.Mutex
	// queues hold the changes waiting for their project's batch.
	qmu    sync.Mutex
	queues map[string]*queue
	// pending are unfinished changes by project, finished before the next change of that project.
	pendMu  sync.Mutex
	pending map[string][]inflight

	regMu sync.Mutex
	known sync.Map // registry key -> true once the project is registered

	// unfinished is set while a rebuild that may have written the ledger has not finished.
	unfinished atomic.Bool
}

// ErrRebuildUnfinished is returned by Apply while an interrupted rebuild
// waits to be finished: nothing can be counted until it is.
var ErrRebuildUnfinished = errors.New("a stats rebuild is unfinished")

// RebuildUnfinished reports whether a rebuild must finish before anything is counted.
func (s *Store) RebuildUnfinished() bool { return s.unfinished.Load() }

// New returns a Store over db. Call Recover before Apply.
func New(db *mongo.Database, now func() time.Time) *Store {
	return &Store{
		db: db, now: now,
		agg: db.Collection(AggregatesCollection), ledger: db.Collection(LedgerCollection),
		inflights: db.Collection(InflightCollection), meta: db.Collection(MetaCollection),
		deferred: db.Collection(DeferredCollection),
		pending:  map[string][]inflight{}, queues: map[string]*queue{},
		orgGen: map[string]int64{}, gate: newOrgGate(),
	}
}

// Key is the _id of a project's aggregate of period (a month or AllTime).
func Key(gen int64, org, project, period string) string {
	return fmt.Sprintf("g%d|%s|%s|%s", gen, org, project, period)
}

// MonthOf splits a UTC day (YYYY-MM-DD) into its month and day of the month.
func MonthOf(day string) (month, dd string) {
	if len(day) != len(tally.DayFormat) {
		return day, "00"
	}
	return day[:7], day[8:]
}

// RegistryKey is the _id of an organization's list of projects.
func RegistryKey(gen int64, org string) string { return fmt.Sprintf("g%d|%s|~projects", gen, org) }

func projectOf(org, project string) string { return org + "|" + project }

func (s *Store) lockFor(org, project string) *sync.Mutex {
	h := fnv.New32a()
	_, _ = h.Write([]byte(projectOf(org, project)))
	return &s.locks[h.Sum32()%stripes]
}

// Generation is the deployment's current generation (see GenerationOf).
func (s *Store) Generation() int64 { return s.gen.Load() }

// GenerationOf is the current generation of org's aggregates: the
// deployment's, or a newer one of a rebuild of the organization alone.
func (s *Store) GenerationOf(org string) int64 {
	g := s.gen.Load()
	s.orgMu.RLock()
	defer s.orgMu.RUnlock()
	return max(g, s.orgGen[org])
}

// Interrupted are the rebuilds a stopped service left unfinished: of
// everything (Generation, 0 when none) and of single organizations.
type Interrupted struct {
	Generation    int64
	Organizations []string
}

// Recover loads the current generations, finishes every change a crash left
// in flight, and reports the rebuilds that were interrupted: they must be
// finished before their organizations' changes are counted (the others'
// are, the held organizations' are deferred).
func (s *Store) Recover(ctx context.Context) (Interrupted, error) {
	var m meta
	err := s.meta.FindOne(ctx, bson.D{{Key: "_id", Value: metaID}}).Decode(&m)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		m = meta{ID: metaID, Generation: 1}
		if _, err := s.meta.InsertOne(ctx, m); err != nil && !mongo.IsDuplicateKeyError(err) {
			return Interrupted{}, fmt.Errorf("creating stats meta: %w", err)
		}
	case err != nil:
		return Interrupted{}, fmt.Errorf("reading stats meta: %w", err)
	}
	s.gen.Store(m.Generation)
	s.unfinished.Store(m.Rebuilding != 0)
	out := Interrupted{Generation: m.Rebuilding}
	orgs, err := s.orgMetas(ctx)
	if err != nil {
		return Interrupted{}, err
	}
	s.orgMu.Lock()
	for _, om := range orgs {
		if om.Generation > m.Generation {
			s.orgGen[om.OrganizationID] = om.Generation
		}
		if om.Rebuilding > m.Generation {
			s.gate.hold(om.OrganizationID)
			out.Organizations = append(out.Organizations, om.OrganizationID)
		}
	}
	s.orgMu.Unlock()
	cur, err := s.inflights.Find(ctx, bson.D{})
	if err != nil {
		return Interrupted{}, fmt.Errorf("reading in-flight changes: %w", err)
	}
	var fl []inflight
	if err := cur.All(ctx, &fl); err != nil {
		return Interrupted{}, fmt.Errorf("reading in-flight changes: %w", err)
	}
	s.pendMu.Lock()
	for _, f := range fl {
		p := projectOf(f.OrganizationID, f.ProjectID)
		s.pending[p] = append(s.pending[p], f)
	}
	s.pendMu.Unlock()
	return out, s.Sweep(ctx)
}

// Sweep finishes every unfinished change.
func (s *Store) Sweep(ctx context.Context) error { return s.sweep(ctx, "") }

// sweep finishes the unfinished changes of org, or of every organization.
func (s *Store) sweep(ctx context.Context, org string) error {
	s.pendMu.Lock()
	var projects [][2]string
	for _, fl := range s.pending {
		if len(fl) > 0 && (org == "" || fl[0].OrganizationID == org) {
			projects = append(projects, [2]string{fl[0].OrganizationID, fl[0].ProjectID})
		}
	}
	s.pendMu.Unlock()
	for _, p := range projects {
		mu := s.lockFor(p[0], p[1])
		mu.Lock()
		err := s.finishPending(ctx, p[0], p[1], nil)
		mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// Pending counts the unfinished changes held in memory.
func (s *Store) Pending() int {
	s.pendMu.Lock()
	defer s.pendMu.Unlock()
	n := 0
	for _, fl := range s.pending {
		n += len(fl)
	}
	return n
}

// finishPending finishes the project's unfinished changes; the caller holds its lock.
func (s *Store) finishPending(ctx context.Context, org, project string, hook CrashHook) error {
	key := projectOf(org, project)
	for {
		s.pendMu.Lock()
		fl := s.pending[key]
		s.pendMu.Unlock()
		if len(fl) == 0 {
			return nil
		}
		if err := s.finishSteps(ctx, fl[0], stepper(hook, fl[0].changes())); err != nil {
			return fmt.Errorf("finishing change %s: %w", fl[0].ID, err)
		}
		s.pendMu.Lock()
		s.pending[key] = s.pending[key][1:]
		if len(s.pending[key]) == 0 {
			delete(s.pending, key)
		}
		s.pendMu.Unlock()
	}
}

// ErrCrash is returned by Apply when a test's crash hook stops it between steps.
var ErrCrash = errors.New("simulated crash")

// CrashHook, when set, is called before each step of Apply with the
// change's id and the step's name; an error stops Apply there, as a failure
// or a crash would (tests only).
type CrashHook func(change, step string) error

// maxBatch bounds the changes applied together.
const maxBatch = 500

// queue is a project's group commit: busy while a leader applies a batch.
type queue struct {
	busy    bool
	waiting []*waiter
}

// waiter is one Apply waiting for its batch.
type waiter struct {
	c    tally.Change
	hook CrashHook
	done chan error
	lead chan struct{} // closed when the waiter is to apply the next batch
}

// Apply counts c exactly once; repeating it after any failure is safe.
// Concurrent calls for one project are applied together (see the package
// comment); each returns when its own change is counted, or failed. While
// c's organization is rebuilt on its own, c is set aside and counted after
// the rebuild (see RebuildOrganization); Apply returns once it is set aside.
func (s *Store) Apply(ctx context.Context, c tally.Change, hook CrashHook) error {
	s.genMu.RLock()
	defer s.genMu.RUnlock()
	if s.unfinished.Load() {
		return ErrRebuildUnfinished
	}
	held := s.gate.enter(c.OrganizationID)
	defer s.gate.leave(c.OrganizationID, held)
	if held {
		return s.deferChange(ctx, c)
	}
	key := projectOf(c.OrganizationID, c.ProjectID)
	w := &waiter{c: c, hook: hook, done: make(chan error, 1), lead: make(chan struct{})}
	s.qmu.Lock()
	q := s.queues[key]
	if q == nil {
		q = &queue{}
		s.queues[key] = q
	}
	q.waiting = append(q.waiting, w)
	leader := !q.busy
	q.busy = true
	s.qmu.Unlock()
	if !leader {
		select {
		case err := <-w.done:
			return err
		case <-w.lead:
		}
	}
	s.lead(ctx, key, q)
	return <-w.done
}

// lead applies the first batch of q (which starts with the caller's own
// change) and hands the queue to the next waiter.
func (s *Store) lead(ctx context.Context, key string, q *queue) {
	s.qmu.Lock()
	n := min(len(q.waiting), maxBatch)
	batch := q.waiting[:n:n]
	q.waiting = q.waiting[n:]
	s.qmu.Unlock()

	err := s.applyBatch(ctx, batch)
	for _, w := range batch {
		w.done <- err
	}

	s.qmu.Lock()
	defer s.qmu.Unlock()
	if len(q.waiting) == 0 {
		q.busy = false
		delete(s.queues, key)
		return
	}
	close(q.waiting[0].lead)
}

// applyBatch counts the changes of one project once each, together.
func (s *Store) applyBatch(ctx context.Context, batch []*waiter) error {
	first := batch[0].c
	mu := s.lockFor(first.OrganizationID, first.ProjectID)
	mu.Lock()
	defer mu.Unlock()
	hook := batch[0].hook // the same for every Apply of a service (tests only)
	if err := s.finishPending(ctx, first.OrganizationID, first.ProjectID, hook); err != nil {
		return err
	}
	changes, err := s.uncounted(ctx, batch)
	if err != nil || len(changes) == 0 {
		return err
	}
	f := inflight{ID: changes[0].ID, Generation: s.GenerationOf(first.OrganizationID), OrganizationID: first.OrganizationID, ProjectID: first.ProjectID}
	if len(changes) == 1 {
		f.Day, f.Inc = changes[0].Day, changes[0].Inc
	} else {
		f.ID = "batch-" + changes[0].ID + "-" + nuid.Next()
		f.Days = map[string]map[string]int64{}
		for _, c := range changes {
			f.Changes = append(f.Changes, c.ID)
			day := f.Days[c.Day]
			if day == nil {
				day = map[string]int64{}
				f.Days[c.Day] = day
			}
			for k, v := range c.Inc {
				day[k] += v
			}
		}
	}
	step := stepper(hook, f.changes())
	if err := step("inflight"); err != nil {
		return err
	}
	if _, err := s.inflights.InsertOne(ctx, f); err != nil && !mongo.IsDuplicateKeyError(err) {
		return fmt.Errorf("recording in-flight change: %w", err)
	}
	if err := s.finishSteps(ctx, f, step); err != nil {
		s.pendMu.Lock()
		k := projectOf(f.OrganizationID, f.ProjectID)
		s.pending[k] = append(s.pending[k], f)
		s.pendMu.Unlock()
		return err
	}
	return nil
}

// uncounted returns the batch's changes the ledger does not hold, each once.
func (s *Store) uncounted(ctx context.Context, batch []*waiter) ([]tally.Change, error) {
	ids := make(bson.A, 0, len(batch))
	seen := map[string]bool{}
	for _, w := range batch {
		if !seen[w.c.ID] {
			seen[w.c.ID] = true
			ids = append(ids, w.c.ID)
		}
	}
	cur, err := s.ledger.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("reading ledger: %w", err)
	}
	var counted []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &counted); err != nil {
		return nil, fmt.Errorf("reading ledger: %w", err)
	}
	for _, c := range counted {
		seen[c.ID] = false
	}
	var out []tally.Change
	for _, w := range batch {
		if seen[w.c.ID] {
			seen[w.c.ID] = false
			out = append(out, w.c)
		}
	}
	return out, nil
}

// stepper calls hook before a step, for each change of a batch.
func stepper(hook CrashHook, ids []string) func(string) error {
	return func(step string) error {
		if hook == nil {
			return nil
		}
		for _, id := range ids {
			if err := hook(id, step); err != nil {
				return err
			}
		}
		return nil
	}
}

func (s *Store) finishSteps(ctx context.Context, f inflight, step func(string) error) error {
	// One $inc per month document (its days' fields), then the all-time one.
	months := map[string]bson.D{}
	all := map[string]int64{}
	for day, inc := range f.days() {
		month, dd := MonthOf(day)
		for k, v := range inc {
			months[month] = append(months[month], bson.E{Key: "d." + dd + "." + k, Value: v})
			all[k] += v
		}
	}
	names := make([]string, 0, len(months))
	for m := range months {
		names = append(names, m)
	}
	sort.Strings(names)
	for _, month := range names {
		if err := step("aggregate0"); err != nil {
			return err
		}
		if err := s.inc(ctx, Key(f.Generation, f.OrganizationID, f.ProjectID, month), f, month, months[month]); err != nil {
			return err
		}
	}
	if err := step("aggregate1"); err != nil {
		return err
	}
	if err := s.inc(ctx, Key(f.Generation, f.OrganizationID, f.ProjectID, AllTime), f, AllTime, prefixed("c.", all)); err != nil {
		return err
	}
	if err := step("registry"); err != nil {
		return err
	}
	if err := s.register(ctx, f.Generation, f.OrganizationID, f.ProjectID); err != nil {
		return err
	}
	if err := step("ledger"); err != nil {
		return err
	}
	at := s.now().UTC()
	ledger := make([]any, 0, len(f.changes()))
	for _, id := range f.changes() {
		ledger = append(ledger, bson.D{{Key: "_id", Value: id}, {Key: "at", Value: at}})
	}
	if _, err := s.ledger.InsertMany(ctx, ledger, options.InsertMany().SetOrdered(false)); err != nil && !onlyDuplicates(err) {
		return fmt.Errorf("recording changes in ledger: %w", err)
	}
	if err := step("done"); err != nil {
		return err
	}
	if _, err := s.inflights.DeleteOne(ctx, bson.D{{Key: "_id", Value: f.ID}}); err != nil {
		return fmt.Errorf("clearing in-flight change: %w", err)
	}
	return nil
}

// prefixed returns the increments as $inc fields under prefix.
func prefixed(prefix string, inc map[string]int64) bson.D {
	out := make(bson.D, 0, len(inc))
	for k, v := range inc {
		out = append(out, bson.E{Key: prefix + k, Value: v})
	}
	return out
}

// onlyDuplicates reports whether every write error of an unordered insert
// is a duplicate key (those documents are there already).
func onlyDuplicates(err error) bool {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return mongo.IsDuplicateKeyError(err)
	}
	for _, we := range bwe.WriteErrors {
		if !mongo.IsDuplicateKeyError(we) {
			return false
		}
	}
	return true
}

// inc applies increments (fields of an $inc) to one aggregate unless f is its last change.
func (s *Store) inc(ctx context.Context, key string, f inflight, period string, incs bson.D) error {
	sort.Slice(incs, func(i, j int) bool { return incs[i].Key < incs[j].Key })
	update := bson.D{
		{Key: "$inc", Value: incs},
		{Key: "$set", Value: bson.D{{Key: "last", Value: f.ID}, {Key: "gen", Value: f.Generation},
			{Key: "org", Value: f.OrganizationID}, {Key: "project", Value: f.ProjectID}, {Key: "period", Value: period}}},
	}
	filter := bson.D{{Key: "_id", Value: key}, {Key: "last", Value: bson.D{{Key: "$ne", Value: f.ID}}}}
	_, err := s.agg.UpdateOne(ctx, filter, update, options.UpdateOne().SetUpsert(true))
	if mongo.IsDuplicateKeyError(err) {
		return nil // the aggregate exists and f is its last change: applied already
	}
	if err != nil {
		return fmt.Errorf("updating aggregate %s: %w", key, err)
	}
	return nil
}

// register adds the project to its organization's list (idempotent).
func (s *Store) register(ctx context.Context, gen int64, org, project string) error {
	key := RegistryKey(gen, org)
	if _, ok := s.known.Load(key + "|" + project); ok {
		return nil
	}
	s.regMu.Lock()
	defer s.regMu.Unlock()
	_, err := s.agg.UpdateOne(ctx, bson.D{{Key: "_id", Value: key}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "projects." + project, Value: true}, {Key: "gen", Value: gen}, {Key: "org", Value: org}, {Key: "period", Value: "~projects"}}}},
		options.UpdateOne().SetUpsert(true))
	if mongo.IsDuplicateKeyError(err) {
		_, err = s.agg.UpdateOne(ctx, bson.D{{Key: "_id", Value: key}}, bson.D{{Key: "$set", Value: bson.D{{Key: "projects." + project, Value: true}}}})
	}
	if err != nil {
		return fmt.Errorf("registering project %s: %w", project, err)
	}
	s.known.Store(key+"|"+project, true)
	return nil
}

// Projects lists an organization's projects with figures, sorted.
func (s *Store) Projects(ctx context.Context, org string) ([]string, error) {
	var doc struct {
		Projects map[string]bool `bson:"projects"`
	}
	err := s.agg.FindOne(ctx, bson.D{{Key: "_id", Value: RegistryKey(s.GenerationOf(org), org)}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading projects of %s: %w", org, err)
	}
	out := make([]string, 0, len(doc.Projects))
	for p := range doc.Projects {
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

// Read reads one aggregate of the current generation (period is a month or
// AllTime); a missing aggregate is all zeros.
func (s *Store) Read(ctx context.Context, org, project, period string) (Aggregate, error) {
	a := Aggregate{Counters: tally.Counters{}, Days: map[string]tally.Counters{}}
	key := Key(s.GenerationOf(org), org, project, period)
	err := s.agg.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&a)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return a, nil
	}
	if err != nil {
		return Aggregate{}, fmt.Errorf("reading aggregate %s: %w", key, err)
	}
	return a, nil
}

// Counted reports whether the ledger holds change id.
func (s *Store) Counted(ctx context.Context, id string) (bool, error) {
	err := s.ledger.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading ledger: %w", err)
	}
	return true, nil
}
