package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestServeMetricsShowTheJobQueue: the one process's /metrics carries the
// job queue's figures by type and priority beside the gateway's, so that an
// operator of `serve` sees uploads processed as job runs.
func TestServeMetricsShowTheJobQueue(t *testing.T) {
	t.Parallel()
	s := startServe(t, nil)
	s.upload(t, "insight", insightBody(s.Cred.OrganizationID, s.Cred.ProjectID, 1))
	s.waitListed(t, "insight", 1)
	scrape := func() string {
		resp, err := http.Get(metricsURLOf(t, s))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	eventually(t, "the upload's job run in /metrics", func() bool {
		m := scrape()
		return strings.Contains(m, `odavl_jobs_runs_total{outcome="completed",type="INSIGHT_ANALYSIS"} 1`) &&
			strings.Contains(m, `odavl_jobs_consumer_pending{priority="CRITICAL"} 0`) &&
			strings.Contains(m, `odavl_http_requests_total{`)
	})
}
