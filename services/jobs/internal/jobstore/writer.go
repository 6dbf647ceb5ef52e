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

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/jobs"
)

// Bucket is the JetStream KV bucket of the jobs' state. It keeps its
// name from the days it held only unfinished jobs.
const Bucket = "jobs-live"

// markerTTL is how long the marker of an entry taken out of the bucket
// stays: long enough for every watcher to see it.
const markerTTL = 10 * time.Minute

// Change is one transition (or progress report) of a job.
type Change struct {
	// Base identifies the job and holds its fields when nothing is known of
	// it yet: ID, Type, Priority, tenant, MaxAttempts, Payload, ParentID,
	// TimeoutMs, RunAt, CreatedAt, Generation (and, for a manual retry,
	// the History so far).
	Base Record
	// Create marks the job's submission.
	Create bool
	// Unpublished holds the record back until Published: a submission's
	// record is not written before JetStream has its message, so that a
	// crash in between leaves no record of a job that does not exist.
	Unpublished bool
	// Status is the new status; empty for a progress report.
	Status string
	At     time.Time
	// Attempt is the attempt the change belongs to (0: unchanged).
	Attempt  int
	Error    string
	Progress *int
	ResultID string
	Output   string
	// WaitingChildren are the children a DELAYED job waits for (cleared by
	// every other status change).
	WaitingChildren []string
	// Durable asks for a prompt write and an answer on the returned channel
	// once it is written.
	Durable bool
}

// WriterOptions tune a Writer.
type WriterOptions struct {
	// Interval between flushes (default 10ms).
	Interval time.Duration
	// Hold is how long a change of an unfinished job that nobody waits for
	// may wait, to be collapsed with the job's next ones (default 200ms).
	Hold time.Duration
	// Parallel is how many writes of one flush run side by side (default 256).
	Parallel int
	// Store, when set, is read before a write over an entry taken out of
	// the bucket: the job's record there may be finished (see put).
	Store *Store
	// Replicas is the bucket's replica count (default 1; 3 on a cluster).
	Replicas int

	// bucket, when set, wraps the bucket's handle (tests: a replica that lags).
	bucket func(jetstream.KeyValue) jetstream.KeyValue
}

