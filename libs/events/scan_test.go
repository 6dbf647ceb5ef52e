package events

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The fast decoding reads every envelope and every received upload as
// encoding/json does, errors included, on thousands of generated ones with
// escapes, odd spacing, keys in other cases, duplicates, nulls, values of
// other types and bytes that are not UTF-8; and it takes the plain ones.
func TestFastDecodeIsEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	fast := 0
	const n = 4000
	for range n {
		payload := randomPayload(rng)
		data := randomObjectOf(rng, receivedKeys, payload)
		env := randomObjectOf(rng, eventKeys, data)

		got, err := Decode(env)
		want, wantErr := decodeJSON(env)
		if (err != nil) != (wantErr != nil) || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s:\nDecode %+v %v\njson   %+v %v", env, got, err, want, wantErr)
		}
		if _, ok := decodeFast(env); ok {
			fast++
		}

		var r, wr Received
		err = Event{Type: "t", Data: data}.DataAs(&r)
		wantErr = json.Unmarshal(data, &wr)
		if (err != nil) != (wantErr != nil) || (err == nil && !reflect.DeepEqual(r, wr)) {
			t.Fatalf("%s:\nDataAs %+v %v\njson   %+v %v", data, r, err, wr, wantErr)
		}
	}
	t.Logf("fast %d of %d", fast, n)
	if fast < n/4 {
		t.Errorf("the fast path took %d of %d envelopes", fast, n)
	}
}

// A received event as the gateway writes it takes the fast path, payload
// and all.
func TestFastDecodeTakesTheGatewaysEvents(t *testing.T) {
	at := time.Date(2026, 12, 4, 10, 0, 0, 123e6, time.UTC)
	payload := `{"issues":[{"message":"a \"quoted\" \\ path\\","file":"x\\"}],"totalIssues":1}`
	ev, err := New("up_1", SourceIngest, ReceivedType(Insight), at, "org", "p", Received{
		UploadID: "up_1", OrganizationID: "org", ProjectID: "p", Product: Insight, IdempotencyKey: "k",
		PayloadHash: "h", KeyID: "key", ReceivedAt: at, Payload: json.RawMessage(payload),
	})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(ev)
	got, ok := decodeFast(b)
	if !ok {
		t.Fatalf("%s: not decoded by the fast path", b)
	}
	var r Received
	if !decodeReceivedFast(got.Data, &r) {
		t.Fatalf("%s: data not decoded by the fast path", got.Data)
	}
	if string(r.Payload) != payload || !r.ReceivedAt.Equal(at) || r.UploadID != "up_1" || !got.Time.Equal(at) {
		t.Errorf("decoded %+v from %+v", r, got)
	}
}

func randomObjectOf(rng *rand.Rand, keys []string, nested []byte) []byte {
	var b strings.Builder
	sp := func() {
		if rng.IntN(8) == 0 {
			b.WriteString([]string{" ", "\n", "\t ", "\r\n"}[rng.IntN(4)])
		}
	}
	sp()
	b.WriteByte('{')
	members := 0
	for _, k := range keys {
		if rng.IntN(10) == 0 {
			continue // missing
		}
		for range 1 + boolInt(rng.IntN(30) == 0) { // a duplicate now and then
			if members > 0 {
				b.WriteByte(',')
			}
			members++
			sp()
			switch rng.IntN(40) {
			case 0:
				k = strings.ToUpper(k)
			case 1:
				k = "x" + k
			case 2:
				k = `\u0069d`
			}
			fmt.Fprintf(&b, "%q", k)
			sp()
			b.WriteByte(':')
			sp()
			b.Write(randomAttr(rng, k, nested))
			sp()
		}
	}
	b.WriteByte('}')
	sp()
	if rng.IntN(50) == 0 {
		return []byte(b.String()[:b.Len()/2]) // cut
	}
	return []byte(b.String())
}

func randomAttr(rng *rand.Rand, k string, nested []byte) []byte {
	if rng.IntN(25) == 0 {
		return []byte([]string{"null", "12", "true", `{}`, `[]`, `"\u00e9"`, "\"\xff\"", `1.5`, `"a\"b"`}[rng.IntN(9)])
	}
	switch k {
	case "data", "payload":
		return nested
	case "time", "receivedAt":
		return []byte([]string{`"2026-12-04T10:00:00.123Z"`, `"2026-12-04T10:00:00+01:00"`, `"yesterday"`, `"2026-12-04T10:00:00Z"`}[rng.IntN(4)])
	case "generation", "baseAttempt":
		return []byte([]string{"0", "3", "-1", "1e2", "99999999999999999999"}[rng.IntN(5)])
	case "specversion":
		return []byte([]string{`"1.0"`, `"0.3"`}[rng.IntN(2)])
	}
	return []byte([]string{`"up_1"`, `"org-a"`, `"é"`, `""`, `"insight"`, `"sync.v1.x"`}[rng.IntN(6)])
}

func randomPayload(rng *rand.Rand) []byte {
	parts := []string{`{"a":1}`, `{"m":"x\"}\\"}`, `{"l":[1,{"b":"]"},"\\\\"],"c":null}`, `{"s":"{[\"]}"}`, `[1,2]`, `"text"`, `{"n":{"o":{"p":[[]]}}}`}
	return []byte(parts[rng.IntN(len(parts))])
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// decodeJSON is Decode with encoding/json alone (what the fast path is
// checked against).
func decodeJSON(b []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(b, &e); err != nil {
		return Event{}, fmt.Errorf("decoding event: %w", err)
	}
	if err := e.Validate(); err != nil {
		return Event{}, err
	}
	return e, nil
}
