package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/odavl/sync/client/cli"
)

func checkProblem(t *testing.T, r apiResp, status int) problemBody {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Errorf("content type %q, want application/problem+json", ct)
	}
	var p problemBody
	r.JSON(t, &p)
	if p.Status != status || p.Type == "" || p.Title == "" || p.Detail == "" {
		t.Errorf("problem body incomplete: %s", r.Body)
	}
	return p
}

func fields(p problemBody) map[string]string {
	m := map[string]string{}
	for _, e := range p.Errors {
		m[e.Field] = e.Message
	}
	return m
}

func TestServeRejectsWithProblems(t *testing.T) {
	s := startServe(t, nil)
	c := s.Cred
	good := insightBody(c.OrganizationID, c.ProjectID, 1)

	t.Run("no key is 401", func(t *testing.T) {
		checkProblem(t, s.DoAs("", c.OrganizationID, c.ProjectID, http.MethodPost, "/api/v1/sync/insight", good), http.StatusUnauthorized)
	})
	t.Run("unknown key is 401", func(t *testing.T) {
		checkProblem(t, s.DoAs("odavl_nope", c.OrganizationID, c.ProjectID, http.MethodGet, "/api/v1/sync/insight", nil), http.StatusUnauthorized)
	})
	t.Run("another tenant is 403", func(t *testing.T) {
		checkProblem(t, s.DoAs(c.APIKey, "other-org", c.ProjectID, http.MethodGet, "/api/v1/sync/insight", nil), http.StatusForbidden)
	})
	t.Run("missing tenant headers are 400", func(t *testing.T) {
		p := checkProblem(t, s.DoAs(c.APIKey, "", "bad project!", http.MethodGet, "/api/v1/sync/insight", nil), http.StatusBadRequest)
		f := fields(p)
		if f["X-Organization-Id"] == "" || f["X-Project-Id"] == "" {
			t.Errorf("fields %v, want both headers named", f)
		}
	})
	t.Run("invalid body names every bad field", func(t *testing.T) {
		bad := insightBody(c.OrganizationID, c.ProjectID, 2)
		delete(bad, "detectors")
		bad["totalIssues"] = -1
		bad["issues"].([]map[string]any)[0]["severity"] = "urgent"
		bad["unexpected"] = true
		p := checkProblem(t, s.Do(http.MethodPost, "/api/v1/sync/insight", bad), http.StatusBadRequest)
		f := fields(p)
		for _, want := range []string{"detectors", "totalIssues", "issues[0].severity", "unexpected"} {
			if f[want] == "" {
				t.Errorf("field %s not named; got %v", want, f)
			}
		}
	})
	t.Run("inconsistent totals are 400", func(t *testing.T) {
		bad := insightBody(c.OrganizationID, c.ProjectID, 3)
		bad["totalIssues"] = 7
		p := checkProblem(t, s.Do(http.MethodPost, "/api/v1/sync/insight", bad), http.StatusBadRequest)
		if fields(p)["totalIssues"] == "" {
			t.Errorf("totalIssues not named: %+v", p)
		}
	})
	t.Run("wrong content type is 415", func(t *testing.T) {
		checkProblem(t, s.Do(http.MethodPost, "/api/v1/sync/insight", "a=b", "Content-Type", "application/x-www-form-urlencoded"), http.StatusUnsupportedMediaType)
	})
	t.Run("oversized body is 413", func(t *testing.T) {
		big := bytes.Repeat([]byte(" "), 5<<20)
		checkProblem(t, s.Do(http.MethodPost, "/api/v1/sync/insight", big), http.StatusRequestEntityTooLarge)
	})
	t.Run("not JSON is 400", func(t *testing.T) {
		checkProblem(t, s.Do(http.MethodPost, "/api/v1/sync/insight", "{"), http.StatusBadRequest)
	})
}