// Writer keeps the truth of every job's state in the JetStream KV bucket
// Bucket, one entry per job, finished or not, which every instance
// watches; the Projection copies finished records to MongoDB behind it, in
// large batches, and then takes them out of the bucket. The changes of one
// job inside the hold are collapsed: a job that is submitted, run and
// finished quickly costs one write to the bucket.
type Writer struct {
	kv  jetstream.KeyValue
	log *slog.Logger
	opt WriterOptions

	mu       sync.Mutex
	pending  map[string]*entry
	order    []string
	inflight map[string]Record
	live     map[string]Record
	liveRaw  map[string][]byte // entries seen by the watch, not decoded yet
	// revs is the newest revision of each key seen (puts and deletes), so
	// that a late watch update never undoes a newer local write, and so
	// that a write goes over the revision it knows.
	revs   map[string]rev
	pruned time.Time
	killed bool

	flushMu sync.Mutex
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

type rev struct {
	n  uint64
	at time.Time
	// gone: the entry was taken out (the job's record is in the store).
	gone bool
}

type entry struct {
	rec Record
	// unpublished: held back until Published (Change.Unpublished).
	unpublished bool
	first       time.Time
	urgent      bool
	waiters     []chan error
}

// OpenBucket creates (or updates) the bucket of the jobs' state.
func OpenBucket(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	// Reads through the stream's leader: put weighs what it reads before
	// writing over its revision, and Read answers callers told their job
	// is recorded.
	return bus.OpenKV(ctx, js, jetstream.KeyValueConfig{
		Bucket: Bucket, Description: "ODAVL Sync job state: every job until its finished record is in MongoDB",
		History: 1, Storage: jetstream.FileStorage, Replicas: max(replicas, 1),
		// The markers of entries taken out once projected expire (PurgeTTL).
		LimitMarkerTTL: markerTTL,
	})
}

// NewWriter opens the bucket, loads it, and starts the writer. Stop
// flushes it.
func NewWriter(ctx context.Context, js jetstream.JetStream, log *slog.Logger, o WriterOptions) (*Writer, error) {
	if o.Interval <= 0 {
		o.Interval = 10 * time.Millisecond
	}
	if o.Hold <= 0 {
		o.Hold = 200 * time.Millisecond
	}
	if o.Parallel <= 0 {
		o.Parallel = 256
	}
	kv, err := OpenBucket(ctx, js, o.Replicas)
	if err != nil {
		return nil, err
	}
	if o.bucket != nil {
		kv = o.bucket(kv)
	}
	w := &Writer{kv: kv, log: log, opt: o, pending: map[string]*entry{},
		inflight: map[string]Record{}, live: map[string]Record{}, liveRaw: map[string][]byte{}, revs: map[string]rev{},
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	if err := w.watch(ctx); err != nil {
		return nil, err
	}
	go w.loop()
	return w, nil
}

func (w *Writer) watch(ctx context.Context) error {
	return bus.Follow(ctx, w.kv, w.done, func(e jetstream.KeyValueEntry) {
		// Entries are decoded when read: most are this instance's own
		// puts, whose record it holds already.
		put := e.Operation() == jetstream.KeyValuePut
		w.mu.Lock()
		defer w.mu.Unlock()
		if e.Revision() > w.revs[e.Key()].n {
			w.revs[e.Key()] = rev{e.Revision(), time.Now(), !put}
			delete(w.live, e.Key())
			if put {
				w.liveRaw[e.Key()] = e.Value()
			} else {
				delete(w.liveRaw, e.Key())
			}
		}
	})
}

// Add queues a change. For a durable change it returns a channel that
// receives nil once the change is written, or the write's error.
func (w *Writer) Add(c Change) <-chan error {
	c.msPrecision()
	var ch chan error
	if c.Durable {
		ch = make(chan error, 1)
	}
	w.mu.Lock()
	if w.killed {
		w.mu.Unlock()
		if ch != nil {
			ch <- errors.New("writer stopped")
		}
		return ch
	}
	id := c.Base.ID
	e := w.pending[id]
	if e == nil || e.rec.Generation < c.Base.Generation {
		start, ok := w.currentLocked(id)
		if !ok || start.Generation < c.Base.Generation {
			start = c.Base
			start.Status = ""
			if start.History == nil {
				start.History = []Transition{}
			}
		}
		if e == nil {
			e = &entry{first: time.Now()}
			w.pending[id] = e
			w.order = append(w.order, id)
		}
		e.rec = start
	}
	if c.Base.Generation < e.rec.Generation || c.Base.Generation == e.rec.Generation && jobs.Terminal(e.rec.Status) {
		w.mu.Unlock()
		if ch != nil {
			// A change of an older generation, or one that comes after its
			// generation finished (the first finished state stands):
			// superseded.
			ch <- nil
		}
		return ch
	}
	apply(&e.rec, c)
	// Any change after the submission's own shows the job runs: it was
	// published.
	e.unpublished = c.Unpublished
	if ch != nil {
		e.waiters = append(e.waiters, ch)
		e.urgent = true
	}
	if jobs.Terminal(e.rec.Status) {
		e.urgent = true
	}
	w.mu.Unlock()
	if e.urgent {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
	return ch
}

// currentLocked is the newest state known here of an unfinished job.
func (w *Writer) currentLocked(id string) (Record, bool) {
	if r, ok := w.inflight[id]; ok {
		return r, true
	}
	return w.liveLocked(id)
}

// liveLocked is the live bucket's entry of a job as last seen here.
func (w *Writer) liveLocked(id string) (Record, bool) {
	if r, ok := w.live[id]; ok {
		return r, true
	}
	raw, ok := w.liveRaw[id]
	if !ok {
		return Record{}, false
	}
	var r Record
	if err := json.Unmarshal(raw, &r); err != nil {
		w.log.Warn("undecodable live job entry", "job", id, "err", err)
		delete(w.liveRaw, id)
		return Record{}, false
	}
	delete(w.liveRaw, id)
	w.live[id] = r
	return r, true
}

// msPrecision cuts a change's times to the store's precision (BSON dates
// hold milliseconds), so that a record reads the same from the bucket and,
// once projected, from the store.
func (c *Change) msPrecision() {
	ms := func(t time.Time) time.Time { return t.Truncate(time.Millisecond) }
	c.At, c.Base.CreatedAt, c.Base.UpdatedAt = ms(c.At), ms(c.Base.CreatedAt), ms(c.Base.UpdatedAt)
	for _, p := range []**time.Time{&c.Base.RunAt, &c.Base.StartedAt, &c.Base.FinishedAt} {
		if *p != nil {
			t := ms(**p)
			*p = &t
		}
	}
	if len(c.Base.History) > 0 {
		h := make([]Transition, len(c.Base.History))
		for i, t := range c.Base.History {
			t.At = ms(t.At)
			h[i] = t
		}
		c.Base.History = h
	}
}

func apply(r *Record, c Change) {
	if r.Payload == "" {
		r.Payload = c.Base.Payload // the live bucket does not keep payloads
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = c.At
	}
	r.UpdatedAt = c.At
	if c.Attempt > 0 {
		r.Attempts = c.Attempt
	}
	if c.Progress != nil {
		r.Progress = *c.Progress
	}
	if c.ResultID != "" {
		r.ResultID = c.ResultID
	}
	if c.Output != "" {
		r.Output = c.Output
	}
	if c.Status == "" {
		if r.Status == "" {
			r.Status = jobs.Waiting
		}
		return
	}
	r.Status = c.Status
	r.Error = c.Error
	r.WaitingChildren = c.WaitingChildren
	at := c.At
	switch {
	case c.Status == jobs.Active:
		r.StartedAt = &at
	case jobs.Terminal(c.Status):
		r.FinishedAt = &at
		if c.Status == jobs.Completed {
			r.Progress = 100
		}
	case c.Status == jobs.Waiting:
		r.Progress = 0
		r.FinishedAt = nil
	}
	r.History = append(r.History, Transition{Status: c.Status, At: c.At, Attempt: c.Attempt, Error: c.Error})
}

// Read returns a job's record as it is now: its changes not yet written
// here, else its entry in the bucket, else the record load reads from
// MongoDB (stored: whether there was one). The newest generation wins;
// inside one, a finished record.
//
// The bucket is read before the store: the projection takes an entry out
// of the bucket only once its record is in the store, so one of the two
// reads finds it at every moment of its move.
func (w *Writer) Read(ctx context.Context, id string, load func() (r Record, stored bool, err error)) (Record, bool, error) {
	w.mu.Lock()
	var held []Record
	if f, has := w.inflight[id]; has {
		held = append(held, f)
	}
	if e := w.pending[id]; e != nil {
		held = append(held, e.rec)
	}
	w.mu.Unlock()
	best, ok, err := w.bucketRecord(ctx, id)
	if err == nil && !ok {
		best, ok, err = load()
	}
	if err != nil {
		return Record{}, false, err
	}
	for _, c := range held {
		switch {
		case !ok, c.Generation > best.Generation:
			best, ok = c, true
		case c.Generation == best.Generation && !jobs.Terminal(best.Status):
			best = c
		}
	}
	return best, ok, nil
}

// Get is Read with s as the store.
func (w *Writer) Get(ctx context.Context, s *Store, id string) (Record, bool, error) {
	return w.Read(ctx, id, func() (Record, bool, error) {
		r, err := s.GetAny(ctx, id)
		if errors.Is(err, ErrNotFound) {
			return Record{}, false, nil
		}
		return r, err == nil, err
	})
}

// bucketRecord reads a job's entry in the bucket.
func (w *Writer) bucketRecord(ctx context.Context, id string) (Record, bool, error) {
	e, err := w.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("reading job %s: %w", id, err)
	}
	var r Record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return Record{}, false, fmt.Errorf("decoding job %s: %w", id, err)
	}
	return r, true, nil
}

// Live returns the records of unfinished jobs known here that match keep.
func (w *Writer) Live(keep func(Record) bool) []Record {
	return w.Held(func(r Record) bool { return !jobs.Terminal(r.Status) && keep(r) })
}

// Held returns the records known here (pending, in flight, or in the
// bucket as last seen: unfinished jobs, and finished ones the projection
// has not passed yet) that match keep.
func (w *Writer) Held(keep func(Record) bool) []Record {
	w.mu.Lock()
	defer w.mu.Unlock()
	seen := map[string]bool{}
	var out []Record
	add := func(r Record) {
		if seen[r.ID] {
			return
		}
		seen[r.ID] = true
		if r.Status != jobs.Cleared && keep(r) {
			out = append(out, r)
		}
	}
	for _, e := range w.pending {
		add(e.rec)
	}
	for _, r := range w.inflight {
		add(r)
	}
	for id := range w.liveRaw {
		w.liveLocked(id)
	}
	for _, r := range w.live {
		add(r)
	}
	return out
}

func (w *Writer) loop() {
	defer close(w.done)
	t := time.NewTicker(w.opt.Interval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			w.flush(true)
			return
		case <-t.C:
		case <-w.kick:
			time.Sleep(w.opt.Interval / 4) // let a few more join the batch
		}
		w.flush(false)
	}
}

