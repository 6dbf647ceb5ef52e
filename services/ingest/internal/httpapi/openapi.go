package httpapi

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/services/ingest/internal/schema"
)

// The OpenAPI document is built at start from openapi/base.json (info,
// shared components, the operational routes) and one fragment per room,
// openapi/<room>.json, each {"paths": {...}} with optional
// {"components": {"schemas": {...}, ...}}. Fragments may $ref the base's
// components (#/components/schemas/Problem, #/components/responses/BadRequest,
// #/components/parameters/Limit, ...). The tenant headers are added to every
// authenticated /api/v1 operation that does not list them. The upload schemas
// come from the schema package, the same bytes the validator compiles.
//
//go:embed openapi/*.json
var openapiFiles embed.FS

// openapiBase is the file every fragment is merged into.
const openapiBase = "openapi/base.json"

// OpenAPILimits fill the limits the document states.
type OpenAPILimits struct {
	MaxBodyBytes int64
}

// OpenAPIDocument builds the OpenAPI 3.1 document. It fails when a fragment
// does not parse or two files define the same operation or a different
// component under one name.
func OpenAPIDocument(lim OpenAPILimits) ([]byte, error) {
	raw, err := openapiFiles.ReadFile(openapiBase)
	if err != nil {
		return nil, err
	}
	raw = bytes.ReplaceAll(raw, []byte("${MAX_BODY_BYTES}"), []byte(strconv.FormatInt(lim.MaxBodyBytes, 10)))
	raw = bytes.ReplaceAll(raw, []byte("${IDEMPOTENCY_TTL}"), []byte("30 days (IDEMPOTENCY_TTL)"))
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", openapiBase, err)
	}
	paths := objectAt(doc, "paths")
	comps := objectAt(doc, "components")
	owner := map[string]string{} // "GET /x" or "schemas/X" -> file
	for p, item := range paths {
		for m := range item.(map[string]any) {
			owner[strings.ToUpper(m)+" "+p] = openapiBase
		}
	}
	for sec, v := range comps {
		for name := range v.(map[string]any) {
			owner[sec+"/"+name] = openapiBase
		}
	}
	for _, p := range events.Products {
		up, res, err := productSchemas(p)
		if err != nil {
			return nil, err
		}
		name := productTitle(p)
		defs, err := hoistDefs(name, up, res)
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", p, err)
		}
		defs[name+"Upload"], defs[name+"Result"] = up, res
		for k, v := range defs {
			if prev, ok := owner["schemas/"+k]; ok {
				return nil, fmt.Errorf("schema/%s.json: components schemas/%s is defined in %s already", p, k, prev)
			}
			owner["schemas/"+k] = "schema/" + string(p) + ".json"
			objectAt(comps, "schemas")[k] = v
		}
	}

	names, err := fs.Glob(openapiFiles, "openapi/*.json")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	for _, file := range names {
		if file == openapiBase {
			continue
		}
		b, err := openapiFiles.ReadFile(file)
		if err != nil {
			return nil, err
		}
		var frag struct {
			Paths      map[string]map[string]any `json:"paths"`
			Components map[string]map[string]any `json:"components"`
		}
		d := json.NewDecoder(bytes.NewReader(b))
		d.DisallowUnknownFields()
		if err := d.Decode(&frag); err != nil {
			return nil, fmt.Errorf("%s: want {\"paths\": {...}, \"components\": {...}}: %w", file, err)
		}
		for p, ops := range frag.Paths {
			item, _ := paths[p].(map[string]any)
			if item == nil {
				item = map[string]any{}
				paths[p] = item
			}
			for m, op := range ops {
				k := strings.ToUpper(m) + " " + p
				if prev, ok := owner[k]; ok {
					return nil, fmt.Errorf("%s: %s is documented in %s already", file, k, prev)
				}
				owner[k] = file
				item[m] = op
			}
		}
		for sec, entries := range frag.Components {
			dst := objectAt(comps, sec)
			for name, v := range entries {
				k := sec + "/" + name
				if prev, ok := owner[k]; ok && !reflect.DeepEqual(dst[name], v) {
					return nil, fmt.Errorf("%s: components %s is defined differently in %s", file, k, prev)
				}
				owner[k] = file
				dst[name] = v
			}
		}
	}
	addTenantHeaders(paths)
	// Written as the gateway's other answers are: <, > and & as they are.
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// productSchemas are the upload schema of p as the validator uses it, and the
// result schema: the upload's fields plus the ones the store adds.
func productSchemas(p events.Product) (upload, result map[string]any, err error) {
	if err := json.Unmarshal(schema.Raw(p), &upload); err != nil {
		return nil, nil, fmt.Errorf("schema %s: %w", p, err)
	}
	if err := json.Unmarshal(schema.Raw(p), &result); err != nil {
		return nil, nil, err
	}
	result["title"] = result["title"].(string) + ", as stored"
	props := result["properties"].(map[string]any)
	props["id"] = map[string]any{"type": "string", "description": "The result's id (the receipt's uploadId)."}
	props["receivedAt"] = map[string]any{"type": "string", "format": "date-time", "description": "When the upload was accepted."}
	props["processedAt"] = map[string]any{"type": "string", "format": "date-time", "description": "When it was stored."}
	props["jobId"] = map[string]any{"type": "string", "description": "The job that stored it."}
	req := result["required"].([]any)
	result["required"] = append(req, "id", "receivedAt", "processedAt", "jobId")
	return upload, result, nil
}

