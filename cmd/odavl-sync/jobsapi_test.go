package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/odavl/sync/client"
)

type apiJob struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Status   string `json:"status"`
	Priority int    `json:"priority"`
	ParentID string `json:"parentId"`
	Progress int    `json:"progress"`
	Error    string `json:"error"`
	Output   json.RawMessage
}

func (s *served) job(t *testing.T, id string) apiJob {
	t.Helper()
	r := s.Do("GET", "/api/v1/sync/jobs/"+id, nil)
	var out struct {
		Status string `json:"status"`
		Job    apiJob `json:"job"`
	}
	if r.Status != http.StatusOK {
		return apiJob{}
	}
	r.JSON(t, &out)
	return out.Job
}

func (s *served) waitJob(t *testing.T, id, status string) apiJob {
	t.Helper()
	var j apiJob
	eventually(t, "job "+id+" "+status, func() bool { j = s.job(t, id); return j.Status == status })
	return j
}

func problemFields(t *testing.T, r apiResp) []string {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("answer %d is %s, want problem+json: %s", r.Status, ct, r.Body)
	}
	var p Problem
	r.JSON(t, &p)
	var fs []string
	for _, e := range p.Errors {
		fs = append(fs, e.Field)
	}
	return fs
}

// Problem is the problem+json answer as clients read it.
type Problem struct {
	Status int `json:"status"`
	Errors []struct {
		Field string `json:"field"`
	} `json:"errors"`
}

