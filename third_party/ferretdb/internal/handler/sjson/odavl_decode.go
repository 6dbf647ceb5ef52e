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

	case elemTypeBinData:
		b, err := v.StringBytes()
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

		return binaryValue(b, n)

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

	default:
		var buf [32]byte

		switch v.Type() {
		case fastjson.TypeString:
			return scalarValue(t, scalarString, v.GetStringBytes())
		case fastjson.TypeNumber:
			return scalarValue(t, scalarNumber, v.MarshalTo(buf[:0]))
		case fastjson.TypeTrue:
			return scalarValue(t, scalarTrue, nil)
		case fastjson.TypeFalse:
			return scalarValue(t, scalarFalse, nil)
		default:
			return scalarValue(t, scalarOther, nil)
		}
	}
}

// scalarKind is the JSON kind of a stored scalar, as either decoder reads it.
type scalarKind int

const (
	scalarOther scalarKind = iota
	scalarString
	scalarNumber
	scalarTrue
	scalarFalse
)

// scalarValue converts a stored scalar whose schema type is t, given as its
// JSON kind and its text (a string's bytes unescaped, a number's literal),
// as upstream converts it: strconv on the number's own text, hex for object
// ids. Objects, arrays, binaries and regexes, whose schema says more, are
// the decoders' own.
func scalarValue(t elemType, kind scalarKind, text []byte) (any, error) {
	switch t {
	case elemTypeDouble:
		return number(kind, text, func(s string) (float64, error) { return strconv.ParseFloat(s, 64) })

	case elemTypeString:
		if kind != scalarString {
			return nil, lazyerrors.Errorf("sjson: want a string")
		}

		return string(text), nil

	case elemTypeObjectID:
		if kind != scalarString {
			return nil, lazyerrors.Errorf("sjson: want a string")
		}

		var id types.ObjectID
		if hex.DecodedLen(len(text)) != len(id) {
			return nil, lazyerrors.Errorf("sjson: object id of %d bytes", hex.DecodedLen(len(text)))
		}

		if _, err := hex.Decode(id[:], text); err != nil {
			return nil, lazyerrors.Error(err)
		}

		return id, nil

	case elemTypeBool:
		if kind != scalarTrue && kind != scalarFalse {
			return nil, lazyerrors.Errorf("sjson: want a bool")
		}

		return kind == scalarTrue, nil

	case elemTypeDate:
		ms, err := number(kind, text, func(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) })
		if err != nil {
			return nil, err
		}

		return time.UnixMilli(ms), nil

	case elemTypeInt:
		n, err := number(kind, text, func(s string) (int64, error) { return strconv.ParseInt(s, 10, 32) })
		if err != nil {
			return nil, err
		}

		return int32(n), nil

	case elemTypeTimestamp:
		n, err := number(kind, text, func(s string) (uint64, error) { return strconv.ParseUint(s, 10, 64) })
		if err != nil {
			return nil, err
		}

		return types.Timestamp(n), nil

	case elemTypeLong:
		return number(kind, text, func(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) })

	case elemTypeNull:
		return nil, lazyerrors.Errorf("sjson: expected null")

	default:
		return nil, lazyerrors.Errorf("sjson: unhandled type %q", t)
	}
}

// binaryValue is a binary of the given subtype from its base64 text.
func binaryValue(text []byte, subtype int) (any, error) {
	raw := make([]byte, base64.StdEncoding.DecodedLen(len(text)))

	n, err := base64.StdEncoding.Decode(raw, text)
	if err != nil {
		return nil, lazyerrors.Error(err)
	}

	return types.Binary{B: raw[:n], Subtype: types.BinarySubtype(subtype)}, nil
}

// number parses a JSON number's own text with parse, as encoding/json does
// for the Go type upstream decodes it into.
func number[T any](kind scalarKind, text []byte, parse func(string) (T, error)) (T, error) {
	var zero T
	if kind != scalarNumber {
		return zero, lazyerrors.Errorf("sjson: want a number")
	}

	n, err := parse(string(text))
	if err != nil {
		return zero, lazyerrors.Error(err)
	}

	return n, nil
}
