package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// A path or query value becomes a NATS subject or key only after it is
// checked: one request with a 5,000-character id used to exceed the NATS
// control line, cut the gateway's connection and leave every later upload
// 503 until a restart. Each such request is now a 4xx naming the value, and
// the server keeps working.
func TestLongIdsDoNotCutTheGatewayOffFromNATS(t *testing.T) {
	s := startServe(t, nil)
	long := strings.Repeat("x", 5000)
	paths := []string{
		"/api/v1/sync/jobs/" + long,
		"/api/v1/sync/insight/" + long,
		"/api/v1/sync/autopilot/" + long,
		"/api/v1/sync/guardian/" + long,
		"/api/v1/sync/uploads/" + long,
		"/api/v1/storage/files/" + long,
		"/api/v1/storage/download-url/" + long,
		"/api/v1/sync/jobs?status=" + long,
		"/api/v1/sync/guardian?environment=" + url.QueryEscape(long),
		"/api/v1/storage/upload-url?fileId=" + long,
		"/api/v1/sync/jobs?projectId=" + long,
		"/api/v1/storage/files/" + long + "/content",
	}
	for _, p := range paths {
		r := s.Do(http.MethodGet, p, nil)
		if r.Status < 400 || r.Status >= 500 {
			t.Errorf("GET %s…: %d %s, want a 4xx", p[:min(len(p), 60)], r.Status, r.Body)
		}
		if r := s.Do(http.MethodPost, "/api/v1/sync/insight", insightBody(s.Cred.OrganizationID, s.Cred.ProjectID, len(p))); r.Status != http.StatusAccepted {
			t.Fatalf("an upload after GET %s…: %d %s", p[:min(len(p), 60)], r.Status, r.Body)
		}
	}
	if r := s.Do(http.MethodGet, "/readyz", nil); r.Status != http.StatusOK {
		t.Fatalf("/readyz after the long ids: %d %s", r.Status, r.Body)
	}
}

// A job action names its job in the body: the same rule holds there.
func TestJobActionsRefuseIdsThatAreNoIds(t *testing.T) {
	s := startServe(t, nil)
	for _, id := range []string{strings.Repeat("x", 5000), "a b", "job.x.>", ""} {
		r := s.Do(http.MethodPost, "/api/v1/sync/jobs", map[string]string{"action": "retry", "jobId": id})
		p := checkProblem(t, r, http.StatusBadRequest)
		if _, ok := fields(p)["jobId"]; !ok {
			t.Errorf("jobId %.20q: %+v does not name jobId", id, p)
		}
	}
	if r := s.Do(http.MethodGet, "/healthz", nil); r.Status != http.StatusOK {
		t.Fatalf("/healthz: %d %s", r.Status, r.Body)
	}
}
