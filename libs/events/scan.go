package events

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/valyala/fastjson"
)

// The fast decoding of the two envelopes every upload goes through (its
// received event, and the event's data), without encoding/json's reflection
// and its second and third passes over the ~10 KB payload, which the
// envelope only carries: the bytes are validated once (fastjson's validator
// is as strict as json.Valid), then the top-level members are cut out and
// the payload is kept as it is. Anything it is not sure to read as
// encoding/json does — an escaped or non-UTF-8 attribute, a key that only
// case-folds to a known one, a value of another type — makes it answer "not
// sure", and encoding/json decodes. TestFastDecodeIsEncodingJSON compares
// the two on thousands of envelopes.

// decodeFast decodes an envelope, or answers false.
func decodeFast(b []byte) (Event, bool) {
	var e Event
	if fastjson.ValidateBytes(b) != nil {
		return e, false
	}
	ok := members(b, func(k, v []byte) bool {
		switch string(k) {
		case "specversion":
			return plainString(v, &e.SpecVersion)
		case "id":
			return plainString(v, &e.ID)
		case "source":
			return plainString(v, &e.Source)
		case "type":
			return plainString(v, &e.Type)
		case "subject":
			return plainString(v, &e.Subject)
		case "time":
			return v[0] == '"' && e.Time.UnmarshalJSON(v) == nil
		case "datacontenttype":
			return plainString(v, &e.DataContentType)
		case "dataschema":
			return plainString(v, &e.DataSchema)
		case "organizationid":
			return plainString(v, &e.OrganizationID)
		case "projectid":
			return plainString(v, &e.ProjectID)
		case "data":
			e.Data = bytes.Clone(v)
			return true
		}
		return !foldsTo(k, eventKeys)
	})
	return e, ok
}

var eventKeys = []string{"specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema", "organizationid", "projectid", "data"}

// decodeReceivedFast decodes a received event's data, or answers false.
func decodeReceivedFast(b []byte, r *Received) bool {
	if fastjson.ValidateBytes(b) != nil {
		return false
	}
	var out Received
	ok := members(b, func(k, v []byte) bool {
		switch string(k) {
		case "uploadId":
			return plainString(v, &out.UploadID)
		case "organizationId":
			return plainString(v, &out.OrganizationID)
		case "projectId":
			return plainString(v, &out.ProjectID)
		case "product":
			var s string
			ok := plainString(v, &s)
			out.Product = Product(s)
			return ok
		case "idempotencyKey":
			return plainString(v, &out.IdempotencyKey)
		case "payloadHash":
			return plainString(v, &out.PayloadHash)
		case "keyId":
			return plainString(v, &out.KeyID)
		case "receivedAt":
			return v[0] == '"' && out.ReceivedAt.UnmarshalJSON(v) == nil
		case "payload":
			out.Payload = bytes.Clone(v)
			return true
		case "generation":
			return plainInt(v, &out.Generation)
		case "baseAttempt":
			return plainInt(v, &out.BaseAttempt)
		}
		return !foldsTo(k, receivedKeys)
	})
	if ok {
		*r = out
	}
	return ok
}

var receivedKeys = []string{"uploadId", "organizationId", "projectId", "product", "idempotencyKey", "payloadHash", "keyId", "receivedAt", "payload", "generation", "baseAttempt"}

// foldsTo reports whether encoding/json would match key to one of known
// (it matches names case-insensitively).
func foldsTo(key []byte, known []string) bool {
	for _, k := range known {
		if strings.EqualFold(string(key), k) {
			return true
		}
	}
	return false
}

// plainString sets *dst to the JSON string v when it has no escapes and is
// valid UTF-8 (encoding/json would read it as it is); null leaves *dst.
func plainString(v []byte, dst *string) bool {
	if string(v) == "null" {
		return true
	}
	if len(v) < 2 || v[0] != '"' {
		return false
	}
	s := v[1 : len(v)-1]
	if bytes.IndexByte(s, '\\') >= 0 || !utf8.Valid(s) {
		return false
	}
	*dst = string(s)
	return true
}

// plainInt sets *dst to the JSON integer v (as encoding/json reads it into
// an int); null leaves *dst.
func plainInt(v []byte, dst *int) bool {
	if string(v) == "null" {
		return true
	}
	if bytes.ContainsAny(v, ".eE") {
		return false
	}
	n, err := strconv.ParseInt(string(v), 10, 0)
	if err != nil {
		return false
	}
	*dst = int(n)
	return true
}

// members calls f with the key (unescaped: a key with an escape answers
// false) and the raw value of each member of the JSON object b, in order,
// and reports whether b is one object and f accepted every member. b must
// be valid JSON: values are cut out, not checked (but nothing reads out of
// bounds whatever b holds).
func members(b []byte, f func(k, v []byte) bool) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipSpace(b, i+1) == len(b)
	}
	for {
		end := stringEnd(b, i)
		if end < 0 {
			return false
		}
		key := b[i+1 : end-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			return false
		}
		if i = skipSpace(b, end); i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		vend := valueEnd(b, i)
		if vend < 0 || !f(key, b[i:vend]) {
			return false
		}
		switch i = skipSpace(b, vend); {
		case i < len(b) && b[i] == ',':
			i = skipSpace(b, i+1)
		case i < len(b) && b[i] == '}':
			return skipSpace(b, i+1) == len(b)
		default:
			return false
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index after the string that starts at b[i], or -1.
func stringEnd(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	for j := i + 1; j < len(b); {
		q := bytes.IndexByte(b[j:], '"')
		if q < 0 {
			return -1
		}
		j += q
		escapes := 0
		for k := j - 1; k > i && b[k] == '\\'; k-- {
			escapes++
		}
		if escapes%2 == 0 {
			return j + 1
		}
		j++
	}
	return -1
}

// valueEnd returns the index after the value that starts at b[i], or -1.
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				if i = stringEnd(b, i); i < 0 {
					return -1
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
		j++
	}
	if j == i {
		return -1
	}
	return j
}
