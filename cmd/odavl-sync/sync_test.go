package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/rpc"
)

func autopilotBody(org, project, runID string, success bool) map[string]any {
	status := "completed"
	if !success {
		status = "failed"
	}
	return map[string]any{
		"runId": runID, "organizationId": org, "projectId": project,
		"timestamp": bodyTimestamp,
		"phases": map[string]any{
			"observe": map[string]any{"status": "completed", "duration": 120, "metrics": map[string]any{"filesScanned": 40}},
			"decide":  map[string]any{"status": "completed", "duration": 30.5},
			"act":     map[string]any{"status": "completed", "duration": 800, "metrics": map[string]any{"edits": 3}},
			"verify":  map[string]any{"status": status, "duration": 400},
			"learn":   map[string]any{"status": "skipped", "duration": 0},
		},
		"selectedRecipe": "remove-unused-imports", "filesModified": []string{"src/a.ts", "src/b.ts"},
		"trustScore": 0.82, "qualityImproved": success, "success": success, "totalDuration": 1400,
	}
}

func guardianBody(org, project, testRunID, env string, passed bool) map[string]any {
	return map[string]any{
		"testRunId": testRunID, "organizationId": org, "projectId": project,
		"timestamp": bodyTimestamp,
		"url":       "https://example.com/checkout", "environment": env,
		"tests": map[string]any{
			"accessibility": map[string]any{"score": 91.5, "violations": 2, "passes": 40},
			"performance":   map[string]any{"loadTime": 1800, "ttfb": 120, "fcp": 600, "lcp": 1400},
			"security":      map[string]any{"vulnerabilities": 1, "warnings": 3},
		},
		"screenshots": []string{"https://cdn.example.com/shots/1.png"},
		"passed":      passed,
	}
}

type receiptBody struct {
	EventID, JobID, UploadID, Status, StatusURL string
	ReceivedAt                                  time.Time
	Replay                                      bool
}

type problemBody struct {
	Type, Title, Detail string
	Status              int
	Errors              []struct{ Field, Message string }
}

func (p problemBody) fields() []string {
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Field)
	}
	sort.Strings(out)
	return out
}

type listBody struct {
	Items         []map[string]any
	Total         int
	Limit, Offset int
	Summary       any
}

// post uploads body for product p and requires a 202, returning the receipt.
func (s *served) post(p events.Product, body any, hdr ...string) receiptBody {
	s.t.Helper()
	r := s.Do(http.MethodPost, "/api/v1/sync/"+string(p), body, hdr...)
	if r.Status != http.StatusAccepted {
		s.t.Fatalf("POST %s: %d %s", p, r.Status, r.Body)
	}
	var rc receiptBody
	r.JSON(s.t, &rc)
	return rc
}

// stored waits until the receipt's job says stored and returns the result URL.
func (s *served) stored(rc receiptBody) string {
	s.t.Helper()
	var st struct{ State, ResultURL, Reason string }
	eventually(s.t, "upload "+rc.EventID+" stored", func() bool {
		r := s.Do(http.MethodGet, rc.StatusURL, nil)
		if r.Status != http.StatusOK {
			s.t.Fatalf("GET %s: %d %s", rc.StatusURL, r.Status, r.Body)
		}
		r.JSON(s.t, &st)
		if st.State == "failed" {
			s.t.Fatalf("upload failed: %s", st.Reason)
		}
		return st.State == "stored"
	})
	return st.ResultURL
}

func (s *served) list(path string) listBody {
	s.t.Helper()
	r := s.Do(http.MethodGet, path, nil)
	if r.Status != http.StatusOK {
		s.t.Fatalf("GET %s: %d %s", path, r.Status, r.Body)
	}
	var l listBody
	r.JSON(s.t, &l)
	return l
}