func TestJobsAPIEndToEnd(t *testing.T) {
	s := startServe(t, map[string]string{"JOBS_BACKOFF": "100ms,200ms,300ms"})

	// Bad input: 400 naming each bad field.
	r := s.Do("POST", "/api/v1/jobs", map[string]any{"type": "NOPE", "priority": "URGENT"})
	if fs := problemFields(t, r); r.Status != 400 || strings.Join(fs, ",") != "priority" {
		t.Fatalf("bad priority: %d %v %s", r.Status, fs, r.Body)
	}
	r = s.Do("POST", "/api/v1/jobs", map[string]any{"type": "NOPE"})
	if fs := problemFields(t, r); r.Status != 400 || strings.Join(fs, ",") != "type" {
		t.Fatalf("bad type: %d %v %s", r.Status, fs, r.Body)
	}
	r = s.Do("POST", "/api/v1/jobs", map[string]any{"type": "EMAIL_SEND", "payload": map[string]any{"to": []string{"not-an-address"}, "subject": ""}})
	if fs := problemFields(t, r); r.Status != 400 || strings.Join(fs, ",") != "payload.to[0],payload.subject,payload.text" {
		t.Fatalf("bad email: %d %v %s", r.Status, fs, r.Body)
	}
	r = s.Do("POST", "/api/v1/jobs", `{"type":"EMAIL_SEND","extra":1}`)
	if r.Status != 400 {
		t.Fatalf("unknown field: %d %s", r.Status, r.Body)
	}

	// An email job lands in the outbox.
	r = s.Do("POST", "/api/v1/jobs", map[string]any{"type": "EMAIL_SEND", "priority": "HIGH",
		"payload": map[string]any{"to": []string{"ada@example.com"}, "subject": "Weekly summary", "text": "All green."}})
	if r.Status != http.StatusAccepted {
		t.Fatalf("submit: %d %s", r.Status, r.Body)
	}
	var mail apiJob
	r.JSON(t, &mail)
	if mail.Priority != 10 || (mail.Status != "WAITING" && mail.Status != "ACTIVE" && mail.Status != "COMPLETED") {
		t.Fatalf("submitted job %+v", mail)
	}
	s.waitJob(t, mail.ID, "COMPLETED")
	eml, err := os.ReadFile(filepath.Join(s.Data, "outbox", mail.ID+".eml"))
	if err != nil || !strings.Contains(string(eml), "Subject: Weekly summary") || !strings.Contains(string(eml), "To: ada@example.com") {
		t.Fatalf("outbox mail: %v\n%s", err, eml)
	}

	// A bulk invitation fans out one mail per invitee and completes when they do.
	r = s.Do("POST", "/api/v1/jobs", map[string]any{"type": "BULK_INVITATION",
		"payload": map[string]any{"emails": []string{"a@example.com", "b@example.com", "c@example.com"}, "role": "viewer"}})
	if r.Status != http.StatusAccepted {
		t.Fatalf("submit invitation: %d %s", r.Status, r.Body)
	}
	var inv apiJob
	r.JSON(t, &inv)
	done := s.waitJob(t, inv.ID, "COMPLETED")
	if done.Progress != 100 {
		t.Fatalf("invitation progress %d", done.Progress)
	}
	var list struct {
		Items []apiJob `json:"items"`
		Total int64    `json:"total"`
		Stats struct {
			Total    int64            `json:"total"`
			ByStatus map[string]int64 `json:"byStatus"`
			ByType   map[string]int64 `json:"byType"`
		} `json:"stats"`
	}
	r = s.Do("GET", "/api/v1/sync/jobs?type=EMAIL_SEND&status=COMPLETED", nil)
	r.JSON(t, &list)
	children := 0
	for _, j := range list.Items {
		if j.ParentID == inv.ID {
			children++
			b, err := os.ReadFile(filepath.Join(s.Data, "outbox", j.ID+".eml"))
			if err != nil || !strings.Contains(string(b), "as viewer") {
				t.Fatalf("invitation mail %s: %v", j.ID, err)
			}
		}
	}
	if r.Status != 200 || list.Total != 4 || children != 3 {
		t.Fatalf("completed mails: %d total %d, %d children of the invitation: %s", r.Status, list.Total, children, r.Body)
	}
	if list.Stats.ByType["EMAIL_SEND"] != 4 || list.Stats.ByType["BULK_INVITATION"] != 1 || list.Stats.ByStatus["COMPLETED"] != 5 {
		t.Fatalf("stats %+v %s", list.Stats, r.Body)
	}
	r = s.Do("GET", "/api/v1/sync/jobs?status=SLEEPING&limit=0", nil)
	if fs := problemFields(t, r); r.Status != 400 || strings.Join(fs, ",") != "status,limit" {
		t.Fatalf("bad filters: %d %v", r.Status, fs)
	}

	// Actions: a finished job cannot be cancelled or retried; an unknown one is 404.
	if r = s.Do("POST", "/api/v1/sync/jobs", map[string]any{"action": "cancel", "jobId": mail.ID}); r.Status != http.StatusConflict {
		t.Fatalf("cancel of a completed job: %d %s", r.Status, r.Body)
	}
	if r = s.Do("POST", "/api/v1/sync/jobs", map[string]any{"action": "retry", "jobId": mail.ID}); r.Status != http.StatusConflict {
		t.Fatalf("retry of a completed job: %d %s", r.Status, r.Body)
	}
	if r = s.Do("POST", "/api/v1/sync/jobs", map[string]any{"action": "retry", "jobId": "job_nope"}); r.Status != http.StatusNotFound {
		t.Fatalf("retry of an unknown job: %d %s", r.Status, r.Body)
	}
	if r = s.Do("POST", "/api/v1/sync/jobs", map[string]any{"action": "explode", "jobId": mail.ID}); r.Status != 400 {
		t.Fatalf("bad action: %d", r.Status)
	}

	// Pause: a job submitted now waits (PAUSED) and can be cancelled; resume runs the rest.
	if r = s.Do("POST", "/api/v1/sync/jobs/pause", nil); r.Status != 200 {
		t.Fatalf("pause: %d %s", r.Status, r.Body)
	}
	submit := func(subject string) apiJob {
		r := s.Do("POST", "/api/v1/jobs", map[string]any{"type": "EMAIL_SEND", "payload": map[string]any{"to": []string{"x@example.com"}, "subject": subject, "text": "."}})
		var j apiJob
		r.JSON(t, &j)
		return j
	}
	held, dropped := submit("held"), submit("dropped")
	if held.Status != "PAUSED" {
		t.Fatalf("job submitted while paused is %s", held.Status)
	}
	r = s.Do("POST", "/api/v1/sync/jobs", map[string]any{"action": "cancel", "jobId": dropped.ID})
	if r.Status != 200 || !strings.Contains(string(r.Body), `"CANCELLED"`) {
		t.Fatalf("cancel waiting: %d %s", r.Status, r.Body)
	}
	if r = s.Do("POST", "/api/v1/sync/jobs/resume", nil); r.Status != 200 {
		t.Fatalf("resume: %d", r.Status)
	}
	s.waitJob(t, held.ID, "COMPLETED")
	if _, err := os.Stat(filepath.Join(s.Data, "outbox", dropped.ID+".eml")); !os.IsNotExist(err) {
		t.Fatalf("the cancelled mail was sent: %v", err)
	}
	// A cancelled job can be retried.
	if r = s.Do("POST", "/api/v1/sync/jobs", map[string]any{"action": "retry", "jobId": dropped.ID}); r.Status != 200 {
		t.Fatalf("retry of a cancelled job: %d %s", r.Status, r.Body)
	}
	s.waitJob(t, dropped.ID, "COMPLETED")

	// Tenancy: another project's key sees none of it.
	other := s.createKey(t, "other-proj", "sync")
	if r = s.DoAs(other, s.Cred.OrganizationID, "other-proj", "GET", "/api/v1/sync/jobs/"+mail.ID, nil); r.Status != http.StatusNotFound {
		t.Fatalf("other project's GET: %d %s", r.Status, r.Body)
	}
	r = s.DoAs(other, s.Cred.OrganizationID, "other-proj", "GET", "/api/v1/sync/jobs", nil)
	r.JSON(t, &list)
	if list.Total != 0 {
		t.Fatalf("other project lists %d jobs", list.Total)
	}
	if r = s.DoAs(other, s.Cred.OrganizationID, "other-proj", "POST", "/api/v1/sync/jobs/pause", nil); r.Status != http.StatusForbidden {
		t.Fatalf("pause with a sync key: %d", r.Status)
	}
	if r = s.DoAs(other, s.Cred.OrganizationID, "other-proj", "POST", "/api/v1/sync/jobs", map[string]any{"action": "cancel", "jobId": held.ID}); r.Status != http.StatusNotFound {
		t.Fatalf("cancel of another project's job: %d", r.Status)
	}
	if r = s.DoAs(other, s.Cred.OrganizationID, "other-proj", "GET", "/api/v1/sync/jobs?projectId="+s.Cred.ProjectID, nil); r.Status != http.StatusForbidden {
		t.Fatalf("listing another project with a sync key: %d", r.Status)
	}

	// Uploads still have their receipt on the same route.
	r = s.Do("POST", "/api/v1/sync/insight", insightBody(s.Cred.OrganizationID, s.Cred.ProjectID, 1))
	var rc struct {
		JobID string `json:"jobId"`
		ID    string `json:"id"`
	}
	r.JSON(t, &rc)
	id := rc.JobID
	if id == "" {
		id = rc.ID
	}
	eventually(t, "upload stored", func() bool {
		r := s.Do("GET", "/api/v1/sync/jobs/"+id, nil)
		return strings.Contains(string(r.Body), `"state":"stored"`)
	})

	// Cleanup: nothing is a week old; with 0 days every completed job goes, the others stay.
	r = s.Do("DELETE", "/api/v1/sync/jobs?daysToKeep=7", nil)
	if r.Status != 200 || !strings.Contains(string(r.Body), `"deleted":0`) {
		t.Fatalf("clear 7 days: %d %s", r.Status, r.Body)
	}
	r = s.Do("DELETE", "/api/v1/sync/jobs?daysToKeep=0", nil)
	var cleared struct{ Deleted int64 }
	r.JSON(t, &cleared)
	if cleared.Deleted < 7 {
		t.Fatalf("clear 0 days deleted %d: %s", cleared.Deleted, r.Body)
	}
	if r = s.Do("DELETE", "/api/v1/sync/jobs?daysToKeep=-1", nil); r.Status != 400 {
		t.Fatalf("bad daysToKeep: %d", r.Status)
	}
	r = s.Do("GET", "/api/v1/sync/jobs", nil)
	r.JSON(t, &list)
	if list.Stats.ByStatus["COMPLETED"] != 0 {
		t.Fatalf("after clear: %+v", list.Stats)
	}
}

