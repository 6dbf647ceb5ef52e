// Package ingest is the gateway of ODAVL Sync, its only HTTP face: it
// authenticates API keys, enforces tenancy, validates uploads, publishes them
// to JetStream and answers 202 only once they are stored there, and turns
// every query and command into a NATS request to the service that owns it.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/odavl/sync/libs/config"
	"github.com/odavl/sync/libs/mongodb"
	"github.com/odavl/sync/services/ingest/internal/httpapi"
	"github.com/odavl/sync/services/ingest/internal/schema"
	"github.com/odavl/sync/services/ingest/internal/tenancy"
	"github.com/odavl/sync/services/ingest/internal/uploads"
)

// Config is the gateway's configuration.
type Config struct {
	// Addr is where the HTTP API listens (HTTP_ADDR).
	Addr string
	// MaxBodyBytes bounds an upload body (MAX_BODY_BYTES).
	MaxBodyBytes int64
	// IdempotencyTTL is how long an upload's key is remembered (IDEMPOTENCY_TTL).
	IdempotencyTTL time.Duration
	// StreamReplicas of the idempotency bucket (STREAM_REPLICAS).
	StreamReplicas int
	// ShutdownTimeout bounds the wait for in-flight requests at stop.
	ShutdownTimeout time.Duration
	// RateLimit is the sustained requests per second per API key (RATE_LIMIT_RPS, 0: none),
	// RateBurst the burst above it (RATE_LIMIT_BURST).
	RateLimit float64
	RateBurst int
	// TrustedProxies are the addresses (CIDRs or IPs, TRUSTED_PROXIES,
	// comma-separated) whose X-Forwarded-For names the client; by default
	// none, and the client is the connection's peer.
	TrustedProxies []string
	// KeyCacheTTL is how long an authenticated API key is remembered
	// (KEY_CACHE_TTL): a revocation takes effect within it. While the store
	// does not answer, known keys stay valid.
	KeyCacheTTL time.Duration
	// MetricsAddr is where /metrics listens (METRICS_ADDR): its own
	// listener, so the public port does not show the process's figures;
	// "api" serves it on the API port, "off" not at all.
	MetricsAddr string
	// BodyTimeout bounds the reading of an API request's body
	// (BODY_TIMEOUT): a body shorter than its Content-Length, or sent too
	// slowly, is a 400 then, not a request held open.
	BodyTimeout time.Duration
	// BlobOrigin is the origin (scheme://host[:port]) of the blob store's
	// signed download URLs (DASHBOARD_BLOB_ORIGIN): the dashboard's policy
	// allows images from it besides its own origin, so screenshots stored
	// on S3 or Azure show. serve fills it from the storage configuration.
	BlobOrigin string
	// BootstrapKey, when set (BOOTSTRAP_ADMIN_KEY, at least 32 characters),
	// is stored at start as an admin key of BootstrapOrganization /
	// BootstrapProject (BOOTSTRAP_ORGANIZATION_ID, BOOTSTRAP_PROJECT_ID): the
	// first key of a deployment that never ran `serve`.
	BootstrapKey          string
	BootstrapOrganization string
	BootstrapProject      string
}

// DefaultConfig is the configuration with every default.
func DefaultConfig() Config {
	return Config{Addr: "127.0.0.1:8080", MaxBodyBytes: 4 << 20, IdempotencyTTL: 30 * 24 * time.Hour, StreamReplicas: 1, ShutdownTimeout: 15 * time.Second, RateLimit: 200, RateBurst: 400, KeyCacheTTL: tenancy.CacheTTL,
		MetricsAddr: "127.0.0.1:9464", BodyTimeout: 10 * time.Second}
}

