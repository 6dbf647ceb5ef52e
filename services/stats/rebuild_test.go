package stats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/natstest"
	"github.com/odavl/sync/libs/rpc"
	"github.com/odavl/sync/services/jobs"
	"github.com/odavl/sync/services/stats/internal/statsdb"
)

// startJobs runs the real jobs service, which stores results and publishes processed events.
func (b *testBundle) startJobs(t testing.TB) {
	t.Helper()
	svc, err := jobs.New(b.log, natstest.Connect(t, b.nats.URL), b.db, jobs.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	eventually(t, "jobs service ready", svc.Ready)
}

// receive publishes an accepted upload as the gateway does.
func (b *testBundle) receive(t *testing.T, org, project string, p events.Product, upload string, at time.Time, payload any) {
	t.Helper()
	raw, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := events.New("received-"+upload, "/odavl-sync/ingest", events.ReceivedType(p), at, org, project, events.Received{
		UploadID: upload, OrganizationID: org, ProjectID: project, Product: p, IdempotencyKey: upload, PayloadHash: "h-" + upload,
		KeyID: "k", ReceivedAt: at, Payload: raw,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bus.Publish(context.Background(), b.nats.JS, events.ReceivedSubject(org, project, p, upload), ev); err != nil {
		t.Fatal(err)
	}
}

// receiveO1 receives o1's uploads of three days before now: Insight and
// Autopilot in p1, Guardian in p2 (see TestRebuildEqualsIncremental's figures).
func (b *testBundle) receiveO1(t *testing.T, now time.Time) {
	t.Helper()
	for i := range 3 {
		at := now.AddDate(0, 0, -i)
		b.receive(t, "o1", "p1", events.Insight, fmt.Sprintf("i%d", i), at, insightPayload("o1", "p1", at, int64(i), 2, 3, int64(4*i)))
		b.receive(t, "o1", "p1", events.Autopilot, fmt.Sprintf("a%d", i), at, autopilotPayload("o1", "p1", fmt.Sprintf("run%d", i), at, i != 1, 0.1*float64(i+1)+0.0005))
		b.receive(t, "o1", "p2", events.Guardian, fmt.Sprintf("g%d", i), at, guardianPayload("o1", "p2", fmt.Sprintf("t%d", i), at, i%2 == 0, 90.3333+float64(i), 1000.1, int64(i)))
	}
}

func insightPayload(org, project string, at time.Time, crit, high, med, low int64) map[string]any {
	return map[string]any{"projectId": project, "organizationId": org, "timestamp": at, "detectors": []string{"security"},
		"totalIssues": crit + high + med + low, "issuesBySeverity": map[string]int64{"critical": crit, "high": high, "medium": med, "low": low}, "issues": []any{}}
}

func autopilotPayload(org, project, run string, at time.Time, success bool, trust float64) map[string]any {
	ph := map[string]any{"status": "completed", "duration": 1.5}
	return map[string]any{"runId": run, "projectId": project, "organizationId": org, "timestamp": at,
		"phases":        map[string]any{"observe": ph, "decide": ph, "act": ph, "verify": ph, "learn": ph},
		"filesModified": []string{"a.go"}, "trustScore": trust, "qualityImproved": success, "success": success}
}

func guardianPayload(org, project, run string, at time.Time, passed bool, score, load float64, vulns int64) map[string]any {
	return map[string]any{"testRunId": run, "projectId": project, "organizationId": org, "timestamp": at, "url": "https://example.com",
		"environment": "staging", "screenshots": []string{}, "passed": passed,
		"tests": map[string]any{
			"accessibility": map[string]any{"score": score, "violations": 1, "passes": 10},
			"performance":   map[string]any{"loadTime": load, "ttfb": 100, "fcp": 200, "lcp": 1500 + score},
			"security":      map[string]any{"vulnerabilities": vulns, "warnings": 0},
		}}
}

// TestRebuildEqualsIncremental counts uploads of the three products (stored
// by the real jobs service, one of them received twice) and job and file
// events incrementally, rebuilds from the stored results, and finds every
// summary and every trend day equal — in a new generation.
func TestRebuildEqualsIncremental(t *testing.T) {
	b := newBundle(t)
	b.startJobs(t)
	r := b.start(t, nil)
	now := time.Now().UTC().Truncate(time.Second)
	b.receiveO1(t, now)
	// The same upload received again (a redelivered received event with a new message id).
	at := now.AddDate(0, 0, -1)
	ev, _ := events.New("received-again-a1", "/odavl-sync/ingest", events.ReceivedType(events.Autopilot), at, "o1", "p1", events.Received{
		UploadID: "a1", OrganizationID: "o1", ProjectID: "p1", Product: events.Autopilot, IdempotencyKey: "a1", ReceivedAt: at,
		Payload: mustJSON(autopilotPayload("o1", "p1", "run1", at, false, 0.2005))})
	if _, err := bus.Publish(context.Background(), b.nats.JS, events.ReceivedSubject("o1", "p1", events.Autopilot, "a1"), ev); err != nil {
		t.Fatal(err)
	}
	for _, pe := range fixture()[10:] { // job and file events (dated day1)
		publishRaw(t, b.nats.Conn, pe.subject, pe.ev)
	}

	p1 := p1Query()
	org := rpc.StatsQuery{Tenant: rpc.Tenant{OrganizationID: "o1"}, Scope: rpc.ScopeOrganization}
	// By hand: p1 has 3 analyses with 0+1+2 critical, 6 high, 9 medium, 0+4+8 low; 3 runs, 2 successful.
	// The jobs service announces each upload's job: ACTIVE, then COMPLETED (9 jobs; a1's second
	// delivery repeats the event ids, which JetStream drops); the fixture adds j1, j2 (finished
	// twice, counted once) and j3 (failed in two generations).
	wantJobs := map[string]int64{"WAITING": 1, "ACTIVE": 9 + 2, "FAILED": 1 + 2, "COMPLETED": 9 + 2}
	eventually(t, "every upload and job event counted", func() bool {
		s := summaryOf(t, b.nats.Conn, org)
		return s.Insight.Analyses == 3 && s.Autopilot.Total == 3 && s.Guardian.Total == 3 && cmp.Equal(s.Jobs.ByStatus, wantJobs)
	})
	s := summaryOf(t, b.nats.Conn, p1)
	wantInsight := rpc.InsightFigures{Analyses: 3, TotalIssues: 3 + 6 + 9 + 12, IssuesBySeverity: rpc.SeverityTotals{Critical: 3, High: 6, Medium: 9, Low: 12}, WithCritical: 2}
	if !cmp.Equal(s.Insight, wantInsight) {
		t.Errorf("p1 insight (-want +got):\n%s", cmp.Diff(wantInsight, s.Insight))
	}
	// trust (0.1005 + 0.2005 + 0.3005)/3 = 0.2005 → 0.2
	if s.Autopilot.Successful != 2 || s.Autopilot.Failed != 1 || *s.Autopilot.SuccessRate != 66.67 || *s.Autopilot.AverageTrustScore != 0.2 {
		t.Errorf("p1 autopilot = %+v", s.Autopilot)
	}
	g := summaryOf(t, b.nats.Conn, rpc.StatsQuery{Tenant: rpc.Tenant{OrganizationID: "o1", ProjectID: "p2"}}).Guardian
	// scores 90.3333, 91.3333, 92.3333 → 91.33 (LCP 1500 more); passed runs 0 and 2.
	if g.Passed != 2 || *g.PassRate != 66.67 || *g.AverageAccessibilityScore != 91.33 || g.TotalVulnerabilities != 3 || *g.AverageLoadTime != 1000.1 ||
		g.AverageLCP == nil || *g.AverageLCP != 1591.33 {
		t.Errorf("p2 guardian = %+v", g)
	}

	queries := []rpc.StatsQuery{p1, org, {Tenant: rpc.Tenant{OrganizationID: "o1", ProjectID: "p2"}}}
	ranged := rpc.StatsQuery{Tenant: p1.Tenant, From: "2026-11-01", To: now.Format("2006-01-02")}
	before := map[int]rpc.StatsSummaryResponse{}
	for i, q := range append(queries, ranged) {
		before[i] = summaryOf(t, b.nats.Conn, q)
	}
	trendsBefore, err := rpc.Call[rpc.StatsTrendsResponse](context.Background(), b.nats.Conn, rpc.StatsTrends, org)
	if err != nil {
		t.Fatal(err)
	}

	res, err := rpc.Call[rpc.StatsRebuildResponse](context.Background(), b.nats.Conn, rpc.StatsRebuild, rpc.StatsRebuildRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Generation != 2 || res.Results != 9 {
		t.Errorf("rebuild = %+v, want generation 2 over 9 results", res)
	}
	// Job figures are carried over, and the jobs service may still announce a
	// retried job (a new attempt) meanwhile: they may only grow, and the
	// fixture's own job events are there exactly.
	for i, q := range append(queries, ranged) {
		after := summaryOf(t, b.nats.Conn, q)
		if !cmp.Equal(before[i], after, noJobs) {
			t.Errorf("summary %+v after rebuild (-incremental +rebuilt):\n%s", q, cmp.Diff(before[i], after, noJobs))
		}
		for typ, byStatus := range before[i].Jobs.ByType {
			for st, n := range byStatus {
				if after.Jobs.ByType[typ][st] < n {
					t.Errorf("summary %+v: %s %s jobs went from %d to %d in the rebuild", q, typ, st, n, after.Jobs.ByType[typ][st])
				}
			}
		}
		if q.ProjectID != "p2" {
			if j := after.Jobs.ByType; j["EMAIL_SEND"]["COMPLETED"] != 1 || j["INSIGHT_ANALYSIS"]["WAITING"] != 1 || j["INSIGHT_ANALYSIS"]["FAILED"] != 1 {
				t.Errorf("summary %+v: the fixture's job events after rebuild: %v", q, j)
			}
		}
	}
	trendsAfter, err := rpc.Call[rpc.StatsTrendsResponse](context.Background(), b.nats.Conn, rpc.StatsTrends, org)
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(trendsBefore, trendsAfter, noJobs) {
		t.Errorf("trends after rebuild (-incremental +rebuilt):\n%s", cmp.Diff(trendsBefore, trendsAfter, noJobs))
	}
	// The old generation is gone, and new events count in the new one, once.
	n, _ := b.db.Collection(statsdb.AggregatesCollection).CountDocuments(context.Background(), bson.D{{Key: "gen", Value: int64(1)}})
	if n != 0 {
		t.Errorf("%d aggregates of generation 1 left", n)
	}
	b.receive(t, "o1", "p1", events.Insight, "i9", now, insightPayload("o1", "p1", now, 5, 0, 0, 0))
	b.receive(t, "o1", "p1", events.Insight, "i0", now, insightPayload("o1", "p1", now, 0, 2, 3, 0)) // i0 again: counted before
	want := before[0].Figures
	want.Insight.Analyses++
	want.Insight.TotalIssues += 5
	want.Insight.IssuesBySeverity.Critical += 5
	want.Insight.WithCritical++
	eventually(t, "i9 counted once", func() bool {
		got := summaryOf(t, b.nats.Conn, p1).Figures
		return cmp.Equal(got, want, noJobs) && got.Jobs.ByType["INSIGHT_ANALYSIS"]["COMPLETED"] > before[0].Jobs.ByType["INSIGHT_ANALYSIS"]["COMPLETED"]
	})
	time.Sleep(500 * time.Millisecond)
	if got := summaryOf(t, b.nats.Conn, p1).Figures; !cmp.Equal(got, want, noJobs) {
		t.Errorf("after i9 (-want +got):\n%s", cmp.Diff(want, got, noJobs))
	}
	_ = r
}

// noJobs leaves the job figures out of a comparison.
var noJobs = cmpopts.IgnoreFields(rpc.Figures{}, "Jobs")

// TestInterruptedRebuildIsFinished: a rebuild recorded as running when the
// service stopped is finished at the next start, before anything is counted.
func TestInterruptedRebuildIsFinished(t *testing.T) {
	b := newBundle(t)
	b.startJobs(t)
	r := b.start(t, nil)
	now := time.Now().UTC()
	b.receive(t, "o1", "p1", events.Guardian, "g1", now, guardianPayload("o1", "p1", "t1", now, true, 77.7, 10, 2))
	eventually(t, "upload counted", func() bool { return summaryOf(t, b.nats.Conn, p1Query()).Guardian.Total == 1 })
	r.stop()
	if _, err := b.db.Collection(statsdb.MetaCollection).UpdateOne(context.Background(), bson.D{{Key: "_id", Value: "meta"}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "rebuilding", Value: int64(2)}}}}); err != nil {
		t.Fatal(err)
	}
	r2 := b.start(t, nil)
	if g := r2.svc.store.Generation(); g != 2 {
		t.Fatalf("generation after restart = %d, want 2 (the interrupted rebuild finished)", g)
	}
	if g := summaryOf(t, b.nats.Conn, p1Query()).Guardian; g.Total != 1 || *g.AverageAccessibilityScore != 77.7 || g.TotalVulnerabilities != 2 {
		t.Errorf("guardian after the finished rebuild = %+v", g)
	}
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// TestRebuildWithoutJobsService: with nobody exporting results the rebuild
// fails at once with 503 and the figures stay as they were.
func TestRebuildWithoutJobsService(t *testing.T) {
	b := newBundle(t)
	r := b.start(t, nil)
	s, e := processed("o1", "p1", events.Insight, "i1", day1, events.Figures{TotalIssues: 1, IssuesBySeverity: &events.IssuesBySeverity{Low: 1}})
	publishRaw(t, b.nats.Conn, s, e)
	eventually(t, "counted", func() bool { return summaryOf(t, b.nats.Conn, p1Query()).Insight.Analyses == 1 })
	start := time.Now()
	_, err := rpc.Call[rpc.StatsRebuildResponse](context.Background(), b.nats.Conn, rpc.StatsRebuild, rpc.StatsRebuildRequest{})
	if rpc.StatusOf(err) != 503 || time.Since(start) > 10*time.Second {
		t.Fatalf("rebuild without the jobs service: %v after %s, want a 503 at once", err, time.Since(start))
	}
	if r.svc.store.Generation() != 1 || summaryOf(t, b.nats.Conn, p1Query()).Insight.Analyses != 1 {
		t.Errorf("a failed rebuild changed the figures")
	}
}

// TestRebuildOfOneOrganizationWhileAnotherCounts rebuilds o1 alone while
// uploads of o1 and o2 keep coming: the rebuild is stopped after reading
// o1's results, and o2's uploads are counted meanwhile (so o1's rebuild
// holds no worker nor acknowledgement o2 needs) while o1's are set aside;
// then o1's figures equal the incremental count plus its uploads made
// during the rebuild, each once, in a generation of o1's own, and o2's are
// exact in the generation it had.
func TestRebuildOfOneOrganizationWhileAnotherCounts(t *testing.T) {
	b := newBundle(t)
	b.startJobs(t)
	read := make(chan struct{}, 1)
	resume := make(chan struct{})
	var exported atomic.Int64 // results the jobs service exported for o1's rebuild
	r := b.startWith(t, func(s *Service) {
		s.exported = func(org string, n int) error {
			if org != "o1" {
				return nil
			}
			exported.Add(int64(n))
			select {
			case read <- struct{}{}:
			default:
			}
			<-resume
			return nil
		}
	})
	now := time.Now().UTC().Truncate(time.Second)
	b.receiveO1(t, now)
	for i := range 2 {
		b.receive(t, "o2", "q1", events.Insight, fmt.Sprintf("o2i%d", i), now, insightPayload("o2", "q1", now, 1, 1, 0, 0))
	}
	o1 := rpc.StatsQuery{Tenant: rpc.Tenant{OrganizationID: "o1"}, Scope: rpc.ScopeOrganization}
	o2 := rpc.StatsQuery{Tenant: rpc.Tenant{OrganizationID: "o2"}, Scope: rpc.ScopeOrganization}
	eventually(t, "every upload counted", func() bool {
		s, s2 := summaryOf(t, b.nats.Conn, o1), summaryOf(t, b.nats.Conn, o2)
		return s.Insight.Analyses == 3 && s.Autopilot.Total == 3 && s.Guardian.Total == 3 && s2.Insight.Analyses == 2
	})
	p1, p2 := p1Query(), rpc.StatsQuery{Tenant: rpc.Tenant{OrganizationID: "o1", ProjectID: "p2"}}
	queries := []rpc.StatsQuery{p1, p2, o1, o2}
	before := map[int]rpc.StatsSummaryResponse{}
	for i, q := range queries {
		before[i] = summaryOf(t, b.nats.Conn, q)
	}
	trendsBefore, err := rpc.Call[rpc.StatsTrendsResponse](context.Background(), b.nats.Conn, rpc.StatsTrends, p2)
	if err != nil {
		t.Fatal(err)
	}

	type answer struct {
		res rpc.StatsRebuildResponse
		err error
	}
	done := make(chan answer, 1)
	go func() {
		res, err := rpc.Call[rpc.StatsRebuildResponse](context.Background(), b.nats.Conn, rpc.StatsRebuild,
			rpc.StatsRebuildRequest{Scope: rpc.ScopeOrganization, OrganizationID: "o1"})
		done <- answer{res, err}
	}()
	select {
	case <-read:
	case a := <-done:
		t.Fatalf("the rebuild of o1 answered %+v %v before reading its results", a.res, a.err)
	case <-time.After(60 * time.Second):
		t.Fatal("timed out waiting for the rebuild of o1 to read its results")
	}
	// o1's rebuild waits: o2 counts, o1's uploads are set aside.
	b.receive(t, "o2", "q1", events.Insight, "o2i9", now, insightPayload("o2", "q1", now, 0, 0, 7, 0))
	b.receive(t, "o1", "p1", events.Insight, "i9", now, insightPayload("o1", "p1", now, 5, 0, 0, 0))
	b.receive(t, "o1", "p3", events.Insight, "k1", now, insightPayload("o1", "p3", now, 0, 1, 0, 0))
	wantO2 := before[3].Figures
	wantO2.Insight.Analyses++
	wantO2.Insight.TotalIssues += 7
	wantO2.Insight.IssuesBySeverity.Medium += 7
	eventually(t, "o2's upload counted while o1 is rebuilt", func() bool {
		return cmp.Equal(summaryOf(t, b.nats.Conn, o2).Figures, wantO2, noJobs)
	})
	deferred := b.db.Collection(statsdb.DeferredCollection)
	eventually(t, "o1's uploads set aside while o1 is rebuilt", func() bool {
		n, err := deferred.CountDocuments(context.Background(), bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: bson.A{"processed-i9", "processed-k1"}}}}})
		return err == nil && n == 2
	})
	for i, q := range queries[:3] {
		if got := summaryOf(t, b.nats.Conn, q); !cmp.Equal(before[i], got, noJobs) {
			t.Errorf("summary %+v while o1 is rebuilt (-before +now):\n%s", q, cmp.Diff(before[i], got, noJobs))
		}
	}
	close(resume)
	var a answer
	select {
	case a = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("timed out waiting for the rebuild of o1")
	}
	if a.err != nil {
		t.Fatal(a.err)
	}
	if a.res.Scope != rpc.ScopeOrganization || a.res.OrganizationID != "o1" || a.res.Results != 9 || a.res.Generation != 2 {
		t.Errorf("rebuild of o1 = %+v, want o1's 9 results in generation 2", a.res)
	}
	if n := exported.Load(); n != 9 {
		t.Errorf("the jobs service exported %d results for o1's rebuild, want o1's 9", n)
	}

	// o1: the incremental figures, plus i9 and k1, each once.
	wantP1 := before[0].Figures
	wantP1.Insight.Analyses++
	wantP1.Insight.TotalIssues += 5
	wantP1.Insight.IssuesBySeverity.Critical += 5
	wantP1.Insight.WithCritical++
	wantO1 := before[2].Figures
	wantO1.Insight = wantP1.Insight
	wantO1.Insight.Analyses++
	wantO1.Insight.TotalIssues++
	wantO1.Insight.IssuesBySeverity.High++
	wantP3 := rpc.InsightFigures{Analyses: 1, TotalIssues: 1, IssuesBySeverity: rpc.SeverityTotals{High: 1}}
	eventually(t, "o1's uploads made during its rebuild counted", func() bool {
		return cmp.Equal(summaryOf(t, b.nats.Conn, o1).Insight, wantO1.Insight)
	})
	// expect checks the organizations' generations and the product figures.
	expect := func(when string, g1, g2 int64) {
		t.Helper()
		if got1, got2 := r.svc.store.GenerationOf("o1"), r.svc.store.GenerationOf("o2"); got1 != g1 || got2 != g2 {
			t.Errorf("generations %s: o1 %d, o2 %d; want %d and %d", when, got1, got2, g1, g2)
		}
		for _, c := range []struct {
			q    rpc.StatsQuery
			want rpc.Figures
		}{{p1, wantP1}, {p2, before[1].Figures}, {o1, wantO1}, {o2, wantO2}} {
			if got := summaryOf(t, b.nats.Conn, c.q).Figures; !cmp.Equal(c.want, got, noJobs) {
				t.Errorf("summary %+v %s (-incremental +rebuilt):\n%s", c.q, when, cmp.Diff(c.want, got, noJobs))
			}
		}
	}
	expect("after o1's rebuild", 2, 1)
	if got := summaryOf(t, b.nats.Conn, rpc.StatsQuery{Tenant: rpc.Tenant{OrganizationID: "o1", ProjectID: "p3"}}).Insight; !cmp.Equal(got, wantP3) {
		t.Errorf("p3 after o1's rebuild (-want +got):\n%s", cmp.Diff(wantP3, got))
	}
	// Job figures are carried over: they may only grow.
	for i, q := range queries {
		after := summaryOf(t, b.nats.Conn, q)
		for typ, byStatus := range before[i].Jobs.ByType {
			for st, n := range byStatus {
				if after.Jobs.ByType[typ][st] < n {
					t.Errorf("summary %+v: %s %s jobs went from %d to %d in o1's rebuild", q, typ, st, n, after.Jobs.ByType[typ][st])
				}
			}
		}
	}
	trendsAfter, err := rpc.Call[rpc.StatsTrendsResponse](context.Background(), b.nats.Conn, rpc.StatsTrends, p2)
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(trendsBefore, trendsAfter, noJobs) {
		t.Errorf("p2's trends after o1's rebuild (-incremental +rebuilt):\n%s", cmp.Diff(trendsBefore, trendsAfter, noJobs))
	}
	// o1's old generation is gone, o2's is the one it counts in.
	agg := b.db.Collection(statsdb.AggregatesCollection)
	if n, _ := agg.CountDocuments(context.Background(), bson.D{{Key: "gen", Value: int64(1)}, {Key: "org", Value: "o1"}}); n != 0 {
		t.Errorf("%d aggregates of o1's generation 1 left", n)
	}
	if n, _ := agg.CountDocuments(context.Background(), bson.D{{Key: "gen", Value: int64(1)}, {Key: "org", Value: "o2"}}); n == 0 {
		t.Errorf("o2's aggregates of generation 1 are gone")
	}
	eventually(t, "nothing left aside", func() bool {
		n, err := deferred.CountDocuments(context.Background(), bson.D{})
		return err == nil && n == 0
	})

	// A restart keeps each organization's generation.
	r.stop()
	r = b.start(t, nil)
	expect("after a restart", 2, 1)

	// A rebuild of everything afterwards gives the same figures, in one generation above both.
	res, err := rpc.Call[rpc.StatsRebuildResponse](context.Background(), b.nats.Conn, rpc.StatsRebuild, rpc.StatsRebuildRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Scope != rpc.ScopeAll || res.Generation != 3 || res.Results != 9+2+3 {
		t.Errorf("rebuild of everything = %+v, want generation 3 over 14 results", res)
	}
	expect("after the rebuild of everything", 3, 3)
}

