package httpapi

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"
)

// limiter keeps one token bucket per API key.
type limiter struct {
	mu      sync.Mutex
	rps     rate.Limit
	burst   int
	buckets map[string]*bucket
	last    time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

func newLimiter(rps float64, burst int) *limiter {
	return &limiter{rps: rate.Limit(rps), burst: burst, buckets: map[string]*bucket{}}
}

// reserve takes a token for key and returns how long the caller must wait
// when none is left (0: go on).
func (l *limiter) reserve(key string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.last) > time.Minute {
		// Forget keys idle for ten minutes so the map stays small.
		for k, b := range l.buckets {
			if now.Sub(b.seen) > 10*time.Minute {
				delete(l.buckets, k)
			}
		}
		l.last = now
	}
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{lim: rate.NewLimiter(l.rps, l.burst)}
		l.buckets[key] = b
	}
	b.seen = now
	r := b.lim.ReserveN(now, 1)
	d := r.DelayFrom(now)
	if d > 0 {
		r.CancelAt(now)
	}
	return d
}

// rateLimit answers 429 with Retry-After when a key exceeds its rate.
func (a *API) rateLimit(c *gin.Context) {
	if a.limits == nil {
		c.Next()
		return
	}
	if d := a.limits.reserve(keyOf(c).ID, time.Now()); d > 0 {
		secs := int(math.Ceil(d.Seconds()))
		c.Header("Retry-After", strconv.Itoa(max(secs, 1)))
		problem(c, http.StatusTooManyRequests, "rate-limited", "this API key sent more than "+strconv.FormatFloat(float64(a.limits.rps), 'f', -1, 64)+" requests per second; retry after "+strconv.Itoa(max(secs, 1))+" s")
		return
	}
	c.Next()
}

// Key lookups per client address: a client that sends keys the gateway
// does not remember (unknown ones, or its own after the cache's 15 s) is
// held to lookupRate per second with bursts of lookupBurst, before the
// store is asked. A known key costs one lookup per cache lifetime.
const (
	lookupRate  = 20
	lookupBurst = 40
)

// limitLookup answers 429 and reports false when the client's address has
// used up its key lookups.
func (a *API) limitLookup(c *gin.Context, token string) bool {
	if a.lookups == nil || a.tenants.Remembered(token) {
		return true
	}
	d := a.lookups.reserve(c.ClientIP(), time.Now())
	if d <= 0 {
		return true
	}
	secs := max(int(math.Ceil(d.Seconds())), 1)
	c.Header("Retry-After", strconv.Itoa(secs))
	problem(c, http.StatusTooManyRequests, "rate-limited", "too many API keys tried from this address; retry after "+strconv.Itoa(secs)+" s")
	return false
}
