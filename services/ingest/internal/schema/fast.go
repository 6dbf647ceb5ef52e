package schema

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/valyala/fastjson"

	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/jsonx"
)

// The fast path: a valid upload is checked and made canonical in one walk
// over a fastjson tree, against the same JSON Schemas compiled into a small
// tree of the keywords they use, with the business checks on the same tree.
// It answers only "valid, and here are the canonical bytes" or "not sure":
// anything it does not accept, for any reason, goes to the full path
// (jsonschema and the typed decode), which names every bad field. So it may
// be strict — numbers with more than 15 digits, strings that are not valid
// UTF-8, duplicate keys, times outside the plain RFC 3339 shapes all take the
// full path — but it must never accept what the full path refuses, nor make
// other canonical bytes: TestFastPathAgreesWithTheFullPath checks both on
// thousands of mutated bodies.

// node is one compiled schema: the subset of JSON Schema 2020-12 the upload
// schemas use. A keyword outside it fails New, so a schema change cannot
// silently widen the fast path.
type node struct {
	typ      string // object, array, string, number, integer, boolean, or "" (enum)
	props    map[string]*node
	required []string
	// An object's properties in the order it is written (sorted, as
	// encoding/json sorts a map's keys), each with its schema and written
	// name, so that an object is written by looking its members up rather
	// than sorting them; only members that additionalProperties admits are
	// sorted per object. byLen lists the indices of the keys of each length
	// (cheaper to look a member up by than hashing it).
	keys     []string
	byLen    [][]int
	subs     []*node
	quoted   [][]byte // `"name":`
	req      []int    // the indices in keys of the required properties
	reqOther []string // required names that are not properties
	closed   bool     // additionalProperties: false
	addl     *node    // additionalProperties: a schema
	items    *node
	maxItems int // -1: none
	unique   bool
	minLen   int
	maxLen   int // -1: none
	pattern  *regexp.Regexp
	format   string
	enum     []string
	min, max *float64
	maxProps int // -1: none
	names    *regexp.Regexp
}

// compileFast compiles raw (one product's schema) into nodes.
func compileFast(raw []byte) (*node, error) {
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	defs, _ := doc["$defs"].(map[string]any)
	var compile func(m map[string]any, at string) (*node, error)
	compile = func(m map[string]any, at string) (*node, error) {
		if ref, ok := m["$ref"].(string); ok {
			name, found := strings.CutPrefix(ref, "#/$defs/")
			d, ok := defs[name].(map[string]any)
			if !found || !ok || len(m) != 1 {
				return nil, fmt.Errorf("%s: unsupported $ref %q", at, ref)
			}
			return compile(d, ref)
		}
		n := &node{maxItems: -1, maxLen: -1, maxProps: -1}
		for k, val := range m {
			var err error
			switch k {
			case "$schema", "$id", "title", "description", "$defs":
			case "type":
				if n.typ, _ = val.(string); n.typ == "" {
					n.typ = "several" // a list of types: the full path decides
				}
			case "properties":
				n.props = map[string]*node{}
				for name, sub := range val.(map[string]any) {
					if n.props[name], err = compile(sub.(map[string]any), at+"."+name); err != nil {
						return nil, err
					}
				}
			case "required":
				for _, r := range val.([]any) {
					n.required = append(n.required, r.(string))
				}
			case "additionalProperties":
				if b, ok := val.(bool); ok {
					n.closed = !b
				} else if n.addl, err = compile(val.(map[string]any), at+".*"); err != nil {
					return nil, err
				}
			case "items":
				if n.items, err = compile(val.(map[string]any), at+"[]"); err != nil {
					return nil, err
				}
			case "maxItems":
				n.maxItems = int(val.(float64))
			case "uniqueItems":
				n.unique, _ = val.(bool)
			case "minLength":
				n.minLen = int(val.(float64))
			case "maxLength":
				n.maxLen = int(val.(float64))
			case "pattern":
				n.pattern, err = regexp.Compile(val.(string))
			case "format":
				n.format, _ = val.(string)
				if n.format != "date-time" && n.format != "uri" {
					return nil, fmt.Errorf("%s: unsupported format %q", at, n.format)
				}
			case "enum":
				for _, e := range val.([]any) {
					s, ok := e.(string)
					if !ok {
						return nil, fmt.Errorf("%s: an enum of other than strings", at)
					}
					n.enum = append(n.enum, s)
				}
			case "minimum":
				f := val.(float64)
				n.min = &f
			case "maximum":
				f := val.(float64)
				n.max = &f
			case "maxProperties":
				n.maxProps = int(val.(float64))
			case "propertyNames":
				pn, _ := val.(map[string]any)
				p, ok := pn["pattern"].(string)
				if !ok || len(pn) != 1 {
					return nil, fmt.Errorf("%s: unsupported propertyNames", at)
				}
				n.names, err = regexp.Compile(p)
			default:
				return nil, fmt.Errorf("%s: keyword %q is not supported by the fast path", at, k)
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", at, err)
			}
		}
		n.order()
		if n.names != nil {
			for _, k := range n.keys {
				if !n.names.MatchString(k) {
					return nil, fmt.Errorf("%s: property %q does not match propertyNames", at, k)
				}
			}
		}
		switch n.typ {
		case "object", "array", "string", "number", "integer", "boolean", "several":
		case "":
			if n.enum == nil {
				return nil, fmt.Errorf("%s: a schema with neither type nor enum", at)
			}
		default:
			return nil, fmt.Errorf("%s: unsupported type %q", at, n.typ)
		}
		return n, nil
	}
	return compile(doc, "#")
}

