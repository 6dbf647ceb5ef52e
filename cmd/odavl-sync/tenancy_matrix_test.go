package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/odavl/sync/libs/rpc"
)

// secret marks every piece of the victim's data: no answer to another
// tenant may carry it.
const secret = "victim-secret-7f3a"

// victim is a tenant with data behind every kind of id the API takes.
type victim struct {
	org, project, key                             string
	insight, autopilot, guardian, job, file, mpID string
}

// matrixReq is one request of the cross-tenant matrix. A request whose
// body names the victim's project, or whose body or query names the
// victim's organization (sent by another organization's key), must never
// succeed, whatever headers carry it; a public route answers anyone.
type matrixReq struct {
	method, path   string
	body           any
	namesVictimOrg bool
	namesProject   bool
	public         bool
	operator       bool // acts on every organization: no organization's key may
}

// crossTenantCases are, for every route of the OpenAPI document, the
// requests an attacker sends at the victim's data. A route missing here
// fails TestNoKeyReachesAnotherTenantsData.
func crossTenantCases(v victim) map[string][]matrixReq {
	get := func(p string) matrixReq { return matrixReq{method: http.MethodGet, path: p} }
	post := func(p string, b any) matrixReq { return matrixReq{method: http.MethodPost, path: p, body: b} }
	del := func(p string) matrixReq { return matrixReq{method: http.MethodDelete, path: p} }
	naming := func(r matrixReq) matrixReq { r.namesVictimOrg = true; return r }
	upload := func(r matrixReq) matrixReq { r.namesProject = true; return r }
	public := func(r matrixReq) matrixReq { r.public = true; return r }
	operator := func(r matrixReq) matrixReq { r.operator = true; return r }
	tenantBody := func(b map[string]any) map[string]any {
		b["organizationId"], b["projectId"] = v.org, v.project
		return b
	}
	email := map[string]any{"type": "EMAIL_SEND", "payload": map[string]any{"to": []string{"x@example.com"}, "subject": "attack", "text": "."}}
	file := map[string]any{"filename": "a.json", "contentType": "application/json", "size": 10}
	return map[string][]matrixReq{
		"GET /healthz":              {public(get("/healthz"))},
		"GET /readyz":               {public(get("/readyz"))},
		"GET /api/v1/openapi.json":  {public(get("/api/v1/openapi.json"))},
		"GET /api/v1/asyncapi.json": {public(get("/api/v1/asyncapi.json"))},
		"POST /api/v1/admin/keys": {
			naming(post("/api/v1/admin/keys", map[string]any{"organizationId": v.org, "projectId": v.project, "scopes": []string{"admin"}})),
			naming(post("/api/v1/admin/keys", map[string]any{"organizationId": v.org, "projectId": "new", "scopes": []string{"sync"}})),
		},
		"GET /api/v1/events/stream": {get("/api/v1/events/stream")}, // own headers: TestEventStreamCarriesOnlyTheCallersTenantAndEndsAtShutdown
		"GET /":                     {public(get("/"))},
		"GET /dashboard":            {public(get("/dashboard"))},
		"POST /api/v1/jobs":         {post("/api/v1/jobs", email)},
		"GET /api/v1/sync/jobs": {get("/api/v1/sync/jobs"), get("/api/v1/sync/jobs?projectId=" + v.project), get("/api/v1/sync/jobs?projectId=*"),
			naming(get("/api/v1/sync/jobs?organizationId=" + v.org))},
		"POST /api/v1/sync/jobs": {post("/api/v1/sync/jobs", map[string]any{"action": "cancel", "jobId": v.job}),
			post("/api/v1/sync/jobs", map[string]any{"action": "retry", "jobId": v.job}), post("/api/v1/sync/jobs", map[string]any{"action": "retry", "jobId": v.insight})},
		"DELETE /api/v1/sync/jobs": {del("/api/v1/sync/jobs?daysToKeep=0")},
		// The whole queue is the operator's; an organization's admin pauses
		// and resumes its own organization's jobs (the default scope).
		"POST /api/v1/sync/jobs/pause":  {operator(post("/api/v1/sync/jobs/pause?scope=queue", nil)), post("/api/v1/sync/jobs/pause", nil)},
		"POST /api/v1/sync/jobs/resume": {post("/api/v1/sync/jobs/resume", nil), operator(post("/api/v1/sync/jobs/resume?scope=queue", nil))},
		"GET /api/v1/stats/summary":     {get("/api/v1/stats/summary"), get("/api/v1/stats/summary?scope=organization")},
		"GET /api/v1/stats/trends":      {get("/api/v1/stats/trends"), get("/api/v1/stats/trends?scope=organization")},
		// Every organization's statistics are the operator's to rebuild; an
		// organization's admin rebuilds its own (the default scope).
		"POST /api/v1/admin/stats/rebuild": {operator(post("/api/v1/admin/stats/rebuild?scope=all", nil)), post("/api/v1/admin/stats/rebuild", nil)},
		"POST /api/v1/storage/upload-url":  {post("/api/v1/storage/upload-url", file)},
		"GET /api/v1/storage/upload-url":   {get("/api/v1/storage/upload-url?fileId=" + v.file)},
		"POST /api/v1/storage/multipart": {post("/api/v1/storage/multipart",
			map[string]any{"filename": "a.pdf", "contentType": "application/pdf", "size": 12 << 20})},
		"POST /api/v1/storage/multipart/{fileId}/parts/{n}": {post("/api/v1/storage/multipart/"+v.mpID+"/parts/1", nil)},
		"POST /api/v1/storage/multipart/{fileId}/complete":  {post("/api/v1/storage/multipart/"+v.mpID+"/complete", map[string]any{"parts": []any{}})},
		"DELETE /api/v1/storage/multipart/{fileId}":         {del("/api/v1/storage/multipart/" + v.mpID)},
		"GET /api/v1/storage/files":                         {get("/api/v1/storage/files")},
		"GET /api/v1/storage/files/{id}":                    {get("/api/v1/storage/files/" + v.file), get("/api/v1/storage/files/" + v.mpID)},
		"DELETE /api/v1/storage/files/{id}":                 {del("/api/v1/storage/files/" + v.file), del("/api/v1/storage/files/" + v.mpID)},
		"POST /api/v1/storage/files/{id}/confirm":           {post("/api/v1/storage/files/"+v.mpID+"/confirm", nil)},
		"GET /api/v1/storage/files/{id}/content":            {get("/api/v1/storage/files/" + v.file + "/content")},
		"GET /api/v1/storage/stats":                         {get("/api/v1/storage/stats")},
		// The storage service's own routes: the victim's file is not
		// PUBLIC, and a blob URL without the victim's signature is refused.
		"GET /public/files/{id}":          {get("/public/files/" + v.file)},
		"GET /blob/{key}":                 {get("/blob/" + v.org + "/" + v.project + "/" + v.file)},
		"PUT /blob/{key}":                 {{method: http.MethodPut, path: "/blob/" + v.org + "/" + v.project + "/" + v.file, body: map[string]any{secret: 2}}},
		"POST /api/v1/sync/insight":       {upload(post("/api/v1/sync/insight", tenantBody(insightBody(v.org, v.project, 99))))},
		"GET /api/v1/sync/insight":        {get("/api/v1/sync/insight")},
		"GET /api/v1/sync/insight/{id}":   {get("/api/v1/sync/insight/" + v.insight)},
		"POST /api/v1/sync/autopilot":     {upload(post("/api/v1/sync/autopilot", autopilotBody(v.org, v.project, "attack-run", true)))},
		"GET /api/v1/sync/autopilot":      {get("/api/v1/sync/autopilot")},
		"GET /api/v1/sync/autopilot/{id}": {get("/api/v1/sync/autopilot/" + v.autopilot)},
		"POST /api/v1/sync/guardian":      {upload(post("/api/v1/sync/guardian", guardianBody(v.org, v.project, "attack-test", "staging", true)))},
		"GET /api/v1/sync/guardian":       {get("/api/v1/sync/guardian")},
		"GET /api/v1/sync/guardian/{id}":  {get("/api/v1/sync/guardian/" + v.guardian)},
		"GET /api/v1/sync/jobs/{id}":      {get("/api/v1/sync/jobs/" + v.job), get("/api/v1/sync/jobs/" + v.insight)},
		"GET /api/v1/alerts":              {get("/api/v1/alerts")},
		"GET /api/v1/projects":            {get("/api/v1/projects")},
	}
}

