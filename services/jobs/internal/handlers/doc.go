// Package handlers holds the handlers of the job types clients submit
// (EMAIL_SEND, BULK_INVITATION, DATA_EXPORT, REPORT_GENERATION) and the
// validation of their payloads.
package handlers

import (
	"encoding/json"
	"fmt"
	"net/mail"
	"strings"

	"github.com/odavl/sync/libs/jobs"
	"github.com/odavl/sync/libs/rpc"
)

// Email is the payload of an EMAIL_SEND job.
type Email struct {
	To      []string `json:"to"`
	Subject string   `json:"subject"`
	Text    string   `json:"text,omitempty"`
	HTML    string   `json:"html,omitempty"`
}

// Invitation is the payload of a BULK_INVITATION job.
type Invitation struct {
	Emails  []string `json:"emails"`
	Role    string   `json:"role,omitempty"`
	Message string   `json:"message,omitempty"`
	// InvitedBy names the inviter in the mail.
	InvitedBy string `json:"invitedBy,omitempty"`
}

// Export is the payload of a DATA_EXPORT job.
type Export struct {
	// Products to export (default: all three).
	Products []string `json:"products,omitempty"`
}

// Report is the payload of a REPORT_GENERATION job.
type Report struct {
	Title string `json:"title,omitempty"`
}

// Validate checks a payload of a submittable type and names every bad field.
func Validate(jobType string, payload json.RawMessage) []rpc.FieldError {
	var fields []rpc.FieldError
	bad := func(f, m string) { fields = append(fields, rpc.FieldError{Field: f, Message: m}) }
	if len(payload) == 0 || string(payload) == "null" {
		payload = []byte("{}")
	}
	strict := func(v any) bool {
		d := json.NewDecoder(strings.NewReader(string(payload)))
		d.DisallowUnknownFields()
		if err := d.Decode(v); err != nil {
			bad("payload", "must be a JSON object of the "+jobType+" fields: "+err.Error())
			return false
		}
		return true
	}
	switch jobType {
	case jobs.EmailSend:
		var e Email
		if strict(&e) {
			e.check(bad)
		}
	case jobs.BulkInvitation:
		var in Invitation
		if strict(&in) {
			in.check(bad)
		}
	case jobs.DataExport:
		var ex Export
		if strict(&ex) {
			for i, p := range ex.Products {
				if p != "insight" && p != "autopilot" && p != "guardian" {
					bad(fmt.Sprintf("payload.products[%d]", i), "must be insight, autopilot or guardian")
				}
			}
		}
	case jobs.ReportGeneration:
		var r Report
		if strict(&r) && len(r.Title) > 200 {
			bad("payload.title", "must be at most 200 characters")
		}
	default:
		bad("type", "must be one of "+strings.Join(jobs.Submittable, ", "))
	}
	return fields
}

func (e Email) check(bad func(field, msg string)) {
	if len(e.To) == 0 || len(e.To) > 50 {
		bad("payload.to", "must list 1 to 50 addresses")
	}
	for i, a := range e.To {
		if _, err := mail.ParseAddress(a); err != nil || strings.ContainsAny(a, "\r\n") {
			bad(fmt.Sprintf("payload.to[%d]", i), "is not an email address")
		}
	}
	if s := strings.TrimSpace(e.Subject); s == "" || len(s) > 200 || strings.ContainsAny(e.Subject, "\r\n") {
		bad("payload.subject", "must be 1-200 characters on one line")
	}
	if e.Text == "" && e.HTML == "" {
		bad("payload.text", "text or html is required")
	}
	if len(e.Text)+len(e.HTML) > 256<<10 {
		bad("payload.text", "the body must be at most 256 KiB")
	}
}

func (in Invitation) check(bad func(field, msg string)) {
	if len(in.Emails) == 0 || len(in.Emails) > 500 {
		bad("payload.emails", "must list 1 to 500 addresses")
	}
	seen := map[string]bool{}
	for i, a := range in.Emails {
		if _, err := mail.ParseAddress(a); err != nil || strings.ContainsAny(a, "\r\n") {
			bad(fmt.Sprintf("payload.emails[%d]", i), "is not an email address")
		} else if seen[strings.ToLower(a)] {
			bad(fmt.Sprintf("payload.emails[%d]", i), "is listed twice")
		}
		seen[strings.ToLower(a)] = true
	}
	if in.Role != "" && in.Role != "admin" && in.Role != "member" && in.Role != "viewer" {
		bad("payload.role", "must be admin, member or viewer")
	}
	if len(in.Message) > 2000 {
		bad("payload.message", "must be at most 2000 characters")
	}
}
