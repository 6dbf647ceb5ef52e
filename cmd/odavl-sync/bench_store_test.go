package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/mongodb"
	"github.com/odavl/sync/libs/rpc"

	"github.com/odavl/sync/client/cli"
)

// BenchmarkStore is `make bench-store`: the embedded store at the scale of a
// real team, before (ODAVL_STORE_BASELINE=1: the fork's patches 3 and 4 off)
// and after, each side a fresh `serve` process, the sides interleaved.
//
// Each server is seeded through the MongoDB wire protocol with copies of
// the documents that the product itself stored for real uploads (results
// of 4 projects, one job each, files), so that 100,000 results take a
// minute instead of an hour. Then, through the HTTP API: lists of 50,
// newest first, with and without each filter (p99 of BENCH_STORE_LISTS
// each), the server's RSS before and after them; the jobs and files lists;
// the plan of the expiry cleanup's query; 50 concurrent $inc on one
// document; and BENCH_STORE_UPLOADS real uploads landed end to end (result
// stored, counted by stats, job COMPLETED) against a raw InsertMany
// (batches of 100, one client, the documents encoded before the clock
// starts: the store's own rate) of the same result documents into a new
// collection of the same store; and the raw rate of a client that encodes
// them in the call (bson.D), as the figures before 2026-12-05 were.
//
// BENCH_STORE_LISTS (1000 requests per list: the p99 of 100 would be the
// slowest of them, which is the first request after an idle moment on
// this machine; the slowest is printed beside it),
// BENCH_STORE_RESULTS (100000), BENCH_STORE_REPEATS (3: after-side
// servers), BENCH_STORE_BEFORE_REPEATS (1: the before side answers 504 at
// this size, so one server shows it), BENCH_STORE_BEFORE_BUDGET (60s: the
// time one list kind may take on the before side).
func BenchmarkStore(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "odavl-sync")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("building odavl-sync: %v\n%s", err, out)
	}
	cfg := storeBenchConfig{
		results: envInt("BENCH_STORE_RESULTS", 100000), lists: envInt("BENCH_STORE_LISTS", 1000),
		uploads: envInt("BENCH_STORE_UPLOADS", 3000), budget: time.Duration(envInt("BENCH_STORE_BEFORE_BUDGET", 60)) * time.Second,
	}
	repeats, beforeRepeats := envInt("BENCH_STORE_REPEATS", 3), envInt("BENCH_STORE_BEFORE_REPEATS", 1)
	var after, before []storeFigures
	for r := range max(repeats, beforeRepeats) {
		if r < repeats {
			after = append(after, runStoreSide(b, bin, false, cfg))
		}
		if r < beforeRepeats {
			before = append(before, runStoreSide(b, bin, true, cfg))
		}
	}
	printStoreFigures(os.Stdout, cfg, before, after)
}

type storeBenchConfig struct {
	results, lists, uploads int
	budget                  time.Duration
}

// storeFigures are one server's measurements.
type storeFigures struct {
	seedTook  time.Duration
	lists     map[string]listFigure // by the list's name
	rssBefore float64               // MB, before the result lists
	rssAfter  float64               // MB, after them
	cleanup   string                // the expiry cleanup's query plan
	incs      int64                 // the counter after 50 concurrent $inc of 1
	landed    float64               // uploads/s, end to end
	raw       float64               // InsertMany docs/s of the same documents, encoded beforehand
	rawD      float64               // the same, encoded in the call (bson.D)
	indexed   float64               // the same into a collection with the list index
	floor     float64               // landed/s of the design's least: an event carried by JetStream, a batched insert (landingFloor)
	contract  float64               // the same plus the least of the contracts' events, record and alert (contractFloor)
}

type listFigure struct {
	p50, p99 time.Duration
	slowest  time.Duration
	first    time.Duration
	n        int    // requests answered
	failed   string // the first failure, if any
	total    int64  // the answer's total
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v >= 0 {
		return v
	}
	return def
}

