package rpc

import (
	"encoding/json"
	"strconv"
	"time"
)

// Subjects of the jobs service.
const (
	JobsListResults = "odavl.jobs.v1.results.list"
	JobsGetResult   = "odavl.jobs.v1.results.get"
	JobsGetJob      = "odavl.jobs.v1.jobs.get"
	JobsListAlerts  = "odavl.jobs.v1.alerts.list"
)

// Tenant names the organization and project a request acts for. The gateway
// fills it from the authenticated key; services trust it.
type Tenant struct {
	OrganizationID string `json:"organizationId"`
	ProjectID      string `json:"projectId"`
}

// ListResultsRequest asks for a page of a project's results of one product, newest first.
type ListResultsRequest struct {
	Tenant
	Product string     `json:"product"`
	Limit   int        `json:"limit"`
	Offset  int        `json:"offset"`
	From    *time.Time `json:"from,omitempty"`
	To      *time.Time `json:"to,omitempty"`
	// Autopilot
	Success *bool `json:"success,omitempty"`
	// Guardian
	Environment string `json:"environment,omitempty"`
	Passed      *bool  `json:"passed,omitempty"`
}

// ListResultsResponse is a page of results. The jobs service answers it as
// Encode writes it: a page holds up to 100 documents of ~10 KB.
type ListResultsResponse struct {
	Items  []json.RawMessage `json:"items"`
	Total  int64             `json:"total"`
	Limit  int               `json:"limit"`
	Offset int               `json:"offset"`
}

// Encode is the JSON of the page with its items as they are (each one
// compact JSON already), not validated and compacted again as
// json.Marshal would.
func (p ListResultsResponse) Encode() Raw {
	n := 64
	for _, it := range p.Items {
		n += len(it) + 1
	}
	b := append(make([]byte, 0, n), `{"items":[`...)
	for i, it := range p.Items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it...)
	}
	b = append(b, `],"total":`...)
	b = strconv.AppendInt(b, p.Total, 10)
	b = append(b, `,"limit":`...)
	b = strconv.AppendInt(b, int64(p.Limit), 10)
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, int64(p.Offset), 10)
	return append(b, '}')
}

// GetRequest names one record of a tenant.
type GetRequest struct {
	Tenant
	Product string `json:"product,omitempty"`
	ID      string `json:"id"`
}

// Job is a job record as the API shows it.
type Job struct {
	ID             string          `json:"id"`
	Type           string          `json:"type"`
	Status         string          `json:"status"`
	Priority       int             `json:"priority"`
	OrganizationID string          `json:"organizationId"`
	ProjectID      string          `json:"projectId"`
	Progress       int             `json:"progress"`
	Attempts       int             `json:"attempts"`
	MaxAttempts    int             `json:"maxAttempts"`
	Error          string          `json:"error,omitempty"`
	ResultID       string          `json:"resultId,omitempty"`
	Payload        json.RawMessage `json:"payload,omitempty"`
	Output         json.RawMessage `json:"output,omitempty"`
	CreatedAt      time.Time       `json:"createdAt"`
	UpdatedAt      time.Time       `json:"updatedAt"`
	RunAt          *time.Time      `json:"runAt,omitempty"`
	ParentID       string          `json:"parentId,omitempty"`
	// WaitingChildren are the unfinished child jobs a DELAYED job waits
	// for, its worker given back.
	WaitingChildren []string     `json:"waitingChildren,omitempty"`
	StartedAt       *time.Time   `json:"startedAt,omitempty"`
	FinishedAt      *time.Time   `json:"finishedAt,omitempty"`
	History         []Transition `json:"history"`
}

// Transition is one status change of a job.
type Transition struct {
	Status  string    `json:"status"`
	At      time.Time `json:"at"`
	Attempt int       `json:"attempt,omitempty"`
	Error   string    `json:"error,omitempty"`
}
