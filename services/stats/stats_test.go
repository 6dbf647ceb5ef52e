package stats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/mongotest"
	"github.com/odavl/sync/libs/natstest"
	"github.com/odavl/sync/libs/rpc"
	"github.com/odavl/sync/services/stats/internal/report"
	"github.com/odavl/sync/services/stats/internal/statsdb"
	"github.com/odavl/sync/services/stats/internal/tally"
)

type testBundle struct {
	nats *natstest.Bundle
	db   *mongo.Database
	log  *slog.Logger
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newBundle(t testing.TB) *testBundle {
	t.Helper()
	return &testBundle{nats: natstest.Start(t), db: mongotest.Start(t).DB, log: quiet()}
}

type running struct {
	svc    *Service
	cancel context.CancelFunc
	done   chan error
}

// start runs a stats service on the bundle; its own connection, so a test can
// start a second one after killing the first.
func (b *testBundle) start(t testing.TB, crash statsdb.CrashHook) *running {
	t.Helper()
	return b.startWith(t, func(s *Service) { s.crash = crash })
}

// startWith is start with the test hooks set by set before the service runs.
func (b *testBundle) startWith(t testing.TB, set func(*Service)) *running {
	t.Helper()
	cfg := DefaultConfig()
	cfg.AckWait = 2 * time.Second
	// A killed instance's lease lapses after a second.
	cfg.LeaseTTL = time.Second
	nc := natstest.Connect(t, b.nats.URL)
	svc, err := New(b.log, nc, b.db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	set(svc)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{svc: svc, cancel: cancel, done: make(chan error, 1)}
	go func() {
		// Restarted while a killed instance's lease lives, as its pod would be.
		for {
			err := svc.Run(ctx)
			if !errors.Is(err, ErrAnotherInstance) || ctx.Err() != nil {
				r.done <- err
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(r.stop)
	eventually(t, "stats service ready", func() bool { return svc.Ready() })
	return r
}

func (r *running) stop() {
	r.cancel()
	<-r.done
	r.done <- nil // for a second stop
}

func eventually(t testing.TB, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ptr[T any](v T) *T { return &v }

var day1 = time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)

// processed builds a processed event as the jobs service publishes it.
func processed(org, project string, p events.Product, upload string, at time.Time, f events.Figures) (string, events.Event) {
	ev, err := events.New("processed-"+upload, "/odavl-sync/jobs", events.ProcessedType(p), at, org, project, events.Processed{
		UploadID: upload, ResultID: upload, JobID: upload, OrganizationID: org, ProjectID: project, Product: p,
		Timestamp: at, ReceivedAt: at, ProcessedAt: at, Figures: f,
	})
	if err != nil {
		panic(err)
	}
	return events.ProcessedSubject(org, project, p), ev
}

func jobEvent(org, project, id, typ, status string, attempt int, at time.Time) (string, events.Event) {
	ev, err := events.New(fmt.Sprintf("job-%s-%s-%d", id, status, attempt), "/odavl-sync/jobs", events.TypeJobStatus, at, org, project,
		events.JobStatusChanged{JobID: id, Type: typ, OrganizationID: org, ProjectID: project, Status: status, Attempt: attempt, At: at})
	if err != nil {
		panic(err)
	}
	return events.JobEventSubject(org, project, status), ev
}

func fileEvent(org, project, id, kind string, size int64, at time.Time) (string, events.Event) {
	ev, err := events.New("file-"+id+"-"+kind, "/odavl-sync/storage", events.TypeFileEvent, at, org, project,
		events.FileChanged{FileID: id, OrganizationID: org, ProjectID: project, Kind: kind, Size: size, At: at})
	if err != nil {
		panic(err)
	}
	return events.FileEventSubject(org, project, kind), ev
}

// publishRaw publishes without a Nats-Msg-Id, so the stream keeps every copy
// and the consumer really receives the same event twice.
func publishRaw(t *testing.T, nc *nats.Conn, subject string, ev events.Event) {
	t.Helper()
	ev.Subject = subject
	b, _ := json.Marshal(ev)
	if _, err := natsJS(t, nc).Publish(context.Background(), subject, b); err != nil {
		t.Fatal(err)
	}
}

type pubEvent struct {
	subject string
	ev      events.Event
}

// fixture is a known set of events and the figures computed by hand.
func fixture() []pubEvent {
	var out []pubEvent
	add := func(s string, e events.Event) { out = append(out, pubEvent{s, e}) }
	// Insight, project p1: 3 analyses (2 on day1, 1 the next day).
	add(processed("o1", "p1", events.Insight, "i1", day1, events.Figures{TotalIssues: 10, IssuesBySeverity: &events.IssuesBySeverity{Critical: 2, High: 3, Medium: 4, Low: 1}}))
	add(processed("o1", "p1", events.Insight, "i2", day1.Add(time.Hour), events.Figures{TotalIssues: 5, IssuesBySeverity: &events.IssuesBySeverity{Critical: 0, High: 1, Medium: 1, Low: 3}}))
	add(processed("o1", "p1", events.Insight, "i3", day1.AddDate(0, 0, 1), events.Figures{TotalIssues: 1, IssuesBySeverity: &events.IssuesBySeverity{Critical: 1}}))
	// Autopilot, p1: 3 runs, 2 successful; trust 0.9, 0.75, 0.333.
	add(processed("o1", "p1", events.Autopilot, "a1", day1, events.Figures{Success: ptr(true), TrustScore: 0.9}))
	add(processed("o1", "p1", events.Autopilot, "a2", day1, events.Figures{Success: ptr(false), TrustScore: 0.75}))
	add(processed("o1", "p1", events.Autopilot, "a3", day1.AddDate(0, 0, 1), events.Figures{Success: ptr(true), TrustScore: 0.333}))
	// Guardian, p1: 2 runs, 1 passed; accessibility 95.5 and 80; vulns 0 and 3; load 1200.5 and 800;
	// LCP 1500.5 and unknown (an event published before figures carried it).
	add(processed("o1", "p1", events.Guardian, "g1", day1, events.Figures{Passed: ptr(true), AccessibilityScore: 95.5, LoadTime: 1200.5, LCP: ptr(1500.5), Environment: "production"}))
	add(processed("o1", "p1", events.Guardian, "g2", day1.AddDate(0, 0, 1), events.Figures{Passed: ptr(false), AccessibilityScore: 80, Vulnerabilities: 3, LoadTime: 800, Environment: "staging"}))
	// Another project of the organization: one Insight analysis, one Guardian run.
	add(processed("o1", "p2", events.Insight, "i4", day1, events.Figures{TotalIssues: 7, IssuesBySeverity: &events.IssuesBySeverity{Critical: 4, Low: 3}}))
	add(processed("o1", "p2", events.Guardian, "g3", day1, events.Figures{Passed: ptr(true), AccessibilityScore: 70, Vulnerabilities: 1, LoadTime: 500, LCP: ptr(0.0)}))
	// Jobs, p1: i1's job went WAITING → ACTIVE → FAILED → ACTIVE → COMPLETED.
	add(jobEvent("o1", "p1", "j1", "INSIGHT_ANALYSIS", "WAITING", 0, day1))
	add(jobEvent("o1", "p1", "j1", "INSIGHT_ANALYSIS", "ACTIVE", 1, day1))
	add(jobEvent("o1", "p1", "j1", "INSIGHT_ANALYSIS", "FAILED", 1, day1))
	add(jobEvent("o1", "p1", "j1", "INSIGHT_ANALYSIS", "ACTIVE", 2, day1))
	add(jobEvent("o1", "p1", "j1", "INSIGHT_ANALYSIS", "COMPLETED", 2, day1))
	add(jobEvent("o1", "p1", "j2", "EMAIL_SEND", "COMPLETED", 1, day1))
	// j2's run repeated after a crash (the record was not written in time):
	// another event, the same finish, counted once.
	add(jobEvent("o1", "p1", "j2", "EMAIL_SEND", "COMPLETED", 2, day1))
	// j3 failed, was retried by hand (generation 1) and failed again: twice.
	j3 := func(gen, attempt int) (string, events.Event) {
		subject, ev := jobEvent("o1", "p1", "j3", "REPORT_GENERATION", "FAILED", attempt, day1)
		var j events.JobStatusChanged
		_ = ev.DataAs(&j)
		j.Generation = gen
		ev, _ = events.New(ev.ID, ev.Source, ev.Type, day1, "o1", "p1", j)
		return subject, ev
	}
	add(j3(0, 1))
	add(j3(1, 2))
	// Files, p1: two uploaded, one deleted.
	add(fileEvent("o1", "p1", "f1", "uploaded", 1000, day1))
	add(fileEvent("o1", "p1", "f2", "uploaded", 24, day1))
	add(fileEvent("o1", "p1", "f1", "deleted", 1000, day1))
	// A progress report of j1 (ACTIVE → ACTIVE) is no status change: not counted.
	progress, _ := events.New("j1-progress-2-50", "/odavl-sync/jobs", events.TypeJobStatus, day1, "o1", "p1",
		events.JobStatusChanged{JobID: "j1", Type: "INSIGHT_ANALYSIS", OrganizationID: "o1", ProjectID: "p1", Status: "ACTIVE", Previous: "ACTIVE", Progress: 50, Attempt: 2, At: day1})
	add(events.JobEventSubject("o1", "p1", "progress"), progress)
	return out
}

// p1Figures are p1's all-time figures, by hand.
func p1Figures() rpc.Figures {
	return rpc.Figures{
		Insight:   rpc.InsightFigures{Analyses: 3, TotalIssues: 16, IssuesBySeverity: rpc.SeverityTotals{Critical: 3, High: 4, Medium: 5, Low: 4}, WithCritical: 2},
		Autopilot: rpc.AutopilotFigures{Total: 3, Successful: 2, Failed: 1, SuccessRate: ptr(66.67), AverageTrustScore: ptr(0.66)}, // (0.9+0.75+0.333)/3 = 0.661
		Guardian: rpc.GuardianFigures{Total: 2, Passed: 1, Failed: 1, PassRate: ptr(50.0), AverageAccessibilityScore: ptr(87.75),
			AverageLoadTime: ptr(1000.25), AverageLCP: ptr(1500.5), TotalVulnerabilities: 3},
		Jobs: rpc.JobFigures{
			ByStatus: map[string]int64{"WAITING": 1, "ACTIVE": 2, "FAILED": 3, "COMPLETED": 2},
			ByType: map[string]map[string]int64{
				"INSIGHT_ANALYSIS":  {"WAITING": 1, "ACTIVE": 2, "FAILED": 1, "COMPLETED": 1},
				"EMAIL_SEND":        {"COMPLETED": 1},
				"REPORT_GENERATION": {"FAILED": 2},
			},
		},
		Files: rpc.FileFigures{Uploaded: 2, UploadedBytes: 1024, Deleted: 1, DeletedBytes: 1000},
	}
}

func summaryOf(t *testing.T, nc *nats.Conn, q rpc.StatsQuery) rpc.StatsSummaryResponse {
	t.Helper()
	s, err := rpc.Call[rpc.StatsSummaryResponse](context.Background(), nc, rpc.StatsSummary, q)
	if err != nil {
		t.Fatalf("summary %+v: %v", q, err)
	}
	return s
}

func p1Query() rpc.StatsQuery {
	return rpc.StatsQuery{Tenant: rpc.Tenant{OrganizationID: "o1", ProjectID: "p1"}}
}

func waitForFigures(t *testing.T, nc *nats.Conn, q rpc.StatsQuery, want rpc.Figures) {
	t.Helper()
	var last rpc.Figures
	deadline := time.Now().Add(90 * time.Second)
	for {
		last = summaryOf(t, nc, q).Figures
		if cmp.Equal(last, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("figures of %+v never matched (-want +got):\n%s", q, cmp.Diff(want, last))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestFiguresExactWithDuplicatesAndRetries publishes every event twice (two
// stream messages, so two deliveries) and fails the first attempt of some
// changes at each step: every figure still equals the hand-computed one.
func TestFiguresExactWithDuplicatesAndRetries(t *testing.T) {
	b := newBundle(t)
	// Each failing change fails once, each at another step.
	steps := []string{"inflight", "aggregate0", "aggregate1", "registry", "ledger", "done"}
	hooks := map[string]string{}
	for i, id := range []string{"processed-i1", "processed-a2", "processed-g2", "job-j1-ACTIVE-2", "file-f1-deleted", "processed-g3"} {
		hooks[id] = steps[i]
	}
	var calls sync.Map
	r := b.start(t, func(id, step string) error {
		if hooks[id] == step {
			if _, loaded := calls.LoadOrStore(id, true); !loaded {
				return fmt.Errorf("injected failure of %s at %s", id, step)
			}
		}
		return nil
	})
	for _, pe := range fixture() {
		publishRaw(t, b.nats.Conn, pe.subject, pe.ev)
		publishRaw(t, b.nats.Conn, pe.subject, pe.ev)
	}
	waitForFigures(t, b.nats.Conn, p1Query(), p1Figures())
	// The organization adds p2: 4 analyses, 23 issues (7 critical); 3 Guardian runs, 2 passed.
	orgQuery := rpc.StatsQuery{Tenant: rpc.Tenant{OrganizationID: "o1"}, Scope: rpc.ScopeOrganization}
	eventually(t, "p2's changes counted and every failure injected", func() bool {
		for id := range hooks {
			if _, ok := calls.Load(id); !ok {
				return false
			}
		}
		return summaryOf(t, b.nats.Conn, orgQuery).Guardian.Total == 3
	})
	org := summaryOf(t, b.nats.Conn, orgQuery)
	if org.Insight.Analyses != 4 || org.Insight.TotalIssues != 23 || org.Insight.IssuesBySeverity.Critical != 7 {
		t.Errorf("organization insight = %+v", org.Insight)
	}
	if org.Guardian.Total != 3 || org.Guardian.Passed != 2 || *org.Guardian.PassRate != 66.67 || *org.Guardian.AverageAccessibilityScore != 81.83 || org.Guardian.TotalVulnerabilities != 4 ||
		org.Guardian.AverageLCP == nil || *org.Guardian.AverageLCP != 750.25 { // LCP of g1 and g3; g2's is unknown
		t.Errorf("organization guardian = %+v", org.Guardian)
	}
	// Day 1 alone, for p1: i1, i2; a1, a2; g1.
	d := summaryOf(t, b.nats.Conn, rpc.StatsQuery{Tenant: p1Query().Tenant, From: "2026-11-20", To: "2026-11-20"})
	if d.Insight.Analyses != 2 || d.Insight.TotalIssues != 15 || d.Autopilot.Total != 2 || *d.Autopilot.SuccessRate != 50 || d.Guardian.Total != 1 {
		t.Errorf("day 1 of p1 = %+v", d.Figures)
	}
	// The change that failed at its last step is finished by its redelivery.
	eventually(t, "no change left unfinished", func() bool { return r.svc.store.Pending() == 0 })
	waitForFigures(t, b.nats.Conn, p1Query(), p1Figures())
}

func natsJS(t *testing.T, nc *nats.Conn) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func reportFigures(c tally.Counters) rpc.Figures { return report.FiguresOf(c) }
