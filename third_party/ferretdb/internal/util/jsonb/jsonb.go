// Package jsonb converts JSON text to and from SQLite's binary JSON (JSONB),
// in which ODAVL's patch 9 stores documents, and reads its elements in place
// (patch 13): https://sqlite.org/jsonb.html. Each element is a header (its
// type in the low four bits, its payload size or the width of the size that
// follows in the high four) and a payload.
package jsonb

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
)

// Element types.
const (
	Null    = 0
	True    = 1
	False   = 2
	Int     = 3
	Int5    = 4
	Float   = 5
	Float5  = 6
	Text    = 7
	TextJ   = 8
	Text5   = 9
	TextRaw = 10
	Array   = 11
	Object  = 12
)

// Element reads the header at b[0] and returns the element's type, the
// header's length and the payload's.
func Element(b []byte) (typ byte, hlen, n int, err error) {
	if len(b) == 0 {
		return 0, 0, 0, fmt.Errorf("jsonb: unexpected end")
	}

	typ, code := b[0]&0x0f, b[0]>>4

	switch {
	case code <= 11:
		hlen, n = 1, int(code)
	case code == 12 && len(b) >= 2:
		hlen, n = 2, int(b[1])
	case code == 13 && len(b) >= 3:
		hlen, n = 3, int(binary.BigEndian.Uint16(b[1:]))
	case code == 14 && len(b) >= 5:
		hlen, n = 5, int(binary.BigEndian.Uint32(b[1:]))
	case code == 15 && len(b) >= 9:
		u := binary.BigEndian.Uint64(b[1:])
		if u > uint64(len(b)) {
			return 0, 0, 0, fmt.Errorf("jsonb: element size %d past the end", u)
		}

		hlen, n = 9, int(u)
	default:
		return 0, 0, 0, fmt.Errorf("jsonb: truncated header")
	}

	if hlen+n > len(b) {
		return 0, 0, 0, fmt.Errorf("jsonb: element size %d past the end", n)
	}

	return typ, hlen, n, nil
}

// FromText converts JSON text (as sjson.Marshal writes it) to JSONB.
func FromText(text []byte) ([]byte, error) {
	e := jsonbEncoder{in: text, out: make([]byte, 0, len(text))}
	e.space()

	if err := e.value(0); err != nil {
		return nil, err
	}

	if e.space(); e.pos != len(e.in) {
		return nil, e.errorf("trailing data")
	}

	return e.out, nil
}

type jsonbEncoder struct {
	in  []byte
	pos int
	out []byte
}

func (e *jsonbEncoder) errorf(format string, args ...any) error {
	return fmt.Errorf("jsonb: at byte %d: %s", e.pos, fmt.Sprintf(format, args...))
}

func (e *jsonbEncoder) space() {
	for e.pos < len(e.in) {
		switch e.in[e.pos] {
		case ' ', '\t', '\n', '\r':
			e.pos++
		default:
			return
		}
	}
}

// header appends an element's header for a payload of size n.
func header(out []byte, typ byte, n int) []byte {
	switch {
	case n <= 11:
		return append(out, byte(n)<<4|typ)
	case n <= 0xff:
		return append(out, 0xc0|typ, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(out, 0xd0|typ), uint16(n))
	default:
		return binary.BigEndian.AppendUint32(append(out, 0xe0|typ), uint32(n))
	}
}

// maxDepth bounds nesting as SQLite's own parser does (JSON_MAX_DEPTH).
const maxDepth = 1000

func (e *jsonbEncoder) value(depth int) error {
	if depth > maxDepth {
		return e.errorf("nested too deep")
	}

	if e.pos >= len(e.in) {
		return e.errorf("unexpected end")
	}

	switch c := e.in[e.pos]; {
	case c == '{':
		return e.container(depth, Object, '}')
	case c == '[':
		return e.container(depth, Array, ']')
	case c == '"':
		return e.text()
	case c == '-' || c >= '0' && c <= '9':
		return e.number()
	default:
		for _, lit := range []struct {
			word string
			typ  byte
		}{{"null", Null}, {"true", True}, {"false", False}} {
			if len(e.in)-e.pos >= len(lit.word) && string(e.in[e.pos:e.pos+len(lit.word)]) == lit.word {
				e.pos += len(lit.word)
				e.out = append(e.out, lit.typ)

				return nil
			}
		}

		return e.errorf("unexpected %q", c)
	}
}