func TestKeysCreate(t *testing.T) {
	s := startServe(t, nil)
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"keys", "create", "--org", "acme", "--project", "web", "--credentials", filepath.Join(s.Data, credentialsFile)},
		func(string) string { return "" }, strings.NewReader(""), &out, &errOut)
	if code != 0 {
		t.Fatalf("keys create exited %d: %s", code, errOut.String())
	}
	key := strings.TrimSpace(out.String())
	if !strings.HasPrefix(key, "odavl_") || strings.Contains(key, "\n") {
		t.Fatalf("stdout %q, want the key alone", out.String())
	}
	r := s.DoAs(key, "acme", "web", http.MethodPost, "/api/v1/sync/insight", insightBody("acme", "web", 1))
	if r.Status != http.StatusAccepted {
		t.Fatalf("upload with the new key: %d %s", r.Status, r.Body)
	}
	checkProblem(t, s.DoAs(key, "acme", "other", http.MethodGet, "/api/v1/sync/insight", nil), http.StatusForbidden)
	checkProblem(t, s.DoAs(key, c(s).OrganizationID, c(s).ProjectID, http.MethodGet, "/api/v1/sync/insight", nil), http.StatusForbidden)
	// A sync key cannot create keys.
	checkProblem(t, s.DoAs(key, "acme", "web", http.MethodPost, "/api/v1/admin/keys", map[string]any{"organizationId": "x", "projectId": "y"}), http.StatusForbidden)
	code = run(context.Background(), []string{"keys", "create", "--org", "bad org", "--project", "web", "--credentials", filepath.Join(s.Data, credentialsFile)},
		func(string) string { return "" }, strings.NewReader(""), &out, &errOut)
	if code != cli.ExitRejected {
		t.Errorf("bad org id: exit %d, want %d", code, cli.ExitRejected)
	}
}

func c(s *served) credentials { return s.Cred }

func TestRateLimitAnswers429WithRetryAfter(t *testing.T) {
	s := startServe(t, map[string]string{"RATE_LIMIT_RPS": "1", "RATE_LIMIT_BURST": "3"})
	var last apiResp
	for i := 0; i < 6; i++ {
		last = s.Do(http.MethodGet, "/api/v1/sync/insight", nil)
		if last.Status == http.StatusTooManyRequests {
			break
		}
	}
	checkProblem(t, last, http.StatusTooManyRequests)
	if ra := last.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After %q, want seconds", ra)
	}
}

// A deployment that never ran serve starts with the admin key its operator
// chose (BOOTSTRAP_ADMIN_KEY, e.g. from a Kubernetes Secret).
func TestBootstrapAdminKey(t *testing.T) {
	const key = "odavl_operator-chosen-key-0123456789abcdef"
	s := startServe(t, map[string]string{"BOOTSTRAP_ADMIN_KEY": key, "BOOTSTRAP_ORGANIZATION_ID": "acme", "BOOTSTRAP_PROJECT_ID": "ops"})
	r := s.DoAs(key, "acme", "ops", http.MethodPost, "/api/v1/admin/keys", map[string]any{"organizationId": "acme", "projectId": "web"})
	if r.Status != http.StatusCreated {
		t.Fatalf("creating a key with the bootstrap key: %d %s", r.Status, r.Body)
	}
	s2 := s.Restart() // ensured again: no duplicate, still valid
	if r := s2.DoAs(key, "acme", "ops", http.MethodGet, "/api/v1/sync/insight", nil); r.Status != http.StatusOK {
		t.Fatalf("after restart: %d %s", r.Status, r.Body)
	}
}

func TestBootstrapAdminKeyTooShortIsAUsageError(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"serve", "--data", t.TempDir(), "--addr", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0"},
		func(k string) string { return map[string]string{"BOOTSTRAP_ADMIN_KEY": "short"}[k] }, strings.NewReader(""), &out, &errOut)
	if code != cli.ExitUsage || !strings.Contains(errOut.String(), "BOOTSTRAP_ADMIN_KEY") {
		t.Fatalf("exit %d, stderr %q; want %d naming BOOTSTRAP_ADMIN_KEY", code, errOut.String(), cli.ExitUsage)
	}
}