// benchServer is a serve process started from the built binary.
type benchServer struct {
	cmd           *exec.Cmd // nil: serve runs in this process (BENCH_STORE_INPROCESS=1, to profile it)
	stopInProcess func()
	cred          credentials
	mc            *mongo.Client
	db            *mongo.Database
	hc            *http.Client
	natsURL       string // the embedded NATS's client URL, as serve prints it
}

func startBenchServer(b *testing.B, bin string, baseline bool) *benchServer {
	b.Helper()
	storeAddr := freeAddr(b)
	data := b.TempDir()
	if os.Getenv("BENCH_STORE_INPROCESS") == "1" && !baseline {
		return startInProcess(b, data, storeAddr)
	}
	cmd := exec.Command(bin, "serve", "--data", data, "--addr", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0", "--store-listen", storeAddr, "--log-level", "error")
	cmd.Env = append(os.Environ(), "RATE_LIMIT_RPS=0", "ODAVL_STORE_BASELINE=")
	if baseline {
		cmd.Env = append(cmd.Env, "ODAVL_STORE_BASELINE=1")
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	// The server is ready once its welcome's NATS line is read (it comes
	// after "ODAVL Sync is ready at"); "" when serve exits first.
	ready := make(chan string, 2)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "NATS: "); ok {
				ready <- u
			}
		}
		_, _ = io.Copy(io.Discard, out)
		ready <- ""
	}()
	var natsURL string
	select {
	case natsURL = <-ready:
		if natsURL == "" {
			b.Fatal("serve exited before ready")
		}
	case <-time.After(2 * time.Minute):
		b.Fatal("serve not ready after 2 minutes")
	}
	return connectBench(b, &benchServer{cmd: cmd, natsURL: natsURL}, data, storeAddr)
}

// startInProcess runs serve in the benchmark's process, so that
// -cpuprofile and -memprofile see it.
func startInProcess(b *testing.B, data, storeAddr string) *benchServer {
	ctx, cancel := context.WithCancel(context.Background())
	out, done := &syncBuffer{}, make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--data", data, "--addr", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0", "--store-listen", storeAddr, "--log-level", "error"},
			func(k string) string { return map[string]string{"RATE_LIMIT_RPS": "0"}[k] }, strings.NewReader(""), out, os.Stderr)
	}()
	for !strings.Contains(out.String(), "ODAVL Sync is ready at") {
		select {
		case <-done:
			b.Fatal("serve exited before ready")
		case <-time.After(10 * time.Millisecond):
		}
	}
	_, welcome, _ := strings.Cut(out.String(), "\nNATS: ") // the welcome is one write
	u, _, _ := strings.Cut(welcome, "\n")
	return connectBench(b, &benchServer{stopInProcess: func() { cancel(); <-done }, natsURL: u}, data, storeAddr)
}

// connectBench reads the started server's credentials and connects to its store.
func connectBench(b *testing.B, s *benchServer, data, storeAddr string) *benchServer {
	s.hc = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var err error
	if s.cred, err = cli.ReadCredentials(filepath.Join(data, credentialsFile)); err != nil {
		b.Fatal(err)
	}
	if s.mc, err = mongo.Connect(options.Client().ApplyURI("mongodb://" + storeAddr + "/").SetTimeout(10 * time.Minute)); err != nil {
		b.Fatal(err)
	}
	s.db = s.mc.Database("odavl_sync")
	// Uploads go only to projects that exist: a key for each makes it.
	for _, project := range []string{"p0", "p1", "p2", "p3", "landing"} {
		body, _ := json.Marshal(map[string]any{"organizationId": s.cred.OrganizationID, "projectId": project, "name": "bench-" + project, "scopes": []string{"sync"}})
		if st, rb, err := s.do(context.Background(), http.MethodPost, s.cred.ProjectID, "/api/v1/admin/keys", body); err != nil || st != http.StatusCreated {
			b.Fatalf("creating project %s: %d %s %v", project, st, rb, err)
		}
	}
	return s
}

