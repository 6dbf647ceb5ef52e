// Package openapischema checks JSON against the schemas of the gateway's
// OpenAPI 3.1 document (as served at /api/v1/openapi.json): the gateway's
// own document tests and the end-to-end contract tests share it.
package openapischema

import (
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Document is a decoded OpenAPI document with its component schemas
// registered in a compiler (formats asserted).
type Document struct {
	Doc        map[string]any
	Components map[string]any
	c          *jsonschema.Compiler
	n          int
}

// Load registers the component schemas of doc.
func Load(doc map[string]any) (*Document, error) {
	d := &Document{Doc: doc, c: jsonschema.NewCompiler()}
	d.c.AssertFormat()
	d.Components, _ = doc["components"].(map[string]any)
	schemas, _ := d.Components["schemas"].(map[string]any)
	for name, s := range schemas {
		if err := d.c.AddResource("mem://components/schemas/"+name, rewriteRefs(s)); err != nil {
			return nil, fmt.Errorf("schema %s: %w", name, err)
		}
	}
	return d, nil
}

// Resolve follows #/components/... references from v to what they name.
func (d *Document) Resolve(v any) map[string]any {
	m, _ := v.(map[string]any)
	for m != nil && m["$ref"] != nil {
		ref, _ := m["$ref"].(string)
		sec, name, _ := strings.Cut(strings.TrimPrefix(ref, "#/components/"), "/")
		m, _ = d.Components[sec].(map[string]any)[name].(map[string]any)
	}
	return m
}

// Compile compiles a schema of the document (one that may refer to the
// components). Not safe for concurrent use.
func (d *Document) Compile(schema any) (*jsonschema.Schema, error) {
	d.n++
	url := fmt.Sprintf("mem://schemas/%d", d.n)
	if err := d.c.AddResource(url, rewriteRefs(schema)); err != nil {
		return nil, err
	}
	return d.c.Compile(url)
}

// rewriteRefs points #/components/... references at the registered resources.
func rewriteRefs(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if s, ok := e.(string); ok && k == "$ref" && strings.HasPrefix(s, "#/components/") {
				out[k] = "mem://components/" + strings.TrimPrefix(s, "#/components/")
				continue
			}
			out[k] = rewriteRefs(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = rewriteRefs(e)
		}
		return out
	}
	return v
}