// An organization's admin key creates keys for its own organization only: with
// another organization's admin key, no key of the victim's organization (nor
// of a new one) is made. Only the deployment's operator key, serve's own,
// creates keys for any organization, and no request can grant that scope.
func TestAdminKeyCreatesKeysOnlyForItsOwnOrganization(t *testing.T) {
	s := startServe(t, nil)
	victim := s.Cred
	r := s.Do(http.MethodPost, "/api/v1/admin/keys", map[string]any{"organizationId": "orgB", "projectId": "b1", "scopes": []string{"admin", "sync"}})
	if r.Status != http.StatusCreated {
		t.Fatalf("the operator creating orgB's admin key: %d %s", r.Status, r.Body)
	}
	var b struct{ Key string }
	r.JSON(t, &b)

	for _, org := range []string{victim.OrganizationID, "orgA"} {
		for _, scopes := range [][]string{{"admin"}, {"sync"}, nil} {
			r := s.DoAs(b.Key, "orgB", "b1", http.MethodPost, "/api/v1/admin/keys", map[string]any{"organizationId": org, "projectId": victim.ProjectID, "scopes": scopes})
			checkProblem(t, r, http.StatusForbidden)
			if strings.Contains(string(r.Body), "odavl_") {
				t.Errorf("a refused request for %s answered a key: %s", org, r.Body)
			}
		}
	}
	// Naming the victim in the tenant headers does not help either.
	checkProblem(t, s.DoAs(b.Key, victim.OrganizationID, victim.ProjectID, http.MethodPost, "/api/v1/admin/keys",
		map[string]any{"organizationId": victim.OrganizationID, "projectId": victim.ProjectID, "scopes": []string{"admin"}}), http.StatusForbidden)

	// Its own organization, another project: allowed, and the key works there.
	r = s.DoAs(b.Key, "orgB", "b1", http.MethodPost, "/api/v1/admin/keys", map[string]any{"organizationId": "orgB", "projectId": "b2", "scopes": []string{"sync"}})
	if r.Status != http.StatusCreated {
		t.Fatalf("orgB's admin creating a key for its project b2: %d %s", r.Status, r.Body)
	}
	var b2 struct{ Key string }
	r.JSON(t, &b2)
	if r := s.DoAs(b2.Key, "orgB", "b2", http.MethodGet, "/api/v1/sync/insight", nil); r.Status != http.StatusOK {
		t.Errorf("the new orgB key: %d %s", r.Status, r.Body)
	}
	checkProblem(t, s.DoAs(b2.Key, victim.OrganizationID, victim.ProjectID, http.MethodGet, "/api/v1/sync/insight", nil), http.StatusForbidden)

	// The operator scope is never granted through the API, not even by the operator.
	for _, key := range []string{victim.APIKey, b.Key} {
		org, project := victim.OrganizationID, victim.ProjectID
		if key == b.Key {
			org, project = "orgB", "b1"
		}
		p := checkProblem(t, s.DoAs(key, org, project, http.MethodPost, "/api/v1/admin/keys", map[string]any{"organizationId": org, "projectId": project, "scopes": []string{"operator"}}), http.StatusBadRequest)
		if len(p.Errors) == 0 || p.Errors[0].Field != "scopes" {
			t.Errorf("asking for the operator scope: %+v, want an error naming scopes", p)
		}
	}
}

// Pausing or resuming the queue and rebuilding the statistics act on every
// organization: another organization's admin key gets 403 and changes
// nothing; the operator key still can.
func TestAnOrganizationsAdminCannotActOnTheWholeDeployment(t *testing.T) {
	s := startServe(t, nil)
	r := s.Do(http.MethodPost, "/api/v1/admin/keys", map[string]any{"organizationId": "orgB", "projectId": "b1", "scopes": []string{"admin", "sync"}})
	if r.Status != http.StatusCreated {
		t.Fatalf("creating orgB's admin key: %d %s", r.Status, r.Body)
	}
	var b struct{ Key string }
	r.JSON(t, &b)
	for _, path := range []string{"/api/v1/sync/jobs/pause?scope=queue", "/api/v1/sync/jobs/resume?scope=queue", "/api/v1/admin/stats/rebuild?scope=all"} {
		p := checkProblem(t, s.DoAs(b.Key, "orgB", "b1", http.MethodPost, path, nil), http.StatusForbidden)
		if !strings.Contains(p.Detail, "operator") {
			t.Errorf("%s: %q does not say an operator key is needed", path, p.Detail)
		}
	}
	// The victim's queue still runs: a job submitted now is not held.
	r = s.Do(http.MethodPost, "/api/v1/jobs", map[string]any{"type": "EMAIL_SEND", "payload": map[string]any{"to": []string{"x@example.com"}, "subject": "s", "text": "."}})
	var j apiJob
	r.JSON(t, &j)
	if j.Status == "PAUSED" {
		t.Fatalf("orgB's admin paused the queue: %s", r.Body)
	}
	s.waitJob(t, j.ID, "COMPLETED")
	for _, path := range []string{"/api/v1/sync/jobs/pause", "/api/v1/sync/jobs/resume", "/api/v1/admin/stats/rebuild"} {
		if r := s.Do(http.MethodPost, path, nil); r.Status != http.StatusOK {
			t.Errorf("%s with the operator key: %d %s", path, r.Status, r.Body)
		}
	}
}

