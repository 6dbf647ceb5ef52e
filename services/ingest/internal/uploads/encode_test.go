package uploads

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/odavl/sync/libs/events"
)

// The received event put together around the canonical payload is the
// event encoding/json makes of it: the same bytes, and the same JSON when
// the payload holds characters encoding/json escapes (<, >, &).
func TestEncodeReceivedIsTheEvent(t *testing.T) {
	ats := []time.Time{time.Date(2026, 12, 4, 8, 0, 0, 123e6, time.UTC), time.Date(2026, 12, 4, 9, 0, 0, 123456789, time.FixedZone("", 3600))}
	payloads := []string{`{"runId":"r1","success":true}`, `{"a":[1,2,{"b":"x\"y"}],"c":null}`, `{"message":"a < b && c > d","é":"ü"}`}
	keys := []string{"runId:r1", "runId:r1", "runId:r1", `key:a<b>&"c"\d`, "key:é\u2028\x01"}
	for i, key := range keys {
		payload, at := payloads[i%len(payloads)], ats[i%len(ats)]
		up := Upload{OrganizationID: "acme", ProjectID: "web", Product: events.Autopilot, KeyID: "k1", IdempotencyKey: key, Canonical: []byte(payload)}
		got, err := encodeReceived([]byte("reused"), up, "up_1", "h", at)
		if err != nil {
			t.Fatal(err)
		}
		got, _ = bytes.CutPrefix(got, []byte("reused"))
		ev, err := events.New("up_1", Source, events.ReceivedType(up.Product), at, "acme", "web", events.Received{
			UploadID: "up_1", OrganizationID: "acme", ProjectID: "web", Product: events.Autopilot, IdempotencyKey: key,
			PayloadHash: "h", KeyID: "k1", ReceivedAt: at, Payload: json.RawMessage(payload)})
		if err != nil {
			t.Fatal(err)
		}
		ev.Subject = "up_1"
		want, err := ev.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var g, w any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("%s: %v", got, err)
		}
		_ = json.Unmarshal(want, &w)
		if !reflect.DeepEqual(g, w) {
			t.Errorf("encoded\n%s\nwant\n%s", got, want)
		}
		if !bytes.ContainsAny([]byte(payload), "<>&") && !bytes.Equal(got, want) {
			t.Errorf("encoded\n%s\nwant the same bytes as\n%s", got, want)
		}
		if _, err := events.Decode(got); err != nil {
			t.Errorf("decoding %s: %v", got, err)
		}
	}
}

// A receipt appended is what the gateway's answer made of it by
// encoding/json (an Encoder that does not escape HTML) was, or nothing.
func TestReceiptAppendJSONIsTheEncoders(t *testing.T) {
	at := time.Date(2026, 12, 4, 8, 0, 0, 123e6, time.UTC)
	for i, r := range []Receipt{
		receipt("up_0123456789abcdef0123456789abcdef", at, false),
		receipt("up_1", time.Date(2026, 12, 4, 9, 0, 0, 123456789, time.FixedZone("", 3600)), true),
		{EventID: "a<b>&c", Status: "queued", ReceivedAt: at},
		{EventID: `quote"`, ReceivedAt: at},
		{EventID: "é", ReceivedAt: at},
		{EventID: "x", ReceivedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		werr := enc.Encode(r)
		got, ok := r.AppendJSON([]byte("kept"))
		switch {
		case ok && (werr != nil || string(got) != "kept"+want.String()):
			t.Errorf("receipt %d: appended %q, encoding/json %q (%v)", i, got, want.String(), werr)
		case !ok && string(got) != "kept":
			t.Errorf("receipt %d: not known, yet appended %q", i, got)
		case !ok && i < 3:
			t.Errorf("receipt %d: not appended", i)
		}
	}
}
