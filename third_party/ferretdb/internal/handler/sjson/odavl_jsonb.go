package sjson

// ODAVL patch 13: a stored document is decoded from JSONB where it lies.
//
// Since patch 9 the SQLite backend stores documents as JSONB, and reading
// one turned it back into JSON text (jsonb.ToText), which the one-pass
// decoder of patch 5 then parsed into a tree of its own (fastjson) before
// walking it: a page of 50 results of ~10 KB was written out and parsed
// again for every list. UnmarshalJSONB walks the JSONB elements and the
// schema beside them in place. sjson writes a document's fields, its
// schema's properties and its keys in one order, so each lookup is the next
// member; a document written otherwise is still found by key, only slower.
// Every value is converted by the same functions as patch 5's decoder
// (scalarValue, binaryValue), and the equivalence test holds this decoder to
// upstream's answers through the JSON text.

import (
	"bytes"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/jsonb"
	"github.com/FerretDB/FerretDB/internal/util/lazyerrors"
)

// UnmarshalJSONB is Unmarshal of the document's JSON text, read from its
// JSONB.
func UnmarshalJSONB(b []byte) (*types.Document, error) {
	root, n, err := readNode(b)
	if err != nil {
		return nil, lazyerrors.Error(err)
	}

	if n != len(b) {
		return nil, lazyerrors.Errorf("sjson: %d bytes after the document", len(b)-n)
	}

	if root.typ != jsonb.Object {
		return nil, lazyerrors.Errorf("sjson: the document is not an object")
	}

	var at members
	sch, ok, err := root.get(&at, "$s")
	if err != nil {
		return nil, lazyerrors.Error(err)
	}

	if !ok {
		return nil, lazyerrors.Errorf("schema is not set")
	}

	var dec jsonbDecoder

	return dec.document(root, at, sch, true)
}

// jsonbDecoder decodes one stored document. It makes each distinct key
// string once: an Insight result's 48 issues share six keys.
type jsonbDecoder struct {
	keys map[string]string
}

// key returns b as a string, the same string for the same bytes.
func (dec *jsonbDecoder) key(b []byte) string {
	if k, ok := dec.keys[string(b)]; ok {
		return k
	}

	if dec.keys == nil {
		dec.keys = make(map[string]string, 16)
	}

	k := string(b)
	dec.keys[k] = k

	return k
}

// node is a JSONB element: its type and its payload.
type node struct {
	typ byte
	p   []byte
}

// readNode reads the element at b[0] and returns it and its length.
func readNode(b []byte) (node, int, error) {
	typ, hlen, n, err := jsonb.Element(b)
	if err != nil {
		return node{}, 0, err
	}

	return node{typ: typ, p: b[hlen : hlen+n]}, hlen + n, nil
}

// members reads an object's or an array's elements in order.
type members struct {
	p   []byte
	pos int
}

// next returns the next element; ok is false at the end.
func (m *members) next() (v node, ok bool, err error) {
	if m.pos >= len(m.p) {
		return node{}, false, nil
	}

	v, n, err := readNode(m.p[m.pos:])
	if err != nil {
		return node{}, false, err
	}

	m.pos += n

	return v, true, nil
}

// count returns the number of n's elements (an object's members are pairs).
func (n node) count() (int, error) {
	m := members{p: n.p}

	var c int

	for {
		_, ok, err := m.next()
		if err != nil {
			return 0, err
		}

		if !ok {
			break
		}

		c++
	}

	if n.typ == jsonb.Object {
		if c%2 != 0 {
			return 0, lazyerrors.Errorf("sjson: an object with a key and no value")
		}

		c /= 2
	}

	return c, nil
}

// get returns the value of the object n's member key: the member at *at if
// it is that key (and moves *at past it), else the first member of that key
// (and leaves *at after it). The zero node and false if n is no object or
// has no such member, as fastjson's Get.
func (n node) get(at *members, key string) (node, bool, error) {
	if n.typ != jsonb.Object {
		return node{}, false, nil
	}

	if at.p == nil {
		at.p = n.p
	}

	if try := *at; try.pos < len(try.p) {
		if v, ok, err := try.member(key); ok || err != nil {
			*at = try
			return v, ok, err
		}
	}

	from := members{p: n.p}

	for from.pos < len(from.p) {
		if v, ok, err := from.member(key); ok || err != nil {
			*at = from
			return v, ok, err
		}
	}

	return node{}, false, nil
}

