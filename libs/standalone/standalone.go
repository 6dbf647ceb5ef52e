// Package standalone runs one service as its own process (its container on
// Kubernetes): configuration from the environment, JSON logs, the NATS and
// MongoDB connections, the contract's streams, health endpoints and
// Prometheus metrics on HEALTH_ADDR (/healthz, /readyz, /metrics), and an
// orderly stop on SIGINT/SIGTERM.
package standalone

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/config"
	"github.com/odavl/sync/libs/jsonlog"
	"github.com/odavl/sync/libs/mongodb"
	"github.com/odavl/sync/libs/tracing"
)

// Deps are the connections a service is built from.
type Deps struct {
	Log *slog.Logger
	NC  *nats.Conn
	DB  *mongo.Database
	Env func(string) string
	// Version is the binary's build version (for a service's own /healthz).
	Version string
	// Metrics records consumer loops' figures for /metrics on the health
	// port (give it to bus.Defaults for ConsumerConfig.Middleware).
	Metrics *bus.Metrics
	// Registry takes a service's own figures for that /metrics.
	Registry prometheus.Registerer
	// Healthy is nil while the NATS connection lives (for a service's own
	// /healthz, as the gateway's).
	Healthy func() error
}

// Service is what a service module's New returns.
type Service interface {
	Run(ctx context.Context) error
	Ready() bool
}

// Main runs the service built by build until SIGINT or SIGTERM; with the
// argument --version it prints the name and version and returns. It is the
// whole of a service binary's main, version being the one set at build time
// (-ldflags "-X main.version=..."):
//
//	func main() { standalone.Main("jobs", version, build) }
func Main(name, version string, build func(Deps) (Service, error)) {
	if len(os.Args) > 1 && (os.Args[1] == "--version" || os.Args[1] == "-version") {
		fmt.Printf("%s %s\n", name, version)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, Binary{Name: name, Version: version}, os.Getenv, os.Stdout, build); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

// Binary names the running service and its build version, which the start
// log and /healthz report.
type Binary struct {
	Name    string
	Version string
}

// Run is Main without the process: tests call it with their own environment.
func Run(ctx context.Context, bin Binary, getenv func(string) string, stdout io.Writer, build func(Deps) (Service, error)) error {
	name := bin.Name
	// Config.
	r := config.NewReader(getenv)
	natsURL := r.String("NATS_URL", nats.DefaultURL)
	// The service's own NATS user: on the cluster each service may publish
	// and subscribe only to the subjects it owns (deploy/k8s nats.conf).
	natsUser := r.String("NATS_USER", "")
	natsPassword := r.String("NATS_PASSWORD", "")
	mongoURI := r.String("MONGO_URI", "mongodb://127.0.0.1:27017")
	mongoDB := r.String("MONGO_DB", "odavl_sync")
	healthAddr := r.String("HEALTH_ADDR", ":8081")
	replicas := r.Int("STREAM_REPLICAS", 1)
	level := r.OneOf("LOG_LEVEL", "info", "debug", "info", "warn", "error")
	traceCfg, traceErr := tracing.ConfigFromEnv(getenv, name, bin.Version)
	if err := errors.Join(r.Err(), traceErr); err != nil {
		return err
	}

	// Logger.
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	log := jsonlog.New(stdout, lv).With("service", name)
	log.Info("starting", "version", bin.Version, "natsUrl", natsURL, "natsUser", natsUser, "natsPassword", mask(natsPassword), "mongoDb", mongoDB, "healthAddr", healthAddr, "streamReplicas", replicas)

	// Tracing: off unless the OTEL_* variables turn it on; the spans in
	// hand are flushed last.
	stopTracing, err := tracing.Start(ctx, log, traceCfg)
	if err != nil {
		return err
	}
	defer stopTracing()

	// NATS.
	opts := []nats.Option{nats.Name("odavl-sync-" + name), nats.MaxReconnects(-1)}
	if natsUser != "" {
		opts = append(opts, nats.UserInfo(natsUser, natsPassword))
	}
	nc, err := nats.Connect(natsURL, opts...)
	if err != nil {
		return fmt.Errorf("connecting to nats: %w", err)
	}
	life := bus.NewLifeline()
	life.Watch(name, nc)
	defer func() { life.Closing(); nc.Close() }()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	if err := bus.EnsureStreams(ctx, js, bus.StreamOptions{Replicas: replicas}); err != nil {
		return err
	}

	// Mongo.
	mc, err := mongodb.Connect(ctx, mongoURI)
	if err != nil {
		return err
	}
	defer func() { _ = mc.Disconnect(context.Background()) }()

	// Service.
	m := newMetrics(bin, nc)
	svc, err := build(Deps{Log: log, NC: nc, DB: mc.Database(mongoDB), Env: getenv, Version: bin.Version, Metrics: m.bus, Registry: m.reg, Healthy: life.Err})
	if err != nil {
		return err
	}

	// Health.
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if err := life.Err(); err != nil {
			http.Error(w, "unhealthy: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = fmt.Fprintf(w, "ok %s %s\n", name, bin.Version)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !svc.Ready() || !nc.IsConnected() || mongodb.Ping(r.Context(), mc) != nil {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	mux.Handle("GET /metrics", m.handler())
	ln, err := net.Listen("tcp", healthAddr)
	if err != nil {
		return fmt.Errorf("listening on HEALTH_ADDR: %w", err)
	}
	log.Info("health listening", "addr", ln.Addr().String(), "paths", "/healthz /readyz /metrics")
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()

	// Shutdown: the service drains when ctx ends, or when its connection
	// is lost for good (the process exits non-zero and is restarted).
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	go func() {
		select {
		case <-life.Lost():
			log.Error("stopping: the nats connection is lost", "err", life.Err())
			stopRun()
		case <-runCtx.Done():
		}
	}()
	runErr := svc.Run(runCtx)
	if err := life.Err(); err != nil && runErr == nil {
		runErr = err
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return runErr
	}
	log.Info("stopped")
	return nil
}

// mask shows whether a secret is set, never its value.
func mask(secret string) string {
	if secret == "" {
		return ""
	}
	return "***"
}

// Build reads a service's configuration from the process's environment
// with config and builds the service with build: the usual body of a
// service module's Standalone.
func Build[C any, S Service](d Deps, config func(getenv func(string) string) (C, error), build func(C) (S, error)) (Service, error) {
	cfg, err := config(d.Env)
	if err != nil {
		return nil, err
	}
	s, err := build(cfg)
	if err != nil {
		return nil, err
	}
	return s, nil
}
