package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/odavl/sync/libs/events"
)

// The upload fuzz targets send arbitrary bodies (and Idempotency-Key headers)
// through the real router, JetStream and store, and fail on any 5xx — a
// handler panic is answered 500 by the recover middleware — or on an answer
// that is not 202 or a problem+json 4xx. CI runs each for a few seconds
// (make fuzz FUZZTIME=8s).

func FuzzUploadInsight(f *testing.F)   { fuzzUpload(f, events.Insight) }
func FuzzUploadAutopilot(f *testing.F) { fuzzUpload(f, events.Autopilot) }
func FuzzUploadGuardian(f *testing.F)  { fuzzUpload(f, events.Guardian) }

func fuzzUpload(f *testing.F, p events.Product) {
	b := setup(f)
	for _, seed := range seeds(f, p) {
		f.Add(seed, "")
		f.Add(seed, "ci-build-1")
	}
	f.Add([]byte(`{}`), "")
	f.Add([]byte(`[]`), "")
	f.Add([]byte(`{"timestamp":"9999-12-31T23:59:59Z"}`), "k")
	f.Add([]byte(`{"issues":[{"line":1e400}]}`), "")
	f.Add([]byte(`{"totalIssues":-9223372036854775808,"issuesBySeverity":{"critical":9223372036854775807,"high":1,"medium":0,"low":0}}`), "")
	f.Add([]byte("\xff\xfe{"), "\x00")
	f.Fuzz(func(t *testing.T, body []byte, key string) {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/sync/"+string(p), bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+b.key)
		req.Header.Set("X-Organization-Id", b.org)
		req.Header.Set("X-Project-Id", b.project)
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		w := httptest.NewRecorder()
		b.router.ServeHTTP(w, req)
		switch {
		case w.Code >= 500:
			t.Fatalf("%d for %q: %s", w.Code, body, w.Body)
		case w.Code == http.StatusAccepted:
		case w.Code >= 400 && strings.HasPrefix(w.Header().Get("Content-Type"), "application/problem+json"):
			var pb Problem
			if err := json.Unmarshal(w.Body.Bytes(), &pb); err != nil || pb.Status != w.Code {
				t.Fatalf("%d with a bad problem body %q: %v", w.Code, w.Body, err)
			}
		default:
			t.Fatalf("unexpected %d %s for %q: %s", w.Code, w.Header().Get("Content-Type"), body, w.Body)
		}
	})
}

// seeds are the document's upload examples for p, for the tenant of the
// bundle, whole and cut.
func seeds(tb testing.TB, p events.Product) [][]byte {
	doc, err := OpenAPIDocument(OpenAPILimits{MaxBodyBytes: testMaxBody})
	if err != nil {
		tb.Fatal(err)
	}
	var d map[string]any
	_ = json.Unmarshal(doc, &d)
	content := asMap(asMap(asMap(asMap(asMap(d["paths"])["/api/v1/sync/"+string(p)])["post"])["requestBody"])["content"])
	var out [][]byte
	for _, e := range asMap(asMap(content["application/json"])["examples"]) {
		v, _ := json.Marshal(asMap(e)["value"])
		out = append(out, v, v[:len(v)/2])
	}
	if len(out) == 0 {
		tb.Fatalf("no %s example to seed from", p)
	}
	return out
}
