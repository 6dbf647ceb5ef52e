package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/odavl/sync/client"
	clicmd "github.com/odavl/sync/client/cli"
)

func TestCLIJobsListGetCancelRetry(t *testing.T) {
	s := startServe(t, nil)
	c := s.Cred
	cred := filepath.Join(s.Data, credentialsFile)
	cli := newCLI(t, nil)
	cl := newClient(t, c)
	ctx := context.Background()

	// An upload's job, and a delayed job to act on.
	var p pushOut
	cli.mustRun("push", "insight", writeJSON(t, t.TempDir(), "i.json", insightBody(c.OrganizationID, c.ProjectID, 1)), "--credentials", cred, "--json", "--wait").JSON(t, &p)
	later := time.Now().Add(time.Hour)
	j, err := cl.SubmitJob(ctx, client.SubmitJobRequest{
		Type: "EMAIL_SEND", Priority: client.PriorityHigh, RunAt: &later,
		Payload: json.RawMessage(`{"to":["dev@example.com"],"subject":"weekly report","text":"hello"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != "DELAYED" {
		t.Fatalf("submitted job %+v, want DELAYED", j)
	}

	var l client.JobList
	cli.mustRun("jobs", "list", "--credentials", cred, "--json").JSON(t, &l)
	if l.Total != 2 || l.Stats.ByStatus["DELAYED"] != 1 || l.Stats.ByStatus["COMPLETED"] != 1 {
		t.Fatalf("jobs list: total %d stats %+v", l.Total, l.Stats)
	}
	cli.mustRun("jobs", "list", "--status", "COMPLETED", "--credentials", cred, "--json").JSON(t, &l)
	if l.Total != 1 || l.Items[0].ID != p.Receipt.JobID || l.Items[0].Type != "INSIGHT_ANALYSIS" {
		t.Errorf("completed jobs: %+v", l.Items)
	}
	if r := cli.run("jobs", "list", "--status", "LOST", "--credentials", cred); r.Code != clicmd.ExitRejected {
		t.Errorf("jobs list --status LOST: exit %d, want %d: %s", r.Code, clicmd.ExitRejected, r.Stderr)
	}

	var act client.JobActionResult
	cli.mustRun("jobs", "cancel", j.ID, "--credentials", cred, "--json").JSON(t, &act)
	if act.Action != "cancel" || act.Job == nil || act.Job.Status != "CANCELLED" {
		t.Fatalf("jobs cancel: %+v", act)
	}
	// A cancelled job is failed for status: exit 5.
	r := cli.run("status", j.ID, "--credentials", cred, "--json")
	var st client.UploadStatus
	r.JSON(t, &st)
	if r.Code != clicmd.ExitFailed || st.State != client.StateFailed || st.Status != "CANCELLED" {
		t.Errorf("status of a cancelled job: exit %d %+v", r.Code, st)
	}
	// A completed job cannot be cancelled: rejected, not retried.
	if r := cli.run("jobs", "cancel", p.Receipt.JobID, "--credentials", cred); r.Code != clicmd.ExitRejected {
		t.Errorf("cancel of a completed job: exit %d: %s", r.Code, r.Stderr)
	}
	// Nor retried: only a FAILED upload job is.
	if r := cli.run("jobs", "retry", p.Receipt.JobID, "--credentials", cred, "--json"); r.Code != clicmd.ExitRejected {
		t.Errorf("retry of a completed upload job: exit %d: %s", r.Code, r.Stderr)
	}
	var got client.Job
	cli.mustRun("jobs", "get", p.Receipt.JobID, "--credentials", cred, "--json").JSON(t, &got)
	if got.ID != p.Receipt.JobID || got.Status != "COMPLETED" || len(got.History) < 2 {
		t.Errorf("jobs get: %+v", got)
	}
}
