// Package httpapi is the HTTP face of ODAVL Sync: authentication and tenancy,
// validation, problem+json answers, and the translation of every route into
// a JetStream publish or a NATS request to the service that owns the data.
package httpapi

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"golang.org/x/sync/semaphore"

	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/rpc"
	"github.com/odavl/sync/services/ingest/internal/schema"
	"github.com/odavl/sync/services/ingest/internal/tenancy"
	"github.com/odavl/sync/services/ingest/internal/uploads"
)

// Options configure the API.
type Options struct {
	// MaxBodyBytes bounds an upload body; larger ones are 413.
	MaxBodyBytes int64
	// Ready reports whether everything the API needs answers.
	Ready func(ctx context.Context) error
	// Healthy, when set, fails /healthz: the process cannot recover.
	Healthy func() error
	// Version is the build version /healthz reports ("ok ingest VERSION").
	Version string
	// MetricsOnAPI serves /metrics on the API's router too (New returns
	// its handler in any case, for a listener of its own).
	MetricsOnAPI bool
	// Registry holds the figures /metrics serves (nil: a registry of its own).
	Registry *prometheus.Registry
	// BodyTimeout bounds the reading of a request body (0: 10 s).
	BodyTimeout time.Duration
	// Extra mounts more handlers on the router (the local blob endpoint).
	Extra func(r *gin.Engine)
	// RateLimit is the sustained requests per second allowed per API key
	// (0: no limit); RateBurst the burst above it.
	RateLimit float64
	// TrustedProxies may name the client in X-Forwarded-For (none: the peer).
	TrustedProxies []string
	RateBurst      int
	// ImageOrigin, when set, is the one origin besides its own that the
	// dashboard's policy loads images from (the blob store's signed links).
	ImageOrigin string
	// Stopping is closed when the server begins to stop: long-lived
	// responses (the event stream) end then, so shutdown need not wait.
	Stopping <-chan struct{}
}

// API holds the handlers' dependencies.
type API struct {
	log       *slog.Logger
	nc        *nats.Conn
	tenants   *tenancy.Store
	uploads   *uploads.Uploads
	validator *schema.Validator
	opts      Options
	now       func() time.Time
	metrics   *metrics
	limits    *limiter
	// validating bounds the body bytes being validated at once: a hostile
	// body costs tens of times its size while it is decoded.
	validating *semaphore.Weighted
	// lookups limits, per client address, the authentications that read
	// the store (keys not remembered): random keys cannot flood it.
	lookups *limiter
}

// validatingBytes is how many body bytes are validated at once (at least
// one body of the largest size). Validation is CPU-bound, so this costs no
// throughput: 1,600 typical 10 KB uploads fit; a hostile 4 MB body of
// a million tiny items, which takes up to 40 times its size while it is
// decoded, waits for the few before it.
const validatingBytes = 16 << 20

// New returns the API's handler and its metrics' handler.
func New(log *slog.Logger, nc *nats.Conn, tenants *tenancy.Store, up *uploads.Uploads, v *schema.Validator, opts Options) (api, metrics http.Handler) {
	gin.SetMode(gin.ReleaseMode)
	a := &API{log: log, nc: nc, tenants: tenants, uploads: up, validator: v, opts: opts, now: time.Now, metrics: newMetrics(opts.Registry),
		validating: semaphore.NewWeighted(max(validatingBytes, opts.MaxBodyBytes))}
	if opts.RateLimit > 0 {
		a.limits = newLimiter(opts.RateLimit, max(opts.RateBurst, 1))
		a.lookups = newLimiter(lookupRate, lookupBurst)
	}
	r := gin.New()
	// The client address (the key lookups' limit) is the peer's unless a
	// trusted proxy names it: gin trusts every X-Forwarded-For by default.
	if err := r.SetTrustedProxies(opts.TrustedProxies); err != nil {
		log.Error("TRUSTED_PROXIES ignored", "err", err)
		_ = r.SetTrustedProxies(nil)
	}
	r.Use(a.recover, traceRequests(otel.Tracer(tracerName)), a.observe)
	r.HandleMethodNotAllowed = true
	r.NoRoute(func(c *gin.Context) {
		problem(c, http.StatusNotFound, "not-found", "no route "+c.Request.Method+" "+c.Request.URL.Path)
	})
	r.NoMethod(func(c *gin.Context) {
		problem(c, http.StatusMethodNotAllowed, "method-not-allowed", "method "+c.Request.Method+" is not allowed on "+c.Request.URL.Path)
	})

	r.GET("/healthz", a.healthz)
	r.GET("/readyz", a.readyz)
	metrics = promhttp.HandlerFor(a.metrics.reg, promhttp.HandlerOpts{})
	if opts.MetricsOnAPI {
		r.GET("/metrics", gin.WrapH(metrics))
	}
	r.GET("/api/v1/openapi.json", a.openapiHandler())
	r.GET("/api/v1/asyncapi.json", a.asyncapiHandler())
	r.GET("/public/files/:id", checkIDs, a.publicFile)
	if opts.Extra != nil {
		opts.Extra(r)
	}

	v1 := r.Group("/api/v1", checkIDs, a.authenticate, a.rateLimit)
	a.syncRoutes(v1)
	a.adminRoutes(v1.Group("/admin", requireAdmin))
	v1.GET("/projects", a.projects)
	a.storageRoutes(v1)
	a.jobRoutes(v1)
	a.statsRoutes(v1)
	a.dashboardRoutes(r, v1)
	return r, metrics
}

