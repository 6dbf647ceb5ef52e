// Command jobsbench pushes the same jobs through the ODAVL Sync job queue
// (JetStream with sync_interval 1s, job records in the embedded store) and
// through BullMQ on Redis (appendonly yes, appendfsync everysec), on the
// same machine in one run, and prints jobs/s, enqueue-to-start latency and
// the ratios. It installs what it needs itself: redis-server from Debian
// packages when missing and bullmq from npm into .tools/jobsbench. It also
// measures result documents landed per second by the sync processor
// against a raw InsertMany of the same documents into the same store.
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/embedded"
	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/jobs"
	"github.com/odavl/sync/libs/mongodb"
	"github.com/odavl/sync/services/jobs/internal/jobstore"
	"github.com/odavl/sync/services/jobs/internal/queue"
)

//go:embed bullmq.js
var bullmqJS []byte

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "jobsbench:", err)
		os.Exit(1)
	}
}

type figures struct {
	EnqueuePerSec float64 `json:"enqueuePerSec"`
	ProcessPerSec float64 `json:"processPerSec"`
	P50           float64 `json:"p50"`
	P99           float64 `json:"p99"`
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("jobsbench", flag.ContinueOnError)
	n := fs.Int("n", 20000, "jobs per run")
	conc := fs.Int("concurrency", 20, "enqueue callers and workers")
	size := fs.Int("payload", 1024, "payload bytes")
	latN := fs.Int("latency-jobs", 3000, "jobs of the latency phase")
	rate := fs.Int("rate", 1000, "jobs/s of the latency phase")
	results := fs.Int("results", 5000, "result documents of the store phase")
	tools := fs.String("tools", ".tools/jobsbench", "where bullmq is installed")
	skipBull := fs.Bool("skip-bullmq", false, "measure only our queue")
	runs := fs.Int("runs", 1, "runs of every side, interleaved")
	cpuprofile := fs.String("cpuprofile", "", "write CPU profiles of our queue's enqueue and process phases to this path + .enqueue and .process")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "jobsbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	fmt.Fprintf(out, "jobsbench: %d jobs of %d bytes, %d callers and %d workers; latency at %d jobs/s over %d jobs; %d run(s), the sides interleaved on fresh servers\n\n", *n, *size, *conc, *conc, *rate, *latN, *runs)
	modes := []mode{{"completed jobs kept", false}, {"remove on complete", true}}
	byMode := make([][]pair, len(modes))
	var landings []landing
	for run := range *runs {
		// The floor once per run, before the modes: the least a queue on
		// JetStream does per job (see benchFloor).
		floor, err := benchFloor(ctx, dir, *n, *conc, *size, *latN, *rate)
		if err != nil {
			return fmt.Errorf("the JetStream floor: %w", err)
		}
		for i, m := range modes {
			ours, err := benchOurs(ctx, dir, *n, *conc, *size, *latN, *rate, m.remove, *cpuprofile)
			if err != nil {
				return fmt.Errorf("our queue (%s): %w", m.name, err)
			}
			p := pair{ours: ours, floor: floor}
			if !*skipBull {
				bull, err := benchBullMQ(ctx, dir, *tools, *n, *conc, *size, *latN, *rate, m.remove)
				if err != nil {
					return fmt.Errorf("bullmq (%s): %w", m.name, err)
				}
				p.bull = *bull
			}
			byMode[i] = append(byMode[i], p)
			printRun(out, run+1, m.name, p.ours, p.bull, p.floor, *skipBull)
		}
		l, err := benchResults(ctx, dir, *results)
		if err != nil {
			return fmt.Errorf("result documents: %w", err)
		}
		landings = append(landings, l)
		fmt.Fprintf(out, "run %d: result documents (insight uploads through the sync processor, %d): %.0f landed/s; the design's floor (JetStream and the batched insert only) %.0f/s; raw InsertMany (batches of 100, encoded beforehand) of the same documents into the same store: %.0f/s; landed ÷ raw %.2f, floor ÷ raw %.2f\n\n",
			run+1, *results, l.landed, l.floor, l.raw, l.landed/l.raw, l.floor/l.raw)
	}
	if *skipBull {
		return nil
	}
	printSummary(out, *runs, modes, byMode, landings)
	return nil
}

// mode is how finished jobs are kept, on both sides.
type mode struct {
	name   string
	remove bool
}

// pair is one run of one mode: our figures, BullMQ's and the floor's.
type pair struct{ ours, bull, floor figures }

