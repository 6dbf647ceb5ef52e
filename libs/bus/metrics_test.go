package bus_test

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/odavl/sync/libs/bus"
)

// TestMeasureCountsEachOutcome checks that Measure counts deliveries by
// consumer and outcome, times them, and shows each as in flight while it
// is handled; and that Start shows an idle consumer at 0.
func TestMeasureCountsEachOutcome(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := bus.NewMetrics(reg)
	m.Start("idle")
	h := bus.Measure(m)(func(_ context.Context, d bus.Delivery) error {
		if n := value(t, reg, "odavl_sync_consumer_in_flight", d.Consumer, ""); n != 1 {
			t.Errorf("in flight while handled: %v, want 1", n)
		}
		switch d.Event.ID {
		case "term":
			return bus.Permanent(errors.New("bad"))
		case "retry":
			return errors.New("later")
		}
		return nil
	})
	for _, id := range []string{"ack", "ack", "term", "retry"} {
		d := bus.Delivery{Consumer: "c"}
		d.Event.ID = id
		_ = h(context.Background(), d)
	}
	for _, c := range []struct {
		name, consumer, outcome string
		want                    float64
	}{
		{"odavl_sync_consumer_handled_total", "c", bus.OutcomeAck, 2},
		{"odavl_sync_consumer_handled_total", "c", bus.OutcomeTerm, 1},
		{"odavl_sync_consumer_handled_total", "c", bus.OutcomeRetry, 1},
		{"odavl_sync_consumer_handler_seconds", "c", "", 4},
		{"odavl_sync_consumer_in_flight", "c", "", 0},
		{"odavl_sync_consumer_handled_total", "idle", bus.OutcomeAck, 0},
		{"odavl_sync_consumer_handler_seconds", "idle", "", 0},
	} {
		if got := value(t, reg, c.name, c.consumer, c.outcome); got != c.want {
			t.Errorf("%s{consumer=%q,outcome=%q} = %v, want %v", c.name, c.consumer, c.outcome, got, c.want)
		}
	}
}

// value is a series' value (a histogram's count), or -1 when it does not exist.
func value(t *testing.T, reg *prometheus.Registry, name, consumer, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, s := range mf.GetMetric() {
			if label(s, "consumer") != consumer || label(s, "outcome") != outcome {
				continue
			}
			switch {
			case s.Counter != nil:
				return s.Counter.GetValue()
			case s.Gauge != nil:
				return s.Gauge.GetValue()
			case s.Histogram != nil:
				return float64(s.Histogram.GetSampleCount())
			}
		}
	}
	return -1
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
