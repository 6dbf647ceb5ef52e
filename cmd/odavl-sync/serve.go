package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/odavl/sync/client/cli"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/config"
	"github.com/odavl/sync/libs/embedded"
	"github.com/odavl/sync/libs/jsonlog"
	"github.com/odavl/sync/libs/mongodb"
	"github.com/odavl/sync/libs/tracing"
	"github.com/odavl/sync/services/ingest"
	"github.com/odavl/sync/services/jobs"
	"github.com/odavl/sync/services/stats"
	"github.com/odavl/sync/services/storage"
)

type serveFlags struct {
	data         string
	addr         string
	natsListen   string
	storeListen  string
	syncInterval string
	logLevel     string
}

func newServe(e *env) *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run every service in one process, with embedded NATS, store and blob directory",
		Long: `serve runs the ingest gateway, the jobs, storage and stats services, an embedded
NATS server with JetStream, an embedded MongoDB-compatible store (FerretDB on
SQLite) and a local blob store, all under --data. With NATS_URL and/or
MONGO_URI set it uses those servers instead of the embedded ones.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return serve(cmd.Context(), e, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.data, "data", "./data", "data directory (JetStream store, database, blobs, credentials)")
	fl.StringVar(&f.addr, "addr", "", "HTTP API address, port 0 picks a free one (default: HTTP_ADDR, else 127.0.0.1:8080)")
	fl.StringVar(&f.natsListen, "nats-listen", "127.0.0.1:4222", "where the embedded NATS listens, for other services and the nats CLI (port 0 picks a free one; empty: in-process only)")
	fl.StringVar(&f.storeListen, "store-listen", "127.0.0.1:0", "where the embedded store listens (MongoDB wire protocol)")
	fl.StringVar(&f.syncInterval, "sync-interval", "", "JetStream fsync interval: a duration, or 'always' (default: NATS_SYNC_INTERVAL, else the server's 2m)")
	fl.StringVar(&f.logLevel, "log-level", "", "debug, info, warn or error (default: LOG_LEVEL, else info)")
	return cmd
}

// serve is the one-command system: config, logger, NATS, store, services, HTTP, shutdown.
func serve(ctx context.Context, e *env, f serveFlags) error {
	// Config: every bad variable, of serve and of each service, is named at once.
	r := config.NewReader(e.Getenv)
	natsURL := r.String("NATS_URL", "")
	mongoURI := r.String("MONGO_URI", "")
	mongoDB := r.String("MONGO_DB", "odavl_sync")
	if f.syncInterval == "" {
		f.syncInterval = r.String("NATS_SYNC_INTERVAL", "")
	}
	if f.logLevel == "" {
		f.logLevel = r.OneOf("LOG_LEVEL", "info", "debug", "info", "warn", "error")
	}
	ingestCfg, ingestErr := ingest.ConfigFromEnv(e.Getenv)
	jobsCfg, jobsErr := jobs.ConfigFromEnv(e.Getenv)
	storageCfg, storageErr := storage.ConfigFromEnv(e.Getenv)
	statsCfg, statsErr := stats.ConfigFromEnv(e.Getenv)
	traceCfg, traceErr := tracing.ConfigFromEnv(e.Getenv, "odavl-sync", version)
	if err := errors.Join(r.Err(), ingestErr, jobsErr, storageErr, statsErr, traceErr); err != nil {
		return cli.WithCode(cli.ExitUsage, err)
	}
	addrFrom := "--addr"
	if f.addr == "" {
		f.addr, addrFrom = ingestCfg.Addr, "HTTP_ADDR"
	}
	data, unlock, err := takeDataDir(f.data)
	if err != nil {
		return err
	}
	defer unlock()

	// Logger.
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return cli.WithCode(cli.ExitUsage, fmt.Errorf("--log-level: %w", err))
	}
	log := jsonlog.New(e.Stderr, level)
	start := time.Now()

	// Tracing: off unless the OTEL_* variables turn it on; the spans in
	// hand are flushed last.
	stopTracing, err := tracing.Start(ctx, log, traceCfg)
	if err != nil {
		return err
	}
	defer stopTracing()

	// NATS: embedded unless NATS_URL is set.
	var ns *server.Server
	if natsURL == "" {
		nc, err := natsConfig(data, f)
		if err != nil {
			return cli.WithCode(cli.ExitUsage, err)
		}
		if ns, err = embedded.StartNATS(nc); err != nil {
			return err
		}
		defer ns.Shutdown()
		natsURL = ns.ClientURL()
		log.Info("embedded nats started", "url", natsURL, "store", nc.StoreDir, "syncInterval", f.syncInterval)
	}
	conns := &connSet{life: bus.NewLifeline()}
	defer conns.closeAll()
	connect := func(name string) (*nats.Conn, error) {
		opts := []nats.Option{nats.Name("odavl-sync-" + name), nats.MaxReconnects(-1)}
		if ns != nil {
			opts = append(opts, nats.InProcessServer(ns))
		}
		nc, err := nats.Connect(natsURL, opts...)
		if err != nil {
			return nil, fmt.Errorf("connecting %s to nats: %w", name, err)
		}
		conns.add(name, nc)
		return nc, nil
	}
	adminNC, err := connect("serve")
	if err != nil {
		return err
	}
	js, err := jetstream.New(adminNC)
	if err != nil {
		return err
	}
	if err := bus.EnsureStreams(ctx, js, bus.StreamOptions{Replicas: ingestCfg.StreamReplicas, MaxAge: max(30*24*time.Hour, ingestCfg.IdempotencyTTL)}); err != nil {
		return err
	}

	// Store: embedded unless MONGO_URI is set.
	if mongoURI == "" {
		quiet := jsonlog.New(e.Stderr, slog.LevelError).With("component", "ferretdb")
		st, err := embedded.StartStore(filepath.Join(data, "store"), f.storeListen, quiet, strings.TrimSpace(f.syncInterval) == "always")
		if err != nil {
			return err
		}
		defer st.Stop()
		mongoURI = st.URI
		log.Info("embedded store started", "uri", mongoURI, "dir", filepath.Join(data, "store"))
	}
	mc, err := mongodb.Connect(ctx, mongoURI)
	if err != nil {
		return err
	}
	defer func() { _ = mc.Disconnect(context.Background()) }()
	db := mc.Database(mongoDB)

	// The API's listener comes first: the local storage provider signs
	// absolute URLs of it.
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return cli.WithCode(cli.ExitUsage, fmt.Errorf("%s: %w", addrFrom, err))
	}
	defer ln.Close()
	apiURL := "http://" + ln.Addr().String()

	// Services, each on its own connection as it would be in its own container.
	if storageCfg.DataDir == "" {
		storageCfg.DataDir = filepath.Join(data, "blobs")
	}
	if storageCfg.PublicURL == "" {
		storageCfg.PublicURL = apiURL
	}
	if storageCfg.APIURL == "" {
		storageCfg.APIURL = apiURL
	}
	storageNC, err := connect("storage")
	if err != nil {
		return err
	}
	storageSvc, err := storage.New(log.With("service", "storage"), storageNC, db, storageCfg)
	if err != nil {
		return err
	}
	// The dashboard shows stored screenshots through signed download links:
	// its policy allows the blob store's origin for images, that one alone
	// (the local provider's links are on the API's own origin).
	if ingestCfg.BlobOrigin == "" && storageCfg.Provider != storage.ProviderLocal {
		if ingestCfg.BlobOrigin, err = storageCfg.DownloadOrigin(ctx); err != nil {
			return err
		}
	}
	jobsNC, err := connect("jobs")
	if err != nil {
		return err
	}
	if strings.TrimSpace(e.Getenv("JOBS_DATA_DIR")) == "" {
		jobsCfg.DataDir = data
	}
	// One /metrics for the one process: the gateway serves the jobs
	// service's figures beside its own.
	registry := prometheus.NewRegistry()
	jobsCfg.Registerer = registry
	jobsSvc, err := jobs.New(log.With("service", "jobs"), jobsNC, db, jobsCfg)
	if err != nil {
		return err
	}
	statsNC, err := connect("stats")
	if err != nil {
		return err
	}
	// serve holds its data directory's lock: a stats lease in its NATS is
	// an earlier serve's, one that did not stop cleanly.
	statsCfg.TakeOverLease = true
	statsSvc, err := stats.New(log.With("service", "stats"), statsNC, db, statsCfg)
	if err != nil {
		return err
	}
	backends := []namedService{{"storage", storageSvc}, {"jobs", jobsSvc}, {"stats", statsSvc}}

	// HTTP. Ready means all a user needs is in place, the credentials
	// file too: a script that waits for /readyz then reads it.
	var credentialsWritten atomic.Bool
	ingestNC, err := connect("ingest")
	if err != nil {
		_ = ln.Close()
		return err
	}
	gw, err := ingest.New(ctx, log.With("service", "ingest"), ingestNC, db, ingestCfg, ingest.Options{
		Listener: ln, Registry: registry,
		Ready: func(context.Context) error {
			if !credentialsWritten.Load() {
				return fmt.Errorf("%s not written yet", credentialsFile)
			}
			for _, b := range backends {
				if !b.svc.Ready() {
					return fmt.Errorf("%s service not ready", b.name)
				}
			}
			return nil
		},
		Extra:   storageSvc.MountHTTP,
		Healthy: conns.life.Err,
		Version: version,
	})
	if err != nil {
		_ = ln.Close()
		return err
	}

	// Run: backends first, then the gateway once they are ready.
	backCtx, stopBack := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBack()
	var wg sync.WaitGroup
	errc := make(chan error, len(backends)+1)
	for _, b := range backends {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.svc.Run(backCtx); err != nil {
				errc <- fmt.Errorf("%s service: %w", b.name, err)
			}
		}()
	}
	if err := waitReady(ctx, backends, errc); err != nil {
		stopBack()
		wg.Wait()
		return err
	}
	cred, created, err := ensureCredentials(ctx, data, gw)
	if err != nil {
		stopBack()
		wg.Wait()
		return err
	}
	credentialsWritten.Store(true)
	gwCtx, stopGW := context.WithCancel(ctx)
	defer stopGW()
	gwDone := make(chan error, 1)
	go func() { gwDone <- gw.Run(gwCtx) }()
	printWelcome(e.Stdout, cred, created, data, natsURL, gw.MetricsURL(), time.Since(start))
	log.Info("ready", "apiUrl", cred.APIURL, "took", time.Since(start))

	// Shutdown: HTTP first (in-flight uploads are answered), then the
	// consumers drain, then connections, NATS and the store close (deferred).
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		log.Error("service failed", "err", runErr)
	case runErr = <-gwDone:
		gwDone <- runErr
		log.Error("http api failed", "err", runErr)
	case <-conns.life.Lost():
		// A service without its connection would answer nothing while
		// the process looked alive: stop, so a supervisor restarts it.
		runErr = conns.life.Err()
		log.Error("stopping: a nats connection is lost", "err", runErr)
	}
	log.Info("stopping")
	stopGW()
	if err := <-gwDone; err != nil && runErr == nil {
		runErr = err
	}
	stopBack()
	wg.Wait()
	log.Info("stopped")
	return runErr
}

// takeDataDir makes the data directory (--data) if missing and locks it
// for this process; it returns its absolute path and the unlock.
func takeDataDir(dir string) (string, func(), error) {
	data, err := filepath.Abs(dir)
	if err != nil {
		return "", nil, cli.WithCode(cli.ExitUsage, fmt.Errorf("--data: %w", err))
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		return "", nil, fmt.Errorf("creating data directory: %w", err)
	}
	unlock, err := lockDataDir(data)
	if err != nil {
		return "", nil, err
	}
	return data, unlock, nil
}

type namedService struct {
	name string
	svc  interface {
		Run(context.Context) error
		Ready() bool
	}
}

func waitReady(ctx context.Context, svcs []namedService, errc chan error) error {
	deadline := time.After(60 * time.Second)
	for {
		all := true
		for _, s := range svcs {
			all = all && s.svc.Ready()
		}
		if all {
			return nil
		}
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return errors.New("services not ready after 60s")
		case <-time.After(2 * time.Millisecond):
		}
	}
}

func natsConfig(data string, f serveFlags) (embedded.NATSConfig, error) {
	c := embedded.NATSConfig{StoreDir: filepath.Join(data, "jetstream")}
	switch {
	case f.natsListen == "":
		c.DontListen = true
	default:
		host, port, err := net.SplitHostPort(f.natsListen)
		if err != nil {
			return c, fmt.Errorf("--nats-listen %q: %w", f.natsListen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p < 0 || p > 65535 {
			return c, fmt.Errorf("--nats-listen %q: bad port", f.natsListen)
		}
		if p == 0 {
			p = -1
		}
		c.Host, c.Port = host, p
	}
	switch si := strings.TrimSpace(f.syncInterval); si {
	case "":
	case "always":
		c.SyncAlways = true
	default:
		d, err := time.ParseDuration(si)
		if err != nil || d <= 0 {
			return c, fmt.Errorf("--sync-interval %q: want a positive duration or 'always'", si)
		}
		c.SyncInterval = d
	}
	return c, nil
}

type connSet struct {
	life  *bus.Lifeline
	mu    sync.Mutex
	conns []*nats.Conn
}

func (s *connSet) add(name string, nc *nats.Conn) {
	s.life.Watch(name, nc)
	s.mu.Lock()
	s.conns = append(s.conns, nc)
	s.mu.Unlock()
}

func (s *connSet) closeAll() {
	s.life.Closing()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, nc := range s.conns {
		_ = nc.Drain()
	}
	for _, nc := range s.conns {
		for nc.IsDraining() {
			time.Sleep(time.Millisecond)
		}
		nc.Close()
	}
}

func printWelcome(w io.Writer, c credentials, created bool, data, natsURL, metricsURL string, took time.Duration) {
	path := filepath.Join(data, credentialsFile)
	// The key is printed once, when it is created; later starts point at
	// the file (0600) instead of writing it into every log of the process.
	state, key, keyLine := "Using the credentials in", "$KEY", fmt.Sprintf("\n  KEY=$(grep -o 'odavl_[A-Za-z0-9_-]*' %s)\n", path)
	if created {
		state, key, keyLine = "Created an organization, a project and an operator API key, written to", c.APIKey, ""
	}
	if metricsURL == "" {
		metricsURL = "on the API port (METRICS_ADDR=api) or off"
	}
	fmt.Fprintf(w, `ODAVL Sync is ready at %s (started in %d ms)
Dashboard: %s/dashboard
NATS: %s
Metrics: %s
%s %s
%s
Upload an Insight analysis:

  curl -sS -X POST %s/api/v1/sync/insight \
    -H "Authorization: Bearer %s" \
    -H "X-Organization-Id: %s" -H "X-Project-Id: %s" \
    -H "Content-Type: application/json" \
    -d '{"organizationId":"%s","projectId":"%s","timestamp":"%s","detectors":["eslint"],"totalIssues":1,"issuesBySeverity":{"critical":0,"high":1,"medium":0,"low":0},"issues":[{"detector":"eslint","severity":"high","message":"no-unused-vars","file":"src/a.ts","line":3,"column":7}]}'

List them:

  curl -sS %s/api/v1/sync/insight -H "Authorization: Bearer %s" -H "X-Organization-Id: %s" -H "X-Project-Id: %s"

`, c.APIURL, took.Milliseconds(), c.APIURL, natsURL, metricsURL, state, path, keyLine,
		c.APIURL, key, c.OrganizationID, c.ProjectID, c.OrganizationID, c.ProjectID, time.Now().UTC().Format(time.RFC3339),
		c.APIURL, key, c.OrganizationID, c.ProjectID)
}