// printSummary prints the ratios of every mode over the runs, min–max.
func printSummary(out io.Writer, runs int, modes []mode, byMode [][]pair, landings []landing) {
	fmt.Fprintf(out, "summary over %d run(s), min–max (ours ÷ BullMQ; latency: lower is better):\n", runs)
	for i, m := range modes {
		ratio := func(f func(figures) float64) []float64 {
			var out []float64
			for _, p := range byMode[i] {
				out = append(out, f(p.ours)/max(f(p.bull), 0.001))
			}
			return out
		}
		fmt.Fprintf(out, "  %-22s enqueue %s  process %s  p50 %s  p99 %s\n", m.name,
			spread(ratio(func(f figures) float64 { return f.EnqueuePerSec })), spread(ratio(func(f figures) float64 { return f.ProcessPerSec })),
			spread(ratio(func(f figures) float64 { return f.P50 })), spread(ratio(func(f figures) float64 { return f.P99 })))
		var floorBull, oursFloor, floorP99 []float64
		for _, p := range byMode[i] {
			floorBull = append(floorBull, p.floor.ProcessPerSec/max(p.bull.ProcessPerSec, 0.001))
			oursFloor = append(oursFloor, p.ours.ProcessPerSec/max(p.floor.ProcessPerSec, 0.001))
			floorP99 = append(floorP99, p.floor.P99/max(p.bull.P99, 0.001))
		}
		fmt.Fprintf(out, "  %-22s JetStream floor ÷ BullMQ: process %s, p99 %s; our process ÷ the floor's %s\n", "", spread(floorBull), spread(floorP99), spread(oursFloor))
	}
	var landed, floor []float64
	for _, l := range landings {
		landed, floor = append(landed, l.landed/l.raw), append(floor, l.floor/l.raw)
	}
	fmt.Fprintf(out, "  result documents landed ÷ raw InsertMany: %s (the design's floor ÷ raw: %s)\n", spread(landed), spread(floor))
}

// printRun prints one run of one mode: our figures beside BullMQ's.
func printRun(out io.Writer, run int, mode string, ours, bull, floor figures, skipBull bool) {
	fmt.Fprintf(out, "run %d, %s\n%-52s %12s %12s %10s %10s\n", run, mode, "system (durability)", "enqueue/s", "process/s", "p50 ms", "p99 ms")
	fmt.Fprintf(out, "%-52s %12.0f %12.0f %10.2f %10.2f\n", "ODAVL queue: JetStream file, sync_interval 1s", ours.EnqueuePerSec, ours.ProcessPerSec, ours.P50, ours.P99)
	fmt.Fprintf(out, "%-52s %12.0f %12.0f %10.2f %10.2f\n", "JetStream floor: publish, deliver, ack; no records", floor.EnqueuePerSec, floor.ProcessPerSec, floor.P50, floor.P99)
	if skipBull {
		fmt.Fprintln(out)
		return
	}
	fmt.Fprintf(out, "%-52s %12.0f %12.0f %10.2f %10.2f\n", "BullMQ 6.7 on Redis (AOF everysec)", bull.EnqueuePerSec, bull.ProcessPerSec, bull.P50, bull.P99)
	fmt.Fprintf(out, "%-52s %11.2fx %11.2fx %9.2fx %9.2fx\n\n", "  ratio ODAVL / BullMQ (latency: lower is better)",
		ours.EnqueuePerSec/bull.EnqueuePerSec, ours.ProcessPerSec/bull.ProcessPerSec, ours.P50/max(bull.P50, 0.001), ours.P99/max(bull.P99, 0.001))
}

