package main

import (
	"net/http"
	"testing"

	"github.com/odavl/sync/libs/events"
)

// A replayed upload's receipt says where the upload is now — stored once
// stored — as GET /api/v1/sync/jobs/{id} does, not "queued" forever.
func TestReplayReceiptSaysCurrentStatus(t *testing.T) {
	s := startServe(t, nil)
	c := s.Cred
	body := autopilotBody(c.OrganizationID, c.ProjectID, "run-replay-status", true)
	first := s.post(events.Autopilot, body)
	s.stored(first)
	again := s.post(events.Autopilot, body)
	if !again.Replay || again.JobID != first.JobID {
		t.Fatalf("retry: %+v, want a replay of %+v", again, first)
	}
	var st struct{ State string }
	s.Do(http.MethodGet, again.StatusURL, nil).JSON(t, &st)
	if again.Status != "stored" || again.Status != st.State {
		t.Errorf("replay receipt status %q, job status %q: want stored in both", again.Status, st.State)
	}
}
