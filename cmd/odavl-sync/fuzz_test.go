package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/odavl/sync/libs/events"
)

// The upload fuzz targets send arbitrary bodies (and Idempotency-Key headers)
// to a real serve — router, validation, idempotency records in JetStream,
// the storage service for Guardian screenshot ids, FerretDB behind the jobs
// service — and fail on any 5xx (a handler panic is answered 500) or an
// answer that is neither 202 nor a problem+json 4xx. CI runs each for a few
// seconds: make fuzz FUZZTIME=8s.

func FuzzUploadInsight(f *testing.F)   { fuzzUpload(f, events.Insight) }
func FuzzUploadAutopilot(f *testing.F) { fuzzUpload(f, events.Autopilot) }
func FuzzUploadGuardian(f *testing.F)  { fuzzUpload(f, events.Guardian) }

func fuzzUpload(f *testing.F, p events.Product) {
	s := startServe(f, map[string]string{"RATE_LIMIT_RPS": "0"}) // every input reaches validation
	c := s.Cred
	for _, seed := range fuzzSeeds(f, s, p) {
		f.Add(seed, "")
		f.Add(seed, "ci-build-1")
		f.Add(seed[:len(seed)/2], "")
	}
	f.Add([]byte(`{}`), "")
	f.Add([]byte(`[]`), "")
	f.Add([]byte(`{"timestamp":"9999-12-31T23:59:59Z"}`), "k")
	f.Add([]byte(`{"issues":[{"line":1e400}]}`), "")
	f.Add([]byte(`{"totalIssues":-9223372036854775808,"issuesBySeverity":{"critical":9223372036854775807,"high":1,"medium":0,"low":0}}`), "")
	f.Add([]byte(`{"screenshots":["file_x","https://a"],"phases":{"act":{"metrics":{"a":1e308}}}}`), "")
	f.Add([]byte("\xff\xfe{"), "\x01")
	hc := &http.Client{}
	f.Fuzz(func(t *testing.T, body []byte, key string) {
		req, err := http.NewRequest(http.MethodPost, c.APIURL+"/api/v1/sync/"+string(p), bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+c.APIKey)
		req.Header.Set("X-Organization-Id", c.OrganizationID)
		req.Header.Set("X-Project-Id", c.ProjectID)
		if key != "" {
			req.Header["Idempotency-Key"] = []string{key} // sent as is; net/http refuses what no client could send
		}
		resp, err := hc.Do(req)
		if err != nil {
			return // an invalid header value never leaves the client
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		switch {
		case resp.StatusCode >= 500:
			t.Fatalf("%d for %q (key %q): %s", resp.StatusCode, body, key, b)
		case resp.StatusCode == http.StatusAccepted:
		case resp.StatusCode >= 400 && mt == "application/problem+json":
			var pb struct{ Status int }
			if err := json.Unmarshal(b, &pb); err != nil || pb.Status != resp.StatusCode {
				t.Fatalf("%d with a bad problem body %q: %v", resp.StatusCode, b, err)
			}
		default:
			t.Fatalf("unexpected %d %s for %q: %s", resp.StatusCode, mt, body, b)
		}
	})
}

// fuzzSeeds are the served document's upload examples for p, moved to the
// serve's tenant.
func fuzzSeeds(tb testing.TB, s *served, p events.Product) [][]byte {
	tb.Helper()
	var doc map[string]any
	s.DoAs("", "", "", http.MethodGet, "/api/v1/openapi.json", nil).JSON(tb, &doc)
	at := func(m any, k string) map[string]any { v, _ := m.(map[string]any)[k].(map[string]any); return v }
	content := at(at(at(at(at(doc, "paths"), "/api/v1/sync/"+string(p)), "post"), "requestBody"), "content")
	var out [][]byte
	for _, e := range at(at(content, "application/json"), "examples") {
		v := e.(map[string]any)["value"].(map[string]any)
		v["organizationId"], v["projectId"] = s.Cred.OrganizationID, s.Cred.ProjectID
		b, _ := json.Marshal(v)
		out = append(out, b)
	}
	if len(out) == 0 {
		tb.Fatalf("no %s example to seed from", p)
	}
	return out
}

// FuzzRoutes sends arbitrary path parameters, query strings, one extra
// header and bodies to every operation of the served OpenAPI document, with
// the operator key, and fails on any 5xx, on a 4xx that is not a problem,
// and on a server that is not healthy afterwards.
func FuzzRoutes(f *testing.F) {
	s := startServe(f, map[string]string{"RATE_LIMIT_RPS": "0", "BODY_TIMEOUT": "1s"})
	c := s.Cred
	ops := openAPIOperations(f, s)
	for i := range ops {
		f.Add(uint8(i), "file_0123", "limit=5&offset=1", "Idempotency-Key", "k1", []byte(`{}`))
		f.Add(uint8(i), strings.Repeat("x", 300), "status=%ff&limit=-1&from=x", "X-Project-Id", "other", []byte(`{"a":[`))
	}
	f.Add(uint8(0), "a/../../b", "expiresIn=99999999999999999999", "Range", "bytes=9-1", []byte(nil))
	f.Add(uint8(1), "%00", "fileId=..%2f..", "Content-Type", "text/plain", []byte("\x00"))
	hc := &http.Client{
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	healthy := func(t *testing.T, after string) {
		resp, err := hc.Get(c.APIURL + "/healthz")
		if err != nil {
			t.Fatalf("after %s: /healthz: %v", after, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("after %s: /healthz %d", after, resp.StatusCode)
		}
	}
	f.Fuzz(func(t *testing.T, route uint8, param, query, hname, hvalue string, body []byte) {
		op := ops[int(route)%len(ops)]
		path := pathParamRE.ReplaceAllLiteralString(op.path, url.PathEscape(param))
		u := c.APIURL + path
		if query != "" {
			u += "?" + query
		}
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		ctx := context.Background()
		stream := strings.HasSuffix(op.path, "/events/stream")
		if stream {
			// A stream stays open until the client leaves: its first
			// answer is what is checked.
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
		}
		req, err := http.NewRequestWithContext(ctx, op.method, u, rd)
		if err != nil {
			return // no client could send it
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+c.APIKey)
		req.Header.Set("X-Organization-Id", c.OrganizationID)
		req.Header.Set("X-Project-Id", c.ProjectID)
		if hname != "" {
			req.Header[hname] = []string{hvalue}
		}
		resp, err := hc.Do(req)
		if err != nil {
			healthy(t, op.method+" "+u+" ("+err.Error()+")")
			return // refused by the client or the connection, not answered
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		switch {
		case resp.StatusCode >= 500:
			t.Fatalf("%s %s (%s: %q, %q): %d %s", op.method, u, hname, hvalue, body, resp.StatusCode, b)
		case resp.StatusCode >= 400 && mt != "application/problem+json":
			t.Fatalf("%s %s: %d as %s, not a problem: %s", op.method, u, resp.StatusCode, mt, b)
		}
		healthy(t, op.method+" "+u)
	})
}

var pathParamRE = regexp.MustCompile(`\{[^}]+\}`)

type operation struct{ method, path string }

// openAPIOperations lists the served document's operations.
func openAPIOperations(tb testing.TB, s *served) []operation {
	tb.Helper()
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	s.DoAs("", "", "", http.MethodGet, "/api/v1/openapi.json", nil).JSON(tb, &doc)
	var ops []operation
	for p, item := range doc.Paths {
		for m := range item {
			switch m {
			case "get", "put", "post", "delete", "patch", "head":
				ops = append(ops, operation{strings.ToUpper(m), p})
			}
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].path+ops[i].method < ops[j].path+ops[j].method })
	if len(ops) < 20 {
		tb.Fatalf("only %d operations in the document", len(ops))
	}
	return ops
}
