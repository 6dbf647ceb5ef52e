// Package stats is the stats service of ODAVL Sync: it consumes processed
// uploads, job lifecycle events and file events into aggregates per
// organization, project and UTC day (exactly once, see internal/statsdb),
// answers summaries, trends and trend signals from those aggregates only,
// and rebuilds them from the jobs service's result documents on request.
// Run starts it; the one binary and the service's own binary both go
// through New and Run.
//
// The embedded store can lose one of two concurrent updates of a document,
// so the service serialises updates per project in its own memory: exactly
// one stats instance runs against a store. Run enforces it with a lease in
// the JetStream bucket LeaseBucket: a second instance refuses to start
// (ErrAnotherInstance), and a crashed holder's lease lapses after LeaseTTL.
package stats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/config"
	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/rpc"
	"github.com/odavl/sync/services/stats/internal/statsdb"
)

// Version of the service, reported through micro.
const Version = "0.1.0"

// Config is the stats service's configuration.
type Config struct {
	// Workers is how many events each consumer handles at once (STATS_WORKERS).
	Workers int
	// AckWait is how long an unacknowledged event waits before redelivery,
	// e.g. after a crash (STATS_ACK_WAIT). A failed event is retried after
	// the consumer loop's default delay (1s), without limit: a count is never dropped.
	AckWait time.Duration
	// RebuildTimeout bounds a rebuild (STATS_REBUILD_TIMEOUT).
	RebuildTimeout time.Duration
	// LeaseTTL is how long the one-instance lease outlives its last renewal
	// (STATS_LEASE_TTL): after a crash, the next instance starts at most
	// this long after the last renewal. It is renewed every third of it.
	LeaseTTL time.Duration
	// Replicas is the lease bucket's replica count (STREAM_REPLICAS).
	Replicas int
	// TakeOverLease takes a lease left by an earlier process instead of
	// refusing to start: only for a caller that knows by other means that
	// no other instance runs (serve holds its data directory's lock).
	TakeOverLease bool
	// Metrics, when set, records the consumer loops' figures (the health
	// port's /metrics when the service runs alone).
	Metrics *bus.Metrics
}

// DefaultConfig is the configuration with every default.
func DefaultConfig() Config {
	return Config{Workers: 64, AckWait: 60 * time.Second, RebuildTimeout: 30 * time.Minute, LeaseTTL: 15 * time.Second, Replicas: 1}
}

// ConfigFromEnv reads the configuration from the environment.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	d := DefaultConfig()
	r := config.NewReader(getenv)
	c := Config{
		Workers:        r.Int("STATS_WORKERS", d.Workers),
		AckWait:        r.Duration("STATS_ACK_WAIT", d.AckWait),
		RebuildTimeout: r.Duration("STATS_REBUILD_TIMEOUT", d.RebuildTimeout),
		LeaseTTL:       r.Duration("STATS_LEASE_TTL", d.LeaseTTL),
		Replicas:       r.Int("STREAM_REPLICAS", d.Replicas),
	}
	return c, r.Err()
}

// Durable consumer names.
const (
	ConsumerProcessed = "stats-processed"
	ConsumerJobs      = "stats-jobs"
	ConsumerFiles     = "stats-files"
)

// Service is a running stats service.
type Service struct {
	log   *slog.Logger
	nc    *nats.Conn
	js    jetstream.JetStream
	db    *mongo.Database
	cfg   Config
	now   func() time.Time
	ready atomic.Bool
	store *statsdb.Store
	loops []*bus.Loop

	runCtx context.Context
	// finishing are the unfinished rebuilds retried in the background, by
	// organization ("" for every organization's).
	finishMu  sync.Mutex
	finishing map[string]bool
	draining  atomic.Bool

	// crash, when set by a test, is called before each step of counting a change.
	crash statsdb.CrashHook
	// exported, when set by a test, is called after each batch a rebuild of
	// org (every organization's when empty) has read and recorded; an error
	// fails the rebuild there.
	exported func(org string, n int) error
}

// New returns a stats service over the given connections.
func New(log *slog.Logger, nc *nats.Conn, db *mongo.Database, cfg Config) (*Service, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if cfg.Workers <= 0 {
		return nil, errors.New("stats: Workers must be positive")
	}
	if cfg.AckWait <= 0 || cfg.RebuildTimeout <= 0 {
		return nil, errors.New("stats: AckWait and RebuildTimeout must be positive")
	}
	if cfg.LeaseTTL < time.Second {
		return nil, errors.New("stats: LeaseTTL must be at least 1s")
	}
	s := &Service{log: log, nc: nc, js: js, db: db, cfg: cfg, now: time.Now, finishing: map[string]bool{}}
	s.store = statsdb.New(db, func() time.Time { return s.now() })
	return s, nil
}

