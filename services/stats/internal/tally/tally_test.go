package tally_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/services/stats/internal/tally"
)

func ptr[T any](v T) *T { return &v }

// A stored result and its processed event give the same change, so the
// rebuild and the incremental path agree.
func TestResultAndProcessedAgree(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 30, 23, 59, 59, 0, time.FixedZone("x", -3600)) // 2026-12-01 UTC
	cases := []struct {
		name    string
		product events.Product
		payload any
		figures events.Figures
		want    map[string]int64
	}{
		{"insight", events.Insight,
			events.InsightResult{TotalIssues: 6, IssuesBySeverity: events.IssuesBySeverity{Critical: 1, High: 2, Medium: 3}},
			events.Figures{TotalIssues: 6, IssuesBySeverity: &events.IssuesBySeverity{Critical: 1, High: 2, Medium: 3}},
			map[string]int64{tally.InsightAnalyses: 1, tally.InsightTotalIssues: 6, tally.InsightCritical: 1, tally.InsightHigh: 2, tally.InsightMedium: 3, tally.InsightLow: 0, tally.InsightWithCritical: 1}},
		{"autopilot", events.Autopilot,
			events.AutopilotLedger{Success: false, TrustScore: 0.1235},
			events.Figures{Success: ptr(false), TrustScore: 0.1235},
			map[string]int64{tally.AutopilotRuns: 1, tally.AutopilotSuccessful: 0, tally.AutopilotFailed: 1, tally.AutopilotTrustMilli: 124}},
		{"guardian", events.Guardian,
			events.GuardianRun{Passed: true, Tests: events.GuardianTests{Accessibility: events.GuardianAccessibility{Score: 99.9999},
				Performance: events.GuardianPerformance{LoadTime: 1234.5678, LCP: 987.6543}, Security: events.GuardianSecurity{Vulnerabilities: 4}}},
			events.Figures{Passed: ptr(true), AccessibilityScore: 99.9999, LoadTime: 1234.5678, LCP: ptr(987.6543), Vulnerabilities: 4},
			map[string]int64{tally.GuardianRuns: 1, tally.GuardianPassed: 1, tally.GuardianFailed: 0, tally.GuardianAccessibilityMilli: 100000,
				tally.GuardianLoadTimeMilli: 1234568, tally.GuardianLCPRuns: 1, tally.GuardianLCPMilli: 987654, tally.GuardianVulnerabilities: 4}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			data, _ := json.Marshal(c.payload)
			fromResult, err := tally.FromResult("processed-u1", "o", "p", c.product, at, data)
			if err != nil {
				t.Fatal(err)
			}
			fromEvent, err := tally.FromProcessed("processed-u1", events.Processed{UploadID: "u1", OrganizationID: "o", ProjectID: "p",
				Product: c.product, ReceivedAt: at, Figures: c.figures})
			if err != nil {
				t.Fatal(err)
			}
			if !cmp.Equal(fromResult, fromEvent) {
				t.Errorf("result and event differ (-result +event):\n%s", cmp.Diff(fromResult, fromEvent))
			}
			if fromResult.Day != "2026-12-01" || !cmp.Equal(fromResult.Inc, c.want) {
				t.Errorf("change = %+v, want day 2026-12-01 and %v", fromResult, c.want)
			}
		})
	}
}

func TestBadEventsAreRefused(t *testing.T) {
	t.Parallel()
	if _, err := tally.FromProcessed("x", events.Processed{OrganizationID: "o", ProjectID: "p", Product: "other"}); err == nil {
		t.Error("an unknown product was counted")
	}
	if _, err := tally.FromProcessed("x", events.Processed{OrganizationID: "o.x", ProjectID: "p", Product: events.Insight}); err == nil {
		t.Error("an organization id that is no subject token was counted")
	}
	if _, err := tally.FromJob("x", events.JobStatusChanged{OrganizationID: "o", ProjectID: "p", Status: "DONE.X", Type: "T"}); err == nil {
		t.Error("a status that is no field name was counted")
	}
	if _, err := tally.FromFile("x", events.FileChanged{OrganizationID: "o", ProjectID: "p", Kind: "renamed"}); err == nil {
		t.Error("an unknown file kind was counted")
	}
	c, err := tally.FromJob("e1", events.JobStatusChanged{JobID: "j1", OrganizationID: "o", ProjectID: "p", Status: "COMPLETED", Type: "email_send", At: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)})
	if err != nil || !cmp.Equal(c.Inc, map[string]int64{"job_completed_EMAIL_SEND": 1}) || c.Day != "2026-01-02" {
		t.Errorf("job change = %+v, %v", c, err)
	}
	if _, err := tally.FromJob("e2", events.JobStatusChanged{OrganizationID: "o", ProjectID: "p", Status: "FAILED", Type: "T"}); err == nil {
		t.Error("a finish without its job was counted")
	}
}
