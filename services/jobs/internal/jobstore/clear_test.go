package jobstore_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/odavl/sync/libs/jobs"
	"github.com/odavl/sync/libs/mongodb"
	"github.com/odavl/sync/libs/mongotest"
	"github.com/odavl/sync/libs/natstest"
	"github.com/odavl/sync/services/jobs/internal/jobstore"
)

// A job cleared right after it completed stays gone when a late delivery
// of its message writes its COMPLETED record again (a redelivery that raced
// the first run, or whose ack came too late), and the redelivery's check
// finds it finished; records and tombstones older than Remember go for
// good.
func TestClearedJobDoesNotComeBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, w, proj := startWriter(t)

	completed := func(id, org string, attempt int) {
		t.Helper()
		base := jobstore.Record{ID: id, Type: jobs.InsightAnalysis, Priority: 5, OrganizationID: org, ProjectID: "p",
			MaxAttempts: 4, CreatedAt: time.Now().UTC()}
		w.Add(jobstore.Change{Base: base, Status: jobs.Active, At: time.Now().UTC(), Attempt: attempt})
		if err := <-w.Add(jobstore.Change{Base: base, Status: jobs.Completed, At: time.Now().UTC(), Attempt: attempt,
			ResultID: id, Durable: true}); err != nil {
			t.Fatal(err)
		}
	}
	completed("up_1", "o", 1)
	completed("up_other", "other", 1)
	weekAgo := time.Now().Add(-7 * 24 * time.Hour).UTC()
	if _, err := store.Coll().InsertMany(ctx, []any{
		jobstore.Record{ID: "up_old", Type: jobs.InsightAnalysis, Status: jobs.Completed, OrganizationID: "o", ProjectID: "p",
			CreatedAt: weekAgo, UpdatedAt: weekAgo, History: []jobstore.Transition{}},
		bson.D{{Key: "_id", Value: "up_cleared_long_ago"}, {Key: "status", Value: jobs.Cleared}, {Key: "updatedAt", Value: weekAgo}},
	}); err != nil {
		t.Fatal(err)
	}

	if err := proj.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := store.ClearCompleted(ctx, jobstore.Query{OrganizationID: "o", ProjectID: "p"}, time.Now())
	if err != nil || n != 2 {
		t.Fatalf("clear: %d %v, want 2 (up_1 and up_old)", n, err)
	}
	// The late write of the finished job, as a second delivery makes it.
	completed("up_1", "o", 2)
	w.Flush()

	byStatus, byType, err := store.Counts(ctx, jobstore.Query{OrganizationID: "o", ProjectID: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if byStatus[jobs.Completed] != 0 || byType[jobs.InsightAnalysis] != 0 {
		t.Fatalf("after the clear and a late write: by status %v, by type %v", byStatus, byType)
	}
	if _, total, err := store.List(ctx, jobstore.Query{OrganizationID: "o", ProjectID: "p"}); err != nil || total != 0 {
		t.Fatalf("listed %d jobs after the clear: %v", total, err)
	}
	if r, err := store.Get(ctx, "o", "p", "up_1"); !errors.Is(err, jobstore.ErrNotFound) {
		t.Fatalf("the cleared job reads %+v %v", r, err)
	}
	if r, err := store.GetAny(ctx, "up_1"); err != nil || !jobs.Terminal(r.Status) {
		t.Fatalf("a redelivery's check reads %+v %v, want it finished", r, err)
	}
	if r, err := store.Get(ctx, "other", "p", "up_other"); err != nil || r.Status != jobs.Completed {
		t.Fatalf("another tenant's job: %+v %v", r, err)
	}
	for _, id := range []string{"up_old", "up_cleared_long_ago"} {
		if n, err := store.Coll().CountDocuments(ctx, bson.D{{Key: "_id", Value: id}}); err != nil || n != 0 {
			t.Fatalf("%s: %d documents left (%v), want none", id, n, err)
		}
	}
}

// startWriter is a record writer and its projection over real embedded
// NATS and FerretDB.
func startWriter(t *testing.T) (*jobstore.Store, *jobstore.Writer, *jobstore.Projection) {
	t.Helper()
	st := newStack(t)
	w := st.writer(t)
	return st.store, w, st.project(t)
}

// stack is embedded NATS and FerretDB with the jobs' indexes.
type stack struct {
	nb    *natstest.Bundle
	store *jobstore.Store
	log   *slog.Logger
}

func newStack(t *testing.T) stack {
	t.Helper()
	nb, mb := natstest.Start(t), mongotest.Start(t)
	if err := mongodb.EnsureIndexes(context.Background(), mb.DB, jobstore.Indexes()); err != nil {
		t.Fatal(err)
	}
	return stack{nb: nb, store: jobstore.New(mb.DB), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// writer starts a record writer, stopped at cleanup.
func (s stack) writer(t *testing.T) *jobstore.Writer {
	t.Helper()
	w, err := jobstore.NewWriter(context.Background(), s.nb.JS, s.log, jobstore.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return w
}

// project starts a projection, stopped at cleanup, and waits until it has
// caught up with the bucket.
func (s stack) project(t *testing.T) *jobstore.Projection {
	t.Helper()
	p, err := jobstore.StartProjection(context.Background(), s.nb.JS, s.store, s.log, jobstore.ProjectionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	if err := p.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	return p
}
