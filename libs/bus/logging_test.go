package bus_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/events"
)

// TestLogSaysWhatBecameOfAFailedDelivery checks that a terminated delivery
// is logged at error, a retried one at warn with when it comes again, both
// naming the consumer, the event, the attempt, the error and the trace, and
// that an acknowledged one is not logged.
func TestLogSaysWhatBecameOfAFailedDelivery(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	mw := bus.Log(slog.New(slog.NewJSONHandler(&buf, nil)))
	traceID := trace.TraceID{1, 2, 3}
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: trace.SpanID{4}, TraceFlags: trace.FlagsSampled}))
	for _, tc := range []struct {
		err  error
		want map[string]any // nil: nothing logged
	}{
		{err: nil},
		{err: bus.Permanent(errors.New("bad payload")), want: map[string]any{"level": "ERROR", "msg": "event terminated", "err": "bad payload"}},
		{err: errors.New("store down"), want: map[string]any{"level": "WARN", "msg": "event failed, will retry", "err": "store down", "retryIn": float64(4 * time.Second)}},
	} {
		buf.Reset()
		d := bus.Delivery{Event: events.Event{ID: "ev-1", Type: events.TypeInsightReceived}, Consumer: "jobs-sync", Subject: "sync.v1.o.p.insight.received.u1",
			Attempt: 2, RetryIn: 4 * time.Second}
		if err := mw(func(context.Context, bus.Delivery) error { return tc.err })(ctx, d); err != tc.err {
			t.Fatalf("Log changed the handler's error %v into %v", tc.err, err)
		}
		if tc.want == nil {
			if buf.Len() != 0 {
				t.Errorf("acknowledged delivery logged: %s", buf.String())
			}
			continue
		}
		var got map[string]any
		if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
			t.Fatalf("log %q: %v", buf.String(), err)
		}
		want := map[string]any{"consumer": "jobs-sync", "event": "ev-1", "type": events.TypeInsightReceived, "attempt": float64(2),
			"subject": "sync.v1.o.p.insight.received.u1", "traceId": traceID.String()}
		for k, v := range tc.want {
			want[k] = v
		}
		for k, v := range want {
			if g, ok := got[k]; !ok || (k != "err" && g != v) || (k == "err" && !strings.Contains(g.(string), v.(string))) {
				t.Errorf("log %s = %v, want %v (log: %s)", k, got[k], v, buf.String())
			}
		}
	}
}