// seedVictim creates the victim's tenant and data, each piece marked with
// the secret, and waits until all of it is stored.
func seedVictim(t *testing.T, s *served) victim {
	v := victim{org: "victim-org", project: "vp"}
	r := s.Do(http.MethodPost, "/api/v1/admin/keys", map[string]any{"organizationId": v.org, "projectId": v.project, "scopes": []string{"admin", "sync"}})
	if r.Status != http.StatusCreated {
		t.Fatalf("victim key: %d %s", r.Status, r.Body)
	}
	var k struct{ Key string }
	r.JSON(t, &k)
	v.key = k.Key
	do := func(method, path string, body any) apiResp {
		return s.DoAs(v.key, v.org, v.project, method, path, body)
	}

	ins := insightBody(v.org, v.project, 1)
	ins["totalIssues"] = 1
	ins["issuesBySeverity"] = map[string]int{"critical": 1, "high": 0, "medium": 0, "low": 0}
	ins["issues"] = []map[string]any{{"detector": "security", "severity": "critical", "message": secret + " hard-coded key", "file": "src/" + secret + ".ts", "line": 1, "column": 1}}
	ap := autopilotBody(v.org, v.project, secret+"-run", true)
	gd := guardianBody(v.org, v.project, secret+"-test", "production", true)
	gd["url"] = "https://" + secret + ".example.com/checkout"
	ids := map[string]*string{"insight": &v.insight, "autopilot": &v.autopilot, "guardian": &v.guardian}
	for p, body := range map[string]any{"insight": ins, "autopilot": ap, "guardian": gd} {
		r := do(http.MethodPost, "/api/v1/sync/"+p, body)
		var rc receiptBody
		r.JSON(t, &rc)
		if r.Status != http.StatusAccepted {
			t.Fatalf("victim %s upload: %d %s", p, r.Status, r.Body)
		}
		*ids[p] = rc.EventID
		eventually(t, "victim "+p+" stored", func() bool {
			return strings.Contains(string(do(http.MethodGet, rc.StatusURL, nil).Body), `"stored"`)
		})
	}
	r = do(http.MethodPost, "/api/v1/jobs", map[string]any{"type": "EMAIL_SEND", "payload": map[string]any{"to": []string{"v@example.com"}, "subject": secret, "text": secret}})
	var j apiJob
	r.JSON(t, &j)
	v.job = j.ID
	eventually(t, "victim job completed", func() bool {
		return strings.Contains(string(do(http.MethodGet, "/api/v1/sync/jobs/"+v.job, nil).Body), `"COMPLETED"`)
	})
	content := []byte(`{"` + secret + `":1}`)
	u := upload(t, s, v.key, v.org, v.project, map[string]any{"filename": secret + ".json", "contentType": "application/json", "size": len(content)}, content)
	if r := do(http.MethodPost, "/api/v1/storage/files/"+u.FileID+"/confirm", nil); r.Status != http.StatusOK {
		t.Fatalf("victim confirm: %d %s", r.Status, r.Body)
	}
	v.file = u.FileID
	r = do(http.MethodPost, "/api/v1/storage/multipart", map[string]any{"filename": secret + ".pdf", "contentType": "application/pdf", "size": 12 << 20})
	var mp rpc.MultipartResponse
	r.JSON(t, &mp)
	if mp.FileID == "" {
		t.Fatalf("victim multipart: %d %s", r.Status, r.Body)
	}
	v.mpID = mp.FileID
	return v
}

