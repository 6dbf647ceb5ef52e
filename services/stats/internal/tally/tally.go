// Package tally turns what the stats service counts — processed uploads, job
// lifecycle events, file events, and the stored result documents a rebuild
// reads — into changes: the counter increments of one tenant's UTC day. The
// incremental path and the rebuild go through the same functions, so they
// cannot disagree. Scores and durations are counted in thousandths, as
// integers, so sums are exact in any order.
package tally

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/jobs"
)

// Counter names. Job counters are JobPrefix+status+"_"+TYPE; file counters
// FilePrefix+kind (and +BytesSuffix).
const (
	InsightAnalyses     = "insight_analyses"
	InsightTotalIssues  = "insight_totalIssues"
	InsightCritical     = "insight_critical"
	InsightHigh         = "insight_high"
	InsightMedium       = "insight_medium"
	InsightLow          = "insight_low"
	InsightWithCritical = "insight_withCritical"

	AutopilotRuns       = "autopilot_runs"
	AutopilotSuccessful = "autopilot_successful"
	AutopilotFailed     = "autopilot_failed"
	AutopilotTrustMilli = "autopilot_trustScoreMilli"

	GuardianRuns               = "guardian_runs"
	GuardianPassed             = "guardian_passed"
	GuardianFailed             = "guardian_failed"
	GuardianAccessibilityMilli = "guardian_accessibilityMilli"
	GuardianLoadTimeMilli      = "guardian_loadTimeMilli"
	GuardianVulnerabilities    = "guardian_vulnerabilities"
	// GuardianLCPRuns counts the runs whose LCP is known (every run counted
	// from its result; a processed event older than the figure carries none),
	// GuardianLCPMilli sums their LCP.
	GuardianLCPRuns  = "guardian_lcpRuns"
	GuardianLCPMilli = "guardian_lcpMilli"

	JobPrefix   = "job_"
	FilePrefix  = "file_"
	BytesSuffix = "_bytes"
)

// File kinds.
var FileKinds = []string{"uploaded", "deleted", "expired"}

// DayFormat is the layout of a UTC day.
const DayFormat = "2006-01-02"

// Day is the UTC day of t.
func Day(t time.Time) string { return t.UTC().Format(DayFormat) }

// Change is one counted change: increments of one project's day, identified
// by a natural id (the event id) so it is counted once.
type Change struct {
	ID             string
	OrganizationID string
	ProjectID      string
	Day            string
	Inc            map[string]int64
}

// Milli is x in thousandths, rounded.
func Milli(x float64) int64 { return int64(math.Round(x * 1000)) }

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// ProcessedID is the change id of a processed upload: its processed event's
// id in the first generation; a manual retry's event (-g<n>) counts under
// it too, so an upload counts once.
func ProcessedID(uploadID string) string { return "processed-" + uploadID }

// FromProcessed is the change of a processed upload.
func FromProcessed(id string, p events.Processed) (Change, error) {
	c := Change{ID: id, OrganizationID: p.OrganizationID, ProjectID: p.ProjectID, Day: Day(p.ReceivedAt)}
	f := p.Figures
	switch p.Product {
	case events.Insight:
		var sev events.IssuesBySeverity
		if f.IssuesBySeverity != nil {
			sev = *f.IssuesBySeverity
		}
		c.Inc = insight(f.TotalIssues, sev)
	case events.Autopilot:
		c.Inc = autopilot(f.Success != nil && *f.Success, f.TrustScore)
	case events.Guardian:
		c.Inc = guardian(f.Passed != nil && *f.Passed, f.AccessibilityScore, f.LoadTime, f.LCP, f.Vulnerabilities)
	default:
		return Change{}, fmt.Errorf("unknown product %q", p.Product)
	}
	return c, c.check()
}

