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

	"github.com/odavl/sync/libs/jobs"
	"github.com/odavl/sync/libs/mongodb"
	"github.com/odavl/sync/libs/mongotest"
	"github.com/odavl/sync/libs/natstest"
	"github.com/odavl/sync/services/jobs/internal/handlers"
	"github.com/odavl/sync/services/jobs/internal/jobstore"
	"github.com/odavl/sync/services/jobs/internal/queue"
)

// As many invitations as workers (and one more): each parent gives its
// worker back while its mails run, so every invitation completes.
// startQueue runs a queue with the mail and invitation handlers, mail to
// an outbox.
func startQueue(t *testing.T, workers int) (*queue.Queue, string) {
	t.Helper()
	nb := natstest.Start(t)
	mb := mongotest.Start(t)
	if err := mongodb.EnsureIndexes(context.Background(), mb.DB, jobstore.Indexes()); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	q, err := queue.New(log, natstest.Connect(t, nb.URL), jobstore.New(mb.DB), queue.Config{
		Workers: workers, Backoff: []time.Duration{100 * time.Millisecond}, AckWait: 2 * time.Second,
		RecordHold: 50 * time.Millisecond, ChildPoll: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	outbox := filepath.Join(t.TempDir(), "outbox")
	q.Handle(jobs.EmailSend, handlers.NewMailer(log, handlers.SMTP{}, outbox).Handle)
	q.Handle(jobs.BulkInvitation, handlers.Invitations())
	if err := q.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Stop)
	return q, outbox
}

func waitFinished(t *testing.T, q *queue.Queue, id string, d time.Duration) jobstore.Record {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		r, err := q.Get(context.Background(), "org1", "proj1", id)
		if err == nil && jobs.Terminal(r.Status) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s is %s (progress %d%%) after %s: the workers are deadlocked", id, r.Status, r.Progress, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type invitationOutput struct {
	Invited  int      `json:"invited"`
	Failed   []string `json:"failed"`
	Children []string `json:"children"`
}

func TestInvitationsDoNotDeadlockTheWorkers(t *testing.T) {
	t.Parallel()
	q, outbox := startQueue(t, 2)
	ctx := context.Background()
	var ids []string
	for i := range 3 {
		p, _ := json.Marshal(handlers.Invitation{Emails: []string{
			fmt.Sprintf("a%d@example.com", i), fmt.Sprintf("b%d@example.com", i), fmt.Sprintf("c%d@example.com", i)}})
		r, err := q.Submit(ctx, queue.Spec{Type: jobs.BulkInvitation, OrganizationID: "org1", ProjectID: "proj1", Payload: p})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	for _, id := range ids {
		r := waitFinished(t, q, id, 30*time.Second)
		if r.Status != jobs.Completed {
			t.Fatalf("invitation %s is %s: %s", id, r.Status, r.Error)
		}
		if r.Attempts != 1 || !slices.ContainsFunc(r.History, func(h jobstore.Transition) bool { return h.Status == jobs.Delayed }) {
			t.Fatalf("invitation %s: attempts %d, history %+v: want 1 attempt and a DELAYED wait for its mails", id, r.Attempts, r.History)
		}
		var out invitationOutput
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

// A mail that fails is reported in the invitation's output; the others are sent.
func TestInvitationReportsAFailedMail(t *testing.T) {
	t.Parallel()
	q, outbox := startQueue(t, 1)
	// Not an address: the API refuses it, the mail job fails for good.
	p, _ := json.Marshal(handlers.Invitation{Emails: []string{"ok1@example.com", "not-an-address", "ok2@example.com"}})
	r, err := q.Submit(context.Background(), queue.Spec{Type: jobs.BulkInvitation, OrganizationID: "org1", ProjectID: "proj1", Payload: p})
	if err != nil {
		t.Fatal(err)
	}
	done := waitFinished(t, q, r.ID, 30*time.Second)
	var out invitationOutput
	if err := json.Unmarshal([]byte(done.Output), &out); done.Status != jobs.Completed || err != nil ||
		out.Invited != 2 || !slices.Equal(out.Failed, []string{"not-an-address"}) {
		t.Fatalf("invitation %s output %s (%v)", done.Status, done.Output, err)
	}
	if bad := waitFinished(t, q, out.Children[1], time.Second); bad.Status != jobs.Failed {
		t.Fatalf("the bad address's mail is %s", bad.Status)
	}
	for _, c := range []string{out.Children[0], out.Children[2]} {
		if _, err := os.Stat(filepath.Join(outbox, c+".eml")); err != nil {
			t.Fatalf("mail of %s: %v", c, err)
		}
	}
}
