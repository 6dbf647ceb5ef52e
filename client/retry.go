package client

import (
	"context"
	"math/rand/v2"
	"time"
)

// Clock is what the client reads the time from and waits on. Tests pass
// their own to see every wait without sleeping.
type Clock interface {
	Now() time.Time
	// Sleep waits d or until ctx ends, whichever is first.
	Sleep(ctx context.Context, d time.Duration) error
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now is time.Now.
func (SystemClock) Now() time.Time { return time.Now() }

// Sleep waits d or until ctx ends.
func (SystemClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RetryPolicy says how often and how long a failing request is retried.
// Only transient failures are retried: no answer, 408, 429 and 5xx.
type RetryPolicy struct {
	// MaxAttempts counts the first try; 1 never retries. Default 5.
	MaxAttempts int
	// BaseDelay is the wait before the first retry; it doubles each time up
	// to MaxDelay. Defaults 500ms and 30s.
	BaseDelay time.Duration
	MaxDelay  time.Duration
	// MaxRetryAfter is the longest Retry-After the client waits; a longer one
	// ends the retries (the upload can be spooled instead). Default 2m.
	MaxRetryAfter time.Duration
	// Jitter spreads a backoff delay; default "equal jitter": a uniformly
	// random wait in [d/2, d].
	Jitter func(d time.Duration) time.Duration
}

// DefaultRetryPolicy is the policy of a zero RetryPolicy.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxAttempts: 5, BaseDelay: 500 * time.Millisecond, MaxDelay: 30 * time.Second, MaxRetryAfter: 2 * time.Minute, Jitter: EqualJitter}
}

// NoRetry tries once.
func NoRetry() RetryPolicy { p := DefaultRetryPolicy(); p.MaxAttempts = 1; return p }

// EqualJitter returns a uniformly random duration in [d/2, d].
func EqualJitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	def := DefaultRetryPolicy()
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = def.MaxAttempts
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = def.BaseDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = def.MaxDelay
	}
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = def.MaxRetryAfter
	}
	if p.Jitter == nil {
		p.Jitter = def.Jitter
	}
	return p
}

// Backoff is the wait before retry number n (1 for the first retry), before
// jitter: BaseDelay·2^(n-1), at most MaxDelay.
func (p RetryPolicy) Backoff(n int) time.Duration {
	p = p.withDefaults()
	d := p.BaseDelay
	for i := 1; i < n && d < p.MaxDelay; i++ {
		d *= 2
	}
	return min(d, p.MaxDelay)
}

// delay is the wait before retry n after err, and whether to retry at all.
// A Retry-After of the server is waited exactly, unless it is longer than
// MaxRetryAfter.
func (p RetryPolicy) delay(n int, err error) (time.Duration, bool) {
	if !IsTransient(err) {
		return 0, false
	}
	if ae, ok := err.(*Error); ok && ae.RetryAfter > 0 {
		if ae.RetryAfter > p.MaxRetryAfter {
			return 0, false
		}
		return ae.RetryAfter, true
	}
	return p.Jitter(p.Backoff(n)), true
}
