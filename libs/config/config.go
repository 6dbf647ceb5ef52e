// Package config reads settings from the environment. A Reader collects every
// bad value, so a service that fails to start names all of them at once, by
// variable.
//
//	r := config.NewReader(os.Getenv)
//	addr := r.String("HTTP_ADDR", "127.0.0.1:8080")
//	workers := r.Int("JOBS_WORKERS", 8)
//	if err := r.Err(); err != nil { ... }
package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Reader reads typed values through getenv, with defaults.
type Reader struct {
	getenv func(string) string
	errs   []error
}

// NewReader returns a Reader over getenv (os.Getenv in a main, a map in tests).
func NewReader(getenv func(string) string) *Reader { return &Reader{getenv: getenv} }

func (r *Reader) fail(name, val, why string) {
	r.errs = append(r.errs, fmt.Errorf("%s=%q: %s", name, val, why))
}

// String returns the variable, or def when it is unset or empty.
func (r *Reader) String(name, def string) string {
	if v := strings.TrimSpace(r.getenv(name)); v != "" {
		return v
	}
	return def
}

// Int returns the variable as an integer.
func (r *Reader) Int(name string, def int) int {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		r.fail(name, v, "not an integer")
		return def
	}
	return n
}

// Int64 returns the variable as a 64-bit integer.
func (r *Reader) Int64(name string, def int64) int64 {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		r.fail(name, v, "not an integer")
		return def
	}
	return n
}

// Bool returns the variable as a boolean (true/false/1/0).
func (r *Reader) Bool(name string, def bool) bool {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.fail(name, v, "not a boolean")
		return def
	}
	return b
}

// Duration returns the variable as a Go duration ("2s", "5m").
func (r *Reader) Duration(name string, def time.Duration) time.Duration {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		r.fail(name, v, "not a non-negative duration such as 2s or 5m")
		return def
	}
	return d
}

// Durations returns a comma-separated list of durations ("2s,4s,8s").
func (r *Reader) Durations(name string, def []time.Duration) []time.Duration {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	var out []time.Duration
	for _, p := range strings.Split(v, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(p))
		if err != nil || d <= 0 {
			r.fail(name, v, "not a comma-separated list of positive durations such as 2s,4s,8s")
			return def
		}
		out = append(out, d)
	}
	return out
}

// OneOf returns the variable if it is one of allowed.
func (r *Reader) OneOf(name, def string, allowed ...string) string {
	v := r.String(name, def)
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	r.fail(name, v, "must be one of "+strings.Join(allowed, ", "))
	return def
}

// Require records an error when v is empty.
func (r *Reader) Require(name, v string) {
	if v == "" {
		r.errs = append(r.errs, fmt.Errorf("%s: required", name))
	}
}

// Invalid records that the variable name is set to something unusable.
func (r *Reader) Invalid(name, why string) {
	r.errs = append(r.errs, fmt.Errorf("%s: %s", name, why))
}

// Err returns every bad value met so far, or nil.
func (r *Reader) Err() error {
	if len(r.errs) == 0 {
		return nil
	}
	return fmt.Errorf("configuration: %w", errors.Join(r.errs...))
}

// Mask shows a secret's length and nothing of its value, for logging.
func Mask(secret string) string {
	if secret == "" {
		return ""
	}
	return fmt.Sprintf("***(%d chars)", len(secret))
}
