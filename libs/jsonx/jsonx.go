// Package jsonx writes JSON strings byte for byte as encoding/json does
// without HTML escaping, which is also how the MongoDB driver's extended
// JSON writer writes them: the gateway's canonical payloads and the jobs
// service's rendering of stored results both must match those bytes.
package jsonx

import (
	"bytes"
	"unicode/utf8"
)

// AppendString appends s as a JSON string: `"` and `\` escaped, control
// characters as \b \f \n \r \t or \u00XX, U+2028 and U+2029 as \u2028 and
// \u2029, and each byte that is not UTF-8 as \ufffd.
func AppendString(dst, s []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(append(dst, s[start:i]...), `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(append(dst, s[start:i]...), '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// SurrogateEscape reports whether the JSON text body may hold a \uD800-\uDFFF
// escape (half of a surrogate pair, or a lone one). Readers disagree on a
// lone one: fastjson keeps it as its six characters, encoding/json and the
// MongoDB driver make it U+FFFD; so a fast path built on fastjson leaves
// such a body to the slow one.
func SurrogateEscape(body []byte) bool {
	for i := bytes.Index(body, []byte(`\u`)); i >= 0 && i+3 < len(body); {
		if d := body[i+2]; d == 'd' || d == 'D' {
			if c := body[i+3]; c >= '8' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' {
				return true
			}
		}
		j := bytes.Index(body[i+2:], []byte(`\u`))
		if j < 0 {
			return false
		}
		i += 2 + j
	}
	return false
}
