package client_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/odavl/sync/client"
)

// Push an Insight analysis from a CI job, configured by the seed's variables.
func Example() {
	c, err := client.New(client.Config{
		BaseURL:        os.Getenv("ODAVL_CLOUD_API"),
		APIKey:         os.Getenv("ODAVL_API_KEY"),
		OrganizationID: os.Getenv("ODAVL_ORGANIZATION_ID"),
		ProjectID:      os.Getenv("ODAVL_PROJECT_ID"),
	})
	if err != nil {
		log.Fatal(err) // names the missing variables
	}
	ctx := context.Background()
	rc, err := c.PushInsight(ctx, client.InsightResult{
		OrganizationID: c.Config().OrganizationID, ProjectID: c.Config().ProjectID,
		Timestamp: time.Now().UTC(), Detectors: []string{"eslint"}, TotalIssues: 1,
		IssuesBySeverity: client.IssuesBySeverity{High: 1},
		Issues:           []client.InsightIssue{{Detector: "eslint", Severity: "high", Message: "no-unused-vars", File: "src/a.ts", Line: 3, Column: 7}},
	})
	switch {
	case client.IsRejected(err):
		log.Fatal(err) // the *client.Error carries the field errors
	case client.IsTransient(err):
		log.Print("server unreachable; keep the upload and send it later: ", err)
		return
	case err != nil:
		log.Fatal(err)
	}
	st, err := c.Wait(ctx, rc.EventID, client.WaitOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.State)
}
