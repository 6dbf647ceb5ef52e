package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/odavl/sync/client/cli"
)

// addStatsRebuild adds rebuild to `stats`.
func addStatsRebuild(root *cobra.Command, e *env) {
	stats, _, err := root.Find([]string{"stats"})
	if err != nil || stats == root {
		panic("odavl-sync: the client commands have no stats command")
	}
	var credPath string
	var timeout time.Duration
	var asJSON bool
	rebuild := &cobra.Command{
		Use:   "rebuild",
		Short: "Recompute every aggregate from the stored results (admin key); waits until the new figures are served",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cli.ReadCredentials(credPath)
			if err != nil {
				return cli.WithCode(cli.ExitUsage, fmt.Errorf("--credentials: %w", err))
			}
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost, strings.TrimRight(c.APIURL, "/")+"/api/v1/admin/stats/rebuild", nil)
			if err != nil {
				return err
			}
			req.Header.Set("Authorization", "Bearer "+c.APIKey)
			req.Header.Set("X-Organization-Id", c.OrganizationID)
			req.Header.Set("X-Project-Id", c.ProjectID)
			resp, err := (&http.Client{Timeout: timeout}).Do(req)
			if err != nil {
				return fmt.Errorf("asking %s: %w", c.APIURL, err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				code := cli.ExitFailure
				if resp.StatusCode >= 400 && resp.StatusCode < 500 {
					code = cli.ExitRejected
				}
				return cli.WithCode(code, fmt.Errorf("stats rebuild: %s: %s", resp.Status, strings.TrimSpace(string(b))))
			}
			if asJSON {
				_, err := fmt.Fprintln(e.Stdout, strings.TrimSpace(string(b)))
				return err
			}
			var out struct {
				Generation int64     `json:"generation"`
				Results    int64     `json:"results"`
				Aggregates int64     `json:"aggregates"`
				StartedAt  time.Time `json:"startedAt"`
				FinishedAt time.Time `json:"finishedAt"`
			}
			if err := json.Unmarshal(b, &out); err != nil {
				return fmt.Errorf("reading answer: %w", err)
			}
			fmt.Fprintf(e.Stdout, "rebuilt generation %d from %d result(s) into %d aggregate(s) in %s\n",
				out.Generation, out.Results, out.Aggregates, out.FinishedAt.Sub(out.StartedAt).Round(time.Millisecond))
			return nil
		},
	}
	f := rebuild.Flags()
	f.StringVar(&credPath, "credentials", "./data/credentials.json", "credentials.json of an admin key, as written by serve")
	f.DurationVar(&timeout, "timeout", 30*time.Minute, "how long to wait for the rebuild")
	f.BoolVar(&asJSON, "json", false, "print the answer as JSON")
	stats.AddCommand(rebuild)
}
