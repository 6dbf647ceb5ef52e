package results

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/valyala/fastjson"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/odavl/sync/libs/jsonx"
)

// FromJSON converts a validated JSON payload to the stored form. The payload
// has passed the gateway's schema (no keys starting with '$'), so reading it
// as extended JSON keeps its numbers' types and its key order.
//
// Plain JSON (what the gateway's canonical payloads are) is converted in one
// walk over a fastjson tree into the bytes bson.UnmarshalExtJSON makes of it
// (TestFromJSONIsExtendedJSON compares them on thousands of documents), at a
// fraction of its cost: it was the largest part of a result's processing.
// Anything the walk is not sure of — a '$' key, which extended JSON reads as
// a type wrapper, a \u escape of a surrogate, a key holding NUL, bytes that
// are not UTF-8 — takes the driver's parser.
func FromJSON(payload []byte) (bson.Raw, error) {
	if raw, ok := fastFromJSON(payload); ok {
		return raw, nil
	}
	var raw bson.Raw
	if err := bson.UnmarshalExtJSON(payload, false, &raw); err != nil {
		return nil, fmt.Errorf("converting payload: %w", err)
	}
	return raw, nil
}

var parsers fastjson.ParserPool

// fastFromJSON converts a plain JSON object, or says it cannot.
func fastFromJSON(payload []byte) (bson.Raw, bool) {
	if fastjson.ValidateBytes(payload) != nil || !utf8.Valid(payload) || jsonx.SurrogateEscape(payload) {
		return nil, false
	}
	p := parsers.Get()
	defer parsers.Put(p)
	v, err := p.ParseBytes(payload)
	if err != nil || v.Type() != fastjson.TypeObject {
		return nil, false
	}
	c := converter{out: make([]byte, 0, len(payload)+len(payload)/8+64)}
	c.document(v)
	if c.failed {
		return nil, false
	}
	return c.out, true
}

// converter appends BSON to out; failed is set by what it cannot convert
// as the driver would.
type converter struct {
	out    []byte
	failed bool
	num    []byte
}

// document appends v (an object or array) as a BSON document: an array's
// keys are its indices.
func (c *converter) document(v *fastjson.Value) {
	start := len(c.out)
	c.out = append(c.out, 0, 0, 0, 0)
	if v.Type() == fastjson.TypeArray {
		items, _ := v.Array()
		var idx [20]byte
		for i, it := range items {
			c.element(strconv.AppendInt(idx[:0], int64(i), 10), it)
		}
	} else {
		o, _ := v.Object()
		o.Visit(c.member)
	}
	c.out = append(c.out, 0)
	binary.LittleEndian.PutUint32(c.out[start:], uint32(len(c.out)-start))
}

func (c *converter) member(k []byte, v *fastjson.Value) {
	if len(k) > 0 && k[0] == '$' {
		c.failed = true // an extended JSON type wrapper, or a key it refuses
		return
	}
	c.element(k, v)
}

// element appends one element: its type, its key, its value.
func (c *converter) element(k []byte, v *fastjson.Value) {
	if c.failed {
		return
	}
	if bytes.IndexByte(k, 0) >= 0 {
		c.failed = true // not a BSON key
		return
	}
	at := len(c.out)
	c.out = append(c.out, 0)
	c.out = append(append(c.out, k...), 0)
	switch v.Type() {
	case fastjson.TypeString:
		s, _ := v.StringBytes()
		c.out[at] = byte(bson.TypeString)
		c.out = binary.LittleEndian.AppendUint32(c.out, uint32(len(s)+1))
		c.out = append(append(c.out, s...), 0)
	case fastjson.TypeNumber:
		c.number(at, v)
	case fastjson.TypeTrue, fastjson.TypeFalse:
		c.out[at] = byte(bson.TypeBoolean)
		b := byte(0)
		if v.Type() == fastjson.TypeTrue {
			b = 1
		}
		c.out = append(c.out, b)
	case fastjson.TypeNull:
		c.out[at] = byte(bson.TypeNull)
	case fastjson.TypeObject:
		c.out[at] = byte(bson.TypeEmbeddedDocument)
		c.document(v)
	case fastjson.TypeArray:
		c.out[at] = byte(bson.TypeArray)
		c.document(v)
	default:
		c.failed = true
	}
}

