package httpapi

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestDashboardAssetsServeUnderAStrictPolicy(t *testing.T) {
	b := setup(t)
	for _, tc := range []struct{ path, ctype, contains string }{
		{"/dashboard", "text/html; charset=utf-8", `<script src="/dashboard/app.js" defer></script>`},
		{"/dashboard/", "text/html; charset=utf-8", `id="signin-form"`},
		{"/dashboard/app.js", "text/javascript; charset=utf-8", "/api/v1/events/stream"},
		{"/dashboard/app.css", "text/css; charset=utf-8", ".card"},
		{"/dashboard/favicon.svg", "image/svg+xml", "<svg"},
		{"/dashboard/vendor/uplot/uPlot.iife.min.js", "text/javascript; charset=utf-8", "uPlot"},
		{"/dashboard/vendor/uplot/uPlot.min.css", "text/css; charset=utf-8", ".uplot"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			w := httptest.NewRecorder()
			b.router.ServeHTTP(w, httptest.NewRequest(http.MethodGet, tc.path, nil))
			if w.Code != http.StatusOK {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			if got := w.Header().Get("Content-Type"); got != tc.ctype {
				t.Errorf("Content-Type %q, want %q", got, tc.ctype)
			}
			if !strings.Contains(w.Body.String(), tc.contains) {
				t.Errorf("body lacks %q", tc.contains)
			}
			csp := w.Header().Get("Content-Security-Policy")
			for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "require-trusted-types-for 'script'"} {
				if !strings.Contains(csp, want) {
					t.Errorf("CSP %q lacks %q", csp, want)
				}
			}
			if strings.Contains(csp, "unsafe") || strings.Contains(csp, "http") || strings.Contains(csp, "*") {
				t.Errorf("CSP %q allows inline code or other origins", csp)
			}
			if got := w.Header().Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q", got)
			}
			// No external resource and nothing inline that the policy would block.
			body := w.Body.String()
			if m := regexp.MustCompile(`(?i)(src|href)=["']?(https?:)?//`).FindString(body); m != "" {
				t.Errorf("external resource %q", m)
			}
			if m := regexp.MustCompile(`(?i)<script>|<style|\sstyle=|\son[a-z]+=`).FindString(body); m != "" {
				t.Errorf("inline code %q", m)
			}

			etag := w.Header().Get("ETag")
			r := httptest.NewRequest(http.MethodGet, tc.path, nil)
			r.Header.Set("If-None-Match", etag)
			w = httptest.NewRecorder()
			b.router.ServeHTTP(w, r)
			if etag == "" || w.Code != http.StatusNotModified {
				t.Errorf("revalidation with ETag %q: %d, want 304", etag, w.Code)
			}
		})
	}
}

func TestSSEFrame(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in, want string
		ok             bool
	}{
		{"compact", `{"id":"e1","type":"dev.odavl.sync.insight.processed.v1","data":{"a":1}}`,
			"event: dev.odavl.sync.insight.processed.v1\nid: e1\ndata: {\"id\":\"e1\",\"type\":\"dev.odavl.sync.insight.processed.v1\",\"data\":{\"a\":1}}\n\n", true},
		{"pretty JSON stays on one data line", "{\n  \"id\": \"e2\",\n  \"type\": \"t.v1\",\n  \"data\": {\"msg\": \"two\\nlines\"}\n}",
			"event: t.v1\nid: e2\ndata: {\"id\":\"e2\",\"type\":\"t.v1\",\"data\":{\"msg\":\"two\\nlines\"}}\n\n", true},
		{"a newline in the id cannot start a new field", `{"id":"e3\ndata: forged","type":"t.v1"}`,
			"event: t.v1\nid: e3data: forged\ndata: {\"id\":\"e3\\ndata: forged\",\"type\":\"t.v1\"}\n\n", true},
		{"not JSON", `hello`, "", false},
		{"no type", `{"id":"e4"}`, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var b bytes.Buffer
			ok := sseFrame(&b, []byte(tc.in))
			if ok != tc.ok || b.String() != tc.want {
				t.Errorf("sseFrame(%q) = %v %q, want %v %q", tc.in, ok, b.String(), tc.ok, tc.want)
			}
		})
	}
}

func TestEventStreamsPerKeyAreBounded(t *testing.T) {
	b := setup(t)
	srv := httptest.NewServer(b.router)
	defer srv.Close()
	open := func() (*http.Response, context.CancelFunc) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/v1/events/stream", nil)
		req.Header.Set("Authorization", "Bearer "+b.key)
		req.Header.Set("X-Organization-Id", b.org)
		req.Header.Set("X-Project-Id", b.project)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		return resp, cancel
	}
	var cancels []context.CancelFunc
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()
	for i := 0; i < maxStreamsPerKey; i++ {
		resp, cancel := open()
		cancels = append(cancels, cancel)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("stream %d: %d", i+1, resp.StatusCode)
		}
	}
	resp, cancel := open()
	b2, _ := io.ReadAll(resp.Body)
	cancel()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(b2), "too-many-streams") {
		t.Fatalf("stream %d: %d %s %s, want 429 problem", maxStreamsPerKey+1, resp.StatusCode, resp.Header.Get("Content-Type"), b2)
	}
	// Closing one gives its place back.
	cancels[0]()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, cancel := open()
		cancels = append(cancels, cancel)
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after closing a stream a new one is still %d", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDashboardPolicyAllowsTheBlobOriginForImagesOnly: a configured blob
// origin is added to img-src, and to nothing else.
func TestDashboardPolicyAllowsTheBlobOriginForImagesOnly(t *testing.T) {
	t.Parallel()
	if got := dashboardCSP(""); !strings.Contains(got, "img-src 'self';") {
		t.Errorf("policy without a blob origin %q, want img-src 'self' alone", got)
	}
	got := dashboardCSP("https://shots.s3.eu-west-1.amazonaws.com")
	if !strings.Contains(got, "; img-src 'self' https://shots.s3.eu-west-1.amazonaws.com;") {
		t.Errorf("policy %q lacks the blob origin in img-src", got)
	}
	if n := strings.Count(got, "amazonaws"); n != 1 {
		t.Errorf("policy %q names the blob origin %d times, want once (img-src)", got, n)
	}
}
