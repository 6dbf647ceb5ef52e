package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/odavl/sync/client"
)

// newStats is `stats` with summary and trends (the server binary adds rebuild).
func newStats(e *Env) *cobra.Command {
	cmd := &cobra.Command{Use: "stats", Short: "Read the statistics of the project (or organization)"}
	summary := statsCommand(e, "summary", "The figures of the project (all time, or --from/--to): a table, or --json",
		func(ctx context.Context, s *session, o client.StatsOptions) error {
			sum, err := s.cl.StatsSummary(ctx, o)
			if err != nil {
				return err
			}
			s.out.result(sum, true, func(w io.Writer) { printSummary(w, sum) })
			return nil
		})
	trends := statsCommand(e, "trends", "The figures per day (default: the last 30 days) and the signals against the period before: a table, or --json",
		func(ctx context.Context, s *session, o client.StatsOptions) error {
			tr, err := s.cl.StatsTrends(ctx, o)
			if err != nil {
				return err
			}
			s.out.result(tr, true, func(w io.Writer) { printTrends(w, tr) })
			return nil
		})
	cmd.AddCommand(summary, trends)
	return cmd
}

// statsCommand is one stats reading with the client flags and the range flags.
func statsCommand(e *Env, name, short string, do func(context.Context, *session, client.StatsOptions) error) *cobra.Command {
	var f clientFlags
	var scope, from, to string
	cmd := &cobra.Command{
		Use:   name,
		Short: short,
		Args:  exactArgs(0, "stats "+name+" takes no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := client.StatsOptions{Scope: scope}
			for _, d := range []struct {
				flag, v string
				dst     *time.Time
			}{{"--from", from, &o.From}, {"--to", to, &o.To}} {
				if d.v == "" {
					continue
				}
				t, err := time.Parse(time.DateOnly, d.v)
				if err != nil {
					return WithCode(ExitUsage, fmt.Errorf("%s: want a day as YYYY-MM-DD, got %q", d.flag, d.v))
				}
				*d.dst = t
			}
			return call(cmd.Context(), e, &f, "stats "+name, func(ctx context.Context, s *session) error { return do(ctx, s, o) })
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&scope, "scope", "", "project (default) or organization (an admin key)")
	cmd.Flags().StringVar(&from, "from", "", "first UTC day, YYYY-MM-DD")
	cmd.Flags().StringVar(&to, "to", "", "last UTC day, YYYY-MM-DD (default: today)")
	return cmd
}

func printSummary(w io.Writer, s *client.StatsSummary) {
	who := s.OrganizationID
	if s.ProjectID != "" {
		who += "/" + s.ProjectID
	}
	period := "all time"
	if s.From != "" || s.To != "" {
		period = s.From + " to " + s.To
	}
	fmt.Fprintf(w, "%s, %s\n", who, period)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fig := s.StatsFigures
	in, ap, gu := fig.Insight, fig.Autopilot, fig.Guardian
	sev := in.IssuesBySeverity
	fmt.Fprintf(tw, "insight\t%d analyses\t%d issues: %d critical, %d high, %d medium, %d low\t%d with critical issues\n",
		in.Analyses, in.TotalIssues, sev.Critical, sev.High, sev.Medium, sev.Low, in.WithCritical)
	fmt.Fprintf(tw, "autopilot\t%d runs\t%d successful, %d failed\tsuccess %s, trust score %s\n",
		ap.Total, ap.Successful, ap.Failed, percent(ap.SuccessRate), number(ap.AverageTrustScore, ""))
	fmt.Fprintf(tw, "guardian\t%d runs\t%d passed, %d failed\tpass %s, accessibility %s, load %s, LCP %s, %d vulnerabilities\n",
		gu.Total, gu.Passed, gu.Failed, percent(gu.PassRate), number(gu.AverageAccessibilityScore, ""), number(gu.AverageLoadTime, " ms"),
		number(gu.AverageLCP, " ms"), gu.TotalVulnerabilities)
	fmt.Fprintf(tw, "jobs\t%s\t\t\n", counts(fig.Jobs.ByStatus))
	if fig.Jobs.Current != nil {
		now := map[string]int64{}
		for st, n := range fig.Jobs.Current {
			if n > 0 {
				now[st] = n
			}
		}
		fmt.Fprintf(tw, "jobs now\t%s\t\t\n", counts(now))
	}
	fl := fig.Files
	fmt.Fprintf(tw, "files\t%d uploaded (%s)\t%d deleted, %d expired\t\n", fl.Uploaded, bytesText(fl.UploadedBytes), fl.Deleted, fl.Expired)
	tw.Flush()
}

func printTrends(w io.Writer, t *client.StatsTrends) {
	who := t.OrganizationID
	if t.ProjectID != "" {
		who += "/" + t.ProjectID
	}
	fmt.Fprintf(w, "%s, %s to %s (compared with %s to %s)\n", who, t.From, t.To, t.PreviousFrom, t.PreviousTo)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "day\tanalyses\tissues\tcritical\tautopilot\tsuccess\tguardian\tpass\tlcp")
	for _, d := range t.Days {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%d\t%s\t%s\n", d.Day, d.Insight.Analyses, d.Insight.TotalIssues, d.Insight.IssuesBySeverity.Critical,
			d.Autopilot.Total, percent(d.Autopilot.SuccessRate), d.Guardian.Total, percent(d.Guardian.PassRate), number(d.Guardian.AverageLCP, " ms"))
	}
	tw.Flush()
	if len(t.Days) == 0 {
		fmt.Fprintln(w, "no activity in the period")
	}
	for _, sg := range t.Signals {
		fmt.Fprintf(w, "%s: critical issues %s, pass rate %s, accessibility %s\n", sg.ProjectID,
			signal(sg.CriticalIssues, ""), signal(sg.PassRate, "%"), signal(sg.Accessibility, ""))
	}
}

// percent is a 0-100 rate, or "-" without runs.
func percent(v *float64) string { return number(v, "%") }

func number(v *float64, unit string) string {
	if v == nil {
		return "-"
	}
	return strings.TrimSuffix(strings.TrimSuffix(fmt.Sprintf("%.1f", *v), "0"), ".") + unit
}

func signal(s client.StatsSignal, unit string) string {
	return fmt.Sprintf("%s (before %s, %s)", number(s.Current, unit), number(s.Previous, unit), s.Direction)
}

// counts is "3 completed, 1 failed", by name.
func counts(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d %s", m[k], strings.ToLower(k)))
	}
	return strings.Join(parts, ", ")
}
