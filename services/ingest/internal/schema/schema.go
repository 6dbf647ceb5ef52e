// Package schema validates upload bodies: first against the product's JSON
// schema (types, enums, ranges, lengths, list sizes, unknown fields — the
// same schemas the OpenAPI document publishes), then with the checks a schema
// cannot state (totals that must agree, timestamps, tenants). One call
// reports every bad field.
package schema

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/odavl/sync/libs/events"
)

//go:embed *.json
var files embed.FS

// FieldError names one bad field by its path (issues[0].severity) and says what is wrong.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// MaxReported bounds the bad fields one validation lists; Report.Total
// counts them all. A hostile body can hold a million bad fields: listing
// them made a 300 KB upload cost 200 MB and a 17 MB answer.
const MaxReported = 100

// maxMarked bounds the bad fields remembered to keep the business checks
// from naming them again.
const maxMarked = 10_000

// Report is what a validation found: the first MaxReported bad fields (the
// body's own fields before its list items), sorted by path, and how many
// there are in all.
type Report struct {
	Fields []FieldError
	Total  int
}

// Validator validates the uploads of the three products.
type Validator struct {
	schemas map[events.Product]productSchema
	// fast are the schemas compiled for the fast path (fast.go).
	fast    map[events.Product]*node
	printer *message.Printer
	now     func() time.Time
}

// productSchema is one product's schema, with its top-level lists apart:
// their items are decoded and validated one at a time, so the memory a body
// costs does not grow with its bad items, and a list longer than its
// maxItems is refused without looking at the rest.
type productSchema struct {
	whole *jsonschema.Schema
	lists map[string]listSchema
}

type listSchema struct {
	max    int
	unique bool
	items  *jsonschema.Schema
}

// Raw returns the JSON schema of product p, for the OpenAPI document.
func Raw(p events.Product) json.RawMessage {
	b, err := files.ReadFile(string(p) + ".json")
	if err != nil {
		panic(err) // embedded at build time
	}
	return b
}

// New compiles the schemas.
func New(now func() time.Time) (*Validator, error) {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	v := &Validator{schemas: map[events.Product]productSchema{}, fast: map[events.Product]*node{}, printer: message.NewPrinter(language.English), now: now}
	for _, p := range events.Products {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Raw(p)))
		if err != nil {
			return nil, fmt.Errorf("reading %s schema: %w", p, err)
		}
		url := string(p) + ".json"
		if err := c.AddResource(url, doc); err != nil {
			return nil, fmt.Errorf("adding %s schema: %w", p, err)
		}
		ps := productSchema{lists: map[string]listSchema{}}
		if ps.whole, err = c.Compile(url); err != nil {
			return nil, fmt.Errorf("compiling %s schema: %w", p, err)
		}
		var top struct {
			Properties map[string]struct {
				Type        string          `json:"type"`
				MaxItems    int             `json:"maxItems"`
				UniqueItems bool            `json:"uniqueItems"`
				Items       json.RawMessage `json:"items"`
			} `json:"properties"`
		}
		if err := json.Unmarshal(Raw(p), &top); err != nil {
			return nil, fmt.Errorf("reading %s schema: %w", p, err)
		}
		for name, prop := range top.Properties {
			if prop.Type != "array" || prop.MaxItems == 0 || prop.Items == nil {
				continue // every list of the contract is bounded
			}
			ls := listSchema{max: prop.MaxItems, unique: prop.UniqueItems}
			if ls.items, err = c.Compile(url + "#/properties/" + name + "/items"); err != nil {
				return nil, fmt.Errorf("compiling %s schema of %s items: %w", p, name, err)
			}
			ps.lists[name] = ls
		}
		v.schemas[p] = ps
		if v.fast[p], err = compileFast(Raw(p)); err != nil {
			return nil, fmt.Errorf("compiling %s schema for the fast path: %w", p, err)
		}
	}
	return v, nil
}