func (w *Writer) take(all bool) []*entry {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.killed {
		return nil
	}
	now := time.Now()
	var out []*entry
	keep := w.order[:0]
	for _, id := range w.order {
		e := w.pending[id]
		if e == nil {
			continue
		}
		if e.unpublished {
			keep = append(keep, id)
			continue
		}
		if all || e.urgent || now.Sub(e.first) >= w.opt.Hold {
			out = append(out, e)
			delete(w.pending, id)
			w.inflight[id] = e.rec
			continue
		}
		keep = append(keep, id)
	}
	w.order = keep
	return out
}

// Flush writes everything pending now.
func (w *Writer) Flush() { w.flush(true) }

func (w *Writer) flush(all bool) {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	es := w.take(all)
	if len(es) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Every record goes to the bucket, side by side: the bucket is the
	// truth of a job's state, finished or not, and the projection copies
	// the finished ones to MongoDB behind it (projection.go).
	results := make([]error, len(es))
	revs := make([]uint64, len(es))
	var wg sync.WaitGroup
	sem := make(chan struct{}, w.opt.Parallel)
	for i, e := range es {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			revs[i], results[i] = w.put(ctx, e.rec)
		}()
	}
	wg.Wait()
	var retry []*entry
	w.mu.Lock()
	for i, e := range es {
		if results[i] != nil {
			continue // in flight until requeue puts it back: never out of sight
		}
		delete(w.inflight, e.rec.ID)
		if revs[i] > 0 && revs[i] >= w.revs[e.rec.ID].n {
			// Equal: the watch saw this put first; the record held here
			// also has the payload, which the bucket keeps only for jobs
			// that may run again.
			w.revs[e.rec.ID] = rev{revs[i], time.Now(), false}
			w.live[e.rec.ID] = e.rec
			delete(w.liveRaw, e.rec.ID)
		}
	}
	w.pruneLocked()
	w.mu.Unlock()
	for i, e := range es {
		for _, ch := range e.waiters {
			ch <- results[i]
		}
		if results[i] != nil {
			e.waiters = nil
			retry = append(retry, e)
		}
	}
	if len(retry) > 0 {
		w.log.Warn("job records not written, will retry", "jobs", len(retry), "err", results[0])
		w.requeue(retry)
	}
}

