// Package tracing turns OpenTelemetry tracing on from the standard OTEL_*
// variables. It is off by default: no exporter, and the global tracer
// provider stays OpenTelemetry's no-op one. On, every span of the process
// (the gateway's requests, the bus's publishes and deliveries, the jobs
// service's document writes, the stats service's aggregate updates) goes to
// an OTLP collector, and the W3C trace context links them across services
// (libs/bus carries it in NATS message headers).
package tracing

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Protocols of the OTLP exporter (OTEL_EXPORTER_OTLP_PROTOCOL).
const (
	ProtocolHTTP = "http/protobuf"
	ProtocolGRPC = "grpc"
)

// Config says whether and where spans are exported.
type Config struct {
	// On is whether spans are exported at all.
	On bool
	// Endpoint is the OTLP endpoint URL; empty: the exporter's default
	// (http://localhost:4318/v1/traces, or localhost:4317 for grpc).
	Endpoint string
	// Protocol is ProtocolHTTP or ProtocolGRPC.
	Protocol string
	// ServiceName is the service.name resource attribute.
	ServiceName string
	// ServiceVersion is the service.version resource attribute.
	ServiceVersion string
}

// ConfigFromEnv reads the standard variables: tracing is on with
// OTEL_TRACES_EXPORTER=otlp, or with OTEL_TRACES_EXPORTER unset and an
// endpoint set (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, or
// OTEL_EXPORTER_OTLP_ENDPOINT to which /v1/traces is added for HTTP); off
// with none, with OTEL_SDK_DISABLED=true, or with nothing set. The
// protocol is OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or
// OTEL_EXPORTER_OTLP_PROTOCOL (http/protobuf by default, or grpc), the
// service name OTEL_SERVICE_NAME (service by default). The exporter reads
// the rest (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _CERTIFICATE, …) and the
// SDK the sampler (OTEL_TRACES_SAMPLER) and OTEL_RESOURCE_ATTRIBUTES from
// the process's environment itself.
func ConfigFromEnv(getenv func(string) string, service, version string) (Config, error) {
	c := Config{ServiceName: service, ServiceVersion: version, Protocol: ProtocolHTTP}
	if name := getenv("OTEL_SERVICE_NAME"); name != "" {
		c.ServiceName = name
	}
	switch p := first(getenv, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"); p {
	case "", ProtocolHTTP:
	case ProtocolGRPC:
		c.Protocol = ProtocolGRPC
	default:
		return c, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL: %q is not supported (http/protobuf or grpc)", p)
	}
	if e := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); e != "" {
		c.Endpoint = e
	} else if e := getenv("OTEL_EXPORTER_OTLP_ENDPOINT"); e != "" {
		c.Endpoint = e
		if c.Protocol == ProtocolHTTP {
			c.Endpoint = strings.TrimSuffix(e, "/") + "/v1/traces"
		}
	}
	switch x := getenv("OTEL_TRACES_EXPORTER"); x {
	case "":
		c.On = c.Endpoint != ""
	case "otlp":
		c.On = true
	case "none":
	default:
		return c, fmt.Errorf("OTEL_TRACES_EXPORTER: %q is not supported (otlp or none)", x)
	}
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") {
		c.On = false
	}
	return c, nil
}

func first(getenv func(string) string, names ...string) string {
	for _, n := range names {
		if v := getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// FlushTimeout bounds how long stop waits for the last spans to be exported.
const FlushTimeout = 5 * time.Second

// Start turns tracing on as c says: it makes an exporting tracer provider
// and the W3C trace context the process's global ones (otel.SetTracerProvider,
// otel.SetTextMapPropagator). Off, it changes nothing. stop exports the
// spans not yet exported (for at most FlushTimeout) and stops; call it
// once, at the process's end.
func Start(ctx context.Context, log *slog.Logger, c Config) (stop func(), err error) {
	if !c.On {
		return func() {}, nil
	}
	var exp sdktrace.SpanExporter
	if c.Protocol == ProtocolGRPC {
		var opts []otlptracegrpc.Option
		if c.Endpoint != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(c.Endpoint))
		}
		exp, err = otlptracegrpc.New(ctx, opts...)
	} else {
		var opts []otlptracehttp.Option
		if c.Endpoint != "" {
			opts = append(opts, otlptracehttp.WithEndpointURL(c.Endpoint))
		}
		exp, err = otlptracehttp.New(ctx, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("otlp trace exporter: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		attribute.String("service.name", c.ServiceName), attribute.String("service.version", c.ServiceVersion)))
	if err != nil {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	log.Info("tracing on", "exporter", "otlp", "protocol", c.Protocol, "endpoint", c.Endpoint, "serviceName", c.ServiceName)
	return func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), FlushTimeout)
		defer cancel()
		if err := tp.Shutdown(fctx); err != nil {
			log.Warn("tracing: last spans not exported", "err", err)
		}
	}, nil
}
