package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// Subjects of the stats service, and the export the stats rebuild reads
// from the jobs service.
const (
	StatsSummary = "odavl.stats.v1.summary"
	StatsTrends  = "odavl.stats.v1.trends"
	StatsRebuild = "odavl.stats.v1.rebuild"
	// JobsExportResults streams every result document of the jobs service
	// (see StreamBatches and ServeStream).
	JobsExportResults = "odavl.jobs.v1.export.results"
)

// Stats scopes.
const (
	ScopeProject      = "project"
	ScopeOrganization = "organization"
)

// StatsQuery asks for figures of a project or of its whole organization over
// a range of UTC days (From and To are YYYY-MM-DD, both included). An empty
// range is all time for a summary and the last 30 days for trends.
type StatsQuery struct {
	Tenant
	Scope string `json:"scope,omitempty"`
	From  string `json:"from,omitempty"`
	To    string `json:"to,omitempty"`
}

// InsightFigures are the Insight figures of a period.
type InsightFigures struct {
	Analyses         int64          `json:"analyses"`
	TotalIssues      int64          `json:"totalIssues"`
	IssuesBySeverity SeverityTotals `json:"issuesBySeverity"`
	// WithCritical counts analyses with at least one critical issue.
	WithCritical int64 `json:"withCritical"`
}

// SeverityTotals count Insight issues per severity.
type SeverityTotals struct {
	Critical int64 `json:"critical"`
	High     int64 `json:"high"`
	Medium   int64 `json:"medium"`
	Low      int64 `json:"low"`
}

// AutopilotFigures are the Autopilot figures of a period. SuccessRate is a
// percentage (0-100) and nil without runs, as is AverageTrustScore.
type AutopilotFigures struct {
	Total             int64    `json:"total"`
	Successful        int64    `json:"successful"`
	Failed            int64    `json:"failed"`
	SuccessRate       *float64 `json:"successRate"`
	AverageTrustScore *float64 `json:"averageTrustScore"`
}

// GuardianFigures are the Guardian figures of a period. PassRate is a
// percentage (0-100); the averages are nil without runs.
type GuardianFigures struct {
	Total                     int64    `json:"total"`
	Passed                    int64    `json:"passed"`
	Failed                    int64    `json:"failed"`
	PassRate                  *float64 `json:"passRate"`
	AverageAccessibilityScore *float64 `json:"averageAccessibilityScore"`
	AverageLoadTime           *float64 `json:"averageLoadTime"`
	// AverageLCP is the average largest contentful paint (ms) of the runs
	// whose LCP is known.
	AverageLCP           *float64 `json:"averageLcp"`
	TotalVulnerabilities int64    `json:"totalVulnerabilities"`
}

// JobFigures count job lifecycle transitions of a period: how many jobs
// entered each status, overall and per job type. A job that ran and
// completed counts once in ACTIVE and once in COMPLETED: ByStatus is not how
// many jobs are in a status now — Current is.
type JobFigures struct {
	ByStatus map[string]int64            `json:"byStatus"`
	ByType   map[string]map[string]int64 `json:"byType"`
	// Current is how many of the scope's jobs are in each status now, from
	// the jobs service's queue, whatever the period; the gateway adds it
	// to a summary (nil in trends, and when the queue does not answer).
	Current map[string]int64 `json:"current,omitempty"`
}

// FileFigures count file events of a period.
type FileFigures struct {
	Uploaded      int64 `json:"uploaded"`
	UploadedBytes int64 `json:"uploadedBytes"`
	Deleted       int64 `json:"deleted"`
	DeletedBytes  int64 `json:"deletedBytes"`
	Expired       int64 `json:"expired"`
	ExpiredBytes  int64 `json:"expiredBytes"`
}

// Figures are all figures of a period.
type Figures struct {
	Insight   InsightFigures   `json:"insight"`
	Autopilot AutopilotFigures `json:"autopilot"`
	Guardian  GuardianFigures  `json:"guardian"`
	Jobs      JobFigures       `json:"jobs"`
	Files     FileFigures      `json:"files"`
}

// StatsSummaryResponse is the summary of a scope over a range.
type StatsSummaryResponse struct {
	OrganizationID string `json:"organizationId"`
	ProjectID      string `json:"projectId,omitempty"`
	Scope          string `json:"scope"`
	From           string `json:"from,omitempty"`
	To             string `json:"to,omitempty"`
	Figures
}

// TrendDay is the figures of one UTC day.
type TrendDay struct {
	Day string `json:"day"`
	Figures
}

// Trend directions.
const (
	TrendBetter  = "better"
	TrendWorse   = "worse"
	TrendSame    = "same"
	TrendUnknown = "unknown"
)

// Signal compares one figure of a period with the previous period of equal
// length. Previous or Current is nil when that period has no data, and the
// direction is then unknown.
type Signal struct {
	Current   *float64 `json:"current"`
	Previous  *float64 `json:"previous"`
	Direction string   `json:"direction"`
}

// ProjectSignals are the trend signals of one project: critical Insight
// issues (fewer is better), Guardian pass rate and average accessibility
// score (higher is better).
type ProjectSignals struct {
	ProjectID      string `json:"projectId"`
	CriticalIssues Signal `json:"criticalIssues"`
	PassRate       Signal `json:"passRate"`
	Accessibility  Signal `json:"accessibility"`
}

