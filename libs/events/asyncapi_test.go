package events_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/odavl/sync/libs/events"
)

// asyncapiDoc builds the AsyncAPI document and decodes it.
func asyncapiDoc(t testing.TB) ([]byte, map[string]any) {
	t.Helper()
	b, err := events.AsyncAPIDocument(events.AsyncAPIOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return b, doc
}

func obj(v any, path ...string) map[string]any {
	m, _ := v.(map[string]any)
	for _, k := range path {
		m, _ = m[k].(map[string]any)
	}
	return m
}

// Every golden example validates against the payload schema of its message
// in the AsyncAPI document, its dataschema is the $id of the data's schema,
// and its NATS subject matches the address of the message's channel.
func TestAsyncAPIGoldens(t *testing.T) {
	raw, doc := asyncapiDoc(t)
	if doc["asyncapi"] != "3.0.0" {
		t.Fatalf("asyncapi %v", doc["asyncapi"])
	}
	// The message of each type, and its channel.
	msgOf := map[string]string{}
	for id, m := range obj(doc, "components", "messages") {
		typ := obj(m, "payload", "properties", "type")["const"].(string)
		if prev, ok := msgOf[typ]; ok {
			t.Errorf("type %s has two messages: %s and %s", typ, prev, id)
		}
		msgOf[typ] = id
	}
	chanOf := map[string]string{}
	for id, c := range obj(doc, "channels") {
		for mid := range obj(c, "messages") {
			chanOf[mid] = id
		}
	}
	for _, typ := range []string{events.TypeInsightReceived, events.TypeAutopilotReceived, events.TypeGuardianReceived,
		events.TypeInsightProcessed, events.TypeAutopilotProcessed, events.TypeGuardianProcessed, events.TypeCriticalAlert,
		events.TypeJobSubmitted, events.TypeJobStatus, events.TypeFileEvent} {
		if _, ok := msgOf[typ]; !ok {
			t.Errorf("no message for %s", typ)
		}
	}

	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	c.AssertFormat()
	d, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	const url = "https://odavl.dev/asyncapi.json"
	if err := c.AddResource(url, d); err != nil {
		t.Fatal(err)
	}
	for _, g := range goldens() {
		t.Run(g.typ, func(t *testing.T) {
			mid, ok := msgOf[g.typ]
			if !ok {
				t.Fatalf("no message for %s", g.typ)
			}
			sch, err := c.Compile(url + "#/components/messages/" + mid + "/payload")
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join("testdata", g.typ+".json"))
			if err != nil {
				t.Fatal(err)
			}
			v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if err := sch.Validate(v); err != nil {
				t.Errorf("%s does not validate against message %s: %v", g.typ, mid, err)
			}
			ref := obj(doc, "components", "messages", mid, "payload", "properties", "data")["$ref"].(string)
			name := strings.TrimPrefix(ref, "#/components/schemas/")
			id := obj(doc, "components", "schemas", name)["$id"]
			if ds := v.(map[string]any)["dataschema"]; ds != id || ds != events.DataSchema(g.typ) {
				t.Errorf("dataschema %v, the data schema's $id %v", ds, id)
			}
			addr := obj(doc, "channels", chanOf[mid])["address"].(string)
			re := regexp.MustCompile("^" + regexp.MustCompile(`\\\{[^}]+\\\}`).ReplaceAllString(regexp.QuoteMeta(addr), `[A-Za-z0-9_-]+`) + "$")
			if !re.MatchString(g.subject) {
				t.Errorf("subject %s does not match channel %s (%s)", g.subject, chanOf[mid], addr)
			}
		})
	}
}
