package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/odavl/sync/libs/events"
)

// asyncContract is the AsyncAPI document serve itself serves, compiled: the
// envelope schema and the channel address of each event type.
type asyncContract struct {
	schema  map[string]*jsonschema.Schema
	address map[string]*regexp.Regexp
}

func (s *served) asyncContract() *asyncContract {
	s.t.Helper()
	r := s.DoAs("", "", "", http.MethodGet, "/api/v1/asyncapi.json", nil)
	if r.Status != http.StatusOK {
		s.t.Fatalf("asyncapi.json: %d %s", r.Status, r.Body)
	}
	var doc struct {
		Channels map[string]struct {
			Address  string
			Messages map[string]any
		}
		Components struct {
			Messages map[string]struct {
				Name string
			}
		}
	}
	r.JSON(s.t, &doc)
	raw, err := jsonschema.UnmarshalJSON(bytes.NewReader(r.Body))
	if err != nil {
		s.t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	c.AssertFormat()
	const url = "https://odavl.dev/asyncapi.json"
	if err := c.AddResource(url, raw); err != nil {
		s.t.Fatal(err)
	}
	k := &asyncContract{schema: map[string]*jsonschema.Schema{}, address: map[string]*regexp.Regexp{}}
	param := regexp.MustCompile(`\\\{[^}]+\\\}`)
	for _, ch := range doc.Channels {
		re := regexp.MustCompile("^" + param.ReplaceAllString(regexp.QuoteMeta(ch.Address), `[A-Za-z0-9_-]+`) + "$")
		for id := range ch.Messages {
			typ := doc.Components.Messages[id].Name
			sch, err := c.Compile(url + "#/components/messages/" + id + "/payload")
			if err != nil {
				s.t.Fatal(err)
			}
			k.schema[typ], k.address[typ] = sch, re
		}
	}
	return k
}

// check validates one message of a stream: its body against the message
// of its type, its NATS subject against the channel's address, and its
// CloudEvents subject names the upload, job or file the data is about.
func (k *asyncContract) check(t *testing.T, subject string, body []byte) (string, bool) {
	t.Helper()
	ev, err := events.Decode(body)
	if err != nil {
		t.Errorf("%s: %v", subject, err)
		return "", false
	}
	sch, ok := k.schema[ev.Type]
	if !ok {
		t.Errorf("%s: type %s is not in the AsyncAPI document", subject, ev.Type)
		return ev.Type, false
	}
	v, _ := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err := sch.Validate(v); err != nil {
		t.Errorf("%s event on %s does not validate against the AsyncAPI document: %v\n%s", ev.Type, subject, err, body)
		return ev.Type, false
	}
	if !k.address[ev.Type].MatchString(subject) {
		t.Errorf("%s event on %s, not on its channel %s", ev.Type, subject, k.address[ev.Type])
	}
	var about struct{ UploadID, JobID, FileID string }
	_ = json.Unmarshal(ev.Data, &about)
	want := about.UploadID
	switch {
	case strings.HasPrefix(ev.Type, "dev.odavl.jobs."):
		want = about.JobID
	case strings.HasPrefix(ev.Type, "dev.odavl.storage."):
		want = about.FileID
	}
	if want == "" || ev.Subject != want {
		t.Errorf("%s event %s: subject %q, want the resource %q", ev.Type, ev.ID, ev.Subject, want)
	}
	return ev.Type, true
}

// Every event a running serve publishes, of every type, validates against
// the AsyncAPI document it serves; every KV bucket it creates is listed in
// docs/events.md.
func TestServedEventsMatchAsyncAPI(t *testing.T) {
	s := startServe(t, nil)
	c := s.Cred
	k := s.asyncContract()

	body := insightBody(c.OrganizationID, c.ProjectID, 1)
	body["totalIssues"] = 2
	body["issuesBySeverity"] = map[string]int{"critical": 2, "high": 0, "medium": 0, "low": 0}
	body["issues"] = []map[string]any{
		{"detector": "security", "severity": "critical", "message": "hard-coded secret", "file": "src/k.ts", "line": 9, "column": 4},
		{"detector": "security", "severity": "critical", "message": "eval", "file": "src/e.ts", "line": 1, "column": 1},
	}
	s.stored(s.post(events.Insight, body))
	s.stored(s.post(events.Autopilot, autopilotBody(c.OrganizationID, c.ProjectID, "run-asyncapi", true)))
	s.stored(s.post(events.Guardian, guardianBody(c.OrganizationID, c.ProjectID, "tr-asyncapi", "staging", true)))
	png := append([]byte("\x89PNG\r\n\x1a\n"), random(512)...)
	u := upload(t, s, c.APIKey, c.OrganizationID, c.ProjectID, map[string]any{"filename": "a.png", "contentType": "image/png", "size": len(png)}, png)
	if r := s.Do(http.MethodPost, "/api/v1/storage/files/"+u.FileID+"/confirm", nil); r.Status/100 != 2 {
		t.Fatalf("confirm: %d %s", r.Status, r.Body)
	}
	if r := s.Do(http.MethodDelete, "/api/v1/storage/files/"+u.FileID, nil); r.Status != http.StatusOK {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	if r := s.Do(http.MethodPost, "/api/v1/jobs", map[string]any{"type": "DATA_EXPORT", "payload": map[string]any{"products": []string{"insight"}}}); r.Status/100 != 2 {
		t.Fatalf("POST /api/v1/jobs: %d %s", r.Status, r.Body)
	}

	js, err := jetstream.New(s.natsConn())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	want := []string{events.TypeInsightReceived, events.TypeAutopilotReceived, events.TypeGuardianReceived,
		events.TypeInsightProcessed, events.TypeAutopilotProcessed, events.TypeGuardianProcessed, events.TypeCriticalAlert,
		events.TypeJobSubmitted, events.TypeJobStatus, events.TypeFileEvent}
	seen := map[string]int{}
	checked := map[string]uint64{} // stream -> last sequence checked
	eventually(t, "an event of every type", func() bool {
		for _, name := range []string{events.StreamSync, events.StreamJobs, events.StreamStorage} {
			st, err := js.Stream(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			info, err := st.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for seq := max(checked[name]+1, info.State.FirstSeq); seq <= info.State.LastSeq; seq++ {
				m, err := st.GetMsg(ctx, seq)
				if err != nil {
					continue // deleted
				}
				if typ, ok := k.check(t, m.Subject, m.Data); ok {
					seen[typ]++
				}
			}
			checked[name] = info.State.LastSeq
		}
		for _, typ := range want {
			if seen[typ] == 0 {
				return false
			}
		}
		return true
	})
	if t.Failed() {
		return
	}
	t.Logf("checked %v", seen)

	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "events.md"))
	if err != nil {
		t.Fatal(err)
	}
	for name := range js.KeyValueStoreNames(ctx).Name() {
		if !bytes.Contains(doc, []byte("`"+name+"`")) {
			t.Errorf("docs/events.md does not list the KV bucket %s", name)
		}
	}
}
