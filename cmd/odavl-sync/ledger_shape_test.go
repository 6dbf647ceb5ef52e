package main

import (
	"net/http"
	"testing"
)

// An Autopilot ledger as the seed describes it — recipe, files, trust score
// and quality flag inside their phases — is accepted end to end: stored,
// read back with the fields where every reader finds them, and counted.
func TestAutopilotLedgerInTheSeedsShape(t *testing.T) {
	s := startServe(t, nil)
	c := s.Cred
	body := autopilotBody(c.OrganizationID, c.ProjectID, "seed-shape-1", true)
	for _, k := range []string{"selectedRecipe", "filesModified", "trustScore", "qualityImproved"} {
		delete(body, k)
	}
	ph := body["phases"].(map[string]any)
	ph["decide"].(map[string]any)["selectedRecipe"] = "remove-unused-imports"
	ph["act"].(map[string]any)["filesModified"] = []string{"src/a.ts", "src/b.ts"}
	ph["verify"].(map[string]any)["trustScore"] = 0.75
	ph["verify"].(map[string]any)["qualityImproved"] = true
	r := s.Do(http.MethodPost, "/api/v1/sync/autopilot", body)
	if r.Status != http.StatusAccepted {
		t.Fatalf("the seed's shape: %d %s", r.Status, r.Body)
	}
	var rc receiptBody
	r.JSON(t, &rc)
	var got struct {
		TrustScore     float64  `json:"trustScore"`
		FilesModified  []string `json:"filesModified"`
		SelectedRecipe string   `json:"selectedRecipe"`
		Phases         struct {
			Verify struct {
				TrustScore float64 `json:"trustScore"`
			} `json:"verify"`
		} `json:"phases"`
	}
	eventually(t, "the ledger stored", func() bool {
		r := s.Do(http.MethodGet, "/api/v1/sync/autopilot/"+rc.UploadID, nil)
		if r.Status != http.StatusOK {
			return false
		}
		r.JSON(t, &got)
		return true
	})
	if got.TrustScore != 0.75 || got.Phases.Verify.TrustScore != 0.75 || len(got.FilesModified) != 2 || got.SelectedRecipe != "remove-unused-imports" {
		t.Errorf("stored ledger %+v", got)
	}
	eventually(t, "the trust score counted", func() bool {
		var sum struct {
			Autopilot struct {
				Total             int
				AverageTrustScore *float64
			}
		}
		s.Do(http.MethodGet, "/api/v1/stats/summary", nil).JSON(t, &sum)
		return sum.Autopilot.Total == 1 && sum.Autopilot.AverageTrustScore != nil && *sum.Autopilot.AverageTrustScore == 0.75
	})
}
