package cli

import (
	"bytes"
	"strings"
	"testing"
)

func TestProgressBarOnlyOnATerminal(t *testing.T) {
	var out, errOut bytes.Buffer
	o := newOutput(&Env{Stdout: &out, Stderr: &errOut}, &clientFlags{})
	p := o.progress("big.bin", 100)
	p.Set(50, 100)
	p.Finish()
	if errOut.Len() != 0 || out.Len() != 0 {
		t.Errorf("a progress bar was drawn off a terminal: %q %q", out.String(), errOut.String())
	}

	var term bytes.Buffer
	p = &progress{w: &term, label: "big.bin", total: 12 << 20}
	p.Set(6<<20, 12<<20)
	p.Set(12<<20, 12<<20)
	p.Finish()
	s := term.String()
	for _, want := range []string{"\rbig.bin [", "50%", "100%", "12.0MiB/12.0MiB"} {
		if !strings.Contains(s, want) {
			t.Errorf("bar %q lacks %q", s, want)
		}
	}
	if !strings.HasSuffix(s, "\n") {
		t.Errorf("bar does not end its line: %q", s)
	}
}
