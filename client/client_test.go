package client

import (
	"errors"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"3", 3 * time.Second}, {"0", 0}, {"-4", 0}, {"soon", 0},
		{"Sun, 01 Mar 2026 12:00:30 GMT", 30 * time.Second},
		{"Sun, 01 Mar 2026 11:59:00 GMT", 0},
	} {
		if got := ParseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestRetryDelays(t *testing.T) {
	t.Parallel()
	p := DefaultRetryPolicy()
	p.Jitter = func(d time.Duration) time.Duration { return d }
	for n, want := range map[int]time.Duration{1: 500 * time.Millisecond, 2: time.Second, 3: 2 * time.Second, 8: 30 * time.Second} {
		if d, ok := p.delay(n, &TransportError{Err: errors.New("refused")}); !ok || d != want {
			t.Errorf("retry %d: %v %v, want %v", n, d, ok, want)
		}
	}
	if d, ok := p.delay(1, &Error{Status: 429, RetryAfter: 9 * time.Second}); !ok || d != 9*time.Second {
		t.Errorf("429 Retry-After 9s: %v %v", d, ok)
	}
	if _, ok := p.delay(1, &Error{Status: 503, RetryAfter: time.Hour}); ok {
		t.Error("a Retry-After beyond MaxRetryAfter was waited")
	}
	for _, st := range []int{400, 401, 404, 409, 413, 415} {
		if _, ok := p.delay(1, &Error{Status: st}); ok {
			t.Errorf("%d retried", st)
		}
	}
	for range 100 {
		if d := EqualJitter(time.Second); d < 500*time.Millisecond || d > time.Second {
			t.Fatalf("EqualJitter(1s) = %v", d)
		}
	}
}

func TestIdempotencyKeyIgnoresFormatting(t *testing.T) {
	t.Parallel()
	a, err := IdempotencyKey(Insight, []byte(`{"b":1,"a":[1.50,"x"]}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := IdempotencyKey(Insight, []byte("{\n  \"a\": [1.50, \"x\"],\n  \"b\": 1\n}\n"))
	c, _ := IdempotencyKey(Insight, []byte(`{"b":1,"a":[1.5,"x"]}`))
	if a != b || a == c {
		t.Errorf("keys %s %s %s: want the first two equal, the third different (number as written)", a, b, c)
	}
	if k, _ := IdempotencyKey(Guardian, []byte(`{"testRunId":"tr-1"}`)); k != "testRunId:tr-1" {
		t.Errorf("guardian key %q", k)
	}
	if _, err := IdempotencyKey(Autopilot, []byte(`{}`)); !IsRejected(err) {
		t.Errorf("autopilot without runId: %v", err)
	}
}