// FromResult is the change a stored result document stands for; it equals
// FromProcessed of the result's processed event.
func FromResult(id, org, project string, product events.Product, receivedAt time.Time, data json.RawMessage) (Change, error) {
	c := Change{ID: id, OrganizationID: org, ProjectID: project, Day: Day(receivedAt)}
	switch product {
	case events.Insight:
		var in events.InsightResult
		if err := json.Unmarshal(data, &in); err != nil {
			return Change{}, fmt.Errorf("decoding insight result %s: %w", id, err)
		}
		c.Inc = insight(in.TotalIssues, in.IssuesBySeverity)
	case events.Autopilot:
		var in events.AutopilotLedger
		if err := json.Unmarshal(data, &in); err != nil {
			return Change{}, fmt.Errorf("decoding autopilot result %s: %w", id, err)
		}
		c.Inc = autopilot(in.Success, in.TrustScore)
	case events.Guardian:
		var in events.GuardianRun
		if err := json.Unmarshal(data, &in); err != nil {
			return Change{}, fmt.Errorf("decoding guardian result %s: %w", id, err)
		}
		c.Inc = guardian(in.Passed, in.Tests.Accessibility.Score, in.Tests.Performance.LoadTime, &in.Tests.Performance.LCP, in.Tests.Security.Vulnerabilities)
	default:
		return Change{}, fmt.Errorf("result %s: unknown product %q", id, product)
	}
	return c, c.check()
}

func insight(total int64, sev events.IssuesBySeverity) map[string]int64 {
	return map[string]int64{
		InsightAnalyses: 1, InsightTotalIssues: total,
		InsightCritical: sev.Critical, InsightHigh: sev.High, InsightMedium: sev.Medium, InsightLow: sev.Low,
		InsightWithCritical: b2i(sev.Critical > 0),
	}
}

func autopilot(success bool, trust float64) map[string]int64 {
	return map[string]int64{
		AutopilotRuns: 1, AutopilotSuccessful: b2i(success), AutopilotFailed: b2i(!success), AutopilotTrustMilli: Milli(trust),
	}
}

func guardian(passed bool, accessibility, loadTime float64, lcp *float64, vulns int64) map[string]int64 {
	inc := map[string]int64{
		GuardianRuns: 1, GuardianPassed: b2i(passed), GuardianFailed: b2i(!passed),
		GuardianAccessibilityMilli: Milli(accessibility), GuardianLoadTimeMilli: Milli(loadTime), GuardianVulnerabilities: vulns,
	}
	if lcp != nil {
		inc[GuardianLCPRuns], inc[GuardianLCPMilli] = 1, Milli(*lcp)
	}
	return inc
}

// FromJob is the change of a job lifecycle event: the job entered a status.
// A job finishes (COMPLETED, FAILED, CANCELLED) once per generation: that
// change is named by the job and generation, not by the event, so a run
// repeated after a crash (a later attempt, another event) counts once.
func FromJob(id string, j events.JobStatusChanged) (Change, error) {
	status, typ := strings.ToLower(j.Status), strings.ToUpper(j.Type)
	if !token(status) || !token(strings.ToLower(typ)) {
		return Change{}, fmt.Errorf("job event %s: bad status %q or type %q", id, j.Status, j.Type)
	}
	switch j.Status {
	case jobs.Completed, jobs.Failed, jobs.Cancelled:
		if j.JobID == "" {
			return Change{}, fmt.Errorf("job event %s without job id", id)
		}
		id = fmt.Sprintf("job-%s-%s-g%d", j.JobID, status, j.Generation)
	}
	c := Change{ID: id, OrganizationID: j.OrganizationID, ProjectID: j.ProjectID, Day: Day(j.At),
		Inc: map[string]int64{JobPrefix + status + "_" + typ: 1}}
	return c, c.check()
}

// FromFile is the change of a file event.
func FromFile(id string, f events.FileChanged) (Change, error) {
	ok := false
	for _, k := range FileKinds {
		ok = ok || k == f.Kind
	}
	if !ok {
		return Change{}, fmt.Errorf("file event %s: unknown kind %q", id, f.Kind)
	}
	c := Change{ID: id, OrganizationID: f.OrganizationID, ProjectID: f.ProjectID, Day: Day(f.At),
		Inc: map[string]int64{FilePrefix + f.Kind: 1, FilePrefix + f.Kind + BytesSuffix: f.Size}}
	return c, c.check()
}

// token: lower-case letters, digits and '_' only, so a counter name is a safe field name.
func token(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

func (c Change) check() error {
	if c.ID == "" {
		return fmt.Errorf("change without id")
	}
	if !events.ValidToken(c.OrganizationID) || !events.ValidToken(c.ProjectID) {
		return fmt.Errorf("change %s: bad organization %q or project %q", c.ID, c.OrganizationID, c.ProjectID)
	}
	return nil
}

// Counters are summed counters.
type Counters map[string]int64

// Add adds o to c.
func (c Counters) Add(o map[string]int64) {
	for k, v := range o {
		c[k] += v
	}
}
