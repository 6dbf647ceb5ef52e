package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/events"
	jobslib "github.com/odavl/sync/libs/jobs"
	"github.com/odavl/sync/libs/mongotest"
	"github.com/odavl/sync/libs/natstest"
	"github.com/odavl/sync/libs/standalone"
	"github.com/odavl/sync/services/ingest"
	"github.com/odavl/sync/services/jobs"
	"github.com/odavl/sync/services/stats"
	"github.com/odavl/sync/services/storage"
)

// TestStandaloneHealthPort runs each service as its container does
// (standalone.Run with the service's own build) and checks what a platform
// engineer scrapes and probes on HEALTH_ADDR: /healthz names the build
// version, /readyz turns 200, and /metrics has the Go and process
// collectors, the build, the NATS connection and, for the services with
// consumer loops, their figures.
func TestStandaloneHealthPort(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		build     func(standalone.Deps) (standalone.Service, error)
		consumers []string
	}{
		{"ingest", ingest.Standalone, nil},
		{"jobs", jobs.Standalone, []string{jobs.ConsumerSync}},
		{"storage", storage.Standalone, nil},
		{"stats", stats.Standalone, []string{stats.ConsumerProcessed, stats.ConsumerJobs, stats.ConsumerFiles}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			nb := natstest.Start(t)
			env := map[string]string{
				"NATS_URL": nb.URL, "MONGO_URI": mongotest.Start(t).URI, "HEALTH_ADDR": "127.0.0.1:0",
				"HTTP_ADDR": "127.0.0.1:0", "METRICS_ADDR": "off", "STORAGE_ADDR": "127.0.0.1:0",
				"STORAGE_DATA_DIR": t.TempDir(), "JOBS_DATA_DIR": t.TempDir(),
			}
			health := runStandalone(t, tc.name, env, tc.build)

			if code, body := get(t, health+"/healthz"); code != http.StatusOK || body != "ok "+tc.name+" v9.8.7-test\n" {
				t.Errorf("/healthz: %d %q, want 200 naming the service and its version", code, body)
			}
			eventually(t, "/readyz 200", func() bool { code, _ := get(t, health+"/readyz"); return code == http.StatusOK })

			_, metrics := get(t, health+"/metrics")
			for _, want := range []string{
				"go_goroutines ", "go_memstats_heap_alloc_bytes ", "process_resident_memory_bytes ", "process_open_fds ",
				`odavl_sync_build_info{service="` + tc.name + `",version="v9.8.7-test"} 1`,
				"odavl_sync_nats_connected 1", `odavl_sync_nats_messages_total{direction="out"} `,
			} {
				if !strings.Contains(metrics, want) {
					t.Errorf("/metrics lacks %q", want)
				}
			}
			for _, c := range tc.consumers {
				if want := `odavl_sync_consumer_handled_total{consumer="` + c + `",outcome="ack"} 0`; !strings.Contains(metrics, want) {
					t.Errorf("/metrics lacks %q", want)
				}
			}
			if tc.name == "jobs" {
				jobsFigures(t, nb, health, metrics)
			}
			if tc.name != "stats" {
				return
			}
			// One processed upload counted shows in the consumer's figures.
			at := time.Now().UTC()
			ev, err := events.New("processed-u1", "/odavl-sync/jobs", events.ProcessedType(events.Insight), at, "o1", "p1", events.Processed{
				UploadID: "u1", ResultID: "u1", JobID: "u1", OrganizationID: "o1", ProjectID: "p1", Product: events.Insight,
				Timestamp: at, ReceivedAt: at, ProcessedAt: at,
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := bus.Publish(context.Background(), nb.JS, events.ProcessedSubject("o1", "p1", events.Insight), ev); err != nil {
				t.Fatal(err)
			}
			acked := regexp.MustCompile(`odavl_sync_consumer_handled_total\{consumer="` + stats.ConsumerProcessed + `",outcome="ack"\} (\d+)`)
			eventually(t, "the processed event acked in /metrics", func() bool {
				_, m := get(t, health+"/metrics")
				n, _ := strconv.Atoi(append(acked.FindStringSubmatch(m), "", "")[1])
				return n == 1 && strings.Contains(m, `odavl_sync_consumer_handler_seconds_count{consumer="`+stats.ConsumerProcessed+`"} 1`)
			})
		})
	}
}

// runStandalone runs the service until the test ends and returns the base
// URL of its health listener, read from its "health listening" log line.
func runStandalone(t *testing.T, name string, env map[string]string, build func(standalone.Deps) (standalone.Service, error)) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- standalone.Run(ctx, standalone.Binary{Name: name, Version: "v9.8.7-test"}, func(k string) string { return env[k] }, pw, build)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s stopped with %v", name, err)
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "health listening" {
				addr <- line.Addr
			}
		}
	}()
	select {
	case a := <-addr:
		return "http://" + a
	case err := <-done:
		t.Fatalf("%s stopped before listening: %v", name, err)
	case <-time.After(30 * time.Second):
		t.Fatalf("%s logged no health address within 30s", name)
	}
	return ""
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// jobsFigures: the jobs service alone reports its queue by priority at
// once, and an upload it processes in the runs of its job type.
func jobsFigures(t *testing.T, nb *natstest.Bundle, health, metrics string) {
	t.Helper()
	for _, p := range jobslib.Priorities {
		if want := `odavl_jobs_consumer_pending{priority="` + p.Name + `"} 0`; !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	at := time.Now().UTC()
	payload, err := json.Marshal(insightBody("o1", "p1", 1))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := events.New("received-u1", "/odavl-sync/ingest", events.ReceivedType(events.Insight), at, "o1", "p1", events.Received{
		UploadID: "u1", OrganizationID: "o1", ProjectID: "p1", Product: events.Insight, IdempotencyKey: "k1", ReceivedAt: at, Payload: payload,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bus.Publish(context.Background(), nb.JS, events.ReceivedSubject("o1", "p1", events.Insight, "u1"), ev); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the processed upload in the runs of its job type", func() bool {
		_, m := get(t, health+"/metrics")
		return strings.Contains(m, `odavl_jobs_started_total{type="INSIGHT_ANALYSIS"} 1`) &&
			strings.Contains(m, `odavl_jobs_runs_total{outcome="completed",type="INSIGHT_ANALYSIS"} 1`) &&
			strings.Contains(m, `odavl_jobs_run_seconds_count{outcome="completed",type="INSIGHT_ANALYSIS"} 1`)
	})
}
