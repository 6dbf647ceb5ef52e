package client

// The job vocabulary, as the server's libs/jobs has it: this module depends
// on the standard library only, so it keeps a copy, and a test of the
// server (cmd/odavl-sync TestTheClientKeepsTheJobVocabulary) checks that the
// two are equal.

// Job statuses.
const (
	JobWaiting   = "WAITING"
	JobActive    = "ACTIVE"
	JobCompleted = "COMPLETED"
	JobFailed    = "FAILED"
	JobDelayed   = "DELAYED"
	JobPaused    = "PAUSED"
	JobCancelled = "CANCELLED"
)

// JobStatuses lists every status a job shows, in the order of its life.
var JobStatuses = []string{JobWaiting, JobActive, JobCompleted, JobFailed, JobDelayed, JobPaused, JobCancelled}

// JobTypes lists every job type; SubmittableJobTypes the ones a client may
// submit (the others are made by uploads).
var (
	JobTypes            = []string{"INSIGHT_ANALYSIS", "AUTOPILOT_CYCLE", "GUARDIAN_TEST", "REPORT_GENERATION", "BULK_INVITATION", "EMAIL_SEND", "DATA_EXPORT"}
	SubmittableJobTypes = []string{"DATA_EXPORT", "REPORT_GENERATION", "EMAIL_SEND", "BULK_INVITATION"}
)

// JobPriorities names the priorities, highest first, by value.
var JobPriorities = []struct {
	Name  string
	Value int
}{{"CRITICAL", 20}, {"HIGH", 10}, {"NORMAL", 5}, {"LOW", 1}}

// JobFinished reports whether a job in status s is finished.
func JobFinished(s string) bool { return s == JobCompleted || s == JobFailed || s == JobCancelled }
