package bson

import (
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/FerretDB/wire"
	"github.com/FerretDB/wire/wirebson"

	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// wireAccepts is the check wire.CheckNaNs made on every message: the
// document decoded deeply, then searched for a NaN.
func wireAccepts(raw []byte) bool {
	_, err := wire.NewOpMsg(wirebson.RawDocument(raw))
	return err == nil
}

// Patch 12: CheckRaw accepts exactly what the wire's NaN check accepted, on
// random documents (some with a NaN somewhere) and on the same documents
// damaged: bytes changed, types swapped for ones wirebson refuses or reads,
// lengths off by a little, cut short.
func TestODAVLCheckRawIsTheWiresCheck(t *testing.T) {
	saved := wire.CheckNaNs
	wire.CheckNaNs = true
	t.Cleanup(func() { wire.CheckNaNs = saved })

	rng := rand.New(rand.NewPCG(12, 3))
	var accepted, refused, nan int
	for range 4000 {
		doc := randomDocument(rng, 0)
		if rng.IntN(4) == 0 {
			plantNaN(rng, doc)
		}
		raw := appendUnchecked(doc)

		for m := range 6 {
			b := append([]byte(nil), raw...)
			if m > 0 {
				b = damage(rng, b)
			}
			want := wireAccepts(b)
			err := CheckRaw(b)
			if (err == nil) != want {
				t.Fatalf("wire accepts %v, CheckRaw says %v, for %x", want, err, b)
			}
			switch {
			case err == nil:
				accepted++
			case errors.Is(err, ErrNaN):
				nan++
			default:
				refused++
			}
		}
	}
	t.Logf("%d accepted, %d refused for a NaN, %d refused as malformed", accepted, nan, refused)
	if accepted < 1000 || nan < 500 || refused < 1000 {
		t.Fatal("the cases do not cover each answer")
	}
}

// Patch 12: a reply with a NaN is refused as the wire's check refused it.
func TestODAVLAppendDocumentRefusesNaN(t *testing.T) {
	doc := types.MakeDocument(0)
	doc.Set("ok", 1.0)
	doc.Set("cursor", must.NotFail(types.NewDocument("firstBatch", must.NotFail(types.NewArray(must.NotFail(types.NewDocument("v", math.NaN())))))))
	if _, err := AppendDocument(nil, doc); !errors.Is(err, ErrNaN) {
		t.Fatalf("AppendDocument of a NaN: %v", err)
	}
}

// appendUnchecked encodes doc with wirebson, which writes a NaN as it is.
func appendUnchecked(doc *types.Document) []byte {
	raw, err := must.NotFail(FromDocument(doc)).Encode()
	if err != nil {
		panic(err)
	}
	return raw
}

// plantNaN puts a NaN in doc, nested sometimes.
func plantNaN(rng *rand.Rand, doc *types.Document) {
	switch rng.IntN(3) {
	case 0:
		doc.Set("nan", math.NaN())
	case 1:
		doc.Set("nested", must.NotFail(types.NewDocument("x", 1.5, "nan", math.NaN())))
	default:
		doc.Set("list", must.NotFail(types.NewArray("a", must.NotFail(types.NewDocument("nan", math.NaN())))))
	}
}

// damage changes b in one of the ways a broken client or a bug would.
func damage(rng *rand.Rand, b []byte) []byte {
	if len(b) <= 5 {
		return b[:rng.IntN(len(b)+1)]
	}
	i := 4 + rng.IntN(len(b)-5)
	switch rng.IntN(6) {
	case 0:
		b[i] = byte(rng.IntN(256))
	case 1:
		b[i] = []byte{0x06, 0x0c, 0x0d, 0x0e, 0x0f, 0x13, 0x7f, 0xff, 0x14, 0x00}[rng.IntN(10)]
	case 2:
		b[i] += byte(rng.IntN(3)) - 1
	case 3:
		return b[:rng.IntN(len(b))]
	case 4:
		binary.LittleEndian.PutUint32(b, uint32(len(b)+rng.IntN(5)-2))
	default:
		b[i] ^= 1 << rng.IntN(8)
	}
	return b
}