// container encodes an object's or an array's elements after room for the
// largest header, then writes the header it needs and moves the payload up.
func (e *jsonbEncoder) container(depth int, typ byte, end byte) error {
	at := len(e.out)
	e.out = append(e.out, 0, 0, 0, 0, 0)
	start := len(e.out)
	e.pos++

	for i := 0; ; i++ {
		e.space()

		if e.pos < len(e.in) && e.in[e.pos] == end && i == 0 {
			e.pos++
			break
		}

		if typ == Object {
			if e.pos >= len(e.in) || e.in[e.pos] != '"' {
				return e.errorf("object key expected")
			}

			if err := e.text(); err != nil {
				return err
			}

			if e.space(); e.pos >= len(e.in) || e.in[e.pos] != ':' {
				return e.errorf("':' expected")
			}

			e.pos++
			e.space()
		}

		if err := e.value(depth + 1); err != nil {
			return err
		}

		if e.space(); e.pos < len(e.in) && e.in[e.pos] == ',' {
			e.pos++
			continue
		}

		if e.pos < len(e.in) && e.in[e.pos] == end {
			e.pos++
			break
		}

		return e.errorf("',' or %q expected", end)
	}

	n := len(e.out) - start
	h := header(nil, typ, n)
	copy(e.out[at+len(h):], e.out[start:])
	copy(e.out[at:], h)
	e.out = e.out[:at+len(h)+n]

	return nil
}

// text encodes a string literal: as text if it has no escapes, else as
// textj, whose payload keeps JSON's escapes.
func (e *jsonbEncoder) text() error {
	e.pos++
	start, typ := e.pos, byte(Text)

	for {
		if e.pos >= len(e.in) {
			return e.errorf("unterminated string")
		}

		switch c := e.in[e.pos]; {
		case c == '"':
			e.out = header(e.out, typ, e.pos-start)
			e.out = append(e.out, e.in[start:e.pos]...)
			e.pos++

			return nil
		case c == '\\':
			typ = TextJ
			e.pos += 2
		case c < 0x20:
			return e.errorf("control character in string")
		default:
			e.pos++
		}
	}
}

// number encodes a number literal as SQLite's parser does: a float if it
// has a fraction or an exponent, else an int; its payload is the literal.
func (e *jsonbEncoder) number() error {
	start, typ := e.pos, byte(Int)

	for e.pos < len(e.in) {
		c := e.in[e.pos]
		if c == '.' || c == 'e' || c == 'E' {
			typ = Float
		} else if !(c >= '0' && c <= '9' || c == '-' || c == '+') {
			break
		}
		e.pos++
	}

	lit := e.in[start:e.pos]
	if typ == Int {
		if _, err := strconv.ParseInt(string(lit), 10, 64); err != nil {
			if _, ferr := strconv.ParseFloat(string(lit), 64); ferr != nil {
				return e.errorf("bad number %q", lit)
			}
		}
	} else if _, err := strconv.ParseFloat(string(lit), 64); err != nil {
		return e.errorf("bad number %q", lit)
	}

	e.out = header(e.out, typ, len(lit))
	e.out = append(e.out, lit...)

	return nil
}

// ToText converts a JSONB document to compact JSON text.
func ToText(b []byte) ([]byte, error) {
	out := make([]byte, 0, len(b)+len(b)/8)

	out, n, err := appendJSON(out, b, 0)
	if err != nil {
		return nil, err
	}

	if n != len(b) {
		return nil, fmt.Errorf("jsonb: %d trailing bytes", len(b)-n)
	}

	return out, nil
}

// appendJSON appends the JSON text of the element at b[0] and returns the
// element's length.
func appendJSON(out, b []byte, depth int) ([]byte, int, error) {
	if depth > maxDepth {
		return nil, 0, fmt.Errorf("jsonb: nested too deep")
	}

	typ, hlen, n, err := Element(b)
	if err != nil {
		return nil, 0, err
	}

	payload := b[hlen : hlen+n]

	switch typ {
	case Null:
		out = append(out, "null"...)
	case True:
		out = append(out, "true"...)
	case False:
		out = append(out, "false"...)
	case Int, Float:
		out = append(out, payload...)
	case Text, TextJ:
		out = append(append(append(out, '"'), payload...), '"')
	case TextRaw:
		q, err := json.Marshal(string(payload))
		if err != nil {
			return nil, 0, err
		}

		out = append(out, q...)
	case Array, Object:
		open, end := byte('['), byte(']')
		if typ == Object {
			open, end = '{', '}'
		}

		out = append(out, open)

		for i, pos := 0, 0; pos < len(payload); i++ {
			if i > 0 {
				sep := byte(',')
				if typ == Object && i%2 == 1 {
					sep = ':'
				}

				out = append(out, sep)
			}

			var m int
			if out, m, err = appendJSON(out, payload[pos:], depth+1); err != nil {
				return nil, 0, err
			}

			pos += m
		}

		out = append(out, end)
	default:
		// int5, float5, text5: JSON5, which nothing here writes.
		return nil, 0, fmt.Errorf("jsonb: element type %d not supported", typ)
	}

	return out, hlen + n, nil
}
