package statsdb_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/odavl/sync/libs/mongotest"
	"github.com/odavl/sync/services/stats/internal/statsdb"
	"github.com/odavl/sync/services/stats/internal/tally"
)

func change(id, day string, n int64) tally.Change {
	return tally.Change{ID: id, OrganizationID: "o", ProjectID: "p", Day: day, Inc: map[string]int64{tally.InsightAnalyses: 1, tally.InsightLow: n}}
}

// A rebuild that fails after writing part of the ledger holds all counting
// until a rebuild finishes; then nothing is lost or counted twice.
func TestFailedRebuildHoldsCounting(t *testing.T) {
	ctx := context.Background()
	st := statsdb.New(mongotest.Start(t).DB, time.Now)
	if _, err := st.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	c1, c2, c3 := change("c1", "2026-11-30", 1), change("c2", "2026-12-01", 10), change("c3", "2026-12-01", 100)
	if err := st.Apply(ctx, c1, nil); err != nil {
		t.Fatal(err)
	}
	broken := errors.New("source went away")
	_, err := st.Rebuild(ctx, func(ctx context.Context, each func([]tally.Change) error) error {
		if err := each([]tally.Change{c1, c2}); err != nil {
			return err
		}
		return broken
	})
	if !errors.Is(err, broken) || !st.RebuildUnfinished() {
		t.Fatalf("failed rebuild: %v, unfinished %v", err, st.RebuildUnfinished())
	}
	if err := st.Apply(ctx, c3, nil); !errors.Is(err, statsdb.ErrRebuildUnfinished) {
		t.Fatalf("counting during an unfinished rebuild: %v", err)
	}
	res, err := st.Rebuild(ctx, func(ctx context.Context, each func([]tally.Change) error) error { return each([]tally.Change{c1, c2}) })
	if err != nil || res.Generation != 2 || res.Changes != 2 || st.RebuildUnfinished() {
		t.Fatalf("rebuild: %+v %v", res, err)
	}
	for _, c := range []tally.Change{c2, c3, c3, c1} { // c2's event arrives after the rebuild counted it
		if err := st.Apply(ctx, c, nil); err != nil {
			t.Fatal(err)
		}
	}
	all, err := st.Read(ctx, "o", "p", statsdb.AllTime)
	if err != nil {
		t.Fatal(err)
	}
	if want := (tally.Counters{tally.InsightAnalyses: 3, tally.InsightLow: 111}); !cmp.Equal(all.Counters, want) {
		t.Errorf("all time (-want +got):\n%s", cmp.Diff(want, all.Counters))
	}
	dec, err := st.Read(ctx, "o", "p", "2026-12")
	if err != nil {
		t.Fatal(err)
	}
	if want := (tally.Counters{tally.InsightAnalyses: 2, tally.InsightLow: 110}); !cmp.Equal(dec.Days["01"], want) {
		t.Errorf("2026-12-01 (-want +got):\n%s", cmp.Diff(want, dec.Days["01"]))
	}
}

// Many changes of one project at once, each delivered twice, over two
// months: they are counted in batches, and every figure is exact; the
// batches fail at each step in turn once, and are finished by the next one.
func TestConcurrentChangesOfOneProjectCountOnce(t *testing.T) {
	ctx := context.Background()
	st := statsdb.New(mongotest.Start(t).DB, time.Now)
	if _, err := st.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	failed := map[string]bool{}
	hook := func(_, step string) error { // the first batch to reach each step fails there
		mu.Lock()
		defer mu.Unlock()
		if !failed[step] {
			failed[step] = true
			return fmt.Errorf("injected failure at %s", step)
		}
		return nil
	}
	const n = 300
	var wg sync.WaitGroup
	for i := range 2 * n {
		wg.Go(func() {
			c := change(fmt.Sprintf("c%d", i%n), []string{"2026-11-30", "2026-12-01"}[i%n%2], int64(i%n))
			for st.Apply(ctx, c, hook) != nil { // a failed delivery is delivered again
			}
		})
	}
	wg.Wait()
	all, err := st.Read(ctx, "o", "p", statsdb.AllTime)
	if err != nil {
		t.Fatal(err)
	}
	if want := (tally.Counters{tally.InsightAnalyses: n, tally.InsightLow: n * (n - 1) / 2}); !cmp.Equal(all.Counters, want) {
		t.Errorf("all time (-want +got):\n%s", cmp.Diff(want, all.Counters))
	}
	nov, err := st.Read(ctx, "o", "p", "2026-11")
	if err != nil {
		t.Fatal(err)
	}
	if want := (tally.Counters{tally.InsightAnalyses: n / 2, tally.InsightLow: n * (n - 2) / 4}); !cmp.Equal(nov.Days["30"], want) {
		t.Errorf("2026-11-30 (-want +got):\n%s", cmp.Diff(want, nov.Days["30"]))
	}
	if len(failed) < 5 {
		t.Errorf("failures injected at %v, want every step", failed)
	}
	if p := st.Pending(); p != 0 {
		t.Errorf("%d changes left unfinished", p)
	}
}
