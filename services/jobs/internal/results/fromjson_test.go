package results

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// FromJSON makes the bytes the driver's extended JSON reader makes, for
// random documents of every JSON shape, and answers as it does (an error)
// where the driver refuses; the fast walk takes nearly all of them.
func TestFromJSONIsExtendedJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	fast := 0
	const n = 3000
	for i := range n {
		doc := randomObject(rng, 0)
		if i%7 == 0 { // also as encoding/json writes it, escapes and all
			var v any
			if json.Unmarshal(doc, &v) == nil {
				doc, _ = json.Marshal(v)
			}
		}
		var want bson.Raw
		wantErr := bson.UnmarshalExtJSON(doc, false, &want)
		got, err := FromJSON(doc)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("%s:\nFromJSON error %v, the driver's %v", doc, err, wantErr)
		}
		if err == nil && !bytes.Equal(got, want) {
			t.Fatalf("%s:\nFromJSON %v\ndriver   %v", doc, got, want)
		}
		if _, ok := fastFromJSON(doc); ok {
			fast++
		}
	}
	if fast < n*8/10 {
		t.Errorf("the fast walk took %d of %d documents", fast, n)
	}
}

// The forms the fast walk leaves to the driver, and those it must agree on.
func TestFromJSONEdges(t *testing.T) {
	for _, c := range []struct {
		doc  string
		fast bool
	}{
		{`{"a":1}`, true},
		{`{"a":2147483647,"b":2147483648,"c":-2147483648,"d":-2147483649}`, true},
		{`{"a":9223372036854775807,"b":9223372036854775808,"c":-9223372036854775809}`, true},
		{`{"a":-0,"b":0.0,"c":1e2,"d":1E-2,"e":-1.5e+3}`, true},
		{`{"a":1e400}`, false},
		{`{"a":01}`, false},
		{`{"$date":"2026-01-01T00:00:00Z"}`, false},
		{`{"a":{"$numberLong":"5"}}`, false},
		{`{"a":"\ud83d\ude00"}`, false},
		{`{"a":"é\u00e9\n\"\\"}`, true},
		{`{"a\u0000b":1}`, false},
		{`{"a":1,"a":2}`, true},
		{`{"":[[],{},null,true,false]}`, true},
		{`[1]`, false},
		{`{"a":1`, false},
		{"{\"a\":\"\xff\"}", false},
	} {
		var want bson.Raw
		wantErr := bson.UnmarshalExtJSON([]byte(c.doc), false, &want)
		got, err := FromJSON([]byte(c.doc))
		if (err != nil) != (wantErr != nil) || (err == nil && !bytes.Equal(got, want)) {
			t.Errorf("%s: FromJSON %v %v, the driver %v %v", c.doc, got, err, want, wantErr)
		}
		if _, ok := fastFromJSON([]byte(c.doc)); ok != c.fast {
			t.Errorf("%s: fast walk %v, want %v", c.doc, ok, c.fast)
		}
	}
}

func randomObject(rng *rand.Rand, depth int) []byte {
	var b strings.Builder
	b.WriteByte('{')
	for i := range rng.IntN(6) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(randomString(rng))
		b.WriteByte(':')
		b.Write(randomValue(rng, depth+1))
	}
	b.WriteByte('}')
	return []byte(b.String())
}

func randomValue(rng *rand.Rand, depth int) []byte {
	k := rng.IntN(10)
	if depth > 3 && k >= 8 {
		k = 0
	}
	switch k {
	case 0, 1:
		return []byte(randomString(rng))
	case 2, 3:
		return []byte(randomNumber(rng))
	case 4:
		return []byte([]string{"true", "false", "null"}[rng.IntN(3)])
	case 5:
		return []byte(fmt.Sprintf(" %s ", randomNumber(rng))) // spaces around
	case 6, 7:
		return []byte(randomString(rng))
	case 8:
		return randomObject(rng, depth)
	default:
		var b strings.Builder
		b.WriteByte('[')
		for i := range rng.IntN(5) {
			if i > 0 {
				b.WriteByte(',')
			}
			b.Write(randomValue(rng, depth+1))
		}
		b.WriteByte(']')
		return []byte(b.String())
	}
}

