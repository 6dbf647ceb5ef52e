package events

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestDecodeIntoMatchesDecodeThenDataAs(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ev, err := New("id-1", "/test", TypeJobStatus, at, "org", "proj", JobStatusChanged{JobID: "job-1", Status: "ACTIVE", Progress: 40, At: at})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(ev)
	var got JobStatusChanged
	env, err := DecodeInto(b, &got)
	if err != nil {
		t.Fatal(err)
	}
	var want JobStatusChanged
	if err := ev.DataAs(&want); err != nil {
		t.Fatal(err)
	}
	if got != want || env.ID != "id-1" || env.Type != TypeJobStatus || !env.Time.Equal(at) || env.OrganizationID != "org" {
		t.Fatalf("DecodeInto = %+v, %+v; want %+v", env, got, want)
	}
	bad := strings.Replace(string(b), `"specversion":"1.0"`, `"specversion":"0.3"`, 1)
	if _, err := DecodeInto([]byte(bad), &got); err == nil || !strings.Contains(err.Error(), "specversion") {
		t.Fatalf("bad specversion: %v", err)
	}
	if _, err := DecodeInto([]byte(`{"data":`), &got); err == nil {
		t.Fatal("truncated JSON decoded")
	}
}
