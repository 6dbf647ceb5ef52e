package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/services/jobs"
)

// BenchmarkIngest compares accepted ~10 KB Insight uploads per second through
// the real serve (HTTP, auth, validation, the JetStream publish with its
// PubAck) with raw synchronous JetStream publishes of the same bytes (a file
// stream with the same dedupe window, a Nats-Msg-Id each, one connection
// per publisher) at the same concurrency, on the same server. b.N uploads
// (and raw publishes) a side:
//
//	make bench-ingest   (go test -run '^$' -bench '^BenchmarkIngest$' -benchtime 3000x ./cmd/odavl-sync)
//
// Each pair of sides runs on a fresh serve and the order of the sides
// rotates from repeat to repeat. Two pairs per repeat, three repeats:
//   - processing paused: the jobs service's consumer of received uploads is
//     paused on the server (NATS consumer pause), so the gateway path is
//     measured alone;
//   - processing running: the jobs service stores results behind the
//     gateway; the raw side runs only once every consumer has settled.
//
// Beside each paused pair runs a third side, the HTTP floor: a bare net/http
// server on the same machine that reads each body and publishes it to a
// stream of its own exactly as the raw side does, with no validation, no
// auth and no idempotency. It is not the product; it shows how much of the
// raw rate an HTTP request costs by itself, whatever the gateway does.
//
// BENCH_CPUPROFILE=FILE writes the CPU profile of the process (serve and
// its HTTP clients) while the first paused pair's gateway side runs.
//
// Then, on a fresh serve, POST → stored latency at an open-loop 200 uploads/s
// (BENCH_RATE, BENCH_SECONDS): each upload is sent at its scheduled time
// whatever the earlier ones do, and its latency runs from that time to its
// processed event (published once its result and job record are stored).
// JetStream runs with its default fsync interval (acknowledged before fsync).
func BenchmarkIngest(b *testing.B) {
	if b.N == 1 {
		return // the testing package's probe run; the figures come from -benchtime Nx
	}
	const clients, repeats = 32, 3
	env := map[string]string{"RATE_LIMIT_RPS": "0"} // measure the path, not the per-key limit
	first := startServe(b, env)
	org, project := first.Cred.OrganizationID, first.Cred.ProjectID
	first.Stop()
	bodies := make([][]byte, b.N)
	for i := range bodies {
		bodies[i] = tenKBInsight(org, project, i)
	}
	b.Logf("upload size %d bytes, %d clients, %d uploads a side, %d repeats, JetStream default fsync; 2 shared cores", len(bodies[0]), clients, b.N, repeats)

	type pair struct{ gw, raw, floor side }
	var paused, running []pair
	b.ResetTimer()
	for r := range repeats {
		for _, processing := range []bool{false, true} {
			s := startServe(b, env)
			if !processing {
				pauseProcessing(b, s)
			}
			var p pair
			gateway := func() {
				if prof := os.Getenv("BENCH_CPUPROFILE"); prof != "" && r == 0 && !processing {
					stop := cpuProfile(b, prof)
					defer stop()
				}
				p.gw = uploadAll(b, s, clients, bodies)
				if processing {
					settle(b, s) // the raw side never runs beside processing
				}
			}
			raw := func() { p.raw = publishRaw(b, s, clients, bodies) }
			order := []func(){gateway, raw}
			if !processing {
				order = append(order, func() { p.floor = relayFloor(b, s, clients, bodies) })
			}
			for i := range order {
				order[(i+r)%len(order)]()
			}
			s.Stop()
			if processing {
				running = append(running, p)
			} else {
				paused = append(paused, p)
			}
			b.Logf("repeat %d, processing %-7s: gateway %6.0f/s (p50 %6.2f ms, p99 %7.2f ms) | raw %6.0f/s (p50 %5.2f ms, p99 %6.2f ms) | ratio %.3f",
				r+1, map[bool]string{false: "paused", true: "running"}[processing], p.gw.rate, ms(p.gw.p50), ms(p.gw.p99), p.raw.rate, ms(p.raw.p50), ms(p.raw.p99), p.gw.rate/p.raw.rate)
			if !processing {
				b.Logf("repeat %d, HTTP floor        : relay   %6.0f/s (p50 %6.2f ms, p99 %7.2f ms) | floor ÷ raw %.3f, gateway ÷ floor %.3f",
					r+1, p.floor.rate, ms(p.floor.p50), ms(p.floor.p99), p.floor.rate/p.raw.rate, p.gw.rate/p.floor.rate)
			}
		}
	}
	b.StopTimer()
	ratios := func(ps []pair) (med, lo, hi float64) {
		var rs []float64
		for _, p := range ps {
			rs = append(rs, p.gw.rate/p.raw.rate)
		}
		sort.Float64s(rs)
		return rs[len(rs)/2], rs[0], rs[len(rs)-1]
	}
	rates := func(ps []pair, gw bool) (med, lo, hi float64) {
		var rs []float64
		for _, p := range ps {
			rs = append(rs, map[bool]float64{true: p.gw.rate, false: p.raw.rate}[gw])
		}
		sort.Float64s(rs)
		return rs[len(rs)/2], rs[0], rs[len(rs)-1]
	}
	for _, x := range []struct {
		name string
		ps   []pair
	}{{"paused", paused}, {"running", running}} {
		m, lo, hi := ratios(x.ps)
		gm, glo, ghi := rates(x.ps, true)
		rm, rlo, rhi := rates(x.ps, false)
		b.Logf("processing %-7s: gateway %.0f/s (%.0f–%.0f), raw %.0f/s (%.0f–%.0f), ratio median %.3f (%.3f–%.3f) over %d fresh pairs",
			x.name, gm, glo, ghi, rm, rlo, rhi, m, lo, hi, len(x.ps))
		b.ReportMetric(m, "ratio-"+x.name)
		b.ReportMetric(gm, "uploads/s-"+x.name)
	}

	var floors, shares []float64
	for _, p := range paused {
		floors = append(floors, p.floor.rate/p.raw.rate)
		shares = append(shares, p.gw.rate/p.floor.rate)
	}
	sort.Float64s(floors)
	sort.Float64s(shares)
	b.Logf("HTTP floor (bare net/http relay, no validation) ÷ raw: median %.3f (%.3f–%.3f); gateway ÷ floor: median %.3f (%.3f–%.3f)",
		floors[1], floors[0], floors[2], shares[1], shares[0], shares[2])
	b.ReportMetric(floors[1], "ratio-floor")

	rate, seconds := envInt("BENCH_RATE", 200), envInt("BENCH_SECONDS", 10)
	st := storedLatency(b, env, rate, seconds)
	b.Logf("POST → stored at an open-loop %d uploads/s for %d s (processing running): p50 %.1f ms, p99 %.1f ms, max %.1f ms; POST → 202 p99 %.1f ms",
		rate, seconds, ms(st.p50), ms(st.p99), ms(st.max), ms(st.acceptP99))
	b.ReportMetric(ms(st.p99), "stored-p99-ms")
}