// hoistDefs makes the product schemas plain components: each keeps no $id
// or $schema of its own (the document's dialect is JSON Schema 2020-12), and
// its $defs become components named prefix+Name, with every #/$defs/name
// reference pointing there. Common tools resolve #/components/schemas/...,
// not a reference relative to a nested $id. The $defs of the schemas must
// agree. It fails on a reference it cannot rewrite.
func hoistDefs(prefix string, schemas ...map[string]any) (map[string]any, error) {
	defs := map[string]any{}
	for _, s := range schemas {
		d, _ := s["$defs"].(map[string]any)
		for name, v := range d {
			k := prefix + strings.ToUpper(name[:1]) + name[1:]
			if prev, ok := defs[k]; ok && !reflect.DeepEqual(prev, v) {
				return nil, fmt.Errorf("$defs/%s differs between the upload and result schemas", name)
			}
			defs[k] = v
		}
		delete(s, "$defs")
		delete(s, "$id")
		delete(s, "$schema")
	}
	var err error
	rewrite := func(v any) {
		walkRefs(v, func(ref string) string {
			rest, ok := strings.CutPrefix(ref, "#/$defs/")
			if !ok || rest == "" {
				if !strings.HasPrefix(ref, "#/components/") && err == nil {
					err = fmt.Errorf("$ref %q: only #/$defs/... and #/components/... are supported", ref)
				}
				return ref
			}
			name, tail, _ := strings.Cut(rest, "/")
			k := prefix + strings.ToUpper(name[:1]) + name[1:]
			if _, ok := defs[k]; !ok && err == nil {
				err = fmt.Errorf("$ref %q: no such $defs entry", ref)
			}
			if tail != "" {
				return "#/components/schemas/" + k + "/" + tail
			}
			return "#/components/schemas/" + k
		})
	}
	for _, s := range schemas {
		rewrite(s)
	}
	for _, v := range defs {
		rewrite(v)
	}
	return defs, err
}

// walkRefs replaces every "$ref" string inside v by f of it.
func walkRefs(v any, f func(string) string) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && k == "$ref" {
				x[k] = f(s)
				continue
			}
			walkRefs(e, f)
		}
	case []any:
		for _, e := range x {
			walkRefs(e, f)
		}
	}
}

func productTitle(p events.Product) string { return strings.ToUpper(string(p[:1])) + string(p[1:]) }

// addTenantHeaders adds the X-Organization-Id and X-Project-Id parameters to
// every authenticated /api/v1 operation that lacks them.
func addTenantHeaders(paths map[string]any) {
	for p, item := range paths {
		if !strings.HasPrefix(p, "/api/v1/") {
			continue
		}
		for m, v := range item.(map[string]any) {
			op, ok := v.(map[string]any)
			if !ok || !isMethod(m) {
				continue
			}
			if sec, ok := op["security"].([]any); ok && len(sec) == 0 {
				continue
			}
			params, _ := op["parameters"].([]any)
			has := map[string]bool{}
			for _, prm := range params {
				if pm, ok := prm.(map[string]any); ok {
					has[fmt.Sprint(pm["$ref"])] = true
					has[fmt.Sprint(pm["name"])] = true
				}
			}
			var add []any
			for _, h := range []string{"OrganizationId", "ProjectId"} {
				if !has["#/components/parameters/"+h] && !has["X-"+strings.Replace(h, "Id", "-Id", 1)] {
					add = append(add, map[string]any{"$ref": "#/components/parameters/" + h})
				}
			}
			if len(add) > 0 {
				op["parameters"] = append(add, params...)
			}
		}
	}
}

func isMethod(m string) bool {
	switch strings.ToLower(m) {
	case "get", "put", "post", "delete", "options", "head", "patch", "trace":
		return true
	}
	return false
}

func objectAt(m map[string]any, k string) map[string]any {
	v, ok := m[k].(map[string]any)
	if !ok {
		v = map[string]any{}
		m[k] = v
	}
	return v
}

// openapiPath turns a gin route (/a/:id/*rest) into an OpenAPI path (/a/{id}/{rest}).
func openapiPath(route string) string {
	parts := strings.Split(route, "/")
	for i, s := range parts {
		if strings.HasPrefix(s, ":") || strings.HasPrefix(s, "*") {
			parts[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(parts, "/")
}

// asyncapiHandler serves the AsyncAPI document of the events.
func (a *API) asyncapiHandler() gin.HandlerFunc {
	return a.documentHandler("AsyncAPI", AsyncAPIDocument)
}

// AsyncAPIDocument builds the AsyncAPI document of the events, the payload
// of each received event described by its product's upload schema.
func AsyncAPIDocument() ([]byte, error) {
	up := map[events.Product]json.RawMessage{}
	for _, p := range events.Products {
		up[p] = schema.Raw(p)
	}
	return events.AsyncAPIDocument(events.AsyncAPIOptions{UploadSchemas: up})
}

// openapiHandler serves the OpenAPI document.
func (a *API) openapiHandler() gin.HandlerFunc {
	return a.documentHandler("OpenAPI", func() ([]byte, error) {
		return OpenAPIDocument(OpenAPILimits{MaxBodyBytes: a.opts.MaxBodyBytes})
	})
}

// documentHandler builds a document once and serves it.
func (a *API) documentHandler(name string, build func() ([]byte, error)) gin.HandlerFunc {
	doc, err := build()
	if err != nil {
		a.log.Error("building a document", "document", name, "err", err)
	}
	return func(c *gin.Context) {
		if err != nil {
			problem(c, http.StatusInternalServerError, "internal", "the "+name+" document could not be built")
			return
		}
		c.Data(http.StatusOK, "application/json", doc)
	}
}
