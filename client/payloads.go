package client

import "time"

// InsightResult is an upload of the Insight CLI: one static-analysis run.
type InsightResult struct {
	ProjectID        string           `json:"projectId"`
	OrganizationID   string           `json:"organizationId"`
	Timestamp        time.Time        `json:"timestamp"`
	Detectors        []string         `json:"detectors"`
	TotalIssues      int64            `json:"totalIssues"`
	IssuesBySeverity IssuesBySeverity `json:"issuesBySeverity"`
	Issues           []InsightIssue   `json:"issues"`
	Metrics          *InsightMetrics  `json:"metrics,omitempty"`
}

// IssuesBySeverity counts issues per severity.
type IssuesBySeverity struct {
	Critical int64 `json:"critical"`
	High     int64 `json:"high"`
	Medium   int64 `json:"medium"`
	Low      int64 `json:"low"`
}

// InsightIssue is one finding of a detector.
type InsightIssue struct {
	Detector string `json:"detector"`
	Severity string `json:"severity"` // critical, high, medium, low
	Message  string `json:"message"`
	File     string `json:"file"`
	Line     int64  `json:"line"`
	Column   int64  `json:"column"`
}

// InsightMetrics describes the analysis run.
type InsightMetrics struct {
	FilesAnalyzed int64   `json:"filesAnalyzed"`
	Duration      float64 `json:"duration"` // milliseconds
	CodeLines     int64   `json:"codeLines"`
}

// AutopilotLedger is an upload of the Autopilot CLI: the ledger of one
// Observe-Decide-Act-Verify-Learn cycle.
type AutopilotLedger struct {
	RunID           string            `json:"runId"`
	ProjectID       string            `json:"projectId"`
	OrganizationID  string            `json:"organizationId"`
	Timestamp       time.Time         `json:"timestamp"`
	Phases          AutopilotPhaseSet `json:"phases"`
	SelectedRecipe  string            `json:"selectedRecipe,omitempty"`
	FilesModified   []string          `json:"filesModified"`
	TrustScore      float64           `json:"trustScore"` // 0-1
	QualityImproved bool              `json:"qualityImproved"`
	Success         bool              `json:"success"`
	TotalDuration   float64           `json:"totalDuration,omitempty"`
}

// AutopilotPhaseSet holds the five phases of a cycle.
type AutopilotPhaseSet struct {
	Observe AutopilotPhase `json:"observe"`
	Decide  AutopilotPhase `json:"decide"`
	Act     AutopilotPhase `json:"act"`
	Verify  AutopilotPhase `json:"verify"`
	Learn   AutopilotPhase `json:"learn"`
}

// AutopilotPhase is one phase of a cycle.
type AutopilotPhase struct {
	Status   string             `json:"status"` // completed, failed, skipped
	Duration float64            `json:"duration"`
	Metrics  map[string]float64 `json:"metrics,omitempty"`
}

// GuardianRun is an upload of the Guardian CLI: one web test run.
type GuardianRun struct {
	TestRunID      string        `json:"testRunId"`
	ProjectID      string        `json:"projectId"`
	OrganizationID string        `json:"organizationId"`
	Timestamp      time.Time     `json:"timestamp"`
	URL            string        `json:"url"`
	Environment    string        `json:"environment"` // development, staging, production
	Tests          GuardianTests `json:"tests"`
	Screenshots    []string      `json:"screenshots,omitempty"`
	Passed         bool          `json:"passed"`
}

// GuardianTests holds the three test families of a run.
type GuardianTests struct {
	Accessibility GuardianAccessibility `json:"accessibility"`
	Performance   GuardianPerformance   `json:"performance"`
	Security      GuardianSecurity      `json:"security"`
}

// GuardianAccessibility is the accessibility audit of a run.
type GuardianAccessibility struct {
	Score      float64 `json:"score"`
	Violations int64   `json:"violations"`
	Passes     int64   `json:"passes"`
}

// GuardianPerformance holds the page timings of a run, in milliseconds.
type GuardianPerformance struct {
	LoadTime float64 `json:"loadTime"`
	TTFB     float64 `json:"ttfb"`
	FCP      float64 `json:"fcp"`
	LCP      float64 `json:"lcp"`
}

// GuardianSecurity is the security scan of a run.
type GuardianSecurity struct {
	Vulnerabilities int64 `json:"vulnerabilities"`
	Warnings        int64 `json:"warnings"`
}