// TestInterruptedRebuildOfAnOrganizationIsFinished: an organization's
// rebuild recorded as running when the service stopped is finished after
// the next start, while the other organizations count (o1's rebuild waits
// until o2's upload is counted); o1's upload made meanwhile counts once,
// after it.
func TestInterruptedRebuildOfAnOrganizationIsFinished(t *testing.T) {
	b := newBundle(t)
	b.startJobs(t)
	r := b.start(t, nil)
	now := time.Now().UTC()
	b.receive(t, "o1", "p1", events.Guardian, "g1", now, guardianPayload("o1", "p1", "t1", now, true, 77.7, 10, 2))
	b.receive(t, "o2", "q1", events.Guardian, "h1", now, guardianPayload("o2", "q1", "u1", now, false, 50, 10, 1))
	o2 := rpc.StatsQuery{Tenant: rpc.Tenant{OrganizationID: "o2", ProjectID: "q1"}}
	eventually(t, "uploads counted", func() bool {
		return summaryOf(t, b.nats.Conn, p1Query()).Guardian.Total == 1 && summaryOf(t, b.nats.Conn, o2).Guardian.Total == 1
	})
	r.stop()
	if _, err := b.db.Collection(statsdb.MetaCollection).InsertOne(context.Background(),
		bson.D{{Key: "_id", Value: "org|o1"}, {Key: "org", Value: "o1"}, {Key: "rebuilding", Value: int64(2)}}); err != nil {
		t.Fatal(err)
	}
	b.receive(t, "o1", "p1", events.Guardian, "g2", now, guardianPayload("o1", "p1", "t2", now, false, 60, 10, 3))
	b.receive(t, "o2", "q1", events.Guardian, "h2", now, guardianPayload("o2", "q1", "u2", now, true, 70, 10, 0))
	// o1's rebuild waits after reading o1's results until o2's upload is counted.
	resume := make(chan struct{})
	r2 := b.startWith(t, func(s *Service) {
		s.exported = func(org string, _ int) error {
			if org == "o1" {
				<-resume
			}
			return nil
		}
	})
	eventually(t, "o2's upload counted while o1's rebuild is finished", func() bool { return summaryOf(t, b.nats.Conn, o2).Guardian.Total == 2 })
	if g := r2.svc.store.GenerationOf("o1"); g != 1 || !r2.svc.store.Held("o1") {
		t.Errorf("o1 in generation %d (held: %v) before its rebuild finished", g, r2.svc.store.Held("o1"))
	}
	close(resume)
	eventually(t, "o1's interrupted rebuild finished and o1's upload counted after it", func() bool {
		g := summaryOf(t, b.nats.Conn, p1Query()).Guardian
		return r2.svc.store.GenerationOf("o1") == 2 && g.Total == 2
	})
	g := summaryOf(t, b.nats.Conn, p1Query()).Guardian
	if g.Passed != 1 || g.Failed != 1 || g.TotalVulnerabilities != 5 || *g.AverageAccessibilityScore != 68.85 {
		t.Errorf("o1's guardian figures after its finished rebuild = %+v", g)
	}
	if g := r2.svc.store.GenerationOf("o2"); g != 1 {
		t.Errorf("o2's generation = %d, want 1", g)
	}
}

