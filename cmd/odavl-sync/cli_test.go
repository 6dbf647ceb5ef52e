package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/odavl/sync/client"
	clicmd "github.com/odavl/sync/client/cli"
)

// testClock is the clock the client commands wait on in tests: Sleep
// records the wait and advances the time at once.
type testClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
	// real makes Sleep also wait for real, for a real server's rate limit.
	real bool
}

func newTestClock() *testClock {
	return &testClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *testClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	real := c.real
	c.mu.Unlock()
	if real {
		time.Sleep(d)
	} else {
		time.Sleep(time.Millisecond) // let a polled server make progress
	}
	return ctx.Err()
}

func (c *testClock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

// cliResult is one run of the binary.
type cliResult struct {
	Code           int
	Stdout, Stderr string
}

func (r cliResult) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.Stdout), v); err != nil {
		t.Fatalf("decoding stdout %q: %v (stderr %s)", r.Stdout, err, r.Stderr)
	}
}

// cliEnv runs client commands with one environment, spool and clock.
type cliEnv struct {
	t     testing.TB
	env   map[string]string
	clock *testClock
	spool string
	stdin string
}

func newCLI(t testing.TB, env map[string]string) *cliEnv {
	if env == nil {
		env = map[string]string{}
	}
	return &cliEnv{t: t, env: env, clock: newTestClock(), spool: filepath.Join(t.TempDir(), "spool")}
}

// newCLIFor is a CLI configured by the seed's variables only, with the
// credentials c and the API at apiURL (the server, or a proxy in front).
func newCLIFor(t testing.TB, c credentials, apiURL string) *cliEnv {
	return newCLI(t, map[string]string{
		"ODAVL_CLOUD_API": apiURL, "ODAVL_API_KEY": c.APIKey,
		"ODAVL_ORGANIZATION_ID": c.OrganizationID, "ODAVL_PROJECT_ID": c.ProjectID,
	})
}

// run runs odavl-sync with args, the spool flag added.
func (c *cliEnv) run(args ...string) cliResult {
	c.t.Helper()
	var out, errOut strings.Builder
	args = append(args, "--spool", c.spool)
	ctx := clicmd.WithClock(context.Background(), c.clock)
	code := run(ctx, args, func(k string) string { return c.env[k] }, strings.NewReader(c.stdin), &out, &errOut)
	return cliResult{Code: code, Stdout: out.String(), Stderr: errOut.String()}
}

