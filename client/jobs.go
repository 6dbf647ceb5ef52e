package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Job is a job record of the queue.
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
	StartedAt      *time.Time      `json:"startedAt,omitempty"`
	FinishedAt     *time.Time      `json:"finishedAt,omitempty"`
	History        []Transition    `json:"history,omitempty"`
}

// Transition is one status change of a job.
type Transition struct {
	Status  string    `json:"status"`
	At      time.Time `json:"at"`
	Attempt int       `json:"attempt,omitempty"`
	Error   string    `json:"error,omitempty"`
}

// Job priorities.
const (
	PriorityLow      = 1
	PriorityNormal   = 5
	PriorityHigh     = 10
	PriorityCritical = 20
)

// SubmitJobRequest submits a job of a type clients may submit
// (REPORT_GENERATION, BULK_INVITATION, EMAIL_SEND, DATA_EXPORT).
type SubmitJobRequest struct {
	Type     string          `json:"type"`
	Priority int             `json:"priority,omitempty"` // 1, 5 (default), 10, 20
	Payload  json.RawMessage `json:"payload,omitempty"`
	// RunAt delays the job (DELAYED until then).
	RunAt *time.Time `json:"runAt,omitempty"`
	// TimeoutSeconds overrides the run time limit (1-86400; default 5 minutes).
	TimeoutSeconds int `json:"timeoutSeconds,omitempty"`
}

// SubmitJob queues a job; it answers the job record (202).
func (c *Client) SubmitJob(ctx context.Context, r SubmitJobRequest) (*Job, error) {
	var j Job
	if err := c.postJSON(ctx, "/api/v1/jobs", r, &j); err != nil {
		return nil, err
	}
	return &j, nil
}

// JobStats counts jobs by status and by type.
type JobStats struct {
	Total    int64            `json:"total"`
	ByStatus map[string]int64 `json:"byStatus"`
	ByType   map[string]int64 `json:"byType"`
	Paused   bool             `json:"paused"`
}

// JobListOptions filter and page the job list.
type JobListOptions struct {
	Status string // WAITING, ACTIVE, COMPLETED, FAILED, DELAYED, PAUSED, CANCELLED
	Type   string // INSIGHT_ANALYSIS, AUTOPILOT_CYCLE, GUARDIAN_TEST, …
	// ProjectID lists another project of the organization, or "*" for all
	// (an admin key); empty: the client's project.
	ProjectID string
	Limit     int
	Offset    int
}

// JobList is a page of jobs with the queue's statistics.
type JobList struct {
	Items  []Job    `json:"items"`
	Total  int64    `json:"total"`
	Limit  int      `json:"limit"`
	Offset int      `json:"offset"`
	Stats  JobStats `json:"stats"`
}

// ListJobs returns a page of the project's jobs.
func (c *Client) ListJobs(ctx context.Context, o JobListOptions) (*JobList, error) {
	q := url.Values{}
	if o.Status != "" {
		q.Set("status", o.Status)
	}
	if o.Type != "" {
		q.Set("type", o.Type)
	}
	if o.ProjectID != "" {
		q.Set("projectId", o.ProjectID)
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Offset > 0 {
		q.Set("offset", strconv.Itoa(o.Offset))
	}
	var l JobList
	if err := c.getJSON(ctx, "/api/v1/sync/jobs", q, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// GetJob returns a job by id (an upload's job id is its event id).
func (c *Client) GetJob(ctx context.Context, id string) (*Job, error) {
	s, err := c.Status(ctx, id)
	if err != nil {
		return nil, err
	}
	if s.Job == nil {
		return &Job{ID: s.JobID, Status: s.Status}, nil
	}
	return s.Job, nil
}

// JobAction is the body of POST /api/v1/sync/jobs.
type JobAction struct {
	Action string `json:"action"` // retry or cancel
	JobID  string `json:"jobId"`
}

// JobActionResult is the answer to a job action.
type JobActionResult struct {
	Action string `json:"action"`
	Job    *Job   `json:"job,omitempty"`
}

// RetryJob puts a failed job back in the queue.
func (c *Client) RetryJob(ctx context.Context, id string) (*JobActionResult, error) {
	return c.jobAction(ctx, "retry", id)
}

// CancelJob cancels a job that has not finished.
func (c *Client) CancelJob(ctx context.Context, id string) (*JobActionResult, error) {
	return c.jobAction(ctx, "cancel", id)
}

func (c *Client) jobAction(ctx context.Context, action, id string) (*JobActionResult, error) {
	var r JobActionResult
	if err := c.postJSON(ctx, "/api/v1/sync/jobs", JobAction{Action: action, JobID: id}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// ClearedJobs says how many finished jobs a clear deleted.
type ClearedJobs struct {
	Deleted    int64 `json:"deleted"`
	DaysToKeep int   `json:"daysToKeep"`
}

// ClearJobs deletes the COMPLETED jobs older than daysToKeep days.
func (c *Client) ClearJobs(ctx context.Context, daysToKeep int) (*ClearedJobs, error) {
	var r ClearedJobs
	q := url.Values{"daysToKeep": {strconv.Itoa(daysToKeep)}}
	if _, err := c.do(ctx, request{method: http.MethodDelete, path: "/api/v1/sync/jobs", query: q, auth: true}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// QueueState says whether jobs are paused.
type QueueState struct {
	Paused bool `json:"paused"`
	// Scope is what was paused or resumed: "organization" (the key's
	// organization's jobs: an admin key's default) or "queue" (every
	// organization's: the operator key's default).
	Scope          string `json:"scope,omitempty"`
	OrganizationID string `json:"organizationId,omitempty"`
}

// PauseQueue stops jobs from starting: the key's organization's (an admin
// key), or the whole queue's (the deployment's operator key).
func (c *Client) PauseQueue(ctx context.Context) (*QueueState, error) {
	return c.queueControl(ctx, "pause")
}

// ResumeQueue lets the jobs PauseQueue held start again (same keys).
func (c *Client) ResumeQueue(ctx context.Context) (*QueueState, error) {
	return c.queueControl(ctx, "resume")
}

func (c *Client) queueControl(ctx context.Context, what string) (*QueueState, error) {
	var s QueueState
	if err := c.postJSON(ctx, "/api/v1/sync/jobs/"+what, struct{}{}, &s); err != nil {
		return nil, err
	}
	return &s, nil
}