// TestFailedRebuildOfAnOrganizationIsRetried: an organization's rebuild
// that fails after writing the ledger leaves that organization held (its
// uploads set aside, another organization's counted) and is retried in the
// background until it finishes; then every upload counts once.
func TestFailedRebuildOfAnOrganizationIsRetried(t *testing.T) {
	b := newBundle(t)
	b.startJobs(t)
	var (
		mu       sync.Mutex
		failures = 1
		failing  = make(chan struct{}) // closed to let the retries succeed
	)
	r := b.startWith(t, func(s *Service) {
		s.exported = func(org string, _ int) error {
			if org != "o1" {
				return nil
			}
			mu.Lock()
			defer mu.Unlock()
			select {
			case <-failing:
				return nil
			default:
				failures++
				return errors.New("the store went away")
			}
		}
	})
	now := time.Now().UTC()
	b.receive(t, "o1", "p1", events.Guardian, "g1", now, guardianPayload("o1", "p1", "t1", now, true, 80, 10, 2))
	o2 := rpc.StatsQuery{Tenant: rpc.Tenant{OrganizationID: "o2", ProjectID: "q1"}}
	eventually(t, "o1's upload counted", func() bool { return summaryOf(t, b.nats.Conn, p1Query()).Guardian.Total == 1 })
	_, err := rpc.Call[rpc.StatsRebuildResponse](context.Background(), b.nats.Conn, rpc.StatsRebuild,
		rpc.StatsRebuildRequest{Scope: rpc.ScopeOrganization, OrganizationID: "o1"})
	if err == nil {
		t.Fatal("the failing rebuild of o1 succeeded")
	}
	if !r.svc.store.Held("o1") || r.svc.store.Held("o2") {
		t.Fatalf("after a rebuild of o1 failed past the ledger: o1 held %v, o2 held %v; want only o1", r.svc.store.Held("o1"), r.svc.store.Held("o2"))
	}
	b.receive(t, "o1", "p1", events.Guardian, "g2", now, guardianPayload("o1", "p1", "t2", now, false, 60, 10, 1))
	b.receive(t, "o2", "q1", events.Guardian, "h1", now, guardianPayload("o2", "q1", "u1", now, true, 90, 10, 0))
	eventually(t, "o2's upload counted while o1 is held", func() bool { return summaryOf(t, b.nats.Conn, o2).Guardian.Total == 1 })
	eventually(t, "o1's upload set aside", func() bool {
		n, err := b.db.Collection(statsdb.DeferredCollection).CountDocuments(context.Background(), bson.D{{Key: "_id", Value: "processed-g2"}})
		return err == nil && n == 1
	})
	eventually(t, "the rebuild of o1 retried", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return failures >= 3
	})
	if g := summaryOf(t, b.nats.Conn, p1Query()).Guardian; g.Total != 1 {
		t.Errorf("o1's figures while it is held: %+v", g)
	}
	mu.Lock()
	close(failing)
	mu.Unlock()
	eventually(t, "the retried rebuild of o1 finished and o1's upload counted", func() bool {
		return !r.svc.store.Held("o1") && summaryOf(t, b.nats.Conn, p1Query()).Guardian.Total == 2
	})
	g := summaryOf(t, b.nats.Conn, p1Query()).Guardian
	if g.Passed != 1 || g.Failed != 1 || g.TotalVulnerabilities != 3 || *g.AverageAccessibilityScore != 70 || r.svc.store.GenerationOf("o1") < 2 {
		t.Errorf("o1 after its retried rebuild: %+v in generation %d", g, r.svc.store.GenerationOf("o1"))
	}
}
