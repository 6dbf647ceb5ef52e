package stats_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/odavl/sync/libs/mongotest"
	"github.com/odavl/sync/libs/natstest"
	"github.com/odavl/sync/libs/standalone"
	"github.com/odavl/sync/services/stats"
)

// The service binary (cmd/stats) logs times in UTC with milliseconds and
// durations in human units.
func TestStandaloneLogsDurationsAndMillisecondTimes(t *testing.T) {
	t.Parallel()
	ns, store := natstest.Start(t), mongotest.Start(t)
	env := map[string]string{"NATS_URL": ns.URL, "MONGO_URI": store.URI, "MONGO_DB": store.DB.Name(), "HEALTH_ADDR": "127.0.0.1:0", "STATS_ACK_WAIT": "90s"}
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		err := standalone.Run(ctx, standalone.Binary{Name: "stats", Version: "test"}, func(k string) string { return env[k] }, pw, stats.Standalone)
		pw.Close()
		done <- err
	}()
	// Read the log until the service is ready, then stop it and read the rest.
	var lines []string
	timer := time.AfterFunc(30*time.Second, func() { pw.CloseWithError(errors.New("stats not ready after 30s")) })
	defer timer.Stop()
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if strings.Contains(sc.Text(), "stats service ready") {
			cancel()
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading the log: %v\n%s", err, strings.Join(lines, "\n"))
	}
	if err := <-done; err != nil {
		t.Fatalf("stats: %v", err)
	}
	stamp := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
	for _, line := range lines {
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
