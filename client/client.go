package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Config is how to reach a server and whom to act for.
type Config struct {
	// BaseURL is the server, such as https://sync.example.com (ODAVL_CLOUD_API).
	BaseURL string
	// APIKey is sent as a bearer token (ODAVL_API_KEY).
	APIKey string
	// OrganizationID and ProjectID are the key's tenant (ODAVL_ORGANIZATION_ID, ODAVL_PROJECT_ID).
	OrganizationID string
	ProjectID      string

	// HTTPClient sends the requests; default a client without an overall
	// timeout (Timeout bounds each attempt instead).
	HTTPClient *http.Client
	// Timeout bounds one attempt of an API request; default 30s.
	Timeout time.Duration
	// TransferTimeout bounds one attempt of a file (or part) transfer; default 10m.
	TransferTimeout time.Duration
	// Retry is the retry policy; the zero value is DefaultRetryPolicy.
	Retry RetryPolicy
	// Clock is what retries and polls wait on; default the system clock.
	Clock Clock
	// OnRetry, when set, is told of each retry before its wait.
	OnRetry func(RetryNotice)
	// UserAgent is sent with every request.
	UserAgent string
}

// RetryNotice describes a retry about to happen.
type RetryNotice struct {
	Method  string
	URL     string
	Attempt int // the attempt that failed, from 1
	Wait    time.Duration
	Err     error
}

// Missing names the settings cfg lacks, by their environment variable.
func (cfg Config) Missing() []string {
	var m []string
	for _, s := range []struct{ name, v string }{
		{"ODAVL_CLOUD_API", cfg.BaseURL}, {"ODAVL_API_KEY", cfg.APIKey},
		{"ODAVL_ORGANIZATION_ID", cfg.OrganizationID}, {"ODAVL_PROJECT_ID", cfg.ProjectID},
	} {
		if strings.TrimSpace(s.v) == "" {
			m = append(m, s.name)
		}
	}
	return m
}

// ErrConfig is wrapped by the errors of New.
var ErrConfig = errors.New("client configuration")

// Client talks to one server for one tenant. It is safe for concurrent use.
type Client struct {
	cfg  Config
	base *url.URL
	hc   *http.Client
}

// New checks cfg and returns its client. A missing setting is named in the
// error by its environment variable.
func New(cfg Config) (*Client, error) {
	if m := cfg.Missing(); len(m) > 0 {
		return nil, fmt.Errorf("%w: missing %s", ErrConfig, strings.Join(m, ", "))
	}
	u, err := url.Parse(strings.TrimRight(strings.TrimSpace(cfg.BaseURL), "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: ODAVL_CLOUD_API %q is not an http(s) URL", ErrConfig, cfg.BaseURL)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.TransferTimeout <= 0 {
		cfg.TransferTimeout = 10 * time.Minute
	}
	cfg.Retry = cfg.Retry.withDefaults()
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "odavl-sync-go-client"
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{cfg: cfg, base: u, hc: hc}, nil
}

// Config is the client's configuration, defaults filled in.
func (c *Client) Config() Config { return c.cfg }

// request is one API call.
type request struct {
	method string
	path   string // below the base URL, or an absolute URL
	query  url.Values
	// body makes a fresh body for each attempt (nil: none).
	body        func() (io.Reader, error)
	size        int64 // ContentLength when body is set; -1 unknown
	contentType string
	header      http.Header
	// auth sends the key and tenant headers (not to signed URLs).
	auth     bool
	timeout  time.Duration
	retry    *RetryPolicy
	onAnswer func(*http.Response) // sees the answer's headers before the body is read
}

func jsonBody(v any) (func() (io.Reader, error), int64, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, 0, fmt.Errorf("encoding request: %w", err)
	}
	return func() (io.Reader, error) { return bytes.NewReader(b), nil }, int64(len(b)), nil
}

