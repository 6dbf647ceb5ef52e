package standalone

import (
	"net/http"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/odavl/sync/libs/bus"
)

// metrics is what a service alone serves on /metrics: the Go runtime and
// process figures, its build, its NATS connection and its consumer loops.
type metrics struct {
	reg *prometheus.Registry
	bus *bus.Metrics
}

func newMetrics(bin Binary, nc *nats.Conn) *metrics {
	reg := prometheus.NewRegistry()
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "odavl_sync_build_info",
		Help:        "The running binary: always 1, with its service and build version.",
		ConstLabels: prometheus.Labels{"service": bin.Name, "version": bin.Version},
	})
	build.Set(1)
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		build,
		natsCollector{nc},
	)
	return &metrics{reg: reg, bus: bus.NewMetrics(reg)}
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// natsCollector reads the connection's own counters at each scrape.
type natsCollector struct{ nc *nats.Conn }

var (
	natsMsgs = prometheus.NewDesc("odavl_sync_nats_messages_total",
		"Messages through the service's NATS connection, by direction (in, out).", []string{"direction"}, nil)
	natsBytes = prometheus.NewDesc("odavl_sync_nats_bytes_total",
		"Payload bytes through the service's NATS connection, by direction (in, out).", []string{"direction"}, nil)
	natsReconnects = prometheus.NewDesc("odavl_sync_nats_reconnects_total",
		"Reconnections of the service's NATS connection.", nil, nil)
	natsConnected = prometheus.NewDesc("odavl_sync_nats_connected",
		"1 while the service's NATS connection is up.", nil, nil)
)

func (c natsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- natsMsgs
	ch <- natsBytes
	ch <- natsReconnects
	ch <- natsConnected
}

func (c natsCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.nc.Stats()
	ch <- prometheus.MustNewConstMetric(natsMsgs, prometheus.CounterValue, float64(s.InMsgs), "in")
	ch <- prometheus.MustNewConstMetric(natsMsgs, prometheus.CounterValue, float64(s.OutMsgs), "out")
	ch <- prometheus.MustNewConstMetric(natsBytes, prometheus.CounterValue, float64(s.InBytes), "in")
	ch <- prometheus.MustNewConstMetric(natsBytes, prometheus.CounterValue, float64(s.OutBytes), "out")
	ch <- prometheus.MustNewConstMetric(natsReconnects, prometheus.CounterValue, float64(s.Reconnects))
	up := 0.0
	if c.nc.IsConnected() {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(natsConnected, prometheus.GaugeValue, up)
}