// cpuProfile starts a CPU profile into file and returns what stops it.
func cpuProfile(b *testing.B, file string) func() {
	b.Helper()
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}
}

// side is one side's figures.
type side struct {
	rate     float64
	p50, p99 time.Duration
}

// uploadAll posts bodies through s's gateway from the given number of
// clients.
func uploadAll(b *testing.B, s *served, clients int, bodies [][]byte) side {
	b.Helper()
	return postAll(b, s.Cred, clients, bodies)
}

// postAll posts bodies as Insight uploads to c.APIURL from the given number
// of clients, each on a connection of its own.
func postAll(b *testing.B, c credentials, clients int, bodies [][]byte) side {
	b.Helper()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}}
	defer hc.CloseIdleConnections()
	lat, took, failed := runConcurrent(clients, len(bodies), func(i int) error {
		_, err := postInsight(hc, c, bodies[i])
		return err
	})
	if failed > 0 {
		b.Fatalf("%d uploads not accepted", failed)
	}
	return side{float64(len(bodies)) / took.Seconds(), pct(lat, 50), pct(lat, 99)}
}

// postInsight posts one Insight upload and returns its upload id.
func postInsight(hc *http.Client, c credentials, body []byte) (string, error) {
	req, _ := http.NewRequest(http.MethodPost, c.APIURL+"/api/v1/sync/insight", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.APIKey)
	req.Header.Set("X-Organization-Id", c.OrganizationID)
	req.Header.Set("X-Project-Id", c.ProjectID)
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var rc struct {
		UploadID string `json:"uploadId"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&rc); err != nil || resp.StatusCode != http.StatusAccepted {
		return "", fmt.Errorf("status %d %v", resp.StatusCode, err)
	}
	return rc.UploadID, nil
}

// publishRaw publishes bodies to a stream of their own on s's NATS, with
// one connection per publisher.
func publishRaw(b *testing.B, s *served, clients int, bodies [][]byte) side {
	b.Helper()
	ctx := context.Background()
	jss := make([]jetstream.JetStream, clients)
	for i := range jss {
		js, err := jetstream.New(s.natsConn())
		if err != nil {
			b.Fatal(err)
		}
		jss[i] = js
	}
	if _, err := jss[0].CreateStream(ctx, jetstream.StreamConfig{Name: "BENCH", Subjects: []string{"bench.raw"}, Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute}); err != nil {
		b.Fatal(err)
	}
	lat, took, failed := runConcurrent(clients, len(bodies), func(i int) error {
		_, err := jss[i%clients].PublishMsg(ctx, &nats.Msg{Subject: "bench.raw", Data: bodies[i]}, jetstream.WithMsgID("raw-"+strconv.Itoa(i)))
		return err
	})
	if failed > 0 {
		b.Fatalf("%d raw publishes failed", failed)
	}
	if err := jss[0].DeleteStream(ctx, "BENCH"); err != nil {
		b.Fatal(err)
	}
	return side{float64(len(bodies)) / took.Seconds(), pct(lat, 50), pct(lat, 99)}
}

// relayFloor posts bodies from the given number of clients to a bare
// net/http server that publishes each body synchronously to a stream of its
// own on s's NATS, as publishRaw does, and answers 202: what HTTP costs
// before the gateway does anything.
func relayFloor(b *testing.B, s *served, clients int, bodies [][]byte) side {
	b.Helper()
	ctx := context.Background()
	js, err := jetstream.New(s.natsConn())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "FLOOR", Subjects: []string{"bench.floor"}, Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute}); err != nil {
		b.Fatal(err)
	}
	var seq atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body bytes.Buffer
		if _, err := body.ReadFrom(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		id := "floor-" + strconv.FormatInt(seq.Add(1), 10)
		if _, err := js.PublishMsg(r.Context(), &nats.Msg{Subject: "bench.floor", Data: body.Bytes()}, jetstream.WithMsgID(id)); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"uploadId":"` + id + `"}`))
	})}
	go func() { _ = srv.Serve(ln) }()
	defer func() { _ = srv.Close() }()
	c := s.Cred
	c.APIURL = "http://" + ln.Addr().String()
	floor := postAll(b, c, clients, bodies)
	if err := js.DeleteStream(ctx, "FLOOR"); err != nil {
		b.Fatal(err)
	}
	return floor
}

