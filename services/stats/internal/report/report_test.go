package report_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/odavl/sync/libs/rpc"
	"github.com/odavl/sync/services/stats/internal/report"
	"github.com/odavl/sync/services/stats/internal/tally"
)

func TestParseRange(t *testing.T) {
	t.Parallel()
	today := time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)
	cases := []struct {
		name, from, to string
		def            int
		wantFrom       string
		wantTo         string
		wantDays       int
		bounded        bool
		badField       string
	}{
		{name: "none", bounded: false},
		{name: "default 30 days", def: 30, wantFrom: "2026-11-02", wantTo: "2026-12-01", wantDays: 30, bounded: true},
		{name: "one day", from: "2026-11-20", to: "2026-11-20", wantFrom: "2026-11-20", wantTo: "2026-11-20", wantDays: 1, bounded: true},
		{name: "to defaults to today", from: "2026-11-30", wantFrom: "2026-11-30", wantTo: "2026-12-01", wantDays: 2, bounded: true},
		{name: "bad from", from: "30/11/2026", badField: "from"},
		{name: "bad to", from: "2026-11-01", to: "tomorrow", badField: "to"},
		{name: "to without from", to: "2026-11-01", badField: "from"},
		{name: "reversed", from: "2026-11-02", to: "2026-11-01", badField: "from"},
		{name: "too long", from: "2024-01-01", to: "2026-01-01", badField: "from"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r, ok, fields := report.ParseRange(c.from, c.to, today, c.def)
			if c.badField != "" {
				if ok || len(fields) == 0 || fields[0].Field != c.badField {
					t.Fatalf("fields = %+v, want one naming %s", fields, c.badField)
				}
				return
			}
			if len(fields) > 0 || ok != c.bounded {
				t.Fatalf("ok %v fields %+v", ok, fields)
			}
			if !ok {
				return
			}
			from, to := r.Format()
			if from != c.wantFrom || to != c.wantTo || r.Days() != c.wantDays || len(r.Each()) != c.wantDays {
				t.Errorf("range %s..%s (%d days)", from, to, r.Days())
			}
			pf, pt := r.Previous().Format()
			if r.Previous().Days() != c.wantDays || pt != tally.Day(r.From.AddDate(0, 0, -1)) {
				t.Errorf("previous %s..%s", pf, pt)
			}
		})
	}
}

func f(v float64) *float64 { return &v }

func TestSignals(t *testing.T) {
	t.Parallel()
	cur := tally.Counters{tally.InsightAnalyses: 2, tally.InsightCritical: 1, tally.GuardianRuns: 4, tally.GuardianPassed: 3, tally.GuardianAccessibilityMilli: 360000}
	prev := tally.Counters{tally.InsightAnalyses: 1, tally.InsightCritical: 3, tally.GuardianRuns: 2, tally.GuardianPassed: 2, tally.GuardianAccessibilityMilli: 180000}
	got := report.Signals("web", cur, prev)
	want := rpc.ProjectSignals{
		ProjectID:      "web",
		CriticalIssues: rpc.Signal{Current: f(1), Previous: f(3), Direction: rpc.TrendBetter},
		PassRate:       rpc.Signal{Current: f(75), Previous: f(100), Direction: rpc.TrendWorse},
		Accessibility:  rpc.Signal{Current: f(90), Previous: f(90), Direction: rpc.TrendSame},
	}
	if !cmp.Equal(got, want) {
		t.Errorf("(-want +got):\n%s", cmp.Diff(want, got))
	}
	if s := report.Signals("web", cur, tally.Counters{}); s.PassRate.Direction != rpc.TrendUnknown || s.CriticalIssues.Direction != rpc.TrendUnknown {
		t.Errorf("without a previous period: %+v", s)
	}
}

func TestFiguresOfJobs(t *testing.T) {
	t.Parallel()
	got := report.FiguresOf(tally.Counters{"job_completed_INSIGHT_ANALYSIS": 2, "job_failed_INSIGHT_ANALYSIS": 1, "job_completed_EMAIL_SEND": 1}).Jobs
	want := rpc.JobFigures{ByStatus: map[string]int64{"COMPLETED": 3, "FAILED": 1},
		ByType: map[string]map[string]int64{"INSIGHT_ANALYSIS": {"COMPLETED": 2, "FAILED": 1}, "EMAIL_SEND": {"COMPLETED": 1}}}
	if !cmp.Equal(got, want) {
		t.Errorf("(-want +got):\n%s", cmp.Diff(want, got))
	}
}
