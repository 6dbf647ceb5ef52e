package schema

import (
	"math/rand/v2"
	"testing"
	"unicode/utf8"
)

// plain, which reads eight bytes at a time, answers as a byte-by-byte
// check does for strings of every length up to 40 with a byte of each
// kind at every place.
func TestPlainIsByteByByte(t *testing.T) {
	byByte := func(s []byte) bool {
		for _, c := range s {
			if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' {
				return false
			}
		}
		return true
	}
	r := rand.New(rand.NewPCG(1, 2))
	odd := []byte{0, 0x1f, 0x20, 0x21, '"', '#', '[', '\\', ']', 0x7e, 0x7f, 0x80, 0xa8, 0xe2, 0xff}
	for n := range 41 {
		for at := range n {
			for _, c := range odd {
				s := make([]byte, n)
				for i := range s {
					s[i] = byte('a' + r.IntN(26))
				}
				s[at] = c
				if plain(s) != byByte(s) {
					t.Fatalf("plain(%q) = %v", s, plain(s))
				}
			}
		}
	}
}
