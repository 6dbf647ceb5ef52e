package client

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestFillTenant(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in  string
		want      map[string]any // nil: the body comes back as it is
		otherTeam bool
	}{
		{name: "missing both", in: `{"totalIssues":1}`, want: map[string]any{"organizationId": "acme", "projectId": "web", "totalIssues": 1.0}},
		{name: "empty and null", in: `{"organizationId":"","projectId":null}`, want: map[string]any{"organizationId": "acme", "projectId": "web"}},
		{name: "only the project missing", in: `{"organizationId":"acme"}`, want: map[string]any{"organizationId": "acme", "projectId": "web"}},
		{name: "already the client's", in: `{"organizationId":"acme","projectId":"web"}`},
		{name: "another project", in: `{"projectId":"api"}`, otherTeam: true},
		{name: "another organization", in: `{"organizationId":"evil","projectId":"web"}`, otherTeam: true},
		{name: "not an object", in: `[1,2]`},
		{name: "not a string", in: `{"projectId":7}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := FillTenant([]byte(tc.in), "acme", "web")
			if tc.otherTeam {
				if !errors.Is(err, ErrOtherTenant) {
					t.Fatalf("FillTenant(%s) = %s, %v; want ErrOtherTenant", tc.in, got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == nil {
				if string(got) != tc.in {
					t.Errorf("FillTenant(%s) changed it to %s", tc.in, got)
				}
				return
			}
			var m map[string]any
			if err := json.Unmarshal(got, &m); err != nil {
				t.Fatal(err)
			}
			if len(m) != len(tc.want) {
				t.Errorf("FillTenant(%s) = %s, want %v", tc.in, got, tc.want)
			}
			for k, v := range tc.want {
				if m[k] != v {
					t.Errorf("FillTenant(%s)[%s] = %v, want %v", tc.in, k, m[k], v)
				}
			}
		})
	}
}
