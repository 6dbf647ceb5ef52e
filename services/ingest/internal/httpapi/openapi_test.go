package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/odavl/sync/services/ingest/openapischema"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/services/ingest/internal/schema"
)

func document(t *testing.T) map[string]any {
	t.Helper()
	b, err := OpenAPIDocument(OpenAPILimits{MaxBodyBytes: testMaxBody})
	if err != nil {
		t.Fatalf("building the document: %v", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// Every route the router serves is in the document, and every documented
// operation is a route.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	b := setup(t)
	doc := document(t)
	documented := map[string]bool{}
	for p, item := range doc["paths"].(map[string]any) {
		for m := range item.(map[string]any) {
			if isMethod(m) {
				documented[strings.ToUpper(m)+" "+p] = true
			}
		}
	}
	served := map[string]bool{}
	var missing, extra []string
	for _, r := range b.router.Routes() {
		if strings.HasPrefix(r.Path, "/dashboard/") {
			continue // the dashboard's static assets are not API operations
		}
		k := r.Method + " " + openapiPath(r.Path)
		served[k] = true
		if !documented[k] {
			missing = append(missing, fmt.Sprintf("route %s (gin %s %s, handler %s) is served but not in the OpenAPI document: add it to the \"paths\" of services/ingest/internal/httpapi/openapi/<room>.json", k, r.Method, r.Path, r.Handler))
		}
	}
	for k := range documented {
		if !served[k] {
			extra = append(extra, fmt.Sprintf("operation %s is in the OpenAPI document but no route serves it: remove it or register the route", k))
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	for _, m := range append(missing, extra...) {
		t.Error(m)
	}
}

// The document is served without a key and is what OpenAPIDocument builds.
func TestOpenAPIServed(t *testing.T) {
	b := setup(t)
	w := httptest.NewRecorder()
	b.router.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/api/v1/openapi.json", nil))
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("%d %s", w.Code, w.Header())
	}
	var doc map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["openapi"] != "3.1.0" {
		t.Errorf("openapi %v", doc["openapi"])
	}
	desc := doc["info"].(map[string]any)["description"].(string)
	if !strings.Contains(desc, fmt.Sprintf("at most %d bytes", testMaxBody)) {
		t.Errorf("the body limit is not stated: %s", desc)
	}
}

// The upload schemas in the document are the validator's.
func TestOpenAPIUploadSchemasAreTheValidators(t *testing.T) {
	doc := document(t)
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	for _, p := range events.Products {
		var want any
		_ = json.Unmarshal(schema.Raw(p), &want)
		if !jsonEqual(schemas[productTitle(p)+"Upload"], want) {
			t.Errorf("%sUpload differs from schema/%s.json", productTitle(p), p)
		}
		op := doc["paths"].(map[string]any)["/api/v1/sync/"+string(p)].(map[string]any)["post"].(map[string]any)
		ref := op["requestBody"].(map[string]any)["content"].(map[string]any)["application/json"].(map[string]any)["schema"].(map[string]any)["$ref"]
		if ref != "#/components/schemas/"+productTitle(p)+"Upload" {
			t.Errorf("POST %s body schema is %v", p, ref)
		}
	}
}

func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// example is one example in the document with the schema it must satisfy.
type example struct {
	where  string
	schema any
	value  any
}

// Every example in the document validates against its schema, and every
// upload example passes the validator itself (business checks included).
func TestOpenAPIExamplesValidate(t *testing.T) {
	doc := document(t)
	d, err := openapischema.Load(doc)
	if err != nil {
		t.Fatal(err)
	}
	comps, resolve := d.Components, d.Resolve
	var exs []example
	collectContent := func(where string, content any) {
		for mt, v := range asMap(content) {
			media := asMap(v)
			if media["schema"] == nil {
				continue
			}
			if ex, ok := media["example"]; ok {
				exs = append(exs, example{where + " " + mt, media["schema"], ex})
			}
			for name, e := range asMap(media["examples"]) {
				exs = append(exs, example{where + " " + mt + " " + name, media["schema"], resolve(e)["value"]})
			}
		}
	}
	collectParams := func(where string, params any) {
		ps, _ := params.([]any)
		for _, p := range ps {
			pm := resolve(p)
			if ex, ok := pm["example"]; ok {
				exs = append(exs, example{where + " parameter " + fmt.Sprint(pm["name"]), pm["schema"], ex})
			}
		}
	}
	uploadExamples := 0
	for p, item := range asMap(doc["paths"]) {
		for m, v := range asMap(item) {
			if !isMethod(m) {
				continue
			}
			op := asMap(v)
			where := strings.ToUpper(m) + " " + p
			collectParams(where, op["parameters"])
			if rb := resolve(op["requestBody"]); rb != nil {
				collectContent(where+" request", rb["content"])
				if prod := events.Product(strings.TrimPrefix(p, "/api/v1/sync/")); m == "post" && prod.Valid() {
					uploadExamples += checkUploadExamples(t, prod, rb["content"])
				}
			}
			for status, r := range asMap(op["responses"]) {
				rm := resolve(r)
				collectContent(where+" "+status, rm["content"])
				for h, hv := range asMap(rm["headers"]) {
					hm := resolve(hv)
					if ex, ok := hm["example"]; ok {
						exs = append(exs, example{where + " " + status + " header " + h, hm["schema"], ex})
					}
				}
			}
		}
	}
	for name, r := range asMap(comps["responses"]) {
		collectContent("components.responses."+name, asMap(r)["content"])
	}
	if uploadExamples != len(events.Products) {
		t.Errorf("%d upload examples checked by the validator, want one per product", uploadExamples)
	}
	if len(exs) < 40 {
		t.Errorf("only %d examples found", len(exs))
	}
	for _, ex := range exs {
		if ex.schema == nil {
			t.Errorf("%s: example without a schema", ex.where)
			continue
		}
		sch, err := d.Compile(ex.schema)
		if err != nil {
			t.Errorf("%s: compiling its schema: %v", ex.where, err)
			continue
		}
		// Validate the example as JSON would carry it (numbers as json.Number).
		raw, _ := json.Marshal(ex.value)
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(inst); err != nil {
			t.Errorf("%s: example does not validate: %v", ex.where, err)
		}
	}
}

// checkUploadExamples runs the upload examples through the validator.
func checkUploadExamples(t *testing.T, p events.Product, content any) int {
	t.Helper()
	v, err := schema.New(func() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) })
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for name, e := range asMap(asMap(asMap(content)["application/json"])["examples"]) {
		b, _ := json.Marshal(asMap(e)["value"])
		if errs := v.Validate(p, "acme", "web", b); len(errs) > 0 {
			t.Errorf("POST %s example %s: %v", p, name, errs)
		}
		n++
	}
	return n
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// Fragments that clash are refused with the files named.
func TestOpenAPIFragmentsMerge(t *testing.T) {
	doc := document(t)
	paths := asMap(doc["paths"])
	// The sync fragment's operations are merged and get the tenant headers.
	op := asMap(asMap(paths["/api/v1/alerts"])["get"])
	params, _ := op["parameters"].([]any)
	var refs []string
	for _, p := range params {
		refs = append(refs, fmt.Sprint(asMap(p)["$ref"]))
	}
	if !strings.Contains(strings.Join(refs, " "), "#/components/parameters/OrganizationId") {
		t.Errorf("alerts parameters %v lack the tenant headers", refs)
	}
	// Unauthenticated operations get none.
	if _, ok := asMap(asMap(paths["/api/v1/openapi.json"])["get"])["parameters"]; ok {
		t.Error("the document's own route got tenant headers")
	}
}
