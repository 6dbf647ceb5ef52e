package bus

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of a delivery, the outcome label of Metrics.
const (
	OutcomeAck   = "ack"
	OutcomeTerm  = "term"
	OutcomeRetry = "retry"
)

// Metrics are the consumer loops' figures, by durable consumer: deliveries
// handled by outcome, handler seconds, deliveries in hand. One Metrics
// serves every loop of a process; a nil *Metrics records nothing.
type Metrics struct {
	handled  *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
	inFlight *prometheus.GaugeVec
}

// NewMetrics registers the consumer figures on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "odavl_sync_consumer_handled_total",
			Help: "Deliveries handled by the consumer loop, by durable consumer and outcome (ack, term, retry).",
		}, []string{"consumer", "outcome"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "odavl_sync_consumer_handler_seconds",
			Help:    "Time the handler took for one delivery, by durable consumer.",
			Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 5, 30},
		}, []string{"consumer"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "odavl_sync_consumer_in_flight",
			Help: "Deliveries in hand (handled or waiting for a worker), by durable consumer.",
		}, []string{"consumer"}),
	}
	reg.MustRegister(m.handled, m.seconds, m.inFlight)
	return m
}

// start makes the consumer's series exist from the start (at 0), so a
// scrape shows a consumer that has had nothing to do.
func (m *Metrics) start(consumer string) {
	if m == nil {
		return
	}
	for _, o := range []string{OutcomeAck, OutcomeTerm, OutcomeRetry} {
		m.handled.WithLabelValues(consumer, o)
	}
	m.seconds.WithLabelValues(consumer)
	m.inFlight.WithLabelValues(consumer)
}

func (m *Metrics) received(consumer string) {
	if m != nil {
		m.inFlight.WithLabelValues(consumer).Inc()
	}
}

func (m *Metrics) done(consumer, outcome string, took time.Duration) {
	if m == nil {
		return
	}
	m.inFlight.WithLabelValues(consumer).Dec()
	if outcome == "" {
		return // not handled (no metadata, not an event, killed)
	}
	m.handled.WithLabelValues(consumer, outcome).Inc()
	m.seconds.WithLabelValues(consumer).Observe(took.Seconds())
}