func (s *benchServer) stop() {
	_ = s.mc.Disconnect(context.Background())
	if s.cmd == nil {
		s.stopInProcess()
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		_ = s.cmd.Process.Kill()
		<-done
	}
}

// rssMB is the server process's resident set.
func (s *benchServer) rssMB() float64 {
	pid := os.Getpid()
	if s.cmd != nil {
		pid = s.cmd.Process.Pid
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// do sends one API request for project and returns its status and body.
func (s *benchServer) do(ctx context.Context, method, project, path string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.cred.APIURL+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.cred.APIKey)
	req.Header.Set("X-Organization-Id", s.cred.OrganizationID)
	req.Header.Set("X-Project-Id", project)
	resp, err := s.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func benchProjects(i int) string { return fmt.Sprintf("p%d", i%4) }

// seedStore uploads a few real results through the API, waits until they
// are stored, and copies them (and their jobs, and a file record) into
// cfg.results Insight results, a tenth as many Autopilot and Guardian
// results, a job per result and cfg.results/5 files, over 4 projects,
// spread over 90 days, newest now; 100 of the files expired.
func seedStore(b *testing.B, s *benchServer, n int) time.Duration {
	ctx := context.Background()
	org := s.cred.OrganizationID
	post := func(p events.Product, body any) {
		raw, _ := json.Marshal(body)
		if st, rb, err := s.do(ctx, http.MethodPost, "p0", "/api/v1/sync/"+string(p), raw); err != nil || st != http.StatusAccepted {
			b.Fatalf("seed upload: %d %s %v", st, rb, err)
		}
	}
	post(events.Insight, json.RawMessage(tenKBInsight(org, "p0", -1)))
	post(events.Autopilot, autopilotBody(org, "p0", "seed-run", true))
	post(events.Guardian, guardianBody(org, "p0", "seed-test", "staging", true))
	fb, _ := json.Marshal(map[string]any{"filename": "report.json", "contentType": "application/json", "size": 1000})
	if st, rb, err := s.do(ctx, http.MethodPost, "p0", "/api/v1/storage/upload-url", fb); err != nil || st != http.StatusOK && st != http.StatusCreated {
		b.Fatalf("seed file: %d %s %v", st, rb, err)
	}
	template := func(coll string, filter bson.D) bson.D {
		var d bson.D
		deadline := time.Now().Add(time.Minute)
		for {
			err := s.db.Collection(coll).FindOne(ctx, filter).Decode(&d)
			if err == nil {
				return d
			}
			if time.Now().After(deadline) {
				b.Fatalf("no %s document to copy: %v", coll, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// Every upload processed first (its job COMPLETED), so that nothing
	// the product writes later races the copies.
	jobT := template("jobs", bson.D{{Key: "status", Value: "COMPLETED"}, {Key: "type", Value: "INSIGHT_ANALYSIS"}})
	template("jobs", bson.D{{Key: "status", Value: "COMPLETED"}, {Key: "type", Value: "GUARDIAN_TEST"}})
	template("jobs", bson.D{{Key: "status", Value: "COMPLETED"}, {Key: "type", Value: "AUTOPILOT_CYCLE"}})
	insightT, autopilotT, guardianT := template("insight_results", bson.D{}), template("autopilot_runs", bson.D{}), template("guardian_runs", bson.D{})
	fileT := template("storage_files", bson.D{})

	now := time.Now().UTC()
	start := time.Now()
	copies := func(coll string, t bson.D, count int, vary func(i int, d bson.D) bson.D) {
		batch := make([]any, 0, 100)
		for i := range count {
			d := slices.Clone(t)
			d = setField(d, "_id", fmt.Sprintf("%s-%07d", coll, i))
			d = setField(d, "projectId", benchProjects(i))
			batch = append(batch, vary(i, d))
			if len(batch) == cap(batch) || i == count-1 {
				if _, err := s.db.Collection(coll).InsertMany(ctx, batch); err != nil {
					b.Fatalf("seeding %s: %v", coll, err)
				}
				batch = batch[:0]
			}
		}
	}
	step := 90 * 24 * time.Hour / time.Duration(n) // the results span 90 days
	at := func(i int) time.Time { return now.Add(-time.Duration(i) * step) }
	copies("insight_results", insightT, n, func(i int, d bson.D) bson.D { return setField(d, "receivedAt", at(i)) })
	copies("autopilot_runs", autopilotT, n/10, func(i int, d bson.D) bson.D {
		d = setField(d, "runId", fmt.Sprintf("run-%07d", i))
		return setField(setField(d, "receivedAt", at(i)), "success", i%3 != 0)
	})
	envs := events.GuardianEnvironments
	copies("guardian_runs", guardianT, n/10, func(i int, d bson.D) bson.D {
		d = setField(d, "testRunId", fmt.Sprintf("test-%07d", i))
		return setField(setField(setField(d, "receivedAt", at(i)), "passed", i%8 < 5), "environment", envs[i%len(envs)])
	})
	statuses := []string{"COMPLETED", "COMPLETED", "COMPLETED", "FAILED", "CANCELLED"}
	types := []string{"INSIGHT_ANALYSIS", "AUTOPILOT_CYCLE", "GUARDIAN_TEST", "REPORT_GENERATE"}
	copies("jobs", jobT, n+n/5, func(i int, d bson.D) bson.D {
		d = setField(setField(d, "status", statuses[i%len(statuses)]), "type", types[i%len(types)])
		return setField(setField(d, "createdAt", at(i)), "updatedAt", at(i))
	})
	copies("storage_files", fileT, n/5, func(i int, d bson.D) bson.D {
		exp := now.Add(24 * time.Hour)
		if i%max(1, n/5/100) == 0 {
			exp = now.Add(-time.Hour) // 100 expired
		}
		d = setField(setField(d, "status", rpc.FileUploaded), "expiresAt", exp)
		return setField(setField(d, "createdAt", at(i)), "key", fmt.Sprintf("bench/%07d", i))
	})
	return time.Since(start)
}

// setField sets key in d (appending it when missing).
func setField(d bson.D, key string, v any) bson.D {
	for i := range d {
		if d[i].Key == key {
			d[i].Value = v
			return d
		}
	}
	return append(d, bson.E{Key: key, Value: v})
}

// measureList sends count requests of path (one at a time, as a user's
// page would) and returns their figures; on the before side it stops after
// budget.
func (s *benchServer) measureList(project, path string, count int, budget time.Duration) listFigure {
	var f listFigure
	var lat []time.Duration
	start := time.Now()
	for i := 0; i < count && time.Since(start) < budget; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), budget)
		t := time.Now()
		st, body, err := s.do(ctx, http.MethodGet, project, path, nil)
		cancel()
		d := time.Since(t)
		if err != nil || st != http.StatusOK {
			if f.failed == "" {
				f.failed = fmt.Sprintf("%d after %s", st, d.Round(time.Millisecond))
				if err != nil {
					f.failed = fmt.Sprintf("%v after %s", err, d.Round(time.Millisecond))
				}
			}
			lat = append(lat, d)
			continue
		}
		var r struct{ Total int64 }
		_ = json.Unmarshal(body, &r)
		f.total = r.Total
		lat = append(lat, d)
		f.n++
	}
	f.p50, f.p99 = pct(lat, 50), pct(lat, 99)
	if len(lat) > 0 {
		f.first, f.slowest = lat[0], slices.Max(lat)
	}
	return f
}

// storeLists are the lists measured: results newest first, with and
// without each filter, the jobs list by status and type, the file list.
func storeLists() [][2]string {
	from := time.Now().UTC().Add(-30 * 24 * time.Hour).Format(time.RFC3339)
	to := time.Now().UTC().Add(-7 * 24 * time.Hour).Format(time.RFC3339)
	return [][2]string{
		{"insight", "/api/v1/sync/insight?limit=50"},
		{"insight from/to", "/api/v1/sync/insight?limit=50&from=" + from + "&to=" + to},
		{"autopilot", "/api/v1/sync/autopilot?limit=50"},
		{"autopilot success", "/api/v1/sync/autopilot?limit=50&success=false"},
		{"guardian environment/passed", "/api/v1/sync/guardian?limit=50&environment=production&passed=true"},
		{"jobs status", "/api/v1/sync/jobs?limit=50&status=FAILED"},
		{"jobs type", "/api/v1/sync/jobs?limit=50&type=GUARDIAN_TEST"},
		{"files", "/api/v1/storage/files?limit=50"},
	}
}

func runStoreSide(b *testing.B, bin string, baseline bool, cfg storeBenchConfig) storeFigures {
	side := "after"
	if baseline {
		side = "before"
	}
	s := startBenchServer(b, bin, baseline)
	defer s.stop()
	f := storeFigures{lists: map[string]listFigure{}}
	f.seedTook = seedStore(b, s, cfg.results)
	b.Logf("%s: seeded %d results in %s", side, cfg.results, f.seedTook.Round(time.Second))
	budget := 10 * time.Minute
	if baseline {
		budget = cfg.budget
	}
	runtime.GC()
	f.rssBefore = s.rssMB()
	for i, l := range storeLists() {
		if prof := os.Getenv("BENCH_STORE_LIST_PROFILE"); prof != "" && s.cmd == nil && i == 0 { // serve in this process: the first list alone
			stop := cpuProfile(b, prof)
			f.lists[l[0]] = s.measureList(benchProjects(i), l[1], cfg.lists, budget)
			stop()
			continue
		}
		f.lists[l[0]] = s.measureList(benchProjects(i), l[1], cfg.lists, budget)
		b.Logf("%s: %-28s %+v", side, l[0], f.lists[l[0]])
	}
	f.rssAfter = s.rssMB()
	f.cleanup = s.cleanupPlan(b)
	f.incs = s.concurrentIncs(b)
	f.landed = s.landing(b, cfg.uploads, budget)
	f.raw, f.rawD = s.rawInsert(b, "landing", cfg.uploads)
	f.indexed = s.rawIndexed(b, cfg.uploads)
	f.floor = s.landingFloor(b, cfg.uploads)
	f.contract = s.contractFloor(b, cfg.uploads)
	b.Logf("%s: landed %.0f/s, raw %.0f/s, incs %d, rss %.0f → %.0f MB", side, f.landed, f.raw, f.incs, f.rssBefore, f.rssAfter)
	return f
}

// cleanupPlan is SQLite's plan of the storage cleanup's query.
func (s *benchServer) cleanupPlan(b *testing.B) string {
	var out struct {
		QueryPlanner struct {
			Plan []string `bson:"Plan"`
		} `bson:"queryPlanner"`
	}
	err := s.db.RunCommand(context.Background(), bson.D{{Key: "explain", Value: bson.D{{Key: "find", Value: "storage_files"},
		{Key: "filter", Value: bson.D{{Key: "status", Value: rpc.FileUploaded}, {Key: "expiresAt", Value: bson.D{{Key: "$lte", Value: time.Now()}}}}}}}}).Decode(&out)
	if err != nil {
		b.Fatalf("explain: %v", err)
	}
	return strings.Join(out.QueryPlanner.Plan, "; ")
}

// concurrentIncs runs 50 concurrent $inc of 1 on one new document.
func (s *benchServer) concurrentIncs(b *testing.B) int64 {
	ctx := context.Background()
	c := s.db.Collection("bench_counter")
	if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: "c"}, {Key: "n", Value: int64(0)}}); err != nil {
		b.Fatal(err)
	}
	_, _, failed := runConcurrent(50, 50, func(int) error {
		_, err := c.UpdateOne(ctx, bson.D{{Key: "_id", Value: "c"}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: int64(1)}}}})
		return err
	})
	if failed > 0 {
		b.Logf("%d $inc failed", failed)
	}
	var d struct{ N int64 }
	if err := c.FindOne(ctx, bson.D{{Key: "_id", Value: "c"}}).Decode(&d); err != nil {
		b.Fatal(err)
	}
	return d.N
}