// natsConn connects to the NATS server serve started (its URL is in the welcome).
func (s *served) natsConn() *nats.Conn {
	s.t.Helper()
	m := regexp.MustCompile(`NATS: (nats://\S+)`).FindStringSubmatch(s.out.String())
	if m == nil {
		s.t.Fatalf("no NATS url in the welcome:\n%s", s.out.String())
	}
	nc, err := nats.Connect(m[1])
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(nc.Close)
	return nc
}

// roundTrip checks that what was uploaded reads back field for field: each
// field of the upload is in the stored result with the same JSON value.
func roundTrip(t *testing.T, sent map[string]any, got map[string]any) {
	t.Helper()
	want, _ := json.Marshal(sent)
	var w map[string]any
	_ = json.Unmarshal(want, &w)
	for k, v := range w {
		if !jsonEqual(v, got[k]) {
			t.Errorf("field %s read back as %v, sent %v", k, got[k], v)
		}
	}
	for _, k := range []string{"id", "receivedAt", "processedAt", "jobId"} {
		if got[k] == nil || got[k] == "" {
			t.Errorf("result has no %s: %v", k, got)
		}
	}
}

func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func TestSyncRoundTripEachProduct(t *testing.T) {
	s := startServe(t, nil)
	c := s.Cred
	k := s.contract()
	cases := []struct {
		p    events.Product
		body map[string]any
	}{
		{events.Insight, insightBody(c.OrganizationID, c.ProjectID, 1)},
		{events.Autopilot, autopilotBody(c.OrganizationID, c.ProjectID, "run-1", true)},
		{events.Guardian, guardianBody(c.OrganizationID, c.ProjectID, "tr-1", "staging", true)},
	}
	for _, tc := range cases {
		t.Run(string(tc.p), func(t *testing.T) {
			pr := k.do(t, s, http.MethodPost, "/api/v1/sync/"+string(tc.p), tc.body)
			var rc receiptBody
			pr.JSON(t, &rc)
			if pr.Status != http.StatusAccepted || rc.EventID == "" || rc.JobID == "" || rc.StatusURL != "/api/v1/sync/jobs/"+rc.JobID || rc.Replay {
				t.Fatalf("receipt %+v", rc)
			}
			resultURL := s.stored(rc)
			if resultURL != "/api/v1/sync/"+string(tc.p)+"/"+rc.EventID {
				t.Errorf("resultUrl %q", resultURL)
			}
			k.do(t, s, http.MethodGet, rc.StatusURL, nil)
			r := k.do(t, s, http.MethodGet, resultURL, nil)
			if r.Status != http.StatusOK {
				t.Fatalf("GET %s: %d %s", resultURL, r.Status, r.Body)
			}
			var got map[string]any
			r.JSON(t, &got)
			roundTrip(t, tc.body, got)
			k.do(t, s, http.MethodGet, "/api/v1/sync/"+string(tc.p), nil)
			l := s.list("/api/v1/sync/" + string(tc.p))
			if l.Total != 1 || len(l.Items) != 1 {
				t.Fatalf("list: %+v", l)
			}
			roundTrip(t, tc.body, l.Items[0])
			if r := k.do(t, s, http.MethodGet, "/api/v1/sync/"+string(tc.p)+"/up_nope", nil); r.Status != http.StatusNotFound {
				t.Errorf("unknown id: %d %s", r.Status, r.Body)
			}
		})
	}
	// Another project's key sees none of it.
	if r := k.do(t, s, http.MethodGet, "/api/v1/sync/jobs/up_unknown", nil); r.Status != http.StatusNotFound {
		t.Errorf("unknown job: %d %s", r.Status, r.Body)
	}
}

