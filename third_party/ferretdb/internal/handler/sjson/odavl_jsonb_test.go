package sjson

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/valyala/fastjson"

	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/jsonb"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// reversed is the JSON text v with every object's members in reverse order:
// the same document, stored in an order sjson does not write.
func reversed(v *fastjson.Value) []byte {
	switch v.Type() {
	case fastjson.TypeObject:
		o := must.NotFail(v.Object())
		var keys []string
		var vals []*fastjson.Value
		o.Visit(func(k []byte, x *fastjson.Value) {
			keys = append(keys, string(k))
			vals = append(vals, x)
		})
		b := []byte{'{'}
		for i := len(keys) - 1; i >= 0; i-- {
			if i < len(keys)-1 {
				b = append(b, ',')
			}
			b = appendString(b, keys[i])
			b = append(append(b, ':'), reversed(vals[i])...)
		}
		return append(b, '}')
	case fastjson.TypeArray:
		b := []byte{'['}
		for i, x := range must.NotFail(v.Array()) {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, reversed(x)...)
		}
		return append(b, ']')
	case fastjson.TypeString:
		return appendString(nil, string(v.GetStringBytes()))
	default:
		return v.MarshalTo(nil)
	}
}

// Patch 13: the document read from its JSONB is upstream's answer for every
// document sjson stores (strings with every escape among them), also with
// its members stored in another order, and the JSONB of what upstream or
// the text decoder (patch 5) refuses is refused.
func TestODAVLUnmarshalJSONBIsUpstreamUnmarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 5))
	for i := range 3000 {
		d := randomDocument(r, 4, 1+r.IntN(8))
		d.Set("_id", fmt.Sprintf("doc%d", i))
		if r.IntN(2) == 0 {
			d.Set("s", randomString(r))
		}
		text := must.NotFail(Marshal(d))
		want, err := unmarshalUpstream(t, text)
		if err != nil {
			t.Fatalf("upstream: %v\n%s", err, text)
		}
		for _, variant := range [][]byte{text, reversed(must.NotFail(fastjson.ParseBytes(text)))} {
			got, err := UnmarshalJSONB(must.NotFail(jsonb.FromText(variant)))
			if err != nil {
				t.Fatalf("from JSONB: %v\n%s", err, variant)
			}
			if !types.Identical(want, got) {
				t.Fatalf("document %d differs:\nstored    %s\nupstream  %v\nfrom JSONB %v", i, variant, want, got)
			}
		}
	}

	for _, edge := range []string{
		`{"$s":{"p":{"a":{"t":"string"}},"$k":["a"]},"a":"\ud83d\ude00 \ud800 x \udc00\ud800 \u00e9\/"}`, // pairs, lone surrogates
		`{"$s":{"p":{"a":{"t":"string"}},"$k":["a"]},"a":"\ud800\u0041"}`,                                // a surrogate and no pair
		`{"$s":{"p":{"a":{"t":"binData","s":128}},"$k":["a"]},"a":""}`,
		`{"$s":{"p":{"a\"b":{"t":"int"}},"$k":["a\"b"]},"a\"b":1}`, // an escaped key
		`{"$s":{"p":{"a":{"t":"object","$s":{}}},"$k":["a"]},"a":{}}`,
		`{"a":null,"$s":{"$k":["a"],"p":{"a":{"t":"double"}}}}`,
	} {
		want, err := unmarshalUpstream(t, []byte(edge))
		if err != nil {
			t.Fatalf("upstream refuses %s: %v", edge, err)
		}
		got, err := UnmarshalJSONB(must.NotFail(jsonb.FromText([]byte(edge))))
		if err != nil || !types.Identical(want, got) {
			t.Fatalf("%s:\nupstream   %v\nfrom JSONB %v %v", edge, want, got, err)
		}
	}

	for _, bad := range []string{
		`[]`, `{"a":1}`, `1`, // no schema
		`{"$s":{"p":{"a":{"t":"int"}},"$k":["a"]}}`,                                      // missing field
		`{"$s":{"p":{"a":{"t":"int"}},"$k":["a"]},"a":1.5}`,                              // not an int32
		`{"$s":{"p":{"a":{"t":"int"}},"$k":["a"]},"a":4294967296}`,                       // out of range
		`{"$s":{"p":{"a":{"t":"long"}},"$k":["a"]},"a":"1"}`,                             // a string
		`{"$s":{"p":{"a":{"t":"objectId"}},"$k":["a"]},"a":"00ff"}`,                      // short id
		`{"$s":{"p":{"a":{"t":"array","i":[]}},"$k":["a"]},"a":[1]}`,                     // items without schema
		`{"$s":{"p":{"a":{"t":"what"}},"$k":["a"]},"a":1}`,                               // unknown type
		`{"$s":{"p":{"a":{"t":"binData"}},"$k":["a"]},"a":"AAEC"}`,                       // no subtype
		`{"$s":{"p":{"a":{"t":"binData","s":0}},"$k":["a"]},"a":"A"}`,                    // not base64
		`{"$s":{"p":{"a":{"t":"string"}},"$k":["a"]},"a":"x","b":1}`,                     // a field the schema lacks
		`{"$s":{"p":{"a":{"t":"double"}},"$k":["a"]},"a":1e400}`,                         // out of range
		`{"$s":{"p":{"a":{"t":"bool"}},"$k":["a"]},"a":1}`,                               // not a bool
		`{"$s":{"p":{"a":{"t":"date"}},"$k":["a"]},"a":1.5}`,                             // not milliseconds
		`{"$s":{"p":{"a":{"t":"regex"}},"$k":["a"]},"a":"x"}`,                            // no options
		`{"$s":{"p":{"a":{"t":"string"}},"$k":["a"]},"a":"\x"}`,                          // a bad escape
		`{"$s":{"p":{"a":{"t":"object","$s":{"p":{},"$k":[]}}},"$k":["a"]},"a":{"x":1}}`, // nested field without schema
	} {
		b, err := jsonb.FromText([]byte(bad))
		if err != nil {
			continue // never stored: SQLite holds no such JSONB
		}
		_, fastErr := unmarshalFast([]byte(bad))
		if _, err := unmarshalUpstream(t, []byte(bad)); err == nil && fastErr == nil {
			t.Fatalf("upstream and the text decoder accept %s", bad)
		}
		if d, err := UnmarshalJSONB(b); err == nil {
			t.Errorf("from JSONB accepted %s as %v", bad, d)
		}
	}
	if _, err := UnmarshalJSONB(append(must.NotFail(jsonb.FromText([]byte(`{"$s":{}}`))), 0)); err == nil {
		t.Error("from JSONB accepted a trailing byte")
	}
}

func BenchmarkUnmarshalJSONB(b *testing.B) {
	text := must.NotFail(marshalUpstream(insightLike()))
	data := must.NotFail(jsonb.FromText(text))
	b.Run("via-text", func(b *testing.B) {
		for b.Loop() {
			if _, err := unmarshalFast(must.NotFail(jsonb.ToText(data))); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("in-place", func(b *testing.B) {
		for b.Loop() {
			if _, err := UnmarshalJSONB(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}
