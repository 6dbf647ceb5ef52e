// Package queue is the background job queue of the jobs service, on
// JetStream and MongoDB. A submission is a message on
// jobs.v1.<priority>.<TYPE> in the JOBS stream (the job id is its
// Nats-Msg-Id); one durable pull consumer per priority feeds a scheduler
// that starts higher priorities first without starving lower ones, and
// organizations in turn inside a priority. Retries are JetStream
// redeliveries with backoff; a crashed worker's job is redelivered after
// the ack wait. Job records are written by a jobstore.Writer (batched,
// transitions collapsed) and every transition is published as a lifecycle
// event with an acknowledged publish before the job's message is acked.
package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/jobs"
	"github.com/odavl/sync/services/jobs/internal/jobstore"
)

// Config tunes a queue.
type Config struct {
	// Workers is how many jobs run at once in this instance (default 16).
	Workers int
	// Backoff between redeliveries of a failing job; its length is the
	// retry count (default 2s, 4s, 8s).
	Backoff []time.Duration
	// AckWait is how long a delivery may go without an in-progress ack
	// before JetStream redelivers it (a crashed worker; default 30s).
	AckWait time.Duration
	// Prefetch bounds the submissions one instance holds per priority: the
	// look-ahead of the fair share (default 4096).
	Prefetch int
	// Timeout is a job's default run time limit (default 5m).
	Timeout time.Duration
	// RecordHold is how long a record change that nobody waits for may wait
	// to be collapsed with the next (default 200ms).
	RecordHold time.Duration
	// Keep is how COMPLETED jobs are kept (default: 7 days, every type);
	// CleanupEvery is how often the old ones are cleared (default 1h).
	Keep         jobstore.Retention
	CleanupEvery time.Duration
	// ChildPoll is how often the children of a job waiting for them are
	// checked (default 5s); a finishing child also wakes its parent at once.
	ChildPoll time.Duration
	// Registerer, when set, gets the queue's figures (Metrics).
	Registerer prometheus.Registerer
	// Replicas is the replica count of the queue's key-value buckets
	// (default 1; 3 on a cluster).
	Replicas int
}

func (c *Config) defaults() {
	c.Replicas = max(c.Replicas, 1)
	if c.Workers <= 0 {
		c.Workers = 16
	}
	if c.Backoff == nil {
		c.Backoff = []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second}
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.Prefetch <= 0 {
		c.Prefetch = 4096
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Minute
	}
	if c.RecordHold <= 0 {
		c.RecordHold = 200 * time.Millisecond
	}
	if c.Keep.ByType == nil && c.Keep.Default == (jobstore.Keep{}) {
		c.Keep, _ = jobstore.ParseRetention("")
	}
	if c.CleanupEvery <= 0 {
		c.CleanupEvery = time.Hour
	}
	if c.ChildPoll <= 0 {
		c.ChildPoll = 5 * time.Second
	}
}

// MaxAttempts is how many times a job runs at most in one generation.
func (c Config) MaxAttempts() int { return len(c.Backoff) + 1 }

// Source is the CloudEvents source of the queue's events.
const Source = events.SourceJobs

// ControlBucket is the KV bucket of the queue's shared state: the pause
// flag and the cancelled jobs.
const ControlBucket = "jobs-control"

// Submission is the data of a job submission message.
type Submission struct {
	JobID          string          `json:"jobId"`
	Type           string          `json:"type"`
	Priority       int             `json:"priority"`
	OrganizationID string          `json:"organizationId"`
	ProjectID      string          `json:"projectId"`
	Payload        json.RawMessage `json:"payload,omitempty"`
	RunAt          *time.Time      `json:"runAt,omitempty"`
	TimeoutMs      int64           `json:"timeoutMs,omitempty"`
	ParentID       string          `json:"parentId,omitempty"`
	SubmittedAt    time.Time       `json:"submittedAt"`
	// Generation counts manual retries; BaseAttempt is the attempts made
	// in earlier generations.
	Generation  int `json:"generation,omitempty"`
	BaseAttempt int `json:"baseAttempt,omitempty"`
	// Waits counts the times the job gave its worker back to wait for its
	// children (children.go); GenAttempts is the attempts of its generation
	// made before this message.
	Waits       int `json:"waits,omitempty"`
	GenAttempts int `json:"genAttempts,omitempty"`
	// Released marks a job set aside while its organization was paused,
	// then released (orgpause.go).
	Released bool `json:"released,omitempty"`
}

// Job is a running job as its handler sees it.
type Job struct {
	Submission
	// Attempt counts runs of this job, manual retries included, from 1.
	Attempt int
	// LastAttempt reports whether a failure now is final.
	LastAttempt bool
	q           *Queue
	started     time.Time
	mu          sync.Mutex
	progress    int
	msg         jetstream.Msg
}