// member reads the next member; if its key is key it returns its value.
func (m *members) member(key string) (node, bool, error) {
	k, ok, err := m.next()
	if err != nil || !ok {
		return node{}, false, err
	}

	v, ok, err := m.next()
	if err != nil {
		return node{}, false, err
	}

	if !ok {
		return node{}, false, lazyerrors.Errorf("sjson: an object with a key and no value")
	}

	name, err := k.text()
	if err != nil {
		return node{}, false, err
	}

	return v, string(name) == key, nil
}

// text returns a text element's string, unescaped.
func (n node) text() ([]byte, error) {
	switch n.typ {
	case jsonb.Text, jsonb.TextRaw:
		return n.p, nil
	case jsonb.TextJ:
		return unescape(n.p)
	default:
		return nil, lazyerrors.Errorf("sjson: want a string, got JSONB type %d", n.typ)
	}
}

// scalar returns n's JSON kind and text for scalarValue.
func (n node) scalar() (scalarKind, []byte, error) {
	switch n.typ {
	case jsonb.Text, jsonb.TextRaw, jsonb.TextJ:
		b, err := n.text()
		return scalarString, b, err
	case jsonb.Int, jsonb.Float:
		return scalarNumber, n.p, nil
	case jsonb.True:
		return scalarTrue, nil, nil
	case jsonb.False:
		return scalarFalse, nil, nil
	default:
		return scalarOther, nil, nil
	}
}

// document decodes obj by its schema sch; top is the stored document,
// whose first member at is past is its schema.
func (dec *jsonbDecoder) document(obj node, at members, sch node, top bool) (*types.Document, error) {
	fields, err := obj.count()
	if err != nil {
		return nil, lazyerrors.Error(err)
	}

	if top {
		fields--
	}

	if !top && fields == 0 {
		return types.MakeDocument(0), nil
	}

	if sch.typ != jsonb.Object {
		return nil, lazyerrors.Errorf("document schema is not set")
	}

	var sat members

	props, _, err := sch.get(&sat, "p")
	if err != nil {
		return nil, lazyerrors.Error(err)
	}

	keys, _, err := sch.get(&sat, "$k")
	if err != nil {
		return nil, lazyerrors.Error(err)
	}

	if keys.typ != jsonb.Array {
		keys = node{typ: jsonb.Array}
	}

	n, err := keys.count()
	if err != nil {
		return nil, lazyerrors.Error(err)
	}

	if n != fields {
		return nil, lazyerrors.Errorf("sjson: %d keys in the schema, %d fields in the document", n, fields)
	}

	d := types.MakeDocument(n)
	ks := members{p: keys.p}

	var pat members

	for {
		k, ok, err := ks.next()
		if err != nil {
			return nil, lazyerrors.Error(err)
		}

		if !ok {
			return d, nil
		}

		kb, err := k.text()
		if err != nil {
			return nil, lazyerrors.Error(err)
		}

		key := dec.key(kb)

		val, ok, err := obj.get(&at, key)
		if err != nil {
			return nil, lazyerrors.Error(err)
		}

		if !ok {
			return nil, lazyerrors.Errorf("sjson: missing key %q", key)
		}

		e, ok, err := props.get(&pat, key)
		if err != nil {
			return nil, lazyerrors.Error(err)
		}

		x, err := dec.value(val, e, ok)
		if err != nil {
			return nil, lazyerrors.Error(err)
		}

		d.Set(key, x)
	}
}

// value decodes v by its schema element e ({"t": type, ...}), if hasE.
func (dec *jsonbDecoder) value(v node, e node, hasE bool) (any, error) {
	if v.typ == jsonb.Null {
		return types.Null, nil
	}

	if !hasE {
		return nil, lazyerrors.Errorf("schema is not set")
	}

	var eat members

	tn, _, err := e.get(&eat, "t")
	if err != nil {
		return nil, lazyerrors.Error(err)
	}

	var t elemType
	if tn.typ == jsonb.Text || tn.typ == jsonb.TextJ || tn.typ == jsonb.TextRaw {
		tb, err := tn.text()
		if err != nil {
			return nil, lazyerrors.Error(err)
		}

		t = schemaType(tb)
	}

	switch t {
	case elemTypeObject:
		if v.typ != jsonb.Object {
			return nil, lazyerrors.Errorf("sjson: want an object, got JSONB type %d", v.typ)
		}

		sch, _, err := e.get(&eat, "$s")
		if err != nil {
			return nil, lazyerrors.Error(err)
		}

		return dec.document(v, members{}, sch, false)

	case elemTypeArray:
		return dec.array(v, e, &eat)

	case elemTypeBinData:
		b, err := v.text()
		if err != nil {
			return nil, lazyerrors.Error(err)
		}

		sub, ok, err := e.get(&eat, "s")
		if err != nil {
			return nil, lazyerrors.Error(err)
		}

		if !ok {
			return nil, lazyerrors.Errorf("binary subtype is nil")
		}

		if sub.typ != jsonb.Int {
			return nil, lazyerrors.Errorf("sjson: binary subtype is no integer")
		}

		n, err := strconv.Atoi(string(sub.p))
		if err != nil {
			return nil, lazyerrors.Error(err)
		}

		return binaryValue(b, n)

	case elemTypeRegex:
		b, err := v.text()
		if err != nil {
			return nil, lazyerrors.Error(err)
		}

		o, ok, err := e.get(&eat, "o")
		if err != nil {
			return nil, lazyerrors.Error(err)
		}

		if !ok {
			return nil, lazyerrors.Errorf("regex options is nil")
		}

		ob, err := o.text()
		if err != nil {
			return nil, lazyerrors.Error(err)
		}

		return types.Regex{Pattern: string(b), Options: string(ob)}, nil

	default:
		kind, text, err := v.scalar()
		if err != nil {
			return nil, lazyerrors.Error(err)
		}

		return scalarValue(t, kind, text)
	}
}

