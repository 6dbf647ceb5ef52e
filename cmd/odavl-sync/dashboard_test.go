package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"

	"github.com/odavl/sync/libs/events"
)

// sseEvent is one Server-Sent Events frame of the event stream.
type sseEvent struct {
	Event string
	ID    string
	Data  events.Event
}

// eventStream is an open GET /api/v1/events/stream read in the background.
type eventStream struct {
	resp   *http.Response
	cancel context.CancelFunc
	mu     sync.Mutex
	got    []sseEvent
	done   chan struct{}
	err    error
}

// openStream opens the event stream as key for org/project and reads it
// until the server ends it or the test closes it.
func openStream(t *testing.T, s *served, key, org, project string) *eventStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.Cred.APIURL+"/api/v1/events/stream", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("X-Organization-Id", org)
	req.Header.Set("X-Project-Id", project)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("opening the stream: %v", err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		cancel()
		t.Fatalf("stream answered %d %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	es := &eventStream{resp: resp, cancel: cancel, done: make(chan struct{})}
	opened := make(chan struct{})
	go func() {
		defer close(es.done)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		var cur sseEvent
		var data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == ": open":
				close(opened)
			case line == "":
				if cur.Event != "" {
					if cur.Event != "shutdown" {
						if err := json.Unmarshal([]byte(data), &cur.Data); err != nil {
							es.mu.Lock()
							es.err = fmt.Errorf("frame data %q: %v", data, err)
							es.mu.Unlock()
						}
					}
					es.mu.Lock()
					es.got = append(es.got, cur)
					es.mu.Unlock()
				}
				cur, data = sseEvent{}, ""
			case strings.HasPrefix(line, "event: "):
				cur.Event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "id: "):
				cur.ID = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				data += strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	t.Cleanup(func() { es.Close() })
	select {
	case <-opened:
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not open in 10s")
	}
	return es
}

func (es *eventStream) Close() {
	es.cancel()
	<-es.done
}

func (es *eventStream) events() []sseEvent {
	es.mu.Lock()
	defer es.mu.Unlock()
	return append([]sseEvent(nil), es.got...)
}

func (es *eventStream) has(f func(sseEvent) bool) bool {
	for _, e := range es.events() {
		if f(e) {
			return true
		}
	}
	return false
}

// natsURLOf reads the NATS URL serve printed.
func natsURLOf(t *testing.T, s *served) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^NATS: (\S+)`).FindStringSubmatch(s.out.String())
	if m == nil {
		t.Fatalf("serve printed no NATS URL:\n%s", s.out.String())
	}
	return m[1]
}

// metricsURLOf is the URL of /metrics that serve printed.
func metricsURLOf(t *testing.T, s *served) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^Metrics: (http\S+)`).FindStringSubmatch(s.out.String())
	if m == nil {
		t.Fatalf("serve printed no metrics URL:\n%s", s.out.String())
	}
	return m[1]
}

func streamOpen(t *testing.T, s *served) float64 {
	t.Helper()
	resp, err := http.Get(metricsURLOf(t, s))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^odavl_event_streams (\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no odavl_event_streams in /metrics")
	}
	var v float64
	fmt.Sscan(string(m[1]), &v)
	return v
}

