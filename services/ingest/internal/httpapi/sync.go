package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/jobs"
	"github.com/odavl/sync/libs/rpc"
	"github.com/odavl/sync/services/ingest/internal/tenancy"
	"github.com/odavl/sync/services/ingest/internal/uploads"
)

func (a *API) syncRoutes(g *gin.RouterGroup) {
	for _, p := range events.Products {
		g.POST("/sync/"+string(p), a.upload(p))
		g.GET("/sync/"+string(p), a.list(p))
		g.GET("/sync/"+string(p)+"/:id", a.get(p))
	}
	g.GET("/sync/jobs/:id", a.receipt)
	g.GET("/alerts", a.alerts)
}

// upload validates, makes durable and answers 202 with the receipt.
func (a *API) upload(p events.Product) gin.HandlerFunc {
	return func(c *gin.Context) {
		bufs := uploadBuffers.Get().(*uploadBuffer)
		defer bufs.put()
		body, ok := a.readBodyInto(c, &bufs.body)
		if !ok {
			return
		}
		key := keyOf(c)
		if err := a.validating.Acquire(c.Request.Context(), int64(len(body))); err != nil {
			problem(c, http.StatusServiceUnavailable, "unavailable", "the request ended before its body could be validated")
			return
		}
		rep, canonical := a.validator.AppendCanonical(bufs.canonical[:0], p, key.OrganizationID, key.ProjectID, body)
		if canonical != nil {
			bufs.canonical = canonical
		}
		a.validating.Release(int64(len(body)))
		fields := make([]rpc.FieldError, 0, len(rep.Fields))
		bad := map[string]bool{}
		for _, e := range rep.Fields {
			fields = append(fields, rpc.FieldError{Field: e.Field, Message: e.Message})
			bad[e.Field] = true
		}
		total := rep.Total
		if p == events.Guardian {
			more, err := a.screenshotFiles(c.Request.Context(), key, body, bad)
			if err != nil {
				a.log.Warn("checking screenshot files", "err", err)
				c.Header("Retry-After", "1")
				problem(c, http.StatusServiceUnavailable, "unavailable", "the screenshots' files could not be checked with the storage service; the upload was not accepted — retry")
				return
			}
			fields = append(fields, more...)
			total += len(more)
		}
		if total > 0 {
			detail := strconv.Itoa(total) + " invalid field(s) in the " + string(p) + " upload"
			if total > len(fields) {
				detail += "; the first " + strconv.Itoa(len(fields)) + " are listed"
			}
			problem(c, http.StatusBadRequest, "validation", detail, fields...)
			return
		}
		hash := uploads.Hash(canonical)
		idem, ferr := idempotencyKey(c, p, canonical, hash)
		if ferr != nil {
			problem(c, http.StatusBadRequest, "bad-idempotency-key", ferr.Message, *ferr)
			return
		}
		rc, err := a.uploads.Accept(c.Request.Context(), uploads.Upload{
			OrganizationID: key.OrganizationID, ProjectID: key.ProjectID, Product: p, KeyID: key.ID,
			IdempotencyKey: idem, Canonical: canonical, PayloadHash: hash,
		})
		if errors.Is(err, uploads.ErrConflict) {
			problem(c, http.StatusConflict, "idempotency-conflict", "this idempotency key ("+idem+") was used before with a different payload")
			return
		}
		if err != nil {
			a.log.Error("accepting upload", "product", p, "err", err)
			c.Header("Retry-After", "1")
			problem(c, http.StatusServiceUnavailable, "unavailable", "the upload could not be made durable; it was not accepted — retry")
			return
		}
		if rc.Replay {
			c.Header("Idempotent-Replayed", "true")
			// A replay answers where the upload is now, as GET
			// /sync/jobs/{id} does; when the jobs service cannot say, the
			// upload is at least queued.
			if job, err := rpc.Call[rpc.Job](c.Request.Context(), a.nc, rpc.JobsGetJob, rpc.GetRequest{Tenant: tenantOf(c), ID: rc.JobID}); err == nil {
				rc.Status = stateOf(job.Status)
			}
		}
		c.Header("Location", rc.StatusURL)
		if b, ok := rc.AppendJSON(bufs.answer[:0]); ok {
			bufs.answer = b
			c.Data(http.StatusAccepted, jsonType, b) // as answer writes it
			return
		}
		answer(c, http.StatusAccepted, rc)
	}
}

// jsonType is the Content-Type of answer's answers.
const jsonType = "application/json; charset=utf-8"

// uploadBuffer holds an upload's body, its canonical bytes and its
// answer, for the next upload to reuse: none outlives its request (the
// event published and the answer written are copies).
type uploadBuffer struct {
	body      bytes.Buffer
	canonical []byte
	answer    []byte
}

