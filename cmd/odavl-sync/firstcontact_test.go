package main

import (
	clicmd "github.com/odavl/sync/client/cli"

	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// runServeToEnd runs serve with env and flags (besides --data) and returns
// its exit code and standard error once it has stopped on its own.
func runServeToEnd(t *testing.T, env map[string]string, flags ...string) (int, string) {
	t.Helper()
	errOut := &syncBuffer{}
	done := make(chan int, 1)
	args := append([]string{"serve", "--data", t.TempDir(), "--nats-listen", "127.0.0.1:0"}, flags...)
	go func() {
		done <- run(context.Background(), args, func(k string) string { return env[k] }, strings.NewReader(""), &syncBuffer{}, errOut)
	}()
	select {
	case code := <-done:
		return code, errOut.String()
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not stop in 30s:\n%s", errOut.String())
		return 0, ""
	}
}

// freeAddr is a local address nothing listens on.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// noRedirects is a client that shows a redirect instead of following it.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func TestServeRootRedirectsToDashboard(t *testing.T) {
	s := startServe(t, nil)
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		req, _ := http.NewRequest(method, s.Cred.APIURL+"/", nil)
		resp, err := noRedirects.Do(req)
		if err != nil {
			t.Fatalf("%s /: %v", method, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
			t.Errorf("%s /: %d, want a redirect", method, resp.StatusCode)
		}
		if got := resp.Header.Get("Location"); got != "/dashboard/" {
			t.Errorf("%s /: Location %q, want /dashboard/", method, got)
		}
	}
	// Followed, the redirect ends at the dashboard page.
	resp, err := http.Get(s.Cred.APIURL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("GET / followed: %d %s, want the dashboard's HTML", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
func TestServeRefusesNonPositiveMaxBodyBytes(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"-1", "0"} {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			code, stderr := runServeToEnd(t, map[string]string{"MAX_BODY_BYTES": v}, "--addr", "127.0.0.1:0")
			if code != clicmd.ExitUsage {
				t.Errorf("exit %d, want %d (usage)", code, clicmd.ExitUsage)
			}
			if !strings.Contains(stderr, "MAX_BODY_BYTES") {
				t.Errorf("the error does not name MAX_BODY_BYTES:\n%s", stderr)
			}
		})
	}
}
func TestServeNamesEveryBadVariable(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"LOG_LEVEL":                "loud",   // serve's own reader
		"MAX_BODY_BYTES":           "a lot",  // ingest
		"RATE_LIMIT_BURST":         "many",   // ingest, second of the same service
		"JOBS_WORKERS":             "eight",  // jobs
		"STORAGE_CLEANUP_INTERVAL": "hourly", // storage
		"STATS_WORKERS":            "four",   // stats
	}
	code, stderr := runServeToEnd(t, env, "--addr", "127.0.0.1:0")
	if code != clicmd.ExitUsage {
		t.Errorf("exit %d, want %d (usage)", code, clicmd.ExitUsage)
	}
	for name := range env {
		if !strings.Contains(stderr, name) {
			t.Errorf("the error does not name %s:\n%s", name, stderr)
		}
	}
}
func TestServeListensOnHTTPAddr(t *testing.T) {
	t.Parallel()
	t.Run("env", func(t *testing.T) {
		t.Parallel()
		addr := freeAddr(t)
		s := startServeArgs(t, t.TempDir(), map[string]string{"HTTP_ADDR": addr}, "--nats-listen", "127.0.0.1:0", "--log-level", "warn")
		if want := "http://" + addr; s.Cred.APIURL != want {
			t.Errorf("API at %s, want %s (HTTP_ADDR)", s.Cred.APIURL, want)
		}
	})
	t.Run("flag wins", func(t *testing.T) {
		t.Parallel()
		flagAddr := freeAddr(t)
		s := startServeArgs(t, t.TempDir(), map[string]string{"HTTP_ADDR": freeAddr(t)}, "--addr", flagAddr, "--nats-listen", "127.0.0.1:0", "--log-level", "warn")
		if want := "http://" + flagAddr; s.Cred.APIURL != want {
			t.Errorf("API at %s, want %s (--addr)", s.Cred.APIURL, want)
		}
	})
}

func TestServeKeepsJobsDataDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startServeArgs(t, t.TempDir(), map[string]string{"JOBS_DATA_DIR": dir}, "--addr", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0", "--log-level", "info")
	want := `"outbox":"` + filepath.Join(dir, "outbox") + `"`
	if !strings.Contains(s.errOut.String(), want) {
		t.Errorf("the mail outbox is not under JOBS_DATA_DIR (%s):\n%s", want, s.errOut.String())
	}
}

// A script that waits for /readyz and then reads credentials.json finds it.
func TestServeReadyOnlyWithCredentials(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	errOut := &syncBuffer{}
	go func() {
		done <- run(ctx, []string{"serve", "--data", data, "--addr", addr, "--nats-listen", "127.0.0.1:0", "--log-level", "warn"},
			func(string) string { return "" }, strings.NewReader(""), &syncBuffer{}, errOut)
	}()
	t.Cleanup(func() { cancel(); <-done })
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("/readyz not 200 after 60s:\n%s", errOut.String())
		}
		select {
		case code := <-done:
			done <- code
			t.Fatalf("serve exited %d:\n%s", code, errOut.String())
		default:
		}
		resp, err := client.Get("http://" + addr + "/readyz")
		if err != nil {
			time.Sleep(time.Millisecond)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			continue
		}
		c, err := clicmd.ReadCredentials(filepath.Join(data, credentialsFile))
		if errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("/readyz answered 200 before %s was written", credentialsFile)
		}
		if err != nil || c.APIKey == "" {
			t.Fatalf("credentials at ready: %+v %v", c, err)
		}
		return
	}
}
func TestServeLogsDurationsAndMillisecondTimes(t *testing.T) {
	t.Parallel()
	s := startServeArgs(t, t.TempDir(), nil, "--addr", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0", "--log-level", "info")
	s.Stop()
	stamp := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
	var ready, storageStarted, jobsReady bool
	for _, line := range strings.Split(strings.TrimSpace(s.errOut.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("a log line is no JSON: %q", line)
			continue
		}
		if ts, _ := rec["time"].(string); !stamp.MatchString(ts) {
			t.Errorf("time %q is not RFC 3339 UTC with milliseconds: %s", rec["time"], line)
		}
		for k, v := range rec {
			if strings.HasSuffix(k, "Ms") || k == "ms" {
				t.Errorf("duration %s=%v in milliseconds, want a duration string: %s", k, v, line)
			}
		}
		switch rec["msg"] {
		case "ready":
			ready = true
			if d, ok := rec["took"].(string); !ok || !isDuration(d) {
				t.Errorf("ready took %v, want a duration such as 1.234s: %s", rec["took"], line)
			}
		case "storage service starting":
			storageStarted = true
			cfg, _ := rec["config"].(map[string]any)
			if d, ok := cfg["cleanupInterval"].(string); !ok || d != "1m0s" {
				t.Errorf("cleanupInterval %v, want 1m0s: %s", cfg["cleanupInterval"], line)
			}
		case "jobs service ready":
			jobsReady = true
			b, _ := rec["backoff"].([]any)
			if len(b) == 0 {
				t.Errorf("jobs backoff %v, want durations: %s", rec["backoff"], line)
			}
			for _, d := range b {
				if s, ok := d.(string); !ok || !isDuration(s) {
					t.Errorf("jobs backoff %v, want durations such as 2s: %s", rec["backoff"], line)
				}
			}
		}
	}
	if !ready || !storageStarted || !jobsReady {
		t.Errorf("a line is missing: ready %v, storage starting %v, jobs ready %v:\n%s", ready, storageStarted, jobsReady, s.errOut.String())
	}
}

func isDuration(s string) bool {
	_, err := time.ParseDuration(s)
	return err == nil
}