// Handler runs one job. Its output (any JSON value, or nil) is stored with
// the COMPLETED record. A bus.Permanent error is not retried. It must stop
// when ctx is done (the job was cancelled or timed out).
type Handler func(ctx context.Context, j *Job) (output any, err error)

// Queue is a running job queue.
type Queue struct {
	log    *slog.Logger
	nc     *nats.Conn
	js     jetstream.JetStream
	store  *jobstore.Store
	writer *jobstore.Writer
	// projection copies finished records from the bucket to the store.
	projection *jobstore.Projection
	cfg        Config
	now        func() time.Time
	handlers   map[string]Handler
	metrics    *Metrics

	kv    jetstream.KeyValue
	waits jetstream.KeyValue // jobs waiting for their children
	sched *sched

	// asideMu orders the setting aside of a paused organization's jobs
	// before the release of its resume; pausedOrgs are the organizations
	// paused (orgpause.go).
	asideMu    sync.RWMutex
	pausedOrgs map[string]bool

	mu        sync.Mutex
	running   map[string]*runningJob
	cancelled map[string]int // job id -> generation cancelled

	ctx       context.Context // handlers' base context
	cancel    context.CancelCauseFunc
	wg        sync.WaitGroup
	finishing sync.WaitGroup // finishers waiting for a batch before their ack
	ccs       []jetstream.ConsumeContext
	stopOnce  sync.Once
	quit      chan struct{}
	killed    bool
}

type runningJob struct {
	gen    int
	cancel context.CancelCauseFunc
	msg    jetstream.Msg
}

var (
	errCancelled = errors.New("job cancelled")
	errTimeout   = errors.New("job timed out")
	errKilled    = errors.New("worker killed")
)

// New returns a queue; Start runs it.
func New(log *slog.Logger, nc *nats.Conn, store *jobstore.Store, cfg Config) (*Queue, error) {
	cfg.defaults()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(16384))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	q := &Queue{
		log: log, nc: nc, js: js, store: store, cfg: cfg, now: time.Now,
		handlers: map[string]Handler{}, sched: newSched(),
		running: map[string]*runningJob{}, cancelled: map[string]int{}, quit: make(chan struct{}), pausedOrgs: map[string]bool{},
	}
	if cfg.Registerer != nil {
		q.metrics = NewMetrics(cfg.Registerer)
		cfg.Registerer.MustRegister(depthCollector{q})
	}
	return q, nil
}

// Handle registers the handler of a job type. Call it before Start.
func (q *Queue) Handle(jobType string, h Handler) { q.handlers[jobType] = h }

// Writer is the record writer, shared with the sync processor (after Start).
func (q *Queue) Writer() *jobstore.Writer { return q.writer }

// Metrics are the queue's figures (nil without Config.Registerer).
func (q *Queue) Metrics() *Metrics { return q.metrics }

// Config is the queue's configuration, defaults applied.
func (q *Queue) Config() Config { return q.cfg }

// ConsumerName is the durable consumer of a priority level (or "delayed").
func ConsumerName(level string) string { return "jobs-" + strings.ToLower(level) }

// Start creates the consumers and the control bucket and starts the workers.
func (q *Queue) Start(ctx context.Context) error {
	kv, err := bus.OpenKV(ctx, q.js, jetstream.KeyValueConfig{
		Bucket: ControlBucket, Description: "ODAVL Sync job queue: pause flag and cancelled jobs",
		History: 1, TTL: 30 * 24 * time.Hour, Storage: jetstream.FileStorage, Replicas: q.cfg.Replicas,
	})
	if err != nil {
		return err
	}
	q.kv = kv
	if q.writer, err = jobstore.NewWriter(ctx, q.js, q.log, jobstore.WriterOptions{Hold: q.cfg.RecordHold, Store: q.store, Replicas: q.cfg.Replicas}); err != nil {
		return err
	}
	if q.projection, err = jobstore.StartProjection(ctx, q.js, q.store, q.log, jobstore.ProjectionOptions{Keep: q.cfg.Keep, Replicas: q.cfg.Replicas}); err != nil {
		return err
	}
	if err := q.watchControl(ctx); err != nil {
		return err
	}
	q.ctx, q.cancel = context.WithCancelCause(context.WithoutCancel(ctx))
	if err := q.startPriorities(ctx); err != nil {
		return err
	}
	if err := q.startWaits(ctx); err != nil {
		return err
	}
	if err := q.startDelayed(ctx); err != nil {
		return err
	}
	go func() {
		// Held jobs of organizations not paused any more: a release cut
		// short by a crash.
		if err := q.release(q.ctx, ""); err != nil {
			q.log.Warn("releasing held jobs", "err", err)
		}
	}()
	for range q.cfg.Workers {
		q.wg.Add(1)
		go func() {
			defer q.wg.Done()
			for {
				it := q.sched.next()
				if it == nil {
					return
				}
				settle(it.msg, q.run(it))
			}
		}()
	}
	q.wg.Add(1)
	go func() { defer q.wg.Done(); q.keepHeld() }()
	return nil
}

