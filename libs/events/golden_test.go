package events_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/odavl/sync/libs/events"
)

var update = flag.Bool("update", false, "rewrite the golden files (only for a NEW event version)")

// golden is one event version with an example of its data.
type golden struct {
	typ      string
	subject  string // the NATS subject
	id       string
	source   string
	resource string // the CloudEvents subject: the upload, job or file id
	data     any    // a pointer to the example payload
}

func goldens() []golden {
	at := time.Date(2026, 11, 30, 9, 15, 2, 311e6, time.UTC)
	done := at.Add(45 * time.Millisecond)
	yes := true
	lcp := 1460.0
	up := func(p events.Product) string {
		return map[events.Product]string{events.Insight: "up_4b9e0c1f7a2d3e5f6a7b8c9d0e1f2a3b", events.Autopilot: "up_0f1e2d3c4b5a69788796a5b4c3d2e1f0", events.Guardian: "up_a1b2c3d4e5f60718293a4b5c6d7e8f90"}[p]
	}
	payload := map[events.Product]string{
		events.Insight:   `{"detectors":["eslint","security"],"issues":[{"column":7,"detector":"security","file":"src/config.ts","line":12,"message":"hard-coded secret","severity":"critical"}],"issuesBySeverity":{"critical":1,"high":0,"low":0,"medium":0},"organizationId":"acme","projectId":"web","timestamp":"2026-11-30T09:15:00Z","totalIssues":1}`,
		events.Autopilot: `{"filesModified":["src/api.ts"],"organizationId":"acme","phases":{"act":{"duration":5400,"status":"completed"},"decide":{"duration":300,"status":"completed"},"learn":{"duration":150,"status":"completed"},"observe":{"duration":1200,"status":"completed"},"verify":{"duration":8000,"status":"completed"}},"projectId":"web","qualityImproved":true,"runId":"run-2026-11-30-01","selectedRecipe":"remove-unused-imports","success":true,"timestamp":"2026-11-30T09:15:00Z","trustScore":0.87}`,
		events.Guardian:  `{"environment":"staging","organizationId":"acme","passed":true,"projectId":"web","screenshots":["https://cdn.example.com/shots/checkout.png"],"testRunId":"tr-2026-11-30-07","tests":{"accessibility":{"passes":118,"score":92.5,"violations":3},"performance":{"fcp":720,"lcp":1460,"loadTime":1840,"ttfb":180},"security":{"vulnerabilities":0,"warnings":2}},"timestamp":"2026-11-30T09:15:00Z","url":"https://staging.example.com/checkout"}`,
	}
	key := map[events.Product]string{events.Insight: "sha256:5d41402abc4b2a76b9719d911017c592ae5d2b1c36a1f0e8b8f4b6b8f1a2c3d4", events.Autopilot: "runId:run-2026-11-30-01", events.Guardian: "testRunId:tr-2026-11-30-07"}
	figures := map[events.Product]events.Figures{
		events.Insight:   {TotalIssues: 1, IssuesBySeverity: &events.IssuesBySeverity{Critical: 1}},
		events.Autopilot: {Success: &yes, TrustScore: 0.87},
		events.Guardian:  {Passed: &yes, AccessibilityScore: 92.5, LoadTime: 1840, LCP: &lcp, Environment: "staging"},
	}
	var gs []golden
	for _, p := range events.Products {
		gs = append(gs, golden{events.ReceivedType(p), events.ReceivedSubject("acme", "web", p, up(p)), up(p), events.SourceIngest, up(p), &events.Received{
			UploadID: up(p), OrganizationID: "acme", ProjectID: "web", Product: p, IdempotencyKey: key[p],
			PayloadHash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", KeyID: "key_8f14e45fceea167a",
			ReceivedAt: at, Payload: json.RawMessage(payload[p]),
		}})
	}
	for _, p := range events.Products {
		gs = append(gs, golden{events.ProcessedType(p), events.ProcessedSubject("acme", "web", p), "processed-" + up(p), events.SourceJobs, up(p), &events.Processed{
			UploadID: up(p), ResultID: up(p), JobID: up(p), OrganizationID: "acme", ProjectID: "web", Product: p,
			Timestamp: time.Date(2026, 11, 30, 9, 15, 0, 0, time.UTC), ReceivedAt: at, ProcessedAt: done, Figures: figures[p],
		}})
	}
	gs = append(gs,
		golden{events.TypeCriticalAlert, events.CriticalAlertSubject("acme", "web"), "alert-" + up(events.Insight), events.SourceJobs, up(events.Insight), &events.CriticalAlert{
			AlertID: "alert-" + up(events.Insight), UploadID: up(events.Insight), OrganizationID: "acme", ProjectID: "web", Critical: 1,
			Issues:   []events.InsightIssue{{Detector: "security", Severity: "critical", Message: "hard-coded secret", File: "src/config.ts", Line: 12, Column: 7}},
			RaisedAt: at,
		}},
		golden{events.TypeJobStatus, events.JobEventSubject("acme", "web", "COMPLETED"), up(events.Insight) + "-COMPLETED-1", events.SourceJobs, up(events.Insight), &events.JobStatusChanged{
			JobID: up(events.Insight), Type: "INSIGHT_ANALYSIS", OrganizationID: "acme", ProjectID: "web", Status: "COMPLETED", Previous: "ACTIVE",
			Progress: 100, Attempt: 1, At: done,
		}},
		golden{events.TypeFileEvent, events.FileEventSubject("acme", "web", "uploaded"), "file_9b1c2d3e4f5a6b7c.uploaded", events.SourceStorage, "file_9b1c2d3e4f5a6b7c", &events.FileChanged{
			FileID: "file_9b1c2d3e4f5a6b7c", OrganizationID: "acme", ProjectID: "web", Kind: "uploaded", Name: "checkout.png",
			ContentType: "image/png", Size: 48213, At: at,
		}},
	)
	return gs
}

