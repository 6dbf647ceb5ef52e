package jobstore_test

import (
	"context"
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
