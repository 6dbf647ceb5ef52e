package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/odavl/sync/client"
)

// clientRoutes are the routes the Go client has a typed call for.
var clientRoutes = map[string]string{
	"GET /healthz": "-", "GET /readyz": "Ready",
	"GET /api/v1/openapi.json":        "OpenAPI",
	"GET /api/v1/asyncapi.json":       "AsyncAPI",
	"POST /api/v1/admin/keys":         "CreateKey",
	"POST /api/v1/sync/insight":       "Push, PushInsight",
	"GET /api/v1/sync/insight":        "List",
	"GET /api/v1/sync/insight/{id}":   "Get",
	"POST /api/v1/sync/autopilot":     "Push, PushAutopilot",
	"GET /api/v1/sync/autopilot":      "List",
	"GET /api/v1/sync/autopilot/{id}": "Get",
	"POST /api/v1/sync/guardian":      "Push, PushGuardian",
	"GET /api/v1/sync/guardian":       "List",
	"GET /api/v1/sync/guardian/{id}":  "Get",
	"GET /api/v1/sync/jobs/{id}":      "Status, Wait, GetJob",
	"GET /api/v1/sync/jobs":           "ListJobs",
	"POST /api/v1/sync/jobs":          "RetryJob, CancelJob",
	"DELETE /api/v1/sync/jobs":        "ClearJobs",
	"POST /api/v1/jobs":               "SubmitJob",
	"POST /api/v1/sync/jobs/pause":    "PauseQueue",
	"POST /api/v1/sync/jobs/resume":   "ResumeQueue",
	"GET /api/v1/alerts":              "Alerts",
	"GET /api/v1/events/stream":       "Events",

	"POST /api/v1/storage/upload-url":                            "UploadURL, UploadFile",
	"GET /api/v1/storage/upload-url":                             "DownloadURL",
	"POST /api/v1/storage/files/{id}/confirm":                    "ConfirmFile",
	"POST /api/v1/storage/multipart":                             "StartMultipart",
	"POST /api/v1/storage/multipart/{fileId}/parts/{n}":          "PartURL",
	"POST /api/v1/storage/multipart/{fileId}/complete":           "CompleteMultipart",
	"POST /api/v1/storage/multipart/{fileId}/parts/{partNumber}": "PartURL",
	"DELETE /api/v1/storage/multipart/{fileId}":                  "AbortMultipart",
	"GET /api/v1/storage/files":                                  "ListFiles",
	"GET /api/v1/storage/files/{id}":                             "GetFile",
	"DELETE /api/v1/storage/files/{id}":                          "DeleteFile",
	"GET /api/v1/storage/files/{id}/content":                     "ContentURL",
	"GET /api/v1/storage/stats":                                  "StorageStats",
	"GET /api/v1/stats/summary":                                  "StatsSummary",
	"GET /api/v1/stats/trends":                                   "StatsTrends",
	"POST /api/v1/admin/stats/rebuild":                           "RebuildStats",
	"PUT /blob/{key}":                                            "UploadFile (the signed upload URL)",
	"GET /blob/{key}":                                            "- (a signed download URL)",
	"GET /api/v1/projects":                                       "- (the dashboard's project switcher)",
	"GET /public/files/{id}":                                     "- (a PUBLIC file's fileUrl)",
}