// landing uploads n ~10 KB Insight results of a new project (32 clients)
// and waits until all are landed: stored, counted by the stats service
// and their jobs COMPLETED.
func (s *benchServer) landing(b *testing.B, n int, budget time.Duration) (landed float64) {
	ctx := context.Background()
	const project = "landing"
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = tenKBInsight(s.cred.OrganizationID, project, i)
	}
	if prof := os.Getenv("BENCH_STORE_LANDING_PROFILE"); prof != "" && s.cmd == nil { // serve in this process: the landing alone
		stop := cpuProfile(b, prof)
		defer stop()
	}
	start := time.Now()
	_, _, failed := runConcurrent(32, n, func(i int) error {
		st, body, err := s.do(ctx, http.MethodPost, project, "/api/v1/sync/insight", bodies[i])
		if err == nil && st != http.StatusAccepted {
			err = fmt.Errorf("%d %s", st, body)
		}
		return err
	})
	if failed > 0 {
		b.Fatalf("%d uploads refused", failed)
	}
	b.Logf("landing: %d uploads accepted at %.0f/s", n, float64(n)/time.Since(start).Seconds())
	results := s.db.Collection("insight_results")
	filter := bson.D{{Key: "organizationId", Value: s.cred.OrganizationID}, {Key: "projectId", Value: project}}
	deadline := start.Add(budget)
	lastTrace := time.Now()
	for {
		stored, err1 := results.CountDocuments(ctx, filter)
		completed, err2 := s.db.Collection("jobs").CountDocuments(ctx, append(slices.Clone(filter), bson.E{Key: "status", Value: "COMPLETED"}))
		counted := s.countedInsight(ctx, project)
		if err1 == nil && err2 == nil && stored == int64(n) && completed == int64(n) && counted == int64(n) {
			break
		}
		if os.Getenv("BENCH_STORE_TRACE") == "1" && time.Since(lastTrace) > time.Second {
			lastTrace = time.Now()
			fmt.Fprintf(os.Stderr, "landing at %s: %d stored, %d jobs completed, %d counted\n", time.Since(start).Round(time.Second), stored, completed, counted)
		}
		if time.Now().After(deadline) {
			b.Logf("landing: after %s %d stored, %d jobs completed, %d counted of %d", budget, stored, completed, counted, n)
			landed := min(stored, completed, counted)
			return float64(landed) / time.Since(start).Seconds()
		}
		time.Sleep(20 * time.Millisecond)
	}
	return float64(n) / time.Since(start).Seconds()
}

