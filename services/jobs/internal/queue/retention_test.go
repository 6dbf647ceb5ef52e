package queue_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/jobs"
	"github.com/odavl/sync/services/jobs/internal/jobstore"
	"github.com/odavl/sync/services/jobs/internal/queue"
)

// Remove-on-complete (BullMQ's removeOnComplete), chosen per type: a
// COMPLETED job of that type leaves no record once the projection has
// passed it, while the jobs of other types, and FAILED ones of any type,
// are kept.
func TestRemoveOnCompleteKeepsFailedAndOtherTypes(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Keep = jobstore.Retention{Default: jobstore.Keep{Age: time.Hour}, ByType: map[string]jobstore.Keep{"TEST": {Remove: true}}}
	b := setup(t, cfg)
	q := b.start(t, map[string]queue.Handler{
		"TEST": func(ctx context.Context, j *queue.Job) (any, error) {
			if j.Payload != nil && string(j.Payload) == `"fail"` {
				return nil, bus.Permanent(errors.New("no"))
			}
			return map[string]int{"n": 1}, nil
		},
		"KEPT": func(ctx context.Context, j *queue.Job) (any, error) { return nil, nil },
	})
	ctx := context.Background()
	var removed, failed, kept []string
	for range 20 {
		removed = append(removed, submit(t, q, queue.Spec{}).ID)
	}
	for range 3 {
		failed = append(failed, submit(t, q, queue.Spec{Payload: []byte(`"fail"`)}).ID)
		kept = append(kept, submit(t, q, queue.Spec{Type: "KEPT"}).ID)
	}
	for _, id := range failed {
		b.waitStatus(t, id, jobs.Failed, 10*time.Second)
	}
	for _, id := range kept {
		b.waitStatus(t, id, jobs.Completed, 10*time.Second)
	}
	for _, id := range removed {
		waitFor(t, id+" removed once completed", 10*time.Second, func() bool {
			_, err := q.Get(ctx, "org1", "proj1", id)
			return errors.Is(err, queue.ErrNotFound)
		})
	}
	waitFor(t, "the kept jobs in the store", 10*time.Second, func() bool {
		n, err := b.store.Coll().CountDocuments(ctx, map[string]any{})
		return err == nil && n == int64(len(failed)+len(kept))
	})
	st, err := q.Stats(ctx, "org1", "proj1")
	if err != nil {
		t.Fatal(err)
	}
	if st.ByStatus[jobs.Failed] != 3 || st.ByStatus[jobs.Completed] != 3 || st.ByType["TEST"] != 3 || st.ByType["KEPT"] != 3 {
		t.Fatalf("stats %+v, want 3 FAILED TEST jobs and 3 COMPLETED KEPT ones", st)
	}
}
