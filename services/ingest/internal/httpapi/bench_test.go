package httpapi

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkGatewayUpload is the gateway's own cost of a ~10 KB Insight
// upload — authentication, validation, the idempotency record and the
// JetStream publish — in process, with nothing consuming behind it.
func BenchmarkGatewayUpload(b *testing.B) {
	bd := setup(b)
	body := uploadBodies()
	var n atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, "/api/v1/sync/insight", bytes.NewReader(body(n.Add(1))))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+bd.key)
			req.Header.Set("X-Organization-Id", bd.org)
			req.Header.Set("X-Project-Id", bd.project)
			w := httptest.NewRecorder()
			bd.router.ServeHTTP(w, req)
			if w.Code != http.StatusAccepted {
				b.Fatalf("%d %s", w.Code, w.Body)
			}
		}
	})
}

// uploadBodies returns a maker of unique ~10 KB Insight bodies (48 issues
// naming upload i). The body is rendered once and only the upload number is
// written into each copy: rendering it per upload (48 Sprintf) was a third
// of the allocations the benchmark counted, none of them the gateway's.
func uploadBodies() func(i int64) []byte {
	const mark = "@@@@@@@@" // the upload number, zero-padded to its width
	var issues []string
	for j := range 48 {
		issues = append(issues, fmt.Sprintf(`{"detector":"eslint","severity":"low","message":"no-unused-vars: 'someLongVariableName' is assigned a value but never used (upload %s, issue %d)","file":"packages/web/src/components/checkout/Step%02d.tsx","line":%d,"column":5}`, mark, j, j, 10+j))
	}
	tmpl := []byte(fmt.Sprintf(`{"organizationId":"acme","projectId":"web","timestamp":%q,"detectors":["eslint"],"totalIssues":48,"issuesBySeverity":{"critical":0,"high":0,"medium":0,"low":48},"issues":[%s]}`,
		time.Now().UTC().Add(-time.Minute).Format(time.RFC3339), strings.Join(issues, ",")))
	var at []int
	for i := bytes.Index(tmpl, []byte(mark)); i >= 0; {
		at = append(at, i)
		j := bytes.Index(tmpl[i+len(mark):], []byte(mark))
		if j < 0 {
			break
		}
		i += len(mark) + j
	}
	return func(i int64) []byte {
		out := bytes.Clone(tmpl)
		num := fmt.Appendf(make([]byte, 0, len(mark)), "%0*d", len(mark), i)
		for _, p := range at {
			copy(out[p:p+len(mark)], num)
		}
		return out
	}
}