// Keys the gateway does not remember are looked up in the store at most
// 20 times a second (bursts of 40) per client address: a flood of random
// keys gets 429 before it reaches the store, while a key in use goes on.
func TestUnknownKeysAreLimitedPerAddress(t *testing.T) {
	s := startServe(t, nil)
	if r := s.Do(http.MethodGet, "/api/v1/sync/insight", nil); r.Status != http.StatusOK {
		t.Fatalf("a known key: %d %s", r.Status, r.Body)
	}
	var unauthorized, limited int
	for i := range 120 {
		// A forged X-Forwarded-For does not make another client: no proxy is trusted by default.
		r := s.DoAs(fmt.Sprintf("odavl_random-%d-0123456789abcdef0123456789", i), "acme", "web", http.MethodGet, "/api/v1/sync/insight", nil,
			"X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i%250))
		switch r.Status {
		case http.StatusUnauthorized:
			unauthorized++
		case http.StatusTooManyRequests:
			limited++
			if r.Header.Get("Retry-After") == "" {
				t.Fatalf("429 without Retry-After: %s", r.Body)
			}
		default:
			t.Fatalf("random key: %d %s", r.Status, r.Body)
		}
	}
	if limited == 0 || unauthorized > 100 {
		t.Fatalf("120 random keys: %d answered 401, %d 429; want the lookups limited", unauthorized, limited)
	}
	if r := s.Do(http.MethodGet, "/api/v1/sync/insight", nil); r.Status != http.StatusOK {
		t.Fatalf("the known key after the flood: %d %s", r.Status, r.Body)
	}
}

// TestAnOrganizationsAdminPausesItsOwnJobs: an organization's admin pauses
// and resumes its own organization's jobs (the default scope of its key):
// its jobs wait, PAUSED, while every other organization's run; a resume
// runs them. A scope that is no scope is a 400 naming it.
func TestAnOrganizationsAdminPausesItsOwnJobs(t *testing.T) {
	t.Parallel()
	s := startServe(t, nil)
	r := s.Do(http.MethodPost, "/api/v1/admin/keys", map[string]any{"organizationId": "orgB", "projectId": "b1", "scopes": []string{"admin", "sync"}})
	if r.Status != http.StatusCreated {
		t.Fatalf("creating orgB's admin key: %d %s", r.Status, r.Body)
	}
	var b struct{ Key string }
	r.JSON(t, &b)
	asB := func(method, path string, body any) apiResp { return s.DoAs(b.Key, "orgB", "b1", method, path, body) }
	mail := map[string]any{"type": "EMAIL_SEND", "payload": map[string]any{"to": []string{"x@example.com"}, "subject": "s", "text": "."}}

	r = asB(http.MethodPost, "/api/v1/sync/jobs/pause", nil)
	var st struct {
		Paused         bool
		Scope          string
		OrganizationID string
	}
	r.JSON(t, &st)
	if r.Status != http.StatusOK || !st.Paused || st.Scope != "organization" || st.OrganizationID != "orgB" {
		t.Fatalf("orgB's pause: %d %s", r.Status, r.Body)
	}
	var held apiJob
	asB(http.MethodPost, "/api/v1/jobs", mail).JSON(t, &held)
	if held.Status != "PAUSED" {
		t.Fatalf("orgB's job submitted while it is paused is %s", held.Status)
	}
	var other apiJob
	s.Do(http.MethodPost, "/api/v1/jobs", mail).JSON(t, &other)
	s.waitJob(t, other.ID, "COMPLETED") // another organization's job runs
	var list struct{ Stats struct{ Paused bool } }
	asB(http.MethodGet, "/api/v1/sync/jobs", nil).JSON(t, &list)
	if !list.Stats.Paused {
		t.Errorf("orgB's job list does not say it is paused")
	}
	job := func() apiJob {
		var j struct{ Job apiJob }
		asB(http.MethodGet, "/api/v1/sync/jobs/"+held.ID, nil).JSON(t, &j)
		return j.Job
	}
	if j := job(); j.Status != "PAUSED" {
		t.Fatalf("orgB's job is %s while its organization is paused", j.Status)
	}
	checkProblem(t, asB(http.MethodPost, "/api/v1/sync/jobs/pause?scope=everything", nil), http.StatusBadRequest)

	if r := asB(http.MethodPost, "/api/v1/sync/jobs/resume", nil); r.Status != http.StatusOK {
		t.Fatalf("orgB's resume: %d %s", r.Status, r.Body)
	}
	eventually(t, "orgB's job completed after the resume", func() bool { return job().Status == "COMPLETED" })
}
