package schema_test

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/odavl/sync/libs/events"
)

// raw is a JSON text written as it is (a number as written, a string with
// bytes JSON would not produce, a duplicate key).
type raw string

// writeJSON writes v with sorted keys, raw values as they are, and random
// insignificant spaces.
func writeJSON(b *bytes.Buffer, v any, r *rand.Rand) {
	sp := func() {
		if r.IntN(8) == 0 {
			b.WriteString([]string{" ", "\n", "\t", "  "}[r.IntN(4)])
		}
	}
	sp()
	switch x := v.(type) {
	case raw:
		b.WriteString(string(x))
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		r.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			kb, _ := json.Marshal(k)
			if strings.HasPrefix(k, "\x00raw:") {
				kb = []byte(k[len("\x00raw:"):])
			}
			b.Write(kb)
			sp()
			b.WriteByte(':')
			writeJSON(b, x[k], r)
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSON(b, e, r)
		}
		b.WriteByte(']')
	default:
		vb, _ := json.Marshal(x)
		b.Write(vb)
	}
	sp()
}

// leaves lists the paths to every value of v.
func leaves(v any, at []any, out *[][]any) {
	*out = append(*out, at)
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			leaves(e, append(append([]any{}, at...), k), out)
		}
	case []any:
		for i, e := range x {
			leaves(e, append(append([]any{}, at...), i), out)
		}
	}
}

func get(v any, path []any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			v = v.(map[string]any)[k]
		case int:
			v = v.([]any)[k]
		}
	}
	return v
}

func set(root any, path []any, val any) any {
	if len(path) == 0 {
		return val
	}
	parent := get(root, path[:len(path)-1])
	switch k := path[len(path)-1].(type) {
	case string:
		m := parent.(map[string]any)
		if val == nil {
			delete(m, k)
		} else {
			m[k] = val
		}
	case int:
		parent.([]any)[k] = val
	}
	return root
}

var numberForms = []func(f float64) raw{
	func(f float64) raw { return raw(strconv.FormatFloat(f, 'f', -1, 64) + ".0") },
	func(f float64) raw { return raw(strconv.FormatFloat(f, 'f', -1, 64) + "e0") },
	func(f float64) raw { return raw(strconv.FormatFloat(f, 'f', -1, 64) + "E+1") },
	func(f float64) raw { return raw("-" + strconv.FormatFloat(f, 'f', -1, 64)) },
	func(f float64) raw { return raw(strconv.FormatFloat(f+0.5, 'f', -1, 64)) },
	func(f float64) raw { return raw(strconv.FormatFloat(f, 'f', -1, 64) + ".000000000000000001") },
	func(f float64) raw { return raw(strconv.FormatFloat(f, 'f', -1, 64) + "0000000000000000000") },
	func(float64) raw { return "1e400" },
	func(float64) raw { return "-0" },
	func(float64) raw { return "0.1e1" },
	func(float64) raw { return "1.0000000000000002" },
	func(float64) raw { return "0.9999999999999999" },
	func(float64) raw { return "100" },
	func(float64) raw { return "100.00000000000001" },
	func(float64) raw { return "3600000" },
	func(float64) raw { return "3600000.0000001" },
	func(float64) raw { return "604800000" },
	func(float64) raw { return "10000000" },
	func(float64) raw { return "10000001" },
	func(float64) raw { return "9223372036854775807" },
	func(float64) raw { return "123456789012345" },
	func(float64) raw { return "1234567890123456" },
}

