// Package jsonlog makes the JSON logger of every ODAVL Sync process, so
// their lines read alike: times in UTC with exactly three decimal places,
// durations as Go duration strings ("1.234s", "1m0s"), never nanoseconds.
//
//	log := jsonlog.New(os.Stdout, slog.LevelInfo)
//	log.Info("ready", "took", time.Since(start))
package jsonlog

import (
	"io"
	"log/slog"
	"time"
)

// TimeFormat is RFC 3339 with milliseconds; times are written in UTC.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// New returns a logger writing JSON lines to w from level up.
func New(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: ReplaceAttr}))
}

// ReplaceAttr is the handlers' option that writes times at one precision and
// durations (one or a list) in human units.
func ReplaceAttr(_ []string, a slog.Attr) slog.Attr {
	switch a.Value.Kind() {
	case slog.KindTime:
		a.Value = slog.StringValue(a.Value.Time().UTC().Format(TimeFormat))
	case slog.KindDuration:
		a.Value = slog.StringValue(a.Value.Duration().String())
	case slog.KindAny:
		if ds, ok := a.Value.Any().([]time.Duration); ok {
			s := make([]string, len(ds))
			for i, d := range ds {
				s[i] = d.String()
			}
			a.Value = slog.AnyValue(s)
		}
	}
	return a
}
