package stats_test

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/odavl/sync/libs/mongotest"
	"github.com/odavl/sync/libs/natstest"
	"github.com/odavl/sync/libs/standalone"
	"github.com/odavl/sync/services/stats"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// The service binary (cmd/stats) logs times in UTC with milliseconds and
// durations in human units.
func TestStandaloneLogsDurationsAndMillisecondTimes(t *testing.T) {
	t.Parallel()
	ns, store := natstest.Start(t), mongotest.Start(t)
	env := map[string]string{"NATS_URL": ns.URL, "MONGO_URI": store.URI, "MONGO_DB": store.DB.Name(), "HEALTH_ADDR": "127.0.0.1:0", "STATS_ACK_WAIT": "90s"}
	out := &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- standalone.Run(ctx, "stats", func(k string) string { return env[k] }, out, func(d standalone.Deps) (standalone.Service, error) {
			cfg, err := stats.ConfigFromEnv(d.Env)
			if err != nil {
				return nil, err
			}
			return stats.New(d.Log, d.NC, d.DB, cfg)
		})
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "stats service ready") {
		select {
		case err := <-done:
			t.Fatalf("stats stopped before ready: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats not ready after 30s:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("stats: %v", err)
	}
	stamp := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("a log line is no JSON: %q", line)
		}
		if ts, _ := rec["time"].(string); !stamp.MatchString(ts) {
			t.Errorf("time %v is not RFC 3339 UTC with milliseconds: %s", rec["time"], line)
		}
		if rec["msg"] == "stats service ready" && rec["ackWait"] != "1m30s" {
			t.Errorf("ackWait %v, want 1m30s: %s", rec["ackWait"], line)
		}
	}
}
