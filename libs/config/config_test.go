package config

import (
	"strings"
	"testing"
	"time"
)

func TestReaderNamesEveryBadVariable(t *testing.T) {
	t.Parallel()
	env := map[string]string{"A": "x", "B": "5m", "C": "nope", "D": "2s,4s"}
	r := NewReader(func(k string) string { return env[k] })
	if got := r.Int("A", 3); got != 3 {
		t.Errorf("Int(A) = %d, want default 3", got)
	}
	if got := r.Duration("B", 0); got != 5*time.Minute {
		t.Errorf("Duration(B) = %v", got)
	}
	r.Bool("C", false)
	if got := r.Durations("D", nil); len(got) != 2 || got[1] != 4*time.Second {
		t.Errorf("Durations(D) = %v", got)
	}
	err := r.Err()
	if err == nil {
		t.Fatal("want an error")
	}
	for _, name := range []string{"A=", "C="} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}
