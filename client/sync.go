package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Product is one of the ODAVL tools whose results the server keeps.
type Product string

// The products.
const (
	Insight   Product = "insight"
	Autopilot Product = "autopilot"
	Guardian  Product = "guardian"
)

// Products are the products in the order of the docs.
var Products = []Product{Insight, Autopilot, Guardian}

// ParseProduct reads a product name.
func ParseProduct(s string) (Product, error) {
	for _, p := range Products {
		if string(p) == s {
			return p, nil
		}
	}
	return "", fmt.Errorf("unknown product %q: want insight, autopilot or guardian", s)
}

// Receipt is the answer to an accepted upload (202).
type Receipt struct {
	EventID    string    `json:"eventId"`
	JobID      string    `json:"jobId"`
	UploadID   string    `json:"uploadId"`
	Status     string    `json:"status"`
	StatusURL  string    `json:"statusUrl"`
	ReceivedAt time.Time `json:"receivedAt"`
	// Replay is true when the server had accepted this upload before (the
	// same idempotency key and payload): nothing was stored twice.
	Replay bool `json:"replay"`
	// IdempotencyKey is the key the upload was sent with.
	IdempotencyKey string `json:"idempotencyKey"`
}

// IdempotencyKey is the key an upload of p is sent with, so a retry is the
// same key: "runId:<runId>" for Autopilot, "testRunId:<testRunId>" for
// Guardian (the keys the server uses), and for Insight the hex SHA-256 of the
// canonical JSON of the body (sorted keys, no spaces, numbers as written).
func IdempotencyKey(p Product, body []byte) (string, error) {
	switch p {
	case Autopilot, Guardian:
		var v struct {
			RunID     string `json:"runId"`
			TestRunID string `json:"testRunId"`
		}
		if err := json.Unmarshal(body, &v); err != nil {
			return "", fmt.Errorf("reading the %s upload: %w", p, err)
		}
		if p == Autopilot {
			if v.RunID == "" {
				return "", &Error{Status: http.StatusBadRequest, Title: "Bad Request", Detail: "the autopilot upload has no runId", Fields: []FieldError{{Field: "runId", Message: "is required"}}}
			}
			return "runId:" + v.RunID, nil
		}
		if v.TestRunID == "" {
			return "", &Error{Status: http.StatusBadRequest, Title: "Bad Request", Detail: "the guardian upload has no testRunId", Fields: []FieldError{{Field: "testRunId", Message: "is required"}}}
		}
		return "testRunId:" + v.TestRunID, nil
	}
	c, err := CanonicalJSON(body)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(c)
	return hex.EncodeToString(sum[:]), nil
}

// CanonicalJSON re-encodes a JSON document with sorted keys and no spaces,
// keeping numbers as written, as the server does before hashing.
func CanonicalJSON(b []byte) ([]byte, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("not valid JSON: data after the document")
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(out.Bytes(), "\n"), nil
}

// PushOptions adjust one upload.
type PushOptions struct {
	// IdempotencyKey overrides the computed key (Insight only; the server
	// keys Autopilot and Guardian uploads by runId and testRunId).
	IdempotencyKey string
	// Retry overrides the client's retry policy for this upload.
	Retry *RetryPolicy
}

// Push uploads a result document of p (JSON, sent as is) with its
// idempotency key. A retried or repeated push of the same document answers
// the first receipt with Replay set.
func (c *Client) Push(ctx context.Context, p Product, body []byte, opts PushOptions) (*Receipt, error) {
	if _, err := ParseProduct(string(p)); err != nil {
		return nil, err
	}
	key := opts.IdempotencyKey
	if key == "" {
		k, err := IdempotencyKey(p, body)
		if err != nil {
			return nil, err
		}
		key = k
	}
	var rc Receipt
	replayed := false
	_, err := c.do(ctx, request{
		method: http.MethodPost, path: "/api/v1/sync/" + string(p),
		body: func() (io.Reader, error) { return bytes.NewReader(body), nil },
		size: int64(len(body)), contentType: "application/json",
		header: http.Header{"Idempotency-Key": {key}}, auth: true, retry: opts.Retry,
		onAnswer: func(r *http.Response) { replayed = r.Header.Get("Idempotent-Replayed") == "true" },
	}, &rc)
	if err != nil {
		return nil, err
	}
	rc.Replay = rc.Replay || replayed
	rc.IdempotencyKey = key
	return &rc, nil
}

// PushInsight uploads an Insight analysis.
func (c *Client) PushInsight(ctx context.Context, r InsightResult) (*Receipt, error) {
	return c.pushValue(ctx, Insight, r)
}

// PushAutopilot uploads an Autopilot ledger.
func (c *Client) PushAutopilot(ctx context.Context, l AutopilotLedger) (*Receipt, error) {
	return c.pushValue(ctx, Autopilot, l)
}

// PushGuardian uploads a Guardian test run.
func (c *Client) PushGuardian(ctx context.Context, g GuardianRun) (*Receipt, error) {
	return c.pushValue(ctx, Guardian, g)
}

func (c *Client) pushValue(ctx context.Context, p Product, v any) (*Receipt, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding the %s upload: %w", p, err)
	}
	return c.Push(ctx, p, b, PushOptions{})
}

// ListOptions filter and page a list of results.
type ListOptions struct {
	Limit  int // 1-100, server default 20
	Offset int
	From   time.Time // zero: no bound
	To     time.Time
	// Success filters Autopilot ledgers.
	Success *bool
	// Passed and Environment filter Guardian runs.
	Passed      *bool
	Environment string
}