// An Insight upload with critical issues raises one alert, on the alert
// subject and at /api/v1/alerts, naming the critical issues — also when the
// upload is retried.
func TestSyncCriticalAlert(t *testing.T) {
	s := startServe(t, nil)
	c := s.Cred
	body := insightBody(c.OrganizationID, c.ProjectID, 7)
	body["totalIssues"] = 5
	body["issuesBySeverity"] = map[string]int{"critical": 2, "high": 1, "medium": 1, "low": 1}
	body["issues"] = append(body["issues"].([]map[string]any),
		map[string]any{"detector": "security", "severity": "critical", "message": "hard-coded secret", "file": "src/k.ts", "line": 9, "column": 4})
	rc := s.post(events.Insight, body)
	s.stored(rc)
	// A clean upload raises nothing.
	clean := insightBody(c.OrganizationID, c.ProjectID, 8)
	clean["totalIssues"] = 1
	clean["issuesBySeverity"] = map[string]int{"critical": 0, "high": 1, "medium": 0, "low": 0}
	clean["issues"] = []map[string]any{{"detector": "eslint", "severity": "high", "message": "x", "file": "a.ts", "line": 1, "column": 1}}
	s.stored(s.post(events.Insight, clean))
	if again := s.post(events.Insight, body); !again.Replay {
		t.Errorf("retry not a replay: %+v", again)
	}

	var al struct {
		Items []struct {
			ID, UploadID string
			Critical     int
			Messages     []string
		}
		Total int
	}
	r := s.contract().do(t, s, http.MethodGet, "/api/v1/alerts", nil)
	r.JSON(t, &al)
	if al.Total != 1 || len(al.Items) != 1 {
		t.Fatalf("alerts: %s", r.Body)
	}
	a := al.Items[0]
	if a.UploadID != rc.EventID || a.Critical != 2 || len(a.Messages) != 2 {
		t.Fatalf("alert %+v, want upload %s with 2 critical issues named", a, rc.EventID)
	}
	joined := strings.Join(a.Messages, "\n")
	for _, want := range []string{"eval is evil #7", "src/a.ts:3:7", "hard-coded secret", "src/k.ts:9:4"} {
		if !strings.Contains(joined, want) {
			t.Errorf("alert messages %q lack %q", a.Messages, want)
		}
	}

	js, err := jetstream.New(s.natsConn())
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(context.Background(), events.StreamSync)
	if err != nil {
		t.Fatal(err)
	}
	subj := events.CriticalAlertSubject(c.OrganizationID, c.ProjectID)
	info, err := st.Info(context.Background(), jetstream.WithSubjectFilter(subj))
	if err != nil {
		t.Fatal(err)
	}
	if n := info.State.Subjects[subj]; n != 1 {
		t.Errorf("%d events on %s, want 1", n, subj)
	}
	msg, err := st.GetLastMsgForSubject(context.Background(), subj)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := events.Decode(msg.Data)
	if err != nil {
		t.Fatal(err)
	}
	var ca events.CriticalAlert
	if err := ev.DataAs(&ca); err != nil || ev.Type != events.TypeCriticalAlert || ca.Critical != 2 || len(ca.Issues) != 2 {
		t.Errorf("alert event %s %+v %v", ev.Type, ca, err)
	}
}