// pruneLocked forgets the revisions of jobs gone from the bucket more than
// a minute ago; a scan every 10s at most, not one per flush.
func (w *Writer) pruneLocked() {
	if len(w.revs) <= 10000 || time.Since(w.pruned) < 10*time.Second {
		return
	}
	w.pruned = time.Now()
	for k, r := range w.revs {
		_, raw := w.liveRaw[k]
		if _, live := w.live[k]; !live && !raw && time.Since(r.at) > time.Minute {
			delete(w.revs, k)
		}
	}
}

// put writes a record to the bucket unless a newer state of the job is
// known: a newer generation, or a finished state of the same one (a cancel
// made on another instance while this one still ran the job, or a
// submission's record held here to be collapsed while another instance ran
// and finished the job). It weighs the newest state seen here first, then
// writes over the revision seen, so that a change made meanwhile elsewhere
// makes the write fail and is read and weighed; an entry taken out of the
// bucket is weighed against the job's record in the store, where the
// projection put it. It returns the new revision, 0 if the record was
// superseded.
func (w *Writer) put(ctx context.Context, r Record) (uint64, error) {
	if r.Status == jobs.Completed {
		r.Payload = "" // a completed job keeps its output; it never runs again
	}
	if len(r.History) == 0 || r.History[0].Status == jobs.Active {
		r.History = append([]Transition{{Status: jobs.Waiting, At: r.CreatedAt}}, r.History...)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return 0, err
	}
	w.mu.Lock()
	last := w.revs[r.ID]
	seen, has := w.liveLocked(r.ID)
	w.mu.Unlock()
	if has && supersedes(seen, r) {
		return 0, nil
	}
	for range 10 {
		if last.gone {
			if stored, err := w.storedSupersedes(ctx, r); err != nil || stored {
				return 0, err
			}
		}
		// Revision 0 expects no message at all on the key, not even the
		// marker of an entry taken out: that is weighed first.
		n, err := w.kv.Update(ctx, r.ID, b, last.n)
		if err == nil || !revisionConflict(err) {
			return n, err
		}
		cur, err := w.kv.Get(ctx, r.ID)
		if errors.Is(err, jetstream.ErrKeyDeleted) || errors.Is(err, jetstream.ErrKeyNotFound) {
			// Taken out, never there, or not there yet on a replica that
			// lags: the stream says which.
			cur, err = w.lastEntry(ctx, r.ID)
		}
		switch {
		case err != nil:
			return 0, err
		case cur == nil:
			last = rev{gone: true} // never there, or its marker expired
			continue
		case cur.Operation() != jetstream.KeyValuePut:
			last = rev{n: cur.Revision(), gone: true} // taken out
			continue
		}
		var have Record
		if err := json.Unmarshal(cur.Value(), &have); err == nil && supersedes(have, r) {
			return 0, nil
		}
		last = rev{n: cur.Revision()}
	}
	return 0, fmt.Errorf("writing job %s: the bucket's entry kept changing", r.ID)
}