func (c *cliEnv) mustRun(args ...string) cliResult {
	c.t.Helper()
	r := c.run(args...)
	if r.Code != 0 {
		c.t.Fatalf("odavl-sync %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return r
}

func writeJSON(t testing.TB, dir, name string, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type pushOut struct {
	State   string
	Receipt client.Receipt
	Spooled string
	Status  *client.UploadStatus
}

func TestCLIPushEachProductAndReadBack(t *testing.T) {
	s := startServe(t, nil)
	c := s.Cred
	cred := filepath.Join(s.Data, credentialsFile)
	dir := t.TempDir()
	cli := newCLI(t, nil)

	// Insight from a file, with --credentials; --wait until stored.
	ins := writeJSON(t, dir, "insight.json", insightBody(c.OrganizationID, c.ProjectID, 1))
	var p pushOut
	cli.mustRun("push", "insight", ins, "--credentials", cred, "--json", "--wait").JSON(t, &p)
	if p.State != "accepted" || p.Receipt.EventID == "" || p.Receipt.IdempotencyKey == "" {
		t.Fatalf("push insight: %+v", p)
	}
	if p.Status == nil || p.Status.State != client.StateStored {
		t.Fatalf("push --wait ended in %+v, want stored", p.Status)
	}
	// Right after completion the server may answer the job as WAITING for a
	// moment (its record moves from the live bucket to the store; reported).
	var job client.Job
	eventually(t, "jobs get to show the completed job", func() bool {
		cli.mustRun("jobs", "get", p.Receipt.JobID, "--credentials", cred, "--json").JSON(t, &job)
		return job.Status == "COMPLETED"
	})
	if job.Type != "INSIGHT_ANALYSIS" || job.ResultID == "" {
		t.Errorf("jobs get: %+v", job)
	}
	var got map[string]any
	cli.mustRun("results", "get", "insight", p.Receipt.EventID, "--credentials", cred, "--json").JSON(t, &got)
	if got["totalIssues"] != float64(3) {
		t.Errorf("insight read back with totalIssues %v, want 3: %v", got["totalIssues"], got)
	}

	// The same file again: the same receipt, replayed, nothing stored twice.
	var again pushOut
	cli.mustRun("push", "insight", ins, "--credentials", cred, "--json").JSON(t, &again)
	if again.Receipt.EventID != p.Receipt.EventID || !again.Receipt.Replay {
		t.Errorf("second push of the same file: %+v, want a replay of %s", again.Receipt, p.Receipt.EventID)
	}

	// Autopilot from stdin, configured by the seed's variables only.
	envCLI := newCLIFor(t, c, c.APIURL)
	b, _ := json.Marshal(autopilotBody(c.OrganizationID, c.ProjectID, "run-42", true))
	envCLI.stdin = string(b)
	var ap pushOut
	envCLI.mustRun("push", "autopilot", "-", "--json").JSON(t, &ap)
	if ap.Receipt.IdempotencyKey != "runId:run-42" {
		t.Errorf("autopilot key %q, want runId:run-42", ap.Receipt.IdempotencyKey)
	}
	var st client.UploadStatus
	envCLI.mustRun("status", ap.Receipt.EventID, "--wait", "--json").JSON(t, &st)
	if st.State != client.StateStored {
		t.Fatalf("status --wait: %+v", st)
	}
	envCLI.mustRun("results", "get", "autopilot", ap.Receipt.EventID, "--json").JSON(t, &got)
	if got["runId"] != "run-42" || got["trustScore"] != 0.82 {
		t.Errorf("autopilot read back: %v", got)
	}

	// Guardian.
	gd := writeJSON(t, dir, "guardian.json", guardianBody(c.OrganizationID, c.ProjectID, "tr-7", "staging", true))
	var g pushOut
	cli.mustRun("push", "guardian", gd, "--credentials", cred, "--json", "--wait").JSON(t, &g)
	if g.Status == nil || g.Status.State != client.StateStored {
		t.Fatalf("guardian: %+v", g)
	}
	var l client.ResultList
	cli.mustRun("results", "list", "guardian", "--credentials", cred, "--json").JSON(t, &l)
	if l.Total != 1 || !strings.Contains(string(l.Items[0]), `"tr-7"`) {
		t.Errorf("guardian list: total %d %s", l.Total, l.Items)
	}
	cli.mustRun("results", "list", "insight", "--credentials", cred, "--json").JSON(t, &l)
	if l.Total != 1 {
		t.Errorf("insight list total %d after a push and its replay, want 1", l.Total)
	}

	// Quiet when stdout is not a terminal: nothing on stdout without --json.
	gd2 := writeJSON(t, dir, "guardian2.json", guardianBody(c.OrganizationID, c.ProjectID, "tr-8", "staging", true))
	if r := cli.mustRun("push", "guardian", gd2, "--credentials", cred); r.Stdout != "" {
		t.Errorf("push wrote %q to a non-terminal stdout", r.Stdout)
	}
}

func TestCLIConfigMissingSettingNamed(t *testing.T) {
	cli := newCLI(t, map[string]string{"ODAVL_CLOUD_API": "http://127.0.0.1:1", "ODAVL_ORGANIZATION_ID": "o"})
	r := cli.run("push", "insight", "-")
	if r.Code != clicmd.ExitUsage {
		t.Fatalf("exit %d, want %d (usage): %s", r.Code, clicmd.ExitUsage, r.Stderr)
	}
	for _, want := range []string{"ODAVL_API_KEY", "ODAVL_PROJECT_ID"} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("error %q does not name %s", r.Stderr, want)
		}
	}
	if strings.Contains(r.Stderr, "ODAVL_CLOUD_API") {
		t.Errorf("error names a setting that is set: %s", r.Stderr)
	}
	if r := cli.run("push", "nothing", "-"); r.Code != clicmd.ExitUsage {
		t.Errorf("unknown product: exit %d, want %d", r.Code, clicmd.ExitUsage)
	}
}

func TestCLIRejectedUploadShowsFieldErrors(t *testing.T) {
	s := startServe(t, nil)
	c := s.Cred
	cred := filepath.Join(s.Data, credentialsFile)
	cli := newCLI(t, nil)
	bad := insightBody(c.OrganizationID, c.ProjectID, 1)
	delete(bad, "detectors")
	bad["issuesBySeverity"] = map[string]any{"critical": -1, "high": 1, "medium": 1, "low": 0}
	path := writeJSON(t, t.TempDir(), "bad.json", bad)

	r := cli.run("push", "insight", path, "--credentials", cred)
	if r.Code != clicmd.ExitRejected {
		t.Fatalf("exit %d, want %d (rejected)\n%s", r.Code, clicmd.ExitRejected, r.Stderr)
	}
	for _, want := range []string{"400", "detectors", "issuesBySeverity.critical"} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("stderr does not show %q:\n%s", want, r.Stderr)
		}
	}
	r = cli.run("push", "insight", path, "--credentials", cred, "--json")
	var pj struct {
		Problem client.Error
	}
	r.JSON(t, &pj)
	if r.Code != clicmd.ExitRejected || pj.Problem.Status != 400 || len(pj.Problem.Fields) < 2 {
		t.Errorf("--json rejection: exit %d %+v", r.Code, pj.Problem)
	}
	// A rejection is final: not spooled.
	var ls clicmd.SpoolListing
	cli.mustRun("spool", "list", "--json").JSON(t, &ls)
	if len(ls.Entries) != 0 {
		t.Errorf("a rejected upload was spooled: %+v", ls.Entries)
	}
	// A file that is not JSON is rejected before it is sent.
	notJSON := filepath.Join(t.TempDir(), "x.json")
	_ = os.WriteFile(notJSON, []byte("{nope"), 0o600)
	if r := cli.run("push", "insight", notJSON, "--credentials", cred); r.Code != clicmd.ExitRejected {
		t.Errorf("not JSON: exit %d, want %d", r.Code, clicmd.ExitRejected)
	}
}