// number appends a number as the driver's extended JSON scanner reads it:
// an integer literal that fits int32 is an int32, one that fits int64 an
// int64, anything else a double.
func (c *converter) number(at int, v *fastjson.Value) {
	c.num = v.MarshalTo(c.num[:0])
	lit := c.num
	if !jsonNumber(lit) {
		c.failed = true
		return
	}
	if bytes.IndexAny(lit, ".eE") < 0 {
		if n, err := strconv.ParseInt(string(lit), 10, 64); err == nil {
			if n >= math.MinInt32 && n <= math.MaxInt32 {
				c.out[at] = byte(bson.TypeInt32)
				c.out = binary.LittleEndian.AppendUint32(c.out, uint32(int32(n)))
				return
			}
			c.out[at] = byte(bson.TypeInt64)
			c.out = binary.LittleEndian.AppendUint64(c.out, uint64(n))
			return
		}
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil {
		c.failed = true // out of range: the driver refuses it
		return
	}
	c.out[at] = byte(bson.TypeDouble)
	c.out = binary.LittleEndian.AppendUint64(c.out, math.Float64bits(f))
}

// jsonNumber reports whether lit is a number as JSON writes one (fastjson
// also takes forms such as "inf" or "1.").
func jsonNumber(lit []byte) bool {
	i := 0
	if i < len(lit) && lit[i] == '-' {
		i++
	}
	digits := func() int {
		j := i
		for i < len(lit) && lit[i] >= '0' && lit[i] <= '9' {
			i++
		}
		return i - j
	}
	switch n := digits(); {
	case n == 0:
		return false
	case n > 1 && lit[i-n] == '0':
		return false
	}
	if i < len(lit) && lit[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(lit) && (lit[i] == 'e' || lit[i] == 'E') {
		i++
		if i < len(lit) && (lit[i] == '+' || lit[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(lit)
}

// appendRelaxedJSON appends doc as bson.MarshalExtJSON(doc, false, false)
// writes it, for the types FromJSON makes (strings, numbers, booleans,
// nulls, documents, arrays); ok is false for any other type or a malformed
// document, and the caller asks the driver (TestRelaxedJSONIsTheDrivers).
// A list renders 50 results of ~10 KB: the driver's reflective writer was
// the largest part of it.
func appendRelaxedJSON(dst []byte, doc []byte) (_ []byte, ok bool) {
	dst, rest, ok := appendDocJSON(dst, doc, false)
	return dst, ok && len(rest) == 0
}

// appendDocJSON appends the document (or array) at the start of b and
// returns what follows it.
func appendDocJSON(dst, b []byte, array bool) ([]byte, []byte, bool) {
	if len(b) < 5 {
		return dst, nil, false
	}
	n := int(binary.LittleEndian.Uint32(b))
	if n < 5 || n > len(b) || b[n-1] != 0 {
		return dst, nil, false
	}
	body, rest := b[4:n-1], b[n:]
	open, end := byte('{'), byte('}')
	if array {
		open, end = '[', ']'
	}
	dst = append(dst, open)
	for first := true; len(body) > 0; first = false {
		t := bson.Type(body[0])
		k := bytes.IndexByte(body[1:], 0)
		if k < 0 {
			return dst, nil, false
		}
		key := body[1 : 1+k]
		body = body[2+k:]
		if !first {
			dst = append(dst, ',')
		}
		if !array {
			dst = jsonx.AppendString(dst, key)
			dst = append(dst, ':')
		}
		var ok bool
		if dst, body, ok = appendValueJSON(dst, t, body); !ok {
			return dst, nil, false
		}
	}
	return append(dst, end), rest, true
}

// appendValueJSON appends the value of type t at the start of body and
// returns what follows it.
func appendValueJSON(dst []byte, t bson.Type, body []byte) ([]byte, []byte, bool) {
	var ok bool
	switch t {
	case bson.TypeString:
		if len(body) < 5 {
			return dst, nil, false
		}
		l := int(binary.LittleEndian.Uint32(body))
		if l < 1 || 4+l > len(body) || body[3+l] != 0 {
			return dst, nil, false
		}
		return jsonx.AppendString(dst, body[4:3+l]), body[4+l:], true
	case bson.TypeInt32:
		if len(body) < 4 {
			return dst, nil, false
		}
		return strconv.AppendInt(dst, int64(int32(binary.LittleEndian.Uint32(body))), 10), body[4:], true
	case bson.TypeInt64:
		if len(body) < 8 {
			return dst, nil, false
		}
		return strconv.AppendInt(dst, int64(binary.LittleEndian.Uint64(body)), 10), body[8:], true
	case bson.TypeDouble:
		if len(body) < 8 {
			return dst, nil, false
		}
		f := math.Float64frombits(binary.LittleEndian.Uint64(body))
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return dst, nil, false
		}
		start := len(dst)
		dst = strconv.AppendFloat(dst, f, 'G', -1, 64)
		if bytes.IndexAny(dst[start:], "E.") < 0 {
			dst = append(dst, '.', '0')
		}
		return dst, body[8:], true
	case bson.TypeBoolean:
		if len(body) < 1 || body[0] > 1 {
			return dst, nil, false
		}
		return strconv.AppendBool(dst, body[0] == 1), body[1:], true
	case bson.TypeNull:
		return append(dst, "null"...), body, true
	case bson.TypeEmbeddedDocument, bson.TypeArray:
		dst, body, ok = appendDocJSON(dst, body, t == bson.TypeArray)
		return dst, body, ok
	default:
		return dst, nil, false
	}
}