// victimState is what the victim sees of its data; no attacker may change it.
func victimState(t *testing.T, s *served, v victim) string {
	var b strings.Builder
	for _, path := range []string{"/api/v1/sync/insight", "/api/v1/sync/autopilot", "/api/v1/sync/guardian", "/api/v1/sync/jobs/" + v.job,
		"/api/v1/storage/files/" + v.file, "/api/v1/storage/files/" + v.mpID, "/api/v1/alerts", "/api/v1/stats/summary"} {
		r := s.DoAs(v.key, v.org, v.project, http.MethodGet, path, nil)
		var doc any
		_ = json.Unmarshal(r.Body, &doc)
		fmt.Fprintf(&b, "%s %d %s\n", path, r.Status, stable(doc))
	}
	return b.String()
}

// stable renders doc without the fields that change on their own (times,
// signed URLs, event stream figures).
func stable(doc any) string {
	var walk func(any) any
	walk = func(x any) any {
		switch x := x.(type) {
		case map[string]any:
			out := map[string]any{}
			for k, val := range x {
				if strings.HasSuffix(k, "At") || strings.HasSuffix(k, "Url") || strings.HasSuffix(k, "URL") || k == "expires" {
					continue
				}
				out[k] = walk(val)
			}
			return out
		case []any:
			for i := range x {
				x[i] = walk(x[i])
			}
		}
		return x
	}
	b, _ := json.Marshal(walk(doc))
	return string(b)
}

// figuresLeak reports a non-zero product figure in an attacker's answer
// (the attacker's tenants hold no results).
func figuresLeak(body []byte) string {
	var doc any
	if json.Unmarshal(body, &doc) != nil {
		return ""
	}
	var found string
	var walk func(string, any)
	walk = func(path string, x any) {
		switch x := x.(type) {
		case map[string]any:
			for k, val := range x {
				p := path + "." + k
				if n, ok := val.(float64); ok && n != 0 && (k == "analyses" || k == "totalIssues" || k == "withCritical" || k == "totalVulnerabilities" ||
					(k == "total" && (strings.HasSuffix(path, "autopilot") || strings.HasSuffix(path, "guardian") || strings.HasSuffix(path, "insight")))) {
					found = p
				}
				walk(p, val)
			}
		case []any:
			for _, val := range x {
				walk(path+"[]", val)
			}
		}
	}
	walk("", doc)
	return found
}