// lastEntry is the newest message on a key, a put or the marker of an
// entry taken out (nil: none). A write goes over the revision it returns,
// so it is weighed for what it is: a put read as a marker would be
// overwritten unweighed (a WAITING record over the COMPLETED one that
// beat it, which TestClusterKill9 caught).
func (w *Writer) lastEntry(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	h, err := w.kv.History(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return h[len(h)-1], nil
}

// storedSupersedes reports whether the store holds a newer state of the
// job than r.
func (w *Writer) storedSupersedes(ctx context.Context, r Record) (bool, error) {
	if w.opt.Store == nil {
		return false, nil
	}
	have, err := w.opt.Store.GetAny(ctx, r.ID)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return supersedes(have, r) || have.Status == jobs.Cleared && have.Generation >= r.Generation, nil
}

// supersedes reports whether the bucket's record have is newer than r:
// a newer generation, or a finished state of the same generation (the
// first finished state of a generation stands).
func supersedes(have, r Record) bool {
	return have.Generation > r.Generation || have.Generation == r.Generation && jobs.Terminal(have.Status)
}

func revisionConflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

func (w *Writer) requeue(es []*entry) {
	time.Sleep(50 * time.Millisecond)
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range es {
		if r, ok := w.inflight[e.rec.ID]; ok && r.UpdatedAt.Equal(e.rec.UpdatedAt) {
			delete(w.inflight, e.rec.ID)
		}
		if newer := w.pending[e.rec.ID]; newer != nil {
			continue // the newer entry holds the full state already
		}
		e.urgent = true
		w.pending[e.rec.ID] = e
		w.order = append(w.order, e.rec.ID)
	}
}

// Published lets the records of submissions JetStream has acknowledged
// be written.
func (w *Writer) Published(ids ...string) {
	w.mu.Lock()
	urgent := false
	for _, id := range ids {
		if e := w.pending[id]; e != nil && e.unpublished {
			e.unpublished = false
			urgent = urgent || e.urgent
		}
	}
	w.mu.Unlock()
	if urgent {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
}

// Forget drops what this instance holds of generation gen of a job
// without writing it (the job was cancelled elsewhere: the canceller wrote
// its record, which a late write of this instance would find and leave).
func (w *Writer) Forget(id string, gen int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.pending[id]
	switch {
	case e == nil || e.rec.Generation > gen || jobs.Terminal(e.rec.Status):
	case e.unpublished:
		delete(w.pending, id) // a submission that failed: no record
		for _, ch := range e.waiters {
			ch <- errors.New("the job was not submitted")
		}
	case len(e.waiters) == 0:
		delete(w.pending, id)
	}
}

// Stop writes everything pending and stops the writer.
func (w *Writer) Stop() {
	w.once.Do(func() { close(w.stop); <-w.done })
}

// Kill drops everything pending and stops, as a crash would.
func (w *Writer) Kill() {
	w.mu.Lock()
	w.killed = true
	w.pending = map[string]*entry{}
	w.order = nil
	w.mu.Unlock()
	w.Stop()
}
