package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/odavl/sync/libs/rpc"
)

// decodeStrict decodes a JSON object into v, refusing unknown fields. What
// is wrong is said in words, naming the field, what was sent and what to
// send — never in the decoder's own terms ("cannot unmarshal … Go struct
// field …"), which name Go types a client never sees.
func decodeStrict(b []byte, v any) *rpc.FieldError {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	err := d.Decode(v)
	if err == nil {
		return nil
	}
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.Is(err, io.EOF):
		return &rpc.FieldError{Field: "body", Message: "is empty: send a JSON object"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &rpc.FieldError{Field: "body", Message: "ends before its JSON is complete: close every string, object and array"}
	case errors.As(err, &syn):
		return &rpc.FieldError{Field: "body", Message: "is not valid JSON at " + position(b, syn.Offset) + ": check the quotes, commas and brackets there"}
	case errors.As(err, &typ):
		if typ.Field == "" {
			return &rpc.FieldError{Field: "body", Message: "must be a JSON object, not " + jsonKind(typ.Value)}
		}
		return &rpc.FieldError{Field: typ.Field, Message: "must be " + goKind(typ.Type) + ", not " + jsonKind(typ.Value)}
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name, _ = strconv.Unquote(name)
		return &rpc.FieldError{Field: name, Message: "is not a field of this request; the fields are " + strings.Join(fieldNames(v), ", ")}
	}
	return &rpc.FieldError{Field: "body", Message: "is not a JSON object this route reads"}
}

// badBody answers 400 for a body decodeStrict refused.
func badBody(c *gin.Context, e *rpc.FieldError) {
	problem(c, http.StatusBadRequest, "validation", "invalid body: "+e.Field+" "+e.Message, *e)
}

// position is a byte offset of b as line and column.
func position(b []byte, offset int64) string {
	offset = min(max(offset, 1), int64(len(b)))
	before := b[:offset]
	line := bytes.Count(before, []byte("\n")) + 1
	col := len(before) - bytes.LastIndexByte(before, '\n') - 1
	return "line " + strconv.Itoa(line) + ", column " + strconv.Itoa(col) + " (" + strconv.Quote(string(b[offset-1:offset])) + ")"
}

// jsonKind names what the decoder found, in words.
func jsonKind(v string) string {
	switch v {
	case "string":
		return "a string"
	case "number":
		return "a number"
	case "bool":
		return "true or false"
	case "array":
		return "an array"
	case "object":
		return "an object"
	}
	if strings.HasPrefix(v, "number") {
		return "the number " + strings.TrimSpace(strings.TrimPrefix(v, "number"))
	}
	return v
}

// kindWords names, in words with an example, the JSON each Go kind of a
// body field decodes from.
var kindWords = map[reflect.Kind]string{
	reflect.Int: "a whole number such as 1024 (without quotes)", reflect.Int32: "a whole number such as 1024 (without quotes)",
	reflect.Int64: "a whole number such as 1024 (without quotes)", reflect.Float64: "a number such as 1.5 (without quotes)",
	reflect.Bool: "true or false (without quotes)", reflect.String: "a string in double quotes",
}

// goKind names what a field of type t takes, in words, with an example.
func goKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
		return "an array, each element " + goKind(t.Elem())
	}
	if w, ok := kindWords[t.Kind()]; ok {
		return w
	}
	return "a JSON object"
}

// fieldNames lists the JSON names of the struct v points to.
func fieldNames(v any) []string {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []string
	if t.Kind() != reflect.Struct {
		return out
	}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}
