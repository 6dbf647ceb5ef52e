package bson

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// Patch 11: AppendDocument makes the bytes FromDocument and wirebson's
// Encode make, for random documents of every type FerretDB holds, nested;
// SizeDocument is their length.
func TestODAVLAppendDocumentIsWirebsons(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 8))
	for range 2000 {
		doc := randomDocument(rng, 0)
		want := must.NotFail(must.NotFail(FromDocument(doc)).Encode())
		got, err := AppendDocument([]byte("prefix"), doc)
		if err != nil {
			t.Fatal(err)
		}
		if n := SizeDocument(doc); n != len(want) {
			t.Fatalf("%v: SizeDocument %d, encoded %d bytes", doc, n, len(want))
		}
		if !bytes.Equal(got[6:], want) || string(got[:6]) != "prefix" {
			t.Fatalf("%v:\nAppendDocument %x\nwirebson       %x", doc, got[6:], []byte(want))
		}
	}
}

func randomDocument(rng *rand.Rand, depth int) *types.Document {
	doc := types.MakeDocument(0)
	for i := range rng.IntN(7) {
		doc.Set(fmt.Sprintf("%s%d", []string{"a", "é", "", "_id", "$x"}[rng.IntN(5)], i), randomValue(rng, depth+1))
	}
	return doc
}

func randomValue(rng *rand.Rand, depth int) any {
	k := rng.IntN(16)
	if depth > 3 && k >= 14 {
		k = 0
	}
	switch k {
	case 0:
		return []string{"", "x", "日本😀", "a\x00b"}[rng.IntN(4)]
	case 1:
		return []float64{0, math.Copysign(0, -1), 1.5, math.Inf(1), math.MaxFloat64, -1e-300}[rng.IntN(6)]
	case 2:
		return types.Binary{B: []byte("bin"), Subtype: types.BinarySubtype(rng.IntN(6))}
	case 3:
		return types.ObjectID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, byte(rng.IntN(256))}
	case 4:
		return rng.IntN(2) == 0
	case 5:
		return time.UnixMilli(rng.Int64N(1<<42) - 1<<41).UTC()
	case 6:
		return types.Null
	case 7:
		return types.Regex{Pattern: "^a.*", Options: []string{"", "i", "ms"}[rng.IntN(3)]}
	case 8:
		return int32(rng.Int32() - math.MaxInt32/2)
	case 9:
		return types.Timestamp(rng.Uint64())
	case 10:
		return rng.Int64() - math.MaxInt64/2
	case 11:
		return types.Binary{Subtype: types.BinaryGeneric}
	case 12, 13:
		return "plain string value"
	case 14:
		return randomDocument(rng, depth)
	default:
		arr := types.MakeArray(0)
		for range rng.IntN(12) {
			arr.Append(randomValue(rng, depth+1))
		}
		return arr
	}
}
