package schema_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/services/ingest/internal/schema"
)

var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func validator(t testing.TB) *schema.Validator {
	t.Helper()
	v, err := schema.New(func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func insight() map[string]any {
	return map[string]any{"organizationId": "acme", "projectId": "web", "timestamp": "2026-12-01T11:00:00Z",
		"detectors": []any{"eslint"}, "totalIssues": 2, "issuesBySeverity": map[string]any{"critical": 0, "high": 1, "medium": 1, "low": 0},
		"issues": []any{
			map[string]any{"detector": "eslint", "severity": "high", "message": "a"},
			map[string]any{"detector": "eslint", "severity": "medium", "message": "b", "file": "x.ts", "line": 1, "column": 2},
		}}
}

func autopilot() map[string]any {
	ph := func(st string) map[string]any { return map[string]any{"status": st, "duration": 10} }
	return map[string]any{"runId": "r1", "organizationId": "acme", "projectId": "web", "timestamp": "2026-12-01T11:00:00Z",
		"phases":        map[string]any{"observe": ph("completed"), "decide": ph("completed"), "act": ph("completed"), "verify": ph("completed"), "learn": ph("skipped")},
		"filesModified": []any{"a.go"}, "trustScore": 0.5, "qualityImproved": true, "success": true}
}

func guardian() map[string]any {
	return map[string]any{"testRunId": "t1", "organizationId": "acme", "projectId": "web", "timestamp": "2026-12-01T11:00:00Z",
		"url": "https://example.com/", "environment": "staging",
		"tests": map[string]any{
			"accessibility": map[string]any{"score": 90, "violations": 1, "passes": 9},
			"performance":   map[string]any{"loadTime": 900, "ttfb": 100, "fcp": 300, "lcp": 600},
			"security":      map[string]any{"vulnerabilities": 0, "warnings": 0},
		},
		"screenshots": []any{"https://example.com/1.png", "file_abc"}, "passed": true}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	v := validator(t)
	set := func(m map[string]any, v any, path ...string) map[string]any {
		cur := m
		for _, k := range path[:len(path)-1] {
			cur = cur[k].(map[string]any)
		}
		cur[path[len(path)-1]] = v
		return m
	}
	many := func(n int, f func(i int) any) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	cases := []struct {
		name   string
		p      events.Product
		body   any
		fields string
	}{
		{"insight valid", events.Insight, insight(), ""},
		{"autopilot valid", events.Autopilot, autopilot(), ""},
		{"guardian valid", events.Guardian, guardian(), ""},
		{"not JSON", events.Insight, "{", ""},
		{"not an object", events.Insight, []any{1}, ""},
		{"before 2000", events.Insight, set(insight(), "1999-12-31T23:59:59Z", "timestamp"), "timestamp"},
		{"a day and more ahead", events.Autopilot, set(autopilot(), now.Add(25*time.Hour).Format(time.RFC3339), "timestamp"), "timestamp"},
		{"not a date-time", events.Guardian, set(guardian(), "yesterday", "timestamp"), "timestamp"},
		{"duplicate detectors", events.Insight, set(insight(), []any{"eslint", "eslint"}, "detectors"), "detectors"},
		{"too many detectors", events.Insight, set(insight(), many(101, func(i int) any { return fmt.Sprint("d", i) }), "detectors"), "detectors"},
		{"listed more than counted", events.Insight, set(insight(), map[string]any{"critical": 0, "high": 0, "medium": 1, "low": 1}, "issuesBySeverity"), "issuesBySeverity.high"},
		{"long message", events.Insight, func() any {
			m := insight()
			m["issues"].([]any)[0].(map[string]any)["message"] = strings.Repeat("m", 2001)
			return m
		}(), "issues[0].message"},
		{"other tenant", events.Insight, set(insight(), "evil", "organizationId"), "organizationId"},
		{"empty recipe", events.Autopilot, set(autopilot(), "", "selectedRecipe"), "selectedRecipe"},
		{"run id with spaces", events.Autopilot, set(autopilot(), "run 1", "runId"), "runId"},
		{"bad metric name", events.Autopilot, set(autopilot(), map[string]any{"1x": 1}, "phases", "act", "metrics"), "phases.act.metrics.1x"},
		{"bad metric name beside a wrong type", events.Autopilot, set(set(autopilot(), map[string]any{"ok": 1, "a-b": 2}, "phases", "learn", "metrics"), "x", "trustScore"), "phases.learn.metrics.a-b,trustScore"},
		{"success with a failed phase and short total", events.Autopilot, set(set(autopilot(), "failed", "phases", "act", "status"), 10, "totalDuration"), "success,totalDuration"},
		{"fcp before ttfb", events.Guardian, set(guardian(), 50, "tests", "performance", "fcp"), "tests.performance.fcp"},
		{"duplicate screenshots", events.Guardian, set(guardian(), []any{"file_a", "file_a"}, "screenshots"), "screenshots[1]"},
		{"screenshot neither url nor id", events.Guardian, set(guardian(), []any{"ftp://x/y.png", "a b"}, "screenshots"), "screenshots[0],screenshots[1]"},
		{"too many screenshots", events.Guardian, set(guardian(), many(101, func(i int) any { return fmt.Sprint("file_", i) }), "screenshots"), "screenshots"},
		{"url without host", events.Guardian, set(guardian(), "https://", "url"), "url"},
		{"every bad field at once", events.Guardian, set(set(set(guardian(), 101, "tests", "accessibility", "score"), "qa", "environment"), -1, "tests", "security", "warnings"),
			"environment,tests.accessibility.score,tests.security.warnings"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var b []byte
			if s, ok := tc.body.(string); ok {
				b = []byte(s)
			} else {
				b, _ = json.Marshal(tc.body)
			}
			errs := v.Validate(tc.p, "acme", "web", b)
			var got []string
			for _, e := range errs {
				got = append(got, e.Field)
				if e.Message == "" {
					t.Errorf("%s: no message", e.Field)
				}
			}
			want := tc.fields
			if (tc.name == "not JSON" || tc.name == "not an object") && len(errs) == 1 {
				return // the body itself is named (field "")
			}
			if strings.Join(got, ",") != want {
				t.Errorf("fields %v, want %q (%v)", got, want, errs)
			}
		})
	}
}

// Equal payloads, however spaced and ordered, have one canonical form, and
// numbers keep the digits they were sent with.
func TestCanonical(t *testing.T) {
	t.Parallel()
	v := validator(t)
	a := `{"organizationId":"acme","projectId":"web","timestamp":"2026-12-01T11:00:00Z","detectors":["eslint"],"totalIssues":0,
	  "issuesBySeverity":{"critical":0,"high":0,"medium":0,"low":0},"issues":[],"metrics":{"duration":1.50,"filesAnalyzed":3}}`
	b := `{ "metrics" : {"filesAnalyzed":3, "duration":1.50}, "issues":[], "issuesBySeverity":{"low":0,"medium":0,"high":0,"critical":0},
	  "totalIssues":0, "detectors":[ "eslint" ], "timestamp":"2026-12-01T11:00:00Z", "projectId":"web", "organizationId":"acme" }`
	errsA, ca := v.Canonical(events.Insight, "acme", "web", []byte(a))
	errsB, cb := v.Canonical(events.Insight, "acme", "web", []byte(b))
	if errsA.Total+errsB.Total > 0 {
		t.Fatal(errsA, errsB)
	}
	if string(ca) != string(cb) {
		t.Errorf("canonical forms differ:\n%s\n%s", ca, cb)
	}
	want := `{"detectors":["eslint"],"issues":[],"issuesBySeverity":{"critical":0,"high":0,"low":0,"medium":0},"metrics":{"duration":1.50,"filesAnalyzed":3},"organizationId":"acme","projectId":"web","timestamp":"2026-12-01T11:00:00Z","totalIssues":0}`
	if string(ca) != want {
		t.Errorf("canonical %s\nwant      %s", ca, want)
	}
	if errs, c := v.Canonical(events.Insight, "acme", "web", []byte(`{"totalIssues":"x"}`)); errs.Total == 0 || c != nil {
		t.Errorf("invalid body: %v %s", errs, c)
	}
}

// A body with more bad fields than MaxReported lists the first ones, the
// body's own fields before its items', items in index order, and counts all.
func TestReportsTheFirstBadFieldsAndCountsAll(t *testing.T) {
	t.Parallel()
	v := validator(t)
	in := insight()
	delete(in, "timestamp")
	items := make([]any, 500)
	for i := range items {
		items[i] = map[string]any{"detector": "eslint", "severity": "bad", "message": "m"}
	}
	in["issues"] = items
	b, _ := json.Marshal(in)
	r, c := v.Canonical(events.Insight, "acme", "web", b)
	if c != nil || len(r.Fields) != schema.MaxReported || r.Total != 501 {
		t.Fatalf("listed %d of %d, want %d of 501", len(r.Fields), r.Total, schema.MaxReported)
	}
	// Sorted by path, indexes as numbers: issues[0..98], then timestamp.
	if f := r.Fields; f[0].Field != "issues[0].severity" || f[2].Field != "issues[2].severity" || f[10].Field != "issues[10].severity" ||
		f[98].Field != "issues[98].severity" || f[99].Field != "timestamp" {
		t.Errorf("fields %v, want issues[0..98].severity in index order, then timestamp", f)
	}

	// Lists keep their other rules: items unique, within their bound.
	ap := autopilot()
	ap["filesModified"] = []any{"a.go", "b.go", "a.go"}
	b, _ = json.Marshal(ap)
	if errs := v.Validate(events.Autopilot, "acme", "web", b); len(errs) != 1 || errs[0].Field != "filesModified" || !strings.Contains(errs[0].Message, "0 and 2") {
		t.Errorf("repeated files: %v", errs)
	}
	if errs := v.Validate(events.Insight, "acme", "web", []byte(`{"issues":[{}, }`)); len(errs) != 1 || !strings.Contains(errs[0].Message, "at byte") {
		t.Errorf("broken JSON: %v, want its position", errs)
	}
}

// The seed puts an Autopilot cycle's recipe, files, trust score and quality
// flag inside its phases; that shape is accepted (and preferred), the
// top-level one still is, both agree when both are given, and the stored
// form has them at the top level too, where every reader looks.
func TestAutopilotPhaseFieldsAsTheSeedNestsThem(t *testing.T) {
	t.Parallel()
	v := validator(t)
	seed := func() map[string]any {
		ap := autopilot()
		for _, k := range []string{"filesModified", "trustScore", "qualityImproved"} {
			delete(ap, k)
		}
		ph := ap["phases"].(map[string]any)
		ph["decide"].(map[string]any)["selectedRecipe"] = "remove-unused-imports"
		ph["act"].(map[string]any)["filesModified"] = []any{"a.go", "b.go"}
		ph["verify"].(map[string]any)["trustScore"] = 0.9
		ph["verify"].(map[string]any)["qualityImproved"] = true
		return ap
	}
	b, _ := json.Marshal(seed())
	r, c := v.Canonical(events.Autopilot, "acme", "web", b)
	if r.Total != 0 {
		t.Fatalf("the seed's shape: %v", r.Fields)
	}
	var stored events.AutopilotLedger
	if err := json.Unmarshal(c, &stored); err != nil || stored.TrustScore != 0.9 || !stored.QualityImproved ||
		stored.SelectedRecipe != "remove-unused-imports" || len(stored.FilesModified) != 2 {
		t.Errorf("stored %s (%v): want the phases' fields at the top level too", c, err)
	}
	counted := seed()
	counted["phases"].(map[string]any)["act"].(map[string]any)["filesModified"] = 7
	b, _ = json.Marshal(counted)
	if r, c := v.Canonical(events.Autopilot, "acme", "web", b); r.Total != 0 || !strings.Contains(string(c), `"filesModified":[]`) || !strings.Contains(string(c), `"filesModified":7`) {
		t.Errorf("a count of files: %v %s", r.Fields, c)
	}
	cases := []struct {
		name  string
		edit  func(m map[string]any)
		field string
	}{
		{"no trust score anywhere", func(m map[string]any) { delete(m["phases"].(map[string]any)["verify"].(map[string]any), "trustScore") }, "phases.verify.trustScore"},
		{"no files anywhere", func(m map[string]any) { delete(m["phases"].(map[string]any)["act"].(map[string]any), "filesModified") }, "phases.act.filesModified"},
		{"two trust scores", func(m map[string]any) { m["trustScore"] = 0.5 }, "trustScore"},
		{"a count that is not the list's", func(m map[string]any) {
			m["filesModified"] = []any{"a.go"}
			m["phases"].(map[string]any)["act"].(map[string]any)["filesModified"] = 2
		}, "phases.act.filesModified"},
		{"a recipe in the wrong phase", func(m map[string]any) { m["phases"].(map[string]any)["act"].(map[string]any)["selectedRecipe"] = "x" }, "phases.act.selectedRecipe"},
	}
	for _, tc := range cases {
		m := seed()
		tc.edit(m)
		b, _ := json.Marshal(m)
		errs := v.Validate(events.Autopilot, "acme", "web", b)
		found := false
		for _, e := range errs {
			found = found || e.Field == tc.field
		}
		if !found {
			t.Errorf("%s: %v, want %s named", tc.name, errs, tc.field)
		}
	}
}

// AppendCanonical appends to its buffer what Canonical returns, on the fast
// path and on the full one (an escaped surrogate pair takes the full path).
func TestAppendCanonicalAppends(t *testing.T) {
	v := validator(t)
	plain, _ := json.Marshal(insight())
	for i, body := range [][]byte{plain, bytes.Replace(plain, []byte(`"message":"a"`), []byte(`"message":"\ud83d\ude00"`), 1)} {
		rep, want := v.Canonical(events.Insight, "acme", "web", body)
		if rep.Total != 0 {
			t.Fatalf("%s: %v", body, rep.Fields)
		}
		if _, fast := v.FastCanonical(events.Insight, "acme", "web", body); fast != (i == 0) {
			t.Fatalf("body %d takes the fast path: %v", i, fast)
		}
		_, got := v.AppendCanonical([]byte("kept"), events.Insight, "acme", "web", body)
		if string(got) != "kept"+string(want) {
			t.Errorf("appended %s, want kept%s", got, want)
		}
	}
}
