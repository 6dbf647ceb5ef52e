package jobs

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/jobs"
	"github.com/odavl/sync/libs/rpc"
	"github.com/odavl/sync/services/jobs/internal/handlers"
	"github.com/odavl/sync/services/jobs/internal/jobstore"
	"github.com/odavl/sync/services/jobs/internal/queue"
)

// queueEndpoints are the job queue's requests (submit, list, control).
func (s *Service) queueEndpoints(ctx context.Context) []rpc.Endpoint {
	const timeout = 30 * time.Second
	return []rpc.Endpoint{
		{Name: "jobs-submit", Subject: rpc.JobsSubmit, Handler: rpc.Handler(ctx, s.log, timeout, s.submitJob)},
		{Name: "jobs-list", Subject: rpc.JobsList, Handler: rpc.Handler(ctx, s.log, timeout, s.listJobs)},
		{Name: "jobs-stats", Subject: rpc.JobsStats, Handler: rpc.Handler(ctx, s.log, timeout, s.jobStats)},
		{Name: "jobs-retry", Subject: rpc.JobsRetry, Handler: rpc.Handler(ctx, s.log, timeout, s.retryJob)},
		{Name: "jobs-cancel", Subject: rpc.JobsCancel, Handler: rpc.Handler(ctx, s.log, timeout, s.cancelJob)},
		{Name: "jobs-clear", Subject: rpc.JobsClear, Handler: rpc.Handler(ctx, s.log, timeout, s.clearJobs)},
		{Name: "queue-pause", Subject: rpc.JobsPause, Handler: rpc.Handler(ctx, s.log, timeout, s.pauseQueue)},
		{Name: "queue-resume", Subject: rpc.JobsResume, Handler: rpc.Handler(ctx, s.log, timeout, s.resumeQueue)},
	}
}

func (s *Service) submitJob(ctx context.Context, req rpc.SubmitJobRequest) (rpc.Job, error) {
	var fields []rpc.FieldError
	if !events.ValidToken(req.OrganizationID) || !events.ValidToken(req.ProjectID) {
		return rpc.Job{}, rpc.BadRequest("the tenant is missing")
	}
	if !slices.Contains(jobs.Submittable, req.Type) {
		fields = append(fields, rpc.FieldError{Field: "type", Message: "must be one of REPORT_GENERATION, BULK_INVITATION, EMAIL_SEND, DATA_EXPORT"})
	} else {
		fields = append(fields, handlers.Validate(req.Type, req.Payload)...)
	}
	if req.Priority == 0 {
		req.Priority = jobs.PriorityNormal
	}
	if !slices.ContainsFunc(jobs.Priorities, func(p jobs.Priority) bool { return p.Value == req.Priority }) {
		fields = append(fields, rpc.FieldError{Field: "priority", Message: "must be LOW (1), NORMAL (5), HIGH (10) or CRITICAL (20)"})
	}
	if req.TimeoutSeconds < 0 || req.TimeoutSeconds > 24*3600 {
		fields = append(fields, rpc.FieldError{Field: "timeoutSeconds", Message: "must be from 1 to 86400"})
	}
	if req.RunAt != nil && req.RunAt.After(s.now().Add(365*24*time.Hour)) {
		fields = append(fields, rpc.FieldError{Field: "runAt", Message: "must be within a year"})
	}
	if len(fields) > 0 {
		return rpc.Job{}, &rpc.Error{Status: http.StatusBadRequest, Message: "invalid job", Fields: fields}
	}
	payload := req.Payload
	if len(payload) == 0 || string(payload) == "null" {
		payload = []byte("{}")
	}
	r, err := s.queue.Submit(ctx, queue.Spec{
		Type: req.Type, Priority: req.Priority, OrganizationID: req.OrganizationID, ProjectID: req.ProjectID,
		Payload: payload, RunAt: req.RunAt, Timeout: time.Duration(req.TimeoutSeconds) * time.Second, Durable: true,
	})
	if err != nil {
		return rpc.Job{}, err
	}
	return r.API(), nil
}

func (s *Service) query(req rpc.ListJobsRequest) jobstore.Query {
	return jobstore.Query{OrganizationID: req.OrganizationID, ProjectID: req.ProjectID, Status: req.Status, Type: req.Type,
		Limit: req.Limit, Offset: req.Offset, CreatedFrom: req.From, CreatedTo: req.To}
}