// ConfigFromEnv reads the configuration from the environment.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	d := DefaultConfig()
	r := config.NewReader(getenv)
	c := Config{
		Addr:            r.String("HTTP_ADDR", d.Addr),
		MaxBodyBytes:    r.Int64("MAX_BODY_BYTES", d.MaxBodyBytes),
		IdempotencyTTL:  r.Duration("IDEMPOTENCY_TTL", d.IdempotencyTTL),
		StreamReplicas:  r.Int("STREAM_REPLICAS", d.StreamReplicas),
		ShutdownTimeout: r.Duration("SHUTDOWN_TIMEOUT", d.ShutdownTimeout),
		RateLimit:       float64(r.Int("RATE_LIMIT_RPS", int(d.RateLimit))),
		RateBurst:       r.Int("RATE_LIMIT_BURST", d.RateBurst),
		TrustedProxies:  splitList(r.String("TRUSTED_PROXIES", "")),
		KeyCacheTTL:     r.Duration("KEY_CACHE_TTL", d.KeyCacheTTL),
		MetricsAddr:     r.String("METRICS_ADDR", d.MetricsAddr),
		BodyTimeout:     r.Duration("BODY_TIMEOUT", d.BodyTimeout),
		BlobOrigin:      r.String("DASHBOARD_BLOB_ORIGIN", ""),

		BootstrapKey:          r.String("BOOTSTRAP_ADMIN_KEY", ""),
		BootstrapOrganization: r.String("BOOTSTRAP_ORGANIZATION_ID", "local"),
		BootstrapProject:      r.String("BOOTSTRAP_PROJECT_ID", "default"),
	}
	if c.MaxBodyBytes <= 0 {
		// Zero or less would refuse every upload with 413.
		r.Invalid("MAX_BODY_BYTES", "must be a positive number of bytes")
	}
	if c.BlobOrigin != "" {
		o, err := Origin(c.BlobOrigin)
		if err != nil {
			r.Invalid("DASHBOARD_BLOB_ORIGIN", err.Error())
		}
		c.BlobOrigin = o
	}
	if c.BootstrapKey != "" && len(c.BootstrapKey) < 32 {
		r.Invalid("BOOTSTRAP_ADMIN_KEY", "must be at least 32 characters")
	}
	return c, r.Err()
}

// Origin is the origin of an http(s) URL, scheme://host[:port], as a
// Content-Security-Policy source allows exactly it: no wildcard, no path.
func Origin(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		strings.ContainsAny(u.Host, "*;, '") || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("must be an http(s) origin such as https://bucket.s3.eu-west-1.amazonaws.com (no wildcard, no path), not %q", raw)
	}
	return u.Scheme + "://" + strings.ToLower(u.Host), nil
}

// Options are the gateway's collaborators beyond its connections.
type Options struct {
	// Listener, when set, is used instead of listening on Config.Addr.
	Listener net.Listener
	// Ready adds checks to /readyz (the other services of the one process).
	Ready func(ctx context.Context) error
	// Healthy, when set, fails /healthz (the process cannot recover: a
	// lost connection).
	Healthy func() error
	// Version is the build version /healthz reports.
	Version string
	// Extra mounts more handlers (the local blob endpoint).
	Extra func(r *gin.Engine)
	// Registry, when set, is where /metrics reads its figures (serve shares
	// it with the other services of the one process).
	Registry *prometheus.Registry
}

// Service is a running gateway.
type Service struct {
	log     *slog.Logger
	nc      *nats.Conn
	js      jetstream.JetStream
	db      *mongo.Database
	cfg     Config
	opts    Options
	tenants *tenancy.Store
	ln      net.Listener
	ready   atomic.Bool
	handler http.Handler
	// metrics serves /metrics on metricsLn (nil: on the API port or off).
	metrics   http.Handler
	metricsLn net.Listener
	// stopping is closed as shutdown begins: event streams end then.
	stopping chan struct{}
}

// New prepares the gateway: it opens the uploads' stream and its indexes and binds its listener.
func New(ctx context.Context, log *slog.Logger, nc *nats.Conn, db *mongo.Database, cfg Config, opts Options) (*Service, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if err := mongodb.EnsureIndexes(ctx, db, tenancy.Indexes()); err != nil {
		return nil, err
	}
	up, err := uploads.Open(ctx, js, cfg.IdempotencyTTL)
	if err != nil {
		return nil, err
	}
	v, err := schema.New(time.Now)
	if err != nil {
		return nil, err
	}
	s := &Service{log: log, nc: nc, js: js, db: db, cfg: cfg, opts: opts, tenants: tenancy.New(db, cfg.KeyCacheTTL), stopping: make(chan struct{})}
	if cfg.BootstrapKey != "" {
		if err := s.tenants.EnsureKey(ctx, cfg.BootstrapKey, cfg.BootstrapOrganization, cfg.BootstrapProject, []string{tenancy.ScopeAdmin, tenancy.ScopeSync, tenancy.ScopeOperator}); err != nil {
			return nil, err
		}
		log.Info("bootstrap admin key ensured", "organizationId", cfg.BootstrapOrganization, "projectId", cfg.BootstrapProject, "key", config.Mask(cfg.BootstrapKey))
	}
	s.handler, s.metrics = httpapi.New(log, nc, s.tenants, up, v, httpapi.Options{
		MaxBodyBytes: cfg.MaxBodyBytes, Ready: s.check, Healthy: opts.Healthy, Version: opts.Version, Extra: opts.Extra, Stopping: s.stopping,
		RateLimit: cfg.RateLimit, RateBurst: cfg.RateBurst, TrustedProxies: cfg.TrustedProxies,
		MetricsOnAPI: cfg.MetricsAddr == "api", BodyTimeout: cfg.BodyTimeout, Registry: opts.Registry, ImageOrigin: cfg.BlobOrigin,
	})
	if a := cfg.MetricsAddr; a != "api" && a != "off" && a != "" {
		if s.metricsLn, err = net.Listen("tcp", a); err != nil {
			return nil, fmt.Errorf("METRICS_ADDR: listening on %s: %w", a, err)
		}
	}
	s.ln = opts.Listener
	if s.ln == nil {
		if s.ln, err = net.Listen("tcp", cfg.Addr); err != nil {
			return nil, fmt.Errorf("listening on %s: %w", cfg.Addr, err)
		}
	}
	return s, nil
}

