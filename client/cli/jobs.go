package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/odavl/sync/client"
)

func newJobs(e *Env) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{Use: "jobs", Short: "List, show, retry and cancel the project's jobs"}
	f.register(cmd)
	var o client.JobListOptions
	list := &cobra.Command{
		Use:   "list",
		Short: "List jobs, newest first",
		Args:  exactArgs(0, "jobs list takes no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return call(cmd.Context(), e, &f, "list jobs", func(ctx context.Context, s *session) error {
				l, err := s.cl.ListJobs(ctx, o)
				if err != nil {
					return err
				}
				s.out.result(l, true, func(w io.Writer) {
					fmt.Fprintf(w, "%d job(s)", l.Total)
					for _, st := range client.JobStatuses {
						if n := l.Stats.ByStatus[st]; n > 0 {
							fmt.Fprintf(w, ", %d %s", n, strings.ToLower(st))
						}
					}
					if l.Stats.Paused {
						fmt.Fprint(w, " (queue paused)")
					}
					fmt.Fprintln(w)
					for _, j := range l.Items {
						printJobLine(w, &j)
					}
				})
				return nil
			})
		},
	}
	list.Flags().StringVar(&o.Status, "status", "", "only jobs of this status (WAITING, ACTIVE, COMPLETED, FAILED, DELAYED, PAUSED, CANCELLED)")
	list.Flags().StringVar(&o.Type, "type", "", "only jobs of this type (INSIGHT_ANALYSIS, AUTOPILOT_CYCLE, GUARDIAN_TEST, …)")
	list.Flags().StringVar(&o.ProjectID, "project-filter", "", "list another project of the organization, or * for all (admin key)")
	list.Flags().IntVar(&o.Limit, "limit", 20, "page size")
	list.Flags().IntVar(&o.Offset, "offset", 0, "skip this many")
	get := &cobra.Command{
		Use:   "get ID",
		Short: "Show one job",
		Args:  exactArgs(1, "jobs get takes a job id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return call(cmd.Context(), e, &f, "get job", func(ctx context.Context, s *session) error {
				j, err := s.cl.GetJob(ctx, args[0])
				if err != nil {
					return err
				}
				s.out.result(j, true, func(w io.Writer) {
					printJobLine(w, j)
					for _, t := range j.History {
						fmt.Fprintf(w, "  %s  %s %s\n", t.At.Format("2006-01-02T15:04:05.000Z07:00"), t.Status, t.Error)
					}
					printJobOutput(w, j)
				})
				return nil
			})
		},
	}
	action := func(name string, do func(*client.Client, context.Context, string) (*client.JobActionResult, error)) *cobra.Command {
		return &cobra.Command{
			Use:   name + " ID",
			Short: map[string]string{"retry": "Put a failed job back in the queue", "cancel": "Cancel a job that has not finished"}[name],
			Args:  exactArgs(1, "jobs "+name+" takes a job id"),
			RunE: func(cmd *cobra.Command, args []string) error {
				return call(cmd.Context(), e, &f, name+" job", func(ctx context.Context, s *session) error {
					r, err := do(s.cl, ctx, args[0])
					if err != nil {
						return err
					}
					s.out.result(r, true, func(w io.Writer) {
						if r.Job != nil {
							printJobLine(w, r.Job)
						} else {
							fmt.Fprintf(w, "%s: %s\n", args[0], name+" done")
						}
					})
					return nil
				})
			},
		}
	}
	cmd.AddCommand(list, get, newJobSubmit(e, &f), action("retry", (*client.Client).RetryJob), action("cancel", (*client.Client).CancelJob))
	return cmd
}

// call connects and runs do, mapping a rejection to exit 4.
func call(ctx context.Context, e *Env, f *clientFlags, what string, do func(context.Context, *session) error) error {
	s, err := connect(ctx, e, f, true)
	if err != nil {
		return err
	}
	if err := do(ctx, s); err != nil {
		if client.IsRejected(err) {
			s.printError(err)
			return rejection(what, err)
		}
		return err
	}
	return nil
}

func printJobLine(w io.Writer, j *client.Job) {
	line := fmt.Sprintf("%s  %-16s %-9s %3d%%  attempts %d/%d", j.ID, j.Type, j.Status, j.Progress, j.Attempts, j.MaxAttempts)
	if j.Error != "" {
		line += "  " + j.Error
	}
	fmt.Fprintln(w, line)
}
