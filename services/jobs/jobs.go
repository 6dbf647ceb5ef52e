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
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/config"
	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/jobs"
	"github.com/odavl/sync/libs/mongodb"
	"github.com/odavl/sync/services/jobs/internal/handlers"
	"github.com/odavl/sync/services/jobs/internal/jobstore"
	"github.com/odavl/sync/services/jobs/internal/processor"
	"github.com/odavl/sync/services/jobs/internal/queue"
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
	// Workers is how many queued jobs run at once (JOBS_WORKERS).
	Workers int
	// AckWait is how long a job may go silent before JetStream redelivers
	// it to another worker (JOBS_ACK_WAIT).
	AckWait time.Duration
	// Timeout is a job's default run time limit (JOBS_TIMEOUT).
	Timeout time.Duration
	// Keep is how COMPLETED jobs are kept, by type (JOBS_KEEP_COMPLETED:
	// "168h" for every type, "168h,EMAIL_SEND=remove,DATA_EXPORT=all" per
	// type; a duration, "all" or "remove").
	Keep jobstore.Retention
	// RecordHold is how long a job's record changes may wait to be
	// collapsed with its next ones (JOBS_RECORD_HOLD).
	RecordHold time.Duration
	// ChildPoll is how often the children of a job waiting for them (a
	// BULK_INVITATION) are checked; a finishing child wakes its parent
	// at once too (JOBS_CHILD_POLL).
	ChildPoll time.Duration
	// SMTP delivers EMAIL_SEND jobs (SMTP_HOST, SMTP_PORT, SMTP_USER,
	// SMTP_PASSWORD, SMTP_FROM); without SMTP_HOST mail goes to
	// <DataDir>/outbox.
	SMTP handlers.SMTP
	// Replicas is the replica count of the queue's key-value buckets
	// (STREAM_REPLICAS): 3 on a cluster, as the streams.
	Replicas int
	// Metrics, when set, records the sync consumer loop's figures (the
	// health port's /metrics when the service runs alone) through the
	// loop's middleware (bus.Measure).
	Metrics *bus.Metrics
	// Registerer, when set, gets the queue's figures by job type
	// (queue.Metrics), upload processing included.
	Registerer prometheus.Registerer
}

// DefaultConfig is the configuration with every default.
func DefaultConfig() Config {
	return Config{SyncWorkers: 64, Backoff: []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second},
		Workers: 16, AckWait: 30 * time.Second, Timeout: 5 * time.Minute, Keep: defaultKeep(),
		RecordHold: 200 * time.Millisecond, ChildPoll: 5 * time.Second, Replicas: 1}
}

// ConfigFromEnv reads the configuration from the environment.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	d := DefaultConfig()
	r := config.NewReader(getenv)
	c := Config{
		SyncWorkers: r.Int("JOBS_SYNC_WORKERS", d.SyncWorkers),
		Backoff:     r.Durations("JOBS_BACKOFF", d.Backoff),
		DataDir:     r.String("JOBS_DATA_DIR", "./data"),
		Workers:     r.Int("JOBS_WORKERS", d.Workers),
		AckWait:     r.Duration("JOBS_ACK_WAIT", d.AckWait),
		Timeout:     r.Duration("JOBS_TIMEOUT", d.Timeout),
		Keep:        d.Keep,
		RecordHold:  r.Duration("JOBS_RECORD_HOLD", d.RecordHold),
		ChildPoll:   r.Duration("JOBS_CHILD_POLL", d.ChildPoll),
		Replicas:    r.Int("STREAM_REPLICAS", d.Replicas),
		SMTP: handlers.SMTP{
			Host: r.String("SMTP_HOST", ""), Port: r.Int("SMTP_PORT", 587), User: r.String("SMTP_USER", ""),
			Password: r.String("SMTP_PASSWORD", ""), From: r.String("SMTP_FROM", ""),
		},
	}
	if v := r.String("JOBS_KEEP_COMPLETED", ""); v != "" {
		keep, err := jobstore.ParseRetention(v)
		if err != nil {
			r.Invalid("JOBS_KEEP_COMPLETED", err.Error())
		}
		c.Keep = keep
	}
	return c, r.Err()
}

func defaultKeep() jobstore.Retention {
	k, _ := jobstore.ParseRetention("")
	return k
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
	queue   *queue.Queue
	proc    *processor.Processor
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
	if cfg.Workers < 1 {
		return nil, errors.New("jobs: JOBS_WORKERS must be at least 1")
	}
	s := &Service{
		log: log, nc: nc, js: js, db: db, cfg: cfg, now: time.Now,
		results: results.New(db), jobs: jobstore.New(db),
	}
	q, err := queue.New(log, nc, s.jobs, queue.Config{
		Workers: cfg.Workers, Backoff: cfg.Backoff, AckWait: cfg.AckWait, Timeout: cfg.Timeout,
		RecordHold: cfg.RecordHold, Keep: cfg.Keep, ChildPoll: cfg.ChildPoll, Registerer: cfg.Registerer, Replicas: cfg.Replicas,
	})
	if err != nil {
		return nil, err
	}
	s.queue = q
	mailer := handlers.NewMailer(log, cfg.SMTP, filepath.Join(cfg.DataDir, "outbox"))
	q.Handle(jobs.EmailSend, mailer.Handle)
	q.Handle(jobs.BulkInvitation, handlers.Invitations())
	s.registerFileHandlers(q)
	return s, nil
}

// Ready reports whether the service consumes and answers.
func (s *Service) Ready() bool { return s.ready.Load() }

// Run runs the service until ctx is done, then stops taking work, lets the
// work in hand finish, and returns.
func (s *Service) Run(ctx context.Context) error {
	if err := mongodb.EnsureIndexes(ctx, s.db, append(results.Indexes(), jobstore.Indexes()...)); err != nil {
		return err
	}
	if err := s.queue.Start(ctx); err != nil {
		return err
	}
	defer s.queue.Stop()
	go s.queue.RunCleanup(ctx)
	proc := processor.New(s.log, s.js, s.results, s.jobs, s.queue.Writer(), s.now)
	proc.UseMetrics(s.queue.Metrics())
	s.proc = proc
	inserterCtx, stopInserter := context.WithCancel(context.WithoutCancel(ctx))
	defer stopInserter()
	proc.UseInserter(results.NewInserter(inserterCtx, s.results))
	cc := bus.ConsumerConfig{
		// Uploads received before their subjects carried the upload id
		// (sync.v1.<org>.<project>.<product>.received) are still processed.
		Stream: events.StreamSync, Durable: ConsumerSync, Filters: []string{events.AllReceived, "sync.v1.*.*.*.received"},
		Backoff: s.cfg.Backoff, Workers: s.cfg.SyncWorkers,
		// An upload takes milliseconds, but under load its batched writes can
		// outlast the ack wait (the first backoff): keep it from being run
		// again beside itself.
		Middleware: append(bus.Defaults(s.log, s.cfg.Metrics, nil), bus.KeepAlive(time.Minute)),
	}
	s.cfg.Metrics.Start(cc.Durable)
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
	s.log.Info("jobs service ready", "syncWorkers", s.cfg.SyncWorkers, "workers", s.cfg.Workers, "backoff", s.cfg.Backoff,
		"ackWait", s.cfg.AckWait, "timeout", s.cfg.Timeout, "keepCompleted", s.cfg.Keep.Default.Age, "smtpHost", s.cfg.SMTP.Host,
		"smtpPassword", config.Mask(s.cfg.SMTP.Password))
	<-ctx.Done()
	s.ready.Store(false)
	loop.Stop()
	s.log.Info("jobs service stopped")
	return nil
}
