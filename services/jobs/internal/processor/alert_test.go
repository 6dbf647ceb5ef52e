package processor

import (
	"strings"
	"testing"

	"github.com/odavl/sync/libs/events"
)

func TestAlertMessages(t *testing.T) {
	t.Parallel()
	issue := func(file string, line, col int64, msg string) events.InsightIssue {
		return events.InsightIssue{Detector: "eslint", Severity: "critical", Message: msg, File: file, Line: line, Column: col}
	}
	cases := []struct {
		name string
		a    events.CriticalAlert
		want []string
	}{
		{"listed", events.CriticalAlert{Critical: 2, Issues: []events.InsightIssue{issue("a.ts", 3, 7, "eval"), issue("b.ts", 1, 0, "secret")}},
			[]string{"a.ts:3:7 eval (eslint)", "b.ts:1 secret (eslint)"}},
		{"counted, none listed", events.CriticalAlert{Critical: 4},
			[]string{"4 critical issue(s) counted; the upload lists none of them"}},
		{"more counted than listed", events.CriticalAlert{Critical: 3, Issues: []events.InsightIssue{issue("", 0, 0, "weak crypto")}},
			[]string{"(no file) weak crypto (eslint)", "and 2 more critical issue(s)"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := alertMessages(tc.a); strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
