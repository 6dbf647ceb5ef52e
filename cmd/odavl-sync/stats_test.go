package main

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/odavl/sync/libs/events"
)

// statsSummary is the part of GET /api/v1/stats/summary the test checks.
type statsSummary struct {
	Insight struct {
		Analyses, TotalIssues, WithCritical int64
		IssuesBySeverity                    map[string]int64
	}
	Autopilot struct {
		Total, Successful, Failed int64
		SuccessRate               *float64
	}
	Guardian struct {
		Total, Passed, Failed     int64
		PassRate                  *float64
		AverageAccessibilityScore *float64
		TotalVulnerabilities      int64
	}
}

func f64(v float64) *float64 { return &v }

// TestStatsEndToEnd uploads Insight, Autopilot and Guardian results through
// the API — with replays of the same upload and a conflicting one — and
// finds the list summaries and /api/v1/stats/summary equal to figures
// computed by hand; `odavl-sync stats rebuild` gives the same figures, and
// so does a restart.
func TestStatsEndToEnd(t *testing.T) {
	s := startServe(t, nil)
	k := s.contract() // every stats answer is checked against the served OpenAPI document
	c := s.Cred
	org, project := c.OrganizationID, c.ProjectID
	var receipts []receiptBody
	// Insight: two analyses of 3 issues each (1 critical, 1 high, 1 medium); the first sent twice.
	receipts = append(receipts, s.post(events.Insight, insightBody(org, project, 1)), s.post(events.Insight, insightBody(org, project, 2)))
	if again := s.post(events.Insight, insightBody(org, project, 1)); !again.Replay {
		t.Fatalf("the same Insight upload again was not a replay: %+v", again)
	}
	// Autopilot: run-1 succeeded, run-2 failed, run-3 succeeded; run-2 sent twice.
	run1, run2, run3 := autopilotBody(org, project, "run-1", true), autopilotBody(org, project, "run-2", false), autopilotBody(org, project, "run-3", true)
	receipts = append(receipts, s.post(events.Autopilot, run1), s.post(events.Autopilot, run2), s.post(events.Autopilot, run3))
	s.post(events.Autopilot, run2)
	// Guardian: t-1 and t-3 passed, t-2 failed; score 91.5 and 1 vulnerability each; t-1 again with another payload is refused.
	g1, g2, g3 := guardianBody(org, project, "t-1", "staging", true), guardianBody(org, project, "t-2", "production", false), guardianBody(org, project, "t-3", "production", true)
	receipts = append(receipts, s.post(events.Guardian, g1), s.post(events.Guardian, g2), s.post(events.Guardian, g3))
	conflict := guardianBody(org, project, "t-1", "staging", false)
	if r := s.Do(http.MethodPost, "/api/v1/sync/guardian", conflict); r.Status != http.StatusConflict {
		t.Fatalf("a second t-1 with another payload: %d %s, want 409", r.Status, r.Body)
	}
	for _, rc := range receipts {
		s.stored(rc)
	}

	var want statsSummary
	want.Insight.Analyses, want.Insight.TotalIssues, want.Insight.WithCritical = 2, 6, 2
	want.Insight.IssuesBySeverity = map[string]int64{"critical": 2, "high": 2, "medium": 2, "low": 0}
	want.Autopilot.Total, want.Autopilot.Successful, want.Autopilot.Failed, want.Autopilot.SuccessRate = 3, 2, 1, f64(66.67)
	want.Guardian.Total, want.Guardian.Passed, want.Guardian.Failed = 3, 2, 1
	want.Guardian.PassRate, want.Guardian.AverageAccessibilityScore, want.Guardian.TotalVulnerabilities = f64(66.67), f64(91.5), 3

	summary := func(query string) statsSummary {
		t.Helper()
		r := k.do(t, s, http.MethodGet, "/api/v1/stats/summary"+query, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("GET /api/v1/stats/summary%s: %d %s", query, r.Status, r.Body)
		}
		var got statsSummary
		r.JSON(t, &got)
		return got
	}
	eventuallyWithin(t, 30*time.Second, "the summary to count every upload", func() bool { return cmp.Equal(summary(""), want) })
	today := time.Now().UTC().Format("2006-01-02")
	if got := summary("?from=" + today + "&to=" + today); !cmp.Equal(got, want) {
		t.Errorf("summary of today (-want +got):\n%s", cmp.Diff(want, got))
	}
	if got := summary("?scope=organization"); !cmp.Equal(got, want) {
		t.Errorf("summary of the organization (-want +got):\n%s", cmp.Diff(want, got))
	}
	if got := summary("?from=2020-01-01&to=2020-01-31"); got.Insight.Analyses != 0 || got.Autopilot.SuccessRate != nil {
		t.Errorf("summary of a month without uploads: %+v", got)
	}

	// The list summaries come from the same aggregates.
	checkLists := func(when string) {
		t.Helper()
		lists := map[string]map[string]any{
			"insight":   {"total": 2.0, "totalIssues": 6.0, "issuesBySeverity": map[string]any{"critical": 2.0, "high": 2.0, "medium": 2.0, "low": 0.0}},
			"autopilot": {"total": 3.0, "successful": 2.0, "failed": 1.0, "successRate": 66.67},
			"guardian":  {"total": 3.0, "passed": 2.0, "failed": 1.0, "passRate": 66.67, "averageAccessibilityScore": 91.5, "totalVulnerabilities": 3.0},
		}
		for p, w := range lists {
			got := s.list("/api/v1/sync/" + p).Summary
			if !cmp.Equal(got, any(w)) {
				t.Errorf("%s: summary of the %s list (-want +got):\n%s", when, p, cmp.Diff(any(w), got))
			}
		}
	}
	checkLists("incremental")

	// Trends: today holds everything, and the signals compare with yesterday (no data: unknown).
	var tr struct {
		From, To string
		Days     []struct {
			Day     string
			Insight struct{ Analyses int64 }
		}
		Signals []struct {
			ProjectID string
			PassRate  struct {
				Current   *float64
				Direction string
			}
		}
	}
	r := k.do(t, s, http.MethodGet, "/api/v1/stats/trends?from="+today+"&to="+today, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("trends: %d %s", r.Status, r.Body)
	}
	r.JSON(t, &tr)
	if len(tr.Days) != 1 || tr.Days[0].Day != today || tr.Days[0].Insight.Analyses != 2 || len(tr.Signals) != 1 ||
		tr.Signals[0].ProjectID != project || *tr.Signals[0].PassRate.Current != 66.67 || tr.Signals[0].PassRate.Direction != "unknown" {
		t.Errorf("trends of today: %s", r.Body)
	}

	// Bad queries are 400 naming the field.
	for q, field := range map[string]string{"?scope=world": "scope", "?from=yesterday": "from", "?from=2026-02-01&to=2026-01-01": "from", "?from=2020-01-01&to=2026-01-01": "from", "?to=2026-01-01": "from"} {
		r := k.do(t, s, http.MethodGet, "/api/v1/stats/summary"+q, nil)
		p := checkProblem(t, r, http.StatusBadRequest)
		if _, ok := fields(p)[field]; !ok {
			t.Errorf("summary%s: problem %+v does not name %s", q, p, field)
		}
	}

	// Rebuild: admin only; through the CLI; the same figures after.
	r = s.Do(http.MethodPost, "/api/v1/admin/keys", map[string]any{"organizationId": org, "projectId": project, "name": "ci", "scopes": []string{"sync"}})
	if r.Status != http.StatusCreated {
		t.Fatalf("creating a sync key: %d %s", r.Status, r.Body)
	}
	var key struct{ Key string }
	r.JSON(t, &key)
	for _, req := range [][2]string{{http.MethodPost, "/api/v1/admin/stats/rebuild"}, {http.MethodGet, "/api/v1/stats/summary?scope=organization"}} {
		r := s.DoAs(key.Key, org, project, req[0], req[1], nil)
		k.check(t, req[0], req[1], r)
		checkProblem(t, r, http.StatusForbidden)
	}

	var out, errOut strings.Builder
	code := run(context.Background(), []string{"stats", "rebuild", "--credentials", filepath.Join(s.Data, credentialsFile)},
		func(string) string { return "" }, strings.NewReader(""), &out, &errOut)
	if code != 0 || !strings.Contains(out.String(), "rebuilt generation 2 from 8 result(s)") {
		t.Fatalf("odavl-sync stats rebuild: exit %d\nstdout: %s\nstderr: %s", code, out.String(), errOut.String())
	}
	if got := summary(""); !cmp.Equal(got, want) {
		t.Errorf("summary after the rebuild (-incremental +rebuilt):\n%s", cmp.Diff(want, got))
	}
	checkLists("rebuilt")

	// The admin route itself, answered as documented.
	if r := k.do(t, s, http.MethodPost, "/api/v1/admin/stats/rebuild", nil); r.Status != http.StatusOK {
		t.Fatalf("POST /api/v1/admin/stats/rebuild: %d %s", r.Status, r.Body)
	}
	if got := summary(""); !cmp.Equal(got, want) {
		t.Errorf("summary after a second rebuild (-want +got):\n%s", cmp.Diff(want, got))
	}

	s = s.Restart()
	if got := summary(""); !cmp.Equal(got, want) {
		t.Errorf("summary after a restart (-want +got):\n%s", cmp.Diff(want, got))
	}
}