// spread renders figures as min–max (one figure alone).
func spread(v []float64) string {
	if len(v) == 0 {
		return "-"
	}
	lo, hi := slices.Min(v), slices.Max(v)
	if len(v) == 1 || lo == hi {
		return fmt.Sprintf("%.2fx", lo)
	}
	return fmt.Sprintf("%.2f–%.2fx", lo, hi)
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// servers starts JetStream (sync every second) and the embedded store.
func servers(dir string) (*nats.Conn, *mongo.Database, func(), error) {
	ns, err := embedded.StartNATS(embedded.NATSConfig{StoreDir: filepath.Join(dir, "js"), DontListen: true, SyncInterval: time.Second})
	if err != nil {
		return nil, nil, nil, err
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		ns.Shutdown()
		return nil, nil, nil, err
	}
	st, err := embedded.StartStore(filepath.Join(dir, "store"), "127.0.0.1:0", quiet(), false)
	if err != nil {
		ns.Shutdown()
		return nil, nil, nil, err
	}
	mc, err := mongodb.Connect(context.Background(), st.URI)
	if err != nil {
		st.Stop()
		ns.Shutdown()
		return nil, nil, nil, err
	}
	js, _ := jetstream.New(nc)
	if err := bus.EnsureStreams(context.Background(), js, bus.StreamOptions{}); err != nil {
		return nil, nil, nil, err
	}
	stop := func() { _ = mc.Disconnect(context.Background()); st.Stop(); nc.Close(); ns.Shutdown() }
	return nc, mc.Database("bench"), stop, nil
}

// profile starts a CPU profile into path+suffix (nothing if path is
// empty) and returns its stop.
func profile(path, suffix string) func() {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path + suffix)
	if err != nil {
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

func benchOurs(ctx context.Context, dir string, n, conc, size, latN, rate int, remove bool, prof string) (figures, error) {
	sdir, err := os.MkdirTemp(dir, "ours-")
	if err != nil {
		return figures{}, err
	}
	defer os.RemoveAll(sdir)
	nc, db, stop, err := servers(sdir)
	if err != nil {
		return figures{}, err
	}
	defer stop()
	store := jobstore.New(db)
	if err := mongodb.EnsureIndexes(ctx, db, jobstore.Indexes()); err != nil {
		return figures{}, err
	}
	keep := jobstore.Retention{Default: jobstore.Keep{Age: 7 * 24 * time.Hour}}
	if remove {
		keep.Default = jobstore.Keep{Remove: true}
	}
	q, err := queue.New(quiet(), nc, store, queue.Config{Workers: conc, Prefetch: n + latN, Keep: keep})
	if err != nil {
		return figures{}, err
	}
	var lat latencies
	q.Handle("BENCH", func(ctx context.Context, j *queue.Job) (any, error) {
		lat.record(j.SubmittedAt)
		return nil, nil
	})
	if err := q.Start(ctx); err != nil {
		return figures{}, err
	}
	defer q.Stop()
	payload, _ := json.Marshal(map[string]string{"data": string(make([]byte, 0)) + randomText(size-12)})

	// Enqueue with the queue paused: nothing runs meanwhile.
	if err := q.Pause(ctx); err != nil {
		return figures{}, err
	}
	stopProf := profile(prof, ".enqueue")
	enq, err := enqueueAll(ctx, q, n, conc, payload)
	stopProf()
	if err != nil {
		return figures{}, err
	}
	// Process: resume and wait until every job's final record is durable
	// where a job's truth is, the jobs bucket in JetStream: every COMPLETED
	// event is out (a job's final change is handed to the writer before its
	// event), then the writer's flush returns once everything handed to it
	// is written. The projection into the store follows, outside the clock.
	completed, err := count(nc, events.JobEventSubject("org", "proj", jobs.Completed))
	if err != nil {
		return figures{}, err
	}
	stopProf = profile(prof, ".process")
	proc, err := processBacklog(ctx, q, completed, n)
	stopProf()
	if err != nil {
		return figures{}, err
	}
	if !remove {
		// The projection into the store, behind the clock.
		if err := waitCount(ctx, db.Collection(jobstore.Collection), int64(n), 2*time.Minute); err != nil {
			return figures{}, err
		}
	}
	// Latency at a paced rate.
	lat.measuring.Store(true)
	paced(ctx, q, latN, rate, payload)
	if err := completed.wait(int64(n+latN), 2*time.Minute); err != nil {
		return figures{}, err
	}
	p50, p99 := lat.percentiles()
	return figures{EnqueuePerSec: float64(n) / enq.Seconds(), ProcessPerSec: float64(n) / proc.Seconds(), P50: p50, P99: p99}, nil
}

// latencies are enqueue-to-start times in ms, recorded while measuring.
type latencies struct {
	measuring atomic.Bool
	mu        sync.Mutex
	ms        []float64
}

func (l *latencies) record(submitted time.Time) {
	if !l.measuring.Load() {
		return
	}
	d := float64(time.Since(submitted).Microseconds()) / 1000
	l.mu.Lock()
	l.ms = append(l.ms, d)
	l.mu.Unlock()
}

func (l *latencies) percentiles() (p50, p99 float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return pct(l.ms, 0.5), pct(l.ms, 0.99)
}

// processBacklog resumes the paused queue and returns how long it took
// until n jobs completed durably.
func processBacklog(ctx context.Context, q *queue.Queue, completed *counter, n int) (time.Duration, error) {
	t0 := time.Now()
	if err := q.Resume(ctx); err != nil {
		return 0, err
	}
	if err := completed.wait(int64(n), 5*time.Minute); err != nil {
		return 0, err
	}
	q.Writer().Flush()
	return time.Since(t0), nil
}

// enqueueAll submits n jobs from conc callers and returns how long it took.
func enqueueAll(ctx context.Context, q *queue.Queue, n, conc int, payload []byte) (time.Duration, error) {
	return fromCallers(n, conc, func(int64) error {
		_, err := q.Submit(ctx, queue.Spec{Type: "BENCH", OrganizationID: "org", ProjectID: "proj", Payload: payload})
		return err
	})
}

// fromCallers runs call for 1..n from conc goroutines and returns how
// long it took, or the first error.
func fromCallers(n, conc int, call func(i int64) error) (time.Duration, error) {
	var next atomic.Int64
	t0 := time.Now()
	var wg sync.WaitGroup
	errc := make(chan error, conc)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				if err := call(i); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		return 0, err
	default:
		return time.Since(t0), nil
	}
}

// paced submits n jobs at rate jobs/s, each from its own goroutine.
func paced(ctx context.Context, q *queue.Queue, n, rate int, payload []byte) {
	atRate(n, rate, func(int) {
		_, _ = q.Submit(ctx, queue.Spec{Type: "BENCH", OrganizationID: "org", ProjectID: "proj", Payload: payload})
	})
}

// atRate runs call for 0..n-1 at rate calls/s, each in its own goroutine,
// and waits for them all.
func atRate(n, rate int, call func(i int)) {
	every := time.Second / time.Duration(rate)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * every)); d > 0 {
			time.Sleep(d)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			call(i)
		}()
	}
	wg.Wait()
}

