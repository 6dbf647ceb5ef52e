package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/odavl/sync/client"
	clicmd "github.com/odavl/sync/client/cli"
)

// newCICLI is a CLI configured like a CI job (ODAVL_* variables only) whose
// waits are real, so polling stays under the server's rate limit.
func newCICLI(t *testing.T, s *served) *cliEnv {
	t.Helper()
	cli := newCLIFor(t, s.Cred, s.Cred.APIURL)
	cli.clock.real = true
	return cli
}

// mustContain fails when text lacks one of want, in order.
func mustContain(t *testing.T, what, text string, want ...string) {
	t.Helper()
	rest := text
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Errorf("%s does not show %q (in order):\n%s", what, w, text)
			return
		}
		rest = rest[i+len(w):]
	}
}

func TestCLIJobsSubmitWaitDownload(t *testing.T) {
	s := startServe(t, nil)
	c := s.Cred
	cli := newCICLI(t, s)
	var p pushOut
	cli.mustRun("push", "insight", writeJSON(t, t.TempDir(), "i.json", insightBody(c.OrganizationID, c.ProjectID, 7)), "--wait", "--json").JSON(t, &p)

	// An export, payload on stdin, waited for and downloaded: what a person sees.
	dir := filepath.Join(t.TempDir(), "out")
	cli.stdin = `{"products":["insight"]}`
	r := cli.mustRun("jobs", "submit", "DATA_EXPORT", "--payload", "-", "--download", dir)
	cli.stdin = ""
	mustContain(t, "jobs submit --download", r.Stdout, "DATA_EXPORT", "COMPLETED", "100%", "file ", "http", "saved "+dir)
	ids := regexp.MustCompile(`(?m)^(\S+)\s+DATA_EXPORT`).FindStringSubmatch(r.Stdout)
	if ids == nil {
		t.Fatalf("no job id in %q", r.Stdout)
	}
	saved, _ := filepath.Glob(filepath.Join(dir, "*"))
	found := false
	for _, f := range saved {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "eval is evil #7") && strings.Contains(string(b), p.Receipt.EventID) {
			found = true
		}
	}
	if len(saved) == 0 || !found {
		t.Errorf("the downloaded export %v does not hold the pushed result %s", saved, p.Receipt.EventID)
	}

	// jobs get in text mode shows the download links.
	r = cli.mustRun("jobs", "get", ids[1])
	mustContain(t, "jobs get", r.Stdout, ids[1], "COMPLETED", "file ", ": http", "link expires")

	// A report with --wait --json: the job and its file.
	cli.stdin = `{"title":"CI weekly"}`
	var sr clicmd.SubmitResult
	cli.mustRun("jobs", "submit", "report_generation", "--payload", "-", "--wait", "--json").JSON(t, &sr)
	cli.stdin = ""
	if sr.Job == nil || sr.Job.Status != "COMPLETED" || !strings.Contains(string(sr.Job.Output), "downloadUrl") {
		t.Fatalf("jobs submit --wait --json: %+v", sr.Job)
	}

	// Usage errors say what is expected, before anything is sent.
	if r := cli.run("jobs", "submit", "INSIGHT_ANALYSIS", "--payload", "-"); r.Code != clicmd.ExitUsage || !strings.Contains(r.Stderr, "DATA_EXPORT, REPORT_GENERATION, EMAIL_SEND, BULK_INVITATION") {
		t.Errorf("submit of an internal type: exit %d %q", r.Code, r.Stderr)
	}
	if r := cli.run("jobs", "submit", "EMAIL_SEND"); r.Code != clicmd.ExitUsage || !strings.Contains(r.Stderr, "--payload") {
		t.Errorf("submit without --payload: exit %d %q", r.Code, r.Stderr)
	}
	// A payload the server refuses: its field errors, exit 4.
	cli.stdin = `{"to":["not an address"]}`
	if r := cli.run("jobs", "submit", "EMAIL_SEND", "--payload", "-"); r.Code != clicmd.ExitRejected || !strings.Contains(r.Stderr, "job rejected") {
		t.Errorf("submit of a bad email: exit %d %q", r.Code, r.Stderr)
	}
}