func TestEventStreamCarriesOnlyTheCallersTenantAndEndsAtShutdown(t *testing.T) {
	s := startServe(t, nil)
	a := s.Cred
	// A second organization, and a second project of the first one (the
	// admin key may act for it: a stream of one project must still not see it).
	r := s.Do(http.MethodPost, "/api/v1/admin/keys", map[string]any{"organizationId": "other", "projectId": "p2", "name": "b", "scopes": []string{"sync"}})
	if r.Status != http.StatusCreated {
		t.Fatalf("creating a key: %d %s", r.Status, r.Body)
	}
	var bk struct{ Key string }
	r.JSON(t, &bk)

	if r := s.DoAs(a.APIKey, a.OrganizationID, a.ProjectID, http.MethodGet, "/api/v1/events/stream", nil, "X-Organization-Id", "other"); r.Status != http.StatusForbidden {
		t.Errorf("stream for another organization: %d, want 403", r.Status)
	}
	if r := s.DoAs("", a.OrganizationID, a.ProjectID, http.MethodGet, "/api/v1/events/stream", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("stream without a key: %d, want 401", r.Status)
	}

	newKey(t, s, a.OrganizationID, "second") // creates the project the admin key acts for
	streamA := openStream(t, s, a.APIKey, a.OrganizationID, a.ProjectID)
	streamB := openStream(t, s, bk.Key, "other", "p2")
	streamA2 := openStream(t, s, a.APIKey, a.OrganizationID, "second")
	if n := streamOpen(t, s); n != 3 {
		t.Errorf("odavl_event_streams %v, want 3", n)
	}

	upload := func(key, org, project string) string {
		t.Helper()
		r := s.DoAs(key, org, project, http.MethodPost, "/api/v1/sync/insight", insightBody(org, project, 1))
		if r.Status != http.StatusAccepted {
			t.Fatalf("upload for %s/%s: %d %s", org, project, r.Status, r.Body)
		}
		var rc struct{ EventID string }
		r.JSON(t, &rc)
		return rc.EventID
	}
	processed := func(id string) func(sseEvent) bool {
		return func(e sseEvent) bool {
			var p events.Processed
			_ = e.Data.DataAs(&p)
			return e.Event == events.TypeInsightProcessed && p.UploadID == id
		}
	}
	alerted := func(id string) func(sseEvent) bool {
		return func(e sseEvent) bool {
			var al events.CriticalAlert
			_ = e.Data.DataAs(&al)
			return e.Event == events.TypeCriticalAlert && al.UploadID == id
		}
	}

	// B's upload first: once B has seen it, A's stream (open all along)
	// would have been sent it too.
	idB := upload(bk.Key, "other", "p2")
	eventually(t, "B's processed event on B's stream", func() bool { return streamB.has(processed(idB)) })
	idA2 := upload(a.APIKey, a.OrganizationID, "second")
	eventually(t, "the second project's event on its stream", func() bool { return streamA2.has(processed(idA2)) })
	idA := upload(a.APIKey, a.OrganizationID, a.ProjectID)
	eventually(t, "A's processed event on A's stream", func() bool { return streamA.has(processed(idA)) })
	eventually(t, "A's critical alert on A's stream", func() bool { return streamA.has(alerted(idA)) })

	// Job and file events published straight to NATS from one connection (so
	// they arrive in order): the other tenants' first, then A's.
	nc, err := nats.Connect(natsURLOf(t, s))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	now := time.Now()
	for _, tn := range [][2]string{{"other", "p2"}, {a.OrganizationID, "second"}, {a.OrganizationID, a.ProjectID}} {
		org, project := tn[0], tn[1]
		job, _ := events.New("job-"+org+"-"+project, "test", events.TypeJobStatus, now, org, project,
			events.JobStatusChanged{JobID: "j-" + project, Type: "DATA_EXPORT", OrganizationID: org, ProjectID: project, Status: "ACTIVE", Progress: 40, At: now})
		file, _ := events.New("file-"+org+"-"+project, "test", events.TypeFileEvent, now, org, project,
			events.FileChanged{FileID: "f-" + project, OrganizationID: org, ProjectID: project, Kind: "uploaded", Name: "a.png", At: now})
		for subj, ev := range map[string]events.Event{events.JobEventSubject(org, project, "ACTIVE"): job, events.FileEventSubject(org, project, "uploaded"): file} {
			b, _ := json.Marshal(ev)
			if err := nc.Publish(subj, b); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, id := range []string{"job-", "file-"} {
		id += a.OrganizationID + "-" + a.ProjectID
		eventually(t, id+" on A's stream", func() bool { return streamA.has(func(e sseEvent) bool { return e.ID == id }) })
	}
	eventually(t, "B's job event on B's stream", func() bool {
		return streamB.has(func(e sseEvent) bool { return e.ID == "job-other-p2" })
	})

	for name, st := range map[string]struct {
		es           *eventStream
		org, project string
	}{"A": {streamA, a.OrganizationID, a.ProjectID}, "B": {streamB, "other", "p2"}, "A2": {streamA2, a.OrganizationID, "second"}} {
		if st.es.err != nil {
			t.Errorf("stream %s: %v", name, st.es.err)
		}
		for _, e := range st.es.events() {
			if e.Data.OrganizationID != st.org || e.Data.ProjectID != st.project {
				t.Errorf("stream %s of %s/%s carried %s of %s/%s", name, st.org, st.project, e.Event, e.Data.OrganizationID, e.Data.ProjectID)
			}
			if e.ID != e.Data.ID {
				t.Errorf("stream %s: SSE id %q, event id %q", name, e.ID, e.Data.ID)
			}
			if e.Event != e.Data.Type {
				t.Errorf("stream %s: SSE event %q, type %q", name, e.Event, e.Data.Type)
			}
		}
	}

	// A client that goes away gives its subscription back.
	streamA2.Close()
	eventually(t, "the closed stream to be released", func() bool { return streamOpen(t, s) == 2 })

	// Shutdown ends the open streams, so serve stops cleanly instead of
	// waiting for them until its shutdown timeout fails it.
	if code := s.Stop(); code != 0 {
		t.Fatalf("serve exited %d with streams open:\n%s", code, s.errOut.String())
	}
	for name, es := range map[string]*eventStream{"A": streamA, "B": streamB} {
		select {
		case <-es.done:
		case <-time.After(5 * time.Second):
			t.Fatalf("stream %s still open after serve stopped", name)
		}
		if got := es.events(); len(got) == 0 || got[len(got)-1].Event != "shutdown" {
			t.Errorf("stream %s did not end with a shutdown event", name)
		}
	}
}

// dashGuardianBody is a valid Guardian upload.
func dashGuardianBody(org, project, id string) map[string]any {
	return map[string]any{
		"testRunId": id, "organizationId": org, "projectId": project,
		"timestamp": time.Now().UTC().Add(-time.Minute).Format(time.RFC3339),
		"url":       "https://shop.example.com/checkout", "environment": "staging", "passed": true,
		"tests": map[string]any{
			"accessibility": map[string]any{"score": 93, "violations": 2, "passes": 41},
			"performance":   map[string]any{"loadTime": 1840, "ttfb": 120, "fcp": 640, "lcp": 1500},
			"security":      map[string]any{"vulnerabilities": 1, "warnings": 4},
		},
		"screenshots": []string{"https://cdn.example.com/shots/home.png", "https://cdn.example.com/shots/checkout.png"},
	}
}

// dashAutopilotBody is a valid Autopilot upload whose verify phase failed.
func dashAutopilotBody(org, project, id string) map[string]any {
	ph := func(status string, d float64) map[string]any { return map[string]any{"status": status, "duration": d} }
	return map[string]any{
		"runId": id, "organizationId": org, "projectId": project,
		"timestamp": time.Now().UTC().Add(-time.Minute).Format(time.RFC3339),
		"phases": map[string]any{
			"observe": ph("completed", 1200), "decide": ph("completed", 300), "act": ph("completed", 4100),
			"verify": ph("failed", 2500), "learn": ph("skipped", 0),
		},
		"selectedRecipe": "remove-unused-imports", "filesModified": []string{"src/a.ts", "src/b.ts", "src/c.ts"},
		"trustScore": 0.82, "qualityImproved": false, "success": false,
	}
}

// optionalRoute reports whether u is a route the dashboard reads when it is
// there and shows as "not available" when it is not.
func optionalRoute(u string) bool {
	for _, p := range []string{"/api/v1/sync/jobs", "/api/v1/stats/summary"} {
		if strings.HasSuffix(strings.SplitN(u, "?", 2)[0], p) {
			return true
		}
	}
	return false
}

func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed (apt-get install -y chromium); CI needs it for the dashboard test")
	}
	t.Skip("chromium is not installed (apt-get install -y chromium): skipping the dashboard browser test")
	return ""
}