// Every class of bad input gets the right status and names the bad fields.
func TestSyncBadInput(t *testing.T) {
	s := startServe(t, nil)
	c := s.Cred
	k := s.contract()
	type mut func(m map[string]any)
	del := func(path ...string) mut {
		return func(m map[string]any) { delete(walk(m, path[:len(path)-1]), path[len(path)-1]) }
	}
	set := func(v any, path ...string) mut {
		return func(m map[string]any) { walk(m, path[:len(path)-1])[path[len(path)-1]] = v }
	}
	far := time.Now().Add(72 * time.Hour).UTC().Format(time.RFC3339)
	cases := []struct {
		name   string
		p      events.Product
		muts   []mut
		fields []string
	}{
		{"insight missing", events.Insight, []mut{del("detectors"), del("issuesBySeverity", "low")}, []string{"detectors", "issuesBySeverity.low"}},
		{"insight wrong types", events.Insight, []mut{set("3", "totalIssues"), set("x", "issues")}, []string{"issues", "totalIssues"}},
		{"insight issue fields", events.Insight, []mut{func(m map[string]any) {
			is := m["issues"].([]any)
			is[1].(map[string]any)["severity"] = "blocker"
			is[2].(map[string]any)["line"] = -1
			is[0].(map[string]any)["message"] = ""
		}}, []string{"issues[0].message", "issues[1].severity", "issues[2].line"}},
		{"insight inconsistent", events.Insight, []mut{set(9, "totalIssues")}, []string{"totalIssues"}},
		{"insight more listed than counted", events.Insight, []mut{set(map[string]int{"critical": 0, "high": 1, "medium": 1, "low": 1}, "issuesBySeverity")}, []string{"issuesBySeverity.critical"}},
		{"insight future and unknown", events.Insight, []mut{set(far, "timestamp"), set(1, "extra")}, []string{"extra", "timestamp"}},
		{"insight other tenant", events.Insight, []mut{set("someone-else", "organizationId"), set("bad project!", "projectId")}, []string{"organizationId", "projectId"}},
		{"insight metrics", events.Insight, []mut{set(-5, "metrics", "duration"), set(1.5, "metrics", "filesAnalyzed")}, []string{"metrics.duration", "metrics.filesAnalyzed"}},
		{"autopilot missing", events.Autopilot, []mut{del("runId"), del("phases", "learn")}, []string{"phases.learn", "runId"}},
		{"autopilot ranges", events.Autopilot, []mut{set(1.5, "trustScore"), set(-1, "phases", "act", "duration"), set("done", "phases", "observe", "status")}, []string{"phases.act.duration", "phases.observe.status", "trustScore"}},
		{"autopilot wrong types", events.Autopilot, []mut{set("yes", "success"), set("a.ts", "filesModified")}, []string{"filesModified", "success"}},
		{"autopilot inconsistent", events.Autopilot, []mut{set("failed", "phases", "verify", "status"), set(10, "totalDuration")}, []string{"success", "totalDuration"}},
		{"guardian missing", events.Guardian, []mut{del("testRunId"), del("tests", "performance", "lcp")}, []string{"testRunId", "tests.performance.lcp"}},
		{"guardian ranges", events.Guardian, []mut{set(101, "tests", "accessibility", "score"), set(-2, "tests", "security", "vulnerabilities"), set("qa", "environment")}, []string{"environment", "tests.accessibility.score", "tests.security.vulnerabilities"}},
		{"guardian wrong types", events.Guardian, []mut{set(1, "passed"), set("ftp://x", "url"), set([]any{7}, "screenshots")}, []string{"passed", "screenshots[0]", "url"}},
		{"guardian inconsistent", events.Guardian, []mut{set(100, "tests", "performance", "lcp")}, []string{"tests.performance.lcp"}},
		{"guardian long strings", events.Guardian, []mut{set(strings.Repeat("x", 200), "testRunId"), set("https://"+strings.Repeat("a", 2100), "url")}, []string{"testRunId", "url"}},
	}
	bodyOf := func(p events.Product) map[string]any {
		b := insightBody(c.OrganizationID, c.ProjectID, 1)
		switch p {
		case events.Autopilot:
			b = autopilotBody(c.OrganizationID, c.ProjectID, "run-bad", true)
		case events.Guardian:
			b = guardianBody(c.OrganizationID, c.ProjectID, "tr-bad", "production", true)
		}
		return plain(b)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := bodyOf(tc.p)
			for _, m := range tc.muts {
				m(b)
			}
			r := k.do(t, s, http.MethodPost, "/api/v1/sync/"+string(tc.p), b)
			if r.Status != http.StatusBadRequest || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/problem+json") {
				t.Fatalf("%d %s %s", r.Status, r.Header.Get("Content-Type"), r.Body)
			}
			var pb problemBody
			r.JSON(t, &pb)
			if got := pb.fields(); strings.Join(got, ",") != strings.Join(tc.fields, ",") {
				t.Errorf("fields %v, want %v (%s)", got, tc.fields, r.Body)
			}
		})
	}
	for _, p := range events.Products {
		t.Run(string(p)+" transport", func(t *testing.T) {
			path := "/api/v1/sync/" + string(p)
			if r := s.Do(http.MethodPost, path, "{", "Content-Type", "application/json"); r.Status != http.StatusBadRequest {
				t.Errorf("broken JSON: %d %s", r.Status, r.Body)
			}
			if r := s.Do(http.MethodPost, path, "[]"); r.Status != http.StatusBadRequest {
				t.Errorf("array body: %d %s", r.Status, r.Body)
			}
			r := k.do(t, s, http.MethodPost, path, "a=b", "Content-Type", "text/plain")
			if r.Status != http.StatusUnsupportedMediaType || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/problem+json") {
				t.Errorf("text/plain: %d %s", r.Status, r.Body)
			}
			big := `{"detectors":["` + strings.Repeat("x", 5<<20) + `"]}`
			if r := k.do(t, s, http.MethodPost, path, big); r.Status != http.StatusRequestEntityTooLarge {
				t.Errorf("5 MiB body: %d %.200s", r.Status, r.Body)
			}
		})
	}
	// Nothing bad was stored.
	for _, p := range events.Products {
		if l := s.list("/api/v1/sync/" + string(p)); l.Total != 0 {
			t.Errorf("%s: %d stored after bad uploads", p, l.Total)
		}
	}
}