// Validate checks body as an upload of product p for the tenant org/project.
// It returns the first MaxReported bad fields, sorted by path; none means
// the body is valid.
func (v *Validator) Validate(p events.Product, org, project string, body []byte) []FieldError {
	r, _ := v.Canonical(p, org, project, body)
	return r.Fields
}

// Canonical validates body as Validate does and, when it is valid, returns it
// re-encoded canonically: keys sorted, no insignificant spaces, numbers as
// written, so equal payloads hash equally.
func (v *Validator) Canonical(p events.Product, org, project string, body []byte) (Report, []byte) {
	return v.AppendCanonical(nil, p, org, project, body)
}

// AppendCanonical is Canonical appending the canonical bytes to dst (a
// buffer the caller reuses).
func (v *Validator) AppendCanonical(dst []byte, p events.Product, org, project string, body []byte) (Report, []byte) {
	if c, ok := v.fastCanonical(dst, p, org, project, body); ok {
		return Report{}, c
	}
	r, c := v.fullCanonical(p, org, project, body)
	if dst == nil || r.Total > 0 {
		return r, c
	}
	return r, append(dst, c...)
}

// fullCanonical is Canonical without the fast path: it names every bad field.
func (v *Validator) fullCanonical(p events.Product, org, project string, body []byte) (Report, []byte) {
	ps := v.schemas[p]
	own, items := &collector{bad: map[string]bool{}}, &collector{}
	items.bad = own.bad
	doc, tooLong, err := v.decode(ps, body, own, items)
	if err != nil {
		return Report{Fields: []FieldError{{Field: "", Message: err.Error()}}, Total: 1}, nil
	}
	whole := doc.withoutLists(ps)
	boundLists(whole, maxListItems)
	if err := ps.whole.Validate(whole); err != nil {
		if ve, ok := err.(*jsonschema.ValidationError); ok {
			v.leaves(ve, "", own)
		} else {
			own.add(FieldError{Message: err.Error()})
		}
	}
	// Business checks run on what decodes, so schema and business errors
	// come together; a list over its bound is not decoded again.
	if !tooLong {
		for _, e := range v.business(p, org, project, body, own.bad, own.total+items.total) {
			own.add(e)
		}
	}
	if r := report(own, items); r.Total > 0 {
		return r, nil
	}
	if p == events.Autopilot {
		normalizeLedger(doc)
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(map[string]any(doc)); err != nil {
		return Report{Fields: []FieldError{{Field: "", Message: "body cannot be re-encoded: " + err.Error()}}, Total: 1}, nil
	}
	return Report{}, bytes.TrimRight(out.Bytes(), "\n")
}

// document is a decoded body.
type document map[string]any

// withoutLists is d with its top-level lists empty: their items were
// validated already, one at a time.
func (d document) withoutLists(ps productSchema) map[string]any {
	out := make(map[string]any, len(d))
	for k, val := range d {
		if _, ok := ps.lists[k]; ok {
			if _, isList := val.([]any); isList {
				val = []any{}
			}
		}
		out[k] = val
	}
	return out
}

// maxListItems is the largest maxItems of the contract: a list nested in a
// body (the top-level ones are read item by item) is cut one item past it
// before the schema sees it, so that its maxItems still fails but a list of
// a million bad items does not make a million errors.
const maxListItems = 10_000

func boundLists(v any, limit int) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if l, ok := e.([]any); ok && len(l) > limit+1 {
				x[k] = l[:limit+1]
			}
			boundLists(x[k], limit)
		}
	case []any:
		for _, e := range x {
			boundLists(e, limit)
		}
	}
}