func (s *served) createKey(t *testing.T, project, scope string) string {
	t.Helper()
	r := s.Do("POST", "/api/v1/admin/keys", map[string]any{"organizationId": s.Cred.OrganizationID, "projectId": project, "name": "t-" + project, "scopes": []string{scope}})
	if r.Status != http.StatusCreated {
		t.Fatalf("creating key: %d %s", r.Status, r.Body)
	}
	var out struct {
		Key string `json:"key"`
	}
	r.JSON(t, &out)
	return out.Key
}

func TestExportAndReportJobsGoThroughStorage(t *testing.T) {
	s := startServe(t, nil)
	var ids []string
	for i := range 3 {
		r := s.Do("POST", "/api/v1/sync/insight", insightBody(s.Cred.OrganizationID, s.Cred.ProjectID, i))
		var rc struct {
			JobID string `json:"jobId"`
		}
		r.JSON(t, &rc)
		ids = append(ids, rc.JobID)
	}
	for _, id := range ids {
		eventually(t, "upload stored", func() bool {
			return strings.Contains(string(s.Do("GET", "/api/v1/sync/jobs/"+id, nil).Body), `"state":"stored"`)
		})
	}
	fetch := func(u string) string {
		if strings.HasPrefix(u, "/") {
			u = s.Cred.APIURL + u
		}
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
		}
		return string(b)
	}
	output := func(id string) map[string]json.RawMessage {
		j := s.waitJob(t, id, "COMPLETED")
		var out map[string]json.RawMessage
		if err := json.Unmarshal(j.Output, &out); err != nil {
			t.Fatalf("output of %s: %v %s", id, err, j.Output)
		}
		return out
	}

	r := s.Do("POST", "/api/v1/jobs", map[string]any{"type": "DATA_EXPORT", "payload": map[string]any{"products": []string{"insight"}}})
	if r.Status != http.StatusAccepted {
		t.Fatalf("export: %d %s", r.Status, r.Body)
	}
	var ex apiJob
	r.JSON(t, &ex)
	out := output(ex.ID)
	var files []struct {
		Name        string `json:"name"`
		Rows        int    `json:"rows"`
		DownloadURL string `json:"downloadUrl"`
	}
	if err := json.Unmarshal(out["files"], &files); err != nil || len(files) != 2 {
		t.Fatalf("export files: %v %s", err, out["files"])
	}
	nd := fetch(files[0].DownloadURL)
	if lines := strings.Split(strings.TrimSpace(nd), "\n"); len(lines) != 3 || !strings.Contains(nd, "eval is evil #2") {
		t.Fatalf("ndjson export (%d lines):\n%s", len(lines), nd)
	}
	csvText := fetch(files[1].DownloadURL)
	rows := strings.Split(strings.TrimSpace(csvText), "\n")
	if len(rows) != 4 || !strings.HasPrefix(rows[0], "product,id,receivedAt,timestamp,totalIssues,issuesBySeverity.critical") ||
		!strings.Contains(rows[1], "insight,") || !strings.Contains(rows[1], ",3,1,1,1,0,eslint;typescript") {
		t.Fatalf("csv export:\n%s", csvText)
	}

	r = s.Do("POST", "/api/v1/jobs", map[string]any{"type": "REPORT_GENERATION", "priority": "CRITICAL", "payload": map[string]any{"title": "Weekly <quality>"}})
	var rp apiJob
	r.JSON(t, &rp)
	out = output(rp.ID)
	var url string
	_ = json.Unmarshal(out["downloadUrl"], &url)
	page := fetch(url)
	for _, want := range []string{"<title>Weekly &lt;quality&gt;</title>", `<b id="insight-count">3</b>`, "3 critical", s.Cred.ProjectID} {
		if !strings.Contains(page, want) {
			t.Fatalf("report lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, "<script") || strings.Contains(page, "src=\"http") {
		t.Fatal("the report is not self-contained")
	}
}

func TestJobsThroughTheGoClient(t *testing.T) {
	s := startServe(t, nil)
	c := s.Cred
	cl := newClient(t, c)
	ctx := context.Background()
	if st, err := cl.PauseQueue(ctx); err != nil || !st.Paused {
		t.Fatalf("pause: %+v %v", st, err)
	}
	j, err := cl.SubmitJob(ctx, client.SubmitJobRequest{Type: "EMAIL_SEND", Priority: 1,
		Payload: json.RawMessage(`{"to":["grace@example.com"],"subject":"hi","text":"hello"}`)})
	if err != nil || j.Status != "PAUSED" || j.Priority != 1 {
		t.Fatalf("submit while paused: %+v %v", j, err)
	}
	if st, err := cl.ResumeQueue(ctx); err != nil || st.Paused {
		t.Fatalf("resume: %+v %v", st, err)
	}
	s.waitJob(t, j.ID, "COMPLETED")
	r, err := cl.ClearJobs(ctx, 0)
	if err != nil || r.Deleted != 1 {
		t.Fatalf("clear: %+v %v", r, err)
	}
}

// TestJobsListByCreationTime: from and to select the jobs created in
// [from, to), live ones (a delayed job) and stored ones (a completed upload's) alike.
func TestJobsListByCreationTime(t *testing.T) {
	s := startServe(t, nil)
	c := s.Cred
	s.upload(t, "insight", insightBody(c.OrganizationID, c.ProjectID, 1))
	s.submitJob(t, map[string]any{
		"type": "EMAIL_SEND", "runAt": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
		"payload": map[string]any{"to": []string{"dev@example.com"}, "subject": "later", "text": "by creation time"},
	}, "DELAYED")
	eventually(t, "the upload's job completed", func() bool {
		var l struct{ Total int64 }
		s.Do(http.MethodGet, "/api/v1/sync/jobs?status=COMPLETED", nil).JSON(t, &l)
		return l.Total == 1
	})
	at := func(d time.Duration) string { return url.QueryEscape(time.Now().Add(d).UTC().Format(time.RFC3339)) }
	for _, tc := range []struct {
		query string
		want  int64
	}{
		{"", 2},
		{"from=" + at(-time.Hour) + "&to=" + at(time.Hour), 2},
		{"from=" + at(-time.Hour) + "&type=EMAIL_SEND", 1},
		{"from=" + at(time.Hour), 0},
		{"to=" + at(-time.Hour), 0},
		{"to=" + at(-time.Hour) + "&status=DELAYED", 0},
	} {
		var l struct {
			Total int64
			Items []apiJob
		}
		r := s.Do(http.MethodGet, "/api/v1/sync/jobs?"+tc.query, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("?%s: %d %s", tc.query, r.Status, r.Body)
		}
		r.JSON(t, &l)
		if l.Total != tc.want || int64(len(l.Items)) != tc.want {
			t.Errorf("?%s: total %d with %d items, want %d", tc.query, l.Total, len(l.Items), tc.want)
		}
	}
	r := s.Do(http.MethodGet, "/api/v1/sync/jobs?from=yesterday", nil)
	if r.Status != http.StatusBadRequest || !slices.Equal(problemFields(t, r), []string{"from"}) {
		t.Errorf("from=yesterday: %d %s, want 400 naming from", r.Status, r.Body)
	}
}
