package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/odavl/sync/libs/mongodb"
	"github.com/odavl/sync/libs/mongotest"
	"github.com/odavl/sync/libs/natstest"
	"github.com/odavl/sync/services/jobs/internal/handlers"
	"github.com/odavl/sync/services/jobs/internal/jobstore"
	"github.com/odavl/sync/services/jobs/internal/queue"
)

// As many invitations as workers (and one more): each parent gives its
// worker back while its mails run, so every invitation completes.
func TestInvitationsDoNotDeadlockTheWorkers(t *testing.T) {
	t.Parallel()
	nb := natstest.Start(t)
	mb := mongotest.Start(t)
	if err := mongodb.EnsureIndexes(context.Background(), mb.DB, jobstore.Indexes()); err != nil {
		t.Fatal(err)
	}
	store := jobstore.New(mb.DB)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	q, err := queue.New(log, natstest.Connect(t, nb.URL), store, queue.Config{
		Workers: 2, Backoff: []time.Duration{100 * time.Millisecond}, AckWait: 2 * time.Second,
		RecordHold: 50 * time.Millisecond, ChildPoll: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	outbox := filepath.Join(t.TempDir(), "outbox")
	q.Handle(jobstore.EmailSend, handlers.NewMailer(log, handlers.SMTP{}, outbox).Handle)
	q.Handle(jobstore.BulkInvitation, handlers.Invitations())
	ctx := context.Background()
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Stop)

	var ids []string
	for i := range 3 {
		p, _ := json.Marshal(handlers.Invitation{Emails: []string{
			fmt.Sprintf("a%d@example.com", i), fmt.Sprintf("b%d@example.com", i), fmt.Sprintf("c%d@example.com", i)}})
		r, err := q.Submit(ctx, queue.Spec{Type: jobstore.BulkInvitation, OrganizationID: "org1", ProjectID: "proj1", Payload: p})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, id := range ids {
		var r jobstore.Record
		for {
			r, err = q.Get(ctx, "org1", "proj1", id)
			if err == nil && jobstore.Terminal(r.Status) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("invitation %s is %s (progress %d%%) after 30s: the workers are deadlocked", id, r.Status, r.Progress)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if r.Status != jobstore.Completed {
			t.Fatalf("invitation %s is %s: %s", id, r.Status, r.Error)
		}
		if r.Attempts != 1 || !slices.ContainsFunc(r.History, func(h jobstore.Transition) bool { return h.Status == jobstore.Delayed }) {
			t.Fatalf("invitation %s: attempts %d, history %+v: want 1 attempt and a DELAYED wait for its mails", id, r.Attempts, r.History)
		}
		var out struct {
			Invited  int      `json:"invited"`
			Failed   []string `json:"failed"`
			Children []string `json:"children"`
		}
		if err := json.Unmarshal([]byte(r.Output), &out); err != nil || out.Invited != 3 || len(out.Failed) != 0 || len(out.Children) != 3 {
			t.Fatalf("invitation %s output %s (%v)", id, r.Output, err)
		}
		for _, c := range out.Children {
			if _, err := os.Stat(filepath.Join(outbox, c+".eml")); err != nil {
				t.Fatalf("mail of %s: %v", c, err)
			}
		}
	}
}
