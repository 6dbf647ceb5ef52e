package tracing_test

import (
	"context"
	"log/slog"
	"os"

	"github.com/odavl/sync/libs/tracing"
)

// A process reads the OTEL_* variables once at start, turns tracing on (or
// leaves it off), and flushes the last spans at its end; its code starts
// spans under the request's or delivery's with Span.
func Example() {
	ctx := context.Background()
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	cfg, err := tracing.ConfigFromEnv(os.Getenv, "jobs", "v1.2.3")
	if err != nil {
		log.Error("bad tracing configuration", "err", err)
		return
	}
	stop, err := tracing.Start(ctx, log, cfg)
	if err != nil {
		return
	}
	defer stop()

	ctx, end := tracing.Span(ctx, "store result")
	err = nil // the work of the span
	end(err)
}
