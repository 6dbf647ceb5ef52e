package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/odavl/sync/client/cli"
)

func newKeys(e *env) *cobra.Command {
	keys := &cobra.Command{Use: "keys", Short: "Manage API keys of a running system"}
	var org, project, name, credPath string
	var scopes []string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an API key (and its organization and project when new); prints the key alone",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if org == "" || project == "" {
				return cli.WithCode(cli.ExitUsage, fmt.Errorf("--org and --project are required"))
			}
			c, err := cli.ReadCredentials(credPath)
			if err != nil {
				return cli.WithCode(cli.ExitUsage, fmt.Errorf("--credentials: %w", err))
			}
			body, _ := json.Marshal(map[string]any{"organizationId": org, "projectId": project, "name": name, "scopes": scopes})
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost, strings.TrimRight(c.APIURL, "/")+"/api/v1/admin/keys", bytes.NewReader(body))
			if err != nil {
				return err
			}
			req.Header.Set("Authorization", "Bearer "+c.APIKey)
			req.Header.Set("X-Organization-Id", c.OrganizationID)
			req.Header.Set("X-Project-Id", c.ProjectID)
			req.Header.Set("Content-Type", "application/json")
			resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
			if err != nil {
				return fmt.Errorf("asking %s: %w", c.APIURL, err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusCreated {
				return cli.WithCode(cli.ExitRejected, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b))))
			}
			var out struct {
				Key string `json:"key"`
			}
			if err := json.Unmarshal(b, &out); err != nil {
				return fmt.Errorf("reading answer: %w", err)
			}
			fmt.Fprintln(e.Stdout, out.Key)
			return nil
		},
	}
	f := create.Flags()
	f.StringVar(&org, "org", "", "organization id")
	f.StringVar(&project, "project", "", "project id")
	f.StringVar(&name, "name", "", "a name for the key")
	f.StringSliceVar(&scopes, "scope", []string{"sync"}, "scopes: sync, admin")
	f.StringVar(&credPath, "credentials", "./data/credentials.json", "credentials.json of an admin key, as written by serve")
	keys.AddCommand(create)
	return keys
}
