package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/odavl/sync/client"
)

func newResults(e *Env) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{Use: "results", Short: "Read stored results back"}
	f.register(cmd)
	var o client.ListOptions
	list := &cobra.Command{
		Use:   "list insight|autopilot|guardian",
		Short: "List a project's results, newest first: issues per severity, success, pass and scores",
		Args:  exactArgs(1, "results list takes a product"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := client.ParseProduct(args[0])
			if err != nil {
				return WithCode(ExitUsage, err)
			}
			return call(cmd.Context(), e, &f, "list", func(ctx context.Context, s *session) error {
				l, err := s.cl.List(ctx, p, o)
				if err != nil {
					return err
				}
				s.out.result(l, true, func(w io.Writer) { printResultList(w, p, l) })
				return nil
			})
		},
	}
	list.Flags().IntVar(&o.Limit, "limit", 20, "page size (1-100)")
	list.Flags().IntVar(&o.Offset, "offset", 0, "skip this many")
	var worst int
	get := &cobra.Command{
		Use:   "get insight|autopilot|guardian ID",
		Short: "Show one stored result: its counts, outcome and worst issues (--json: the document)",
		Args:  exactArgs(2, "results get takes a product and an id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := client.ParseProduct(args[0])
			if err != nil {
				return WithCode(ExitUsage, err)
			}
			return call(cmd.Context(), e, &f, "get", func(ctx context.Context, s *session) error {
				raw, err := s.cl.Get(ctx, p, args[1])
				if err != nil {
					return err
				}
				s.out.result(raw, true, func(w io.Writer) { printResult(w, p, raw, worst) })
				return nil
			})
		},
	}
	get.Flags().IntVar(&worst, "worst", 10, "how many of the worst issues to show (Insight)")
	cmd.AddCommand(list, get)
	return cmd
}

// storedResult is what the text output reads of a stored result of any product.
type storedResult struct {
	ID         string    `json:"id"`
	Timestamp  time.Time `json:"timestamp"`
	ReceivedAt time.Time `json:"receivedAt"`
	// Insight
	Detectors        []string                `json:"detectors"`
	TotalIssues      int64                   `json:"totalIssues"`
	IssuesBySeverity client.IssuesBySeverity `json:"issuesBySeverity"`
	Issues           []client.InsightIssue   `json:"issues"`
	// Autopilot
	RunID           string                   `json:"runId"`
	Phases          client.AutopilotPhaseSet `json:"phases"`
	SelectedRecipe  string                   `json:"selectedRecipe"`
	FilesModified   []string                 `json:"filesModified"`
	TrustScore      float64                  `json:"trustScore"`
	QualityImproved bool                     `json:"qualityImproved"`
	Success         bool                     `json:"success"`
	// Guardian
	TestRunID   string               `json:"testRunId"`
	URL         string               `json:"url"`
	Environment string               `json:"environment"`
	Tests       client.GuardianTests `json:"tests"`
	Screenshots []string             `json:"screenshots"`
	Passed      bool                 `json:"passed"`
}

func printResultList(w io.Writer, p client.Product, l *client.ResultList) {
	fmt.Fprintf(w, "%d %s result(s)", l.Total, p)
	if len(l.Items) < int(l.Total) {
		fmt.Fprintf(w, ", showing %d from %d", len(l.Items), l.Offset)
	}
	fmt.Fprintln(w)
	for _, it := range l.Items {
		var r storedResult
		_ = json.Unmarshal(it, &r)
		fmt.Fprintf(w, "  %s  %s  %s\n", r.ID, r.Timestamp.UTC().Format(time.RFC3339), resultLine(p, &r))
	}
}

// resultLine is what a person wants of a result at a glance.
func resultLine(p client.Product, r *storedResult) string {
	switch p {
	case client.Insight:
		s := r.IssuesBySeverity
		return fmt.Sprintf("%d issues (%d critical, %d high, %d medium, %d low)", r.TotalIssues, s.Critical, s.High, s.Medium, s.Low)
	case client.Autopilot:
		return fmt.Sprintf("%s  run %s  trust %.2f  %d file(s) modified", outcome(r.Success, "success", "FAILED"), r.RunID, r.TrustScore, len(r.FilesModified))
	default:
		t := r.Tests
		return fmt.Sprintf("%s  %s %s  accessibility %.1f  load %.0f ms  %d vulnerabilities", outcome(r.Passed, "passed", "FAILED"), r.Environment, r.URL,
			t.Accessibility.Score, t.Performance.LoadTime, t.Security.Vulnerabilities)
	}
}

func outcome(ok bool, yes, no string) string {
	if ok {
		return yes
	}
	return no
}

func printResult(w io.Writer, p client.Product, raw json.RawMessage, worst int) {
	var r storedResult
	_ = json.Unmarshal(raw, &r)
	fmt.Fprintf(w, "%s result %s of %s (received %s)\n", p, r.ID, r.Timestamp.UTC().Format(time.RFC3339), r.ReceivedAt.UTC().Format(time.RFC3339))
	fmt.Fprintln(w, resultLine(p, &r))
	switch p {
	case client.Insight:
		if len(r.Detectors) > 0 {
			fmt.Fprintf(w, "detectors: %s\n", strings.Join(r.Detectors, ", "))
		}
		issues := append([]client.InsightIssue(nil), r.Issues...)
		sort.SliceStable(issues, func(i, j int) bool { return rank(issues[i].Severity) < rank(issues[j].Severity) })
		if len(issues) > 0 && worst > 0 {
			fmt.Fprintln(w, "worst issues:")
		}
		for i, is := range issues {
			if i == worst {
				fmt.Fprintf(w, "  … %d more (--worst N, or --json for all)\n", len(issues)-worst)
				break
			}
			fmt.Fprintf(w, "  %-8s  %s:%d:%d  %s  %s\n", is.Severity, is.File, is.Line, is.Column, is.Detector, is.Message)
		}
	case client.Autopilot:
		if r.SelectedRecipe != "" {
			fmt.Fprintf(w, "recipe: %s\n", r.SelectedRecipe)
		}
		fmt.Fprintf(w, "quality improved: %t\n", r.QualityImproved)
		ph := r.Phases
		fmt.Fprintf(w, "phases: observe %s, decide %s, act %s, verify %s, learn %s\n", ph.Observe.Status, ph.Decide.Status, ph.Act.Status, ph.Verify.Status, ph.Learn.Status)
		for _, f := range r.FilesModified {
			fmt.Fprintf(w, "  modified %s\n", f)
		}
	case client.Guardian:
		t := r.Tests
		fmt.Fprintf(w, "accessibility: score %.1f, %d violations, %d passes\n", t.Accessibility.Score, t.Accessibility.Violations, t.Accessibility.Passes)
		fmt.Fprintf(w, "performance: load %.0f ms, TTFB %.0f ms, FCP %.0f ms, LCP %.0f ms\n", t.Performance.LoadTime, t.Performance.TTFB, t.Performance.FCP, t.Performance.LCP)
		fmt.Fprintf(w, "security: %d vulnerabilities, %d warnings\n", t.Security.Vulnerabilities, t.Security.Warnings)
		if len(r.Screenshots) > 0 {
			fmt.Fprintf(w, "screenshots: %s\n", strings.Join(r.Screenshots, ", "))
		}
	}
}

// rank orders severities, worst first.
func rank(severity string) int {
	switch strings.ToLower(severity) {
	case "critical":
		return 0
	case "high":
		return 1
	case "medium":
		return 2
	case "low":
		return 3
	}
	return 4
}
