package jobstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/odavl/sync/libs/jobs"
	"github.com/odavl/sync/services/jobs/internal/jobstore"
)

// A waiting job cancelled and retried runs with its payload: the live bucket
// keeps no payloads, so the instance that submitted the job keeps it, and
// the CANCELLED record (made from what a read returns, as Cancel does)
// stores it, whichever of the flush and the bucket's watch saw the live
// record first.
func TestCancelledWaitingJobKeepsItsPayload(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, w, proj := startWriter(t)
	load := func(id string) func() (jobstore.Record, bool, error) {
		return func() (jobstore.Record, bool, error) {
			r, err := store.GetAny(ctx, id)
			if err != nil {
				return jobstore.Record{}, false, nil
			}
			return r, true, nil
		}
	}
	const n = 50
	for i := range n {
		id := fmt.Sprintf("job_%d", i)
		base := jobstore.Record{ID: id, Type: jobs.EmailSend, Priority: 5, OrganizationID: "o", ProjectID: "p", MaxAttempts: 4,
			Payload: fmt.Sprintf(`{"to":["a@example.com"],"subject":"s%d","text":"t"}`, i), CreatedAt: time.Now().UTC()}
		if err := <-w.Add(jobstore.Change{Base: base, Create: true, Status: jobs.Paused, At: time.Now().UTC(), Durable: true}); err != nil {
			t.Fatal(err)
		}
		r, ok, err := w.Read(ctx, id, load(id))
		if err != nil || !ok {
			t.Fatalf("read %s: %v %v", id, ok, err)
		}
		if err := <-w.Add(jobstore.Change{Base: r, Status: jobs.Cancelled, At: time.Now().UTC(), Error: "cancelled", Durable: true}); err != nil {
			t.Fatal(err)
		}
	}
	if err := proj.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	lost := 0
	for i := range n {
		r, err := store.GetAny(ctx, fmt.Sprintf("job_%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != jobs.Cancelled || r.Payload == "" {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d cancelled jobs stored without their payload: a retry could not run them", lost, n)
	}
}