func randomText(n int) string {
	b := make([]byte, max(n, 1))
	for i := range b {
		b[i] = 'a' + byte(i*7%26)
	}
	return string(b)
}

func pct(a []float64, p float64) float64 {
	if len(a) == 0 {
		return 0
	}
	s := slices.Clone(a)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// counter counts the messages on a subject (core NATS: the events the
// services publish as they finish), so that waiting does not poll the store:
// a count scans the whole collection in the embedded store and would eat
// the CPU the system under test needs.
type counter struct{ n atomic.Int64 }

func count(nc *nats.Conn, subject string) (*counter, error) {
	c := &counter{}
	if _, err := nc.Subscribe(subject, func(*nats.Msg) { c.n.Add(1) }); err != nil {
		return nil, err
	}
	return c, nc.Flush()
}

func (c *counter) wait(want int64, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for c.n.Load() < want {
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d after %v", c.n.Load(), want, limit)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil
}

// waitCount waits until the collection holds want documents, polling slowly.
func waitCount(ctx context.Context, c *mongo.Collection, want int64, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		got, err := c.EstimatedDocumentCount(ctx)
		if err != nil {
			return err
		}
		if got >= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d records after %v", got, want, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func benchBullMQ(ctx context.Context, dir, tools string, n, conc, size, latN, rate int, removeOnComplete bool) (*figures, error) {
	redis, err := exec.LookPath("redis-server")
	if err != nil {
		fmt.Println("installing redis-server (apt-get)")
		if out, err := exec.Command("sh", "-c", "apt-get install -y redis-server || (apt-get update && apt-get install -y redis-server)").CombinedOutput(); err != nil {
			return nil, fmt.Errorf("installing redis-server: %v\n%s", err, out)
		}
		if redis, err = exec.LookPath("redis-server"); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(filepath.Join(tools, "node_modules", "ioredis")); err != nil {
		fmt.Println("installing bullmq@6.7.0 and ioredis@5 (npm) into", tools)
		if err := os.MkdirAll(tools, 0o755); err != nil {
			return nil, err
		}
		cmd := exec.Command("npm", "install", "--no-audit", "--no-fund", "--prefix", tools, "bullmq@6.7.0", "ioredis@5")
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("npm install bullmq: %v\n%s", err, out)
		}
	}
	script := filepath.Join(tools, "bullmq-bench.js")
	if err := os.WriteFile(script, bullmqJS, 0o644); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	rdir, err := os.MkdirTemp(dir, "redis-") // a fresh server every run
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(rdir)
	rs := exec.Command(redis, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", rdir, "--appendonly", "yes",
		"--appendfsync", "everysec", "--save", "", "--maxmemory-policy", "noeviction")
	if err := rs.Start(); err != nil {
		return nil, fmt.Errorf("starting redis: %w", err)
	}
	defer func() { _ = rs.Process.Kill(); _, _ = rs.Process.Wait() }()
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			break
		}
		if i > 200 {
			return nil, errors.New("redis did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	abs, _ := filepath.Abs(script)
	cmd := exec.CommandContext(ctx, "node", abs, strconv.Itoa(port), strconv.Itoa(n), strconv.Itoa(conc), strconv.Itoa(size), strconv.Itoa(latN), strconv.Itoa(rate), strconv.FormatBool(removeOnComplete))
	cmd.Dir = tools
	cmd.Stderr = os.Stderr
	outb, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("running the bullmq script: %w", err)
	}
	var f figures
	if err := json.Unmarshal(outb, &f); err != nil {
		return nil, fmt.Errorf("reading the bullmq figures %q: %w", outb, err)
	}
	return &f, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
