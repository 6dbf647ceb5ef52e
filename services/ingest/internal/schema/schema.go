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
	"reflect"
	"regexp"
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

// Validator validates the uploads of the three products.
type Validator struct {
	schemas map[events.Product]*jsonschema.Schema
	printer *message.Printer
	now     func() time.Time
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
	v := &Validator{schemas: map[events.Product]*jsonschema.Schema{}, printer: message.NewPrinter(language.English), now: now}
	for _, p := range events.Products {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Raw(p)))
		if err != nil {
			return nil, fmt.Errorf("reading %s schema: %w", p, err)
		}
		url := string(p) + ".json"
		if err := c.AddResource(url, doc); err != nil {
			return nil, fmt.Errorf("adding %s schema: %w", p, err)
		}
		sch, err := c.Compile(url)
		if err != nil {
			return nil, fmt.Errorf("compiling %s schema: %w", p, err)
		}
		v.schemas[p] = sch
	}
	return v, nil
}

// Validate checks body as an upload of product p for the tenant org/project.
// It returns every bad field, sorted by path; none means the body is valid.
func (v *Validator) Validate(p events.Product, org, project string, body []byte) []FieldError {
	errs, _ := v.Canonical(p, org, project, body)
	return errs
}

// Canonical validates body as Validate does and, when it is valid, returns it
// re-encoded canonically: keys sorted, no insignificant spaces, numbers as
// written, so equal payloads hash equally.
func (v *Validator) Canonical(p events.Product, org, project string, body []byte) ([]FieldError, []byte) {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return []FieldError{{Field: "", Message: "body is not valid JSON: " + err.Error()}}, nil
	}
	if _, ok := inst.(map[string]any); !ok {
		return []FieldError{{Field: "", Message: "body must be a JSON object"}}, nil
	}
	errs := v.check(p, org, project, body, inst)
	if len(errs) > 0 {
		return errs, nil
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(inst); err != nil {
		return []FieldError{{Field: "", Message: "body cannot be re-encoded: " + err.Error()}}, nil
	}
	return nil, bytes.TrimRight(out.Bytes(), "\n")
}

func (v *Validator) check(p events.Product, org, project string, body []byte, inst any) []FieldError {
	var errs []FieldError
	if err := v.schemas[p].Validate(inst); err != nil {
		if ve, ok := err.(*jsonschema.ValidationError); ok {
			errs = v.leaves(ve, errs)
		} else {
			errs = append(errs, FieldError{Message: err.Error()})
		}
	}
	// Business checks run on what decodes, so schema and business errors come together.
	bad := map[string]bool{}
	for _, e := range errs {
		bad[e.Field] = true
	}
	errs = append(errs, v.business(p, org, project, body, bad)...)
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Field < errs[j].Field })
	return dedupe(errs)
}

func (v *Validator) leaves(ve *jsonschema.ValidationError, out []FieldError) []FieldError {
	if _, ok := ve.ErrorKind.(*kind.PropertyNames); ok {
		// The library locates these errors wrongly (a reused location
		// slice); the business checks name the bad names instead.
		return out
	}
	if len(ve.Causes) == 0 {
		at := path(ve.InstanceLocation)
		switch k := ve.ErrorKind.(type) {
		case *kind.Required:
			for _, m := range k.Missing {
				out = append(out, FieldError{Field: join(at, m), Message: "is required"})
			}
			return out
		case *kind.AdditionalProperties:
			for _, m := range k.Properties {
				out = append(out, FieldError{Field: join(at, m), Message: "is not a known field"})
			}
			return out
		}
		return append(out, FieldError{Field: at, Message: ve.ErrorKind.LocalizedString(v.printer)})
	}
	for _, c := range ve.Causes {
		out = v.leaves(c, out)
	}
	return out
}

func join(at, name string) string {
	if at == "" {
		return name
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

func (v *Validator) business(p events.Product, org, project string, body []byte, bad map[string]bool) []FieldError {
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
	if len(bad) == 0 {
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
			if len(bad) == 0 && len(errs) == 0 {
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
		var in events.AutopilotLedger
		if err := json.Unmarshal(body, &in); err != nil {
			if len(bad) == 0 && len(errs) == 0 {
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
			if len(bad) == 0 && len(errs) == 0 {
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
