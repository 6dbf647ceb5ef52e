package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkIngest measures accepted ~10 KB Insight uploads per second and
// their latency through the real serve (HTTP, auth, validation, idempotency
// record, JetStream publish with PubAck, the jobs service processing behind
// it), and in the same run the raw JetStream publish rate of the same bytes
// on the same server (a file stream with the same dedupe window, synchronous
// publishes with a Nats-Msg-Id), with the same number of concurrent clients.
// JetStream runs with its default fsync interval (acknowledged before fsync).
// b.N is the number of uploads (and of raw publishes):
//
//	make bench-ingest   (go test -run '^$' -bench '^BenchmarkIngest$' -benchtime 3000x ./cmd/odavl-sync)
func BenchmarkIngest(b *testing.B) {
	const clients = 32
	s := startServe(b, map[string]string{"RATE_LIMIT_RPS": "0"}) // measure the path, not the per-key limit
	c := s.Cred
	bodies := make([][]byte, b.N)
	for i := range bodies {
		bodies[i] = tenKBInsight(c.OrganizationID, c.ProjectID, i)
	}
	b.Logf("upload size %d bytes, %d clients, %d uploads", len(bodies[0]), clients, b.N)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}}

	// HTTP uploads.
	b.ResetTimer()
	httpLat, httpTook, failed := runConcurrent(clients, b.N, func(i int) error {
		req, _ := http.NewRequest(http.MethodPost, c.APIURL+"/api/v1/sync/insight", bytes.NewReader(bodies[i]))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+c.APIKey)
		req.Header.Set("X-Organization-Id", c.OrganizationID)
		req.Header.Set("X-Project-Id", c.ProjectID)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
	b.StopTimer()
	if failed > 0 {
		b.Fatalf("%d uploads not accepted", failed)
	}

	// Raw JetStream publishes of the same bytes.
	nc := s.natsConn()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "BENCH", Subjects: []string{"bench.raw"}, Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute}); err != nil {
		b.Fatal(err)
	}
	rawLat, rawTook, failed := runConcurrent(clients, b.N, func(i int) error {
		_, err := js.PublishMsg(ctx, &nats.Msg{Subject: "bench.raw", Data: bodies[i]}, jetstream.WithMsgID("raw-"+strconv.Itoa(i)))
		return err
	})
	if failed > 0 {
		b.Fatalf("%d raw publishes failed", failed)
	}

	httpRate := float64(b.N) / httpTook.Seconds()
	rawRate := float64(b.N) / rawTook.Seconds()
	b.ReportMetric(httpRate, "uploads/s")
	b.ReportMetric(ms(pct(httpLat, 50)), "p50-ms")
	b.ReportMetric(ms(pct(httpLat, 99)), "p99-ms")
	b.ReportMetric(rawRate, "raw-pub/s")
	b.ReportMetric(ms(pct(rawLat, 50)), "raw-p50-ms")
	b.ReportMetric(ms(pct(rawLat, 99)), "raw-p99-ms")
	b.ReportMetric(httpRate/rawRate, "http/raw")
	b.Logf("HTTP uploads: %.0f/s p50 %.2f ms p99 %.2f ms | raw JetStream publishes: %.0f/s p50 %.2f ms p99 %.2f ms | ratio %.2f (JetStream default fsync)",
		httpRate, ms(pct(httpLat, 50)), ms(pct(httpLat, 99)), rawRate, ms(pct(rawLat, 50)), ms(pct(rawLat, 99)), httpRate/rawRate)
}

// runConcurrent runs do(0..n-1) on the given number of workers and returns
// each call's latency, the wall time and the failures.
func runConcurrent(workers, n int, do func(i int) error) ([]time.Duration, time.Duration, int) {
	lat := make([]time.Duration, n)
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t := time.Now()
				if err := do(i); err != nil {
					failed.Add(1)
				}
				lat[i] = time.Since(t)
			}
		}()
	}
	wg.Wait()
	return lat, time.Since(start), int(failed.Load())
}

func pct(d []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, len(s)*p/100)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// tenKBInsight is a valid Insight upload of about 10 KB, unique by n.
func tenKBInsight(org, project string, n int) []byte {
	body := insightBody(org, project, n)
	issues := body["issues"].([]map[string]any)
	sev := map[string]int{"critical": 1, "high": 1, "medium": 1, "low": 0}
	for i := 0; len(issues) < 48; i++ {
		issues = append(issues, map[string]any{"detector": "eslint", "severity": "low",
			"message": fmt.Sprintf("no-unused-vars: '%s' is assigned a value but never used (upload %d, issue %d)", "someLongVariableName", n, i),
			"file":    fmt.Sprintf("packages/web/src/components/checkout/Step%02d.tsx", i), "line": 10 + i, "column": 5})
		sev["low"]++
	}
	body["issues"] = issues
	body["issuesBySeverity"] = sev
	body["totalIssues"] = sev["critical"] + sev["high"] + sev["medium"] + sev["low"]
	b, _ := json.Marshal(body)
	return b
}
