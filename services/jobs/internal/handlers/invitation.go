package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/jobs"
	"github.com/odavl/sync/services/jobs/internal/queue"
)

// Invitations is the BULK_INVITATION handler: it submits one EMAIL_SEND
// job per invitee (ids derived from the parent's, so a retry or a resumed
// run finds the same children) and waits for them with
// Job.WaitForChildren, its worker given back; each run reads the children,
// reports progress, and completes once every child has finished.
func Invitations() queue.Handler {
	return func(ctx context.Context, j *queue.Job) (any, error) {
		var in Invitation
		if err := json.Unmarshal(j.Payload, &in); err != nil {
			return nil, bus.Permanent(fmt.Errorf("decoding invitation: %w", err))
		}
		role := in.Role
		if role == "" {
			role = "member"
		}
		ids := make([]string, len(in.Emails))
		var pending []string
		var submit []queue.Spec
		failed := []string{}
		for i, addr := range in.Emails {
			ids[i] = fmt.Sprintf("%s-mail-%d", j.JobID, i)
			r, err := j.Queue().Get(ctx, j.OrganizationID, j.ProjectID, ids[i])
			switch {
			case err == nil && jobs.Terminal(r.Status):
				if r.Status != jobs.Completed {
					failed = append(failed, addr)
				}
				continue
			case err == nil: // submitted by an earlier run
				pending = append(pending, ids[i])
				continue
			case !errors.Is(err, queue.ErrNotFound):
				return nil, fmt.Errorf("reading invitation mail %d: %w", i, err)
			}
			body := fmt.Sprintf("<p>You are invited to join the ODAVL Sync project <b>%s</b> of organization <b>%s</b> as %s.</p>",
				html.EscapeString(j.ProjectID), html.EscapeString(j.OrganizationID), html.EscapeString(role))
			if in.InvitedBy != "" {
				body += "<p>Invited by " + html.EscapeString(in.InvitedBy) + ".</p>"
			}
			if in.Message != "" {
				body += "<blockquote>" + html.EscapeString(in.Message) + "</blockquote>"
			}
			p, _ := json.Marshal(Email{To: []string{addr}, Subject: "You are invited to ODAVL Sync", HTML: body})
			submit = append(submit, queue.Spec{ID: ids[i], Type: jobs.EmailSend, Payload: p})
			pending = append(pending, ids[i])
		}
		if len(submit) > 0 {
			if _, err := j.SubmitMany(ctx, submit); err != nil {
				return nil, fmt.Errorf("submitting %d invitation mails: %w", len(submit), err)
			}
		}
		j.Progress((len(ids) - len(pending)) * 100 / len(ids))
		if len(pending) > 0 {
			return nil, j.WaitForChildren(pending...)
		}
		if len(failed) == len(ids) {
			return nil, bus.Permanent(fmt.Errorf("every invitation mail failed (%d)", len(failed)))
		}
		return map[string]any{"invited": len(ids) - len(failed), "failed": failed, "children": ids}, nil
	}
}