// decode reads body as a JSON object, validating the items of its lists on
// the way (into items; a list over its maxItems into own, and tooLong).
func (v *Validator) decode(ps productSchema, body []byte, own, items *collector) (doc document, tooLong bool, err error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	notJSON := func(err error) error {
		return fmt.Errorf("body is not valid JSON: %v (at byte %d)", err, dec.InputOffset())
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, false, notJSON(err)
	}
	if tok != json.Delim('{') {
		return nil, false, errors.New("body must be a JSON object")
	}
	doc = document{}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, false, notJSON(err)
		}
		key := kt.(string)
		ls, isList := ps.lists[key]
		if !isList {
			var val any
			if err := dec.Decode(&val); err != nil {
				return nil, false, notJSON(err)
			}
			doc[key] = val
			continue
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, false, notJSON(err)
		}
		val, n, err := v.list(key, ls, raw, items)
		if err != nil {
			return nil, false, notJSON(err)
		}
		if n > ls.max {
			own.add(FieldError{Field: key, Message: fmt.Sprintf("has %d items; at most %d are allowed", n, ls.max)})
			val, tooLong = []any{}, true
		}
		doc[key] = val
	}
	if _, err := dec.Token(); err != nil {
		return nil, false, notJSON(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false, fmt.Errorf("body is not valid JSON: more data after the object (at byte %d)", dec.InputOffset())
	}
	return doc, tooLong, nil
}

// list decodes and validates the items of one top-level list (those within
// its maxItems) and counts them. A value that is no list is returned as
// decoded, for the schema to name its type.
func (v *Validator) list(key string, ls listSchema, raw json.RawMessage, out *collector) (val any, n int, err error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if raw[0] != '[' {
		err := dec.Decode(&val)
		return val, 0, err
	}
	_, _ = dec.Token() // [
	var (
		items []any
		seen  map[string]int
	)
	if ls.unique {
		seen = map[string]int{}
	}
	for ; dec.More(); n++ {
		if n >= ls.max {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, 0, err
			}
			continue
		}
		var item any
		if err := dec.Decode(&item); err != nil {
			return nil, 0, err
		}
		at := fmt.Sprintf("%s[%d]", key, n)
		if err := ls.items.Validate(item); err != nil {
			if ve, ok := err.(*jsonschema.ValidationError); ok {
				v.leaves(ve, at, out)
			}
		}
		if seen != nil {
			k, _ := json.Marshal(item)
			if first, dup := seen[string(k)]; dup {
				out.add(FieldError{Field: key, Message: fmt.Sprintf("items at %d and %d are equal", first, n)})
			} else {
				seen[string(k)] = n
			}
		}
		items = append(items, item)
	}
	if items == nil {
		items = []any{}
	}
	return items, n, nil
}

// collector keeps the first MaxReported bad fields and counts them all.
type collector struct {
	fields []FieldError
	total  int
	bad    map[string]bool
}

func (c *collector) add(e FieldError) {
	c.total++
	if len(c.bad) < maxMarked {
		c.bad[e.Field] = true
	}
	if len(c.fields) < MaxReported {
		c.fields = append(c.fields, e)
	}
}

// report lists the body's own bad fields before its items', MaxReported
// in all, sorted by path.
func report(own, items *collector) Report {
	r := Report{Total: own.total + items.total}
	r.Fields = append(own.fields, items.fields[:min(len(items.fields), MaxReported-len(own.fields))]...)
	sort.SliceStable(r.Fields, func(i, j int) bool { return lessPath(r.Fields[i].Field, r.Fields[j].Field) })
	n := len(r.Fields)
	r.Fields = dedupe(r.Fields)
	r.Total -= n - len(r.Fields)
	return r
}

