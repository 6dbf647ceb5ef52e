package events

import (
	"embed"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"
)

// The AsyncAPI 3.0 document of the events is generated from this package:
// the data schemas from the payload types (by reflection, so a field added to
// a type is in the document), the channels from the subject patterns, one
// message per event type with its golden example. The gateway serves it at
// /api/v1/asyncapi.json; `make contracts` lints it with @asyncapi/parser.

// SchemaBase prefixes the id of every data schema: the dataschema attribute
// of an event of type t is SchemaBase + t + ".json", the $id of the schema of
// its data in the AsyncAPI document.
const SchemaBase = "https://odavl.dev/schemas/events/"

// DataSchema is the dataschema attribute of an event of type typ.
func DataSchema(typ string) string { return SchemaBase + typ + ".json" }

// Sources of the services that publish events (the CloudEvents source).
const (
	SourceIngest  = "/odavl-sync/ingest"
	SourceJobs    = "/odavl-sync/jobs"
	SourceStorage = "/odavl-sync/storage"
)

// TimeLayout is the layout of the envelope's time: UTC, milliseconds.
const TimeLayout = "2006-01-02T15:04:05.000Z"

//go:embed testdata/*.json
var examples embed.FS

// channel is one subject pattern of the document.
type channel struct {
	id, address, description string
	params                   map[string]param
}

type param struct {
	description string
	enum        []string
}

// message is one event type of the document.
type message struct {
	id, typ, channel, summary, resource string
	sources                             []string
	data                                any
	// fixed pins properties of the data (the product of a product's event).
	fixed map[string]string
}

var tenantParams = map[string]param{
	"organizationId": {description: "The organization id: 1-64 letters, digits, '-' or '_'."},
	"projectId":      {description: "The project id: 1-64 letters, digits, '-' or '_'."},
}

