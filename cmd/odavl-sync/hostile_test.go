package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
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

// /metrics is on a listener of its own by default: the public port answers
// 404 for it; METRICS_ADDR=api puts it back there.
func TestMetricsAreNotOnThePublicPortUnlessAsked(t *testing.T) {
	s := startServe(t, nil)
	if r := s.Do(http.MethodGet, "/metrics", nil); r.Status != http.StatusNotFound {
		t.Errorf("/metrics on the API port: %d, want 404", r.Status)
	}
	resp, err := http.Get(metricsURLOf(t, s))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "odavl_http_requests_total") {
		t.Errorf("/metrics on its listener: %d %.200s", resp.StatusCode, b)
	}

	s = startServe(t, map[string]string{"METRICS_ADDR": "api"})
	if r := s.Do(http.MethodGet, "/metrics", nil); r.Status != http.StatusOK {
		t.Errorf("/metrics with METRICS_ADDR=api: %d", r.Status)
	}
}

// A body shorter than its Content-Length is answered 400 once BODY_TIMEOUT
// passes, naming what arrived; the request is not held open for the
// server's 60 s read timeout.
func TestABodyShorterThanItsLengthIsA400(t *testing.T) {
	s := startServe(t, map[string]string{"BODY_TIMEOUT": "500ms"})
	c := s.Cred
	u, _ := url.Parse(c.APIURL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/v1/sync/insight HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nX-Organization-Id: %s\r\nX-Project-Id: %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"organizationId\":", u.Host, c.APIKey, c.OrganizationID, c.ProjectID)
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to the short body: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "18 of the 1000 bytes") {
		t.Fatalf("short body: %d %s", resp.StatusCode, b)
	}
}