func TestCLISpoolWhileServerDownThenFlushOnce(t *testing.T) {
	s := startServe(t, nil)
	c := s.Cred
	cred := filepath.Join(s.Data, credentialsFile)
	dir := t.TempDir()
	cli := newCLI(t, nil)

	cli.mustRun("push", "insight", writeJSON(t, dir, "i1.json", insightBody(c.OrganizationID, c.ProjectID, 1)), "--credentials", cred)
	if code := s.Stop(); code != 0 {
		t.Fatalf("serve exited %d", code)
	}

	// The server is gone: each push retries, then spools and exits 0.
	files := []string{
		writeJSON(t, dir, "i2.json", insightBody(c.OrganizationID, c.ProjectID, 2)),
		writeJSON(t, dir, "a1.json", autopilotBody(c.OrganizationID, c.ProjectID, "run-1", true)),
		writeJSON(t, dir, "g1.json", guardianBody(c.OrganizationID, c.ProjectID, "tr-1", "staging", true)),
	}
	products := []string{"insight", "autopilot", "guardian"}
	for i, f := range files {
		before := len(cli.clock.Sleeps())
		r := cli.run("push", products[i], f, "--credentials", cred)
		if r.Code != clicmd.ExitOK || !strings.Contains(r.Stderr, "spooled") {
			t.Fatalf("push %s with the server down: exit %d, stderr %s", products[i], r.Code, r.Stderr)
		}
		if n := len(cli.clock.Sleeps()) - before; n != 4 {
			t.Errorf("push %s waited %d times before spooling, want 4 (5 attempts)", products[i], n)
		}
	}
	// --strict says so with exit 3.
	r := cli.run("push", "insight", writeJSON(t, dir, "i3.json", insightBody(c.OrganizationID, c.ProjectID, 3)), "--credentials", cred, "--strict", "--retries", "1")
	if r.Code != clicmd.ExitSpooled {
		t.Fatalf("--strict spooled push: exit %d, want %d: %s", r.Code, clicmd.ExitSpooled, r.Stderr)
	}
	var ls clicmd.SpoolListing
	cli.mustRun("spool", "list", "--json").JSON(t, &ls)
	if len(ls.Entries) != 4 {
		t.Fatalf("%d entries spooled, want 4", len(ls.Entries))
	}
	wantOrder := []string{"insight", "autopilot", "guardian", "insight"}
	for i, it := range ls.Entries {
		if it.Entry.Product != wantOrder[i] {
			t.Errorf("entry %d is %s, want %s (oldest first)", i, it.Entry.Product, wantOrder[i])
		}
	}
	// A corrupted entry, sorting first.
	corrupt := filepath.Join(cli.spool, "00000000000000000001-insight-deadbeef.json")
	if err := os.WriteFile(corrupt, []byte(`{"version":1,"kind":"push","product":"insight","bo`), 0o600); err != nil {
		t.Fatal(err)
	}

	s2 := startServeOn(t, s.Data, nil)
	var fr clicmd.FlushReport
	r = cli.run("spool", "flush", "--credentials", cred, "--json")
	r.JSON(t, &fr)
	if r.Code != clicmd.ExitFailure || fr.Delivered != 4 || len(fr.Corrupt) != 1 || fr.Remaining != 0 {
		t.Fatalf("flush: exit %d, %+v\n%s", r.Code, fr, r.Stderr)
	}
	if !strings.Contains(r.Stderr, "corrupt") {
		t.Errorf("the corrupt entry was not reported: %s", r.Stderr)
	}
	if _, err := os.Stat(filepath.Join(cli.spool, "corrupt", filepath.Base(corrupt))); err != nil {
		t.Errorf("the corrupt entry was not set aside: %v", err)
	}
	// Each upload landed once.
	for p, want := range map[string]int64{"insight": 3, "autopilot": 1, "guardian": 1} {
		var l struct{ Total int64 }
		eventually(t, p+" uploads stored", func() bool {
			s2.Do(http.MethodGet, "/api/v1/sync/"+p, nil).JSON(t, &l)
			return l.Total >= want
		})
		if l.Total != want {
			t.Errorf("%s: %d stored, want %d", p, l.Total, want)
		}
	}
	// Nothing left: a second flush sends nothing.
	cli.mustRun("spool", "flush", "--credentials", cred, "--json").JSON(t, &fr)
	if fr.Delivered != 0 || fr.Remaining != 0 {
		t.Errorf("second flush: %+v", fr)
	}
}