func TestCLIResultsListGetShowWhatMatters(t *testing.T) {
	s := startServe(t, nil)
	c := s.Cred
	cli := newCICLI(t, s)
	dir := t.TempDir()
	var in, ap, gu pushOut
	cli.mustRun("push", "insight", writeJSON(t, dir, "i.json", insightBody(c.OrganizationID, c.ProjectID, 1)), "--wait", "--json").JSON(t, &in)
	cli.mustRun("push", "autopilot", writeJSON(t, dir, "a.json", autopilotBody(c.OrganizationID, c.ProjectID, "run-ci-1", false)), "--wait", "--json").JSON(t, &ap)
	cli.mustRun("push", "guardian", writeJSON(t, dir, "g.json", guardianBody(c.OrganizationID, c.ProjectID, "tr-ci-1", "staging", true)), "--wait", "--json").JSON(t, &gu)

	for _, tc := range []struct {
		args []string
		want []string // in this order
	}{
		{[]string{"list", "insight"}, []string{"1 insight result(s)", in.Receipt.EventID, "3 issues (1 critical, 1 high, 1 medium, 0 low)"}},
		{[]string{"list", "autopilot"}, []string{ap.Receipt.EventID, "FAILED", "run run-ci-1", "trust 0.82", "2 file(s) modified"}},
		{[]string{"list", "guardian"}, []string{gu.Receipt.EventID, "passed", "staging https://example.com/checkout", "accessibility 91.5", "load 1800 ms", "1 vulnerabilities"}},
		{[]string{"get", "insight", in.Receipt.EventID, "--worst", "2"}, []string{"3 issues (1 critical", "detectors: eslint, typescript", "worst issues:",
			"critical  src/a.ts:3:7  eslint  eval is evil #1", "high      src/b.ts:10:1  typescript  implicit any", "… 1 more"}},
		{[]string{"get", "autopilot", ap.Receipt.EventID}, []string{"FAILED", "recipe: remove-unused-imports", "verify failed", "modified src/a.ts"}},
		{[]string{"get", "guardian", gu.Receipt.EventID}, []string{"passed", "accessibility: score 91.5, 2 violations", "performance: load 1800 ms", "security: 1 vulnerabilities, 3 warnings"}},
	} {
		r := cli.mustRun(append([]string{"results"}, tc.args...)...)
		mustContain(t, "results "+strings.Join(tc.args, " "), r.Stdout, tc.want...)
		if tc.args[0] == "get" && tc.args[1] == "insight" && strings.Contains(r.Stdout, "prefer-const") {
			t.Errorf("--worst 2 shows a third issue:\n%s", r.Stdout)
		}
	}
	if r := cli.run("results", "get", "insight", "up_nope"); r.Code != clicmd.ExitRejected {
		t.Errorf("results get of an unknown id: exit %d %q", r.Code, r.Stderr)
	}
}

