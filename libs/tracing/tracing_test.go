package tracing_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/odavl/sync/libs/tracing"
)

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  map[string]string
		want tracing.Config
		err  string
	}{
		{name: "off by default", want: tracing.Config{ServiceName: "svc", ServiceVersion: "v1", Protocol: tracing.ProtocolHTTP}},
		{name: "an endpoint turns it on", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"},
			want: tracing.Config{On: true, Endpoint: "http://collector:4318/v1/traces", ServiceName: "svc", ServiceVersion: "v1", Protocol: tracing.ProtocolHTTP}},
		{name: "traces endpoint as given", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/x", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://other"},
			want: tracing.Config{On: true, Endpoint: "http://c:4318/x", ServiceName: "svc", ServiceVersion: "v1", Protocol: tracing.ProtocolHTTP}},
		{name: "grpc", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_SERVICE_NAME": "gw"},
			want: tracing.Config{On: true, Endpoint: "http://c:4317", ServiceName: "gw", ServiceVersion: "v1", Protocol: tracing.ProtocolGRPC}},
		{name: "otlp to the default endpoint", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"},
			want: tracing.Config{On: true, ServiceName: "svc", ServiceVersion: "v1", Protocol: tracing.ProtocolHTTP}},
		{name: "none wins over an endpoint", env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"},
			want: tracing.Config{Endpoint: "http://c:4318/v1/traces", ServiceName: "svc", ServiceVersion: "v1", Protocol: tracing.ProtocolHTTP}},
		{name: "disabled SDK", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"},
			want: tracing.Config{ServiceName: "svc", ServiceVersion: "v1", Protocol: tracing.ProtocolHTTP}},
		{name: "unknown exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, err: "OTEL_TRACES_EXPORTER"},
		{name: "unknown protocol", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, err: "OTEL_EXPORTER_OTLP_PROTOCOL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := tracing.ConfigFromEnv(func(k string) string { return tc.env[k] }, "svc", "v1")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one naming %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStartExportsToTheEndpoint checks that, on, spans go to the OTLP
// endpoint (here an HTTP server standing in for a collector) by the time
// shutdown returns, and that off, the global provider is left alone.
// Not parallel: it sets the process's global tracer provider.
func TestStartExportsToTheEndpoint(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	before, propagator := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	t.Cleanup(func() { otel.SetTracerProvider(before); otel.SetTextMapPropagator(propagator) })

	off, err := tracing.Start(context.Background(), quiet, tracing.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if otel.GetTracerProvider() != before {
		t.Fatal("tracing off replaced the global tracer provider")
	}
	off()

	got := make(chan string, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got <- r.Method + " " + r.URL.Path
	}))
	t.Cleanup(srv.Close)
	c, err := tracing.ConfigFromEnv(func(k string) string {
		return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL}[k]
	}, "test", "v0")
	if err != nil {
		t.Fatal(err)
	}
	stop, err := tracing.Start(context.Background(), quiet, c)
	if err != nil {
		t.Fatal(err)
	}
	_, span := otel.Tracer("test").Start(context.Background(), "work")
	if !span.SpanContext().IsValid() || !trace.SpanFromContext(trace.ContextWithSpan(context.Background(), span)).IsRecording() {
		t.Fatal("the global tracer does not record once tracing is on")
	}
	span.End()
	stop()
	select {
	case req := <-got:
		if req != "POST /v1/traces" {
			t.Errorf("collector got %s, want POST /v1/traces", req)
		}
	default:
		t.Fatal("no span reached the collector by stop")
	}
}
