package sjson

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// unmarshalUpstream is Unmarshal as upstream wrote it (patch 5 off).
func unmarshalUpstream(t *testing.T, b []byte) (*types.Document, error) {
	t.Helper()
	var v map[string]json.RawMessage
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	var sch schema
	if err := json.Unmarshal(v["$s"], &sch); err != nil {
		return nil, err
	}
	delete(v, "$s")
	d := must.NotFail(types.NewDocument())
	for _, key := range sch.Keys {
		x, err := unmarshalSingleValue(v[key], sch.Properties[key])
		if err != nil {
			return nil, err
		}
		d.Set(key, x)
	}
	return d, nil
}

// randomValue is a value of any type sjson stores, nested up to depth.
func randomValue(r *rand.Rand, depth int) any {
	n := 13
	if depth <= 0 {
		n = 11
	}
	switch r.IntN(n) {
	case 0:
		return []float64{0, math.Copysign(0, -1), 1.5, -2.25e-300, 1e300, float64(r.Int64()), math.MaxFloat64}[r.IntN(7)]
	case 1:
		return []string{"", "plain", "ünïcödé ✓", "quote \" backslash \\ tab \t nl \n", "\u2028\u0000<>&", "packages/web/src/Step01.tsx"}[r.IntN(6)]
	case 2:
		return types.Binary{B: []byte{byte(r.IntN(256)), 0, 255}, Subtype: types.BinarySubtype(r.IntN(2) * 0x80)}
	case 3:
		return types.ObjectID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, byte(r.IntN(256))}
	case 4:
		return r.IntN(2) == 0
	case 5:
		return time.UnixMilli(r.Int64N(1 << 45)).UTC()
	case 6:
		return types.Null
	case 7:
		return types.Regex{Pattern: "^a.*\\d$", Options: []string{"", "i", "ms"}[r.IntN(3)]}
	case 8:
		return []int32{0, -1, math.MaxInt32, math.MinInt32, int32(r.Int32())}[r.IntN(5)]
	case 9:
		return types.Timestamp(r.Uint64())
	case 10:
		return []int64{0, -1, math.MaxInt64, math.MinInt64, r.Int64()}[r.IntN(5)]
	case 11:
		return randomDocument(r, depth-1, r.IntN(4))
	default:
		a := types.MakeArray(0)
		for range r.IntN(5) {
			a.Append(randomValue(r, depth-1))
		}
		return a
	}
}

func randomDocument(r *rand.Rand, depth, fields int) *types.Document {
	d := must.NotFail(types.NewDocument())
	for i := range fields {
		d.Set(fmt.Sprintf("f%d_%c", i, 'a'+r.IntN(26)), randomValue(r, depth))
	}
	return d
}

// The one-pass decoder gives upstream's answer for every document sjson
// stores, and refuses what upstream refuses.
func TestFastUnmarshalIsUpstreamUnmarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 11))
	for i := range 3000 {
		d := randomDocument(r, 4, 1+r.IntN(8))
		d.Set("_id", fmt.Sprintf("doc%d", i))
		b, err := Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		want, err := unmarshalUpstream(t, b)
		if err != nil {
			t.Fatalf("upstream: %v\n%s", err, b)
		}
		got, err := unmarshalFast(b)
		if err != nil {
			t.Fatalf("one pass: %v\n%s", err, b)
		}
		if !types.Identical(want, got) {
			t.Fatalf("document %d differs:\nstored   %s\nupstream %v\none pass %v", i, b, want, got)
		}
		if !types.Identical(d, got) {
			t.Fatalf("document %d does not round-trip:\nstored %s\nwas    %v\nis     %v", i, b, d, got)
		}
	}

	for _, bad := range []string{
		``, `{`, `[]`, `{"a":1}`, // no schema
		`{"$s":{"p":{"a":{"t":"int"}},"$k":["a"]}}`,                                      // missing field
		`{"$s":{"p":{"a":{"t":"int"}},"$k":["a"]},"a":1.5}`,                              // not an int32
		`{"$s":{"p":{"a":{"t":"int"}},"$k":["a"]},"a":4294967296}`,                       // out of range
		`{"$s":{"p":{"a":{"t":"long"}},"$k":["a"]},"a":"1"}`,                             // a string
		`{"$s":{"p":{"a":{"t":"objectId"}},"$k":["a"]},"a":"00ff"}`,                      // short id
		`{"$s":{"p":{"a":{"t":"array","i":[]}},"$k":["a"]},"a":[1]}`,                     // items without schema
		`{"$s":{"p":{"a":{"t":"what"}},"$k":["a"]},"a":1}`,                               // unknown type
		`{"$s":{"p":{"a":{"t":"binData"}},"$k":["a"]},"a":"AAEC"}`,                       // no subtype
		`{"$s":{"p":{"a":{"t":"string"}},"$k":["a"]},"a":"x","b":1}`,                     // a field the schema lacks
		`{"$s":{"p":{"a":{"t":"double"}},"$k":["a"]},"a":1e400}`,                         // out of range
		`{"$s":{"p":{"a":{"t":"bool"}},"$k":["a"]},"a":1}`,                               // not a bool
		`{"$s":{"p":{"a":{"t":"date"}},"$k":["a"]},"a":1.5}`,                             // not milliseconds
		`{"$s":{"p":{"a":{"t":"object","$s":{"p":{},"$k":[]}}},"$k":["a"]},"a":{"x":1}}`, // nested field without schema
	} {
		if _, err := unmarshalFast([]byte(bad)); err == nil {
			t.Errorf("one pass accepted %s", bad)
		}
	}
}

