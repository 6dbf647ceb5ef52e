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
	var n atomic.Int64
	body := func(i int64) []byte {
		var issues []string
		for j := range 48 {
			issues = append(issues, fmt.Sprintf(`{"detector":"eslint","severity":"low","message":"no-unused-vars: 'someLongVariableName' is assigned a value but never used (upload %d, issue %d)","file":"packages/web/src/components/checkout/Step%02d.tsx","line":%d,"column":5}`, i, j, j, 10+j))
		}
		return []byte(fmt.Sprintf(`{"organizationId":"acme","projectId":"web","timestamp":%q,"detectors":["eslint"],"totalIssues":48,"issuesBySeverity":{"critical":0,"high":0,"medium":0,"low":48},"issues":[%s]}`,
			time.Now().UTC().Add(-time.Minute).Format(time.RFC3339), strings.Join(issues, ",")))
	}
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