// plain turns typed maps and slices into map[string]any and []any.
func plain(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

// walk returns the nested object at path.
func walk(m map[string]any, path []string) map[string]any {
	for _, k := range path {
		m = m[k].(map[string]any)
	}
	return m
}

func TestSyncReplayAndConflict(t *testing.T) {
	s := startServe(t, nil)
	c := s.Cred
	k := s.contract()
	org, prj := c.OrganizationID, c.ProjectID
	ap := autopilotBody(org, prj, "run-r", true) // retried after the restart too
	cases := []struct {
		name       string
		p          events.Product
		first      map[string]any
		hdr        []string
		changed    map[string]any // same key, different payload
		changedHdr []string
	}{
		{"autopilot by runId", events.Autopilot, ap, nil,
			autopilotBody(org, prj, "run-r", false), nil},
		{"guardian by testRunId", events.Guardian, guardianBody(org, prj, "tr-r", "staging", true), nil,
			guardianBody(org, prj, "tr-r", "staging", false), nil},
		{"insight by header", events.Insight, insightBody(org, prj, 1), []string{"Idempotency-Key", "ci-build-42"},
			insightBody(org, prj, 2), []string{"Idempotency-Key", "ci-build-42"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			first := s.post(tc.p, tc.first, tc.hdr...)
			s.stored(first)
			r := k.do(t, s, http.MethodPost, "/api/v1/sync/"+string(tc.p), tc.first, tc.hdr...)
			var again receiptBody
			r.JSON(t, &again)
			if r.Status != http.StatusAccepted || !again.Replay || r.Header.Get("Idempotent-Replayed") != "true" {
				t.Errorf("retry: %d %s %v", r.Status, r.Body, r.Header)
			}
			if again.EventID != first.EventID || again.JobID != first.JobID || !again.ReceivedAt.Equal(first.ReceivedAt) {
				t.Errorf("retry receipt %+v, want the first %+v", again, first)
			}
			r = k.do(t, s, http.MethodPost, "/api/v1/sync/"+string(tc.p), tc.changed, tc.changedHdr...)
			if r.Status != http.StatusConflict || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/problem+json") {
				t.Errorf("same key, other payload: %d %s", r.Status, r.Body)
			}
			if l := s.list("/api/v1/sync/" + string(tc.p)); l.Total != 1 {
				t.Errorf("%d stored, want 1", l.Total)
			}
		})
	}
	t.Run("insight derived key", func(t *testing.T) {
		b := insightBody(org, prj, 3)
		first := s.post(events.Insight, b)
		// The same payload with its keys in another order and other spacing is the same upload.
		j, _ := json.MarshalIndent(b, "", "   ")
		again := s.post(events.Insight, j)
		if !again.Replay || again.EventID != first.EventID {
			t.Errorf("same payload again: %+v, want replay of %+v", again, first)
		}
		other := s.post(events.Insight, insightBody(org, prj, 4))
		if other.Replay || other.EventID == first.EventID {
			t.Errorf("another payload without a key: %+v", other)
		}
	})
	t.Run("bad key", func(t *testing.T) {
		r := s.Do(http.MethodPost, "/api/v1/sync/insight", insightBody(org, prj, 5), "Idempotency-Key", strings.Repeat("k", 300))
		var pb problemBody
		r.JSON(t, &pb)
		if r.Status != http.StatusBadRequest || strings.Join(pb.fields(), ",") != "Idempotency-Key" {
			t.Errorf("%d %s", r.Status, r.Body)
		}
	})
	t.Run("survives restart", func(t *testing.T) {
		s2 := s.Restart()
		r := s2.Do(http.MethodPost, "/api/v1/sync/autopilot", ap)
		var rc receiptBody
		r.JSON(t, &rc)
		if r.Status != http.StatusAccepted || !rc.Replay {
			t.Errorf("after restart: %d %s", r.Status, r.Body)
		}
		if r := s2.Do(http.MethodPost, "/api/v1/sync/autopilot", autopilotBody(org, prj, "run-r", false)); r.Status != http.StatusConflict {
			t.Errorf("conflict after restart: %d %s", r.Status, r.Body)
		}
	})
}

