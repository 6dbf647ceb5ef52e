package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// getDocument GETs a document without a key and requires a 200 with JSON.
func getDocument(t *testing.T, b *testBundle, path string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	b.router.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("GET %s: %d %s", path, w.Code, w.Header())
	}
	return w
}

// The AsyncAPI document is served without a key, and every golden event of
// libs/events/testdata validates against the served message schema of its
// type, the payload of a received event against its product's upload schema.
func TestAsyncAPIServedValidatesGoldens(t *testing.T) {
	w := getDocument(t, setup(t), "/api/v1/asyncapi.json")
	var doc struct {
		AsyncAPI   string `json:"asyncapi"`
		Components struct {
			Messages map[string]struct {
				Name string `json:"name"`
			} `json:"messages"`
		} `json:"components"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil || doc.AsyncAPI != "3.0.0" {
		t.Fatalf("asyncapi %q: %v", doc.AsyncAPI, err)
	}
	raw, err := jsonschema.UnmarshalJSON(bytes.NewReader(w.Body.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	c.AssertFormat()
	const url = "https://odavl.dev/asyncapi.json"
	if err := c.AddResource(url, raw); err != nil {
		t.Fatal(err)
	}
	msgOf := map[string]string{}
	for id, m := range doc.Components.Messages {
		msgOf[m.Name] = id
	}
	files, err := filepath.Glob(filepath.Join("..", "..", "..", "..", "libs", "events", "testdata", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden events: %v", err)
	}
	for _, f := range files {
		typ := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(typ, func(t *testing.T) {
			id, ok := msgOf[typ]
			if !ok {
				t.Fatalf("no message named %s", typ)
			}
			sch, err := c.Compile(url + "#/components/messages/" + id + "/payload")
			if err != nil {
				t.Fatal(err)
			}
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			v, _ := jsonschema.UnmarshalJSON(bytes.NewReader(body))
			if err := sch.Validate(v); err != nil {
				t.Errorf("%s does not validate against the served message %s: %v", f, id, err)
			}
			if strings.HasSuffix(typ, ".received.v1") {
				// The upload schema is strict: an unknown payload field fails.
				v.(map[string]any)["data"].(map[string]any)["payload"].(map[string]any)["unknownField"] = true
				if sch.Validate(v) == nil {
					t.Errorf("%s: a payload with an unknown field validates; the upload schema is not in the document", typ)
				}
			}
		})
	}
}
