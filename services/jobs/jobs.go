// Package jobs is the jobs service of ODAVL Sync: it consumes received
// uploads and job submissions from JetStream, tracks each job's lifecycle in
// MongoDB, runs its handler, stores the result documents and publishes what
// happened. Run starts it; the one binary and the service's own binary both
// go through New and Run.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/config"
	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/mongodb"
	"github.com/odavl/sync/services/jobs/internal/jobstore"
	"github.com/odavl/sync/services/jobs/internal/processor"
	"github.com/odavl/sync/services/jobs/internal/results"
)

// Config is the jobs service's configuration.
type Config struct {
	// SyncWorkers is how many uploads are processed at once.
	SyncWorkers int
	// Backoff between retries of a failing job; len(Backoff) is the retry count.
	Backoff []time.Duration
	// DataDir is where local outputs go (the email outbox) (JOBS_DATA_DIR).
	DataDir string
}

// DefaultConfig is the configuration with every default.
func DefaultConfig() Config {
	return Config{SyncWorkers: 8, Backoff: []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second}}
}

// ConfigFromEnv reads the configuration from the environment.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	d := DefaultConfig()
	r := config.NewReader(getenv)
	c := Config{
		SyncWorkers: r.Int("JOBS_SYNC_WORKERS", d.SyncWorkers),
		Backoff:     r.Durations("JOBS_BACKOFF", d.Backoff),
		DataDir:     r.String("JOBS_DATA_DIR", "./data"),
	}
	return c, r.Err()
}

// Consumer names, durable on their streams.
const (
	ConsumerSync = "jobs-sync"
)

// Service is a running jobs service.
type Service struct {
	log   *slog.Logger
	nc    *nats.Conn
	js    jetstream.JetStream
	db    *mongo.Database
	cfg   Config
	now   func() time.Time
	ready atomic.Bool

	results *results.Store
	jobs    *jobstore.Store
}

// New returns a jobs service over the given connections.
func New(log *slog.Logger, nc *nats.Conn, db *mongo.Database, cfg Config) (*Service, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if cfg.SyncWorkers <= 0 {
		return nil, errors.New("jobs: SyncWorkers must be positive")
	}
	return &Service{
		log: log, nc: nc, js: js, db: db, cfg: cfg, now: time.Now,
		results: results.New(db), jobs: jobstore.New(db),
	}, nil
}

// Ready reports whether the service consumes and answers.
func (s *Service) Ready() bool { return s.ready.Load() }

// Run runs the service until ctx is done, then stops taking work, lets the
// work in hand finish, and returns.
func (s *Service) Run(ctx context.Context) error {
	if err := mongodb.EnsureIndexes(ctx, s.db, append(results.Indexes(), jobstore.Indexes()...)); err != nil {
		return err
	}
	proc := processor.New(s.log, s.js, s.results, s.jobs, s.now)
	cc := bus.ConsumerConfig{
		Stream: events.StreamSync, Durable: ConsumerSync, Filters: []string{events.AllReceived},
		Backoff: s.cfg.Backoff, Workers: s.cfg.SyncWorkers,
	}
	cons, err := bus.EnsureConsumer(ctx, s.js, cc)
	if err != nil {
		return err
	}
	svc, err := s.addEndpoints(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = svc.Stop() }()
	loop, err := bus.Consume(ctx, s.log, cons, cc, proc.Handle)
	if err != nil {
		return err
	}
	s.ready.Store(true)
	s.log.Info("jobs service ready", "syncWorkers", s.cfg.SyncWorkers, "backoff", s.cfg.Backoff)
	<-ctx.Done()
	s.ready.Store(false)
	loop.Stop()
	s.log.Info("jobs service stopped")
	return nil
}
