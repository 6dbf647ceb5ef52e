package rpc

import (
	"encoding/json"
	"testing"
)

// A page encoded as it is reads back as json.Marshal writes it.
func TestListResultsEncodeIsItsJSON(t *testing.T) {
	for _, p := range []ListResultsResponse{
		{Items: []json.RawMessage{}, Total: 0, Limit: 20},
		{Items: []json.RawMessage{json.RawMessage(`{"id":"a","n":[1,2,{"x":"<&>"}]}`), json.RawMessage(`{"id":"b"}`)}, Total: 1234, Limit: 50, Offset: 100},
	} {
		want, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		got := p.Encode()
		var a, b ListResultsResponse
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatalf("%s: %v", got, err)
		}
		_ = json.Unmarshal(want, &b)
		wa, _ := json.Marshal(a)
		if string(wa) != string(want) {
			t.Errorf("Encode %s\nMarshal %s", got, want)
		}
	}
}
