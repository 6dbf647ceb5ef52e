package main

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/odavl/sync/libs/events"
)

// A replayed upload's receipt says where the upload is now — stored once
// stored — as GET /api/v1/sync/jobs/{id} does, not "queued" forever.
func TestReplayReceiptSaysCurrentStatus(t *testing.T) {
	s := startServe(t, nil)
	c := s.Cred
	body := autopilotBody(c.OrganizationID, c.ProjectID, "run-replay-status", true)
	first := s.post(events.Autopilot, body)
	s.stored(first)
	again := s.post(events.Autopilot, body)
	if !again.Replay || again.JobID != first.JobID {
		t.Fatalf("retry: %+v, want a replay of %+v", again, first)
	}
	var st struct{ State string }
	s.Do(http.MethodGet, again.StatusURL, nil).JSON(t, &st)
	if again.Status != "stored" || again.Status != st.State {
		t.Errorf("replay receipt status %q, job status %q: want stored in both", again.Status, st.State)
	}
}

// A body the gateway cannot read is answered in words: the field, what was
// wrong and what to send — never the decoder's Go terms.
func TestBadBodiesAnsweredInWords(t *testing.T) {
	s := startServe(t, nil)
	c := s.Cred
	cases := []struct {
		name, path string
		body       string
		field      string
		says       string
	}{
		{"upload-url size as a string", "/api/v1/storage/upload-url",
			`{"filename":"a.txt","contentType":"text/plain","size":"1024"}`, "size", "whole number"},
		{"job type as a number", "/api/v1/jobs", `{"type":5,"payload":{}}`, "type", "string"},
		{"job body broken", "/api/v1/jobs", "{\"type\":\n \"EMAIL_SEND\" \"payload\":{}}", "body", "line 2"},
		{"job body an array", "/api/v1/jobs", `[1,2]`, "body", "JSON object"},
		{"job action unknown field", "/api/v1/sync/jobs", `{"action":"retry","job":"x"}`, "job", "jobId"},
		{"key scopes as a string", "/api/v1/admin/keys",
			`{"organizationId":"` + c.OrganizationID + `","projectId":"p2","scopes":"sync"}`, "scopes", "array"},
		{"key body cut short", "/api/v1/admin/keys", `{"organizationId":"`, "body", "complete"},
	}
	goisms := []string{"json:", "unmarshal", "go struct", "go value", "invalid character", "reflect", "int64"}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := s.Do(http.MethodPost, tc.path, tc.body)
			p := checkProblem(t, r, http.StatusBadRequest)
			for _, g := range goisms {
				if strings.Contains(strings.ToLower(string(r.Body)), g) {
					t.Errorf("answer says %q: %s", g, r.Body)
				}
			}
			msg, ok := fields(p)[tc.field]
			if !ok || !strings.Contains(msg, tc.says) {
				t.Errorf("errors %+v: want %s saying %q", p.Errors, tc.field, tc.says)
			}
		})
	}
}

// A typo in X-Project-Id is a 404 naming the project, not data stored in a
// project nobody created; a created project works, and keeps working while
// the store is away.
func TestUnknownProjectIsNotFound(t *testing.T) {
	st := startTestStore(t)
	s := startServe(t, map[string]string{"MONGO_URI": st.URI, "KEY_CACHE_TTL": "200ms"})
	c := s.Cred
	upload := func(project string, n int) apiResp {
		return s.DoAs(c.APIKey, c.OrganizationID, project, http.MethodPost, "/api/v1/sync/insight", insightBody(c.OrganizationID, project, n))
	}
	p := checkProblem(t, upload("web", 1), http.StatusNotFound)
	if !strings.Contains(p.Detail, "web") || !strings.Contains(fields(p)["X-Project-Id"], "web") {
		t.Errorf("404 does not name the project: %+v", p)
	}
	checkProblem(t, s.DoAs(c.APIKey, c.OrganizationID, "web", http.MethodGet, "/api/v1/sync/insight", nil), http.StatusNotFound)

	newKey(t, s, c.OrganizationID, "web") // creates the project
	if r := upload("web", 2); r.Status != http.StatusAccepted {
		t.Fatalf("upload to the created project: %d %s", r.Status, r.Body)
	}

	st.Stop()
	if r := upload("web", 3); r.Status != http.StatusAccepted {
		t.Errorf("upload to a known project during a store outage: %d %s", r.Status, r.Body)
	}
	if r := upload("weeb", 4); r.Status != http.StatusServiceUnavailable {
		t.Errorf("upload to an unknown project during a store outage %d %s, want 503 (it cannot be checked)", r.Status, r.Body)
	}
}

// The summary's jobs.byStatus counts transitions (a completed job entered
// ACTIVE and COMPLETED); jobs.current says how many jobs are in each status
// now: nothing ACTIVE once every upload is stored.
func TestStatsSummaryCurrentJobs(t *testing.T) {
	s := startServe(t, nil)
	c := s.Cred
	for i := range 3 {
		s.stored(s.post(events.Autopilot, autopilotBody(c.OrganizationID, c.ProjectID, "run-current-"+strconv.Itoa(i), true)))
	}
	var sum struct {
		Jobs struct{ ByStatus, Current map[string]int64 }
	}
	eventually(t, "the summary counting the three jobs", func() bool {
		r := s.Do(http.MethodGet, "/api/v1/stats/summary", nil)
		if r.Status != http.StatusOK {
			t.Fatalf("summary: %d %s", r.Status, r.Body)
		}
		r.JSON(t, &sum)
		return sum.Jobs.ByStatus["COMPLETED"] == 3
	})
	if sum.Jobs.ByStatus["ACTIVE"] < 3 {
		t.Errorf("byStatus %v: want the ACTIVE transitions counted", sum.Jobs.ByStatus)
	}
	if sum.Jobs.Current["COMPLETED"] != 3 || sum.Jobs.Current["ACTIVE"] != 0 || sum.Jobs.Current["WAITING"] != 0 {
		t.Errorf("current %v: want 3 COMPLETED, 0 ACTIVE, 0 WAITING", sum.Jobs.Current)
	}
	if _, ok := sum.Jobs.Current["FAILED"]; !ok {
		t.Errorf("current %v: want every status listed", sum.Jobs.Current)
	}
}
