package queue_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/odavl/sync/libs/jobs"
	"github.com/odavl/sync/services/jobs/internal/queue"
)

// An organization's pause holds back its jobs only: the ones an instance
// had pulled already are set aside, new ones wait where no consumer takes
// them (so they cannot fill a priority's look-ahead and starve anyone), and
// other organizations' jobs run. A resume runs every held job exactly once.
func TestPausedOrganizationWaitsWhileOthersRun(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Workers, cfg.Prefetch = 1, 8
	b := setup(t, cfg)
	gate := make(chan struct{})
	var mu sync.Mutex
	runs := map[string]int{}
	q := b.start(t, map[string]queue.Handler{"TEST": func(ctx context.Context, j *queue.Job) (any, error) {
		mu.Lock()
		runs[j.JobID]++
		first := len(runs) == 1
		mu.Unlock()
		if first {
			<-gate // holds the only worker while the rest are pulled
		}
		return nil, nil
	}})
	ctx := context.Background()
	spec := func(org string) queue.Spec { return queue.Spec{OrganizationID: org, ProjectID: "p"} }
	var held []string
	for range 20 {
		held = append(held, submit(t, q, spec("acme")).ID)
	}
	b.waitStatus(t, held[0], jobs.Active, 10*time.Second)
	if err := q.PauseOrganization(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if !q.OrganizationPaused("acme") || q.OrganizationPaused("other") {
		t.Fatal("the pause is not acme's alone")
	}
	for range 30 { // more than the look-ahead: they must not wait behind acme's
		held = append(held, submit(t, q, spec("acme")).ID)
	}
	close(gate)
	var others []string
	for range 10 {
		others = append(others, submit(t, q, spec("other")).ID)
	}
	for _, id := range others {
		b.waitStatus(t, id, jobs.Completed, 10*time.Second)
	}
	b.waitStatus(t, held[0], jobs.Completed, 10*time.Second)
	for _, id := range held[1:] {
		b.waitStatus(t, id, jobs.Paused, 10*time.Second)
	}
	mu.Lock()
	for _, id := range held[1:] {
		if runs[id] != 0 {
			t.Errorf("%s of the paused organization ran", id)
		}
	}
	mu.Unlock()
	st, err := q.Stats(ctx, "acme", "")
	if err != nil || st.ByStatus[jobs.Paused] != int64(len(held)-1) {
		t.Fatalf("acme's stats %+v (%v), want %d PAUSED", st, err, len(held)-1)
	}

	if err := q.ResumeOrganization(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	for _, id := range held {
		b.waitStatus(t, id, jobs.Completed, 10*time.Second)
	}
	b.waitSettled(t, queue.ConsumerName("NORMAL"))
	mu.Lock()
	defer mu.Unlock()
	for _, id := range append(held, others...) {
		if runs[id] != 1 {
			t.Errorf("%s ran %d times, want once", id, runs[id])
		}
	}
}
