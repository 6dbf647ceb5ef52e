package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// FieldError names one bad field of a request.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is an answer of the server that is not a success: its status and the
// RFC 9457 problem details it carried.
type Error struct {
	// Method and URL are the request's.
	Method string `json:"method"`
	URL    string `json:"url"`
	// Status is the HTTP status code.
	Status   int          `json:"status"`
	Type     string       `json:"type,omitempty"`
	Title    string       `json:"title,omitempty"`
	Detail   string       `json:"detail,omitempty"`
	Instance string       `json:"instance,omitempty"`
	Fields   []FieldError `json:"errors,omitempty"`
	// RetryAfter is the wait the server asked for (0: none asked).
	RetryAfter time.Duration `json:"retryAfter,omitempty"`
	// Body is the raw body when it was not problem+json.
	Body string `json:"body,omitempty"`
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %d %s", e.Method, e.URL, e.Status, http.StatusText(e.Status))
	switch {
	case e.Detail != "":
		b.WriteString(": " + e.Detail)
	case e.Body != "":
		b.WriteString(": " + e.Body)
	}
	for _, f := range e.Fields {
		fmt.Fprintf(&b, "; %s: %s", f.Field, f.Message)
	}
	return b.String()
}

// Temporary reports whether the same request may succeed later: 408, 429
// and every 5xx.
func (e *Error) Temporary() bool {
	return e.Status == http.StatusRequestTimeout || e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// Kind is the last segment of the problem type (validation, idempotency-conflict, …).
func (e *Error) Kind() string {
	if i := strings.LastIndexByte(e.Type, '/'); i >= 0 {
		return e.Type[i+1:]
	}
	return e.Type
}

// TransportError is a request that got no HTTP answer: the server was
// unreachable, the connection broke, or the attempt timed out.
type TransportError struct {
	Method string
	URL    string
	Err    error
}

func (e *TransportError) Error() string { return e.Method + " " + e.URL + ": " + e.Err.Error() }
func (e *TransportError) Unwrap() error { return e.Err }

// RetriesExhausted wraps the last error of a request that was retried until
// the policy gave up.
type RetriesExhausted struct {
	Attempts int
	Err      error
}

func (e *RetriesExhausted) Error() string {
	return fmt.Sprintf("gave up after %d attempt(s): %v", e.Attempts, e.Err)
}
func (e *RetriesExhausted) Unwrap() error { return e.Err }

// IsTransient reports whether err is a failure that may pass: no answer at
// all, or an answer of 408, 429 or 5xx. An upload that failed this way was not
// accepted and may be sent again later with the same idempotency key.
func IsTransient(err error) bool {
	var te *TransportError
	if errors.As(err, &te) {
		return true
	}
	var ae *Error
	return errors.As(err, &ae) && ae.Temporary()
}

// IsRejected reports whether the server refused the request for good: a 4xx
// other than 408 and 429. Sending it again unchanged gives the same answer.
func IsRejected(err error) bool {
	var ae *Error
	return errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 && !ae.Temporary()
}

// StatusOf is the HTTP status of err's answer, 0 when there was none.
func StatusOf(err error) int {
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// decodeError makes an *Error of a non-2xx answer.
func decodeError(method, url string, resp *http.Response, body []byte, now time.Time) *Error {
	e := &Error{Method: method, URL: url, Status: resp.StatusCode}
	var p struct {
		Type     string       `json:"type"`
		Title    string       `json:"title"`
		Detail   string       `json:"detail"`
		Instance string       `json:"instance"`
		Errors   []FieldError `json:"errors"`
	}
	if json.Unmarshal(body, &p) == nil && (p.Type != "" || p.Title != "" || p.Detail != "") {
		e.Type, e.Title, e.Detail, e.Instance, e.Fields = p.Type, p.Title, p.Detail, p.Instance, p.Errors
	} else {
		s := strings.TrimSpace(string(body))
		if len(s) > 512 {
			s = s[:512] + "…"
		}
		e.Body = s
	}
	e.RetryAfter = ParseRetryAfter(resp.Header.Get("Retry-After"), now)
	return e
}

// ParseRetryAfter reads a Retry-After value, in seconds or an HTTP date
// (taken relative to now). It returns 0 for an empty or unreadable value and
// for a date in the past.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		if n > int64(24*time.Hour/time.Second) {
			n = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(n) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	if d := t.Sub(now); d > 0 {
		return d
	}
	return 0
}