// countedInsight is the stats service's count of the project's analyses.
func (s *benchServer) countedInsight(ctx context.Context, project string) int64 {
	st, body, err := s.do(ctx, http.MethodGet, project, "/api/v1/stats/summary", nil)
	if err != nil || st != http.StatusOK {
		return -1
	}
	var r struct{ Insight struct{ Analyses int64 } }
	_ = json.Unmarshal(body, &r)
	return r.Insight.Analyses
}

// rawInsert copies the project's stored result documents, under new ids,
// into new collections with InsertMany (batches of 100, one client) and
// returns docs/s: encoded before the clock starts (the store's own rate),
// and as bson.D that the driver encodes in the call (a client's own work
// in the clock: the denominator of the figures before 2026-12-05). The two
// take turns twice and each keeps its faster round: the first inserts
// after a landing run beside what it left behind (its last purges,
// checkpoints and collections), and whichever went first looked slower.
func (s *benchServer) rawInsert(b *testing.B, project string, n int) (encoded, inCall float64) {
	if os.Getenv("BENCH_STORE_NO_RAW") == "1" { // profiling the landing alone
		return 1, 1
	}
	ctx := context.Background()
	cur, err := s.db.Collection("insight_results").Find(ctx, bson.D{{Key: "projectId", Value: project}}, options.Find().SetLimit(int64(n)))
	if err != nil {
		b.Fatal(err)
	}
	var docs []any
	for i := 0; cur.Next(ctx); i++ {
		var d bson.D
		if err := cur.Decode(&d); err != nil {
			b.Fatal(err)
		}
		docs = append(docs, d)
	}
	if len(docs) == 0 {
		return 0, 0
	}
	for round := range 2 {
		ids := func(i int) string { return fmt.Sprintf("raw%d-%07d", round, i) }
		raws := make([]any, len(docs))
		for i, d := range docs {
			raw, err := bson.Marshal(setField(d.(bson.D), "_id", ids(i)))
			if err != nil {
				b.Fatal(err)
			}
			raws[i] = bson.Raw(raw)
		}
		encoded = max(encoded, insertAll(b, s.db.Collection("bench_raw_insert"), raws))
		for i, d := range docs {
			docs[i] = setField(slices.Clone(d.(bson.D)), "_id", ids(i))
		}
		inCall = max(inCall, insertAll(b, s.db.Collection("bench_raw_decoded"), docs))
	}
	return encoded, inCall
}

