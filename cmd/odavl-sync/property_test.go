package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"testing"
	"time"
)

// writeMutated writes v as JSON, choosing at random (each value with
// probability rate) how a number or timestamp is written (1 as 1.0, 1e0, 10e-1, 1e400; times with fractions,
// offsets, a leap second, a 30th of February) and sometimes replacing a
// string with a hostile one.
func writeMutated(b *bytes.Buffer, v any, r *rand.Rand, rate float64) {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			kb, _ := json.Marshal(k)
			b.Write(kb)
			b.WriteByte(':')
			writeMutated(b, x[k], r, rate)
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			writeMutated(b, e, r, rate)
		}
		b.WriteByte(']')
	case float64:
		s := strconv.FormatFloat(x, 'f', -1, 64)
		if r.Float64() >= rate {
			b.WriteString(s)
			return
		}
		forms := []string{s, s, s + ".0", s + "e0", s + "E+0", s + "0e-1", "-" + s, "1e400", "1e-400", "0.1e1", s + ".000000000000000000001", "9007199254740993"}
		b.WriteString(forms[r.IntN(len(forms))])
	case string:
		if r.Float64() >= rate {
			sb, _ := json.Marshal(x)
			b.Write(sb)
			return
		}
		if t, err := time.Parse(time.RFC3339, x); err == nil {
			forms := []string{x, t.Format(time.RFC3339Nano), t.Add(123456789 * time.Nanosecond).Format(time.RFC3339Nano),
				t.In(time.FixedZone("", 5*3600+1800)).Format(time.RFC3339), t.Format("2006-01-02t15:04:05z"),
				t.Format("2006-01-02") + "T23:59:60Z", "2026-02-30T10:00:00Z", t.Format("2006-01-02T15:04:05-00:00"), "0001-01-01T00:00:00Z"}
			x = forms[r.IntN(len(forms))]
		} else if r.IntN(2) == 0 {
			// As JSON text: a lone surrogate cannot be a Go string.
			hostile := []string{`""`, `"\u0000"`, `"\ud800"`, `"\u2028<script>"`, `"e\u0301"`, `"` + string(bytes.Repeat([]byte("x"), 3000)) + `"`}
			b.WriteString(hostile[r.IntN(len(hostile))])
			return
		}
		sb, _ := json.Marshal(x)
		b.Write(sb)
	default:
		vb, _ := json.Marshal(x)
		b.Write(vb)
	}
}

// What the gateway accepts (202), processing stores: a property over
// bodies whose numbers, times and strings are written every way JSON and
// RFC 3339 allow. An accepted upload that then FAILED would be one the
// gateway had to refuse with a 400.
func TestWhatTheGatewayAcceptsIsStored(t *testing.T) {
	s := startServe(t, map[string]string{"RATE_LIMIT_RPS": "0"})
	c := s.Cred
	r := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	type accepted struct{ product, id, body string }
	var ok []accepted
	refused := 0
	for i := range 300 {
		var base map[string]any
		product := []string{"insight", "autopilot", "guardian"}[i%3]
		switch product {
		case "insight":
			base = insightBody(c.OrganizationID, c.ProjectID, i)
		case "autopilot":
			base = autopilotBody(c.OrganizationID, c.ProjectID, fmt.Sprintf("prop-%d", i), i%2 == 0)
		default:
			base = guardianBody(c.OrganizationID, c.ProjectID, fmt.Sprintf("prop-%d", i), "staging", true)
		}
		// Through JSON, so every value is a map, a list, a float64 or a string.
		var v map[string]any
		raw, _ := json.Marshal(base)
		_ = json.Unmarshal(raw, &v)
		var b bytes.Buffer
		writeMutated(&b, v, r, []float64{0.02, 0.05, 0.1}[r.IntN(3)])
		resp := s.Do(http.MethodPost, "/api/v1/sync/"+product, b.Bytes())
		switch {
		case resp.Status == http.StatusAccepted:
			var rc receiptBody
			resp.JSON(t, &rc)
			ok = append(ok, accepted{product, rc.JobID, b.String()})
		case resp.Status == http.StatusBadRequest:
			refused++
		default:
			t.Fatalf("%s upload: %d %s", product, resp.Status, resp.Body)
		}
	}
	t.Logf("%d accepted, %d refused with a 400", len(ok), refused)
	if len(ok) < 20 || refused < 20 {
		t.Fatalf("the mutations accept %d and refuse %d: not a test of both sides", len(ok), refused)
	}
	for _, a := range ok {
		eventually(t, "upload "+a.id+" finished", func() bool {
			var st struct{ State, Reason string }
			s.Do(http.MethodGet, "/api/v1/sync/jobs/"+a.id, nil).JSON(t, &st)
			if st.State == "failed" {
				t.Fatalf("accepted (202) but FAILED in processing (%s): %s upload %.600s", st.Reason, a.product, a.body)
			}
			return st.State == "stored"
		})
	}
}
