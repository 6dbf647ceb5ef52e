package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/odavl/sync/services/jobs/internal/jobstore"
	"github.com/odavl/sync/services/jobs/internal/queue"
)

// A live entry of a job whose finished record is stored (left by another
// instance until the writer drops it) is not listed beside it: the
// finished record is the job, counted once.
func TestListPrefersTheFinishedRecord(t *testing.T) {
	t.Parallel()
	b := setup(t, queue.Config{})
	q := b.start(t, nil)
	ctx := context.Background()
	now := time.Now().UTC()
	rec := jobstore.Record{ID: "job_twice", Type: jobstore.EmailSend, Priority: 5, OrganizationID: "o", ProjectID: "p", MaxAttempts: 4, CreatedAt: now}
	if err := <-q.Writer().Add(jobstore.Change{Base: rec, Create: true, Status: jobstore.Waiting, At: now, Durable: true}); err != nil {
		t.Fatal(err)
	}
	done := rec
	done.Status, done.UpdatedAt, done.History = jobstore.Completed, now, []jobstore.Transition{{Status: jobstore.Completed, At: now}}
	if _, err := b.store.Coll().InsertOne(ctx, done); err != nil {
		t.Fatal(err)
	}
	got, total, err := q.List(ctx, jobstore.Query{OrganizationID: "o", Limit: 20})
	if err != nil {
		t.Fatal(err)
	}
	if total != 1 || len(got) != 1 || got[0].Status != jobstore.Completed {
		t.Fatalf("listed %d of %d: %+v; want the one COMPLETED record", len(got), total, got)
	}
}
