package sjson

// ODAVL patch 7: a document is encoded in one pass.
//
// Upstream's Marshal builds the schema and the values in nested buffers and
// runs encoding/json once per scalar (a reflective json.Marshal of every
// string, number and key). marshalFast appends the same bytes to one buffer:
// its output is byte for byte upstream's (stored documents are compared and
// indexed as text), which the equivalence test checks on random documents
// and strings.

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/lazyerrors"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// marshalFast is Marshal in one pass.
func marshalFast(d *types.Document) ([]byte, error) {
	b := make([]byte, 0, 16<<10)
	b = append(b, `{"$s":`...)
	b = appendSchema(b, d)

	keys, values := d.Keys(), d.Values()
	for i, key := range keys {
		// Upstream writes the top-level keys unescaped; so does this.
		b = append(b, ',', '"')
		b = append(b, key...)
		b = append(b, '"', ':')

		var err error
		if b, err = appendValue(b, values[i]); err != nil {
			return nil, lazyerrors.Error(err)
		}
	}

	return append(b, '}'), nil
}

// appendSchema appends the schema of d (marshalSchemaForDoc).
func appendSchema(b []byte, d *types.Document) []byte {
	keys := d.Keys()
	if len(keys) == 0 {
		return append(b, "{}"...)
	}

	b = append(b, `{"p":{`...)

	values := d.Values()
	for i, key := range keys {
		if i > 0 {
			b = append(b, ',')
		}

		b = appendString(b, key)
		b = append(b, ':')
		b = appendElem(b, values[i])
	}

	b = append(b, `},"$k":[`...)

	for i, key := range keys {
		if i > 0 {
			b = append(b, ',')
		}

		b = appendString(b, key)
	}

	return append(b, "]}"...)
}

// appendElem appends the schema element of v (marshalElemForSingleValue).
func appendElem(b []byte, v any) []byte {
	switch v := v.(type) {
	case *types.Document:
		b = append(b, `{"t":"object","$s":`...)
		b = appendSchema(b, v)

		return append(b, '}')

	case *types.Array:
		b = append(b, `{"t":"array","i":[`...)

		for i := 0; i < v.Len(); i++ {
			if i > 0 {
				b = append(b, ',')
			}

			b = appendElem(b, must.NotFail(v.Get(i)))
		}

		return append(b, "]}"...)

	case float64:
		return append(b, `{"t":"double"}`...)
	case string:
		return append(b, `{"t":"string"}`...)
	case types.Binary:
		b = append(b, `{"t":"binData","s":`...)
		b = strconv.AppendUint(b, uint64(v.Subtype), 10)

		return append(b, '}')
	case types.ObjectID:
		return append(b, `{"t":"objectId"}`...)
	case bool:
		return append(b, `{"t":"bool"}`...)
	case time.Time:
		return append(b, `{"t":"date"}`...)
	case types.NullType:
		return append(b, `{"t":"null"}`...)
	case types.Regex:
		b = append(b, `{"t":"regex","o":`...)
		b = appendString(b, v.Options)

		return append(b, '}')
	case int32:
		return append(b, `{"t":"int"}`...)
	case types.Timestamp:
		return append(b, `{"t":"timestamp"}`...)
	case int64:
		return append(b, `{"t":"long"}`...)
	}

	panic(fmt.Sprintf("sjson.appendElem: unknown type %[1]T (value %[1]q)", v))
}

// appendValue appends the sjson encoding of v (toSJSON(v).MarshalJSON()).
func appendValue(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case *types.Document:
		b = append(b, '{')

		keys, values := v.Keys(), v.Values()
		for i, key := range keys {
			if i > 0 {
				b = append(b, ',')
			}

			b = appendString(b, key)
			b = append(b, ':')

			var err error
			if b, err = appendValue(b, values[i]); err != nil {
				return nil, err
			}
		}

		return append(b, '}'), nil

	case *types.Array:
		b = append(b, '[')

		for i := 0; i < v.Len(); i++ {
			if i > 0 {
				b = append(b, ',')
			}

			var err error
			if b, err = appendValue(b, must.NotFail(v.Get(i))); err != nil {
				return nil, err
			}
		}

		return append(b, ']'), nil

	case float64:
		// Rare in the product's documents; encoding/json's own format.
		f, err := json.Marshal(v)
		if err != nil {
			return nil, lazyerrors.Error(err)
		}

		return append(b, f...), nil

	case string:
		return appendString(b, v), nil

	case types.Binary:
		if v.B == nil {
			return append(b, "null"...), nil // json.Marshal of a nil slice, as upstream
		}

		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, v.B)

		return append(b, '"'), nil

	case types.ObjectID:
		b = append(b, '"')
		b = hex.AppendEncode(b, v[:])

		return append(b, '"'), nil

	case bool:
		return strconv.AppendBool(b, v), nil

	case time.Time:
		return strconv.AppendInt(b, v.UnixMilli(), 10), nil

	case types.NullType:
		return append(b, "null"...), nil

	case types.Regex:
		return appendString(b, v.Pattern), nil

	case int32:
		return strconv.AppendInt(b, int64(v), 10), nil

	case types.Timestamp:
		return strconv.AppendUint(b, uint64(v), 10), nil

	case int64:
		return strconv.AppendInt(b, v, 10), nil
	}

	panic(fmt.Sprintf("sjson.appendValue: unknown type %T", v))
}

const hexDigits = "0123456789abcdef"

// appendString appends s as encoding/json's Marshal does, HTML-escaping
// included (encodeState.string with escapeHTML).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0

	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}

			b = append(b, s[start:i]...)

			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}

			i++
			start = i

			continue
		}

		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i

			continue
		}

		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i

			continue
		}

		i += size
	}

	b = append(b, s[start:]...)

	return append(b, '"')
}
