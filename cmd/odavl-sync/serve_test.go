package main

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

func TestServeUploadReadBackRestart(t *testing.T) {
	s := startServe(t, nil)
	c := s.Cred
	body := insightBody(c.OrganizationID, c.ProjectID, 1)
	r := s.Do(http.MethodPost, "/api/v1/sync/insight", body)
	if r.Status != http.StatusAccepted {
		t.Fatalf("upload: %d %s", r.Status, r.Body)
	}
	var rc struct{ EventID, JobID, StatusURL string }
	r.JSON(t, &rc)
	if rc.EventID == "" || rc.StatusURL == "" {
		t.Fatalf("receipt without ids: %s", r.Body)
	}
	type list struct {
		Items []map[string]any
		Total int
	}
	var l list
	eventually(t, "the upload in the list", func() bool {
		s.Do(http.MethodGet, "/api/v1/sync/insight", nil).JSON(t, &l)
		return l.Total == 1
	})
	if got := l.Items[0]["id"]; got != rc.EventID {
		t.Errorf("listed id %v, want %s", got, rc.EventID)
	}
	if got := l.Items[0]["totalIssues"]; got != float64(3) {
		t.Errorf("totalIssues %v, want 3", got)
	}
	fi, err := os.Stat(filepath.Join(s.Data, credentialsFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("credentials.json mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}

	s2 := s.Restart()
	if s2.Cred.APIKey != c.APIKey {
		t.Errorf("restart made a new key")
	}
	s2.Do(http.MethodGet, "/api/v1/sync/insight", nil).JSON(t, &l)
	if l.Total != 1 {
		t.Errorf("after restart %d uploads listed, want 1", l.Total)
	}
}
