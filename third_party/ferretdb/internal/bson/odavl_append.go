package bson

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/FerretDB/FerretDB/internal/types"
)

// ODAVL patch 11: replies are encoded straight from FerretDB's documents.
// documentOpMsg made a reply by converting every document of it into a
// wirebson.Document (FromDocument) and encoding that, which encodes each
// nested document and array into a buffer of its own and copies it into
// its parent's: a page of 50 results of ~10 KB was about a fifth of a list's
// CPU and a third of its allocations. AppendDocument writes the same bytes
// (TestODAVLAppendDocumentIsWirebsons) into one buffer.

// AppendDocument appends doc encoded as BSON to dst.
func AppendDocument(dst []byte, doc *types.Document) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)

	var err error

	for i := range doc.Len() {
		k, v := doc.Field(i)
		at := len(dst)
		dst = append(append(append(dst, 0), k...), 0)

		if dst, err = appendValue(dst, at, v); err != nil {
			return nil, err
		}
	}

	dst = append(dst, 0)
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(dst)-start))

	return dst, nil
}

// appendArray appends arr encoded as a BSON array to dst.
func appendArray(dst []byte, arr *types.Array) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)

	var err error

	for i := range arr.Len() {
		at := len(dst)
		dst = append(strconv.AppendInt(append(dst, 0), int64(i), 10), 0)

		if dst, err = appendValue(dst, at, arr.Elem(i)); err != nil {
			return nil, err
		}
	}

	dst = append(dst, 0)
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(dst)-start))

	return dst, nil
}

// appendValue appends an element's value to dst and sets its type at
// dst[at], as wirebson's encodeField does.
func appendValue(dst []byte, at int, v any) ([]byte, error) {
	var err error

	switch v := v.(type) {
	case *types.Document:
		dst[at] = 0x03
		return AppendDocument(dst, v)
	case *types.Array:
		dst[at] = 0x04
		return appendArray(dst, v)
	case float64:
		if math.IsNaN(v) {
			return nil, ErrNaN // patch 12: the reply's NaN check, as wire.CheckNaNs made it
		}

		dst[at] = 0x01
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
	case string:
		dst[at] = 0x02
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(v)+1))
		dst = append(append(dst, v...), 0)
	case types.Binary:
		dst[at] = 0x05
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(v.B)))
		dst = append(append(dst, byte(v.Subtype)), v.B...)
	case types.ObjectID:
		dst[at] = 0x07
		dst = append(dst, v[:]...)
	case bool:
		dst[at] = 0x08
		b := byte(0)
		if v {
			b = 1
		}
		dst = append(dst, b)
	case time.Time:
		dst[at] = 0x09
		dst = binary.LittleEndian.AppendUint64(dst, uint64(v.UnixMilli()))
	case types.NullType:
		dst[at] = 0x0a
	case types.Regex:
		dst[at] = 0x0b
		dst = append(append(dst, v.Pattern...), 0)
		dst = append(append(dst, v.Options...), 0)
	case int32:
		dst[at] = 0x10
		dst = binary.LittleEndian.AppendUint32(dst, uint32(v))
	case types.Timestamp:
		dst[at] = 0x11
		dst = binary.LittleEndian.AppendUint64(dst, uint64(v))
	case int64:
		dst[at] = 0x12
		dst = binary.LittleEndian.AppendUint64(dst, uint64(v))
	default:
		err = fmt.Errorf("bson.AppendDocument: invalid type %T", v)
	}

	return dst, err
}

// SizeDocument returns the length of doc encoded as BSON, as AppendDocument
// encodes it, so that a reply's buffer is made once at its size.
func SizeDocument(doc *types.Document) int {
	n := 5

	for i := range doc.Len() {
		k, v := doc.Field(i)
		n += 2 + len(k) + sizeValue(v)
	}

	return n
}

// sizeValue returns the length of v's encoding, without its type and name.
func sizeValue(v any) int {
	switch v := v.(type) {
	case *types.Document:
		return SizeDocument(v)
	case *types.Array:
		n := 5
		for i := range v.Len() {
			n += 2 + digits(i) + sizeValue(v.Elem(i))
		}

		return n
	case string:
		return 5 + len(v)
	case types.Binary:
		return 5 + len(v.B)
	case types.ObjectID:
		return 12
	case bool:
		return 1
	case types.Regex:
		return len(v.Pattern) + len(v.Options) + 2
	case int32:
		return 4
	case types.NullType:
		return 0
	default: // float64, time.Time, types.Timestamp, int64; an invalid type fails in AppendDocument
		return 8
	}
}

// digits returns the number of decimal digits of i ≥ 0.
func digits(i int) int {
	n := 1
	for ; i >= 10; i /= 10 {
		n++
	}

	return n
}