// pauseProcessing pauses the jobs service's consumer of received uploads
// on the server: uploads are accepted and stay in the stream unprocessed.
func pauseProcessing(b *testing.B, s *served) {
	b.Helper()
	js, err := jetstream.New(s.natsConn())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := js.PauseConsumer(context.Background(), events.StreamSync, jobs.ConsumerSync, time.Now().Add(24*time.Hour)); err != nil {
		b.Fatal(err)
	}
}

// settle waits until every consumer of s's streams has nothing left to
// deliver or to be acknowledged: the uploads are processed and counted.
func settle(b *testing.B, s *served) {
	b.Helper()
	ctx := context.Background()
	js, err := jetstream.New(s.natsConn())
	if err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Minute)
	for _, stream := range []string{events.StreamSync, events.StreamJobs, events.StreamStorage} {
		st, err := js.Stream(ctx, stream)
		if err != nil {
			b.Fatal(err)
		}
		for name := range st.ConsumerNames(ctx).Name() {
			for {
				c, err := st.Consumer(ctx, name)
				if err != nil {
					b.Fatal(err)
				}
				info, err := c.Info(ctx)
				if err == nil && info.NumPending == 0 && info.NumAckPending == 0 {
					break
				}
				if time.Now().After(deadline) {
					b.Fatalf("consumer %s of %s not settled: %+v %v", name, stream, info, err)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
}

// stored is the figures of POST → stored.
type stored struct{ p50, p99, max, acceptP99 time.Duration }

// storedLatency sends rate uploads a second for the given seconds to a fresh
// serve, each at its scheduled time, and times each from that time to its
// processed event.
func storedLatency(b *testing.B, env map[string]string, rate, seconds int) stored {
	b.Helper()
	s := startServe(b, env)
	defer s.Stop()
	c := s.Cred
	var mu sync.Mutex
	done := map[string]time.Time{}
	all := make(chan struct{})
	n := rate * seconds
	sub, err := s.natsConn().Subscribe(events.AllProcessed, func(m *nats.Msg) {
		at := time.Now()
		var ev struct {
			Subject string `json:"subject"`
		}
		if json.Unmarshal(m.Data, &ev) != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if _, ok := done[ev.Subject]; !ok {
			done[ev.Subject] = at
			if len(done) == n {
				close(all)
			}
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	defer hc.CloseIdleConnections()
	ids := make([]string, n)
	sent := make([]time.Time, n)
	accept := make([]time.Duration, n)
	var failed atomic.Int64
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	for i := range n {
		sent[i] = start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(sent[i]))
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := postInsight(hc, c, tenKBInsight(c.OrganizationID, c.ProjectID, 1_000_000+i))
			accept[i] = time.Since(sent[i])
			if err != nil {
				failed.Add(1)
			}
			ids[i] = id
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		b.Fatalf("%d uploads not accepted", failed.Load())
	}
	select {
	case <-all:
	case <-time.After(5 * time.Minute):
		b.Fatalf("only %d of %d uploads stored after 5 minutes", len(done), n)
	}
	mu.Lock()
	defer mu.Unlock()
	lat := make([]time.Duration, n)
	for i, id := range ids {
		lat[i] = done[id].Sub(sent[i])
	}
	return stored{pct(lat, 50), pct(lat, 99), pct(lat, 100), pct(accept, 99)}
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
