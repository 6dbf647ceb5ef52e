package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/odavl/sync/cmd/odavl-sync/internal/cluster"
	"github.com/odavl/sync/libs/rpc"
)

// BenchmarkCluster measures the local cluster (three clustered nats-server
// with R3 streams, the store as its own process, every service its own
// process) with one and then two instances each of the gateway, the jobs
// service and the storage service (stats: one, as always): ~10 KB Insight
// uploads accepted per second from 32 clients spread over the gateways, the
// same uploads processed per second (counted by stats, so through the jobs
// service and the store), and EMAIL_SEND jobs submitted and completed per
// second. JetStream runs with its default fsync interval. Counts come from
// BENCH_UPLOADS (default 2000) and BENCH_JOBS (default 1000); b.N is ignored:
//
//	make bench-cluster   (go test -run '^$' -bench '^BenchmarkCluster$' -benchtime 1x ./cmd/odavl-sync)
func BenchmarkCluster(b *testing.B) {
	uploads, jobs := envInt("BENCH_UPLOADS", 2000), envInt("BENCH_JOBS", 1000)
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprintf("instances=%d", n), func(b *testing.B) {
			c := startCluster(b, cluster.Options{Gateways: n, Jobs: n, Storage: n, Env: map[string]string{"RATE_LIMIT_RPS": "0"}})
			cc := newClusterClient(c)
			cc.hc = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32, MaxConnsPerHost: 32}}
			bodies := make([][]byte, uploads)
			for i := range bodies {
				bodies[i] = tenKBInsight("local", "default", i)
			}
			var sum rpc.StatsSummaryResponse
			waitStats := func(what string, done func() bool) time.Time {
				deadline := time.Now().Add(10 * time.Minute)
				for {
					sum = rpc.StatsSummaryResponse{}
					if cc.get("/api/v1/stats/summary", &sum) == nil && done() {
						return time.Now()
					}
					if time.Now().After(deadline) {
						b.Fatalf("%s: not done after 10 minutes: %+v", what, sum.Figures)
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
			b.ResetTimer()

			start := time.Now()
			lat, took, failed := runConcurrent(32, uploads, func(i int) error {
				st, body, err := cc.do(http.MethodPost, "/api/v1/sync/insight", json.RawMessage(bodies[i]))
				if err != nil || st != http.StatusAccepted {
					return fmt.Errorf("upload %d: %d %s %v", i, st, body, err)
				}
				return nil
			})
			if failed > 0 {
				b.Fatalf("%d uploads not accepted", failed)
			}
			processed := waitStats("uploads processed", func() bool { return sum.Insight.Analyses >= int64(uploads) }).Sub(start)

			start = time.Now()
			_, jobsTook, failed := runConcurrent(16, jobs, func(i int) error {
				st, body, err := cc.do(http.MethodPost, "/api/v1/jobs", map[string]any{"type": "EMAIL_SEND",
					"payload": map[string]any{"to": []string{fmt.Sprintf("dev%d@example.com", i)}, "subject": "bench", "text": "hello"}})
				if err != nil || st != http.StatusAccepted {
					return fmt.Errorf("job %d: %d %s %v", i, st, body, err)
				}
				return nil
			})
			if failed > 0 {
				b.Fatalf("%d jobs not accepted", failed)
			}
			completed := waitStats("jobs completed", func() bool { return sum.Jobs.ByType["EMAIL_SEND"]["COMPLETED"] >= int64(jobs) }).Sub(start)
			b.StopTimer()

			b.ReportMetric(float64(uploads)/took.Seconds(), "accepted/s")
			b.ReportMetric(ms(pct(lat, 50)), "p50-ms")
			b.ReportMetric(ms(pct(lat, 99)), "p99-ms")
			b.ReportMetric(float64(uploads)/processed.Seconds(), "processed/s")
			b.ReportMetric(float64(jobs)/jobsTook.Seconds(), "jobs-submitted/s")
			b.ReportMetric(float64(jobs)/completed.Seconds(), "jobs-completed/s")
			b.Logf("%d gateways, %d jobs, %d storage, 1 stats: %d uploads of %d bytes accepted in %s (p50 %s, p99 %s), processed in %s; %d jobs submitted in %s, completed in %s",
				n, n, n, uploads, len(bodies[0]), took.Round(time.Millisecond), pct(lat, 50).Round(time.Millisecond), pct(lat, 99).Round(time.Millisecond),
				processed.Round(time.Millisecond), jobs, jobsTook.Round(time.Millisecond), completed.Round(time.Millisecond))
		})
	}
}
