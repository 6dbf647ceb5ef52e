package bson

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// ODAVL patch 12: the wire's NaN check reads the raw BSON in place.
//
// With wire.CheckNaNs on, as FerretDB sets it, every message in either
// direction was decoded deeply into wirebson documents (every nested
// document, every string copied) only to look for a NaN double, and then
// dropped: for a page of 50 results of ~10 KB that was 7% of a list's CPU,
// and every insert paid it again on the way in. CheckRaw accepts and
// refuses exactly what that check did (a malformed document as DecodeDeep
// refuses it, a NaN double anywhere) in one walk that allocates nothing;
// replies are checked for NaN while AppendDocument encodes them.

// ErrNaN is returned for a NaN double, which FerretDB does not support.
var ErrNaN = errors.New("NaN is not supported")

// CheckRaw returns an error if raw is not one well-formed BSON document as
// wirebson's DecodeDeep reads it, or if it holds a NaN double at any depth.
func CheckRaw(raw []byte) error {
	return checkRaw(raw, false, 0)
}

// checkRaw checks the document (or, if array, the array) that is all of b.
func checkRaw(b []byte, array bool, depth int) error {
	if depth > 512 {
		return errors.New("bson.CheckRaw: nested too deep")
	}

	l, err := findRaw(b)
	if err != nil {
		return err
	}

	if l != len(b) {
		return fmt.Errorf("bson.CheckRaw: %d bytes for a document of %d", len(b), l)
	}

	var index [20]byte

	for offset, i := 4, 0; ; i++ {
		if offset >= len(b) {
			return errors.New("bson.CheckRaw: short input")
		}

		t := b[offset]
		if t == 0 {
			if offset+1 != len(b) {
				return errors.New("bson.CheckRaw: data after the end")
			}

			return nil
		}

		offset++
		if offset >= len(b) {
			return errors.New("bson.CheckRaw: short input")
		}

		n := bytes.IndexByte(b[offset:], 0)
		if n < 0 {
			return errors.New("bson.CheckRaw: field name without its 0 byte")
		}

		if array && !bytes.Equal(b[offset:offset+n], strconv.AppendInt(index[:0], int64(i), 10)) {
			return fmt.Errorf("bson.CheckRaw: invalid array index %q", b[offset:offset+n])
		}

		offset += n + 1

		size, err := checkValue(b[offset:], t, depth)
		if err != nil {
			return err
		}

		offset += size
	}
}

// checkValue checks the value of type t at b[0] and returns its size.
func checkValue(b []byte, t byte, depth int) (int, error) {
	switch t {
	case 0x03, 0x04:
		l, err := findRaw(b)
		if err != nil {
			return 0, err
		}

		return l, checkRaw(b[:l], t == 0x04, depth+1)

	case 0x01:
		if len(b) < 8 {
			return 0, errors.New("bson.CheckRaw: short double")
		}

		if math.IsNaN(math.Float64frombits(binary.LittleEndian.Uint64(b))) {
			return 0, ErrNaN
		}

		return 8, nil

	case 0x02:
		if len(b) < 5 {
			return 0, errors.New("bson.CheckRaw: short string")
		}

		n := int(binary.LittleEndian.Uint32(b))
		if n < 1 || len(b) < 4+n || b[4+n-1] != 0 {
			return 0, errors.New("bson.CheckRaw: invalid string")
		}

		return 4 + n, nil

	case 0x05:
		if len(b) < 5 {
			return 0, errors.New("bson.CheckRaw: short binary")
		}

		n := int(binary.LittleEndian.Uint32(b))
		if len(b) < 5+n {
			return 0, errors.New("bson.CheckRaw: short binary")
		}

		return 5 + n, nil

	case 0x08:
		if len(b) == 0 || b[0] > 1 {
			return 0, errors.New("bson.CheckRaw: invalid bool")
		}

		return 1, nil

	case 0x0b:
		p := bytes.IndexByte(b, 0)
		if p < 0 {
			return 0, errors.New("bson.CheckRaw: invalid regex")
		}

		o := bytes.IndexByte(b[p+1:], 0)
		if o < 0 {
			return 0, errors.New("bson.CheckRaw: invalid regex")
		}

		return p + 1 + o + 1, nil
	}

	var size int

	switch t {
	case 0x0a: // null
	case 0x10: // int32
		size = 4
	case 0x09, 0x11, 0x12: // date, timestamp, int64
		size = 8
	case 0x07: // object id
		size = 12
	case 0x13: // decimal128, which DecodeDeep reads
		size = 16
	default:
		return 0, fmt.Errorf("bson.CheckRaw: unsupported type 0x%02x", t)
	}

	if len(b) < size {
		return 0, fmt.Errorf("bson.CheckRaw: short value of type 0x%02x", t)
	}

	return size, nil
}

// findRaw returns the length of the document or array at b[0], checked as
// wirebson's FindRaw checks it.
func findRaw(b []byte) (int, error) {
	if len(b) < 5 {
		return 0, errors.New("bson.CheckRaw: short document")
	}

	l := int(binary.LittleEndian.Uint32(b))
	if l < 5 || len(b) < l || b[l-1] != 0 {
		return 0, errors.New("bson.CheckRaw: invalid document length")
	}

	return l, nil
}