// startPriorities creates the consumer of each priority and consumes it
// into the scheduler.
func (q *Queue) startPriorities(ctx context.Context) error {
	for i, p := range jobs.Priorities {
		cons, err := q.js.CreateOrUpdateConsumer(ctx, events.StreamJobs, jetstream.ConsumerConfig{
			Durable:       ConsumerName(p.Name),
			Description:   "ODAVL Sync jobs of priority " + p.Name,
			FilterSubject: events.JobSubject(p.Name, "*"),
			AckPolicy:     jetstream.AckExplicitPolicy,
			DeliverPolicy: jetstream.DeliverAllPolicy,
			AckWait:       q.cfg.AckWait,
			MaxDeliver:    q.cfg.MaxAttempts(),
			MaxAckPending: q.cfg.Prefetch,
		})
		if err != nil {
			return fmt.Errorf("creating consumer of %s jobs: %w", p.Name, err)
		}
		lvl := i
		cc, err := cons.Consume(func(m jetstream.Msg) { settle(m, q.intake(lvl, m)) },
			jetstream.PullMaxMessages(min(q.cfg.Prefetch, 512)),
			// A pull request the server has let go of while the client still
			// counts on it stalls the consumer until the request expires
			// (seen: ~30s with the default, with thousands of jobs waiting
			// and none pulled); a short expiry bounds that stall.
			jetstream.PullExpiry(pullExpiry),
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				if !errors.Is(err, jetstream.ErrNoHeartbeat) {
					q.log.Debug("consume error", "priority", p.Name, "err", err)
				}
			}))
		if err != nil {
			return fmt.Errorf("consuming %s jobs: %w", p.Name, err)
		}
		q.ccs = append(q.ccs, cc)
	}
	return nil
}

// intake decodes a delivered submission and hands it to the scheduler.
func (q *Queue) intake(level int, m jetstream.Msg) outcome {
	meta, err := m.Metadata()
	if err != nil {
		return terminate("no metadata")
	}
	var sub Submission
	_, err = events.DecodeInto(m.Data(), &sub)
	if err != nil || sub.JobID == "" {
		q.log.Error("undecodable job submission terminated", "subject", m.Subject(), "seq", meta.Sequence.Stream, "err", err)
		return terminate("undecodable submission")
	}
	it := &item{msg: m, sub: sub, level: level, attempt: int(meta.NumDelivered), held: time.Now()}
	if q.OrganizationPaused(sub.OrganizationID) {
		return q.setAside(it)
	}
	q.sched.push(it)
	return holdIt
}

// keepHeld sends in-progress acks for the submissions the scheduler holds
// and the jobs that run, so JetStream does not redeliver them while they
// wait for a worker or run longer than the ack wait (one ticker for all).
func (q *Queue) keepHeld() {
	t := time.NewTicker(q.cfg.AckWait / 3)
	defer t.Stop()
	for {
		select {
		case <-q.quit:
			return
		case <-t.C:
		}
		for _, it := range q.sched.held() {
			keepAlive(it.msg)
		}
		q.mu.Lock()
		msgs := make([]jetstream.Msg, 0, len(q.running))
		for _, r := range q.running {
			msgs = append(msgs, r.msg)
		}
		q.mu.Unlock()
		for _, m := range msgs {
			keepAlive(m) // long jobs keep their message
		}
	}
}

// Stop stops taking jobs, lets the running ones finish, hands the held ones
// back to JetStream, writes every pending record and returns.
func (q *Queue) Stop() {
	q.stopOnce.Do(func() {
		close(q.quit)
		for _, cc := range q.ccs {
			cc.Stop()
		}
		for _, it := range q.sched.close() {
			settle(it.msg, retryIn(0))
		}
		q.wg.Wait()
		q.writer.Flush()
		q.finishing.Wait()
		q.writer.Stop()
		q.projection.Stop()
		if q.cancel != nil {
			q.cancel(context.Canceled)
		}
	})
}

// Kill stops at once as a crash would: running handlers are cancelled,
// nothing more is acked or written, pending records are lost; JetStream
// redelivers the jobs in hand after the ack wait.
func (q *Queue) Kill() {
	q.stopOnce.Do(func() {
		q.mu.Lock()
		q.killed = true
		q.mu.Unlock()
		close(q.quit)
		for _, cc := range q.ccs {
			cc.Stop()
		}
		q.sched.close()
		q.writer.Kill()
		q.projection.Stop()
		if q.cancel != nil {
			q.cancel(errKilled)
		}
		q.wg.Wait()
	})
}

func (q *Queue) isKilled() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.killed
}

// pullExpiry is the life of a pull request of the queue's consumers.
const pullExpiry = 5 * time.Second
