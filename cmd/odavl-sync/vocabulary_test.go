package main

import (
	"slices"
	"testing"

	"github.com/odavl/sync/client"
	"github.com/odavl/sync/libs/jobs"
)

// TestTheClientKeepsTheJobVocabulary: the stdlib-only client module keeps
// its own copy of the job vocabulary; it must say what the server says, or
// the CLI prints and submits what the server does not know.
func TestTheClientKeepsTheJobVocabulary(t *testing.T) {
	if !slices.Equal(client.JobStatuses, jobs.Statuses) {
		t.Errorf("client statuses %v, server %v", client.JobStatuses, jobs.Statuses)
	}
	if !slices.Equal(client.JobTypes, jobs.Types) {
		t.Errorf("client types %v, server %v", client.JobTypes, jobs.Types)
	}
	if !slices.Equal(client.SubmittableJobTypes, jobs.Submittable) {
		t.Errorf("client submittable types %v, server %v", client.SubmittableJobTypes, jobs.Submittable)
	}
	if len(client.JobPriorities) != len(jobs.Priorities) {
		t.Fatalf("client priorities %v, server %v", client.JobPriorities, jobs.Priorities)
	}
	for i, p := range jobs.Priorities {
		if c := client.JobPriorities[i]; c.Name != p.Name || c.Value != p.Value {
			t.Errorf("client priority %d is %v, server %v", i, c, p)
		}
	}
	for _, s := range append(slices.Clone(jobs.Statuses), jobs.Cleared) {
		if s != jobs.Cleared && client.JobFinished(s) != jobs.Terminal(s) {
			t.Errorf("status %s: client says finished %v, server %v", s, client.JobFinished(s), jobs.Terminal(s))
		}
	}
}