// rawIndexed is rawInsert into a new collection with the results' list
// index (so with the index maintenance a result's insert pays): where the
// landing's ceiling in the store is.
func (s *benchServer) rawIndexed(b *testing.B, n int) float64 {
	ctx := context.Background()
	ix := mongodb.Index{Collection: "bench_raw_indexed", Name: "tenant_received_id",
		Keys: bson.D{{Key: "organizationId", Value: 1}, {Key: "projectId", Value: 1}, {Key: "receivedAt", Value: -1}, {Key: "_id", Value: -1}}}
	if err := mongodb.EnsureIndexes(ctx, s.db, []mongodb.Index{ix}); err != nil {
		b.Fatal(err)
	}
	cur, err := s.db.Collection("bench_raw_insert").Find(ctx, bson.D{}, options.Find().SetLimit(int64(n)))
	if err != nil {
		b.Fatal(err)
	}
	var docs []any
	for cur.Next(ctx) {
		docs = append(docs, slices.Clone(cur.Current))
	}
	if len(docs) == 0 {
		return 0
	}
	return insertAll(b, s.db.Collection("bench_raw_indexed"), docs)
}

// insertAll InsertManys docs in batches of 100 and returns docs/s.
func insertAll(b *testing.B, coll *mongo.Collection, docs []any) float64 {
	t := time.Now()
	for i := 0; i < len(docs); i += 100 {
		if _, err := coll.InsertMany(context.Background(), docs[i:min(i+100, len(docs))]); err != nil {
			b.Fatal(err)
		}
	}
	return float64(len(docs)) / time.Since(t).Seconds()
}