// TestNoKeyReachesAnotherTenantsData sends every route of the OpenAPI
// document at a victim's data with the keys of another organization (sync
// and admin) and of another project of the victim's organization, each
// with its own tenant headers, the victim's, and the two mixtures: no
// answer carries the victim's data, none that names the victim succeeds,
// and the victim's data is the same after.
func TestNoKeyReachesAnotherTenantsData(t *testing.T) {
	s := startServe(t, nil)
	v := seedVictim(t, s)
	before := victimState(t, s, v)

	type attacker struct{ name, key, org, project string }
	attackers := []attacker{
		{"another organization's sync key", newKey(t, s, "attacker-org", "ap"), "attacker-org", "ap"},
		{"another organization's admin key", "", "attacker-org", "ap"},
		{"another project's sync key", newKey(t, s, v.org, "vp2"), v.org, "vp2"},
	}
	r := s.Do(http.MethodPost, "/api/v1/admin/keys", map[string]any{"organizationId": "attacker-org", "projectId": "ap", "scopes": []string{"admin", "sync"}})
	var ak struct{ Key string }
	r.JSON(t, &ak)
	attackers[1].key = ak.Key

	// Every documented route is in the matrix.
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	s.Do(http.MethodGet, "/api/v1/openapi.json", nil).JSON(t, &doc)
	cases := crossTenantCases(v)
	var routes []string
	for path, ops := range doc.Paths {
		for m := range ops {
			if slices.Contains([]string{"get", "post", "put", "delete", "patch"}, m) {
				routes = append(routes, strings.ToUpper(m)+" "+path)
			}
		}
	}
	slices.Sort(routes)
	for _, route := range routes {
		if _, ok := cases[route]; !ok {
			t.Errorf("%s is not in the cross-tenant matrix (crossTenantCases)", route)
		}
	}

	hc := &http.Client{Timeout: 10 * time.Second}
	sent := 0
	for _, a := range attackers {
		headerSets := [][2]string{{a.org, a.project}, {v.org, v.project}, {a.org, v.project}, {v.org, a.project}}
		for _, route := range routes {
			for _, req := range cases[route] {
				for i, hs := range headerSets {
					if route == "GET /api/v1/events/stream" && i == 0 {
						continue // its own stream stays open; see the test named in crossTenantCases
					}
					status, hdr, body := sendMatrix(t, hc, s, a.key, hs, req)
					if hdr.Get("X-Content-Type-Options") != "nosniff" {
						t.Errorf("%s %s answered %d without X-Content-Type-Options: nosniff", req.method, req.path, status)
					}
					sent++
					what := fmt.Sprintf("%s, headers %s/%s: %s %s", a.name, hs[0], hs[1], req.method, req.path)
					if strings.Contains(strings.ToLower(string(body)), secret) {
						t.Errorf("%s: the answer (%d) carries the victim's data: %.300s", what, status, body)
					}
					victimHeaders := (hs[0] == v.org && a.org != v.org) || (hs[0] == v.org && hs[1] == v.project)
					if status/100 == 2 && !req.public && (req.namesProject || (req.namesVictimOrg && a.org != v.org) || req.operator || victimHeaders) {
						t.Errorf("%s: %d, want a refusal: %.300s", what, status, body)
					}
					if status >= 500 {
						t.Errorf("%s: %d %.300s", what, status, body)
					}
					if status == http.StatusOK && a.org != v.org && !req.public {
						if f := figuresLeak(body); f != "" {
							t.Errorf("%s: figure %s is not zero for a tenant without results: %.300s", what, f, body)
						}
					}
				}
			}
		}
	}
	t.Logf("%d requests of %d routes by %d attackers", sent, len(routes), len(attackers))
	if after := victimState(t, s, v); after != before {
		t.Errorf("the victim's data changed:\nbefore %s\nafter  %s", before, after)
	}
}

func sendMatrix(t *testing.T, hc *http.Client, s *served, key string, hs [2]string, mr matrixReq) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if mr.body != nil {
		b, _ := json.Marshal(mr.body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(mr.method, s.Cred.APIURL+mr.path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("X-Organization-Id", hs[0])
	req.Header.Set("X-Project-Id", hs[1])
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", mr.method, mr.path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, resp.Header, b
}
