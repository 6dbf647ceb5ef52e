package jobstore_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/odavl/sync/libs/mongodb"
	"github.com/odavl/sync/libs/mongotest"
	"github.com/odavl/sync/libs/natstest"
	"github.com/odavl/sync/services/jobs/internal/jobstore"
)

// An instance killed after inserting a finished job's record but before
// deleting its live entry leaves the entry behind: the job would be listed
// unfinished forever beside its finished record. The next writer to start
// deletes such entries, and every instance's view drops them; a live entry
// of a newer generation (a retry) stays.
func TestStartDropsLiveEntriesOfFinishedJobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	nb := natstest.Start(t)
	mb := mongotest.Start(t)
	if err := mongodb.EnsureIndexes(ctx, mb.DB, jobstore.Indexes()); err != nil {
		t.Fatal(err)
	}
	store := jobstore.New(mb.DB)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	newWriter := func(o jobstore.WriterOptions) *jobstore.Writer {
		w, err := jobstore.NewWriter(ctx, store, nb.JS, quiet, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Stop)
		return w
	}
	// The first writer does not check its puts again (Recheck an hour):
	// only the second one's start can drop the stale entry.
	first := newWriter(jobstore.WriterOptions{Recheck: time.Hour})
	now := time.Now().UTC()
	base := func(id string, gen int) jobstore.Record {
		return jobstore.Record{ID: id, Type: jobstore.EmailSend, Priority: 5, OrganizationID: "o", ProjectID: "p", MaxAttempts: 4, CreatedAt: now, Generation: gen}
	}
	for _, r := range []jobstore.Record{base("job_stale", 0), base("job_retried", 1)} {
		if err := <-first.Add(jobstore.Change{Base: r, Create: true, Status: jobstore.Waiting, At: now, Durable: true}); err != nil {
			t.Fatal(err)
		}
	}
	// The finished records as the killed instance inserted them: job_stale
	// finished in its live entry's generation, job_retried's first run
	// finished before the retry that is live now.
	for _, r := range []jobstore.Record{base("job_stale", 0), base("job_retried", 0)} {
		r.Status, r.UpdatedAt, r.History = jobstore.Completed, now, []jobstore.Transition{{Status: jobstore.Completed, At: now}}
		if _, err := store.Coll().InsertOne(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	live := func(w *jobstore.Writer) map[string]bool {
		ids := map[string]bool{}
		for _, r := range w.Live(func(jobstore.Record) bool { return true }) {
			ids[r.ID] = true
		}
		return ids
	}
	if ids := live(first); !ids["job_stale"] || !ids["job_retried"] {
		t.Fatalf("live before the restart: %v", ids)
	}

	second := newWriter(jobstore.WriterOptions{})
	for _, w := range []*jobstore.Writer{second, first} {
		deadline := time.Now().Add(10 * time.Second)
		for ids := live(w); ids["job_stale"] || !ids["job_retried"]; ids = live(w) {
			if time.Now().After(deadline) {
				t.Fatalf("live entries %v; want job_stale dropped and job_retried (a newer generation) kept", ids)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// A job submitted on one instance and run and finished on another before the
// first wrote its WAITING record (held to be collapsed with later changes)
// leaves that record behind in the live bucket, put after the job finished:
// the submitting writer checks its submissions' puts again and drops it.
func TestLateSubmissionRecordOfAFinishedJobIsDropped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, w := startWriter(t)
	now := time.Now().UTC()
	rec := jobstore.Record{ID: "job_raced", Type: jobstore.EmailSend, Priority: 5, OrganizationID: "o", ProjectID: "p", MaxAttempts: 4, CreatedAt: now}
	// The other instance's finished record is stored first.
	done := rec
	done.Status, done.UpdatedAt, done.History = jobstore.Completed, now, []jobstore.Transition{{Status: jobstore.Completed, At: now}}
	if _, err := store.Coll().InsertOne(ctx, done); err != nil {
		t.Fatal(err)
	}
	// Then this instance's held WAITING record goes live.
	if err := <-w.Add(jobstore.Change{Base: rec, Create: true, Status: jobstore.Waiting, At: now, Durable: true}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(w.Live(func(jobstore.Record) bool { return true })) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the WAITING entry of a finished job is still live: %+v", w.Live(func(jobstore.Record) bool { return true }))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