func marshalGolden(t *testing.T, g golden) []byte {
	t.Helper()
	ev, err := events.New(g.id, g.source, g.typ, time.Date(2026, 11, 30, 9, 15, 2, 356e6, time.UTC), "acme", "web", g.data)
	if err != nil {
		t.Fatal(err)
	}
	ev.Subject = g.resource
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(ev); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Each event version's JSON is frozen by its golden file: a change of a
// payload type that changes its JSON fails here. Such a change is a new
// version (a new type and subject), never an edit of v1.
func TestGoldenEvents(t *testing.T) {
	seen := map[string]bool{}
	for _, g := range goldens() {
		t.Run(g.typ, func(t *testing.T) {
			file := filepath.Join("testdata", g.typ+".json")
			seen[filepath.Base(file)] = true
			got := marshalGolden(t, g)
			if *update {
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("no golden file for %s (a new version? run go test -run TestGoldenEvents -update): %v", g.typ, err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s no longer encodes as %s:\ngot:\n%s\nwant:\n%s", g.typ, file, got, want)
			}
			// The golden decodes into the payload type with no field unknown or lost.
			ev, err := events.Decode(want)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Type != g.typ {
				t.Errorf("type %q", ev.Type)
			}
			fresh := reflect.New(reflect.TypeOf(g.data).Elem()).Interface()
			d := json.NewDecoder(bytes.NewReader(ev.Data))
			d.DisallowUnknownFields()
			if err := d.Decode(fresh); err != nil {
				t.Errorf("%s data does not decode into %T: %v", file, fresh, err)
			}
			again, _ := json.Marshal(fresh)
			var compact bytes.Buffer
			_ = json.Compact(&compact, ev.Data)
			if !bytes.Equal(again, compact.Bytes()) {
				t.Errorf("%s data loses fields through %T:\n%s\nwant\n%s", file, fresh, again, compact.Bytes())
			}
		})
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, f := range files {
		if !seen[filepath.Base(f)] {
			t.Errorf("%s has no event version in the test: a golden file is never removed while its version may be published", f)
		}
	}
}

// docs/events.md lists every event version with its subject and example.
func TestEventCatalog(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "events.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	for _, g := range goldens() {
		if !strings.Contains(text, "`"+g.typ+"`") {
			t.Errorf("docs/events.md does not list %s", g.typ)
		}
		ev, err := events.Decode(marshalGolden(t, g))
		if err != nil {
			t.Fatal(err)
		}
		var data bytes.Buffer
		_ = json.Indent(&data, ev.Data, "", "  ")
		if !strings.Contains(text, data.String()) {
			t.Errorf("docs/events.md lacks the example data of %s:\n%s", g.typ, data.String())
		}
	}
	// Each whole envelope shown is the golden file, and one is shown.
	shown := 0
	for _, g := range goldens() {
		intro := "The whole envelope of `" + g.typ + "`:\n\n```json\n"
		_, rest, ok := strings.Cut(text, intro)
		if !ok {
			continue
		}
		shown++
		whole, err := os.ReadFile(filepath.Join("testdata", g.typ+".json"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(rest, string(whole)+"```") {
			t.Errorf("docs/events.md shows a whole envelope of %s that is not testdata's:\n%s", g.typ, whole)
		}
	}
	if shown == 0 {
		t.Errorf("docs/events.md shows no whole envelope")
	}
	for _, s := range []string{events.StreamSync, events.StreamJobs, events.StreamStorage, events.AllReceived, events.AllProcessed, events.AllAlerts, events.AllJobEvents, events.AllFiles} {
		if !strings.Contains(text, s) {
			t.Errorf("docs/events.md does not mention %s", s)
		}
	}
}
