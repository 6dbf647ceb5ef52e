package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/jobs"
	"github.com/odavl/sync/libs/rpc"
	"github.com/odavl/sync/services/ingest/internal/tenancy"
)

// jobRoutes mounts the job queue routes (the jobs service's).
func (a *API) jobRoutes(g *gin.RouterGroup) {
	g.POST("/jobs", a.submitJob)
	g.GET("/sync/jobs", a.listJobs)
	g.POST("/sync/jobs", a.jobAction)
	g.DELETE("/sync/jobs", a.clearJobs)
	// An organization's admin pauses its own organization's jobs; the
	// operator pauses the whole queue (scope=queue, its default) or one
	// organization's (scope=organization, with X-Organization-Id).
	g.POST("/sync/jobs/pause", requireAdmin, a.queueControl(rpc.JobsPause))
	g.POST("/sync/jobs/resume", requireAdmin, a.queueControl(rpc.JobsResume))
}

func oneOf(v string, allowed []string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

// submitJob is POST /api/v1/jobs: {type, priority, payload, runAt?, timeoutSeconds?}.
func (a *API) submitJob(c *gin.Context) {
	body, ok := a.readBody(c)
	if !ok {
		return
	}
	var in struct {
		Type           string          `json:"type"`
		Priority       json.RawMessage `json:"priority"`
		Payload        json.RawMessage `json:"payload"`
		RunAt          string          `json:"runAt"`
		TimeoutSeconds *int            `json:"timeoutSeconds"`
	}
	if ferr := decodeStrict(body, &in); ferr != nil {
		badBody(c, ferr)
		return
	}
	var fields []rpc.FieldError
	if in.Type == "" {
		fields = append(fields, rpc.FieldError{Field: "type", Message: "is required"})
	}
	req := rpc.SubmitJobRequest{Caller: rpc.Caller{Tenant: tenantOf(c), KeyID: keyOf(c).ID}, Type: in.Type, Payload: in.Payload}
	if len(in.Priority) > 0 && string(in.Priority) != "null" {
		p, ok := parsePriority(in.Priority)
		if !ok {
			fields = append(fields, rpc.FieldError{Field: "priority", Message: "must be LOW, NORMAL, HIGH, CRITICAL or 1, 5, 10, 20"})
		}
		req.Priority = p
	}
	if len(in.Payload) > 0 && string(in.Payload) != "null" && !strings.HasPrefix(strings.TrimSpace(string(in.Payload)), "{") {
		fields = append(fields, rpc.FieldError{Field: "payload", Message: "must be a JSON object"})
	}
	if in.RunAt != "" {
		t, err := time.Parse(time.RFC3339, in.RunAt)
		if err != nil {
			fields = append(fields, rpc.FieldError{Field: "runAt", Message: "must be an RFC 3339 time such as 2026-01-02T15:04:05Z"})
		} else {
			req.RunAt = &t
		}
	}
	if in.TimeoutSeconds != nil {
		if *in.TimeoutSeconds < 1 || *in.TimeoutSeconds > 86400 {
			fields = append(fields, rpc.FieldError{Field: "timeoutSeconds", Message: "must be from 1 to 86400"})
		}
		req.TimeoutSeconds = *in.TimeoutSeconds
	}
	if len(fields) > 0 {
		problem(c, http.StatusBadRequest, "validation", strconv.Itoa(len(fields))+" invalid field(s) in the job", fields...)
		return
	}
	job, err := rpc.Call[rpc.Job](c.Request.Context(), a.nc, rpc.JobsSubmit, req)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.Header("Location", "/api/v1/sync/jobs/"+job.ID)
	answer(c, http.StatusAccepted, job)
}

func parsePriority(raw json.RawMessage) (int, bool) {
	var n int
	if json.Unmarshal(raw, &n) == nil {
		return jobs.ParsePriority(strconv.Itoa(n))
	}
	var s string
	if json.Unmarshal(raw, &s) != nil || s == "" || s[0] >= '0' && s[0] <= '9' {
		return 0, false
	}
	return jobs.ParsePriority(s)
}

// jobScope reads the projectId filter: a project key sees its own project;
// an admin key may name another project of its organization or "*" for all.
func jobScope(c *gin.Context) (rpc.Tenant, *rpc.FieldError, bool) {
	t := tenantOf(c)
	p, given := c.GetQuery("projectId")
	if !given || p == t.ProjectID {
		return t, nil, true
	}
	if !keyOf(c).Has(tenancy.ScopeAdmin) {
		problem(c, http.StatusForbidden, "forbidden", "this API key may only list the jobs of project "+t.ProjectID)
		return t, nil, false
	}
	if p == "*" {
		t.ProjectID = ""
		return t, nil, true
	}
	if !events.ValidToken(p) {
		return t, &rpc.FieldError{Field: "projectId", Message: "must be 1-64 letters, digits, '-' or '_', or *"}, true
	}
	t.ProjectID = p
	return t, nil, true
}

// listJobs is GET /api/v1/sync/jobs?status=&type=&projectId=&organizationId=&from=&to=&limit=&offset=
// (from and to: RFC 3339 times, jobs created in [from, to)).
func (a *API) listJobs(c *gin.Context) {
	t, ferr, ok := jobScope(c)
	if !ok {
		return
	}
	var fields []rpc.FieldError
	if ferr != nil {
		fields = append(fields, *ferr)
	}
	if o := c.Query("organizationId"); o != "" && o != t.OrganizationID {
		fields = append(fields, rpc.FieldError{Field: "organizationId", Message: "must be the key's organization " + t.OrganizationID})
	}
	req := rpc.ListJobsRequest{Tenant: t, Status: strings.ToUpper(c.Query("status")), Type: strings.ToUpper(c.Query("type"))}
	if req.Status != "" && !oneOf(req.Status, jobs.Statuses) {
		fields = append(fields, rpc.FieldError{Field: "status", Message: "must be one of " + strings.Join(jobs.Statuses, ", ")})
	}
	if req.Type != "" && !oneOf(req.Type, jobs.Types) {
		fields = append(fields, rpc.FieldError{Field: "type", Message: "must be one of " + strings.Join(jobs.Types, ", ")})
	}
	var pg rpc.ListResultsRequest
	fields = append(fields, page(c, &pg)...)
	req.Limit, req.Offset, req.From, req.To = pg.Limit, pg.Offset, pg.From, pg.To
	if len(fields) > 0 {
		problem(c, http.StatusBadRequest, "bad-query", "invalid query parameter(s)", fields...)
		return
	}
	resp, err := rpc.Call[rpc.ListJobsResponse](c.Request.Context(), a.nc, rpc.JobsList, req)
	if err != nil {
		a.fail(c, err)
		return
	}
	answer(c, http.StatusOK, resp)
}

// jobAction is POST /api/v1/sync/jobs {action: retry|cancel, jobId}.
func (a *API) jobAction(c *gin.Context) {
	body, ok := a.readBody(c)
	if !ok {
		return
	}
	var in struct {
		Action string `json:"action"`
		JobID  string `json:"jobId"`
	}
	if ferr := decodeStrict(body, &in); ferr != nil {
		badBody(c, ferr)
		return
	}
	var fields []rpc.FieldError
	subject := map[string]string{"retry": rpc.JobsRetry, "cancel": rpc.JobsCancel}[in.Action]
	if subject == "" {
		fields = append(fields, rpc.FieldError{Field: "action", Message: "must be retry or cancel"})
	}
	if !events.ValidID(in.JobID) {
		fields = append(fields, rpc.FieldError{Field: "jobId", Message: "is required: " + events.IDRule})
	}
	if len(fields) > 0 {
		problem(c, http.StatusBadRequest, "validation", "invalid job action", fields...)
		return
	}
	job, err := rpc.Call[rpc.Job](c.Request.Context(), a.nc, subject, rpc.JobActionRequest{Tenant: tenantOf(c), JobID: in.JobID})
	if err != nil {
		a.fail(c, err)
		return
	}
	answer(c, http.StatusOK, gin.H{"action": in.Action, "job": job})
}

// clearJobs is DELETE /api/v1/sync/jobs?daysToKeep=7: COMPLETED jobs older go.
func (a *API) clearJobs(c *gin.Context) {
	days := 7
	if v := c.Query("daysToKeep"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 3650 {
			problem(c, http.StatusBadRequest, "bad-query", "invalid query parameter(s)", rpc.FieldError{Field: "daysToKeep", Message: "must be an integer from 0 to 3650"})
			return
		}
		days = n
	}
	resp, err := rpc.Call[rpc.ClearJobsResponse](c.Request.Context(), a.nc, rpc.JobsClear, rpc.ClearJobsRequest{Tenant: tenantOf(c), DaysToKeep: days})
	if err != nil {
		a.fail(c, err)
		return
	}
	answer(c, http.StatusOK, resp)
}

func (a *API) queueControl(subject string) gin.HandlerFunc {
	return func(c *gin.Context) {
		scope, ok := adminScope(c, rpc.ScopeQueue, "every organization's jobs", "pausing or resuming the whole queue")
		if !ok {
			return
		}
		resp, err := rpc.Call[rpc.QueueState](c.Request.Context(), a.nc, subject, rpc.QueueControlRequest{Tenant: tenantOf(c), Scope: scope})
		if err != nil {
			a.fail(c, err)
			return
		}
		answer(c, http.StatusOK, resp)
	}
}
