package stats

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/rpc"
	"github.com/odavl/sync/services/stats/internal/statsdb"
)

// TestKillMidBatch kills the consumer (bus.Loop.Kill, and the connection
// closed, so nothing is acknowledged or nakked) while several changes are
// in hand — one with its day aggregate applied but not its all-time one,
// one counted in the ledger but still in flight, others waiting for their
// project's lock — then starts a new service: every figure is still exact.
func TestKillMidBatch(t *testing.T) {
	b := newBundle(t)
	blockAt := map[string]string{"processed-a1": "aggregate1", "processed-i4": "done", "processed-g1": "ledger"}
	var (
		mu      sync.Mutex
		reached = map[string]bool{}
		release = make(chan struct{})
		dead    atomic.Bool
	)
	// Once the process is "dead", no step of any change runs any more.
	r := b.start(t, func(id, step string) error {
		if dead.Load() {
			return statsdb.ErrCrash
		}
		if blockAt[id] != step {
			return nil
		}
		mu.Lock()
		reached[id] = true
		mu.Unlock()
		<-release
		return statsdb.ErrCrash
	})
	// p2's events first: with four workers, p1's changes waiting for p1's lock must not hold every worker before i4 arrives.
	evs := fixture()
	for _, pe := range append(evs[8:10:10], append(evs[:8:8], evs[10:]...)...) {
		publishRaw(t, b.nats.Conn, pe.subject, pe.ev)
	}
	// a1 and g1 share p1's lock, so at most one of them blocks at a time; i4 (p2) blocks beside it.
	eventually(t, "two changes blocked mid-way", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return reached["processed-i4"] && (reached["processed-a1"] || reached["processed-g1"])
	})
	dead.Store(true)
	killed := make(chan struct{})
	go func() { r.svc.kill(); close(killed) }()
	r.svc.nc.Close()
	close(release)
	<-killed
	r.stop()
	left, err := b.db.Collection(statsdb.InflightCollection).CountDocuments(context.Background(), bson.D{})
	if err != nil || left < 2 {
		t.Fatalf("the crash left %d changes in flight (err %v), want at least the two blocked ones", left, err)
	}

	// Some events arrive while no service runs.
	s, e := processed("o1", "p1", events.Insight, "i9", day1, events.Figures{TotalIssues: 2, IssuesBySeverity: &events.IssuesBySeverity{Critical: 1, High: 1}})
	publishRaw(t, b.nats.Conn, s, e)

	r2 := b.start(t, nil)
	want := p1Figures()
	want.Insight.Analyses++
	want.Insight.TotalIssues += 2
	want.Insight.IssuesBySeverity.Critical++
	want.Insight.IssuesBySeverity.High++
	want.Insight.WithCritical++
	waitForFigures(t, b.nats.Conn, p1Query(), want)
	// p2's changes that were nakked at the crash (a batch fails as one) come back after the retry delay.
	var org rpc.StatsSummaryResponse
	eventually(t, "the organization's figures exact after the crash", func() bool {
		org = summaryOf(t, b.nats.Conn, rpc.StatsQuery{Tenant: rpc.Tenant{OrganizationID: "o1"}, Scope: rpc.ScopeOrganization})
		return org.Insight.Analyses == 5 && org.Guardian.Total == 3 && org.Guardian.TotalVulnerabilities == 4
	})
	if n := r2.svc.store.Pending(); n != 0 {
		t.Errorf("%d changes left unfinished", n)
	}
}
