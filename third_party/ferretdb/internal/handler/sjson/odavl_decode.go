package sjson

// ODAVL patch 5: one pass over a stored document.
//
// Upstream's Unmarshal decodes a document level by level: the whole
// document into a map of raw messages, then every field again with a new
// json.Decoder (one per scalar), so a value at depth d is scanned d+1 times
// and every scalar costs a decoder and a reflective decode. On the product's
// ~10 KB results (48 issues of 6 fields) that was most of a list's time.
// unmarshalFast parses the document once with fastjson and walks the values
// and their schema together. Every value is converted as upstream converts
// it (strconv on the number's own text, base64 for binary, hex for object
// ids), and malformed data is an error as it is upstream; the equivalence
// test feeds both decoders the same documents.

import (
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/valyala/fastjson"

	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/lazyerrors"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

var parsers fastjson.ParserPool

// unmarshalFast is Unmarshal in one pass.
func unmarshalFast(data []byte) (*types.Document, error) {
	p := parsers.Get()
	defer parsers.Put(p)

	v, err := p.ParseBytes(data)
	if err != nil {
		return nil, lazyerrors.Error(err)
	}

	obj, err := v.Object()
	if err != nil {
		return nil, lazyerrors.Error(err)
	}

	sch := obj.Get("$s")
	if sch == nil {
		return nil, lazyerrors.Errorf("schema is not set")
	}

	return fastDocument(obj, sch, true)
}

// fastDocument decodes obj by its schema sch (an object with p and $k);
// top is the stored document itself, whose $s field is the schema.
func fastDocument(obj *fastjson.Object, sch *fastjson.Value, top bool) (*types.Document, error) {
	fields := obj.Len()
	if top {
		fields--
	}

	if !top && fields == 0 {
		return must.NotFail(types.NewDocument()), nil
	}

	if sch == nil || sch.Type() != fastjson.TypeObject {
		return nil, lazyerrors.Errorf("document schema is not set")
	}

	keys := sch.GetArray("$k")
	if len(keys) != fields {
		return nil, lazyerrors.Errorf("sjson: %d keys in the schema, %d fields in the document", len(keys), fields)
	}

	props := sch.Get("p")
	d := must.NotFail(types.NewDocument())

	for _, kv := range keys {
		kb, err := kv.StringBytes()
		if err != nil {
			return nil, lazyerrors.Error(err)
		}

		key := string(kb)

		val := obj.Get(key)
		if val == nil {
			return nil, lazyerrors.Errorf("sjson: missing key %q", key)
		}

		var e *fastjson.Value
		if props != nil {
			e = props.Get(key)
		}

		x, err := fastValue(val, e)
		if err != nil {
			return nil, lazyerrors.Error(err)
		}

		d.Set(key, x)
	}

	return d, nil
}

// fastValue decodes v by its schema element e ({"t": type, ...}).
func fastValue(v *fastjson.Value, e *fastjson.Value) (any, error) {
	if v.Type() == fastjson.TypeNull {
		return types.Null, nil
	}

	if e == nil {
		return nil, lazyerrors.Errorf("schema is not set")
	}

	switch t := elemType(e.GetStringBytes("t")); t {
	case elemTypeObject:
		obj, err := v.Object()
		if err != nil {
			return nil, lazyerrors.Error(err)
		}

		return fastDocument(obj, e.Get("$s"), false)

	case elemTypeArray:
		vals, err := v.Array()
		if err != nil {
			return nil, lazyerrors.Error(err)
		}

		items := e.GetArray("i")
		if len(items) != len(vals) {
			return nil, lazyerrors.Errorf("sjson: %d items in the schema, %d in the array", len(items), len(vals))
		}

		a := types.MakeArray(len(vals))

		for i, iv := range vals {
			x, err := fastValue(iv, items[i])
			if err != nil {
				return nil, lazyerrors.Error(err)
			}

			a.Append(x)
		}

		return a, nil

	case elemTypeDouble:
		return fastNumber(v, func(s string) (float64, error) { return strconv.ParseFloat(s, 64) })

	case elemTypeString:
		b, err := v.StringBytes()
		if err != nil {
			return nil, lazyerrors.Error(err)
		}

		return string(b), nil

	case elemTypeBinData:
		b, err := v.StringBytes()
		if err != nil {
			return nil, lazyerrors.Error(err)
		}

		raw, err := base64.StdEncoding.DecodeString(string(b))
		if err != nil {
			return nil, lazyerrors.Error(err)
		}

		sub := e.Get("s")
		if sub == nil {
			return nil, lazyerrors.Errorf("binary subtype is nil")
		}

		n, err := sub.Int()
		if err != nil {
			return nil, lazyerrors.Error(err)
		}

		return types.Binary{B: raw, Subtype: types.BinarySubtype(n)}, nil

	case elemTypeObjectID:
		b, err := v.StringBytes()
		if err != nil {
			return nil, lazyerrors.Error(err)
		}

		var id types.ObjectID
		if hex.DecodedLen(len(b)) != len(id) {
			return nil, lazyerrors.Errorf("sjson: object id of %d bytes", hex.DecodedLen(len(b)))
		}

		if _, err := hex.Decode(id[:], b); err != nil {
			return nil, lazyerrors.Error(err)
		}

		return id, nil

	case elemTypeBool:
		b, err := v.Bool()
		if err != nil {
			return nil, lazyerrors.Error(err)
		}

		return b, nil

	case elemTypeDate:
		ms, err := fastNumber(v, func(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) })
		if err != nil {
			return nil, err
		}

		return time.UnixMilli(ms), nil

	case elemTypeRegex:
		b, err := v.StringBytes()
		if err != nil {
			return nil, lazyerrors.Error(err)
		}

		o := e.Get("o")
		if o == nil {
			return nil, lazyerrors.Errorf("regex options is nil")
		}

		ob, err := o.StringBytes()
		if err != nil {
			return nil, lazyerrors.Error(err)
		}

		return types.Regex{Pattern: string(b), Options: string(ob)}, nil

	case elemTypeInt:
		n, err := fastNumber(v, func(s string) (int64, error) { return strconv.ParseInt(s, 10, 32) })
		if err != nil {
			return nil, err
		}

		return int32(n), nil

	case elemTypeTimestamp:
		n, err := fastNumber(v, func(s string) (uint64, error) { return strconv.ParseUint(s, 10, 64) })
		if err != nil {
			return nil, err
		}

		return types.Timestamp(n), nil

	case elemTypeLong:
		return fastNumber(v, func(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) })

	case elemTypeNull:
		return nil, lazyerrors.Errorf("sjson: expected null, got %s", v)

	default:
		return nil, lazyerrors.Errorf("sjson: unhandled type %q", t)
	}
}

// fastNumber parses a JSON number's own text with parse, as encoding/json
// does for the Go type upstream decodes it into.
func fastNumber[T any](v *fastjson.Value, parse func(string) (T, error)) (T, error) {
	var zero T
	if v.Type() != fastjson.TypeNumber {
		return zero, lazyerrors.Errorf("sjson: want a number, got %s", v.Type())
	}

	var buf [32]byte
	n, err := parse(string(v.MarshalTo(buf[:0])))
	if err != nil {
		return zero, lazyerrors.Error(err)
	}

	return n, nil
}
