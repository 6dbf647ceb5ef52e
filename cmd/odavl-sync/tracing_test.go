package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/odavl/sync/client/cli"
	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/services/jobs"
	"github.com/odavl/sync/services/stats"
)

// TestOneTraceFromUploadToAggregate follows one Insight upload through a
// real serve with an in-memory exporter: the gateway's request, the
// received event's publish, the jobs service's processing and its result
// document write, the processed event's publish, and the stats service's
// delivery and aggregate update are spans of one trace, each the child of
// the one before (the trace context crosses NATS in the message headers).
// Not parallel: it sets the process's global tracer provider, as
// tracing.Start does when OTEL_* turns tracing on.
func TestOneTraceFromUploadToAggregate(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	otel.SetTracerProvider(tp)
	t.Cleanup(func() {
		otel.SetTracerProvider(noop.NewTracerProvider())
		_ = tp.Shutdown(context.Background())
	})
	s := startServe(t, nil)
	rc := s.post(events.Insight, insightBody(s.Cred.OrganizationID, s.Cred.ProjectID, 1))

	// The chain, from the request to the aggregate: each span's name and
	// kind, and its parent's index in the chain.
	want := []struct {
		name string
		kind trace.SpanKind
	}{
		{"POST /api/v1/sync/insight", trace.SpanKindServer},
		{"send " + events.ReceivedType(events.Insight), trace.SpanKindProducer},
		{"process " + jobs.ConsumerSync, trace.SpanKindConsumer},
		{"store result", trace.SpanKindInternal},
		{"send " + events.ProcessedType(events.Insight), trace.SpanKindProducer},
		{"process " + stats.ConsumerProcessed, trace.SpanKindConsumer},
		{"update aggregates", trace.SpanKindInternal},
	}
	parentOf := []int{-1, 0, 1, 2, 2, 4, 5}
	var chain []tracetest.SpanStub
	eventually(t, "the upload's trace to reach the aggregate update", func() bool {
		chain = findChain(exp.GetSpans(), rc.EventID)
		return len(chain) == len(want) && chain[len(chain)-1].Name != ""
	})
	for i, w := range want {
		s := chain[i]
		if s.Name != w.name || s.SpanKind != w.kind {
			t.Errorf("span %d: %s (%s), want %s (%s)", i, s.Name, s.SpanKind, w.name, w.kind)
		}
		if s.SpanContext.TraceID() != chain[0].SpanContext.TraceID() {
			t.Errorf("span %s in trace %s, want the request's %s", s.Name, s.SpanContext.TraceID(), chain[0].SpanContext.TraceID())
		}
		if p := parentOf[i]; p >= 0 && s.Parent.SpanID() != chain[p].SpanContext.SpanID() {
			t.Errorf("span %s is a child of %s, want of %s", s.Name, s.Parent.SpanID(), chain[p].Name)
		}
		if s.Status.Code.String() == "Error" {
			t.Errorf("span %s failed: %s", s.Name, s.Status.Description)
		}
	}
	if t.Failed() {
		t.Log(describe(exp.GetSpans()))
	}
}

// findChain is the upload's spans in chain order (see the test), found
// from the received event's publish (its message id is the upload id):
// missing ones are left zero.
func findChain(spans tracetest.SpanStubs, uploadID string) []tracetest.SpanStub {
	byID := map[trace.SpanID]tracetest.SpanStub{}
	children := map[trace.SpanID][]tracetest.SpanStub{}
	var received tracetest.SpanStub
	for _, s := range spans {
		byID[s.SpanContext.SpanID()] = s
		children[s.Parent.SpanID()] = append(children[s.Parent.SpanID()], s)
		if s.SpanKind == trace.SpanKindProducer && attr(s, "messaging.message.id") == uploadID {
			received = s
		}
	}
	if !received.SpanContext.IsValid() {
		return nil
	}
	child := func(of tracetest.SpanStub, name string) tracetest.SpanStub {
		for _, c := range children[of.SpanContext.SpanID()] {
			if c.Name == name {
				return c
			}
		}
		return tracetest.SpanStub{}
	}
	request := byID[received.Parent.SpanID()]
	process := child(received, "process "+jobs.ConsumerSync)
	store := child(process, "store result")
	processed := child(process, "send "+events.ProcessedType(events.Insight))
	counted := child(processed, "process "+stats.ConsumerProcessed)
	update := child(counted, "update aggregates")
	return []tracetest.SpanStub{request, received, process, store, processed, counted, update}
}

func attr(s tracetest.SpanStub, key string) string {
	for _, a := range s.Attributes {
		if a.Key == attribute.Key(key) {
			return a.Value.Emit()
		}
	}
	return ""
}

func describe(spans tracetest.SpanStubs) string {
	var b strings.Builder
	for _, s := range spans {
		fmt.Fprintf(&b, "\n%s %s %s parent=%s %s", s.SpanContext.TraceID(), s.SpanContext.SpanID(), s.Name, s.Parent.SpanID(), s.SpanKind)
	}
	return b.String()
}

// TestServeExportsTracesOverOTLP checks the wiring of the OTEL_* variables:
// with an OTLP endpoint set (here an HTTP server standing in for a
// collector), serve exports its spans there under the service name
// odavl-sync, by the time it has stopped, and a caller's traceparent
// header makes the upload's trace the caller's. Not parallel: serve sets
// the process's global tracer provider when tracing is on.
func TestServeExportsTracesOverOTLP(t *testing.T) {
	propagator := otel.GetTextMapPropagator()
	t.Cleanup(func() { otel.SetTracerProvider(noop.NewTracerProvider()); otel.SetTextMapPropagator(propagator) })
	var mu sync.Mutex
	var got bytes.Buffer
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" {
			mu.Lock()
			_, _ = io.Copy(&got, r.Body)
			mu.Unlock()
		}
	}))
	t.Cleanup(collector.Close)
	s := startServe(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL})
	traceID := trace.TraceID{0x0d, 0xa7, 0x1, 0x5c}
	rc := s.post(events.Insight, insightBody(s.Cred.OrganizationID, s.Cred.ProjectID, 1),
		"traceparent", fmt.Sprintf("00-%s-%s-01", traceID, trace.SpanID{0xca, 0x11}))
	s.stored(rc)
	if code := s.Stop(); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, want := range [][]byte{[]byte("odavl-sync"), traceID[:], []byte("store result"), []byte("process " + jobs.ConsumerSync)} {
		if !bytes.Contains(got.Bytes(), want) {
			t.Errorf("the collector got no %q (%d bytes of spans)", want, got.Len())
		}
	}
}

// TestBadTracingVariableIsAUsageError checks that an OTEL_* value serve
// cannot honour stops it at start, naming the variable.
func TestBadTracingVariableIsAUsageError(t *testing.T) {
	t.Parallel()
	for _, env := range []map[string]string{{"OTEL_TRACES_EXPORTER": "zipkin"}, {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), []string{"serve", "--data", t.TempDir(), "--addr", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0"},
			func(k string) string { return env[k] }, strings.NewReader(""), &out, &errOut)
		for name := range env {
			if code != cli.ExitUsage || !strings.Contains(errOut.String(), name) {
				t.Errorf("%v: exit %d, stderr %q; want %d naming %s", env, code, errOut.String(), cli.ExitUsage, name)
			}
		}
	}
}