func randomNumber(rng *rand.Rand) string {
	switch rng.IntN(9) {
	case 0:
		return strconv.Itoa(rng.IntN(1000) - 500)
	case 1:
		return strconv.FormatInt(int64(math.MaxInt32)+int64(rng.IntN(5))-2, 10)
	case 2:
		return strconv.FormatInt(int64(math.MinInt32)+int64(rng.IntN(5))-2, 10)
	case 3:
		return []string{"9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809", "123456789012345678901234567890"}[rng.IntN(5)]
	case 4:
		return strconv.FormatFloat(rng.NormFloat64()*1e6, 'f', -1, 64)
	case 5:
		return strconv.FormatFloat(rng.NormFloat64(), 'e', rng.IntN(8), 64)
	case 6:
		return []string{"-0", "0", "0.0", "-0.0", "1E5", "1e-7", "2.5E+10", "1e308", "1e309", "-1e400", "4.9e-324", "1e-400"}[rng.IntN(12)]
	case 7:
		return strconv.FormatFloat(rng.Float64()*100, 'g', -1, 64)
	default:
		return strconv.FormatUint(rng.Uint64(), 10)
	}
}

func randomString(rng *rand.Rand) string {
	parts := []string{"a", "issue", "Zürich", "日本", "😀", `\"`, `\\`, `\n`, `\t`, `\/`, `\u00e9`, `\u2028`, `\u0041`, " ", "$", "\u007f", `\b\f\r`, "0"}
	var b strings.Builder
	b.WriteByte('"')
	for range rng.IntN(6) {
		b.WriteString(parts[rng.IntN(len(parts))])
	}
	b.WriteByte('"')
	return b.String()
}

func BenchmarkFromJSON(b *testing.B) {
	var doc strings.Builder
	doc.WriteString(`{"detectors":["eslint","tsc"],"issues":[`)
	for i := range 48 {
		if i > 0 {
			doc.WriteByte(',')
		}
		fmt.Fprintf(&doc, `{"column":5,"detector":"eslint","file":"packages/web/src/components/checkout/Step%02d.tsx","line":%d,"message":"no-unused-vars: 'someLongVariableName' is assigned a value but never used (upload 1, issue %d)","severity":"low"}`, i, 10+i, i)
	}
	doc.WriteString(`],"issuesBySeverity":{"critical":1,"high":1,"low":45,"medium":1},"metrics":{"codeLines":1200,"duration":1.5,"filesAnalyzed":40},"organizationId":"org","projectId":"p","timestamp":"2026-12-01T10:00:00Z","totalIssues":48}`)
	body := []byte(doc.String())
	for _, side := range []struct {
		name string
		f    func([]byte) (bson.Raw, error)
	}{
		{"fast", FromJSON},
		{"extjson", func(p []byte) (bson.Raw, error) {
			var raw bson.Raw
			err := bson.UnmarshalExtJSON(p, false, &raw)
			return raw, err
		}},
	} {
		b.Run(side.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := side.f(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A result's data renders as the driver's relaxed extended JSON writer
// renders it, for the documents FromJSON makes and for strings and numbers
// of every kind; other types are left to the driver.
func TestRelaxedJSONIsTheDrivers(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 17))
	var docs []bson.Raw
	for range 2000 {
		if raw, err := FromJSON(randomObject(rng, 0)); err == nil {
			docs = append(docs, raw)
		}
	}
	for _, f := range []float64{0, math.Copysign(0, -1), 1, -1.5, 1e21, 1e20, 123456789012345680000, 1e-7, 0.1, 5e-324, math.MaxFloat64, 3.0, 2.5e-5} {
		raw, _ := bson.Marshal(bson.D{{Key: "f", Value: f}})
		docs = append(docs, raw)
	}
	for _, s := range []string{"plain", "\x00\x01\x1f\x7f", "<&>", "\xff\xfe", "a\u2028b\u2029", "é日本😀", `"\`, "\b\f\n\r\t", "bad \xc3\x28 utf8"} {
		key := strings.ReplaceAll(s, "\x00", "0") // a key holds no NUL
		raw, err := bson.Marshal(bson.D{{Key: key, Value: s}, {Key: "n", Value: int64(math.MinInt64)}, {Key: "a", Value: bson.A{s, int32(-7), nil, true}}})
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, raw)
	}
	for _, raw := range docs {
		want, err := bson.MarshalExtJSON(raw, false, false)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := appendRelaxedJSON(nil, raw)
		if !ok || string(got) != string(want) {
			t.Fatalf("%v:\nours   %s (%v)\ndriver %s", raw, got, ok, want)
		}
	}
	// Types FromJSON never makes go to the driver.
	raw, _ := bson.Marshal(bson.D{{Key: "at", Value: bson.NewDateTimeFromTime(time.Unix(0, 0))}})
	if _, ok := appendRelaxedJSON(nil, raw); ok {
		t.Error("a date rendered by the fast writer")
	}
	r := Result{ID: "u", Data: raw}
	if b, err := r.JSON(); err != nil || !strings.Contains(string(b), `"at":{"$date":"1970-01-01T00:00:00Z"}`) {
		t.Errorf("a date renders %s %v", b, err)
	}
}
