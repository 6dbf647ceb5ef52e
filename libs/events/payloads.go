package events

import (
	"encoding/json"
	"time"
)

// Severity of an Insight issue.
const (
	SeverityCritical = "critical"
	SeverityHigh     = "high"
	SeverityMedium   = "medium"
	SeverityLow      = "low"
)

// Severities lists the Insight severities, most severe first.
var Severities = []string{SeverityCritical, SeverityHigh, SeverityMedium, SeverityLow}

// InsightResult is an upload of the Insight CLI: one static analysis.
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

// Sum is the total over every severity.
func (s IssuesBySeverity) Sum() int64 { return s.Critical + s.High + s.Medium + s.Low }

// InsightIssue is one finding of a detector.
type InsightIssue struct {
	Detector string `json:"detector"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
	File     string `json:"file"`
	Line     int64  `json:"line"`
	Column   int64  `json:"column"`
}

// InsightMetrics describes the analysis run.
type InsightMetrics struct {
	FilesAnalyzed int64   `json:"filesAnalyzed"`
	Duration      float64 `json:"duration"`
	CodeLines     int64   `json:"codeLines"`
}

// Autopilot phase names, in cycle order: Observe, Decide, Act, Verify, Learn.
var AutopilotPhases = []string{"observe", "decide", "act", "verify", "learn"}

// AutopilotLedger is an upload of the Autopilot CLI: the ledger of one O-D-A-V-L fix cycle.
type AutopilotLedger struct {
	RunID           string            `json:"runId"`
	ProjectID       string            `json:"projectId"`
	OrganizationID  string            `json:"organizationId"`
	Timestamp       time.Time         `json:"timestamp"`
	Phases          AutopilotPhaseSet `json:"phases"`
	SelectedRecipe  string            `json:"selectedRecipe,omitempty"`
	FilesModified   []string          `json:"filesModified"`
	TrustScore      float64           `json:"trustScore"`
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

// Each returns the phases in cycle order with their names.
func (s AutopilotPhaseSet) Each() []NamedPhase {
	return []NamedPhase{{"observe", s.Observe}, {"decide", s.Decide}, {"act", s.Act}, {"verify", s.Verify}, {"learn", s.Learn}}
}

// NamedPhase is a phase with its name.
type NamedPhase struct {
	Name  string
	Phase AutopilotPhase
}

// Autopilot phase statuses.
const (
	PhaseCompleted = "completed"
	PhaseFailed    = "failed"
	PhaseSkipped   = "skipped"
)

// AutopilotPhase is one phase of a cycle.
type AutopilotPhase struct {
	Status   string             `json:"status"`
	Duration float64            `json:"duration"`
	Metrics  map[string]float64 `json:"metrics,omitempty"`
}

// Guardian environments.
var GuardianEnvironments = []string{"development", "staging", "production"}

// GuardianRun is an upload of the Guardian CLI: one web test run.
type GuardianRun struct {
	TestRunID      string        `json:"testRunId"`
	ProjectID      string        `json:"projectId"`
	OrganizationID string        `json:"organizationId"`
	Timestamp      time.Time     `json:"timestamp"`
	URL            string        `json:"url"`
	Environment    string        `json:"environment"`
	Tests          GuardianTests `json:"tests"`
	Screenshots    []string      `json:"screenshots"`
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

// Received is the data of a received event: an accepted upload, as the
// gateway validated it, waiting to be processed.
type Received struct {
	UploadID       string          `json:"uploadId"`
	OrganizationID string          `json:"organizationId"`
	ProjectID      string          `json:"projectId"`
	Product        Product         `json:"product"`
	IdempotencyKey string          `json:"idempotencyKey"`
	PayloadHash    string          `json:"payloadHash"`
	KeyID          string          `json:"keyId"`
	ReceivedAt     time.Time       `json:"receivedAt"`
	Payload        json.RawMessage `json:"payload"`
	// Generation and BaseAttempt are set when a failed upload is retried by
	// hand: the retry's number (1, 2, …) and the attempts made before it.
	Generation  int `json:"generation,omitempty"`
	BaseAttempt int `json:"baseAttempt,omitempty"`
}

// Processed is the data of a processed event: an upload stored as a result
// document. It carries the figures the statistics are made of, so a
// subscriber needs no read of the result.
type Processed struct {
	UploadID       string    `json:"uploadId"`
	ResultID       string    `json:"resultId"`
	JobID          string    `json:"jobId"`
	OrganizationID string    `json:"organizationId"`
	ProjectID      string    `json:"projectId"`
	Product        Product   `json:"product"`
	Timestamp      time.Time `json:"timestamp"`
	ReceivedAt     time.Time `json:"receivedAt"`
	ProcessedAt    time.Time `json:"processedAt"`
	Figures        Figures   `json:"figures"`
}

// Figures are the numbers of one result that statistics count.
type Figures struct {
	// Insight
	TotalIssues      int64             `json:"totalIssues,omitempty"`
	IssuesBySeverity *IssuesBySeverity `json:"issuesBySeverity,omitempty"`
	// Autopilot
	Success    *bool   `json:"success,omitempty"`
	TrustScore float64 `json:"trustScore,omitempty"`
	// Guardian
	Passed             *bool   `json:"passed,omitempty"`
	AccessibilityScore float64 `json:"accessibilityScore,omitempty"`
	Vulnerabilities    int64   `json:"vulnerabilities,omitempty"`
	LoadTime           float64 `json:"loadTime,omitempty"`
	// LCP is the run's largest contentful paint in milliseconds; nil in
	// events published before it was added.
	LCP         *float64 `json:"lcp,omitempty"`
	Environment string   `json:"environment,omitempty"`
}

// CriticalAlert is the data of an alert raised by an Insight upload with critical issues.
type CriticalAlert struct {
	AlertID        string         `json:"alertId"`
	UploadID       string         `json:"uploadId"`
	OrganizationID string         `json:"organizationId"`
	ProjectID      string         `json:"projectId"`
	Critical       int64          `json:"critical"`
	Issues         []InsightIssue `json:"issues"`
	RaisedAt       time.Time      `json:"raisedAt"`
}

// JobStatusChanged is the data of a job lifecycle event.
type JobStatusChanged struct {
	JobID          string `json:"jobId"`
	Type           string `json:"type"`
	OrganizationID string `json:"organizationId"`
	ProjectID      string `json:"projectId"`
	Status         string `json:"status"`
	Previous       string `json:"previous,omitempty"`
	Progress       int    `json:"progress"`
	Attempt        int    `json:"attempt"`
	// Generation counts the job's manual retries (0: never retried): a job
	// finishes at most once per generation.
	Generation int       `json:"generation,omitempty"`
	Error      string    `json:"error,omitempty"`
	At         time.Time `json:"at"`
}

// FileChanged is the data of a file event.
type FileChanged struct {
	FileID         string    `json:"fileId"`
	OrganizationID string    `json:"organizationId"`
	ProjectID      string    `json:"projectId"`
	Kind           string    `json:"kind"`
	Name           string    `json:"name"`
	ContentType    string    `json:"contentType"`
	Size           int64     `json:"size"`
	At             time.Time `json:"at"`
}