// Concurrent uploads with one key store one document.
func TestSyncConcurrentDuplicates(t *testing.T) {
	s := startServe(t, nil)
	c := s.Cred
	bodies := map[events.Product]map[string]any{
		events.Insight:   insightBody(c.OrganizationID, c.ProjectID, 11),
		events.Autopilot: autopilotBody(c.OrganizationID, c.ProjectID, "run-c", true),
		events.Guardian:  guardianBody(c.OrganizationID, c.ProjectID, "tr-c", "production", false),
	}
	const n = 16
	for p, b := range bodies {
		var wg sync.WaitGroup
		rcs := make([]receiptBody, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rcs[i] = s.post(p, b)
			}()
		}
		wg.Wait()
		fresh := 0
		for _, rc := range rcs {
			if rc.EventID != rcs[0].EventID {
				t.Errorf("%s: receipts for two ids %s %s", p, rc.EventID, rcs[0].EventID)
			}
			if !rc.Replay {
				fresh++
			}
		}
		if fresh != 1 {
			t.Errorf("%s: %d first answers, want 1", p, fresh)
		}
		s.stored(rcs[0])
	}
	for p := range bodies {
		if l := s.list("/api/v1/sync/" + string(p)); l.Total != 1 {
			t.Errorf("%s: %d stored, want 1", p, l.Total)
		}
	}
}