var uploadBuffers = sync.Pool{New: func() any { return new(uploadBuffer) }}

// keptBuffer bounds the buffers kept for reuse: a large upload's go.
const keptBuffer = 1 << 20

func (b *uploadBuffer) put() {
	if b.body.Cap() > keptBuffer || cap(b.canonical) > keptBuffer {
		return
	}
	b.body.Reset()
	b.canonical = b.canonical[:0]
	uploadBuffers.Put(b)
}

// screenshotFiles checks the Guardian screenshots that are storage file ids
// rather than http(s) URLs: each must name a file of the uploader's project
// whose bytes are uploaded. It returns the screenshots that do not, or an
// error when the storage service cannot say.
func (a *API) screenshotFiles(ctx context.Context, key tenancy.Key, body []byte, bad map[string]bool) ([]rpc.FieldError, error) {
	var v struct {
		Screenshots []json.RawMessage `json:"screenshots"`
	}
	if json.Unmarshal(body, &v) != nil {
		return nil, nil // the schema names what is wrong
	}
	var out []rpc.FieldError
	for i, raw := range v.Screenshots {
		field := "screenshots[" + strconv.Itoa(i) + "]"
		var id string
		if bad[field] || json.Unmarshal(raw, &id) != nil || strings.HasPrefix(id, "http://") || strings.HasPrefix(id, "https://") {
			continue
		}
		f, err := rpc.Call[rpc.File](ctx, a.nc, rpc.StorageGetFile, rpc.FileRequest{
			Caller: rpc.Caller{Tenant: rpc.Tenant{OrganizationID: key.OrganizationID, ProjectID: key.ProjectID}, KeyID: key.ID}, FileID: id,
		})
		switch st := rpc.StatusOf(err); {
		case st == http.StatusNotFound || st == http.StatusForbidden || st == http.StatusBadRequest || st == http.StatusGone:
			out = append(out, rpc.FieldError{Field: field, Message: "is neither an http(s) URL nor a file of this project (" + id + ")"})
		case err != nil:
			return nil, err
		case f.OrganizationID != key.OrganizationID || f.ProjectID != key.ProjectID:
			out = append(out, rpc.FieldError{Field: field, Message: "is neither an http(s) URL nor a file of this project (" + id + ")"})
		case f.Status != rpc.FileUploaded:
			out = append(out, rpc.FieldError{Field: field, Message: "names file " + id + " whose bytes are not uploaded (" + strings.ToLower(f.Status) + ")"})
		}
	}
	return out, nil
}

// idempotencyKey is the natural key of Autopilot and Guardian uploads, and for
// Insight the Idempotency-Key header or, without one, the payload's hash.
func idempotencyKey(c *gin.Context, p events.Product, canonical []byte, hash string) (string, *rpc.FieldError) {
	switch p {
	case events.Autopilot:
		var v struct {
			RunID string `json:"runId"`
		}
		_ = json.Unmarshal(canonical, &v)
		return "runId:" + v.RunID, nil
	case events.Guardian:
		var v struct {
			TestRunID string `json:"testRunId"`
		}
		_ = json.Unmarshal(canonical, &v)
		return "testRunId:" + v.TestRunID, nil
	}
	h := strings.TrimSpace(c.GetHeader("Idempotency-Key"))
	if h == "" {
		return "sha256:" + hash, nil
	}
	if len(h) > 255 || strings.ContainsFunc(h, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		return "", &rpc.FieldError{Field: "Idempotency-Key", Message: "must be 1-255 visible ASCII characters"}
	}
	return "key:" + h, nil
}

// page reads limit (1-100, default 20) and offset (≥ 0) and the time range.
func page(c *gin.Context, req *rpc.ListResultsRequest) []rpc.FieldError {
	var fields []rpc.FieldError
	req.Limit, req.Offset = 20, 0
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			fields = append(fields, rpc.FieldError{Field: "limit", Message: "must be an integer from 1 to 100"})
		} else {
			req.Limit = n
		}
	}
	if v := c.Query("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			fields = append(fields, rpc.FieldError{Field: "offset", Message: "must be a non-negative integer"})
		} else {
			req.Offset = n
		}
	}
	for _, name := range []string{"from", "to"} {
		v := c.Query(name)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			fields = append(fields, rpc.FieldError{Field: name, Message: "must be an RFC 3339 time such as 2026-01-02T15:04:05Z"})
			continue
		}
		if name == "from" {
			req.From = &t
		} else {
			req.To = &t
		}
	}
	return fields
}

func boolQuery(c *gin.Context, name string, fields *[]rpc.FieldError) *bool {
	v := c.Query(name)
	if v == "" {
		return nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		*fields = append(*fields, rpc.FieldError{Field: name, Message: "must be true or false"})
		return nil
	}
	return &b
}

