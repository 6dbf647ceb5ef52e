package bus

import (
	"context"
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
// handled by outcome, seconds in hand, deliveries in hand. One
// Metrics serves every loop of a process (through Measure); a nil *Metrics
// records nothing.
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
			Help:    "Time one delivery was in hand (handled, after waiting for a worker if all were busy), by durable consumer.",
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

// Start makes a consumer's series exist from the start (at 0), so a scrape
// shows a consumer that has had nothing to do. Measure creates them on a
// consumer's first delivery otherwise.
func (m *Metrics) Start(consumer string) {
	if m == nil {
		return
	}
	for _, o := range []string{OutcomeAck, OutcomeTerm, OutcomeRetry} {
		m.handled.WithLabelValues(consumer, o)
	}
	m.seconds.WithLabelValues(consumer)
	m.inFlight.WithLabelValues(consumer)
}

// Measure records each delivery in m, by consumer: in flight while it is
// in hand (handled or waiting for a worker), then its outcome and how long
// it took. A nil m records nothing.
func Measure(m *Metrics) Middleware {
	return func(next Handler) Handler {
		if m == nil {
			return next
		}
		return func(ctx context.Context, d Delivery) error {
			inFlight := m.inFlight.WithLabelValues(d.Consumer)
			inFlight.Inc()
			t0 := time.Now()
			err := next(ctx, d)
			inFlight.Dec()
			m.handled.WithLabelValues(d.Consumer, Outcome(err)).Inc()
			m.seconds.WithLabelValues(d.Consumer).Observe(time.Since(t0).Seconds())
			return err
		}
	}
}