func TestSyncListFiltersAndPaging(t *testing.T) {
	s := startServe(t, nil)
	c := s.Cred
	org, prj := c.OrganizationID, c.ProjectID
	var ap []receiptBody
	for i := range 5 {
		ap = append(ap, s.post(events.Autopilot, autopilotBody(org, prj, fmt.Sprintf("run-%d", i), i%2 == 0)))
		time.Sleep(3 * time.Millisecond) // distinct receivedAt
	}
	envs := []string{"development", "staging", "production", "production"}
	var gd []receiptBody
	for i, env := range envs {
		gd = append(gd, s.post(events.Guardian, guardianBody(org, prj, fmt.Sprintf("tr-%d", i), env, i != 2)))
		time.Sleep(3 * time.Millisecond)
	}
	for _, rc := range append(ap, gd...) {
		s.stored(rc)
	}
	ids := func(l listBody) string {
		var out []string
		for _, it := range l.Items {
			out = append(out, it["id"].(string))
		}
		return strings.Join(out, ",")
	}
	join := func(rcs ...receiptBody) string {
		var out []string
		for _, rc := range rcs {
			out = append(out, rc.EventID)
		}
		return strings.Join(out, ",")
	}
	q := func(path string, kv ...string) string {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return path + "?" + v.Encode()
	}
	cases := []struct {
		name, path string
		want       string
		total      int
	}{
		{"newest first", "/api/v1/sync/autopilot", join(ap[4], ap[3], ap[2], ap[1], ap[0]), 5},
		{"page 2", q("/api/v1/sync/autopilot", "limit", "2", "offset", "2"), join(ap[2], ap[1]), 5},
		{"past the end", q("/api/v1/sync/autopilot", "limit", "2", "offset", "10"), "", 5},
		{"success", q("/api/v1/sync/autopilot", "success", "true"), join(ap[4], ap[2], ap[0]), 3},
		{"failed, paged", q("/api/v1/sync/autopilot", "success", "false", "limit", "1"), join(ap[3]), 2},
		{"from", q("/api/v1/sync/autopilot", "from", ap[3].ReceivedAt.Format(time.RFC3339Nano)), join(ap[4], ap[3]), 2},
		{"from-to", q("/api/v1/sync/autopilot", "from", ap[1].ReceivedAt.Format(time.RFC3339Nano), "to", ap[3].ReceivedAt.Format(time.RFC3339Nano)), join(ap[2], ap[1]), 2},
		{"environment", q("/api/v1/sync/guardian", "environment", "production"), join(gd[3], gd[2]), 2},
		{"passed", q("/api/v1/sync/guardian", "passed", "false"), join(gd[2]), 1},
		{"environment and passed", q("/api/v1/sync/guardian", "environment", "production", "passed", "true"), join(gd[3]), 1},
		{"guardian range", q("/api/v1/sync/guardian", "to", gd[1].ReceivedAt.Format(time.RFC3339Nano)), join(gd[0]), 1},
	}
	k := s.contract()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k.do(t, s, http.MethodGet, tc.path, nil)
			l := s.list(tc.path)
			if ids(l) != tc.want || l.Total != tc.total {
				t.Errorf("got %s (total %d), want %s (total %d)", ids(l), l.Total, tc.want, tc.total)
			}
		})
	}
	bad := []struct {
		path   string
		fields string
	}{
		{q("/api/v1/sync/autopilot", "limit", "0", "offset", "-1"), "limit,offset"},
		{q("/api/v1/sync/autopilot", "limit", "101", "success", "maybe"), "limit,success"},
		{q("/api/v1/sync/guardian", "environment", "qa", "passed", "2", "from", "yesterday"), "environment,from,passed"},
		{q("/api/v1/sync/insight", "to", "2026-13-01"), "to"},
		{q("/api/v1/alerts", "limit", "x"), "limit"},
	}
	for _, tc := range bad {
		r := k.do(t, s, http.MethodGet, tc.path, nil)
		var pb problemBody
		r.JSON(t, &pb)
		if r.Status != http.StatusBadRequest || strings.Join(pb.fields(), ",") != tc.fields {
			t.Errorf("GET %s: %d %s, want 400 naming %s", tc.path, r.Status, r.Body, tc.fields)
		}
	}
}

