package jsonlog_test

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/odavl/sync/libs/jsonlog"
)

func Example() {
	h := slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: jsonlog.ReplaceAttr})
	r := slog.NewRecord(time.Date(2026, 1, 2, 3, 4, 5, 600_000_000, time.FixedZone("CET", 3600)), slog.LevelInfo, "ready", 0)
	r.AddAttrs(slog.Duration("took", 1234*time.Millisecond), slog.Any("backoff", []time.Duration{2 * time.Second, time.Minute}))
	_ = h.Handle(context.Background(), r)
	// Output:
	// {"time":"2026-01-02T02:04:05.600Z","level":"INFO","msg":"ready","took":"1.234s","backoff":["2s","1m0s"]}
}