// order sorts n's properties into keys and what goes with them.
func (n *node) order() {
	if len(n.props) == 0 {
		n.reqOther = n.required
		return
	}
	n.keys = slices.Sorted(maps.Keys(n.props))
	for i, k := range n.keys {
		if len(k) >= len(n.byLen) {
			n.byLen = append(n.byLen, make([][]int, len(k)+1-len(n.byLen))...)
		}
		n.byLen[len(k)] = append(n.byLen[len(k)], i)
		n.subs = append(n.subs, n.props[k])
		n.quoted = append(n.quoted, append(jsonx.AppendString(nil, []byte(k)), ':'))
	}
	for _, r := range n.required {
		if i := n.find([]byte(r)); i >= 0 {
			n.req = append(n.req, i)
		} else {
			n.reqOther = append(n.reqOther, r)
		}
	}
}

// find returns the index of property k, or -1.
func (n *node) find(k []byte) int {
	if len(k) < len(n.byLen) {
		for _, i := range n.byLen[len(k)] {
			if string(k) == n.keys[i] {
				return i
			}
		}
	}
	return -1
}

// walker is the state of one fast validation, pooled.
type walker struct {
	parser fastjson.Parser
	out    []byte
	num    []byte
	// The members of the objects being walked, outer ones first: slots
	// holds each object's properties by their index in its node's keys,
	// kv its other members.
	slots []*fastjson.Value
	kv    []kvPair
	// What visit fills: the node of the object visited, where its slots
	// start, and whether a property came twice.
	cur   *node
	base  int
	dup   bool
	visit func(k []byte, v *fastjson.Value)
}

type kvPair struct {
	k []byte
	v *fastjson.Value
}

var walkers = sync.Pool{New: func() any {
	w := &walker{}
	w.visit = func(k []byte, v *fastjson.Value) {
		if i := w.cur.find(k); i >= 0 {
			slot := &w.slots[w.base+i]
			w.dup = w.dup || *slot != nil
			*slot = v
			return
		}
		w.kv = append(w.kv, kvPair{k, v})
	}
	return w
}}

func compareKV(a, b kvPair) int { return bytes.Compare(a.k, b.k) }

// fastMaxBody bounds the bodies the fast path takes: its tree of a body
// of tiny items costs tens of times the body, and its pooled parsers keep
// that memory; larger bodies (10,000 issues are about 1.5 MB) take the full
// path, which reads lists item by item.
const fastMaxBody = 256 << 10

// fastCanonical appends the canonical bytes of body to dst when the fast
// path can tell it is a valid upload of p for the tenant.
func (v *Validator) fastCanonical(dst []byte, p events.Product, org, project string, body []byte) ([]byte, bool) {
	root := v.fast[p]
	// The parser below is lenient inside strings (control characters, bad
	// escapes); fastjson's validator is as strict as json.Valid, at a
	// fraction of its cost (it skips plain string runs with IndexByte).
	if root == nil || len(body) > fastMaxBody || fastjson.ValidateBytes(body) != nil || jsonx.SurrogateEscape(body) {
		return nil, false
	}
	w := walkers.Get().(*walker)
	defer walkers.Put(w)
	doc, err := w.parser.ParseBytes(body)
	if err != nil {
		return nil, false
	}
	w.slots, w.kv = w.slots[:0], w.kv[:0]
	out, ok := w.walk(root, doc, w.out[:0])
	w.out = out
	if !ok || !v.fastBusiness(p, org, project, doc) {
		return nil, false
	}
	return append(dst, out...), true
}

