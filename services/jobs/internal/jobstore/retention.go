package jobstore

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/odavl/sync/libs/jobs"
)

// Keep is how the COMPLETED jobs of a type are kept, as BullMQ lets its
// users choose with removeOnComplete. FAILED and CANCELLED jobs are always
// kept until cleared by hand.
type Keep struct {
	// Remove: a COMPLETED job's record is not kept at all; it is readable
	// until the projection has passed it. Its message's exactly-once guard
	// goes with it: a crash between the job's end and its acknowledgement
	// may run it again.
	Remove bool
	// Age: COMPLETED jobs are cleared this long after they finished (0:
	// kept until cleared by hand).
	Age time.Duration
}

// Retention is the keep rule of each job type, with a default.
type Retention struct {
	Default Keep
	ByType  map[string]Keep
}

// For is the rule of job type t.
func (r Retention) For(t string) Keep {
	if k, ok := r.ByType[t]; ok {
		return k
	}
	return r.Default
}

// RemoveAtOnce reports whether a finished record is not kept.
func (r Retention) RemoveAtOnce(rec Record) bool {
	return rec.Status == jobs.Completed && r.For(rec.Type).Remove
}

// ParseRetention reads a retention: comma-separated rules, each a keep
// (a duration such as 168h, "all" or "remove"), alone for the default or
// after TYPE= for one type. Example: "168h,EMAIL_SEND=remove,DATA_EXPORT=all".
func ParseRetention(s string) (Retention, error) {
	r := Retention{Default: Keep{Age: 7 * 24 * time.Hour}, ByType: map[string]Keep{}}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		t, v, typed := strings.Cut(part, "=")
		if !typed {
			v = t
		}
		k, err := parseKeep(strings.TrimSpace(v))
		if err != nil {
			return r, err
		}
		t = strings.TrimSpace(t)
		switch {
		case !typed:
			r.Default = k
		case slices.Contains(jobs.Types, t):
			r.ByType[t] = k
		default:
			return r, fmt.Errorf("%q is not a job type (%s)", t, strings.Join(jobs.Types, ", "))
		}
	}
	return r, nil
}

func parseKeep(v string) (Keep, error) {
	switch v {
	case "remove":
		return Keep{Remove: true}, nil
	case "all":
		return Keep{}, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return Keep{Age: d}, nil
	}
	if n, err := strconv.Atoi(strings.TrimSuffix(v, "d")); err == nil && n > 0 && strings.HasSuffix(v, "d") {
		return Keep{Age: time.Duration(n) * 24 * time.Hour}, nil
	}
	return Keep{}, fmt.Errorf("%q is no keep rule: a duration such as 168h or 7d, all, or remove", v)
}
