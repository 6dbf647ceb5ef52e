// Package report derives the figures the API shows — rates, averages, totals
// by status and type — from summed counters, and compares periods for the
// trend signals. Nothing here reads the store.
package report

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/odavl/sync/libs/rpc"
	"github.com/odavl/sync/services/stats/internal/tally"
)

// MaxDays bounds a requested range.
const MaxDays = 366

// Range is an inclusive range of UTC days.
type Range struct{ From, To time.Time }

// ParseRange reads from and to (YYYY-MM-DD, both included). Empty means
// unbounded (ok is false); defaultDays > 0 gives a range of that many days
// ending today instead. Bad input comes back as field errors.
func ParseRange(from, to string, today time.Time, defaultDays int) (r Range, ok bool, fields []rpc.FieldError) {
	parse := func(name, v string) (time.Time, bool) {
		t, err := time.Parse(tally.DayFormat, v)
		if err != nil {
			fields = append(fields, rpc.FieldError{Field: name, Message: "must be a UTC day as YYYY-MM-DD"})
			return time.Time{}, false
		}
		return t, true
	}
	today = time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, time.UTC)
	if from == "" && to == "" {
		if defaultDays <= 0 {
			return Range{}, false, nil
		}
		return Range{From: today.AddDate(0, 0, -(defaultDays - 1)), To: today}, true, nil
	}
	r.To = today
	if to != "" {
		t, good := parse("to", to)
		if good {
			r.To = t
		}
	}
	if from == "" {
		fields = append(fields, rpc.FieldError{Field: "from", Message: "is required when to is given"})
	} else if t, good := parse("from", from); good {
		r.From = t
	}
	if len(fields) == 0 {
		switch n := r.Days(); {
		case n < 1:
			fields = append(fields, rpc.FieldError{Field: "from", Message: "must not be after to"})
		case n > MaxDays:
			fields = append(fields, rpc.FieldError{Field: "from", Message: fmt.Sprintf("the range must span at most %d days", MaxDays)})
		}
	}
	return r, len(fields) == 0, fields
}

// Days is the number of days in r.
func (r Range) Days() int { return int(r.To.Sub(r.From).Hours()/24) + 1 }

// Each lists the days of r in order.
func (r Range) Each() []string {
	out := make([]string, 0, r.Days())
	for d := r.From; !d.After(r.To); d = d.AddDate(0, 0, 1) {
		out = append(out, tally.Day(d))
	}
	return out
}

// Previous is the range of equal length just before r.
func (r Range) Previous() Range {
	n := r.Days()
	return Range{From: r.From.AddDate(0, 0, -n), To: r.From.AddDate(0, 0, -1)}
}

// Format gives the range's bounds as days.
func (r Range) Format() (string, string) { return tally.Day(r.From), tally.Day(r.To) }

func ratio(num, den int64, scale float64) *float64 {
	if den == 0 {
		return nil
	}
	v := math.Round(float64(num)*scale/float64(den)*100) / 100
	return &v
}

// FiguresOf derives the shown figures from counters.
func FiguresOf(c tally.Counters) rpc.Figures {
	f := rpc.Figures{
		Insight: rpc.InsightFigures{
			Analyses: c[tally.InsightAnalyses], TotalIssues: c[tally.InsightTotalIssues], WithCritical: c[tally.InsightWithCritical],
			IssuesBySeverity: rpc.SeverityTotals{Critical: c[tally.InsightCritical], High: c[tally.InsightHigh], Medium: c[tally.InsightMedium], Low: c[tally.InsightLow]},
		},
		Autopilot: rpc.AutopilotFigures{
			Total: c[tally.AutopilotRuns], Successful: c[tally.AutopilotSuccessful], Failed: c[tally.AutopilotFailed],
			SuccessRate:       ratio(c[tally.AutopilotSuccessful], c[tally.AutopilotRuns], 100),
			AverageTrustScore: ratio(c[tally.AutopilotTrustMilli], c[tally.AutopilotRuns]*1000, 1),
		},
		Guardian: rpc.GuardianFigures{
			Total: c[tally.GuardianRuns], Passed: c[tally.GuardianPassed], Failed: c[tally.GuardianFailed],
			PassRate:                  ratio(c[tally.GuardianPassed], c[tally.GuardianRuns], 100),
			AverageAccessibilityScore: ratio(c[tally.GuardianAccessibilityMilli], c[tally.GuardianRuns]*1000, 1),
			AverageLoadTime:           ratio(c[tally.GuardianLoadTimeMilli], c[tally.GuardianRuns]*1000, 1),
			AverageLCP:                ratio(c[tally.GuardianLCPMilli], c[tally.GuardianLCPRuns]*1000, 1),
			TotalVulnerabilities:      c[tally.GuardianVulnerabilities],
		},
		Jobs: rpc.JobFigures{ByStatus: map[string]int64{}, ByType: map[string]map[string]int64{}},
		Files: rpc.FileFigures{
			Uploaded: c[tally.FilePrefix+"uploaded"], UploadedBytes: c[tally.FilePrefix+"uploaded"+tally.BytesSuffix],
			Deleted: c[tally.FilePrefix+"deleted"], DeletedBytes: c[tally.FilePrefix+"deleted"+tally.BytesSuffix],
			Expired: c[tally.FilePrefix+"expired"], ExpiredBytes: c[tally.FilePrefix+"expired"+tally.BytesSuffix],
		},
	}
	for k, v := range c {
		rest, ok := strings.CutPrefix(k, tally.JobPrefix)
		if !ok || v == 0 {
			continue
		}
		status, typ, ok := strings.Cut(rest, "_")
		if !ok {
			continue
		}
		status = strings.ToUpper(status)
		f.Jobs.ByStatus[status] += v
		if f.Jobs.ByType[typ] == nil {
			f.Jobs.ByType[typ] = map[string]int64{}
		}
		f.Jobs.ByType[typ][status] += v
	}
	return f
}

// Compare is the signal of a figure that is better when higher (or lower).
func Compare(current, previous *float64, higherIsBetter bool) rpc.Signal {
	s := rpc.Signal{Current: current, Previous: previous, Direction: rpc.TrendUnknown}
	if current == nil || previous == nil {
		return s
	}
	switch {
	case *current == *previous:
		s.Direction = rpc.TrendSame
	case (*current > *previous) == higherIsBetter:
		s.Direction = rpc.TrendBetter
	default:
		s.Direction = rpc.TrendWorse
	}
	return s
}

// Signals compares a project's current and previous period: the count of
// critical Insight issues (fewer is better; unknown without analyses), the
// Guardian pass rate and average accessibility score (higher is better).
func Signals(project string, cur, prev tally.Counters) rpc.ProjectSignals {
	crit := func(c tally.Counters) *float64 {
		if c[tally.InsightAnalyses] == 0 {
			return nil
		}
		v := float64(c[tally.InsightCritical])
		return &v
	}
	fc, fp := FiguresOf(cur), FiguresOf(prev)
	return rpc.ProjectSignals{
		ProjectID:      project,
		CriticalIssues: Compare(crit(cur), crit(prev), false),
		PassRate:       Compare(fc.Guardian.PassRate, fp.Guardian.PassRate, true),
		Accessibility:  Compare(fc.Guardian.AverageAccessibilityScore, fp.Guardian.AverageAccessibilityScore, true),
	}
}