func TestClientCoversEveryDocumentedRoute(t *testing.T) {
	s := startServe(t, nil)
	c := s.Cred
	cl := newClient(t, c)
	ctx := context.Background()
	if err := cl.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	raw, err := cl.OpenAPI(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for path, ops := range doc.Paths {
		if strings.HasPrefix(path, "/dashboard") || path == "/" {
			continue // the dashboard is for browsers
		}
		for m := range ops {
			switch m {
			case "get", "post", "put", "delete", "patch":
			default:
				continue
			}
			if _, ok := clientRoutes[strings.ToUpper(m)+" "+path]; !ok {
				t.Errorf("the OpenAPI document has %s %s, the Go client has no call for it", strings.ToUpper(m), path)
			}
		}
	}

	// The typed calls the CLI does not use.
	async, err := cl.AsyncAPI(ctx)
	var ad struct {
		AsyncAPI string `json:"asyncapi"`
	}
	if err != nil || json.Unmarshal(async, &ad) != nil || ad.AsyncAPI != "3.0.0" {
		t.Fatalf("AsyncAPI: %.100s %v", async, err)
	}
	k, err := cl.CreateKey(ctx, client.CreateKeyRequest{OrganizationID: c.OrganizationID, ProjectID: "ci", Name: "ci", Scopes: []string{"sync"}})
	if err != nil || !strings.HasPrefix(k.Key, "odavl_") || k.ProjectID != "ci" {
		t.Fatalf("CreateKey: %+v %v", k, err)
	}
	// The live stream sees the upload processed.
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	opened := make(chan struct{})
	processed := make(chan client.Event, 16)
	streamErr := make(chan error, 1)
	go func() {
		streamErr <- cl.Events(sctx, func() { close(opened) }, func(ev client.Event) error {
			if strings.HasSuffix(ev.Type, ".processed.v1") {
				processed <- ev
			}
			return nil
		})
	}()
	select {
	case <-opened:
	case err := <-streamErr:
		t.Fatalf("event stream: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("event stream not open after 10s")
	}
	rc, err := cl.PushInsight(ctx, client.InsightResult{
		OrganizationID: c.OrganizationID, ProjectID: c.ProjectID, Timestamp: time.Now().UTC().Add(-time.Minute),
		Detectors: []string{"eslint"}, TotalIssues: 1, IssuesBySeverity: client.IssuesBySeverity{Critical: 1},
		Issues: []client.InsightIssue{{Detector: "eslint", Severity: "critical", Message: "eval is evil", File: "src/a.ts", Line: 3, Column: 7}},
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-processed:
		if ev.OrganizationID != c.OrganizationID || !strings.Contains(string(ev.Data), rc.UploadID) {
			t.Errorf("processed event %+v for upload %s", ev, rc.UploadID)
		}
	case err := <-streamErr:
		t.Fatalf("event stream ended: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no processed event in 10s")
	}
	stop()
	if err := <-streamErr; err != nil {
		t.Errorf("Events after cancel: %v, want nil", err)
	}
	var alerts *client.AlertList
	eventually(t, "the critical alert", func() bool {
		alerts, err = cl.Alerts(ctx, client.ListOptions{})
		return err == nil && alerts.Total == 1
	})
	if alerts.Items[0].UploadID != rc.UploadID || alerts.Items[0].Critical != 1 || len(alerts.Items[0].Messages) == 0 {
		t.Errorf("alert %+v for upload %s", alerts.Items[0], rc.UploadID)
	}
	// Statistics count the upload.
	eventually(t, "the upload in the statistics", func() bool {
		sum, err := cl.StatsSummary(ctx, client.StatsOptions{})
		return err == nil && sum.Insight.Analyses == 1 && sum.Insight.IssuesBySeverity.Critical == 1
	})
	tr, err := cl.StatsTrends(ctx, client.StatsOptions{From: time.Now().UTC().AddDate(0, 0, -6)})
	if err != nil || len(tr.Days) == 0 || tr.PreviousFrom == "" {
		t.Errorf("trends: %+v %v", tr, err)
	}
	rb, err := cl.RebuildStats(ctx)
	if err != nil || rb.Results < 1 {
		t.Errorf("rebuild: %+v %v", rb, err)
	}

	// A key of another project cannot read this one: a rejection value with its status.
	other, _ := client.New(client.Config{BaseURL: c.APIURL, APIKey: k.Key, OrganizationID: c.OrganizationID, ProjectID: c.ProjectID})
	_, err = other.List(ctx, client.Insight, client.ListOptions{})
	if !client.IsRejected(err) || client.StatusOf(err) != 403 {
		t.Errorf("another project's key: %v, want a 403 rejection", err)
	}
}
