package events_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/odavl/sync/libs/events"
)

// The envelope's time is UTC with exactly three decimals, whatever the
// precision and zone of the time given, and survives a decode.
func TestEventTimeIsUTCMilliseconds(t *testing.T) {
	t.Parallel()
	cet := time.FixedZone("CET", 3600)
	for _, tc := range []struct {
		in   time.Time
		want string
	}{
		{time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "2026-01-02T03:04:05.000Z"},
		{time.Date(2026, 1, 2, 3, 4, 5, 300_000_000, time.UTC), "2026-01-02T03:04:05.300Z"},
		{time.Date(2026, 1, 2, 3, 4, 5, 123_456_789, time.UTC), "2026-01-02T03:04:05.123Z"},
		{time.Date(2026, 1, 2, 4, 4, 5, 999_999_999, cet), "2026-01-02T03:04:05.999Z"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			t.Parallel()
			ev, err := events.New("id", events.SourceJobs, events.TypeJobStatus, tc.in, "o", "p", events.JobStatusChanged{JobID: "j"})
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			var attrs struct{ Time, DataSchema string }
			if err := json.Unmarshal(b, &attrs); err != nil {
				t.Fatal(err)
			}
			if attrs.Time != tc.want || attrs.DataSchema != events.DataSchema(events.TypeJobStatus) {
				t.Errorf("time %q dataschema %q; want %q", attrs.Time, attrs.DataSchema, tc.want)
			}
			back, err := events.Decode(b)
			if err != nil || !back.Time.Equal(ev.Time) {
				t.Errorf("decoded time %v, want %v (%v)", back.Time, ev.Time, err)
			}
		})
	}
}

// Every event names the schema of its data; the AsyncAPI document defines it.
func ExampleDataSchema() {
	fmt.Println(events.DataSchema(events.TypeFileEvent))
	// Output: https://odavl.dev/schemas/events/dev.odavl.storage.file.v1.json
}
