package rpc

import (
	"encoding/json"
	"time"
)

// Subjects of the jobs service's queue.
const (
	JobsSubmit = "odavl.jobs.v1.jobs.submit" // SubmitJobRequest -> Job
	JobsList   = "odavl.jobs.v1.jobs.list"   // ListJobsRequest -> ListJobsResponse
	JobsRetry  = "odavl.jobs.v1.jobs.retry"  // JobActionRequest -> Job
	JobsCancel = "odavl.jobs.v1.jobs.cancel" // JobActionRequest -> Job
	JobsClear  = "odavl.jobs.v1.jobs.clear"  // ClearJobsRequest -> ClearJobsResponse
	JobsStats  = "odavl.jobs.v1.jobs.stats"  // ListJobsRequest -> JobStats
	JobsPause  = "odavl.jobs.v1.queue.pause" // QueueControlRequest -> QueueState
	JobsResume = "odavl.jobs.v1.queue.resume"
)

// SubmitJobRequest submits a job of a type clients may submit
// (REPORT_GENERATION, BULK_INVITATION, EMAIL_SEND, DATA_EXPORT).
type SubmitJobRequest struct {
	Caller
	Type string `json:"type"`
	// Priority is 1 (LOW), 5 (NORMAL, default), 10 (HIGH) or 20 (CRITICAL).
	Priority int             `json:"priority"`
	Payload  json.RawMessage `json:"payload"`
	// RunAt delays the job (DELAYED until then).
	RunAt *time.Time `json:"runAt,omitempty"`
	// TimeoutSeconds overrides the default run time limit (5 minutes).
	TimeoutSeconds int `json:"timeoutSeconds,omitempty"`
}

// ListJobsRequest selects jobs of an organization; an empty ProjectID is
// every project of it.
type ListJobsRequest struct {
	Tenant
	Status string `json:"status,omitempty"`
	Type   string `json:"type,omitempty"`
	Limit  int    `json:"limit"`
	Offset int    `json:"offset"`
	// From and To select jobs created in [From, To) (nil: unbounded).
	From *time.Time `json:"from,omitempty"`
	To   *time.Time `json:"to,omitempty"`
}

// ListJobsResponse is a page of jobs and the counts of the selection.
type ListJobsResponse struct {
	Items  []Job    `json:"items"`
	Total  int64    `json:"total"`
	Limit  int      `json:"limit"`
	Offset int      `json:"offset"`
	Stats  JobStats `json:"stats"`
}

// JobStats counts jobs by status and by type.
type JobStats struct {
	Total    int64            `json:"total"`
	ByStatus map[string]int64 `json:"byStatus"`
	ByType   map[string]int64 `json:"byType"`
	Paused   bool             `json:"paused"`
}

// JobActionRequest names a job to retry or cancel.
type JobActionRequest struct {
	Tenant
	JobID string `json:"jobId"`
}

// ClearJobsRequest clears COMPLETED jobs older than DaysToKeep days.
type ClearJobsRequest struct {
	Tenant
	DaysToKeep int `json:"daysToKeep"`
}

// ClearJobsResponse says how many were deleted.
type ClearJobsResponse struct {
	Deleted    int64 `json:"deleted"`
	DaysToKeep int   `json:"daysToKeep"`
}

// QueueState is whether the queue is paused.
type QueueState struct {
	Paused bool `json:"paused"`
	// Scope is what the answer is about: the whole queue, or the jobs of
	// OrganizationID.
	Scope          string `json:"scope,omitempty"`
	OrganizationID string `json:"organizationId,omitempty"`
}

// ScopeQueue is the scope of a pause or resume of every organization's
// jobs (the operator's); ScopeOrganization that of the caller's
// organization's jobs (its admin's).
const ScopeQueue = "queue"

// QueueControlRequest pauses or resumes the whole queue, or the jobs of
// the tenant's organization.
type QueueControlRequest struct {
	Tenant
	Scope string `json:"scope"`
}