// browser is a headless Chromium driven through chromedp for one test. Every
// console error or warning, exception and browser log entry of level error or
// warning (CSP violations, failed loads) it sees is kept as a problem.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	problems []string
}

// startBrowser starts Chromium (skipping the test without it, failing it
// under CI) with a window of 1280×900; it is closed when the test ends.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	exe := chromiumPath(t)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	ctx, cancel := chromedp.NewContext(alloc)
	ctx, cancelT := context.WithTimeout(ctx, 120*time.Second)
	t.Cleanup(func() { cancelT(); cancel(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx}
	console := chromedp.Console(ctx)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			// Routes that other releases add answer 404 until they are
			// there; the page shows "not available" for them.
			if m.Source == "network" && optionalRoute(m.URL) {
				continue
			}
			switch m.Type {
			case chromedp.ConsoleError, chromedp.ConsoleWarning, chromedp.ConsoleException:
				b.mu.Lock()
				b.problems = append(b.problems, m.String()+" ("+m.Source+" "+m.URL+")")
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// problemsSoFar are the problems the browser reported.
func (b *browser) problemsSoFar() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...)
}

// forgetProblems drops the problems reported so far (an expected one).
func (b *browser) forgetProblems() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = nil
}

// run runs actions, failing the test with what it was doing.
func (b *browser) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v\nbrowser problems: %q", what, err, b.problemsSoFar())
	}
}