// walk validates val against n and appends its canonical form to out.
// out is passed along rather than kept in the walker: a slice written to
// the heap costs a write barrier while the GC marks.
func (w *walker) walk(n *node, val *fastjson.Value, out []byte) ([]byte, bool) {
	if n.enum != nil {
		s, err := val.StringBytes()
		if err != nil || !slices.Contains(n.enum, string(s)) {
			return out, false
		}
		return jsonx.AppendString(out, s), true
	}
	switch n.typ {
	case "object":
		return w.object(n, val, out)
	case "array":
		items, err := val.Array()
		if err != nil || (n.maxItems >= 0 && len(items) > n.maxItems) {
			return out, false
		}
		if n.unique && (n.items.typ != "string" || !uniqueStrings(items)) {
			return out, false // a list of other items takes the full path
		}
		out = append(out, '[')
		ok := true
		for i, it := range items {
			if i > 0 {
				out = append(out, ',')
			}
			if out, ok = w.walk(n.items, it, out); !ok {
				return out, false
			}
		}
		return append(out, ']'), true
	case "string":
		s, err := val.StringBytes()
		if err != nil {
			return out, false
		}
		c, simple := len(s), plain(s)
		if !simple {
			if !utf8.Valid(s) {
				return out, false
			}
			c = utf8.RuneCount(s)
		}
		if c < n.minLen || (n.maxLen >= 0 && c > n.maxLen) {
			return out, false
		}
		if n.pattern != nil && !n.pattern.Match(s) {
			return out, false
		}
		switch n.format {
		case "date-time":
			if _, ok := plainTime(s); !ok {
				return out, false
			}
		case "uri":
			// As the schema library checks it: parsed, absolute, and
			// (conservatively) no IPv6 host.
			u, err := url.Parse(string(s))
			if err != nil || !u.IsAbs() || strings.Contains(u.Hostname(), ":") {
				return out, false
			}
		}
		if simple {
			return append(append(append(out, '"'), s...), '"'), true
		}
		return jsonx.AppendString(out, s), true
	case "number", "integer":
		if val.Type() != fastjson.TypeNumber {
			return out, false
		}
		start := len(out)
		out = val.MarshalTo(out)
		f, ok := plainNumber(out[start:], n.typ == "integer")
		return out, ok && (n.min == nil || f >= *n.min) && (n.max == nil || f <= *n.max)
	case "boolean":
		switch val.Type() {
		case fastjson.TypeTrue:
			return append(out, "true"...), true
		case fastjson.TypeFalse:
			return append(out, "false"...), true
		}
	}
	return out, false
}

// uniqueStrings reports whether a list of strings repeats none.
func uniqueStrings(items []*fastjson.Value) bool {
	if len(items) <= 32 {
		for i := range items {
			for j := range i {
				if bytes.Equal(items[i].GetStringBytes(), items[j].GetStringBytes()) {
					return false
				}
			}
		}
		return true
	}
	seen := make(map[string]struct{}, len(items))
	for _, it := range items {
		s := it.GetStringBytes()
		if _, dup := seen[string(s)]; dup {
			return false
		}
		seen[string(s)] = struct{}{}
	}
	return true
}

// object validates an object and writes it with its keys sorted: its
// properties in their node's order, merged with its other members sorted.
func (w *walker) object(n *node, val *fastjson.Value, out []byte) ([]byte, bool) {
	o, err := val.Object()
	if err != nil || (n.maxProps >= 0 && o.Len() > n.maxProps) {
		return out, false
	}
	base, start := len(w.slots), len(w.kv)
	w.slots = append(w.slots, make([]*fastjson.Value, len(n.keys))...)
	defer func() { w.slots, w.kv = w.slots[:base], w.kv[:start] }()
	w.cur, w.base, w.dup = n, base, false
	o.Visit(w.visit)
	if w.dup {
		return out, false // a duplicate key: the full path decides which one counts
	}
	others := w.kv[start:]
	if len(others) > 0 {
		if n.closed || n.addl == nil {
			return out, false
		}
		slices.SortFunc(others, compareKV)
		for i, kv := range others {
			if (i > 0 && bytes.Equal(kv.k, others[i-1].k)) || !utf8.Valid(kv.k) || (n.names != nil && !n.names.Match(kv.k)) {
				return out, false
			}
		}
	}
	for _, i := range n.req {
		if w.slots[base+i] == nil {
			return out, false
		}
	}
	for _, r := range n.reqOther {
		if _, found := slices.BinarySearchFunc(others, r, func(kv kvPair, r string) int { return strings.Compare(string(kv.k), r) }); !found {
			return out, false
		}
	}
	// w.slots and w.kv may move while members are walked: index them,
	// not others.
	end := len(w.kv)
	out = append(out, '{')
	ok, j := true, start
	for i, k := range n.keys {
		v := w.slots[base+i]
		if v == nil {
			continue
		}
		for ; j < end && string(w.kv[j].k) < k; j++ {
			if out, ok = w.other(n, w.kv[j], out); !ok {
				return out, false
			}
		}
		out = append(comma(out), n.quoted[i]...)
		if out, ok = w.walk(n.subs[i], v, out); !ok {
			return out, false
		}
	}
	for ; j < end; j++ {
		if out, ok = w.other(n, w.kv[j], out); !ok {
			return out, false
		}
	}
	return append(out, '}'), true
}

