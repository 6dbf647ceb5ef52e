package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/odavl/sync/client/cli"
)

// served is a real `odavl-sync serve` running in-process on free ports with
// embedded NATS and store, through the same run() as the binary.
type served struct {
	t      testing.TB
	Data   string
	Cred   credentials
	cancel context.CancelFunc
	done   chan int
	out    *syncBuffer
	errOut *syncBuffer
	env    map[string]string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// startServe starts serve on a new data directory; env adds variables.
func startServe(t testing.TB, env map[string]string) *served {
	t.Helper()
	return startServeOn(t, t.TempDir(), env)
}

// startServeOn starts serve on data (an earlier run's directory to restart it).
func startServeOn(t testing.TB, data string, env map[string]string) *served {
	t.Helper()
	return startServeArgs(t, data, env, "--addr", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0", "--log-level", "warn")
}

// startServeArgs starts serve on data with the given flags besides --data.
func startServeArgs(t testing.TB, data string, env map[string]string, flags ...string) *served {
	t.Helper()
	s := &served{t: t, Data: data, done: make(chan int, 1), out: &syncBuffer{}, errOut: &syncBuffer{}, env: env}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	getenv := func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		if k == "METRICS_ADDR" {
			return "127.0.0.1:0" // serves run side by side
		}
		return ""
	}
	_ = os.Remove(filepath.Join(data, credentialsFile+".ready"))
	before, _ := os.ReadFile(filepath.Join(data, credentialsFile))
	go func() {
		s.done <- run(ctx, append([]string{"serve", "--data", data}, flags...), getenv, strings.NewReader(""), s.out, s.errOut)
	}()
	t.Cleanup(func() { s.Stop() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case code := <-s.done:
			s.done <- code
			t.Fatalf("serve exited with %d before ready:\n%s", code, s.errOut.String())
		default:
		}
		if strings.Contains(s.out.String(), "ODAVL Sync is ready at") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve not ready after 60s:\n%s", s.errOut.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	_ = before
	c, err := cli.ReadCredentials(filepath.Join(data, credentialsFile))
	if err != nil {
		t.Fatalf("reading credentials: %v", err)
	}
	s.Cred = c
	resp, err := http.Get(c.APIURL + "/readyz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz: %v %v", resp, err)
	}
	resp.Body.Close()
	return s
}

// Stop stops serve as SIGTERM would and returns its exit code.
func (s *served) Stop() int {
	s.cancel()
	select {
	case code := <-s.done:
		s.done <- code
		return code
	case <-time.After(60 * time.Second):
		s.t.Errorf("serve did not stop in 60s")
		return -1
	}
}

// Restart stops serve and starts it again on the same data directory.
func (s *served) Restart() *served {
	s.t.Helper()
	if code := s.Stop(); code != 0 {
		s.t.Fatalf("serve exited %d:\n%s", code, s.errOut.String())
	}
	return startServeOn(s.t, s.Data, s.env)
}

// apiResp is an HTTP answer.
type apiResp struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test when it does not decode.
func (r apiResp) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decoding %d answer %q: %v", r.Status, r.Body, err)
	}
}

// Do sends a request with the first key's credentials. body may be nil, a
// []byte or string (sent as is) or any value (sent as JSON).
func (s *served) Do(method, path string, body any, hdr ...string) apiResp {
	s.t.Helper()
	return s.DoAs(s.Cred.APIKey, s.Cred.OrganizationID, s.Cred.ProjectID, method, path, body, hdr...)
}

// DoAs sends a request with the given key and tenant headers (empty: not sent).
func (s *served) DoAs(key, org, project, method, path string, body any, hdr ...string) apiResp {
	s.t.Helper()
	var rd io.Reader
	ct := "application/json"
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.Cred.APIURL+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", ct)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if org != "" {
		req.Header.Set("X-Organization-Id", org)
	}
	if project != "" {
		req.Header.Set("X-Project-Id", project)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return apiResp{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// eventually polls f every 10ms until it returns true or 10s pass.
func eventually(t testing.TB, what string, f func() bool) {
	t.Helper()
	eventuallyWithin(t, 10*time.Second, what, f)
}

// eventuallyWithin polls f every 10ms until it returns true or d passes.
func eventuallyWithin(t testing.TB, d time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// bodyTimestamp is the timestamp of the bodies the helpers make: one for
// the whole run, so two bodies made with the same arguments are equal (a
// replay), whichever second they are made in.
var bodyTimestamp = time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)

// insightBody is a valid Insight upload for the tenant; n varies its content.
func insightBody(org, project string, n int) map[string]any {
	return map[string]any{
		"organizationId": org, "projectId": project,
		"timestamp": bodyTimestamp,
		"detectors": []string{"eslint", "typescript"}, "totalIssues": 3,
		"issuesBySeverity": map[string]int{"critical": 1, "high": 1, "medium": 1, "low": 0},
		"issues": []map[string]any{
			{"detector": "eslint", "severity": "critical", "message": fmt.Sprintf("eval is evil #%d", n), "file": "src/a.ts", "line": 3, "column": 7},
			{"detector": "typescript", "severity": "high", "message": "implicit any", "file": "src/b.ts", "line": 10, "column": 1},
			{"detector": "eslint", "severity": "medium", "message": "prefer-const", "file": "src/c.ts", "line": 1, "column": 2},
		},
		"metrics": map[string]any{"filesAnalyzed": 42, "duration": 1234.5, "codeLines": 4200},
	}
}