func (c *Client) url(path string, q url.Values) string {
	if strings.HasPrefix(path, "http://") || strings.HasPrefix(path, "https://") {
		return path
	}
	u := *c.base
	if i := strings.IndexByte(path, '?'); i >= 0 {
		u.RawQuery = path[i+1:]
		path = path[:i]
	}
	u.Path = strings.TrimRight(u.Path, "/") + path
	if len(q) > 0 {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// do sends r, retrying transient failures, and decodes a 2xx JSON answer into
// out (nil: discarded; a *[]byte takes the body as it is). It returns the final answer's headers.
func (c *Client) do(ctx context.Context, r request, out any) (http.Header, error) {
	policy := c.cfg.Retry
	if r.retry != nil {
		policy = r.retry.withDefaults()
	}
	target := c.url(r.path, r.query)
	for attempt := 1; ; attempt++ {
		hdr, body, err := c.once(ctx, r, target)
		if err == nil {
			if raw, ok := out.(*[]byte); ok {
				*raw = body
				return hdr, nil
			}
			if out != nil && len(body) > 0 {
				if err := json.Unmarshal(body, out); err != nil {
					return hdr, fmt.Errorf("%s %s: decoding answer: %w", r.method, target, err)
				}
			}
			return hdr, nil
		}
		if ctx.Err() != nil {
			return hdr, err
		}
		wait, again := policy.delay(attempt, err)
		if !again {
			return hdr, err
		}
		if attempt >= policy.MaxAttempts {
			return hdr, &RetriesExhausted{Attempts: attempt, Err: err}
		}
		if c.cfg.OnRetry != nil {
			c.cfg.OnRetry(RetryNotice{Method: r.method, URL: target, Attempt: attempt, Wait: wait, Err: err})
		}
		if serr := c.cfg.Clock.Sleep(ctx, wait); serr != nil {
			return hdr, err
		}
	}
}

// once makes one attempt.
func (c *Client) once(ctx context.Context, r request, target string) (http.Header, []byte, error) {
	timeout := r.timeout
	if timeout <= 0 {
		timeout = c.cfg.Timeout
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var body io.Reader
	if r.body != nil {
		b, err := r.body()
		if err != nil {
			return nil, nil, err
		}
		body = b
	}
	req, err := http.NewRequestWithContext(actx, r.method, target, body)
	if err != nil {
		return nil, nil, err
	}
	if r.body != nil && r.size >= 0 {
		req.ContentLength = r.size
		if r.size == 0 {
			req.Body = http.NoBody
		}
	}
	for k, vs := range r.header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	if r.auth {
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Authorization", "Bearer "+c.cfg.APIKey)
		req.Header.Set("X-Organization-Id", c.cfg.OrganizationID)
		req.Header.Set("X-Project-Id", c.cfg.ProjectID)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the method and URL are said once
		}
		return nil, nil, &TransportError{Method: r.method, URL: target, Err: err}
	}
	defer resp.Body.Close()
	if r.onAnswer != nil {
		r.onAnswer(resp)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		if ctx.Err() != nil {
			return resp.Header, nil, ctx.Err()
		}
		return resp.Header, nil, &TransportError{Method: r.method, URL: target, Err: fmt.Errorf("reading answer: %w", err)}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.Header, b, decodeError(r.method, target, resp, b, c.cfg.Clock.Now())
	}
	return resp.Header, b, nil
}

// getJSON is an authenticated GET.
func (c *Client) getJSON(ctx context.Context, path string, q url.Values, out any) error {
	_, err := c.do(ctx, request{method: http.MethodGet, path: path, query: q, auth: true}, out)
	return err
}

// postJSON is an authenticated POST of v as JSON.
func (c *Client) postJSON(ctx context.Context, path string, v, out any) error {
	body, size, err := jsonBody(v)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, request{method: http.MethodPost, path: path, body: body, size: size, contentType: "application/json", auth: true}, out)
	return err
}
