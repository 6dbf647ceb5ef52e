package main

import (
	"net/http"
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