// Ready reports whether the service consumes and answers.
func (s *Service) Ready() bool { return s.ready.Load() }

// Status is the answer of the service's status request.
type Status struct {
	Service    string `json:"service"`
	Version    string `json:"version"`
	Generation int64  `json:"generation"`
}

func (s *Service) consumerConfigs() []bus.ConsumerConfig {
	mk := func(stream, durable, filter string) bus.ConsumerConfig {
		return bus.ConsumerConfig{Stream: stream, Durable: durable, Filters: []string{filter},
			AckWait: s.cfg.AckWait, Backoff: nil, Workers: s.cfg.Workers, Middleware: bus.Defaults(s.log, s.cfg.Metrics, nil)}
	}
	return []bus.ConsumerConfig{
		mk(events.StreamSync, ConsumerProcessed, events.AllProcessed),
		mk(events.StreamJobs, ConsumerJobs, events.AllJobEvents),
		mk(events.StreamStorage, ConsumerFiles, events.AllFiles),
	}
}

// Run runs the service until ctx is done, then stops taking events, lets
// the events in hand finish, and returns. It first takes the one-instance
// lease: with another instance running it returns ErrAnotherInstance, and
// when the lease is lost while running (NATS unreachable for longer than
// LeaseTTL) it stops and returns why.
func (s *Service) Run(ctx context.Context) error {
	l, err := acquireLease(ctx, s.js, s.cfg)
	if err != nil {
		return err
	}
	defer l.release()
	s.log.Info("stats lease taken", "holder", l.holder, "bucket", LeaseBucket, "ttl", s.cfg.LeaseTTL)
	ctx, lost := context.WithCancelCause(ctx)
	kept := make(chan struct{})
	go func() { defer close(kept); l.keep(ctx, s.log, lost) }()
	// The renewals stop before the release reads the lease's revision.
	defer func() { lost(nil); <-kept }()
	if err := s.run(ctx); err != nil {
		return err
	}
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return nil
}

func (s *Service) run(ctx context.Context) error {
	s.runCtx = ctx
	interrupted, err := s.store.Recover(ctx)
	if err != nil {
		return err
	}
	svc, err := s.addEndpoints(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = svc.Stop() }()
	if interrupted.Generation != 0 {
		// An interrupted rebuild of everything is finished before anything else is counted.
		if err := s.finishRebuild(ctx, ""); err != nil {
			return err
		}
	}
	// An organization's interrupted rebuild holds that organization only:
	// its changes are set aside meanwhile, the others' counted.
	for _, org := range interrupted.Organizations {
		s.finishInBackground(org)
	}
	// Changes set aside by a rebuild that finished before the service stopped.
	s.drain(ctx)
	for _, cc := range s.consumerConfigs() {
		cons, err := bus.EnsureConsumer(ctx, s.js, cc)
		if err != nil {
			return err
		}
		s.cfg.Metrics.Start(cc.Durable)
		loop, err := bus.Consume(ctx, s.log, cons, cc, s.handle)
		if err != nil {
			return err
		}
		s.loops = append(s.loops, loop)
	}
	s.ready.Store(true)
	s.log.Info("stats service ready", "generation", s.store.Generation(), "workers", s.cfg.Workers, "ackWait", s.cfg.AckWait)
	<-ctx.Done()
	s.ready.Store(false)
	for _, l := range s.loops {
		l.Stop()
	}
	s.log.Info("stats service stopped")
	return nil
}

// kill stops the consumers at once, as a crash would (tests only).
func (s *Service) kill() {
	for _, l := range s.loops {
		l.Kill()
	}
}

// status answers odavl.stats.v1.status.
func (s *Service) status(context.Context, struct{}) (Status, error) {
	return Status{Service: "stats", Version: Version, Generation: s.store.Generation()}, nil
}

func (s *Service) addEndpoints(ctx context.Context) (micro.Service, error) {
	const timeout = 30 * time.Second
	return rpc.AddService(s.nc, "stats", Version, "ODAVL Sync stats", []rpc.Endpoint{
		{Name: "status", Subject: "odavl.stats.v1.status", Handler: rpc.Handler(ctx, s.log, 5*time.Second, s.status)},
		{Name: "summary", Subject: rpc.StatsSummary, Handler: rpc.Handler(ctx, s.log, timeout, s.summary)},
		{Name: "trends", Subject: rpc.StatsTrends, Handler: rpc.Handler(ctx, s.log, timeout, s.trends)},
		{Name: "rebuild", Subject: rpc.StatsRebuild, Handler: rpc.Handler(ctx, s.log, s.cfg.RebuildTimeout, s.rebuildRequest)},
	})
}
