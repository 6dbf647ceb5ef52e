package events

import (
	"fmt"
	"regexp"
	"strings"
)

// Product names one of the three ODAVL tools that upload results.
type Product string

// The products.
const (
	Insight   Product = "insight"
	Autopilot Product = "autopilot"
	Guardian  Product = "guardian"
)

// Products lists every product, in display order.
var Products = []Product{Insight, Autopilot, Guardian}

// Valid reports whether p is a known product.
func (p Product) Valid() bool {
	return p == Insight || p == Autopilot || p == Guardian
}

// Streams and the subjects they hold.
const (
	StreamSync    = "SYNC"    // sync.v1.>: received (one subject per upload), processed and alert events of uploads
	StreamJobs    = "JOBS"    // jobs.v1.>: job submissions and job lifecycle events
	StreamStorage = "STORAGE" // storage.v1.>: file events
)

// Event types, versioned.
const (
	TypeInsightReceived    = "dev.odavl.sync.insight.received.v1"
	TypeAutopilotReceived  = "dev.odavl.sync.autopilot.received.v1"
	TypeGuardianReceived   = "dev.odavl.sync.guardian.received.v1"
	TypeInsightProcessed   = "dev.odavl.sync.insight.processed.v1"
	TypeAutopilotProcessed = "dev.odavl.sync.autopilot.processed.v1"
	TypeGuardianProcessed  = "dev.odavl.sync.guardian.processed.v1"
	TypeCriticalAlert      = "dev.odavl.sync.insight.alert.critical.v1"
	TypeJobSubmitted       = "dev.odavl.jobs.job.submitted.v1"
	TypeJobStatus          = "dev.odavl.jobs.job.status.v1"
	TypeFileEvent          = "dev.odavl.storage.file.v1"
)

// ReceivedType is the type of a received upload of product p.
func ReceivedType(p Product) string { return "dev.odavl.sync." + string(p) + ".received.v1" }

// ProcessedType is the type of a processed upload of product p.
func ProcessedType(p Product) string { return "dev.odavl.sync." + string(p) + ".processed.v1" }

var tokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidToken reports whether s can stand as one subject token: organization
// and project ids are restricted to it (letters, digits, '-' and '_', at most
// 64 characters), so a tenant can never widen or break a subject.
func ValidToken(s string) bool { return tokenRE.MatchString(s) }

var idRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// ValidID reports whether s can be the id of a result, job, upload or file
// (letters, digits, '-' and '_', at most 128 characters). Ids from a request
// become KV keys and subjects only after this check: a 5,000-character key
// would exceed the NATS control line and cost the connection.
func ValidID(s string) bool { return idRE.MatchString(s) }

// IDRule says what ValidID accepts, for error messages.
const IDRule = "must be 1-128 letters, digits, '-' or '_'"

// ReceivedSubject is where an accepted upload is published: a subject of
// its own per upload, so that the stream holds the gateway's idempotency
// record (the first message on it) and answers a replay by reading it.
func ReceivedSubject(org, project string, p Product, uploadID string) string {
	return "sync.v1." + org + "." + project + "." + string(p) + ".received." + uploadID
}

// ProcessedSubject is where a stored upload is announced.
func ProcessedSubject(org, project string, p Product) string {
	return fmt.Sprintf("sync.v1.%s.%s.%s.processed", org, project, p)
}

// CriticalAlertSubject is where an Insight upload with critical issues raises its alert.
func CriticalAlertSubject(org, project string) string {
	return fmt.Sprintf("sync.v1.%s.%s.insight.alert.critical", org, project)
}

// JobSubject is where a job of the given priority and type is submitted.
func JobSubject(priority, jobType string) string {
	return fmt.Sprintf("jobs.v1.%s.%s", strings.ToLower(priority), jobType)
}

// JobHeldSubject is where the jobs of a paused organization wait, stored
// and delivered to no consumer, until it is resumed.
func JobHeldSubject(org, jobType string) string {
	return fmt.Sprintf("jobs.v1.held.%s.%s", org, jobType)
}

// JobsHeldOf is the filter of an organization's held jobs ("" for every
// organization's).
func JobsHeldOf(org string) string {
	if org == "" {
		return "jobs.v1.held.>"
	}
	return "jobs.v1.held." + org + ".>"
}

// JobEventSubject is where a job's lifecycle change is announced.
func JobEventSubject(org, project, status string) string {
	return fmt.Sprintf("jobs.v1.events.%s.%s.%s", org, project, strings.ToLower(status))
}

// FileEventSubject is where a file's change is announced (uploaded, deleted, expired).
func FileEventSubject(org, project, kind string) string {
	return fmt.Sprintf("storage.v1.%s.%s.file.%s", org, project, kind)
}

// Wildcards for consumers.
const (
	AllReceived  = "sync.v1.*.*.*.received.*"
	AllProcessed = "sync.v1.*.*.*.processed"
	AllAlerts    = "sync.v1.*.*.insight.alert.critical"
	AllJobEvents = "jobs.v1.events.>"
	AllFiles     = "storage.v1.*.*.file.*"
)