// text is the rendered text of the first element sel selects, read in one
// evaluation (a live refresh may replace the nodes between two protocol
// calls); it waits up to 10 s for the element.
func (b *browser) text(sel string) string {
	b.t.Helper()
	js, _ := json.Marshal(sel)
	s, err := chromedp.Run(b.ctx, chromedp.Poll[string](`(document.querySelector(`+string(js)+`) || {}).innerText`, chromedp.WithPollingTimeout(10*time.Second)))
	if err != nil {
		b.t.Fatalf("reading %s: %v\nbrowser problems: %q", sel, err, b.problemsSoFar())
	}
	return strings.TrimSpace(s)
}

// eval evaluates a JavaScript expression in the page.
func (b *browser) eval(expr string) any {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[any](expr))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// waitJS waits up to 20 s for a JavaScript expression to be true.
func (b *browser) waitJS(what, expr string) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		b.t.Fatalf("waiting for %s: %v\npage text: %v\nbrowser problems: %q", what, err, b.eval(`document.body.innerText.slice(0, 2000)`), b.problemsSoFar())
	}
}

// signIn opens the dashboard of serve and signs in with its first key,
// waiting for the live stream.
func (b *browser) signIn(c credentials) {
	b.t.Helper()
	b.run("signing in",
		chromedp.Navigate(c.APIURL+"/dashboard"),
		chromedp.WaitVisible(chromedp.CSS("#signin-form")),
		chromedp.SendKeys(chromedp.CSS("#f-key"), c.APIKey),
		chromedp.SendKeys(chromedp.CSS("#f-org"), c.OrganizationID),
		chromedp.SendKeys(chromedp.CSS("#f-project"), c.ProjectID),
		chromedp.Click(chromedp.CSS("#signin-submit")),
		chromedp.WaitVisible(chromedp.CSS("#app")))
	b.waitJS("the live stream", `document.getElementById('live').dataset.state === 'live'`)
}

// screenshotDir is where the dashboard tests save their screenshots, for CI
// to keep as artifacts: $SCREENSHOT_DIR, else testdata/screenshots (ignored
// by git).
func screenshotDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("SCREENSHOT_DIR")
	if dir == "" {
		dir = filepath.Join("testdata", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// screenshot saves the whole page as name (a .png) in screenshotDir.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(screenshotDir(b.t), name), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// overflowJS lists the elements wider than the viewport, outside those that
// scroll on their own (the tab strip, tables).
const overflowJS = `[...document.querySelectorAll('body *')].filter(e => !e.closest('.tabs, .table-wrap') && e.getBoundingClientRect().right > document.documentElement.clientWidth + 1).map(e => e.tagName + '.' + e.className).join(' ')`

// fits waits up to 5 s for nothing to stick out of the page (charts follow a
// new width a frame later) and reports what still does.
func (b *browser) fits(what string) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](overflowJS+` === ''`, chromedp.WithPollingTimeout(5*time.Second))); err != nil {
		b.t.Errorf("%s: wider than the screen: %v", what, b.eval(overflowJS))
	}
}

// noProblems fails the test with every problem the browser reported.
func (b *browser) noProblems() {
	b.t.Helper()
	if p := b.problemsSoFar(); len(p) > 0 {
		b.t.Errorf("browser reported %d problem(s):\n%s", len(p), strings.Join(p, "\n"))
	}
}

// checkQueueRetry turns on the Retry-button check of TestDashboardInChromium
// (it was off while the queue could lose a retried job).
const checkQueueRetry = true

