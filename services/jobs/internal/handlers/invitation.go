package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"time"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/services/jobs/internal/jobstore"
	"github.com/odavl/sync/services/jobs/internal/queue"
)

// Invitations is the BULK_INVITATION handler: it submits one EMAIL_SEND
// job per invitee (ids derived from the parent's, so a retry submits the
// same children) and completes when every child has finished, reporting
// progress as they do. It needs a worker of its own while it waits.
func Invitations(poll time.Duration) queue.Handler {
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
		for i, addr := range in.Emails {
			ids[i] = fmt.Sprintf("%s-mail-%d", j.JobID, i)
			body := fmt.Sprintf("<p>You are invited to join the ODAVL Sync project <b>%s</b> of organization <b>%s</b> as %s.</p>",
				html.EscapeString(j.ProjectID), html.EscapeString(j.OrganizationID), html.EscapeString(role))
			if in.InvitedBy != "" {
				body += "<p>Invited by " + html.EscapeString(in.InvitedBy) + ".</p>"
			}
			if in.Message != "" {
				body += "<blockquote>" + html.EscapeString(in.Message) + "</blockquote>"
			}
			p, _ := json.Marshal(Email{To: []string{addr}, Subject: "You are invited to ODAVL Sync", HTML: body})
			if _, err := j.Queue().Get(ctx, j.OrganizationID, j.ProjectID, ids[i]); err == nil {
				continue // submitted by an earlier attempt
			}
			if _, err := j.Submit(ctx, queue.Spec{ID: ids[i], Type: jobstore.EmailSend, Payload: p}); err != nil {
				return nil, fmt.Errorf("submitting invitation mail %d: %w", i, err)
			}
		}
		t := time.NewTicker(poll)
		defer t.Stop()
		for {
			done, failed := 0, []string{}
			for i, id := range ids {
				r, err := j.Queue().Get(ctx, j.OrganizationID, j.ProjectID, id)
				if err != nil {
					continue
				}
				if jobstore.Terminal(r.Status) {
					done++
					if r.Status != jobstore.Completed {
						failed = append(failed, in.Emails[i])
					}
				}
			}
			j.Progress(done * 100 / len(ids))
			if done == len(ids) {
				out := map[string]any{"invited": len(ids) - len(failed), "failed": failed, "children": ids}
				if len(failed) == len(ids) {
					return nil, bus.Permanent(fmt.Errorf("every invitation mail failed (%d)", len(failed)))
				}
				return out, nil
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-t.C:
			}
		}
	}
}