func printStoreFigures(w io.Writer, cfg storeBenchConfig, before, after []storeFigures) {
	fmt.Fprintf(w, "\nbench-store: %d Insight results (~10 KB) over 4 projects, %d Autopilot, %d Guardian, %d jobs, %d files; %d requests per list (before: at most %s per list); %d uploads landed\n",
		cfg.results, cfg.results/10, cfg.results/10, cfg.results+cfg.results/5, cfg.results/5, cfg.lists, cfg.budget, cfg.uploads)
	fmt.Fprintf(w, "before: ODAVL_STORE_BASELINE=1 (the fork's patches 3-13 off, SQLite synchronous=FULL), %d server(s); after: %d server(s); figures as min–max over a side's servers\n\n", len(before), len(after))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tbefore\tafter\tgoal")
	spread := func(fs []storeFigures, get func(storeFigures) float64, unit string) string {
		if len(fs) == 0 {
			return "-"
		}
		lo, hi := get(fs[0]), get(fs[0])
		for _, f := range fs[1:] {
			lo, hi = min(lo, get(f)), max(hi, get(f))
		}
		prec := 1
		if hi < 10 {
			prec = 2 // a ratio: 0.45 is not 0.5
		}
		if lo == hi {
			return fmt.Sprintf("%.*f%s", prec, lo, unit)
		}
		return fmt.Sprintf("%.*f–%.*f%s", prec, lo, prec, hi, unit)
	}
	listCell := func(fs []storeFigures, name string) string {
		for _, f := range fs {
			if l := f.lists[name]; l.failed != "" {
				return fmt.Sprintf("%d answered, then %s", l.n, l.failed)
			}
		}
		return spread(fs, func(f storeFigures) float64 { return float64(f.lists[name].p99) / 1e6 }, " ms")
	}
	for _, l := range storeLists() {
		fmt.Fprintf(tw, "%s p99\t%s\t%s\t≤ 50 ms\n", l[0], listCell(before, l[0]), listCell(after, l[0]))
	}
	for _, l := range storeLists() {
		slowest := func(f storeFigures) float64 { return float64(f.lists[l[0]].slowest) / 1e6 }
		first := func(f storeFigures) float64 { return float64(f.lists[l[0]].first) / 1e6 }
		fmt.Fprintf(tw, "%s slowest (first)\t%s (%s)\t%s (%s)\t\n", l[0], spread(before, slowest, " ms"), spread(before, first, " ms"), spread(after, slowest, " ms"), spread(after, first, " ms"))
	}
	growth := func(f storeFigures) float64 { return f.rssAfter - f.rssBefore }
	fmt.Fprintf(tw, "RSS growth over the lists\t%s\t%s\t≤ 50 MB\n", spread(before, growth, " MB"), spread(after, growth, " MB"))
	incs := func(f storeFigures) float64 { return float64(f.incs) }
	fmt.Fprintf(tw, "50 concurrent $inc\t%s\t%s\t50\n", spread(before, incs, ""), spread(after, incs, ""))
	for _, row := range []struct {
		name, goal string
		get        func(storeFigures) float64
	}{
		{"landed/s", "", func(f storeFigures) float64 { return f.landed }},
		{"raw InsertMany/s", "", func(f storeFigures) float64 { return f.raw }},
		{"landed ÷ raw", "≥ 0.7", func(f storeFigures) float64 { return f.landed / f.raw }},
		{"raw InsertMany/s, bson.D encoded in the call", "", func(f storeFigures) float64 { return f.rawD }},
		{"landed ÷ raw encoded in the call", "(before 2026-12-05)", func(f storeFigures) float64 { return f.landed / f.rawD }},
		{"raw InsertMany/s, list index", "", func(f storeFigures) float64 { return f.indexed }},
		{"floor landed/s (JetStream + batched insert only)", "", func(f storeFigures) float64 { return f.floor }},
		{"floor ÷ raw", "", func(f storeFigures) float64 { return f.floor / f.raw }},
		{"floor with the contracts' events, record, alert: landed/s", "", func(f storeFigures) float64 { return f.contract }},
		{"that floor ÷ raw", "", func(f storeFigures) float64 { return f.contract / f.raw }},
	} {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", row.name, spread(before, row.get, ""), spread(after, row.get, ""), row.goal)
	}
	_ = tw.Flush()
	for _, side := range []struct {
		name string
		fs   []storeFigures
	}{{"before", before}, {"after", after}} {
		if len(side.fs) > 0 {
			fmt.Fprintf(w, "expiry cleanup plan, %s: %s\n", side.name, side.fs[0].cleanup)
		}
	}
}
