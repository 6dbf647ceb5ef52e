package queue

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/jobs"
)

// Metrics are the queue's figures by job type: runs started, their
// outcomes (completed, failed for good, retried after a backoff, waiting
// for children, cancelled) and durations; at each scrape, the jobs each
// priority's consumer has not delivered yet (its lag) and the jobs this
// instance holds for a worker. Upload processing reports through the same
// figures (ObserveRun). A nil *Metrics records nothing.
type Metrics struct {
	started  *prometheus.CounterVec
	outcomes *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// Outcomes of a run, the outcome label.
const (
	OutcomeCompleted = "completed"
	OutcomeFailed    = "failed"
	OutcomeRetried   = "retried"
	OutcomeWaiting   = "waiting_children"
	OutcomeCancelled = "cancelled"
)

// NewMetrics registers the queue's figures on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		started: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "odavl_jobs_started_total", Help: "Job runs started, by job type.",
		}, []string{"type"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "odavl_jobs_runs_total", Help: "Job runs ended, by job type and outcome (completed, failed, retried, waiting_children, cancelled).",
		}, []string{"type", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "odavl_jobs_run_seconds", Help: "How long job runs took, by job type and outcome.",
			Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 5, 30, 120, 600},
		}, []string{"type", "outcome"}),
	}
	reg.MustRegister(m.started, m.outcomes, m.duration)
	return m
}

// Started counts a run of a job of type t.
func (m *Metrics) Started(t string) {
	if m != nil {
		m.started.WithLabelValues(t).Inc()
	}
}

// ObserveRun records the end of a run of a job of type t.
func (m *Metrics) ObserveRun(t, outcome string, took time.Duration) {
	if m != nil {
		m.outcomes.WithLabelValues(t, outcome).Inc()
		m.duration.WithLabelValues(t, outcome).Observe(took.Seconds())
	}
}

// depthCollector reports, per priority, the jobs its consumer has not
// delivered yet and those this instance holds for a worker.
type depthCollector struct{ q *Queue }

var (
	lagDesc = prometheus.NewDesc("odavl_jobs_consumer_pending",
		"Jobs of a priority not yet delivered by its JetStream consumer (the consumer's lag).", []string{"priority"}, nil)
	ackPendingDesc = prometheus.NewDesc("odavl_jobs_consumer_ack_pending",
		"Jobs of a priority delivered and not yet acknowledged: held for a worker or running, on every instance.", []string{"priority"}, nil)
	heldDesc = prometheus.NewDesc("odavl_jobs_held",
		"Jobs of a priority this instance holds for a worker.", []string{"priority"}, nil)
)

func (c depthCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- lagDesc
	ch <- ackPendingDesc
	ch <- heldDesc
}

func (c depthCollector) Collect(ch chan<- prometheus.Metric) {
	held := c.q.sched.heldByLevel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for i, p := range jobs.Priorities {
		ch <- prometheus.MustNewConstMetric(heldDesc, prometheus.GaugeValue, float64(held[i]), p.Name)
		cons, err := c.q.js.Consumer(ctx, events.StreamJobs, ConsumerName(p.Name))
		if err != nil {
			continue
		}
		info, err := cons.Info(ctx)
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(info.NumPending), p.Name)
		ch <- prometheus.MustNewConstMetric(ackPendingDesc, prometheus.GaugeValue, float64(info.NumAckPending), p.Name)
	}
}