// array decodes the array v by the items of its schema element e.
func (dec *jsonbDecoder) array(v node, e node, eat *members) (any, error) {
	if v.typ != jsonb.Array {
		return nil, lazyerrors.Errorf("sjson: want an array, got JSONB type %d", v.typ)
	}

	items, _, err := e.get(eat, "i")
	if err != nil {
		return nil, lazyerrors.Error(err)
	}

	if items.typ != jsonb.Array {
		items = node{typ: jsonb.Array}
	}

	n, err := v.count()
	if err != nil {
		return nil, lazyerrors.Error(err)
	}

	if m, err := items.count(); err != nil || m != n {
		return nil, lazyerrors.Errorf("sjson: %d items in the schema, %d in the array (%v)", m, n, err)
	}

	a := types.MakeArray(n)
	vs, is := members{p: v.p}, members{p: items.p}

	for range n {
		iv, _, err := vs.next()
		if err != nil {
			return nil, lazyerrors.Error(err)
		}

		ie, _, err := is.next()
		if err != nil {
			return nil, lazyerrors.Error(err)
		}

		x, err := dec.value(iv, ie, true)
		if err != nil {
			return nil, lazyerrors.Error(err)
		}

		a.Append(x)
	}

	return a, nil
}

// schemaType is the schema element type named b, without making a string of
// b for the names sjson writes.
func schemaType(b []byte) elemType {
	for _, t := range [...]elemType{elemTypeObject, elemTypeArray, elemTypeDouble, elemTypeString, elemTypeBinData,
		elemTypeObjectID, elemTypeBool, elemTypeDate, elemTypeNull, elemTypeRegex, elemTypeInt, elemTypeTimestamp, elemTypeLong} {
		if string(t) == string(b) {
			return t
		}
	}

	return elemType(b)
}

// unescape returns the string a JSON string literal's body with escapes
// stands for, as encoding/json reads it: an invalid surrogate is U+FFFD.
func unescape(p []byte) ([]byte, error) {
	out := make([]byte, 0, len(p))

	for i := 0; i < len(p); {
		j := bytes.IndexByte(p[i:], '\\')
		if j < 0 {
			return append(out, p[i:]...), nil
		}

		out = append(out, p[i:i+j]...)
		i += j

		if i+1 >= len(p) {
			return nil, lazyerrors.Errorf("sjson: a string ending in a backslash")
		}

		c := p[i+1]
		i += 2

		switch c {
		case '"', '\\', '/':
			out = append(out, c)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(p[i:])
			if !ok {
				return nil, lazyerrors.Errorf("sjson: a bad \\u escape")
			}

			i += 4

			if utf16.IsSurrogate(r) {
				r2, ok := rune(-1), false
				if i+6 <= len(p) && p[i] == '\\' && p[i+1] == 'u' {
					r2, ok = hex4(p[i+2:])
				}

				if dec := utf16.DecodeRune(r, r2); ok && dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
				}
			}

			out = utf8.AppendRune(out, r)
		default:
			return nil, lazyerrors.Errorf("sjson: a bad escape \\%c", c)
		}
	}

	return out, nil
}

// hex4 reads the four hex digits of a \u escape.
func hex4(p []byte) (rune, bool) {
	if len(p) < 4 {
		return 0, false
	}

	n, err := strconv.ParseUint(string(p[:4]), 16, 32)

	return rune(n), err == nil
}
