package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/odavl/sync/services/ingest/openapischema"
	"sort"
	"strconv"
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
// operation is a route, but for those the storage service mounts on it
// (x-odavl-served-by: storage; serve's tests call them).
func TestOpenAPICoversEveryRoute(t *testing.T) {
	b := setup(t)
	doc := document(t)
	documented := map[string]bool{}
	mounted := 0
	for p, item := range doc["paths"].(map[string]any) {
		for m, op := range item.(map[string]any) {
			if !isMethod(m) {
				continue
			}
			if asMap(op)["x-odavl-served-by"] == "storage" {
				mounted++
				continue
			}
			documented[strings.ToUpper(m)+" "+p] = true
		}
	}
	if mounted != 3 {
		t.Errorf("%d operations served by the storage service, want 3 (GET, HEAD and PUT /blob/{key})", mounted)
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
	w := getDocument(t, b, "/api/v1/openapi.json")
	// Read as text (a browser, curl), it says <API key>, not \u003cAPI key\u003e.
	if !bytes.Contains(w.Body.Bytes(), []byte("Bearer <API key>")) || bytes.Contains(w.Body.Bytes(), []byte(`\u003c`)) {
		t.Errorf("the document escapes < as \\u003c")
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

// The upload schemas in the document are the validator's, with their $defs
// hoisted to components (<Product><Name>) that the references point at.
func TestOpenAPIUploadSchemasAreTheValidators(t *testing.T) {
	doc := document(t)
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	for _, p := range events.Products {
		var want map[string]any
		_ = json.Unmarshal(schema.Raw(p), &want)
		delete(want, "$id")
		delete(want, "$schema")
		// Put the hoisted definitions back where the validator's file has them.
		var got map[string]any
		b, _ := json.Marshal(schemas[productTitle(p)+"Upload"])
		_ = json.Unmarshal(b, &got)
		prefix := "#/components/schemas/" + productTitle(p)
		defs := map[string]any{}
		for name := range asMap(want["$defs"]) {
			k := productTitle(p) + strings.ToUpper(name[:1]) + name[1:]
			if schemas[k] == nil {
				t.Errorf("%s: $defs/%s is not the component %s", p, name, k)
			}
			defs[name] = schemas[k]
		}
		if len(defs) > 0 {
			got["$defs"] = defs
		}
		walkRefs(got, func(ref string) string {
			rest, ok := strings.CutPrefix(ref, prefix)
			if !ok {
				t.Errorf("%sUpload refers to %s, outside its product's components", productTitle(p), ref)
				return ref
			}
			return "#/$defs/" + strings.ToLower(rest[:1]) + rest[1:]
		})
		if !jsonEqual(got, want) {
			t.Errorf("%sUpload differs from schema/%s.json:\n got %s\nwant %s", productTitle(p), p, mustJSON(got), mustJSON(want))
		}
		op := doc["paths"].(map[string]any)["/api/v1/sync/"+string(p)].(map[string]any)["post"].(map[string]any)
		ref := op["requestBody"].(map[string]any)["content"].(map[string]any)["application/json"].(map[string]any)["schema"].(map[string]any)["$ref"]
		if ref != "#/components/schemas/"+productTitle(p)+"Upload" {
			t.Errorf("POST %s body schema is %v", p, ref)
		}
	}
}

// Every $ref of the document names something in the document itself, as
// standard tools (redocly, openapi-typescript) resolve it: no reference is
// relative to a nested $id.
func TestOpenAPIRefsResolve(t *testing.T) {
	doc := document(t)
	refs := 0
	var walk func(at string, v any)
	walk = func(at string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if k == "$id" {
					t.Errorf("%s has an $id of its own (%v): references inside it resolve against it", at, e)
				}
				if ref, ok := e.(string); ok && k == "$ref" {
					refs++
					if pointer(doc, ref) == nil {
						t.Errorf("%s: $ref %q names nothing in the document", at, ref)
					}
					continue
				}
				walk(at+"/"+k, e)
			}
		case []any:
			for i, e := range x {
				walk(fmt.Sprintf("%s/%d", at, i), e)
			}
		}
	}
	walk("#", doc)
	if refs < 100 {
		t.Errorf("only %d references found", refs)
	}
}

// pointer is what the local JSON pointer ref (#/a/b) names in doc, or nil.
func pointer(doc map[string]any, ref string) any {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil
	}
	var v any = doc
	for _, tok := range strings.Split(rest, "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch x := v.(type) {
		case map[string]any:
			v = x[tok]
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
		if v == nil {
			return nil
		}
	}
	return v
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
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

// A schema's $defs become components its references name; a reference the
// document could not carry fails the build instead of leaving it unresolved.
func TestHoistDefs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, schema, want, err string
	}{
		{"refs into defs and between them",
			`{"$id":"x","$schema":"s","properties":{"a":{"$ref":"#/$defs/token"},"b":{"$ref":"#/$defs/phase/properties/d"}},"$defs":{"token":{"type":"string"},"phase":{"properties":{"d":{"$ref":"#/$defs/token"}}}}}`,
			`{"properties":{"a":{"$ref":"#/components/schemas/PToken"},"b":{"$ref":"#/components/schemas/PPhase/properties/d"}}}`, ""},
		{"a reference to the document stays", `{"items":{"$ref":"#/components/schemas/Problem"}}`, `{"items":{"$ref":"#/components/schemas/Problem"}}`, ""},
		{"an unknown definition", `{"items":{"$ref":"#/$defs/nope"}}`, "", "no such $defs entry"},
		{"an external reference", `{"items":{"$ref":"https://odavl.dev/schemas/x.json"}}`, "", "only #/$defs/"},
		{"a reference into the schema itself", `{"items":{"$ref":"#/properties/a"}}`, "", "only #/$defs/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var s map[string]any
			if err := json.Unmarshal([]byte(tt.schema), &s); err != nil {
				t.Fatal(err)
			}
			defs, err := hoistDefs("P", s)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one saying %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := mustJSON(s); got != tt.want {
				t.Errorf("schema\n got %s\nwant %s", got, tt.want)
			}
			for _, d := range defs {
				walkRefs(d, func(ref string) string {
					if pointer(map[string]any{"components": map[string]any{"schemas": defs}}, ref) == nil {
						t.Errorf("hoisted definition refers to %s, which is not hoisted", ref)
					}
					return ref
				})
			}
		})
	}
}
