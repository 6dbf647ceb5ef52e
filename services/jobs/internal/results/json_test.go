package results

import (
	"encoding/json"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// A result renders as the upload's own fields plus ours, each once, even
// when the upload holds one of our names.
func TestResultJSONAddsOurFieldsOnce(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, data := range []bson.D{
		{{Key: "totalIssues", Value: int32(3)}, {Key: "issues", Value: bson.A{bson.D{{Key: "line", Value: int32(7)}}}}},
		{},
		{{Key: "id", Value: "the upload's"}, {Key: "n", Value: int32(1)}},
	} {
		raw, _ := bson.Marshal(data)
		r := Result{ID: "evt_1", JobID: "evt_1", ReceivedAt: at, ProcessedAt: at.Add(time.Second), Data: raw}
		b, err := r.JSON()
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if got["id"] != "evt_1" || got["jobId"] != "evt_1" || got["receivedAt"] != "2026-12-01T10:00:00Z" || got["processedAt"] != "2026-12-01T10:00:01Z" {
			t.Errorf("%s lacks our fields", b)
		}
		if len(got) != len(data)+4-min(1, countKey(data, "id")) {
			t.Errorf("%s: %d fields for %d of the upload's", b, len(got), len(data))
		}
		if len(data) > 0 && data[0].Key == "totalIssues" && got["totalIssues"] != float64(3) {
			t.Errorf("%s lost the upload's fields", b)
		}
	}
}

func countKey(d bson.D, k string) int {
	n := 0
	for _, e := range d {
		if e.Key == k {
			n++
		}
	}
	return n
}