// TestDashboardInChromium drives the real dashboard in headless Chromium
// against a real serve: sign in, see the Insight severity cards, watch a
// second upload arrive live, switch tabs, and no CSP violation or console
// error on the way.
func TestDashboardInChromium(t *testing.T) {
	b := startBrowser(t)
	s := startServe(t, nil)
	c := s.Cred
	if r := s.Do(http.MethodPost, "/api/v1/sync/insight", insightBody(c.OrganizationID, c.ProjectID, 1)); r.Status != http.StatusAccepted {
		t.Fatalf("upload: %d %s", r.Status, r.Body)
	}
	eventually(t, "the first upload listed", func() bool {
		var l struct{ Total int }
		s.Do(http.MethodGet, "/api/v1/sync/insight", nil).JSON(t, &l)
		return l.Total == 1
	})
	run, text, eval, waitJS := b.run, b.text, b.eval, b.waitJS

	run("opening the dashboard",
		chromedp.Navigate(c.APIURL+"/dashboard"),
		chromedp.WaitVisible(chromedp.CSS("#signin-form")))

	// A wrong key is refused with the server's reason, and the sign-in stays.
	run("signing in with a wrong key",
		chromedp.SendKeys(chromedp.CSS("#f-key"), "wrong-key"),
		chromedp.SendKeys(chromedp.CSS("#f-org"), c.OrganizationID),
		chromedp.SendKeys(chromedp.CSS("#f-project"), c.ProjectID),
		chromedp.Click(chromedp.CSS("#signin-submit")),
		chromedp.WaitVisible(chromedp.CSS("#error")))
	if got := text("#error"); !strings.Contains(got, "unknown or revoked API key") {
		t.Errorf("wrong key error %q", got)
	}
	// The browser logs the refused request (401) itself: expected here.
	run("letting the browser log the refusal", chromedp.Sleep(300*time.Millisecond))
	b.forgetProblems()

	eval(`document.getElementById('f-key').value = ''`)
	run("signing in",
		chromedp.SendKeys(chromedp.CSS("#f-key"), c.APIKey),
		chromedp.Click(chromedp.CSS("#signin-submit")),
		chromedp.WaitVisible(chromedp.CSS("#app")))
	waitJS("the live stream", `document.getElementById('live').dataset.state === 'live'`)
	if stored, _ := eval(`sessionStorage.getItem('odavl.dashboard') || ''`).(string); !strings.Contains(stored, c.APIKey) {
		t.Errorf("the session is not kept in sessionStorage: %q", stored)
	}
	if local := eval(`localStorage.length`); local != float64(0) {
		t.Errorf("%d items in localStorage; the key must stay in the tab's session", local)
	}

	// Statistics cards render: figures, or "not available" while the jobs
	// API is missing, never an error.
	waitJS("the statistics cards", `document.querySelectorAll('#stats [data-stat]').length === 5`)
	if got := text("#stats"); strings.Contains(got, "error") {
		t.Errorf("statistics cards show an error: %q", got)
	}

	run("opening the Insight tab", chromedp.Click(chromedp.CSS("#tab-insight")))
	waitJS("the Insight result", `document.querySelectorAll('[data-list=insight] article').length === 1`)
	for sev, want := range map[string]string{"critical": "1", "high": "1", "medium": "1", "low": "0"} {
		if got := text(`[data-list=insight] article [data-severity=` + sev + `] .value`); got != want {
			t.Errorf("%s card shows %q, want %q", sev, got, want)
		}
	}
	if got := text(`[data-list=insight] article .metrics`); !strings.Contains(got, "Files analyzed: 42") || !strings.Contains(got, "Detectors: 2") {
		t.Errorf("insight metrics %q", got)
	}

	// A second upload appears without a reload, pushed by the event stream.
	eval(`window.__notReloaded = true`)
	second := insightBody(c.OrganizationID, c.ProjectID, 2)
	second["issuesBySeverity"] = map[string]int{"critical": 2, "high": 2, "medium": 0, "low": 1}
	second["totalIssues"] = 5
	second["issues"] = []map[string]any{
		{"detector": "eslint", "severity": "critical", "message": "eval of user input", "file": "src/x.ts", "line": 1, "column": 1},
		{"detector": "eslint", "severity": "critical", "message": "command injection", "file": "src/x.ts", "line": 5, "column": 1},
		{"detector": "eslint", "severity": "high", "message": "no-eval", "file": "src/x.ts", "line": 1, "column": 1},
		{"detector": "eslint", "severity": "high", "message": "no-implied-eval", "file": "src/x.ts", "line": 2, "column": 1},
		{"detector": "typescript", "severity": "low", "message": "unused", "file": "src/y.ts", "line": 9, "column": 4},
	}
	if r := s.Do(http.MethodPost, "/api/v1/sync/insight", second); r.Status != http.StatusAccepted {
		t.Fatalf("second upload: %d %s", r.Status, r.Body)
	}
	waitJS("the second upload to appear live", `document.querySelectorAll('[data-list=insight] article').length === 2`)
	if eval(`window.__notReloaded === true && Number(document.body.dataset.events) > 0`) != true {
		t.Error("the page reloaded (or received no event) to show the second upload")
	}
	if got := text(`[data-list=insight] article:first-child [data-severity=high] .value`); got != "2" {
		t.Errorf("newest upload's high card %q, want 2", got)
	}
	// Its critical issues raise the alert banner, pushed by the stream too.
	waitJS("the critical alert banner", `!document.getElementById('banner').hidden`)
	if got := text("#banner"); !strings.Contains(got, "2 critical issues") {
		t.Errorf("alert banner %q", got)
	}

	// Autopilot and Guardian uploads, then their tabs.
	if r := s.Do(http.MethodPost, "/api/v1/sync/autopilot", dashAutopilotBody(c.OrganizationID, c.ProjectID, "run-42")); r.Status != http.StatusAccepted {
		t.Fatalf("autopilot upload: %d %s", r.Status, r.Body)
	}
	if r := s.Do(http.MethodPost, "/api/v1/sync/guardian", dashGuardianBody(c.OrganizationID, c.ProjectID, "tr-7")); r.Status != http.StatusAccepted {
		t.Fatalf("guardian upload: %d %s", r.Status, r.Body)
	}
	eventually(t, "the guardian run listed", func() bool {
		var l struct{ Total int }
		s.Do(http.MethodGet, "/api/v1/sync/guardian", nil).JSON(t, &l)
		return l.Total == 1
	})
	eventually(t, "the autopilot run listed", func() bool {
		var l struct{ Total int }
		s.Do(http.MethodGet, "/api/v1/sync/autopilot", nil).JSON(t, &l)
		return l.Total == 1
	})

	run("opening the Autopilot tab", chromedp.Click(chromedp.CSS("#tab-autopilot")))
	waitJS("the Autopilot cycle", `document.querySelectorAll('[data-list=autopilot] article [data-phase]').length === 5`)
	for phase, want := range map[string]string{"observe": "completed", "decide": "completed", "act": "completed", "verify": "failed", "learn": "skipped"} {
		if got := text(`[data-list=autopilot] [data-phase=` + phase + `] .badge`); !strings.EqualFold(got, want) {
			t.Errorf("%s phase shows %q, want %q", phase, got, want)
		}
	}
	if got := text(`[data-list=autopilot] article .metrics`); !strings.Contains(got, "Trust score: 82%") || !strings.Contains(got, "Files modified: 3") {
		t.Errorf("autopilot metrics %q", got)
	}
	if got := text(`[data-list=autopilot] article .item-head`); !strings.Contains(got, "run-42") || !strings.Contains(strings.ToLower(got), "failed") {
		t.Errorf("autopilot head %q", got)
	}

	run("opening the Guardian tab", chromedp.Click(chromedp.CSS("#tab-guardian")))
	waitJS("the Guardian run", `document.querySelectorAll('[data-list=guardian] article').length === 1`)
	if got := text(`[data-list=guardian] [data-test=accessibility] .value`); got != "93" {
		t.Errorf("accessibility score %q, want 93", got)
	}
	if got := text(`[data-list=guardian] [data-test=performance] .value`); got != "1.84 s" {
		t.Errorf("load time %q, want 1.84 s", got)
	}
	if got := text(`[data-list=guardian] [data-test=security] .value`); got != "1" {
		t.Errorf("vulnerabilities %q, want 1", got)
	}
	if got := strings.ToLower(text(`[data-list=guardian] article .item-head`)); !strings.Contains(got, "staging") || !strings.Contains(got, "passed") {
		t.Errorf("guardian head %q", got)
	}

	// The four uploads are four completed jobs, in the table and the cards.
	run("opening the Jobs tab", chromedp.Click(chromedp.CSS("#tab-jobs")))
	waitJS("four completed jobs", `document.querySelectorAll('#panel-jobs tbody tr').length === 4 &&
		[...document.querySelectorAll('#panel-jobs tbody .badge')].every(b => b.dataset.status === 'COMPLETED' && b.textContent === 'Completed')`)
	if got := text(`#panel-jobs tbody`); !strings.Contains(got, "Guardian test") || !strings.Contains(got, "Autopilot cycle") || !strings.Contains(got, "100%") {
		t.Errorf("jobs table %q", got)
	}
	waitJS("the statistics cards to count them", `document.querySelector('[data-stat=total] .value').textContent === '4' &&
		document.querySelector('[data-stat=completed] .value').textContent === '4' &&
		document.querySelector('[data-stat=failed] .value').textContent === '0'`)

	// A job cancelled before it ran shows a Retry button; the button runs
	// it (at its scheduled time, kept by the retry: 3 s after submission),
	// and the page shows it completed. (It was off while reads of a job
	// could miss it mid-move and a cancelled run could wipe out its retry's
	// record: services/jobs/internal/queue/race_test.go.)
	if checkQueueRetry {
		r := s.Do(http.MethodPost, "/api/v1/jobs", map[string]any{
			"type": "EMAIL_SEND", "runAt": time.Now().Add(3 * time.Second).UTC().Format(time.RFC3339),
			"payload": map[string]any{"to": []string{"dev@example.com"}, "subject": "hello", "text": "from the dashboard test"},
		})
		if r.Status != http.StatusAccepted && r.Status != http.StatusCreated {
			t.Fatalf("submitting a job: %d %s", r.Status, r.Body)
		}
		var job struct{ ID string }
		r.JSON(t, &job)
		if r := s.Do(http.MethodPost, "/api/v1/sync/jobs", map[string]any{"action": "cancel", "jobId": job.ID}); r.Status != http.StatusOK {
			t.Fatalf("cancelling the job: %d %s", r.Status, r.Body)
		}
		retrySel := `[data-retry="` + job.ID + `"]`
		waitJS("the Retry button of the cancelled job", `!!document.querySelector('`+retrySel+`')`)
		run("retrying from the page", chromedp.Click(chromedp.CSS(retrySel)))
		if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](`(() => { const tr = document.querySelector('[data-job="`+job.ID+`"]');
			return !!tr && tr.querySelector('.badge').dataset.status === 'COMPLETED' })()`, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			r := s.Do(http.MethodGet, "/api/v1/sync/jobs/"+job.ID, nil)
			row := eval(`(document.querySelector('[data-job="` + job.ID + `"]') || {}).innerText`)
			t.Fatalf("the retried job does not show completed: %v\npage row: %v\nerror: %v\nAPI: %d %s", err, row, eval(`document.getElementById('error').innerText`), r.Status, r.Body)
		}
		if shown := eval(`document.getElementById('error').hidden`); shown != true {
			t.Errorf("the retry showed an error: %q", text("#error"))
		}
	}

	// A screenshot of each tab (dashboard-<tab>.png in screenshotDir), for
	// a person to look at.
	tabs := []string{"trends", "jobs", "insight", "autopilot", "guardian"}
	shown := func(tab string) string {
		return `!document.getElementById('panel-` + tab + `').hidden && !document.querySelector('#panel-` + tab + ` .spinner') &&
			!!document.querySelector('#panel-` + tab + ` .results > *')`
	}
	for _, tab := range tabs {
		run("opening the "+tab+" tab", chromedp.Click(chromedp.CSS("#tab-"+tab)))
		waitJS("the "+tab+" tab", shown(tab))
		b.screenshot("dashboard-" + tab + ".png")
	}

	// On a phone-sized screen nothing sticks out of the page but the tab
	// strip and the tables, which scroll.
	run("narrowing the viewport", chromedp.EmulateViewport(390, 844))
	waitJS("the page to fit 390 px", `window.innerWidth === 390`)
	for _, tab := range tabs {
		run("opening the "+tab+" tab", chromedp.Click(chromedp.CSS("#tab-"+tab)))
		waitJS("the "+tab+" tab", shown(tab))
		b.fits("the " + tab + " tab at 390 px")
	}
	b.screenshot("dashboard-phone.png")
	run("restoring the viewport", chromedp.ResetViewport())

	b.noProblems()

	// The check above can fail: a violation of the policy is caught.
	eval(`try { document.body.insertAdjacentHTML('beforeend', '<b>x</b>') } catch (e) { console.error(String(e)) }; true`)
	eventually(t, "the deliberate violation to be reported", func() bool {
		for _, p := range b.problemsSoFar() {
			if strings.Contains(p, "TrustedHTML") {
				return true
			}
		}
		return false
	})
}
