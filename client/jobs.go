package client

import (
	"context"
	"encoding/json"
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
	History        []Transition    `json:"history,omitempty"`
}

// Transition is one status change of a job.
type Transition struct {
	Status string    `json:"status"`
	At     time.Time `json:"at"`
	Error  string    `json:"error,omitempty"`
}

// JobListOptions filter and page the job list.
type JobListOptions struct {
	Status string // WAITING, ACTIVE, COMPLETED, FAILED, DELAYED, PAUSED, CANCELLED
	Type   string // INSIGHT_ANALYSIS, AUTOPILOT_CYCLE, GUARDIAN_TEST, …
	Limit  int
	Offset int
}

// JobList is a page of jobs with the queue's statistics.
type JobList struct {
	Items  []Job           `json:"items"`
	Total  int64           `json:"total"`
	Limit  int             `json:"limit"`
	Offset int             `json:"offset"`
	Stats  json.RawMessage `json:"stats,omitempty"`
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
	Job     *Job   `json:"job,omitempty"`
	Message string `json:"message,omitempty"`
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
	var raw json.RawMessage
	if err := c.postJSON(ctx, "/api/v1/sync/jobs", JobAction{Action: action, JobID: id}, &raw); err != nil {
		return nil, err
	}
	var r JobActionResult
	_ = json.Unmarshal(raw, &r)
	if r.Job == nil {
		// The answer may be the job itself.
		var j Job
		if json.Unmarshal(raw, &j) == nil && j.ID != "" {
			r.Job = &j
		}
	}
	return &r, nil
}

// SubmitJobRequest is the body of POST /api/v1/jobs.
type SubmitJobRequest struct {
	Type           string     `json:"type"`               // REPORT_GENERATION, BULK_INVITATION, EMAIL_SEND, DATA_EXPORT
	Priority       string     `json:"priority,omitempty"` // LOW, NORMAL (default), HIGH, CRITICAL
	Payload        any        `json:"payload,omitempty"`
	RunAt          *time.Time `json:"runAt,omitempty"`
	TimeoutSeconds int        `json:"timeoutSeconds,omitempty"`
}

// SubmitJob submits a background job; follow it with GetJob or Wait.
func (c *Client) SubmitJob(ctx context.Context, r SubmitJobRequest) (*Job, error) {
	var j Job
	if err := c.postJSON(ctx, "/api/v1/jobs", r, &j); err != nil {
		return nil, err
	}
	return &j, nil
}

// ClearJobsResult says how many completed jobs were deleted.
type ClearJobsResult struct {
	Deleted    int64 `json:"deleted"`
	DaysToKeep int   `json:"daysToKeep"`
}

// ClearJobs deletes the project's COMPLETED jobs older than daysToKeep days.
func (c *Client) ClearJobs(ctx context.Context, daysToKeep int) (*ClearJobsResult, error) {
	var r ClearJobsResult
	q := url.Values{"daysToKeep": {strconv.Itoa(daysToKeep)}}
	if _, err := c.do(ctx, request{method: "DELETE", path: "/api/v1/sync/jobs", query: q, auth: true}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// QueueState is whether the job queue is paused.
type QueueState struct {
	Paused bool `json:"paused"`
}

// PauseQueue stops jobs from starting (admin keys).
func (c *Client) PauseQueue(ctx context.Context) (*QueueState, error) {
	var s QueueState
	if err := c.postJSON(ctx, "/api/v1/sync/jobs/pause", struct{}{}, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// ResumeQueue lets jobs start again (admin keys).
func (c *Client) ResumeQueue(ctx context.Context) (*QueueState, error) {
	var s QueueState
	if err := c.postJSON(ctx, "/api/v1/sync/jobs/resume", struct{}{}, &s); err != nil {
		return nil, err
	}
	return &s, nil
}