func TestCLIStatsSummaryAndTrends(t *testing.T) {
	s := startServe(t, nil)
	c := s.Cred
	cli := newCICLI(t, s)
	dir := t.TempDir()
	cli.mustRun("push", "insight", writeJSON(t, dir, "i.json", insightBody(c.OrganizationID, c.ProjectID, 1)), "--wait")
	cli.mustRun("push", "guardian", writeJSON(t, dir, "g.json", guardianBody(c.OrganizationID, c.ProjectID, "tr-1", "production", false)), "--wait")

	// The aggregates follow the stored results: wait for them, with a deadline.
	var sum client.StatsSummary
	deadline := time.Now().Add(30 * time.Second)
	for {
		cli.mustRun("stats", "summary", "--json").JSON(t, &sum)
		if sum.Insight.Analyses == 1 && sum.Guardian.Total == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats summary never counted the two uploads: %+v", sum.StatsFigures)
		}
		time.Sleep(100 * time.Millisecond)
	}
	r := cli.mustRun("stats", "summary")
	mustContain(t, "stats summary", r.Stdout, c.OrganizationID+"/"+c.ProjectID+", all time",
		"insight", "1 analyses", "3 issues: 1 critical, 1 high, 1 medium, 0 low", "1 with critical issues",
		"autopilot", "0 runs", "success -",
		"guardian", "1 runs", "0 passed, 1 failed", "pass 0%", "accessibility 91.5", "load 1800 ms", "LCP 1400 ms", "1 vulnerabilities")

	today := time.Now().UTC().Format(time.DateOnly)
	r = cli.mustRun("stats", "trends", "--from", today, "--to", today)
	mustContain(t, "stats trends", r.Stdout, today+" to "+today, "day", "analyses", "critical", today, "1", "3", "1",
		c.ProjectID+": critical issues 1 (before -")
	var tr client.StatsTrends
	cli.mustRun("stats", "trends", "--json").JSON(t, &tr)
	if len(tr.Days) == 0 || tr.Days[len(tr.Days)-1].Day != today || tr.Days[len(tr.Days)-1].Insight.Analyses != 1 {
		t.Errorf("stats trends --json: %+v", tr.Days)
	}
	if r := cli.run("stats", "summary", "--from", "yesterday"); r.Code != clicmd.ExitUsage || !strings.Contains(r.Stderr, "YYYY-MM-DD") {
		t.Errorf("stats summary --from yesterday: exit %d %q", r.Code, r.Stderr)
	}
}

func TestCLIPushFillsTheTenantAndRefusesAnother(t *testing.T) {
	s := startServe(t, nil)
	c := s.Cred
	cli := newCICLI(t, s)
	dir := t.TempDir()

	// A document of a tool that does not know the tenant: the CI's variables fill it.
	doc := insightBody(c.OrganizationID, c.ProjectID, 1)
	delete(doc, "organizationId")
	delete(doc, "projectId")
	var p pushOut
	cli.mustRun("push", "insight", writeJSON(t, dir, "bare.json", doc), "--wait", "--json").JSON(t, &p)
	if p.Status == nil || p.Status.State != client.StateStored {
		t.Fatalf("push of a document without tenant: %+v", p)
	}
	var got map[string]any
	cli.mustRun("results", "get", "insight", p.Receipt.EventID, "--json").JSON(t, &got)
	if got["organizationId"] != c.OrganizationID || got["projectId"] != c.ProjectID {
		t.Errorf("stored tenant %v/%v, want %s/%s", got["organizationId"], got["projectId"], c.OrganizationID, c.ProjectID)
	}

	// A document of another project is refused before sending: a clear message,
	// exit 4, nothing stored and nothing spooled.
	other := insightBody(c.OrganizationID, "someone-else", 2)
	r := cli.run("push", "insight", writeJSON(t, dir, "other.json", other))
	if r.Code != clicmd.ExitRejected {
		t.Fatalf("push of another project's document: exit %d %q", r.Code, r.Stderr)
	}
	mustContain(t, "the refusal", r.Stderr, "other.json not sent", `projectId is "someone-else"`, `the client's is "`+c.ProjectID+`"`, "ODAVL_PROJECT_ID")
	var l client.ResultList
	cli.mustRun("results", "list", "insight", "--json").JSON(t, &l)
	if l.Total != 1 {
		t.Errorf("%d insight results stored, want 1", l.Total)
	}
	var ls clicmd.SpoolListing
	cli.mustRun("spool", "list", "--json").JSON(t, &ls)
	if len(ls.Entries) != 0 {
		t.Errorf("the refused document was spooled: %+v", ls.Entries)
	}
}