// checkIDs answers 400 for a path parameter that is no valid id: ids go on
// to NATS (keys, subjects) and the store only after this check.
func checkIDs(c *gin.Context) {
	var fields []rpc.FieldError
	for _, p := range c.Params {
		if !events.ValidID(p.Value) {
			fields = append(fields, rpc.FieldError{Field: p.Key, Message: events.IDRule})
		}
	}
	if len(fields) > 0 {
		problem(c, http.StatusBadRequest, "bad-id", "invalid path parameter(s)", fields...)
		return
	}
	c.Next()
}

func (a *API) healthz(c *gin.Context) {
	if a.opts.Healthy != nil {
		if err := a.opts.Healthy(); err != nil {
			c.String(http.StatusServiceUnavailable, "unhealthy: %v\n", err)
			return
		}
	}
	if a.opts.Version == "" {
		c.String(http.StatusOK, "ok\n")
		return
	}
	c.String(http.StatusOK, "ok ingest %s\n", a.opts.Version)
}

func (a *API) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 3*time.Second)
	defer cancel()
	if err := a.opts.Ready(ctx); err != nil {
		c.String(http.StatusServiceUnavailable, "not ready: %v\n", err)
		return
	}
	c.String(http.StatusOK, "ready\n")
}

func (a *API) recover(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r)
			}
			a.log.Error("handler panic", "path", c.Request.URL.Path, "panic", r)
			problem(c, http.StatusInternalServerError, "internal", "internal error")
		}
	}()
	c.Next()
}

type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "odavl_http_requests_total", Help: "HTTP requests by route and status.",
		}, []string{"method", "route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "odavl_http_request_seconds", Help: "HTTP request latency by route.", Buckets: prometheus.DefBuckets,
		}, []string{"method", "route"}),
	}
	m.reg.MustRegister(m.requests, m.latency, prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

func (a *API) observe(c *gin.Context) {
	start := time.Now()
	// No answer is to be sniffed into another type (a JSON error shown as
	// HTML, an uploaded file as a script).
	c.Header("X-Content-Type-Options", "nosniff")
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	a.metrics.requests.WithLabelValues(c.Request.Method, route, strconv.Itoa(c.Writer.Status())).Inc()
	a.metrics.latency.WithLabelValues(c.Request.Method, route).Observe(time.Since(start).Seconds())
	if c.Writer.Status() >= 500 {
		a.log.Warn("request", "method", c.Request.Method, "path", c.Request.URL.Path, "status", c.Writer.Status(), "took", time.Since(start))
	}
}

// readBody reads a JSON body within the size limit: another content type is
// 415, a larger body 413. It reports false when it has answered.
func (a *API) readBody(c *gin.Context) ([]byte, bool) {
	return a.readBodyInto(c, new(bytes.Buffer))
}

// readBodyInto is readBody reading into buf (empty, and reused).
func (a *API) readBodyInto(c *gin.Context, buf *bytes.Buffer) ([]byte, bool) {
	ct := c.ContentType()
	if ct != "application/json" {
		problem(c, http.StatusUnsupportedMediaType, "unsupported-media-type", "send the body as application/json, not "+strconv.Quote(ct))
		return nil, false
	}
	if c.Request.ContentLength > a.opts.MaxBodyBytes {
		problem(c, http.StatusRequestEntityTooLarge, "too-large", "the body is larger than "+strconv.FormatInt(a.opts.MaxBodyBytes, 10)+" bytes")
		return nil, false
	}
	// A body of known length is read into one buffer of its size (ReadAll
	// would grow it by doubling: twice the garbage for a large upload).
	if n := c.Request.ContentLength; n > 0 {
		buf.Grow(int(n) + bytes.MinRead)
	}
	// The body has BodyTimeout to arrive: one shorter than its
	// Content-Length would otherwise hold the request until the server's
	// read timeout, answered by nothing.
	timeout := cmp.Or(a.opts.BodyTimeout, 10*time.Second)
	rc := http.NewResponseController(c.Writer)
	_ = rc.SetReadDeadline(time.Now().Add(timeout))
	_, err := buf.ReadFrom(http.MaxBytesReader(c.Writer, c.Request.Body, a.opts.MaxBodyBytes))
	_ = rc.SetReadDeadline(time.Time{})
	b := buf.Bytes()
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			problem(c, http.StatusRequestEntityTooLarge, "too-large", "the body is larger than "+strconv.FormatInt(a.opts.MaxBodyBytes, 10)+" bytes")
			return nil, false
		}
		if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, io.ErrUnexpectedEOF) {
			c.Header("Connection", "close")
			problem(c, http.StatusBadRequest, "incomplete-body", fmt.Sprintf("the body did not arrive whole within %s: %d of the %d bytes of its Content-Length came", timeout, buf.Len(), c.Request.ContentLength))
			return nil, false
		}
		problem(c, http.StatusBadRequest, "bad-request", "reading the body: "+err.Error())
		return nil, false
	}
	return b, true
}
