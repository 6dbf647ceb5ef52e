// Package jobs is the job vocabulary: the statuses a job shows, the job
// types, the priorities and which type processes an upload of which
// product. The queue, the gateway, the statistics and the CLI of the server
// binary all use it; the stdlib-only client module keeps a copy, which a
// test in cmd/odavl-sync checks equal to this one.
package jobs

import (
	"fmt"
	"strings"

	"github.com/odavl/sync/libs/events"
)

// Statuses of a job.
const (
	Waiting   = "WAITING"
	Active    = "ACTIVE"
	Completed = "COMPLETED"
	Failed    = "FAILED"
	Delayed   = "DELAYED"
	Paused    = "PAUSED"
	Cancelled = "CANCELLED"
	// Cleared is the status of the tombstone a clear leaves of a job that
	// finished lately; no read, list or count shows it.
	Cleared = "CLEARED"
)

// Statuses lists every status a job shows, in the order of its life.
var Statuses = []string{Waiting, Active, Completed, Failed, Delayed, Paused, Cancelled}

// Terminal reports whether a job in status s is finished (a cleared job
// was).
func Terminal(s string) bool { return s == Completed || s == Failed || s == Cancelled || s == Cleared }

// Job types.
const (
	InsightAnalysis  = "INSIGHT_ANALYSIS"
	AutopilotCycle   = "AUTOPILOT_CYCLE"
	GuardianTest     = "GUARDIAN_TEST"
	ReportGeneration = "REPORT_GENERATION"
	BulkInvitation   = "BULK_INVITATION"
	EmailSend        = "EMAIL_SEND"
	DataExport       = "DATA_EXPORT"
)

// Types lists every job type.
var Types = []string{InsightAnalysis, AutopilotCycle, GuardianTest, ReportGeneration, BulkInvitation, EmailSend, DataExport}

// Submittable lists the types a client may submit (POST /api/v1/jobs);
// the others are made by uploads.
var Submittable = []string{DataExport, ReportGeneration, EmailSend, BulkInvitation}

// ForProduct is the job type that processes an upload of product p.
func ForProduct(p events.Product) string {
	switch p {
	case events.Autopilot:
		return AutopilotCycle
	case events.Guardian:
		return GuardianTest
	default:
		return InsightAnalysis
	}
}

// ProductOf is the product whose uploads jobs of type t process, and
// whether t processes uploads at all.
func ProductOf(t string) (events.Product, bool) {
	switch t {
	case InsightAnalysis:
		return events.Insight, true
	case AutopilotCycle:
		return events.Autopilot, true
	case GuardianTest:
		return events.Guardian, true
	}
	return "", false
}

// IsUpload reports whether jobs of type t process uploads.
func IsUpload(t string) bool { _, ok := ProductOf(t); return ok }

// Priority is a named priority level.
type Priority struct {
	Name  string
	Value int
}

// Priority values.
const (
	PriorityLow      = 1
	PriorityNormal   = 5
	PriorityHigh     = 10
	PriorityCritical = 20
)

// Priorities, highest first.
var Priorities = []Priority{{"CRITICAL", PriorityCritical}, {"HIGH", PriorityHigh}, {"NORMAL", PriorityNormal}, {"LOW", PriorityLow}}

// ParsePriority reads a priority given by name (LOW, NORMAL, HIGH,
// CRITICAL, any case) or value (1, 5, 10, 20).
func ParsePriority(s string) (int, bool) {
	for _, p := range Priorities {
		if strings.EqualFold(s, p.Name) || s == fmt.Sprint(p.Value) {
			return p.Value, true
		}
	}
	return 0, false
}

// Level is the index in Priorities of a value; unknown values count as
// NORMAL.
func Level(v int) int {
	for i, p := range Priorities {
		if p.Value == v {
			return i
		}
	}
	return 2
}

// PriorityName is the name of a priority value.
func PriorityName(v int) string { return Priorities[Level(v)].Name }