func (a *API) list(p events.Product) gin.HandlerFunc {
	return func(c *gin.Context) {
		req := rpc.ListResultsRequest{Tenant: tenantOf(c), Product: string(p)}
		fields := page(c, &req)
		switch p {
		case events.Autopilot:
			req.Success = boolQuery(c, "success", &fields)
		case events.Guardian:
			req.Passed = boolQuery(c, "passed", &fields)
			if env := c.Query("environment"); env != "" {
				ok := false
				for _, e := range events.GuardianEnvironments {
					ok = ok || e == env
				}
				if !ok {
					fields = append(fields, rpc.FieldError{Field: "environment", Message: "must be development, staging or production"})
				}
				req.Environment = env
			}
		}
		if len(fields) > 0 {
			problem(c, http.StatusBadRequest, "bad-query", "invalid query parameter(s)", fields...)
			return
		}
		// The summary is asked for beside the page; the page (50 results
		// of up to ~10 KB) is passed on as the jobs service wrote it
		// (rpc.ListResultsResponse), with the summary added.
		summary := make(chan any, 1)
		go func() { summary <- a.summary(c, p) }()
		page, err := rpc.CallRaw(c.Request.Context(), a.nc, rpc.JobsListResults, req)
		sum, _ := json.Marshal(<-summary)
		if err != nil {
			a.fail(c, err)
			return
		}
		if len(page) < 2 || page[len(page)-1] != '}' {
			a.fail(c, fmt.Errorf("listing %s results: the answer is not an object", p))
			return
		}
		out := make([]byte, 0, len(page)+len(sum)+16)
		out = append(append(append(out, page[:len(page)-1]...), `,"summary":`...), sum...)
		c.Data(http.StatusOK, "application/json; charset=utf-8", append(out, '}'))
	}
}

func (a *API) get(p events.Product) gin.HandlerFunc {
	return func(c *gin.Context) {
		resp, err := rpc.Call[json.RawMessage](c.Request.Context(), a.nc, rpc.JobsGetResult, rpc.GetRequest{Tenant: tenantOf(c), Product: string(p), ID: c.Param("id")})
		if err != nil {
			a.fail(c, err)
			return
		}
		c.Data(http.StatusOK, "application/json", resp)
	}
}

// Receipt states.
const (
	StateQueued     = "queued"
	StateProcessing = "processing"
	StateStored     = "stored"
	StateFailed     = "failed"
)

// receipt says where an upload (or any job) is: queued, processing, stored or failed.
func (a *API) receipt(c *gin.Context) {
	id, t := c.Param("id"), tenantOf(c)
	job, err := rpc.Call[rpc.Job](c.Request.Context(), a.nc, rpc.JobsGetJob, rpc.GetRequest{Tenant: t, ID: id})
	if rpc.StatusOf(err) == http.StatusNotFound {
		rec, lerr := a.uploads.Lookup(c.Request.Context(), t.OrganizationID, t.ProjectID, id)
		if lerr == nil && rec.OrganizationID == t.OrganizationID && rec.ProjectID == t.ProjectID {
			answer(c, http.StatusOK, gin.H{"id": id, "jobId": id, "state": StateQueued, "status": jobs.Waiting, "product": rec.Product, "receivedAt": rec.ReceivedAt})
			return
		}
	}
	if err != nil {
		a.fail(c, err)
		return
	}
	out := gin.H{"id": id, "jobId": job.ID, "state": stateOf(job.Status), "status": job.Status, "job": job}
	if job.Error != "" {
		out["reason"] = job.Error
	}
	if job.ResultID != "" {
		if p := productOfJob(job.Type); p != "" {
			out["resultUrl"] = "/api/v1/sync/" + p + "/" + job.ResultID
		}
	}
	answer(c, http.StatusOK, out)
}

// stateOf is the receipt state of a job status.
func stateOf(status string) string {
	switch status {
	case jobs.Active:
		return StateProcessing
	case jobs.Completed:
		return StateStored
	case jobs.Failed, jobs.Cancelled:
		return StateFailed
	}
	return StateQueued
}

func productOfJob(t string) string {
	p, _ := jobs.ProductOf(t)
	return string(p)
}

func (a *API) alerts(c *gin.Context) {
	req := rpc.ListResultsRequest{Tenant: tenantOf(c)}
	if fields := page(c, &req); len(fields) > 0 {
		problem(c, http.StatusBadRequest, "bad-query", "invalid query parameter(s)", fields...)
		return
	}
	resp, err := rpc.Call[json.RawMessage](c.Request.Context(), a.nc, rpc.JobsListAlerts, req)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.Data(http.StatusOK, "application/json", resp)
}