func withTenant(extra map[string]param) map[string]param {
	m := map[string]param{}
	for k, v := range tenantParams {
		m[k] = v
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func catalog() ([]channel, []message) {
	products := make([]string, len(Products))
	for i, p := range Products {
		products[i] = string(p)
	}
	chans := []channel{
		{"uploadReceived", "sync.v1.{organizationId}.{projectId}.{product}.received.{uploadId}", "Uploads the gateway accepted, published before it answers 202 (stream SYNC), each on a subject of its own: the first message on it is the upload's idempotency record. Subscribe to sync.v1.{organizationId}.{projectId}.{product}.received.*.",
			withTenant(map[string]param{"product": {"The product that uploaded.", products}, "uploadId": {"The upload id (up_ and 32 hex digits; a manual retry is published again on it).", nil}})},
		{"uploadProcessed", "sync.v1.{organizationId}.{projectId}.{product}.processed", "Uploads stored as results (stream SYNC).",
			withTenant(map[string]param{"product": {"The product that uploaded.", products}})},
		{"criticalAlert", "sync.v1.{organizationId}.{projectId}.insight.alert.critical", "Insight uploads that count critical issues, once per upload (stream SYNC).", withTenant(nil)},
		{"jobSubmitted", "jobs.v1.{priority}.{jobType}", "Background jobs submitted to the queue (stream JOBS; queue-internal).",
			map[string]param{"priority": {"The queue priority.", []string{"low", "normal", "high", "critical", "delayed"}}, "jobType": {"The job type, e.g. INSIGHT_ANALYSIS.", nil}}},
		{"jobStatus", "jobs.v1.events.{organizationId}.{projectId}.{status}", "Job lifecycle changes and progress (stream JOBS).",
			withTenant(map[string]param{"status": {"The job's new status, lower case.", []string{"waiting", "active", "progress", "completed", "failed", "delayed", "paused", "cancelled"}}})},
		{"fileEvent", "storage.v1.{organizationId}.{projectId}.file.{kind}", "Files uploaded, deleted or expired (stream STORAGE).",
			withTenant(map[string]param{"kind": {"What happened to the file.", []string{"uploaded", "deleted", "expired"}}})},
	}
	var msgs []message
	for _, p := range Products {
		t := strings.ToUpper(string(p[:1])) + string(p[1:])
		msgs = append(msgs, message{
			id: string(p) + "Received", typ: ReceivedType(p), channel: "uploadReceived", resource: "upload id",
			summary: "A " + t + " upload was accepted; payload is the upload as validated (schema " + t + "Upload in /api/v1/openapi.json). A manual retry is published again by jobs.",
			sources: []string{SourceIngest, SourceJobs}, data: Received{}, fixed: map[string]string{"product": string(p)},
		})
	}
	for _, p := range Products {
		t := strings.ToUpper(string(p[:1])) + string(p[1:])
		msgs = append(msgs, message{
			id: string(p) + "Processed", typ: ProcessedType(p), channel: "uploadProcessed", resource: "upload id",
			summary: "A " + t + " upload is stored as a result, with the figures statistics count.",
			sources: []string{SourceJobs}, data: Processed{}, fixed: map[string]string{"product": string(p)},
		})
	}
	msgs = append(msgs,
		message{id: "criticalAlert", typ: TypeCriticalAlert, channel: "criticalAlert", resource: "upload id",
			summary: "An Insight upload counts critical issues.", sources: []string{SourceJobs}, data: CriticalAlert{}},
		message{id: "jobSubmitted", typ: TypeJobSubmitted, channel: "jobSubmitted", resource: "job id",
			summary: "A background job was submitted (queue-internal; the data is owned by the jobs service and may change).",
			sources: []string{SourceJobs}, data: map[string]any{}},
		message{id: "jobStatus", typ: TypeJobStatus, channel: "jobStatus", resource: "job id",
			summary: "A job changed status or reported progress.", sources: []string{SourceJobs}, data: JobStatusChanged{}},
		message{id: "fileEvent", typ: TypeFileEvent, channel: "fileEvent", resource: "file id",
			summary: "A file was uploaded, deleted or expired.", sources: []string{SourceStorage}, data: FileChanged{}},
	)
	return chans, msgs
}

// schemaName is the component name of the data schema of typ:
// dev.odavl.sync.insight.received.v1 → SyncInsightReceivedV1.
func schemaName(typ string) string {
	var b strings.Builder
	for _, s := range strings.Split(strings.TrimPrefix(typ, "dev.odavl."), ".") {
		b.WriteString(strings.ToUpper(s[:1]) + s[1:])
	}
	return b.String()
}

// AsyncAPIOptions add what this package does not hold to the document.
type AsyncAPIOptions struct {
	// UploadSchemas are the JSON schemas of the uploads per product (the
	// gateway's validator's): each becomes the schema of the payload of the
	// product's received event, its $defs inlined. Without one the payload
	// is any object.
	UploadSchemas map[Product]json.RawMessage
}

// AsyncAPIDocument builds the AsyncAPI 3.0 document of every event.
func AsyncAPIDocument(opts AsyncAPIOptions) ([]byte, error) {
	chans, msgs := catalog()
	channels := map[string]any{}
	for _, c := range chans {
		params := map[string]any{}
		for k, p := range c.params {
			v := map[string]any{"description": p.description}
			if p.enum != nil {
				v["enum"] = p.enum
			}
			params[k] = v
		}
		channels[c.id] = map[string]any{
			"address": c.address, "description": c.description, "parameters": params,
			"messages": map[string]any{},
		}
	}
	schemas := map[string]any{}
	messages := map[string]any{}
	operations := map[string]any{}
	for _, m := range msgs {
		ch, ok := channels[m.channel].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("message %s: no channel %s", m.id, m.channel)
		}
		data := schemaOf(reflect.TypeOf(m.data))
		data["$id"] = DataSchema(m.typ)
		data["title"] = m.typ + " data"
		if props, ok := data["properties"].(map[string]any); ok {
			for k, v := range m.fixed {
				props[k] = map[string]any{"type": "string", "const": v}
			}
			if raw, ok := opts.UploadSchemas[Product(m.fixed["product"])]; ok && reflect.TypeOf(m.data) == reflect.TypeOf(Received{}) {
				up, err := inlineDefs(raw)
				if err != nil {
					return nil, fmt.Errorf("upload schema of %s: %w", m.fixed["product"], err)
				}
				props["payload"] = up
			}
		}
		name := schemaName(m.typ)
		schemas[name] = data
		msg := map[string]any{
			"name": m.typ, "title": m.typ, "summary": m.summary,
			"contentType": "application/cloudevents+json",
			"headers":     map[string]any{"$ref": "#/components/schemas/NatsHeaders"},
			"payload":     envelopeSchema(m, "#/components/schemas/"+name),
		}
		if ex, err := examples.ReadFile("testdata/" + m.typ + ".json"); err == nil {
			var v any
			if err := json.Unmarshal(ex, &v); err != nil {
				return nil, fmt.Errorf("example of %s: %w", m.typ, err)
			}
			msg["examples"] = []any{map[string]any{
				"name": "example", "headers": map[string]any{"Nats-Msg-Id": v.(map[string]any)["id"], "Ce-Type": m.typ}, "payload": v,
			}}
		}
		messages[m.id] = msg
		ch["messages"].(map[string]any)[m.id] = map[string]any{"$ref": "#/components/messages/" + m.id}
		op, ok := operations["publish"+strings.ToUpper(m.channel[:1])+m.channel[1:]].(map[string]any)
		if !ok {
			op = map[string]any{
				"action":  "send",
				"channel": map[string]any{"$ref": "#/channels/" + m.channel},
				"summary": "ODAVL Sync publishes on " + ch["address"].(string) + ".",
			}
			operations["publish"+strings.ToUpper(m.channel[:1])+m.channel[1:]] = op
		}
		list, _ := op["messages"].([]any)
		op["messages"] = append(list, map[string]any{"$ref": "#/channels/" + m.channel + "/messages/" + m.id})
	}
	schemas["NatsHeaders"] = map[string]any{
		"type": "object",
		"properties": map[string]any{
			"Nats-Msg-Id": map[string]any{"type": "string", "description": "The event id: JetStream drops a repeated publish inside the stream's dedupe window."},
			"Ce-Type":     map[string]any{"type": "string", "description": "The event type, to route without parsing the body."},
			"traceparent": map[string]any{"type": "string", "description": "W3C trace context of the publisher's span, when the publish was traced (e.g. an upload's HTTP request): continue the trace from it."},
			"tracestate":  map[string]any{"type": "string", "description": "W3C trace state that goes with traceparent, when there is one."},
		},
	}
	doc := map[string]any{
		"asyncapi": "3.0.0",
		"info": map[string]any{
			"title":   "ODAVL Sync events",
			"version": "1.0.0",
			"description": "Every event ODAVL Sync publishes on NATS JetStream: a CloudEvents 1.0 envelope in structured JSON mode. " +
				"Deliveries are at least once (deduplicate by id); additive fields may appear in v1 data, so ignore fields you do not know. " +
				"The catalog with nats CLI recipes is docs/events.md.",
		},
		"defaultContentType": "application/cloudevents+json",
		"servers": map[string]any{
			"local": map[string]any{
				"host": "127.0.0.1:4222", "protocol": "nats",
				"description": "odavl-sync serve's embedded NATS server (--nats-listen).",
			},
		},
		"channels":   channels,
		"operations": operations,
		"components": map[string]any{"schemas": schemas, "messages": messages},
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// inlineDefs is the schema raw with every #/$defs/name reference replaced
// by a copy of that definition, and no $id, $schema or $defs: a schema that
// stands anywhere in the document, whatever base its resolver uses.
func inlineDefs(raw json.RawMessage) (map[string]any, error) {
	var s map[string]any
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, err
	}
	defs, _ := s["$defs"].(map[string]any)
	delete(s, "$defs")
	delete(s, "$id")
	delete(s, "$schema")
	var inline func(v any, depth int) (any, error)
	inline = func(v any, depth int) (any, error) {
		if depth > 32 {
			return nil, fmt.Errorf("$defs nest deeper than 32 (a recursive schema?)")
		}
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				name, ok := strings.CutPrefix(ref, "#/$defs/")
				def, found := defs[name]
				if !ok || !found || strings.Contains(name, "/") {
					return nil, fmt.Errorf("$ref %q: only #/$defs/<name> is supported", ref)
				}
				if len(x) > 1 {
					return nil, fmt.Errorf("$ref %q has sibling keywords", ref)
				}
				return inline(def, depth+1)
			}
			out := make(map[string]any, len(x))
			for k, e := range x {
				var err error
				if out[k], err = inline(e, depth); err != nil {
					return nil, err
				}
			}
			return out, nil
		case []any:
			out := make([]any, len(x))
			for i, e := range x {
				var err error
				if out[i], err = inline(e, depth); err != nil {
					return nil, err
				}
			}
			return out, nil
		}
		return v, nil
	}
	v, err := inline(s, 0)
	if err != nil {
		return nil, err
	}
	return v.(map[string]any), nil
}