func TestCLINextCommandFlushesSpool(t *testing.T) {
	s := startServe(t, nil)
	c := s.Cred
	cred := filepath.Join(s.Data, credentialsFile)
	cli := newCLI(t, nil)
	s.Stop()
	r := cli.run("push", "autopilot", writeJSON(t, t.TempDir(), "a.json", autopilotBody(c.OrganizationID, c.ProjectID, "run-9", true)), "--credentials", cred, "--retries", "2")
	if r.Code != 0 || !strings.Contains(r.Stderr, "spooled") {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	s2 := startServeOn(t, s.Data, nil)
	// Any next command sends the spool first, whatever its own outcome.
	r = cli.run("jobs", "get", "no-such-job", "--credentials", cred)
	if r.Code != clicmd.ExitRejected || !strings.Contains(r.Stderr, "delivered 1 upload(s) spooled earlier") {
		t.Errorf("jobs get of an unknown job: exit %d, stderr %s", r.Code, r.Stderr)
	}
	var l struct{ Total int64 }
	eventually(t, "the spooled ledger stored", func() bool {
		s2.Do(http.MethodGet, "/api/v1/sync/autopilot", nil).JSON(t, &l)
		return l.Total == 1
	})
	var ls clicmd.SpoolListing
	cli.mustRun("spool", "list", "--json").JSON(t, &ls)
	if len(ls.Entries) != 0 {
		t.Errorf("the next command left %d entries spooled", len(ls.Entries))
	}
}

// step is one scripted answer of the proxy to an upload POST; forward sends
// the request on to the real server, answering into the writer given.
type step func(w http.ResponseWriter, r *http.Request, forward func(http.ResponseWriter))

// faultProxy stands in front of a real serve and answers upload POSTs from a
// script, forwarding everything else (and uploads once the script is done).
type faultProxy struct {
	mu     sync.Mutex
	srv    *httptest.Server
	target *url.URL
	script []step
	posts  []string // the Idempotency-Key of each upload POST seen
	// match picks the requests the script answers (default: upload POSTs).
	match func(*http.Request) bool
	seen  []string // method and path of each matched request
}

func newFaultProxy(t testing.TB, target string) *faultProxy {
	p := &faultProxy{}
	p.retarget(t, target)
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		p.mu.Lock()
		defer p.mu.Unlock()
		pr.SetURL(p.target)
	}, ErrorLog: log.New(io.Discard, "", 0)}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		forward := func(w http.ResponseWriter) { rp.ServeHTTP(w, r) }
		p.mu.Lock()
		match := p.match
		p.mu.Unlock()
		if match == nil {
			match = func(r *http.Request) bool {
				return r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api/v1/sync/")
			}
		}
		if !match(r) {
			forward(w)
			return
		}
		p.mu.Lock()
		p.posts = append(p.posts, r.Header.Get("Idempotency-Key"))
		p.seen = append(p.seen, r.Method+" "+r.URL.Path)
		var next step
		if len(p.script) > 0 {
			next, p.script = p.script[0], p.script[1:]
		}
		p.mu.Unlock()
		if next == nil {
			forward(w)
			return
		}
		next(w, r, forward)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// retarget points the proxy at another server (a restarted serve's port).
