package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/odavl/sync/client"
	"github.com/odavl/sync/client/spool"
)

// pushResult is what push prints with --json.
type pushResult struct {
	Product string               `json:"product"`
	File    string               `json:"file"`
	State   string               `json:"state"` // accepted, spooled
	Receipt *client.Receipt      `json:"receipt,omitempty"`
	Spooled string               `json:"spooled,omitempty"`
	Reason  string               `json:"reason,omitempty"`
	Status  *client.UploadStatus `json:"status,omitempty"`
	Files   []uploadedFile       `json:"screenshots,omitempty"`
}

func newPush(e *Env) *cobra.Command {
	var f clientFlags
	var key, screenshots string
	var wait bool
	var waitFor time.Duration
	push := &cobra.Command{
		Use:   "push insight|autopilot|guardian FILE|-",
		Short: "Upload a result file (JSON; - reads stdin), retrying safely and spooling it when the server is unreachable",
		Long: `push uploads one result document of the Insight, Autopilot or Guardian CLI.

Every upload carries an idempotency key (Autopilot: runId, Guardian: testRunId,
Insight: the SHA-256 of the canonical JSON), so a retry never stores twice.
Network errors, 5xx and 429 are retried with exponential backoff and jitter,
honouring Retry-After. When the server stays unreachable the upload is written
to the spool and sent by the next command or by 'odavl-sync spool flush'
(exit 0, or 3 with --strict). A rejected upload prints the server's field
errors and exits 4.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return WithCode(ExitUsage, errors.New("push takes a product (insight, autopilot, guardian) and a FILE or -"))
			}
			if _, err := client.ParseProduct(args[0]); err != nil {
				return WithCode(ExitUsage, err)
			}
			if screenshots != "" && args[0] != string(client.Guardian) {
				return WithCode(ExitUsage, errors.New("--screenshots is for push guardian"))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			p, _ := client.ParseProduct(args[0])
			ctx := cmd.Context()
			cfg, err := resolveConfig(e, &f)
			if err != nil {
				return err
			}
			body, err := readInput(e, args[1])
			if err != nil {
				return err
			}
			if _, err := client.CanonicalJSON(body); err != nil {
				return WithCode(ExitRejected, fmt.Errorf("%s: %w", args[1], err))
			}
			// A document without its tenant gets the client's; one of another
			// tenant is refused here, before anything is sent or spooled.
			if body, err = client.FillTenant(body, cfg.OrganizationID, cfg.ProjectID); err != nil {
				return WithCode(ExitRejected, fmt.Errorf("%s not sent: %w (ODAVL_ORGANIZATION_ID/--org and ODAVL_PROJECT_ID/--project choose where it goes)", args[1], err))
			}
			s, err := connect(ctx, e, &f, true)
			if err != nil {
				return err
			}
			res := pushResult{Product: string(p), File: args[1]}
			var files []string
			if screenshots != "" {
				if files, err = listScreenshots(screenshots); err != nil {
					return WithCode(ExitUsage, fmt.Errorf("--screenshots: %w", err))
				}
			}
			rc, up, sent, err := s.push(ctx, p, body, key, files)
			res.Files = up
			if sent != nil {
				// The screenshots are uploaded: a spooled run keeps their
				// references, so its replay is the same document.
				body, files = sent, nil
			}
			switch {
			case err == nil:
			case client.IsRejected(err):
				s.printError(err)
				return rejection(string(p)+" upload", err)
			case client.IsTransient(err):
				it, serr := s.spool.Put(spool.Entry{
					Product: string(p), OrganizationID: s.cfg.OrganizationID, ProjectID: s.cfg.ProjectID,
					IdempotencyKey: spoolKey(p, body, key), Body: body, Files: files, Reason: err.Error(),
				})
				if serr != nil {
					return fmt.Errorf("the server is unreachable (%v) and the upload could not be spooled: %w", err, serr)
				}
				res.State, res.Spooled, res.Reason = "spooled", it.Path, err.Error()
				s.out.warn("the server did not take the %s upload (%v); spooled it to %s — the next odavl-sync command or 'odavl-sync spool flush' sends it", p, err, it.Path)
				s.out.result(res, false, func(io.Writer) {})
				if f.strict {
					return WithCode(ExitSpooled, errors.New("upload spooled, not delivered (--strict)"))
				}
				return nil
			default:
				return err
			}
			res.State, res.Receipt = "accepted", rc
			if wait {
				st, werr := s.wait(ctx, rc.EventID, waitFor)
				res.Status = st
				if werr != nil {
					s.out.result(res, false, func(io.Writer) {})
					return werr
				}
			}
			s.out.result(res, false, func(w io.Writer) {
				replay := ""
				if rc.Replay {
					replay = " (already accepted before; nothing stored twice)"
				}
				fmt.Fprintf(w, "%s upload accepted: %s%s\n", p, rc.EventID, replay)
				if res.Status != nil {
					fmt.Fprintf(w, "state: %s\n", res.Status.State)
				}
			})
			if res.Status != nil && res.Status.State == client.StateFailed {
				return WithCode(ExitFailed, fmt.Errorf("processing %s failed: %s", rc.EventID, res.Status.Reason))
			}
			return nil
		},
	}
	f.register(push)
	fl := push.Flags()
	fl.StringVar(&key, "idempotency-key", "", "Insight only: the idempotency key (default: SHA-256 of the canonical JSON)")
	fl.StringVar(&screenshots, "screenshots", "", "guardian only: upload the images in DIR first and reference them in the run")
	fl.BoolVar(&wait, "wait", false, "wait until the upload is stored or failed (exit 5 when processing failed)")
	fl.DurationVar(&waitFor, "wait-timeout", 5*time.Minute, "how long --wait waits")
	return push
}

// spoolKey is the idempotency key a spooled upload is sent with.
func spoolKey(p client.Product, body []byte, key string) string {
	if key != "" {
		return key
	}
	k, _ := client.IdempotencyKey(p, body)
	return k
}

// readInput reads FILE, or stdin for "-".
func readInput(e *Env, name string) ([]byte, error) {
	if name == "-" {
		b, err := io.ReadAll(e.Stdin)
		if err != nil {
			return nil, fmt.Errorf("reading stdin: %w", err)
		}
		return b, nil
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, WithCode(ExitUsage, err)
	}
	return b, nil
}

// push uploads the screenshots (if any), references them in the body, and
// pushes it. sent is the body as pushed once the screenshots are uploaded.
func (s *session) push(ctx context.Context, p client.Product, body []byte, key string, files []string) (rc *client.Receipt, up []uploadedFile, sent []byte, err error) {
	if len(files) > 0 {
		if up, err = s.uploadScreenshots(ctx, files); err != nil {
			return nil, up, nil, err
		}
		if body, err = withScreenshots(body, up); err != nil {
			return nil, up, nil, err
		}
		sent = body
	}
	rc, err = s.cl.Push(ctx, p, body, client.PushOptions{IdempotencyKey: key})
	return rc, up, sent, err
}

// printError shows a rejection with --json on stdout.
func (s *session) printError(err error) {
	if !s.out.json {
		return
	}
	var ae *client.Error
	_ = errors.As(err, &ae)
	s.out.result(problemJSON{Error: err.Error(), Problem: ae}, true, nil)
}

// wait polls id until stored or failed, at most d.
func (s *session) wait(ctx context.Context, id string, d time.Duration) (*client.UploadStatus, error) {
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	last := ""
	st, err := s.cl.Wait(wctx, id, client.WaitOptions{OnPoll: func(st *client.UploadStatus) {
		if st.State != last {
			last = st.State
			s.out.info("%s: %s", id, st.State)
		}
	}})
	if err != nil {
		if client.IsRejected(err) {
			return st, rejection("status of "+id, err)
		}
		return st, err
	}
	return st, nil
}

func newStatus(e *Env) *cobra.Command {
	var f clientFlags
	var wait bool
	var waitFor time.Duration
	cmd := &cobra.Command{
		Use:   "status ID",
		Short: "Show where an upload is: queued, processing, stored or failed (--wait: until stored or failed)",
		Args:  exactArgs(1, "status takes an upload or job id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, err := connect(ctx, e, &f, true)
			if err != nil {
				return err
			}
			var st *client.UploadStatus
			if wait {
				st, err = s.wait(ctx, args[0], waitFor)
			} else {
				st, err = s.cl.Status(ctx, args[0])
				if client.IsRejected(err) {
					err = rejection("status of "+args[0], err)
				}
			}
			if err != nil {
				return err
			}
			s.out.result(st, true, func(w io.Writer) {
				fmt.Fprintf(w, "%s: %s (%s)\n", args[0], st.State, st.Status)
				if st.Reason != "" {
					fmt.Fprintf(w, "reason: %s\n", st.Reason)
				}
				if st.ResultURL != "" {
					fmt.Fprintf(w, "result: %s\n", st.ResultURL)
				}
			})
			if st.State == client.StateFailed {
				return WithCode(ExitFailed, fmt.Errorf("processing %s failed: %s", args[0], st.Reason))
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&wait, "wait", false, "poll until stored or failed")
	cmd.Flags().DurationVar(&waitFor, "wait-timeout", 5*time.Minute, "how long --wait waits")
	return cmd
}

func exactArgs(n int, msg string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return WithCode(ExitUsage, errors.New(msg))
		}
		return nil
	}
}
