package jsonlog_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"regexp"
	"testing"
	"time"

	"github.com/odavl/sync/libs/jsonlog"
)

func TestNewWritesMillisecondTimesAndDurationStrings(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	jsonlog.New(&buf, slog.LevelInfo).Info("stats rebuilt", "took", 90*time.Millisecond,
		"config", slog.GroupValue(slog.Duration("interval", time.Minute)), "at", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	var rec struct {
		Time, Took, At string
		Config         struct{ Interval string }
	}
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("%v: %s", err, buf.Bytes())
	}
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`).MatchString(rec.Time) {
		t.Errorf("time %q, want RFC 3339 UTC with milliseconds", rec.Time)
	}
	if rec.Took != "90ms" || rec.Config.Interval != "1m0s" || rec.At != "2026-01-02T03:04:05.000Z" {
		t.Errorf("took %q, interval %q, at %q; want 90ms, 1m0s, 2026-01-02T03:04:05.000Z", rec.Took, rec.Config.Interval, rec.At)
	}
}