// Guardian screenshots are http(s) URLs or ids of files uploaded to the same
// project; other ids are refused, naming the screenshot.
func TestSyncGuardianScreenshotFiles(t *testing.T) {
	s := startServe(t, nil)
	c := s.Cred
	k := s.contract()
	png := append([]byte("\x89PNG\r\n\x1a\n"), random(2048)...)
	shot := func(key, project string) string {
		u := upload(t, s, key, c.OrganizationID, project, map[string]any{"filename": "checkout.png", "contentType": "image/png", "size": len(png)}, png)
		return u.FileID
	}
	mine := shot(c.APIKey, c.ProjectID)
	other := shot(newKey(t, s, c.OrganizationID, "other-project"), "other-project")
	r := s.Do(http.MethodPost, "/api/v1/storage/upload-url", map[string]any{"filename": "later.png", "contentType": "image/png", "size": 10})
	var pending rpc.UploadURLResponse
	r.JSON(t, &pending)

	ok := guardianBody(c.OrganizationID, c.ProjectID, "tr-shots", "production", true)
	ok["screenshots"] = []string{"https://cdn.example.com/a.png", mine}
	rc := s.post(events.Guardian, ok)
	s.stored(rc)
	var got map[string]any
	k.do(t, s, http.MethodGet, "/api/v1/sync/guardian/"+rc.EventID, nil).JSON(t, &got)
	if !jsonEqual(got["screenshots"], ok["screenshots"]) {
		t.Errorf("screenshots read back %v", got["screenshots"])
	}

	bad := guardianBody(c.OrganizationID, c.ProjectID, "tr-shots-bad", "production", true)
	bad["screenshots"] = []string{mine, other, pending.FileID, "file_doesnotexist", "not a url or id"}
	r = k.do(t, s, http.MethodPost, "/api/v1/sync/guardian", bad)
	var pb problemBody
	r.JSON(t, &pb)
	if r.Status != http.StatusBadRequest || strings.Join(pb.fields(), ",") != "screenshots[1],screenshots[2],screenshots[3],screenshots[4]" {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	for _, e := range pb.Errors {
		if e.Field == "screenshots[2]" && !strings.Contains(e.Message, "not uploaded") {
			t.Errorf("pending file: %q", e.Message)
		}
	}
}

// An upload that cannot be processed says so at its status URL, with the reason.
func TestSyncReceiptFailedWithReason(t *testing.T) {
	s := startServe(t, nil)
	c := s.Cred
	js, err := jetstream.New(s.natsConn())
	if err != nil {
		t.Fatal(err)
	}
	// A received event another producer got wrong (the gateway never sends
	// this: its payload is not an Insight upload).
	const id = "up_00000000000000000000000000000bad"
	ev, err := events.New(id, "/test/producer", events.ReceivedType(events.Insight), time.Now(), c.OrganizationID, c.ProjectID, events.Received{
		UploadID: id, OrganizationID: c.OrganizationID, ProjectID: c.ProjectID, Product: events.Insight,
		IdempotencyKey: "key:bad", ReceivedAt: time.Now().UTC(), Payload: json.RawMessage(`{"totalIssues":"many"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bus.Publish(context.Background(), js, events.ReceivedSubject(c.OrganizationID, c.ProjectID, events.Insight, id), ev); err != nil {
		t.Fatal(err)
	}
	k := s.contract()
	var st struct{ State, Status, Reason string }
	eventually(t, "the job failed", func() bool {
		r := s.Do(http.MethodGet, "/api/v1/sync/jobs/"+id, nil)
		if r.Status == http.StatusNotFound {
			return false
		}
		k.check(t, http.MethodGet, "/api/v1/sync/jobs/"+id, r)
		r.JSON(t, &st)
		return st.State == "failed"
	})
	if st.Status != "FAILED" || !strings.Contains(st.Reason, "decoding insight payload") {
		t.Errorf("state %+v, want failed with the decoding error as reason", st)
	}
	if l := s.list("/api/v1/sync/insight"); l.Total != 0 {
		t.Errorf("%d results stored from a failed upload", l.Total)
	}
}