func (o ListOptions) query() url.Values {
	q := url.Values{}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Offset > 0 {
		q.Set("offset", strconv.Itoa(o.Offset))
	}
	if !o.From.IsZero() {
		q.Set("from", o.From.UTC().Format(time.RFC3339))
	}
	if !o.To.IsZero() {
		q.Set("to", o.To.UTC().Format(time.RFC3339))
	}
	if o.Success != nil {
		q.Set("success", strconv.FormatBool(*o.Success))
	}
	if o.Passed != nil {
		q.Set("passed", strconv.FormatBool(*o.Passed))
	}
	if o.Environment != "" {
		q.Set("environment", o.Environment)
	}
	return q
}

// ResultList is a page of results, newest first, with the product's summary.
type ResultList struct {
	Items   []json.RawMessage `json:"items"`
	Total   int64             `json:"total"`
	Limit   int               `json:"limit"`
	Offset  int               `json:"offset"`
	Summary json.RawMessage   `json:"summary,omitempty"`
}

// List returns a page of the project's results of p.
func (c *Client) List(ctx context.Context, p Product, o ListOptions) (*ResultList, error) {
	var l ResultList
	if err := c.getJSON(ctx, "/api/v1/sync/"+string(p), o.query(), &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// Get returns one stored result of p by its id (the upload's event id).
func (c *Client) Get(ctx context.Context, p Product, id string) (json.RawMessage, error) {
	var raw json.RawMessage
	if err := c.getJSON(ctx, "/api/v1/sync/"+string(p)+"/"+url.PathEscape(id), nil, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// Upload states, as the receipt route reports them.
const (
	StateQueued     = "queued"
	StateProcessing = "processing"
	StateStored     = "stored"
	StateFailed     = "failed"
)

// UploadStatus says where an upload (or any job) is.
type UploadStatus struct {
	ID    string `json:"id"`
	JobID string `json:"jobId"`
	// State is queued, processing, stored or failed.
	State string `json:"state"`
	// Status is the job status (WAITING, ACTIVE, COMPLETED, FAILED, …).
	Status     string     `json:"status"`
	Reason     string     `json:"reason,omitempty"`
	ResultURL  string     `json:"resultUrl,omitempty"`
	Product    string     `json:"product,omitempty"`
	ReceivedAt *time.Time `json:"receivedAt,omitempty"`
	Job        *Job       `json:"job,omitempty"`
}

// Done reports whether the upload reached stored or failed.
func (s *UploadStatus) Done() bool { return s.State == StateStored || s.State == StateFailed }

// Status returns where the upload or job id is.
func (c *Client) Status(ctx context.Context, id string) (*UploadStatus, error) {
	var s UploadStatus
	if err := c.getJSON(ctx, "/api/v1/sync/jobs/"+url.PathEscape(id), nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// WaitOptions say how Wait polls.
type WaitOptions struct {
	// Interval is the first wait between polls (default 250ms); it grows by
	// half each poll up to MaxInterval (default 5s).
	Interval    time.Duration
	MaxInterval time.Duration
	// OnPoll, when set, sees every answer.
	OnPoll func(*UploadStatus)
}

// Wait polls the status of id until it is stored or failed, or ctx ends.
// A failed upload is returned with a nil error: look at State.
func (c *Client) Wait(ctx context.Context, id string, o WaitOptions) (*UploadStatus, error) {
	if o.Interval <= 0 {
		o.Interval = 250 * time.Millisecond
	}
	if o.MaxInterval <= 0 {
		o.MaxInterval = 5 * time.Second
	}
	wait := o.Interval
	for {
		s, err := c.Status(ctx, id)
		if err != nil {
			return nil, err
		}
		if o.OnPoll != nil {
			o.OnPoll(s)
		}
		if s.Done() {
			return s, nil
		}
		if err := c.cfg.Clock.Sleep(ctx, wait); err != nil {
			return s, fmt.Errorf("waiting for %s (last state %s): %w", id, s.State, err)
		}
		wait = min(wait+wait/2, o.MaxInterval)
	}
}

// ErrOtherTenant is wrapped by FillTenant's error for a document that names
// another organization or project than the client's.
var ErrOtherTenant = errors.New("the document names another tenant")

// FillTenant sets organizationId and projectId of a result document that
// lacks them (absent or empty) to org and project. A document that names
// another organization or project is an ErrOtherTenant error: the server
// would refuse it. A document that is not a JSON object is returned as it is
// (the server says what is wrong with it).
func FillTenant(body []byte, org, project string) ([]byte, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil || doc == nil {
		return body, nil
	}
	changed := false
	for _, f := range []struct{ field, want string }{{"organizationId", org}, {"projectId", project}} {
		raw, ok := doc[f.field]
		var have string
		if ok && string(raw) != "null" {
			if err := json.Unmarshal(raw, &have); err != nil {
				return body, nil // not a string: the server's validation says so
			}
		}
		switch {
		case have == "":
			doc[f.field], _ = json.Marshal(f.want)
			changed = true
		case have != f.want:
			return nil, fmt.Errorf("%w: its %s is %q, the client's is %q", ErrOtherTenant, f.field, have, f.want)
		}
	}
	if !changed {
		return body, nil
	}
	return json.Marshal(doc)
}