// TestAnOrganizationsAdminRebuildsItsOwnStatistics: an organization's
// admin key rebuilds its own organization's statistics (the default
// scope) and is answered with that organization's counts only; another
// organization's figures are not touched, uploads after it count once in
// each, the whole deployment (scope=all) is the operator's, a bad scope is
// 400 naming it, and the operator rebuilds one organization or all.
func TestAnOrganizationsAdminRebuildsItsOwnStatistics(t *testing.T) {
	t.Parallel()
	s := startServe(t, nil)
	k := s.contract()
	org, project := s.Cred.OrganizationID, s.Cred.ProjectID
	r := s.Do(http.MethodPost, "/api/v1/admin/keys", map[string]any{"organizationId": "orgB", "projectId": "b1", "scopes": []string{"admin", "sync"}})
	if r.Status != http.StatusCreated {
		t.Fatalf("creating orgB's admin key: %d %s", r.Status, r.Body)
	}
	var b struct{ Key string }
	r.JSON(t, &b)
	asB := func(method, path string, body any) apiResp {
		t.Helper()
		r := s.DoAs(b.Key, "orgB", "b1", method, path, body)
		k.check(t, method, path, r)
		return r
	}
	upload := func(own bool, n int) {
		t.Helper()
		if !own {
			s.post(events.Insight, insightBody(org, project, n))
			return
		}
		if r := asB(http.MethodPost, "/api/v1/sync/insight", insightBody("orgB", "b1", n)); r.Status != http.StatusAccepted {
			t.Fatalf("orgB's upload %d: %d %s", n, r.Status, r.Body)
		}
	}
	summary := func(own bool, query string) statsSummary {
		t.Helper()
		var r apiResp
		if own {
			r = asB(http.MethodGet, "/api/v1/stats/summary"+query, nil)
		} else {
			r = k.do(t, s, http.MethodGet, "/api/v1/stats/summary"+query, nil)
		}
		if r.Status != http.StatusOK {
			t.Fatalf("GET /api/v1/stats/summary%s: %d %s", query, r.Status, r.Body)
		}
		var got statsSummary
		r.JSON(t, &got)
		return got
	}
	// n Insight analyses of insightBody's 3 issues (1 critical, 1 high, 1 medium).
	want := func(n int64) statsSummary {
		var w statsSummary
		w.Insight.Analyses, w.Insight.TotalIssues, w.Insight.WithCritical = n, 3*n, n
		w.Insight.IssuesBySeverity = map[string]int64{"critical": n, "high": n, "medium": n, "low": 0}
		return w
	}
	counted := func(when string, b, own int64) {
		t.Helper()
		eventuallyWithin(t, 30*time.Second, when, func() bool {
			return cmp.Equal(summary(true, ""), want(b)) && cmp.Equal(summary(false, ""), want(own))
		})
		for _, c := range []struct {
			own   bool
			query string
			want  statsSummary
		}{{true, "?scope=organization", want(b)}, {false, "?scope=organization", want(own)}} {
			if got := summary(c.own, c.query); !cmp.Equal(got, c.want) {
				t.Errorf("%s: summary%s of orgB=%v (-want +got):\n%s", when, c.query, c.own, cmp.Diff(c.want, got))
			}
		}
	}
	for n := range 2 {
		upload(true, n)
	}
	for n := range 3 {
		upload(false, n)
	}
	counted("every upload counted", 2, 3)

	type rebuilt struct {
		Scope, OrganizationID string
		Generation, Results   int64
	}
	rebuild := func(r apiResp) rebuilt {
		t.Helper()
		if r.Status != http.StatusOK {
			t.Fatalf("rebuild: %d %s", r.Status, r.Body)
		}
		var rb rebuilt
		r.JSON(t, &rb)
		return rb
	}
	// orgB's admin: orgB's statistics only, answered with orgB's counts.
	if got, want := rebuild(asB(http.MethodPost, "/api/v1/admin/stats/rebuild", nil)), (rebuilt{"organization", "orgB", 2, 2}); got != want {
		t.Errorf("orgB's rebuild answered %+v, want %+v", got, want)
	}
	counted("after orgB's rebuild", 2, 3)
	// The whole deployment is the operator's; a bad scope names the parameter.
	if p := checkProblem(t, asB(http.MethodPost, "/api/v1/admin/stats/rebuild?scope=all", nil), http.StatusForbidden); !strings.Contains(p.Detail, "operator") {
		t.Errorf("scope=all with orgB's admin key: %q does not say an operator key is needed", p.Detail)
	}
	if p := checkProblem(t, asB(http.MethodPost, "/api/v1/admin/stats/rebuild?scope=everything", nil), http.StatusBadRequest); fields(p)["scope"] == "" {
		t.Errorf("scope=everything: problem %+v does not name scope", p)
	}
	// Counting goes on in both organizations, once.
	upload(true, 2)
	upload(false, 3)
	counted("uploads after orgB's rebuild", 3, 4)

	// The operator: its own organization with scope=organization, every organization by default.
	if got, want := rebuild(k.do(t, s, http.MethodPost, "/api/v1/admin/stats/rebuild?scope=organization", nil)), (rebuilt{"organization", org, 2, 4}); got != want {
		t.Errorf("the operator's rebuild of %s answered %+v, want %+v", org, got, want)
	}
	counted("after the operator's rebuild of its organization", 3, 4)
	if got, want := rebuild(k.do(t, s, http.MethodPost, "/api/v1/admin/stats/rebuild", nil)), (rebuilt{"all", "", 3, 7}); got != want {
		t.Errorf("the operator's rebuild of everything answered %+v, want %+v", got, want)
	}
	counted("after the rebuild of everything", 3, 4)
}