var stringForms = []raw{
	`""`, `"\u0000"`, `"a\u2028b"`, `"tab\tquote\"back\\"`, `"\ud800"`, "\"\xff\xfe\"", `"é"`, `"e\u0301"`,
	raw(`"` + strings.Repeat("é", 100) + `"`), raw(`"` + strings.Repeat("x", 101) + `"`), raw(`"` + strings.Repeat("x", 2001) + `"`),
	raw(`"` + strings.Repeat("ü", 1024) + `"`), raw(`"` + strings.Repeat("ü", 1025) + `"`), `"<script>&amp;"`, `"a/b"`, `"\/x"`,
	`"critical"`, `"low"`, `"completed"`, `"failed"`, `"production"`, `"acme"`, `"web"`, `"other"`, `"a.b:c-1"`, `"a b"`,
	`"2026-12-01T11:00:00Z"`, `"2026-12-01t11:00:00z"`, `"2026-12-01T23:59:60Z"`, `"2026-12-01T11:00:00.1234567891Z"`,
	`"2026-12-01T11:00:00+24:00"`, `"2026-12-01T11:00:00+05:60"`, `"2026-12-01T11:00:00-00:00"`, `"2024-02-29T11:00:00Z"`,
	`"2023-02-29T11:00:00Z"`, `"1999-12-31T23:59:59Z"`, `"2026-12-03T11:00:00Z"`, `"2026-12-01 11:00:00Z"`, `"2026-12-01T11:00Z"`,
	`"https://example.com/"`, `"https://example.com/%zz"`, `"http://[::1]/x"`, `"http://::1/x"`, `"http://a b/"`, `"mailto:x@y"`,
	`"http://host:99999/p?q=1#f"`, `"HTTP://X"`, `"https://ex\u00e4mple.com/"`, `"https://"`, `"file_abc"`, `"https://cdn.example.com/1.png"`,
}

// mutate changes one random value of v, or its structure.
func mutate(v map[string]any, r *rand.Rand) any {
	var paths [][]any
	leaves(v, nil, &paths)
	path := paths[r.IntN(len(paths))]
	cur := get(v, path)
	switch r.IntN(7) {
	case 0, 1: // a number written another way
		f, ok := cur.(float64)
		if !ok {
			f = float64(r.IntN(200))
		}
		return set(v, path, numberForms[r.IntN(len(numberForms))](f))
	case 2, 3:
		return set(v, path, stringForms[r.IntN(len(stringForms))])
	case 4: // another type
		return set(v, path, []any{raw("true"), raw("null"), raw("{}"), raw("[]"), raw(`"1"`), raw("1")}[r.IntN(6)])
	case 5: // a key removed, or added
		if len(path) > 0 && r.IntN(2) == 0 {
			if _, isKey := path[len(path)-1].(string); isKey {
				return set(v, path, nil)
			}
		}
		if m, ok := cur.(map[string]any); ok {
			m[[]string{"extra", "\x00raw:\"dup\"", "issues", "success", "é"}[r.IntN(5)]] = raw("1")
		}
		return v
	default: // a duplicate key, written raw
		if m, ok := cur.(map[string]any); ok && len(m) > 0 {
			for k, e := range m {
				kb, _ := json.Marshal(k)
				var b bytes.Buffer
				writeJSON(&b, e, r)
				m["\x00raw:"+string(kb)] = raw(b.String())
				break
			}
		}
		return v
	}
}

// The fast path never accepts what the full path refuses and makes the
// same canonical bytes; and it takes most valid bodies, or it would be no
// fast path. FAST_SEED picks another set of bodies (60 seeds, 360,000
// bodies, passed when it was written).
func TestFastPathAgreesWithTheFullPath(t *testing.T) {
	t.Parallel()
	v := validator(t)
	seed := uint64(7)
	if s, err := strconv.ParseUint(os.Getenv("FAST_SEED"), 10, 64); err == nil {
		seed = s
	}
	r := rand.New(rand.NewPCG(seed, 11))
	bases := map[events.Product]func() map[string]any{events.Insight: insight, events.Autopilot: autopilot, events.Guardian: guardian}
	var fastOK, fullOK, total int
	for i := range 6000 {
		p := events.Products[i%3]
		var body map[string]any
		rb, _ := json.Marshal(bases[p]())
		_ = json.Unmarshal(rb, &body)
		for range r.IntN(3) {
			if m, ok := mutate(body, r).(map[string]any); ok {
				body = m
			}
		}
		var b bytes.Buffer
		writeJSON(&b, body, r)
		fc, fok := v.FastCanonical(p, "acme", "web", b.Bytes())
		rep, c := v.FullCanonical(p, "acme", "web", b.Bytes())
		total++
		if rep.Total == 0 {
			fullOK++
		}
		if !fok {
			continue
		}
		fastOK++
		if rep.Total != 0 {
			t.Fatalf("the fast path accepted a %s body the full path refuses (%v):\n%s", p, rep.Fields, b.Bytes())
		}
		if !bytes.Equal(fc, c) {
			t.Fatalf("canonical forms differ for %s:\nfast %s\nfull %s", b.Bytes(), fc, c)
		}
	}
	t.Logf("%d bodies: the full path accepts %d, the fast path %d of them", total, fullOK, fastOK)
	if fastOK*10 < fullOK*7 {
		t.Errorf("the fast path takes only %d of the %d valid bodies", fastOK, fullOK)
	}
	for p, base := range bases {
		b, _ := json.Marshal(base())
		if _, ok := v.FastCanonical(p, "acme", "web", b); !ok {
			t.Errorf("the fast path does not take the plain %s body", p)
		}
	}
}

