package queue_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/odavl/sync/libs/jobs"
	"github.com/odavl/sync/services/jobs/internal/jobstore"
	"github.com/odavl/sync/services/jobs/internal/queue"
)

// A backlog's jobs wait long enough to get live entries; once they are
// finished, no entry is left behind and another instance lists every one
// as COMPLETED (none as still waiting).
func TestFinishedBacklogLeavesNoLiveEntries(t *testing.T) {
	t.Parallel()
	b := setup(t, testConfig())
	ok := func(ctx context.Context, j *queue.Job) (any, error) { return nil, nil }
	q := b.start(t, map[string]queue.Handler{"TEST": ok})
	ctx := context.Background()
	if err := q.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 300
	ids := make([]string, n)
	for i := range ids {
		ids[i] = submit(t, q, queue.Spec{}).ID
	}
	kv, err := b.nats.JS.KeyValue(ctx, jobstore.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "live entries of the paused backlog", 5*time.Second, func() bool {
		keys, err := kv.ListKeys(ctx)
		if err != nil {
			return false
		}
		c := 0
		for range keys.Keys() {
			c++
		}
		return c == n
	})
	if err := q.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		b.waitStatus(t, id, jobs.Completed, 20*time.Second)
	}
	waitFor(t, "no live entry left", 5*time.Second, func() bool {
		keys, err := kv.ListKeys(ctx)
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return true
		}
		if err != nil {
			return false
		}
		for range keys.Keys() {
			return false
		}
		return true
	})
	other := b.start(t, nil)
	waitFor(t, "another instance lists every job COMPLETED", 5*time.Second, func() bool {
		recs, total, err := other.List(ctx, jobstore.Query{OrganizationID: "org1", ProjectID: "proj1"})
		if err != nil || total != n || len(recs) != n {
			return false
		}
		for _, r := range recs {
			if r.Status != jobs.Completed {
				return false
			}
		}
		return true
	})
}
