package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// hostileInsight is an Insight upload of the tenant whose issues list holds
// n copies of item.
func hostileInsight(org, project string, n int, item string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"organizationId":%q,"projectId":%q,"timestamp":"2026-12-01T00:00:00Z","detectors":["eslint"],"totalIssues":0,`+
		`"issuesBySeverity":{"critical":0,"high":0,"medium":0,"low":0},"issues":[`, org, project)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(item)
	}
	b.WriteString("]}")
	return b.Bytes()
}

// procStatus reads one kB figure of /proc/self/status (VmRSS, VmHWM).
func procStatus(t *testing.T, name string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Skipf("no %s in /proc/self/status", name)
	return 0
}

// An invalid upload's answer lists the first 100 bad fields and counts the
// rest; bodies made of many bad items, sent concurrently, do not take the
// server's memory with them. (A 300 KB body of 100,000 empty issues used to
// answer 17.6 MB and 16 of them at once took 4.1 GB.)
func TestInvalidUploadsDoNotBlowUpMemory(t *testing.T) {
	s := startServe(t, map[string]string{"RATE_LIMIT_RPS": "0"})
	c := s.Cred
	empty := hostileInsight(c.OrganizationID, c.ProjectID, 100_000, `{}`)
	bad := hostileInsight(c.OrganizationID, c.ProjectID, 40_000, `{"detector":"","severity":"bad","message":"","file":"x","line":-1,"column":-1,"extra":1,"more":2}`)

	for name, body := range map[string][]byte{"100,000 empty issues": empty, "40,000 bad issues": bad} {
		r := s.Do(http.MethodPost, "/api/v1/sync/insight", body)
		p := checkProblem(t, r, http.StatusBadRequest)
		if len(p.Errors) != 100 {
			t.Errorf("%s: %d fields listed, want the first 100", name, len(p.Errors))
		}
		if !strings.Contains(p.Detail, "the first 100 are listed") {
			t.Errorf("%s: detail %q does not say the list is cut", name, p.Detail)
		}
		if msg := fields(p)["issues"]; !strings.Contains(msg, "at most 10000") {
			t.Errorf("%s: issues: %q, want the list's bound named", name, msg)
		}
		if len(r.Body) > 64<<10 {
			t.Errorf("%s: a %d-byte answer", name, len(r.Body))
		}
	}

	// The peak resident memory while 16 of the first and twice 32 of the
	// second are sent at once (the process's high-water mark, reset first).
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Skipf("cannot reset the peak RSS: %v", err)
	}
	before := procStatus(t, "VmRSS")
	send := func(n int, body []byte) {
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest(http.MethodPost, c.APIURL+"/api/v1/sync/insight", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+c.APIKey)
				req.Header.Set("X-Organization-Id", c.OrganizationID)
				req.Header.Set("X-Project-Id", c.ProjectID)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Errorf("upload: %v", err)
					return
				}
				defer resp.Body.Close()
				var p problemBody
				if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || resp.StatusCode != http.StatusBadRequest {
					t.Errorf("upload: %d %v", resp.StatusCode, err)
				}
			}()
		}
		wg.Wait()
	}
	send(16, empty)
	send(32, bad)
	send(32, bad)
	peak := procStatus(t, "VmHWM")
	t.Logf("RSS before %d MB, peak %d MB", before>>20, peak>>20)
	if grew := peak - before; grew > 600<<20 {
		t.Errorf("the peak RSS grew by %d MB for 80 invalid uploads at once (bodies %d KB and %d KB)", grew>>20, len(empty)>>10, len(bad)>>10)
	}
	if r := s.Do(http.MethodPost, "/api/v1/sync/insight", insightBody(c.OrganizationID, c.ProjectID, 1)); r.Status != http.StatusAccepted {
		t.Fatalf("a valid upload afterwards: %d %s", r.Status, r.Body)
	}
}
