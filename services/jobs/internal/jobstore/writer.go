package jobstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/odavl/sync/libs/bus"
)

// LiveBucket is the JetStream KV bucket of the jobs that are not finished.
const LiveBucket = "jobs-live"

// Change is one transition (or progress report) of a job.
type Change struct {
	// Base identifies the job and holds its fields when nothing is known of
	// it yet: ID, Type, Priority, tenant, MaxAttempts, Payload, ParentID,
	// TimeoutMs, RunAt, CreatedAt, Generation (and, for a manual retry,
	// the History so far).
	Base Record
	// Create marks the job's submission.
	Create bool
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
	// Batch is the largest insert (default 100).
	Batch int
	// Parallel is how many inserts of one flush run side by side (default 4).
	Parallel int
	// Replicas is the live bucket's replica count (default 1; 3 on a cluster).
	Replicas int
	// Recheck is how long after a submission's live put the writer checks
	// whether the job is stored finished already (default 2s): well above
	// the delay of the live bucket's watch, so that an instance that ran
	// and finished the job without seeing this put has stored it by then.
	Recheck time.Duration
}

// Writer keeps job records where each is cheapest and never wrong after a
// crash: an unfinished job's record lives in the JetStream KV bucket
// LiveBucket (every instance watches it), a finished job's record is
// inserted once into MongoDB, in batches, and its live entry deleted. The
// changes of one job inside the hold are collapsed: a job that is submitted,
// run and finished quickly costs one batched insert and no update — the
// embedded store takes ~9k batched inserts/s but a few hundred updates/s.
type Writer struct {
	coll *mongo.Collection
	js   jetstream.JetStream
	djs  jetstream.JetStream // deletes of live entries
	kv   jetstream.KeyValue
	log  *slog.Logger
	opt  WriterOptions

	mu       sync.Mutex
	pending  map[string]*entry
	order    []string
	inflight map[string]Record
	live     map[string]Record
	liveRaw  map[string][]byte // entries seen by the watch, not decoded yet
	// revs is the newest revision of each key seen (puts and deletes), so
	// that a late watch update never undoes a newer local write.
	revs   map[string]rev
	pruned time.Time
	killed bool

	flushMu sync.Mutex
	kick    chan struct{}
	deletes chan liveDelete
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

type rev struct {
	n  uint64
	at time.Time
}

type entry struct {
	inKV    bool
	rec     Record
	first   time.Time
	urgent  bool
	waiters []chan error
}

// NewWriter creates the live bucket, loads it, and starts the writer. Stop
// flushes it.
func NewWriter(ctx context.Context, s *Store, js jetstream.JetStream, log *slog.Logger, o WriterOptions) (*Writer, error) {
	if o.Interval <= 0 {
		o.Interval = 10 * time.Millisecond
	}
	if o.Hold <= 0 {
		o.Hold = 200 * time.Millisecond
	}
	if o.Batch <= 0 || o.Batch > 100 {
		o.Batch = 100
	}
	if o.Parallel <= 0 {
		o.Parallel = 4
	}
	if o.Recheck <= 0 {
		o.Recheck = 2 * time.Second
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: LiveBucket, Description: "ODAVL Sync jobs not finished yet (finished ones are in MongoDB)",
		History: 1, Storage: jetstream.FileStorage, Replicas: max(o.Replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("creating bucket %s: %w", LiveBucket, err)
	}
	djs, err := jetstream.New(js.Conn(), jetstream.WithPublishAsyncMaxPending(1<<16))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	w := &Writer{coll: s.coll, js: js, djs: djs, deletes: make(chan liveDelete, 1<<16), kv: kv, log: log, opt: o, pending: map[string]*entry{},
		inflight: map[string]Record{}, live: map[string]Record{}, liveRaw: map[string][]byte{}, revs: map[string]rev{},
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	if err := w.watch(ctx); err != nil {
		return nil, err
	}
	go w.loop()
	go w.confirmDeletes()
	go w.dropStale()
	return w, nil
}

func submissionState(status string) bool {
	return status == Waiting || status == Delayed || status == Paused
}

// dropFinished forgets the live entries of those records whose job is
// stored finished in the same or a later generation.
func (w *Writer) dropFinished(recs []Record) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() {
		select {
		case <-w.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	n := 0
	for _, l := range recs {
		var r Record
		err := w.coll.FindOne(ctx, bson.D{{Key: "_id", Value: l.ID}}).Decode(&r)
		if errors.Is(err, mongo.ErrNoDocuments) {
			continue
		}
		if err != nil {
			if ctx.Err() == nil {
				w.log.Warn("checking live job entries against stored records", "err", err)
			}
			return n
		}
		if Terminal(r.Status) && r.Generation >= l.Generation {
			w.Forget(l.ID, r.Generation)
			n++
		}
	}
	return n
}

// dropStale deletes the live entries of jobs whose finished record is
// stored already: an instance killed between the insert of a finished
// record and the delete of its live entry leaves one behind, which would
// list the job twice (finished, and unfinished forever). The next start of
// any instance removes them.
func (w *Writer) dropStale() {
	if n := w.dropFinished(w.Live(func(Record) bool { return true })); n > 0 {
		w.log.Info("dropped live entries of finished jobs", "count", n)
	}
}

func (w *Writer) watch(ctx context.Context) error {
	return bus.Follow(ctx, w.kv, w.done, func(e jetstream.KeyValueEntry) {
		// Entries are decoded when read: most are this instance's own
		// puts, whose record it holds already.
		put := e.Operation() == jetstream.KeyValuePut
		w.mu.Lock()
		defer w.mu.Unlock()
		if e.Revision() > w.revs[e.Key()].n {
			w.revs[e.Key()] = rev{e.Revision(), time.Now()}
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
	if c.Base.Generation < e.rec.Generation {
		w.mu.Unlock()
		if ch != nil {
			ch <- nil // a change of an older generation: superseded
		}
		return ch
	}
	apply(&e.rec, c)
	if ch != nil {
		e.waiters = append(e.waiters, ch)
		e.urgent = true
	}
	if Terminal(e.rec.Status) {
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
			r.Status = Waiting
		}
		return
	}
	r.Status = c.Status
	r.Error = c.Error
	r.WaitingChildren = c.WaitingChildren
	at := c.At
	switch {
	case c.Status == Active:
		r.StartedAt = &at
	case Terminal(c.Status):
		r.FinishedAt = &at
		if c.Status == Completed {
			r.Progress = 100
		}
	case c.Status == Waiting:
		r.Progress = 0
		r.FinishedAt = nil
	}
	r.History = append(r.History, Transition{Status: c.Status, At: c.At, Attempt: c.Attempt, Error: c.Error})
}

// Read returns a job's record as this instance knows it best: its
// unwritten changes, the live bucket and the record load reads from
// MongoDB (stored: whether there was one). The newest generation wins;
// inside one, a finished record.
//
// What is held here is looked at before load reads the store: a record
// leaves this instance's memory only once it is in the store, so at every
// moment of a job's move from the live bucket to the store one of the two
// reads finds it.
func (w *Writer) Read(id string, load func() (r Record, stored bool, err error)) (Record, bool, error) {
	w.mu.Lock()
	var held []Record
	if l, has := w.liveLocked(id); has {
		held = append(held, l)
	}
	if f, has := w.inflight[id]; has {
		held = append(held, f)
	}
	if e := w.pending[id]; e != nil {
		held = append(held, e.rec)
	}
	w.mu.Unlock()
	best, ok, err := load()
	if err != nil {
		return Record{}, false, err
	}
	for _, c := range held {
		switch {
		case !ok, c.Generation > best.Generation:
			best, ok = c, true
		case c.Generation == best.Generation && !Terminal(best.Status):
			best = c
		}
	}
	return best, ok, nil
}

// Live returns the records of unfinished jobs known here that match keep.
func (w *Writer) Live(keep func(Record) bool) []Record {
	w.mu.Lock()
	defer w.mu.Unlock()
	seen := map[string]bool{}
	var out []Record
	add := func(r Record) {
		if seen[r.ID] {
			return
		}
		seen[r.ID] = true
		if !Terminal(r.Status) && keep(r) {
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
	var finals, lives []*entry
	for _, e := range es {
		if Terminal(e.rec.Status) {
			finals = append(finals, e)
		} else {
			lives = append(lives, e)
		}
	}
	results := make(map[*entry]error, len(es))
	// Live puts first, pipelined: they are acknowledged while the finished
	// records are inserted.
	type pub struct {
		e *entry
		f jetstream.PubAckFuture
	}
	var pubs []pub
	for _, e := range lives {
		lr := e.rec
		lr.Payload = ""
		b, _ := json.Marshal(lr)
		f, err := w.js.PublishMsgAsync(&nats.Msg{Subject: "$KV." + LiveBucket + "." + e.rec.ID, Data: b})
		if err != nil {
			results[e] = err
			continue
		}
		pubs = append(pubs, pub{e, f})
	}
	// Finished records, in chunks inserted side by side: the store decodes
	// and encodes each document on its connection's goroutine, and only
	// SQLite's own write is one at a time.
	var rmu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, w.opt.Parallel)
	for i := 0; i < len(finals); i += w.opt.Batch {
		chunk := finals[i:min(i+w.opt.Batch, len(finals))]
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			out := w.insertFinal(ctx, chunk)
			rmu.Lock()
			maps.Copy(results, out)
			rmu.Unlock()
		}()
	}
	wg.Wait()
	// The live entries of the jobs now in the store are deleted. The flush
	// does not wait for that: the record in the store is what counts (a
	// read prefers a finished record to a live one of the same
	// generation), and the deletes go out on the same connection as every
	// later put of the same key, so they cannot overtake one. They have a
	// JetStream context of their own, so that thousands per flush do not
	// hold back the lifecycle events in the queue's limit of pending
	// acknowledgements; confirmDeletes checks each and retries a failed one.
	w.mu.Lock()
	for _, e := range finals {
		_, e.inKV = w.live[e.rec.ID]
		if _, raw := w.liveRaw[e.rec.ID]; raw {
			e.inKV = true
		}
		e.inKV = e.inKV || w.revs[e.rec.ID].n > 0
	}
	w.mu.Unlock()
	for _, e := range finals {
		if results[e] != nil || !e.inKV {
			continue // never written to the live bucket: nothing to delete
		}
		m := &nats.Msg{Subject: "$KV." + LiveBucket + "." + e.rec.ID, Header: nats.Header{}}
		m.Header.Set("KV-Operation", "DEL")
		w.deleteLive(m, 0)
	}
	seqs := make(map[*entry]uint64, len(pubs))
	for _, p := range pubs {
		var err error
		select {
		case ack := <-p.f.Ok():
			seqs[p.e] = ack.Sequence
		case err = <-p.f.Err():
		case <-time.After(10 * time.Second):
			err = errors.New("no acknowledgement of the live bucket in 10s")
		}
		if err != nil {
			results[p.e] = fmt.Errorf("writing live job %s: %w", p.e.rec.ID, err)
		}
	}
	var submitted []Record
	for _, p := range pubs {
		if results[p.e] == nil && submissionState(p.e.rec.Status) {
			submitted = append(submitted, p.e.rec)
		}
	}
	if len(submitted) > 0 {
		// Another instance may have run and finished one of these jobs
		// before this put (the record was held, the job was not): its
		// finished record is stored and this entry would stay for good.
		time.AfterFunc(w.opt.Recheck, func() { w.dropFinished(submitted) })
	}
	var retry []*entry
	w.mu.Lock()
	for _, e := range es {
		err := results[e]
		if err != nil {
			continue // in flight until requeue puts it back: never out of sight
		}
		delete(w.inflight, e.rec.ID)
		if Terminal(e.rec.Status) {
			delete(w.live, e.rec.ID)
			delete(w.liveRaw, e.rec.ID)
		} else if seqs[e] >= w.revs[e.rec.ID].n {
			// Equal: the watch saw this put first; the record held here
			// also has the payload, which the bucket does not keep.
			w.revs[e.rec.ID] = rev{seqs[e], time.Now()}
			w.live[e.rec.ID] = e.rec
			delete(w.liveRaw, e.rec.ID)
		}
	}
	if len(w.revs) > 10000 && time.Since(w.pruned) > 10*time.Second {
		// Forget the revisions of finished jobs seen more than a minute
		// ago; a scan every 10s at most, not one per flush.
		w.pruned = time.Now()
		for k, r := range w.revs {
			_, raw := w.liveRaw[k]
			if _, live := w.live[k]; !live && !raw && time.Since(r.at) > time.Minute {
				delete(w.revs, k)
			}
		}
	}
	w.mu.Unlock()
	for _, e := range es {
		err := results[e]
		for _, ch := range e.waiters {
			ch <- err
		}
		if err != nil {
			e.waiters = nil
			retry = append(retry, e)
		}
	}
	if len(retry) > 0 {
		w.log.Warn("job records not written, will retry", "jobs", len(retry), "err", results[retry[0]])
		w.requeue(retry)
	}
}

type liveDelete struct {
	m     *nats.Msg
	f     jetstream.PubAckFuture
	tries int
}

// deleteLive publishes the delete of a live entry; confirmDeletes checks it.
func (w *Writer) deleteLive(m *nats.Msg, tries int) {
	f, err := w.djs.PublishMsgAsync(m)
	if err != nil {
		w.log.Warn("live job entry not deleted", "subject", m.Subject, "err", err)
		return
	}
	select {
	case w.deletes <- liveDelete{m, f, tries}:
	case <-w.done:
	}
}

// confirmDeletes waits for the acknowledgement of each delete and publishes
// a failed one again (three tries): a lost delete would leave a finished
// job listed as unfinished.
func (w *Writer) confirmDeletes() {
	for {
		var d liveDelete
		select {
		case d = <-w.deletes:
		case <-w.done:
			return
		}
		var err error
		select {
		case <-d.f.Ok():
			continue
		case err = <-d.f.Err():
		case <-time.After(10 * time.Second):
			err = errors.New("no acknowledgement in 10s")
		}
		if d.tries >= 2 {
			w.log.Error("live job entry not deleted; the finished job is listed as unfinished until its entry changes", "subject", d.m.Subject, "err", err)
			continue
		}
		id := strings.TrimPrefix(d.m.Subject, "$KV."+LiveBucket+".")
		w.mu.Lock()
		_, pending := w.pending[id]
		_, inflight := w.inflight[id]
		w.mu.Unlock()
		if pending || inflight {
			continue // a newer change of the job (a retry) writes the entry again
		}
		go w.deleteLive(d.m, d.tries+1)
	}
}

// insertFinal inserts finished records; one that exists already (a job
// retried by hand, or finished by another instance) is replaced only if it
// is of an older generation.
func (w *Writer) insertFinal(ctx context.Context, chunk []*entry) map[*entry]error {
	out := make(map[*entry]error, len(chunk))
	docs := make([]any, len(chunk))
	for j, e := range chunk {
		if len(e.rec.History) == 0 || e.rec.History[0].Status == Active {
			e.rec.History = append([]Transition{{Status: Waiting, At: e.rec.CreatedAt}}, e.rec.History...)
		}
		doc := e.rec
		if doc.Status == Completed {
			// A completed job keeps its output; its payload is only needed
			// to run it again, which a completed job is not. Halving the
			// document is most of the write's cost in the embedded store.
			doc.Payload = ""
		}
		docs[j] = doc
	}
	_, err := w.coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err == nil {
		for _, e := range chunk {
			out[e] = nil
		}
		return out
	}
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil {
		for _, e := range chunk {
			out[e] = fmt.Errorf("inserting job records: %w", err)
		}
		return out
	}
	failed := map[int]bool{}
	for _, we := range bwe.WriteErrors {
		failed[we.Index] = true
	}
	for j, e := range chunk {
		if !failed[j] {
			out[e] = nil
			continue
		}
		// Upsert: the older record may have been deleted meanwhile (a
		// manual retry deletes it); a record of the same generation makes
		// the upsert a duplicate, and that record stands.
		_, rerr := w.coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: e.rec.ID}, {Key: "generation", Value: bson.D{{Key: "$lt", Value: e.rec.Generation}}}},
			docs[j], options.Replace().SetUpsert(true))
		if mongo.IsDuplicateKeyError(rerr) {
			rerr = nil
		}
		if rerr != nil {
			out[e] = fmt.Errorf("replacing job record %s: %w", e.rec.ID, rerr)
		} else {
			out[e] = nil
		}
	}
	return out
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

// Forget drops what this instance holds of generation gen of a job without
// writing it (the job was cancelled elsewhere) and deletes its live entry.
// A newer generation (a manual retry made meanwhile) is left alone, here
// and in the live bucket: the delete is conditional on the entry being the
// newest one seen here.
func (w *Writer) Forget(id string, gen int) {
	w.mu.Lock()
	if e := w.pending[id]; e != nil && e.rec.Generation <= gen && !Terminal(e.rec.Status) && len(e.waiters) == 0 {
		delete(w.pending, id)
	}
	newer := false
	if l, ok := w.liveLocked(id); ok && l.Generation > gen {
		newer = true
	}
	if r, ok := w.inflight[id]; ok && r.Generation > gen {
		newer = true
	}
	if e := w.pending[id]; e != nil && e.rec.Generation > gen {
		newer = true
	}
	seen := w.revs[id].n
	w.mu.Unlock()
	if newer {
		return
	}
	m := &nats.Msg{Subject: "$KV." + LiveBucket + "." + id, Header: nats.Header{}}
	m.Header.Set("KV-Operation", "DEL")
	if seen > 0 {
		// Refused if the entry changed since (a retry's live record).
		m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(seen, 10))
	}
	_, _ = w.js.PublishMsgAsync(m)
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
