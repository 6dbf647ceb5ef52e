package main

import (
	"context"
	"net"
	"net/http"
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
