package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/odavl/sync/client"
	"github.com/odavl/sync/client/spool"
)

func newSpool(e *Env) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{Use: "spool", Short: "Show or send the uploads kept while the server was unreachable"}
	f.register(cmd)
	list := &cobra.Command{
		Use:   "list",
		Short: "List spooled uploads, oldest first (and those set aside)",
		Args:  exactArgs(0, "spool list takes no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			sp, err := openSpool(cmd.Context(), e, &f)
			if err != nil {
				return err
			}
			items, bad, err := sp.List()
			if err != nil {
				return err
			}
			rejected, _ := sp.SetAside("rejected")
			corrupt, _ := sp.SetAside("corrupt")
			out := newOutput(e, &f)
			out.result(SpoolListing{Dir: sp.Dir(), Entries: nonNil(items), Unreadable: bad, Rejected: rejected, Corrupt: corrupt}, true, func(w io.Writer) {
				fmt.Fprintf(w, "%d upload(s) spooled in %s\n", len(items), sp.Dir())
				for _, it := range items {
					fmt.Fprintf(w, "  %s  %-9s %s  %s\n", it.Entry.CreatedAt.Format("2006-01-02T15:04:05Z07:00"), it.Entry.Product, it.Entry.IdempotencyKey, it.Name)
				}
				for _, c := range bad {
					fmt.Fprintf(w, "  unreadable: %s (%s)\n", c.Name, c.Err)
				}
				if len(rejected)+len(corrupt) > 0 {
					fmt.Fprintf(w, "set aside: %d rejected, %d corrupt (under %s)\n", len(rejected), len(corrupt), sp.Dir())
				}
			})
			return nil
		},
	}
	flush := &cobra.Command{
		Use:   "flush",
		Short: "Send the spooled uploads, oldest first, each once",
		Long: `flush sends the spooled uploads oldest first, each once (the spool is locked
while it runs), with the usual retries. An accepted upload is removed; one the
server rejects for good is moved to rejected/ with the reason; an unreadable
entry is moved to corrupt/ and reported. When the server stays unreachable the
rest stays spooled, in order.

Exit codes: 0 all sent (or kept, without --strict); 3 uploads remain (--strict);
4 an upload was rejected; 1 an entry was corrupt.`,
		Args: exactArgs(0, "spool flush takes no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, err := connect(ctx, e, &f, false)
			if err != nil {
				return err
			}
			rep, err := s.spool.Flush(ctx, s.sender(ctx, nil))
			if err != nil {
				return err
			}
			s.reportFlush(rep, true)
			switch {
			case rep.Count(spool.Rejected) > 0:
				return WithCode(ExitRejected, fmt.Errorf("%d spooled upload(s) rejected, moved to %s/rejected", rep.Count(spool.Rejected), s.spool.Dir()))
			case len(rep.Corrupt) > 0:
				return WithCode(ExitFailure, fmt.Errorf("%d corrupt spool entr(ies) moved to %s/corrupt", len(rep.Corrupt), s.spool.Dir()))
			case rep.Remaining > 0 && f.strict:
				return WithCode(ExitSpooled, fmt.Errorf("%d upload(s) still spooled", rep.Remaining))
			}
			return nil
		},
	}
	cmd.AddCommand(list, flush)
	return cmd
}

// SpoolListing is what spool list prints with --json.
type SpoolListing struct {
	Dir        string          `json:"dir"`
	Entries    []spool.Item    `json:"entries"`
	Unreadable []spool.Corrupt `json:"unreadable,omitempty"`
	Rejected   []string        `json:"rejected,omitempty"`
	Corrupt    []string        `json:"corrupt,omitempty"`
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// sender delivers spooled entries with the session's client; retry nil is
// the session's policy.
func (s *session) sender(ctx context.Context, retry *client.RetryPolicy) spool.Sender {
	return func(ctx context.Context, it spool.Item) (spool.Outcome, string, error) {
		en := it.Entry
		if en.OrganizationID != s.cfg.OrganizationID || en.ProjectID != s.cfg.ProjectID {
			return spool.Skip, "spooled for " + en.OrganizationID + "/" + en.ProjectID, nil
		}
		p, err := client.ParseProduct(en.Product)
		if err != nil {
			return spool.Rejected, err.Error(), err
		}
		body := []byte(en.Body)
		if len(en.Files) > 0 {
			up, err := s.uploadScreenshotsWith(ctx, en.Files, retry)
			if err != nil {
				if ctx.Err() == nil && !client.IsTransient(err) && client.StatusOf(err) == 0 {
					// A local failure (a spooled copy unreadable): it will not pass.
					return spool.Rejected, err.Error(), err
				}
				return outcomeOf(err)
			}
			if body, err = withScreenshots(body, up); err != nil {
				return spool.Rejected, err.Error(), err
			}
		}
		rc, err := s.cl.Push(ctx, p, body, client.PushOptions{IdempotencyKey: en.IdempotencyKey, Retry: retry})
		if err != nil {
			return outcomeOf(err)
		}
		return spool.Delivered, rc.EventID, nil
	}
}

// outcomeOf classes a failed delivery: rejected for good, or kept (the
// server unreachable, or the key not accepted: fix the settings and flush).
func outcomeOf(err error) (spool.Outcome, string, error) {
	switch st := client.StatusOf(err); {
	case st == http.StatusUnauthorized || st == http.StatusForbidden:
		return spool.Keep, "", err
	case client.IsRejected(err):
		return spool.Rejected, err.Error(), err
	}
	return spool.Keep, "", err
}

// reportFlush says what a flush did; always on stderr for what needs
// attention, and as the result for an explicit flush.
func (s *session) reportFlush(rep spool.Report, explicit bool) {
	for _, r := range rep.Results {
		switch r.Outcome {
		case spool.Delivered:
			s.out.info("spool: sent %s %s (%s)", r.Item.Entry.Product, r.Item.Name, r.Detail)
		case spool.Rejected:
			s.out.warn("spool: the server rejected the spooled %s upload %s; moved to %s: %s", r.Item.Entry.Product, r.Item.Name, r.MovedTo, r.Detail)
		}
	}
	for _, c := range rep.Corrupt {
		s.out.warn("spool: entry %s is corrupt (%s); moved to %s", c.Name, c.Err, c.Path)
	}
	if n := rep.Count(spool.Delivered); n > 0 && !explicit {
		s.out.warn("spool: delivered %d upload(s) spooled earlier", n)
	}
	if rep.Remaining > 0 && (explicit || rep.Count(spool.Keep) > 0) {
		why := ""
		if rep.Stopped != "" {
			why = " (" + rep.Stopped + ")"
		}
		s.out.warn("spool: %d upload(s) still spooled in %s%s", rep.Remaining, s.spool.Dir(), why)
	}
	if explicit {
		s.out.result(FlushReport{Report: rep, Delivered: rep.Count(spool.Delivered), Rejected: rep.Count(spool.Rejected)}, false, func(w io.Writer) {
			fmt.Fprintf(w, "spool: %d sent, %d rejected, %d corrupt, %d remaining\n", rep.Count(spool.Delivered), rep.Count(spool.Rejected), len(rep.Corrupt), rep.Remaining)
		})
	}
}

// FlushReport is what spool flush prints with --json.
type FlushReport struct {
	spool.Report
	Delivered int `json:"delivered"`
	Rejected  int `json:"rejected"`
}