// lessPath orders field paths with list indexes as numbers (issues[2]
// before issues[10]).
func lessPath(a, b string) bool {
	for a != "" && b != "" {
		if isDigit(a[0]) && isDigit(b[0]) {
			i, j := digits(a), digits(b)
			if i != j {
				return i < j
			}
			na, _ := strconv.Atoi(a[:i])
			nb, _ := strconv.Atoi(b[:j])
			if na != nb {
				return na < nb
			}
			a, b = a[i:], b[j:]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func digits(s string) int {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}

func (v *Validator) leaves(ve *jsonschema.ValidationError, prefix string, out *collector) {
	if _, ok := ve.ErrorKind.(*kind.PropertyNames); ok {
		// The library locates these errors wrongly (a reused location
		// slice); the business checks name the bad names instead.
		return
	}
	if len(ve.Causes) == 0 {
		at := join(prefix, path(ve.InstanceLocation))
		switch k := ve.ErrorKind.(type) {
		case *kind.Required:
			for _, m := range k.Missing {
				out.add(FieldError{Field: join(at, m), Message: "is required"})
			}
			return
		case *kind.AdditionalProperties:
			for _, m := range k.Properties {
				out.add(FieldError{Field: join(at, m), Message: "is not a known field"})
			}
			return
		}
		out.add(FieldError{Field: at, Message: ve.ErrorKind.LocalizedString(v.printer)})
		return
	}
	for _, c := range ve.Causes {
		v.leaves(c, prefix, out)
	}
}

func join(at, name string) string {
	switch {
	case at == "":
		return name
	case name == "":
		return at
	}
	return at + "." + name
}

func path(loc []string) string {
	var b strings.Builder
	for _, tok := range loc {
		if _, err := strconv.Atoi(tok); err == nil {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

func dedupe(errs []FieldError) []FieldError {
	out := errs[:0]
	for i, e := range errs {
		if i > 0 && e == errs[i-1] {
			continue
		}
		out = append(out, e)
	}
	return out
}

// metricName is the pattern of Autopilot phase metric names (the schema's propertyNames).
var metricName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,63}$`)

// Oldest and Skew bound upload timestamps: none before 2000, none more than a day ahead.
var (
	Oldest = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	Skew   = 24 * time.Hour
)

func (v *Validator) business(p events.Product, org, project string, body []byte, bad map[string]bool, found int) []FieldError {
	var errs []FieldError
	add := func(field, format string, args ...any) {
		if !bad[field] {
			errs = append(errs, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
		}
	}
	var head struct {
		OrganizationID string    `json:"organizationId"`
		ProjectID      string    `json:"projectId"`
		Timestamp      time.Time `json:"timestamp"`
	}
	// What the schema accepts must also decode into the types the processor
	// stores (an integer written 1.0, a leap second, a number beyond
	// float64): a value that does not is refused here, not after 202.
	undecodable := func(err error) {
		if err == nil {
			return
		}
		var te *json.UnmarshalTypeError
		var pe *time.ParseError
		switch {
		case errors.As(err, &te) && te.Field != "":
			add(te.Field, "cannot be stored as %s: %s (write it as %s)", te.Type, te.Value, wantOf(te.Type.Kind()))
		case errors.As(err, &pe):
			add("timestamp", "is not a valid RFC 3339 time: %s", pe.Message)
		default:
			add("", "cannot be stored: %v", err)
		}
	}
	if found == 0 {
		undecodable(json.Unmarshal(body, &head))
	} else {
		_ = json.Unmarshal(body, &head) // a bad field is reported by the schema
	}
	if head.OrganizationID != "" && head.OrganizationID != org {
		add("organizationId", "is %q but the key and X-Organization-Id are for %q", head.OrganizationID, org)
	}
	if head.ProjectID != "" && head.ProjectID != project {
		add("projectId", "is %q but the key and X-Project-Id are for %q", head.ProjectID, project)
	}
	if !head.Timestamp.IsZero() {
		if head.Timestamp.Before(Oldest) {
			add("timestamp", "is before %s", Oldest.Format(time.DateOnly))
		} else if head.Timestamp.After(v.now().Add(Skew)) {
			add("timestamp", "is more than %s in the future", Skew)
		}
	}
	switch p {
	case events.Insight:
		var in events.InsightResult
		if err := json.Unmarshal(body, &in); err != nil {
			if found == 0 && len(errs) == 0 {
				undecodable(err)
			}
			return errs
		}
		if s := in.IssuesBySeverity.Sum(); s != in.TotalIssues && !bad["issuesBySeverity"] {
			add("totalIssues", "is %d but issuesBySeverity adds up to %d", in.TotalIssues, s)
		}
		listed := map[string]int64{}
		for _, is := range in.Issues {
			listed[is.Severity]++
		}
		counts := map[string]int64{"critical": in.IssuesBySeverity.Critical, "high": in.IssuesBySeverity.High, "medium": in.IssuesBySeverity.Medium, "low": in.IssuesBySeverity.Low}
		for _, sev := range events.Severities {
			if listed[sev] > counts[sev] {
				add("issuesBySeverity."+sev, "is %d but %d %s issues are listed", counts[sev], listed[sev], sev)
			}
		}
	case events.Autopilot:
		// Metric names first, read on their own so other bad fields do not hide them.
		var names struct {
			Phases map[string]struct {
				Metrics map[string]json.RawMessage `json:"metrics"`
			} `json:"phases"`
		}
		_ = json.Unmarshal(body, &names)
		for ph, v := range names.Phases {
			for name := range v.Metrics {
				if !metricName.MatchString(name) {
					add("phases."+ph+".metrics."+name, "is not an allowed metric name: want a letter, then up to 63 letters, digits or '_'")
				}
			}
		}
		errs = append(errs, nestedLedger(body, bad)...)
		var in events.AutopilotLedger
		if err := json.Unmarshal(body, &in); err != nil {
			if found == 0 && len(errs) == 0 {
				undecodable(err)
			}
			return errs
		}
		var sum float64
		allDone := true
		for _, ph := range in.Phases.Each() {
			sum += ph.Phase.Duration
			if ph.Phase.Status == events.PhaseFailed {
				allDone = false
			}
		}
		if in.Success && !allDone {
			add("success", "is true but a phase failed")
		}
		if in.TotalDuration > 0 && in.TotalDuration+1e-6 < sum {
			add("totalDuration", "is %g but the phases took %g", in.TotalDuration, sum)
		}

	case events.Guardian:
		var in events.GuardianRun
		if err := json.Unmarshal(body, &in); err != nil {
			if found == 0 && len(errs) == 0 {
				undecodable(err)
			}
			return errs
		}
		pf := in.Tests.Performance
		if pf.FCP > 0 && pf.LCP > 0 && pf.LCP < pf.FCP {
			add("tests.performance.lcp", "is %g ms, before fcp (%g ms)", pf.LCP, pf.FCP)
		}
		if pf.TTFB > 0 && pf.FCP > 0 && pf.FCP < pf.TTFB {
			add("tests.performance.fcp", "is %g ms, before ttfb (%g ms)", pf.FCP, pf.TTFB)
		}
		seen := map[string]bool{}
		for i, s := range in.Screenshots {
			if seen[s] {
				add(fmt.Sprintf("screenshots[%d]", i), "repeats %q", s)
			}
			seen[s] = true
		}
	}
	return errs
}

// ledgerShapes reads the fields an Autopilot ledger may give at its top
// level or, as the seed describes it, inside its phases.
type ledgerShapes struct {
	SelectedRecipe  *string         `json:"selectedRecipe"`
	FilesModified   json.RawMessage `json:"filesModified"`
	TrustScore      *float64        `json:"trustScore"`
	QualityImproved *bool           `json:"qualityImproved"`
	Phases          struct {
		Decide struct {
			SelectedRecipe *string `json:"selectedRecipe"`
		} `json:"decide"`
		Act struct {
			FilesModified json.RawMessage `json:"filesModified"`
		} `json:"act"`
		Verify struct {
			TrustScore      *float64 `json:"trustScore"`
			QualityImproved *bool    `json:"qualityImproved"`
		} `json:"verify"`
	} `json:"phases"`
}

// nestedLedger checks that each of an Autopilot ledger's recipe, files,
// trust score and quality flag is given at the top level or in its phase
// (the seed's shape, preferred), and that the two agree when both are.
func nestedLedger(body []byte, bad map[string]bool) []FieldError {
	var l ledgerShapes
	if json.Unmarshal(body, &l) != nil {
		return nil // the schema names what does not decode
	}
	var errs []FieldError
	add := func(field, msg string) {
		if !bad[field] {
			errs = append(errs, FieldError{Field: field, Message: msg})
		}
	}
	if l.TrustScore == nil && l.Phases.Verify.TrustScore == nil {
		add("phases.verify.trustScore", "is required (or trustScore at the top level)")
	} else if l.TrustScore != nil && l.Phases.Verify.TrustScore != nil && *l.TrustScore != *l.Phases.Verify.TrustScore {
		add("trustScore", fmt.Sprintf("is %g but phases.verify.trustScore is %g", *l.TrustScore, *l.Phases.Verify.TrustScore))
	}
	if l.QualityImproved == nil && l.Phases.Verify.QualityImproved == nil {
		add("phases.verify.qualityImproved", "is required (or qualityImproved at the top level)")
	} else if l.QualityImproved != nil && l.Phases.Verify.QualityImproved != nil && *l.QualityImproved != *l.Phases.Verify.QualityImproved {
		add("qualityImproved", "differs from phases.verify.qualityImproved")
	}
	if l.SelectedRecipe != nil && l.Phases.Decide.SelectedRecipe != nil && *l.SelectedRecipe != *l.Phases.Decide.SelectedRecipe {
		add("selectedRecipe", fmt.Sprintf("is %q but phases.decide.selectedRecipe is %q", *l.SelectedRecipe, *l.Phases.Decide.SelectedRecipe))
	}
	top, nested := l.FilesModified, l.Phases.Act.FilesModified
	switch {
	case top == nil && nested == nil:
		add("phases.act.filesModified", "is required: the list of files changed, or their count (or filesModified at the top level)")
	case top != nil && nested != nil:
		var list []string
		var n int
		if json.Unmarshal(top, &list) != nil {
			break // the schema names it
		}
		var listed []string
		switch {
		case json.Unmarshal(nested, &n) == nil:
			if n != len(list) {
				add("phases.act.filesModified", fmt.Sprintf("counts %d files but filesModified lists %d", n, len(list)))
			}
		case json.Unmarshal(nested, &listed) == nil && !slices.Equal(listed, list):
			add("phases.act.filesModified", "lists other files than filesModified")
		}
	}
	return errs
}

// normalizeLedger fills an Autopilot ledger's top-level recipe, files,
// trust score and quality flag from its phases, where the seed's shape
// gives them, so every reader finds them in one place. A count of files
// gives an empty list (the paths are not known); the count stays in its
// phase.
func normalizeLedger(doc document) {
	phases, _ := doc["phases"].(map[string]any)
	phase := func(name string) map[string]any { m, _ := phases[name].(map[string]any); return m }
	fill := func(top string, from map[string]any, key string) {
		if _, ok := doc[top]; ok || from == nil {
			return
		}
		if v, ok := from[key]; ok {
			doc[top] = v
		}
	}
	fill("selectedRecipe", phase("decide"), "selectedRecipe")
	fill("trustScore", phase("verify"), "trustScore")
	fill("qualityImproved", phase("verify"), "qualityImproved")
	if _, ok := doc["filesModified"]; !ok {
		switch v := phase("act")["filesModified"].(type) {
		case []any:
			doc["filesModified"] = v
		case nil:
		default:
			doc["filesModified"] = []any{}
		}
	}
}

// wantOf names the JSON a Go kind decodes from, for an error message.
func wantOf(k reflect.Kind) string {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer without a fraction or exponent, such as 3"
	case reflect.Float32, reflect.Float64:
		return "a number within ±1.8e308"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	}
	return "a value of the documented type"
}