// envelopeSchema is the CloudEvents envelope of m, its data a $ref to data.
func envelopeSchema(m message, data string) map[string]any {
	str := func(desc string) map[string]any {
		return map[string]any{"type": "string", "minLength": 1, "description": desc}
	}
	token := map[string]any{"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}
	return map[string]any{
		"type": "object",
		"required": []string{"specversion", "id", "source", "type", "subject", "time",
			"datacontenttype", "dataschema", "organizationid", "projectid", "data"},
		"properties": map[string]any{
			"specversion":     map[string]any{"type": "string", "const": SpecVersion},
			"id":              str("Unique per event; also the Nats-Msg-Id header."),
			"source":          map[string]any{"type": "string", "enum": m.sources, "description": "The publishing service."},
			"type":            map[string]any{"type": "string", "const": m.typ},
			"subject":         str("The resource the event is about: the " + m.resource + "."),
			"time":            map[string]any{"type": "string", "format": "date-time", "pattern": `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`, "description": "When the event was published: UTC, milliseconds."},
			"datacontenttype": map[string]any{"type": "string", "const": "application/json"},
			"dataschema":      map[string]any{"type": "string", "format": "uri", "const": DataSchema(m.typ), "description": "The $id of the data's schema in this document."},
			"organizationid":  token,
			"projectid":       token,
			"data":            map[string]any{"$ref": data},
		},
	}
}

var (
	timeType = reflect.TypeOf(time.Time{})
	rawType  = reflect.TypeOf(json.RawMessage{})
)

// schemaOf is the JSON schema of the JSON encoding of t: a field without
// omitempty is required; unknown fields are allowed (v1 data may grow).
func schemaOf(t reflect.Type) map[string]any {
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == rawType:
		return map[string]any{"type": "object"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return schemaOf(t.Elem())
	case reflect.String:
		s := map[string]any{"type": "string"}
		if t == reflect.TypeOf(Product("")) {
			var e []string
			for _, p := range Products {
				e = append(e, string(p))
			}
			s["enum"] = e
		}
		return s
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem())}
	case reflect.Map:
		s := map[string]any{"type": "object"}
		if t.Elem().Kind() != reflect.Interface {
			s["additionalProperties"] = schemaOf(t.Elem())
		}
		return s
	case reflect.Struct:
		props := map[string]any{}
		required := []string{}
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			props[name] = schemaOf(f.Type)
			if !strings.Contains(opts, "omitempty") {
				required = append(required, name)
			}
		}
		return map[string]any{"type": "object", "properties": props, "required": required}
	}
	return map[string]any{}
}