func (s *Service) listJobs(ctx context.Context, req rpc.ListJobsRequest) (rpc.ListJobsResponse, error) {
	if req.Limit <= 0 || req.Limit > 100 {
		req.Limit = 20
	}
	rs, total, err := s.queue.List(ctx, s.query(req))
	if err != nil {
		return rpc.ListJobsResponse{}, err
	}
	st, err := s.jobStats(ctx, req)
	if err != nil {
		return rpc.ListJobsResponse{}, err
	}
	out := rpc.ListJobsResponse{Items: make([]rpc.Job, 0, len(rs)), Total: total, Limit: req.Limit, Offset: req.Offset, Stats: st}
	for _, r := range rs {
		j := r.API()
		j.Payload = nil // lists stay small; GET the job for its payload
		out.Items = append(out.Items, j)
	}
	return out, nil
}

func (s *Service) jobStats(ctx context.Context, req rpc.ListJobsRequest) (rpc.JobStats, error) {
	st, err := s.queue.Stats(ctx, req.OrganizationID, req.ProjectID)
	if err != nil {
		return rpc.JobStats{}, err
	}
	return rpc.JobStats{Total: st.Total, ByStatus: st.ByStatus, ByType: st.ByType, Paused: st.Paused}, nil
}

func controlErr(err error, id string) error {
	switch {
	case errors.Is(err, queue.ErrNotFound):
		return rpc.NotFound("no job %q in this project", id)
	case errors.Is(err, queue.ErrNotCancelable), errors.Is(err, queue.ErrNotRetryable):
		return rpc.Conflict("%v", err)
	}
	return err
}

func (s *Service) retryJob(ctx context.Context, req rpc.JobActionRequest) (rpc.Job, error) {
	r, err := s.queue.Get(ctx, req.OrganizationID, req.ProjectID, req.JobID)
	switch {
	case err == nil && jobs.IsUpload(r.Type):
		// An upload's job is run by the uploads' consumer, not the queue.
		r, err = s.proc.Retry(ctx, r)
	case err == nil:
		r, err = s.queue.Retry(ctx, req.OrganizationID, req.ProjectID, req.JobID)
	}
	if err != nil {
		return rpc.Job{}, controlErr(err, req.JobID)
	}
	return r.API(), nil
}

func (s *Service) cancelJob(ctx context.Context, req rpc.JobActionRequest) (rpc.Job, error) {
	r, err := s.queue.Cancel(ctx, req.OrganizationID, req.ProjectID, req.JobID)
	if err != nil {
		return rpc.Job{}, controlErr(err, req.JobID)
	}
	return r.API(), nil
}

func (s *Service) clearJobs(ctx context.Context, req rpc.ClearJobsRequest) (rpc.ClearJobsResponse, error) {
	if req.DaysToKeep < 0 {
		return rpc.ClearJobsResponse{}, rpc.BadRequest("daysToKeep must not be negative")
	}
	n, err := s.queue.ClearCompleted(ctx, req.OrganizationID, req.ProjectID, time.Duration(req.DaysToKeep)*24*time.Hour)
	if err != nil {
		return rpc.ClearJobsResponse{}, err
	}
	return rpc.ClearJobsResponse{Deleted: n, DaysToKeep: req.DaysToKeep}, nil
}

func (s *Service) pauseQueue(ctx context.Context, req rpc.QueueControlRequest) (rpc.QueueState, error) {
	return s.queueControl(ctx, req, true)
}

func (s *Service) resumeQueue(ctx context.Context, req rpc.QueueControlRequest) (rpc.QueueState, error) {
	return s.queueControl(ctx, req, false)
}

// queueControl pauses or resumes the whole queue, or one organization's
// jobs (the gateway decides who may do which).
func (s *Service) queueControl(ctx context.Context, req rpc.QueueControlRequest, pause bool) (rpc.QueueState, error) {
	var err error
	switch {
	case req.Scope == rpc.ScopeOrganization && req.OrganizationID == "":
		return rpc.QueueState{}, rpc.BadRequest("organizationId is required to pause an organization")
	case req.Scope == rpc.ScopeOrganization && pause:
		err = s.queue.PauseOrganization(ctx, req.OrganizationID)
	case req.Scope == rpc.ScopeOrganization:
		err = s.queue.ResumeOrganization(ctx, req.OrganizationID)
	case pause:
		err = s.queue.Pause(ctx)
	default:
		err = s.queue.Resume(ctx)
	}
	if err != nil {
		return rpc.QueueState{}, err
	}
	if req.Scope == rpc.ScopeOrganization {
		return rpc.QueueState{Paused: pause, Scope: rpc.ScopeOrganization, OrganizationID: req.OrganizationID}, nil
	}
	return rpc.QueueState{Paused: pause, Scope: rpc.ScopeQueue}, nil
}