func (p *faultProxy) retarget(t testing.TB, target string) {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.target = u
	p.mu.Unlock()
}

func (p *faultProxy) then(steps ...step) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.script = append(p.script, steps...)
}

// Seen lists the matched requests.
func (p *faultProxy) Seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.seen...)
}

func (p *faultProxy) Posts() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.posts...)
}

// answer is an injected problem+json answer.
func answer(status int, hdr func() []string) step {
	return func(w http.ResponseWriter, r *http.Request, _ func(http.ResponseWriter)) {
		_, _ = io.Copy(io.Discard, r.Body)
		if hdr != nil {
			h := hdr()
			for i := 0; i+1 < len(h); i += 2 {
				w.Header().Set(h[i], h[i+1])
			}
		}
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"type":"https://odavl.dev/problems/injected","title":%q,"status":%d,"detail":"injected by the test"}`, http.StatusText(status), status)
	}
}

// lostAnswer forwards the upload to the server, then breaks the connection
// before the client reads the answer: the server took it and the client
// cannot know.
func lostAnswer(w http.ResponseWriter, _ *http.Request, forward func(http.ResponseWriter)) {
	forward(httptest.NewRecorder())
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	conn.Close()
}

func TestCLIRetriesHonourBackoffAndRetryAfter(t *testing.T) {
	s := startServe(t, nil)
	c := s.Cred
	px := newFaultProxy(t, c.APIURL)
	cli := newCLIFor(t, c, px.srv.URL)
	dir := t.TempDir()

	// Two 503s (backoff with jitter), a 429 with Retry-After in seconds, one
	// with an HTTP date, then the real server.
	px.then(
		answer(http.StatusServiceUnavailable, nil),
		answer(http.StatusServiceUnavailable, nil),
		answer(http.StatusTooManyRequests, func() []string { return []string{"Retry-After", "7"} }),
		answer(http.StatusTooManyRequests, func() []string {
			return []string{"Retry-After", cli.clock.Now().Add(12 * time.Second).UTC().Format(http.TimeFormat)}
		}),
	)
	var p pushOut
	cli.mustRun("push", "insight", writeJSON(t, dir, "i.json", insightBody(c.OrganizationID, c.ProjectID, 1)), "--json", "--retries", "6").JSON(t, &p)
	if p.State != "accepted" {
		t.Fatalf("push: %+v", p)
	}
	waits := cli.clock.Sleeps()
	if len(waits) != 4 {
		t.Fatalf("waits %v, want 4", waits)
	}
	within := func(i int, lo, hi time.Duration) {
		if waits[i] < lo || waits[i] > hi {
			t.Errorf("wait %d is %v, want %v to %v", i+1, waits[i], lo, hi)
		}
	}
	within(0, 250*time.Millisecond, 500*time.Millisecond) // base 500ms, equal jitter
	within(1, 500*time.Millisecond, time.Second)          // doubled
	within(2, 7*time.Second, 7*time.Second)               // Retry-After: 7
	within(3, 11*time.Second, 12*time.Second)             // Retry-After: <date 12s on> (whole seconds)
	posts := px.Posts()
	if len(posts) != 5 {
		t.Fatalf("%d upload requests, want 5", len(posts))
	}
	for _, k := range posts {
		if k != p.Receipt.IdempotencyKey {
			t.Errorf("a retry carried key %q, want %q for every attempt", k, p.Receipt.IdempotencyKey)
		}
	}

	// The server takes the upload but the answer is lost: the retry gets the
	// first receipt and nothing is stored twice.
	px.then(lostAnswer)
	var lost pushOut
	cli.mustRun("push", "autopilot", writeJSON(t, dir, "a.json", autopilotBody(c.OrganizationID, c.ProjectID, "run-lost", true)), "--json").JSON(t, &lost)
	if !lost.Receipt.Replay {
		t.Errorf("the retry after a lost answer was not a replay: %+v", lost.Receipt)
	}
	var l struct{ Total int64 }
	eventually(t, "the ledger stored", func() bool {
		s.Do(http.MethodGet, "/api/v1/sync/autopilot", nil).JSON(t, &l)
		return l.Total >= 1
	})
	if l.Total != 1 {
		t.Errorf("%d ledgers stored, want 1", l.Total)
	}

	// A 4xx other than 429 is not retried.
	before, n := len(cli.clock.Sleeps()), len(px.Posts())
	px.then(answer(http.StatusConflict, nil))
	r := cli.run("push", "guardian", writeJSON(t, dir, "g.json", guardianBody(c.OrganizationID, c.ProjectID, "tr-c", "staging", true)))
	if r.Code != clicmd.ExitRejected || len(px.Posts()) != n+1 || len(cli.clock.Sleeps()) != before {
		t.Errorf("409: exit %d, %d requests, %d waits; want exit 4, one request, no wait", r.Code, len(px.Posts())-n, len(cli.clock.Sleeps())-before)
	}

	// A server that keeps answering 503: the backoff doubles, then the
	// upload is spooled.
	before = len(cli.clock.Sleeps())
	for range 5 {
		px.then(answer(http.StatusServiceUnavailable, nil))
	}
	r = cli.run("push", "guardian", writeJSON(t, dir, "g2.json", guardianBody(c.OrganizationID, c.ProjectID, "tr-d", "staging", true)), "--strict")
	if r.Code != clicmd.ExitSpooled {
		t.Fatalf("always 503: exit %d, want %d: %s", r.Code, clicmd.ExitSpooled, r.Stderr)
	}
	waits = cli.clock.Sleeps()[before:]
	for i, w := range waits {
		hi := 500 * time.Millisecond << i
		if w < hi/2 || w > hi {
			t.Errorf("wait %d is %v, want %v to %v", i+1, w, hi/2, hi)
		}
	}
	if len(waits) != 4 {
		t.Errorf("%d waits, want 4", len(waits))
	}
	// The server is back: the flush delivers it.
	var fr clicmd.FlushReport
	cli.mustRun("spool", "flush", "--json").JSON(t, &fr)
	if fr.Delivered != 1 {
		t.Errorf("flush: %+v", fr)
	}
}

func TestCLIWaitsOutTheServersRateLimit(t *testing.T) {
	s := startServe(t, map[string]string{"RATE_LIMIT_RPS": "1", "RATE_LIMIT_BURST": "1"})
	c := s.Cred
	cli := newCLI(t, nil)
	cli.clock.real = true // the server's limiter runs on the wall clock
	dir := t.TempDir()
	for i := range 3 {
		cli.mustRun("push", "insight", writeJSON(t, dir, fmt.Sprintf("i%d.json", i), insightBody(c.OrganizationID, c.ProjectID, i)), "--credentials", filepath.Join(s.Data, credentialsFile))
	}
	waits := cli.clock.Sleeps()
	if len(waits) == 0 {
		t.Fatal("three pushes at 1 request/s were never told to wait")
	}
	for _, w := range waits {
		if w < time.Second || w%time.Second != 0 {
			t.Errorf("waited %v, want the server's Retry-After (whole seconds, at least 1s)", w)
		}
	}
}

func TestCLIServerStoppedMidPushSpoolsThenFlushLandsOnce(t *testing.T) {
	s := startServe(t, nil)
	c := s.Cred
	px := newFaultProxy(t, c.APIURL)
	cli := newCLIFor(t, c, px.srv.URL)
	dir := t.TempDir()
	// The server takes the upload, then stops before the client hears back;
	// the client's retries find it gone (502 from the proxy in front).
	px.then(func(w http.ResponseWriter, r *http.Request, forward func(http.ResponseWriter)) {
		forward(httptest.NewRecorder())
		s.Stop()
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
	})
	r := cli.run("push", "insight", writeJSON(t, dir, "i.json", insightBody(c.OrganizationID, c.ProjectID, 1)), "--json")
	var p pushOut
	r.JSON(t, &p)
	if r.Code != clicmd.ExitOK || p.State != "spooled" {
		t.Fatalf("push as the server stops: exit %d %+v\n%s", r.Code, p, r.Stderr)
	}
	// More pushes while it is down.
	for i := 2; i <= 3; i++ {
		cli.mustRun("push", "insight", writeJSON(t, dir, fmt.Sprintf("i%d.json", i), insightBody(c.OrganizationID, c.ProjectID, i)), "--retries", "2")
	}

	s2 := startServeOn(t, s.Data, nil)
	px.retarget(t, s2.Cred.APIURL)
	var fr clicmd.FlushReport
	cli.mustRun("spool", "flush", "--json").JSON(t, &fr)
	if fr.Delivered != 3 || fr.Remaining != 0 {
		t.Fatalf("flush: %+v", fr)
	}
	if !fr.Results[0].Item.Entry.CreatedAt.Before(fr.Results[2].Item.Entry.CreatedAt) {
		t.Errorf("not flushed oldest first: %+v", fr.Results)
	}
	var l struct{ Total int64 }
	eventually(t, "three insight uploads stored", func() bool {
		s2.Do(http.MethodGet, "/api/v1/sync/insight", nil).JSON(t, &l)
		return l.Total >= 3
	})
	if l.Total != 3 {
		t.Errorf("%d stored, want 3: the upload the server took before stopping must not be stored twice", l.Total)
	}
}

func TestCLIConcurrentFlushesSendEachEntryOnce(t *testing.T) {
	s := startServe(t, nil)
	c := s.Cred
	px := newFaultProxy(t, "http://127.0.0.1:1") // nothing listens: 502
	cli := newCLIFor(t, c, px.srv.URL)
	dir := t.TempDir()
	for i := range 6 {
		r := cli.run("push", "insight", writeJSON(t, dir, fmt.Sprintf("i%d.json", i), insightBody(c.OrganizationID, c.ProjectID, i)), "--retries", "1")
		if r.Code != 0 || !strings.Contains(r.Stderr, "spooled") {
			t.Fatalf("push %d: exit %d %s", i, r.Code, r.Stderr)
		}
	}
	before := len(px.Posts())
	px.retarget(t, c.APIURL)
	var wg sync.WaitGroup
	results := make([]clicmd.FlushReport, 3)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := cli.run("spool", "flush", "--json")
			if r.Code != 0 {
				t.Errorf("flush %d: exit %d %s", i, r.Code, r.Stderr)
				return
			}
			_ = json.Unmarshal([]byte(r.Stdout), &results[i])
		}()
	}
	wg.Wait()
	delivered := 0
	for _, fr := range results {
		delivered += fr.Delivered
	}
	sent := map[string]int{}
	for _, k := range px.Posts()[before:] {
		sent[k]++
	}
	if delivered != 6 || len(sent) != 6 {
		t.Fatalf("three concurrent flushes delivered %d, sent %d keys, want 6 and 6: %v", delivered, len(sent), sent)
	}
	for k, n := range sent {
		if n != 1 {
			t.Errorf("%s sent %d times", k, n)
		}
	}
}