func BenchmarkUnmarshal(b *testing.B) {
	data := must.NotFail(marshalUpstream(insightLike()))
	b.Run("upstream", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			var v map[string]json.RawMessage
			_ = json.Unmarshal(data, &v)
			var sch schema
			_ = json.Unmarshal(v["$s"], &sch)
			delete(v, "$s")
			for _, key := range sch.Keys {
				_, _ = unmarshalSingleValue(v[key], sch.Properties[key])
			}
		}
	})
	b.Run("one-pass", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := unmarshalFast(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// randomString is a string of the characters JSON escapes, HTML-escaped
// ones, invalid UTF-8 and plain text.
func randomString(r *rand.Rand) string {
	parts := []string{"a", "Z", " ", "\"", "\\", "/", "<", ">", "&", "\n", "\r", "\t", "\b", "\f", "\x00", "\x1f", "\x7f",
		"é", "✓", "\u2028", "\u2029", "\ufffd", "\xff", "\xc3", "\xe2\x80", "😀", "\U0010ffff"}
	var b []byte
	for range r.IntN(12) {
		b = append(b, parts[r.IntN(len(parts))]...)
	}
	return string(b)
}

// The one-pass encoder writes upstream's bytes for every document.
func TestFastMarshalIsUpstreamMarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 13))
	for i := range 3000 {
		d := randomDocument(r, 4, 1+r.IntN(8))
		d.Set("_id", fmt.Sprintf("doc%d", i))
		d.Set("s", randomString(r))
		nested := must.NotFail(types.NewDocument(randomString(r), randomString(r), "re", types.Regex{Pattern: randomString(r), Options: "i"}))
		d.Set("n", nested)
		d.Set("bin", types.Binary{B: nil, Subtype: types.BinarySubtype(r.IntN(3))})
		want, err := marshalUpstream(d)
		if err != nil {
			t.Fatal(err)
		}
		got, err := marshalFast(d)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Fatalf("document %d:\nupstream %q\none pass %q", i, want, got)
		}
	}
}

func BenchmarkMarshal(b *testing.B) {
	d := insightLike()
	b.Run("upstream", func(b *testing.B) {
		for b.Loop() {
			_, _ = marshalUpstream(d)
		}
	})
	b.Run("one-pass", func(b *testing.B) {
		for b.Loop() {
			_, _ = marshalFast(d)
		}
	})
}

// insightLike is a document shaped like the product's ~10 KB Insight result.
func insightLike() *types.Document {
	r := rand.New(rand.NewPCG(1, 2))
	d := randomDocument(r, 3, 12)
	issues := types.MakeArray(48)
	for i := range 48 {
		issues.Append(must.NotFail(types.NewDocument("detector", "eslint", "severity", "low",
			"message", fmt.Sprintf("no-unused-vars: 'someLongVariableName' is assigned a value but never used (issue %d)", i),
			"file", fmt.Sprintf("packages/web/src/components/checkout/Step%02d.tsx", i), "line", int64(10+i), "column", int64(5))))
	}
	d.Set("issues", issues)
	return d
}
