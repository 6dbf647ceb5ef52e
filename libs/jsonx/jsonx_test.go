package jsonx

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
)

// Every string, valid UTF-8 or not, is written as encoding/json writes it
// with HTML escaping off.
func TestAppendStringIsEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pieces := []string{"a", "Zürich", "日本", "😀", `"`, `\`, "\n", "\t", "\x00", "\x1f", "\x7f", "<&>", "\u2028", "\u2029", "\xff", "\xc3\x28", "\xe2\x80", " "}
	for range 5000 {
		var s []byte
		for range rng.IntN(8) {
			s = append(s, pieces[rng.IntN(len(pieces))]...)
		}
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(string(s)); err != nil {
			t.Fatal(err)
		}
		if got := AppendString(nil, s); string(got) != string(bytes.TrimSuffix(want.Bytes(), []byte("\n"))) {
			t.Fatalf("%q: %s, encoding/json %s", s, got, want.Bytes())
		}
	}
}

func TestSurrogateEscape(t *testing.T) {
	for body, want := range map[string]bool{
		`{"a":"\ud83d\ude00"}`: true, `{"a":"\uDFFF"}`: true, `{"a":"\uD800"}`: true,
		`{"a":"\ud7ff"}`: false, `{"a":"\ue000"}`: false, `{"a":"\u00e9 \\ud800"}`: true, // the scan does not parse: it may say yes
		`{"a":"plain"}`: false, `\u`: false, `\ud`: false, `x\u0041\ud8`: true,
	} {
		if got := SurrogateEscape([]byte(body)); got != want {
			t.Errorf("%s: %v, want %v", body, got, want)
		}
	}
}