// StatsTrendsResponse is the per-day figures of a scope and each project's signals.
type StatsTrendsResponse struct {
	OrganizationID string           `json:"organizationId"`
	ProjectID      string           `json:"projectId,omitempty"`
	Scope          string           `json:"scope"`
	From           string           `json:"from"`
	To             string           `json:"to"`
	PreviousFrom   string           `json:"previousFrom"`
	PreviousTo     string           `json:"previousTo"`
	Days           []TrendDay       `json:"days"`
	Signals        []ProjectSignals `json:"signals"`
}

// ScopeAll is the scope of a stats rebuild of every organization (the
// operator's); ScopeOrganization that of one organization's (its admin's).
const ScopeAll = "all"

// StatsRebuildRequest asks for a rebuild of the aggregates from the source
// documents: of every organization (Scope ScopeAll, or empty), or of
// OrganizationID's alone (Scope ScopeOrganization), while the others go on
// counting.
type StatsRebuildRequest struct {
	Scope          string `json:"scope,omitempty"`
	OrganizationID string `json:"organizationId,omitempty"`
}

// StatsRebuildResponse reports a finished rebuild: Results and Aggregates
// are those of the organization rebuilt, or of every organization.
type StatsRebuildResponse struct {
	Scope          string    `json:"scope"`
	OrganizationID string    `json:"organizationId,omitempty"`
	Generation     int64     `json:"generation"`
	Results        int64     `json:"results"`
	Aggregates     int64     `json:"aggregates"`
	StartedAt      time.Time `json:"startedAt"`
	FinishedAt     time.Time `json:"finishedAt"`
}

// ExportRequest asks the jobs service for every stored result, in batches.
type ExportRequest struct {
	// BatchSize is the number of items per batch (default 500, at most 2000).
	BatchSize int `json:"batchSize,omitempty"`
	// OrganizationID, when set, limits the export to that organization's results.
	OrganizationID string `json:"organizationId,omitempty"`
}

// ExportedResult is one stored result document.
type ExportedResult struct {
	ID             string          `json:"id"`
	OrganizationID string          `json:"organizationId"`
	ProjectID      string          `json:"projectId"`
	Product        string          `json:"product"`
	ReceivedAt     time.Time       `json:"receivedAt"`
	Data           json.RawMessage `json:"data"`
}

// StreamBatch is one message of a streamed answer. The last one has Done
// set (and may carry items); a failure ends the stream with Error.
type StreamBatch[T any] struct {
	Items []T    `json:"items"`
	Done  bool   `json:"done,omitempty"`
	Error *Error `json:"error,omitempty"`
}

// StreamTimeout bounds the wait for each batch (and for each batch's acknowledgement).
const StreamTimeout = 30 * time.Second

// StreamBatches sends req to subject and passes each batch of the streamed
// answer to each, in order. Every batch but the last is sent as a request
// the caller acknowledges after each returns, so the sender never runs
// ahead of the reader. It returns each's error, the stream's *Error, or a
// 503/504 *Error when nobody answers.
func StreamBatches[T any](ctx context.Context, nc *nats.Conn, subject string, req any, each func([]T) error) error {
	b, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encoding request for %s: %w", subject, err)
	}
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return fmt.Errorf("subscribing for %s: %w", subject, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest(subject, inbox, b); err != nil {
		return fmt.Errorf("requesting %s: %w", subject, err)
	}
	for first := true; ; first = false {
		wctx, cancel := context.WithTimeout(ctx, StreamTimeout)
		msg, err := sub.NextMsgWithContext(wctx)
		cancel()
		if errors.Is(err, nats.ErrNoResponders) || (err == nil && first && len(msg.Data) == 0 && msg.Header.Get("Status") == "503") {
			return Errorf(503, "%s: no service answers", subject)
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return Errorf(504, "%s: no batch in time", subject)
		}
		var batch StreamBatch[T]
		if err := json.Unmarshal(msg.Data, &batch); err != nil {
			return fmt.Errorf("decoding batch of %s: %w", subject, err)
		}
		if batch.Error != nil {
			return batch.Error
		}
		if err := each(batch.Items); err != nil {
			return err
		}
		if batch.Done {
			return nil
		}
		if err := msg.Respond(nil); err != nil {
			return fmt.Errorf("acknowledging batch of %s: %w", subject, err)
		}
	}
}

// ServeStream answers a StreamBatches request on reply: it calls next until
// it reports done, sending each batch and waiting for its acknowledgement.
// An error of next ends the stream with that error (an *Error keeps its
// status; any other is a 500).
func ServeStream[T any](ctx context.Context, nc *nats.Conn, reply string, next func(ctx context.Context) ([]T, bool, error)) error {
	for {
		items, done, err := next(ctx)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				e = Errorf(500, "internal error")
			}
			b, _ := json.Marshal(StreamBatch[T]{Items: []T{}, Error: e})
			_ = nc.Publish(reply, b)
			return err
		}
		if items == nil {
			items = []T{}
		}
		b, err := json.Marshal(StreamBatch[T]{Items: items, Done: done})
		if err != nil {
			return fmt.Errorf("encoding batch: %w", err)
		}
		if done {
			return nc.Publish(reply, b)
		}
		wctx, cancel := context.WithTimeout(ctx, StreamTimeout)
		_, err = nc.RequestWithContext(wctx, reply, b)
		cancel()
		if err != nil {
			return fmt.Errorf("waiting for the reader: %w", err)
		}
	}
}
