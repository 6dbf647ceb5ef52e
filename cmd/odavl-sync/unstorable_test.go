package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// What the gateway answers 202 for, processing must be able to store:
// numbers the JSON Schema calls integers but Go's types cannot hold as
// such (1.0, 1e0, 0e5), a leap second, a number beyond float64 are a 400
// naming the field, not an accepted upload that fails later.
func TestUploadsThatCouldNotBeStoredAreRefused(t *testing.T) {
	s := startServe(t, nil)
	c := s.Cred
	raw := func(body map[string]any) string { b, _ := json.Marshal(body); return string(b) }
	ins, ap := raw(insightBody(c.OrganizationID, c.ProjectID, 1)), raw(autopilotBody(c.OrganizationID, c.ProjectID, "run-x", true))
	leap := time.Now().UTC().Add(-48*time.Hour).Format("2006-01-02") + "T23:59:60Z"
	var m map[string]any
	_ = json.Unmarshal([]byte(ins), &m)
	ts := m["timestamp"].(string)
	cases := []struct {
		name, product, body, field string
	}{
		{"an integer written 3.0", "insight", strings.Replace(ins, `"totalIssues":3`, `"totalIssues":3.0`, 1), "totalIssues"},
		{"an integer written 3e0", "insight", strings.Replace(ins, `"line":10`, `"line":1e1`, 1), "issues.line"},
		{"an integer written 0e5", "insight", strings.Replace(ins, `"column":1`, `"column":0e5`, 1), "issues.column"},
		{"a severity count written 1e0", "insight", strings.Replace(ins, `"critical":1`, `"critical":1e0`, 1), "issuesBySeverity.critical"},
		{"a leap second", "insight", strings.Replace(ins, ts, leap, 1), "timestamp"},
		{"a metric beyond float64", "autopilot", strings.Replace(ap, `"filesScanned":40`, `"filesScanned":1e400`, 1), "phases.observe.metrics"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.body
			if body == ins || body == ap {
				t.Fatalf("the case did not change the body")
			}
			r := s.Do(http.MethodPost, "/api/v1/sync/"+tc.product, body)
			p := checkProblem(t, r, http.StatusBadRequest)
			if _, ok := fields(p)[tc.field]; !ok {
				t.Errorf("problem %+v does not name %s", p, tc.field)
			}
		})
	}
	// The same bodies written as integers and a real time are stored.
	if r := s.Do(http.MethodPost, "/api/v1/sync/insight", ins); r.Status != http.StatusAccepted {
		t.Fatalf("the valid body: %d %s", r.Status, r.Body)
	}
}