// other writes a member of an object that is not one of its properties.
func (w *walker) other(n *node, kv kvPair, out []byte) ([]byte, bool) {
	out = append(jsonx.AppendString(comma(out), kv.k), ':')
	return w.walk(n.addl, kv.v, out)
}

// comma separates a member from the one before it, if any.
func comma(out []byte) []byte {
	if out[len(out)-1] != '{' {
		return append(out, ',')
	}
	return out
}

// plainNumber parses a number of at most 15 significant characters (so
// that float64 compares it with the schema's bounds exactly); an integer
// must be written as one (no fraction, no exponent) and fit int64.
func plainNumber(lit []byte, integer bool) (float64, bool) {
	if len(lit) > 16 {
		return 0, false
	}
	if integer {
		n, err := strconv.ParseInt(string(lit), 10, 64)
		return float64(n), err == nil
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	return f, err == nil && !math.IsInf(f, 0) && !math.IsNaN(f)
}

// timeShape is the plain RFC 3339 shape both the schema's date-time format
// and Go's time.Time accept: upper-case T and Z, hours below 24 and
// minutes and seconds below 60 (in the offset too: Go takes +24:00).
var timeShape = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,9})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$`)

func plainTime(s []byte) (time.Time, bool) {
	if !timeShape.Match(s) {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(s))
	return t, err == nil
}

// fastBusiness runs the business checks of business() on the tree: those a
// schema cannot state. A body they refuse takes the full path, which names
// the field.
func (v *Validator) fastBusiness(p events.Product, org, project string, doc *fastjson.Value) bool {
	if string(doc.GetStringBytes("organizationId")) != org || string(doc.GetStringBytes("projectId")) != project {
		return false
	}
	ts, ok := plainTime(doc.GetStringBytes("timestamp"))
	if !ok || ts.Before(Oldest) || ts.After(v.now().Add(Skew)) {
		return false
	}
	switch p {
	case events.Insight:
		sev := doc.Get("issuesBySeverity")
		counts := [4]int64{}
		var sum int64
		for i, s := range events.Severities {
			counts[i] = sev.GetInt64(s)
			sum += counts[i]
		}
		if sum != doc.GetInt64("totalIssues") {
			return false
		}
		var listed [4]int64
		for _, is := range doc.GetArray("issues") {
			i := severityIndex(is.GetStringBytes("severity"))
			if i < 0 {
				return false
			}
			if listed[i]++; listed[i] > counts[i] {
				return false
			}
		}
	case events.Autopilot:
		// The seed's shape (phases.decide.selectedRecipe, act.filesModified,
		// verify.trustScore and qualityImproved) is made canonical by the
		// full path; here the top-level one only.
		for _, k := range []string{"filesModified", "trustScore", "qualityImproved"} {
			if !doc.Exists(k) {
				return false
			}
		}
		if doc.Exists("phases", "decide", "selectedRecipe") || doc.Exists("phases", "act", "filesModified") ||
			doc.Exists("phases", "verify", "trustScore") || doc.Exists("phases", "verify", "qualityImproved") {
			return false
		}
		var sum float64
		for _, name := range events.AutopilotPhases {
			ph := doc.Get("phases", name)
			sum += ph.GetFloat64("duration")
			if doc.GetBool("success") && string(ph.GetStringBytes("status")) == string(events.PhaseFailed) {
				return false
			}
		}
		if total := doc.GetFloat64("totalDuration"); total > 0 && total+1e-6 < sum {
			return false
		}
	case events.Guardian:
		pf := doc.Get("tests", "performance")
		ttfb, fcp, lcp := pf.GetFloat64("ttfb"), pf.GetFloat64("fcp"), pf.GetFloat64("lcp")
		if (fcp > 0 && lcp > 0 && lcp < fcp) || (ttfb > 0 && fcp > 0 && fcp < ttfb) {
			return false
		}
		if !uniqueStrings(doc.GetArray("screenshots")) {
			return false
		}
	}
	return true
}

func severityIndex(b []byte) int {
	for i, s := range events.Severities {
		if string(b) == s {
			return i
		}
	}
	return -1
}

// plain reports whether s is ASCII that JSON writes as it is: no control
// characters, quotes or backslashes. It reads s eight bytes at a time.
func plain(s []byte) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := binary.LittleEndian.Uint64(s[i:])
		if x&highs != 0 {
			return false // not ASCII
		}
		// With every byte below 0x80, (y - ones) & ^y & highs is not zero
		// exactly when a byte of y is zero, and (x - 0x20*ones) & ^x & highs
		// when a byte of x is below 0x20.
		q, b := x^(ones*'"'), x^(ones*'\\')
		if ((x-ones*0x20)&^x|(q-ones)&^q|(b-ones)&^b)&highs != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
