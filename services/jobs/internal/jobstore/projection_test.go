package jobstore_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/odavl/sync/libs/jobs"
	"github.com/odavl/sync/services/jobs/internal/jobstore"
)

// finish records n jobs through w as a queue does: ACTIVE, then a durable
// final status (every seventh FAILED, the others COMPLETED).
func finish(t *testing.T, w *jobstore.Writer, prefix string, n int) map[string]string {
	t.Helper()
	want := map[string]string{}
	for i := range n {
		id := fmt.Sprintf("%s_%d", prefix, i)
		base := jobstore.Record{ID: id, Type: jobs.EmailSend, Priority: 5, OrganizationID: "o", ProjectID: "p", MaxAttempts: 4,
			Payload: `{"to":["a@example.com"]}`, CreatedAt: time.Now().UTC()}
		status := jobs.Completed
		if i%7 == 0 {
			status = jobs.Failed
		}
		w.Add(jobstore.Change{Base: base, Create: true, Status: jobs.Active, At: time.Now().UTC(), Attempt: 1})
		if err := <-w.Add(jobstore.Change{Base: base, Status: status, At: time.Now().UTC(), Attempt: 1, Durable: true}); err != nil {
			t.Fatal(err)
		}
		want[id] = status
	}
	return want
}

func storedDocs(t *testing.T, s *jobstore.Store) map[string]bson.M {
	t.Helper()
	cur, err := s.Coll().Find(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var docs []bson.M
	if err := cur.All(context.Background(), &docs); err != nil {
		t.Fatal(err)
	}
	out := map[string]bson.M{}
	for _, d := range docs {
		out[d["_id"].(string)] = d
	}
	return out
}

// A crash after jobs finished and before their records were projected
// loses nothing: every read finds them finished at once (from the bucket),
// and the projection, started later, catches up and empties the bucket.
func TestProjectionCatchesUpAfterACrash(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newStack(t)
	nb, store := st.nb, st.store
	w := st.writer(t)
	want := finish(t, w, "job", 120)
	w.Kill() // the crash: no projection ever ran

	w2 := st.writer(t)
	for id, status := range want {
		r, ok, err := w2.Get(ctx, store, id)
		if err != nil || !ok || r.Status != status {
			t.Fatalf("%s reads %v %v %+v before its projection, want %s", id, ok, err, r, status)
		}
	}
	if n := len(storedDocs(t, store)); n != 0 {
		t.Fatalf("%d records in the store before any projection", n)
	}

	st.project(t)
	docs := storedDocs(t, store)
	for id, status := range want {
		if d, ok := docs[id]; !ok || d["status"] != status {
			t.Errorf("%s stored as %v (%v), want %s", id, d["status"], ok, status)
		}
	}
	kv, err := nb.JS.KeyValue(ctx, jobstore.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		keys, err := kv.ListKeys(ctx)
		left := 0
		if err == nil {
			for range keys.Keys() {
				left++
			}
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d entries still in the bucket after the projection caught up", left)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for id, status := range want {
		if r, ok, err := w2.Get(ctx, store, id); err != nil || !ok || r.Status != status {
			t.Fatalf("%s reads %v %v %+v once projected, want %s", id, ok, err, r, status)
		}
	}
}

// A batch applied again (a redelivery after a crash between the insert
// and the acknowledgement, or a replay of the bucket's stream from its
// start) changes no record: the same documents, the same history.
func TestProjectionReplayChangesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newStack(t)
	nb, store := st.nb, st.store
	want := finish(t, st.writer(t), "job", 60)

	// The bucket's stream from its start, as a projection replaying it reads it.
	kv, err := nb.JS.KeyValue(ctx, jobstore.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	status, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	info := status.(*jetstream.KeyValueBucketStatus).StreamInfo()
	cons, err := nb.JS.OrderedConsumer(ctx, info.Config.Name, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(int(info.State.Msgs), jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	if len(msgs) != len(want) {
		t.Fatalf("read %d entries, want %d", len(msgs), len(want))
	}

	p := st.project(t)
	first := storedDocs(t, store)
	if len(first) != len(want) {
		t.Fatalf("%d records projected, want %d", len(first), len(want))
	}
	for range 2 {
		if err := p.Apply(ctx, msgs); err != nil {
			t.Fatal(err)
		}
	}
	again := storedDocs(t, store)
	for id, d := range first {
		a := again[id]
		if !reflect.DeepEqual(a, d) {
			t.Errorf("%s changed by the replay:\n%v\n%v", id, d, a)
		}
		if h, _ := a["history"].(bson.A); len(h) != 3 || !slices.Contains([]any{jobs.Completed, jobs.Failed}, a["status"]) {
			t.Errorf("%s after the replay: status %v, history %v, want WAITING, ACTIVE and its end once", id, a["status"], h)
		}
	}
}

// A submission's record held on one instance to be collapsed, while another
// instance runs and finishes the job, never overwrites the finished state
// when it is written at last: neither while the finished record is in the
// bucket nor once the projection has taken it out (it would list the job
// WAITING for ever).
func TestAHeldRecordDoesNotOverwriteAFinishedJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newStack(t)
	held, err := jobstore.NewWriter(ctx, st.nb.JS, st.log, jobstore.WriterOptions{Hold: time.Hour, Store: st.store})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(held.Stop)
	other := st.writer(t)
	p := st.project(t)
	for _, projected := range []bool{false, true} {
		id := fmt.Sprintf("job_projected_%v", projected)
		base := jobstore.Record{ID: id, Type: jobs.EmailSend, Priority: 5, OrganizationID: "o", ProjectID: "p", MaxAttempts: 4, CreatedAt: time.Now().UTC()}
		held.Add(jobstore.Change{Base: base, Create: true, Status: jobs.Waiting, At: time.Now().UTC()}) // held an hour
		other.Add(jobstore.Change{Base: base, Status: jobs.Active, At: time.Now().UTC(), Attempt: 1})
		if err := <-other.Add(jobstore.Change{Base: base, Status: jobs.Completed, At: time.Now().UTC(), Attempt: 1, Durable: true}); err != nil {
			t.Fatal(err)
		}
		if projected {
			if err := p.CatchUp(ctx); err != nil {
				t.Fatal(err)
			}
		}
		held.Flush()
		if r, ok, err := held.Get(ctx, st.store, id); err != nil || !ok || r.Status != jobs.Completed {
			t.Fatalf("projected %v: the job reads %v %v %s after the held record was written, want COMPLETED", projected, ok, err, r.Status)
		}
		if err := p.CatchUp(ctx); err != nil {
			t.Fatal(err)
		}
		if r, err := st.store.GetAny(ctx, id); err != nil || r.Status != jobs.Completed {
			t.Fatalf("projected %v: stored %v %s, want COMPLETED", projected, err, r.Status)
		}
		if live := held.Live(func(r jobstore.Record) bool { return r.ID == id }); len(live) != 0 {
			t.Fatalf("projected %v: listed unfinished: %+v", projected, live)
		}
	}
}

// A held record is weighed against the entry it would overwrite even when
// its reads lag (a direct get answered by a replica behind the leader, a
// watch behind): TestClusterKill9 saw a WAITING record written over the
// COMPLETED one that beat it, the job listed WAITING for good.
func TestALaggingReadDoesNotLetAHeldRecordOverwriteAFinishedJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newStack(t)
	held, err := jobstore.NewWriter(ctx, st.nb.JS, st.log, jobstore.Lagging(jobstore.WriterOptions{Hold: time.Hour, Store: st.store}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(held.Stop)
	other := st.writer(t)
	base := jobstore.Record{ID: "job_lagging", Type: jobs.EmailSend, Priority: 5, OrganizationID: "o", ProjectID: "p", MaxAttempts: 4, CreatedAt: time.Now().UTC()}
	held.Add(jobstore.Change{Base: base, Create: true, Status: jobs.Waiting, At: time.Now().UTC()})
	if err := <-other.Add(jobstore.Change{Base: base, Status: jobs.Completed, At: time.Now().UTC(), Attempt: 1, Durable: true}); err != nil {
		t.Fatal(err)
	}
	held.Flush()
	if r, ok, err := other.Get(ctx, st.store, base.ID); err != nil || !ok || r.Status != jobs.Completed {
		t.Fatalf("the job reads %v %v %s after the lagging writer's held record, want COMPLETED", ok, err, r.Status)
	}
}

// A submission's record is not written before its message is published:
// an instance that dies in between leaves no WAITING record of a job that
// does not exist; once published, it is written.
func TestASubmissionsRecordWaitsForItsMessage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newStack(t)
	w := st.writer(t)
	base := jobstore.Record{ID: "job_unpublished", Type: jobs.EmailSend, Priority: 5, OrganizationID: "o", ProjectID: "p", MaxAttempts: 4, CreatedAt: time.Now().UTC()}
	w.Add(jobstore.Change{Base: base, Create: true, Status: jobs.Waiting, At: time.Now().UTC(), Unpublished: true})
	w.Flush()
	kv, err := st.nb.JS.KeyValue(ctx, jobstore.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, base.ID); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("the record of a submission not yet published: %v, want none written", err)
	}
	w.Published(base.ID)
	w.Flush()
	if r, ok, err := w.Get(ctx, st.store, base.ID); err != nil || !ok || r.Status != jobs.Waiting {
		t.Fatalf("once published: %v %v %s, want WAITING", ok, err, r.Status)
	}
	if _, err := kv.Get(ctx, base.ID); err != nil {
		t.Fatalf("once published, the record is not in the bucket: %v", err)
	}
}
