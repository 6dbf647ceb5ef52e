package main

import (
	"bytes"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/odavl/sync/services/ingest/openapischema"
)

// contract checks the API's answers against the OpenAPI document the
// server itself serves: the status must be documented for the operation and
// the body must validate against the documented schema of its media type.
type contract struct {
	mu  sync.Mutex
	doc *openapischema.Document
}

func (s *served) contract() *contract {
	s.t.Helper()
	r := s.DoAs("", "", "", http.MethodGet, "/api/v1/openapi.json", nil)
	if r.Status != http.StatusOK {
		s.t.Fatalf("openapi.json: %d %s", r.Status, r.Body)
	}
	var doc map[string]any
	r.JSON(s.t, &doc)
	d, err := openapischema.Load(doc)
	if err != nil {
		s.t.Fatal(err)
	}
	return &contract{doc: d}
}

// template finds the document's path template of a request path: literal
// segments before parameters.
func (k *contract) template(reqPath string) string {
	reqPath, _, _ = strings.Cut(reqPath, "?")
	segs := strings.Split(reqPath, "/")
	best, bestScore := "", -1
	for tpl := range k.doc.Doc["paths"].(map[string]any) {
		ts := strings.Split(tpl, "/")
		if len(ts) != len(segs) {
			continue
		}
		score := 0
		for i := range ts {
			if ts[i] == segs[i] {
				score++
			} else if !strings.HasPrefix(ts[i], "{") {
				score = -1
				break
			}
		}
		if score > bestScore {
			best, bestScore = tpl, score
		}
	}
	return best
}

// check validates answer r to the request method reqPath.
func (k *contract) check(t *testing.T, method, reqPath string, r apiResp) {
	t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	path := k.template(reqPath)
	item, _ := k.doc.Doc["paths"].(map[string]any)[path].(map[string]any)
	op, _ := item[strings.ToLower(method)].(map[string]any)
	if op == nil {
		t.Errorf("%s %s (%s) is not in the OpenAPI document", method, reqPath, path)
		return
	}
	resp := k.doc.Resolve(op["responses"].(map[string]any)[strconv.Itoa(r.Status)])
	if resp == nil {
		t.Errorf("%s %s answered %d, which the document does not list: %s", method, path, r.Status, r.Body)
		return
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	media, _ := resp["content"].(map[string]any)[mt].(map[string]any)
	if media == nil {
		t.Errorf("%s %s %d answered %s, not documented", method, path, r.Status, mt)
		return
	}
	sch, err := k.doc.Compile(media["schema"])
	if err != nil {
		t.Fatalf("%s %s %d: compiling the schema: %v", method, path, r.Status, err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(r.Body))
	if err != nil {
		t.Errorf("%s %s %d: body is not JSON: %v", method, path, r.Status, err)
		return
	}
	if err := sch.Validate(inst); err != nil {
		t.Errorf("%s %s %d: the answer does not match the document: %v\n%s", method, path, r.Status, err, r.Body)
	}
}

// do sends a request through s and checks the answer against the document.
func (k *contract) do(t *testing.T, s *served, method, path string, body any, hdr ...string) apiResp {
	t.Helper()
	r := s.Do(method, path, body, hdr...)
	k.check(t, method, path, r)
	return r
}
