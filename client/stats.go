package client

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// StatsOptions pick the scope and the range of UTC days of the figures.
type StatsOptions struct {
	// Scope is "project" (default) or "organization" (an admin key).
	Scope string
	// From and To are the first and last UTC days, included (zero: all
	// time, and today).
	From, To time.Time
}

func (o StatsOptions) query() url.Values {
	q := url.Values{}
	if o.Scope != "" {
		q.Set("scope", o.Scope)
	}
	if !o.From.IsZero() {
		q.Set("from", o.From.UTC().Format(time.DateOnly))
	}
	if !o.To.IsZero() {
		q.Set("to", o.To.UTC().Format(time.DateOnly))
	}
	return q
}

// StatsInsight are the Insight figures.
type StatsInsight struct {
	Analyses         int64            `json:"analyses"`
	TotalIssues      int64            `json:"totalIssues"`
	IssuesBySeverity IssuesBySeverity `json:"issuesBySeverity"`
	WithCritical     int64            `json:"withCritical"`
}

// StatsAutopilot are the Autopilot figures; the averages are nil without runs.
type StatsAutopilot struct {
	Total             int64    `json:"total"`
	Successful        int64    `json:"successful"`
	Failed            int64    `json:"failed"`
	SuccessRate       *float64 `json:"successRate"`
	AverageTrustScore *float64 `json:"averageTrustScore"`
}

// StatsGuardian are the Guardian figures; the averages are nil without runs.
type StatsGuardian struct {
	Total                     int64    `json:"total"`
	Passed                    int64    `json:"passed"`
	Failed                    int64    `json:"failed"`
	PassRate                  *float64 `json:"passRate"`
	AverageAccessibilityScore *float64 `json:"averageAccessibilityScore"`
	AverageLoadTime           *float64 `json:"averageLoadTime"`
	AverageLCP                *float64 `json:"averageLcp"`
	TotalVulnerabilities      int64    `json:"totalVulnerabilities"`
}

// StatsJobs count jobs entering each status (transitions), overall and per
// type; Current, in a summary, is how many jobs are in each status now.
type StatsJobs struct {
	ByStatus map[string]int64            `json:"byStatus"`
	ByType   map[string]map[string]int64 `json:"byType"`
	Current  map[string]int64            `json:"current,omitempty"`
}

// StatsFiles count files and bytes uploaded, deleted and expired.
type StatsFiles struct {
	Uploaded      int64 `json:"uploaded"`
	UploadedBytes int64 `json:"uploadedBytes"`
	Deleted       int64 `json:"deleted"`
	DeletedBytes  int64 `json:"deletedBytes"`
	Expired       int64 `json:"expired"`
	ExpiredBytes  int64 `json:"expiredBytes"`
}

// StatsFigures are the figures of a period.
type StatsFigures struct {
	Insight   StatsInsight   `json:"insight"`
	Autopilot StatsAutopilot `json:"autopilot"`
	Guardian  StatsGuardian  `json:"guardian"`
	Jobs      StatsJobs      `json:"jobs"`
	Files     StatsFiles     `json:"files"`
}

// StatsSummary is the figures of a project or organization over a range.
type StatsSummary struct {
	OrganizationID string `json:"organizationId"`
	ProjectID      string `json:"projectId,omitempty"`
	Scope          string `json:"scope"`
	From           string `json:"from,omitempty"`
	To             string `json:"to,omitempty"`
	StatsFigures
}

// StatsDay is the figures of one UTC day.
type StatsDay struct {
	Day string `json:"day"`
	StatsFigures
}

// StatsSignal compares a figure with the previous period of equal length.
type StatsSignal struct {
	Current   *float64 `json:"current"`
	Previous  *float64 `json:"previous"`
	Direction string   `json:"direction"` // better, worse, same, unknown
}

// StatsProjectSignals are one project's signals.
type StatsProjectSignals struct {
	ProjectID      string      `json:"projectId"`
	CriticalIssues StatsSignal `json:"criticalIssues"`
	PassRate       StatsSignal `json:"passRate"`
	Accessibility  StatsSignal `json:"accessibility"`
}

// StatsTrends is the days of a range and the signals against the previous range.
type StatsTrends struct {
	OrganizationID string                `json:"organizationId"`
	ProjectID      string                `json:"projectId,omitempty"`
	Scope          string                `json:"scope"`
	From           string                `json:"from"`
	To             string                `json:"to"`
	PreviousFrom   string                `json:"previousFrom"`
	PreviousTo     string                `json:"previousTo"`
	Days           []StatsDay            `json:"days"`
	Signals        []StatsProjectSignals `json:"signals"`
}

// StatsRebuild is a finished rebuild of the aggregates: of the
// organization the key acts for (Scope "organization", an admin key's
// default) or of every organization (Scope "all", the operator key's).
type StatsRebuild struct {
	Scope          string    `json:"scope"`
	OrganizationID string    `json:"organizationId,omitempty"`
	Generation     int       `json:"generation"`
	Results        int64     `json:"results"`
	Aggregates     int64     `json:"aggregates"`
	StartedAt      time.Time `json:"startedAt"`
	FinishedAt     time.Time `json:"finishedAt"`
}

// StatsSummary returns the figures of the project (or organization).
func (c *Client) StatsSummary(ctx context.Context, o StatsOptions) (*StatsSummary, error) {
	var s StatsSummary
	if err := c.getJSON(ctx, "/api/v1/stats/summary", o.query(), &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// StatsTrends returns the figures per day and the signals.
func (c *Client) StatsTrends(ctx context.Context, o StatsOptions) (*StatsTrends, error) {
	var t StatsTrends
	if err := c.getJSON(ctx, "/api/v1/stats/trends", o.query(), &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// RebuildStats rebuilds the aggregates from the stored results: the
// organization's with an admin key, every organization's with the
// deployment's operator key.
func (c *Client) RebuildStats(ctx context.Context) (*StatsRebuild, error) {
	var r StatsRebuild
	one := NoRetry() // a long call; a second one would start over
	_, err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/admin/stats/rebuild", auth: true, timeout: 30 * time.Minute, retry: &one}, &r)
	if err != nil {
		return nil, err
	}
	return &r, nil
}