// URL is the base URL the API answers on.
func (s *Service) URL() string { return "http://" + s.ln.Addr().String() }

// MetricsURL is where /metrics answers on its own listener ("" when it
// has none).
func (s *Service) MetricsURL() string {
	if s.metricsLn == nil {
		return ""
	}
	return "http://" + s.metricsLn.Addr().String() + "/metrics"
}

// Handler is the HTTP handler, for tests.
func (s *Service) Handler() http.Handler { return s.handler }

// Ready reports whether the gateway serves.
func (s *Service) Ready() bool { return s.ready.Load() }

// check is /readyz: NATS connected, and the caller's checks. The store is
// not one of them: while it is away the gateway still accepts uploads
// (JetStream holds them), so it stays in its Service.
func (s *Service) check(ctx context.Context) error {
	if !s.nc.IsConnected() {
		return errors.New("nats not connected")
	}
	if s.opts.Ready != nil {
		return s.opts.Ready(ctx)
	}
	return nil
}

// CreateOperatorKey creates the deployment's own key for a tenant: admin,
// sync and operator (it acts on every organization). Only the server side
// calls it; serve keeps the key in its data directory.
func (s *Service) CreateOperatorKey(ctx context.Context, org, project, name string) (string, error) {
	key, _, err := s.tenants.CreateKey(ctx, org, project, name, []string{tenancy.ScopeAdmin, tenancy.ScopeSync, tenancy.ScopeOperator})
	return key, err
}

// EnsureOperatorKey reports whether key is a known, unrevoked key, and makes
// it an operator key if it is (a key stored before the scope existed).
func (s *Service) EnsureOperatorKey(ctx context.Context, key string) (bool, error) {
	return s.tenants.Grant(ctx, key, tenancy.ScopeOperator)
}

// Run serves HTTP until ctx is done, then stops taking requests and waits for
// the ones in flight (an upload in flight is answered, never dropped).
func (s *Service) Run(ctx context.Context) error {
	hs := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second}
	// Shutdown waits for requests in flight; event streams never finish on
	// their own, so they are told to end as it begins.
	hs.RegisterOnShutdown(sync.OnceFunc(func() { close(s.stopping) }))
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(s.ln) }()
	if s.metricsLn != nil {
		ms := &http.Server{Handler: s.metrics, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = ms.Serve(s.metricsLn) }()
		defer ms.Close()
	}
	s.ready.Store(true)
	s.log.Info("http api ready", "url", s.URL(), "maxBodyBytes", s.cfg.MaxBodyBytes)
	select {
	case err := <-errc:
		return fmt.Errorf("serving http: %w", err)
	case <-ctx.Done():
	}
	s.ready.Store(false)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("stopping http: %w", err)
	}
	s.log.Info("http api stopped")
	return nil
}

// splitList splits a comma-separated list, dropping empty entries.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// AsyncAPIDocument is the AsyncAPI 3.0 document of the events the gateway
// serves at /api/v1/asyncapi.json.
func AsyncAPIDocument() ([]byte, error) { return httpapi.AsyncAPIDocument() }

// OpenAPIDocument is the OpenAPI 3.1 document the gateway serves at
// /api/v1/openapi.json with cfg.
func OpenAPIDocument(cfg Config) ([]byte, error) {
	return httpapi.OpenAPIDocument(httpapi.OpenAPILimits{MaxBodyBytes: cfg.MaxBodyBytes})
}