// The fast path writes strings as encoding/json does (no HTML escaping).
func TestFastPathStringsAreEncodingJSONs(t *testing.T) {
	t.Parallel()
	v := validator(t)
	r := rand.New(rand.NewPCG(3, 5))
	runes := []rune{'a', 'Z', '0', ' ', '"', '\\', '/', '<', '>', '&', '\b', '\f', '\n', '\r', '\t', 0, 0x1f, 0x7f, 'é', '€', '\u2028', '\u2029', 0x1F600, 0xFFFD}
	for range 2000 {
		var sb strings.Builder
		for range 1 + r.IntN(12) {
			sb.WriteRune(runes[r.IntN(len(runes))])
		}
		in := insight()
		in["issues"].([]any)[0].(map[string]any)["message"] = sb.String()
		b, _ := json.Marshal(in)
		fc, ok := v.FastCanonical(events.Insight, "acme", "web", b)
		_, c := v.FullCanonical(events.Insight, "acme", "web", b)
		if ok && !bytes.Equal(fc, c) {
			t.Fatalf("message %q: fast %s, full %s", sb.String(), fc, c)
		}
	}
}

// The fast path refuses every body that is not JSON to encoding/json, so a
// syntax error is always named by the full path: bytes of each kind a
// validator may get wrong (control characters, escapes, quotes, number
// parts) are put into, or taken out of, valid bodies.
func TestFastPathRefusesWhatIsNotJSON(t *testing.T) {
	t.Parallel()
	v := validator(t)
	r := rand.New(rand.NewPCG(13, 17))
	bits := []string{"\x00", "\x01", "\x1f", "\t", "\n", " ", "\\", `\u`, `\u00`, `\uZZZZ`, `\x`, `\'`, `"`, ",", ":", "{", "}", "[", "]", "-", "+", ".", "e", "E", "0", "01", "1.", ".5", "tru", "nul", "\xff", "\u2028", "\ufeff"}
	bases := map[events.Product]func() map[string]any{events.Insight: insight, events.Autopilot: autopilot, events.Guardian: guardian}
	var invalid int
	for i := range 20000 {
		p := events.Products[i%3]
		b, _ := json.Marshal(bases[p]())
		for range 1 + r.IntN(2) {
			at := r.IntN(len(b))
			if r.IntN(3) == 0 {
				b = append(b[:at:at], b[at+1:]...)
				continue
			}
			b = append(b[:at:at], append([]byte(bits[r.IntN(len(bits))]), b[at:]...)...)
		}
		if json.Valid(b) {
			continue
		}
		invalid++
		if _, ok := v.FastCanonical(p, "acme", "web", b); ok {
			t.Fatalf("the fast path took a %s body that is not JSON:\n%q", p, b)
		}
	}
	t.Logf("%d bodies that are not JSON, all refused", invalid)
}

// BenchmarkFastCanonical is the fast path's cost of a ~10 KB Insight upload
// (48 issues), as BenchmarkGatewayUpload sends.
func BenchmarkFastCanonical(b *testing.B) {
	v := validator(b)
	in := insight()
	var issues []any
	for j := range 48 {
		issues = append(issues, map[string]any{"detector": "eslint", "severity": "low",
			"message": "no-unused-vars: 'someLongVariableName' is assigned a value but never used (upload 00000001, issue " + strconv.Itoa(j) + ")",
			"file":    "packages/web/src/components/checkout/Step" + strconv.Itoa(j) + ".tsx", "line": 10 + j, "column": 5})
	}
	in["issues"], in["totalIssues"] = issues, 48
	in["issuesBySeverity"] = map[string]any{"critical": 0, "high": 0, "medium": 0, "low": 48}
	body, _ := json.Marshal(in)
	if _, ok := v.FastCanonical(events.Insight, "acme", "web", body); !ok {
		b.Fatal("the fast path does not take the body")
	}
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		v.FastCanonical(events.Insight, "acme", "web", body)
	}
}
