package handlers

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/rpc"
	"github.com/odavl/sync/services/jobs/internal/queue"
	"github.com/odavl/sync/services/jobs/internal/results"
)

// Files makes the jobs whose output is a file (DATA_EXPORT,
// REPORT_GENERATION) and stores it through the storage service's requests,
// as any client would: a signed upload URL, a PUT, a confirm, and a signed
// download link for the job's output.
type Files struct {
	nc      *nats.Conn
	results *results.Store
	http    *http.Client
}

// NewFiles returns the file-producing handlers.
func NewFiles(nc *nats.Conn, rs *results.Store) *Files {
	return &Files{nc: nc, results: rs, http: &http.Client{Timeout: 2 * time.Minute}}
}

// StoredFile is a file a job produced.
type StoredFile struct {
	FileID      string    `json:"fileId"`
	Name        string    `json:"name"`
	ContentType string    `json:"contentType"`
	Size        int64     `json:"size"`
	Rows        int       `json:"rows,omitempty"`
	DownloadURL string    `json:"downloadUrl"`
	ExpiresAt   time.Time `json:"expiresAt"`
}

func (f *Files) store(ctx context.Context, j *queue.Job, name, contentType string, body []byte, generated bool) (StoredFile, error) {
	caller := rpc.Caller{Tenant: rpc.Tenant{OrganizationID: j.OrganizationID, ProjectID: j.ProjectID}, KeyID: "job:" + j.JobID}
	up, err := rpc.Call[rpc.UploadURLResponse](ctx, f.nc, rpc.StorageUploadURL, rpc.UploadURLRequest{
		Caller: caller, Filename: name, ContentType: contentType, Size: int64(len(body)),
		AccessLevel: rpc.AccessProject, Generated: generated,
	})
	if err != nil {
		return StoredFile{}, storageErr("asking for an upload URL", err)
	}
	method := up.Instructions.Method
	if method == "" {
		method = http.MethodPut
	}
	req, err := http.NewRequestWithContext(ctx, method, up.UploadURL, bytes.NewReader(body))
	if err != nil {
		return StoredFile{}, bus.Permanent(fmt.Errorf("upload URL %q: %w", up.UploadURL, err))
	}
	for k, v := range up.Instructions.Headers {
		req.Header.Set(k, v)
	}
	if req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.ContentLength = int64(len(body))
	resp, err := f.http.Do(req)
	if err != nil {
		return StoredFile{}, fmt.Errorf("uploading %s: %w", name, err)
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return StoredFile{}, fmt.Errorf("uploading %s: %s %s", name, resp.Status, strings.TrimSpace(string(msg)))
	}
	file, err := rpc.Call[rpc.File](ctx, f.nc, rpc.StorageConfirm, rpc.FileRequest{Caller: caller, FileID: up.FileID})
	if err != nil {
		return StoredFile{}, storageErr("confirming "+name, err)
	}
	dl, err := rpc.Call[rpc.DownloadURLResponse](ctx, f.nc, rpc.StorageDownloadURL, rpc.FileRequest{Caller: caller, FileID: up.FileID, ExpiresIn: 3600})
	if err != nil {
		return StoredFile{}, storageErr("asking for the download URL of "+name, err)
	}
	return StoredFile{FileID: file.ID, Name: file.Name, ContentType: file.ContentType, Size: file.Size, DownloadURL: dl.DownloadURL, ExpiresAt: dl.ExpiresAt}, nil
}

// storageErr makes a refusal of the storage service (4xx) permanent.
func storageErr(what string, err error) error {
	if st := rpc.StatusOf(err); st >= 400 && st < 500 {
		return bus.Permanent(fmt.Errorf("%s: %w", what, err))
	}
	return fmt.Errorf("%s: %w", what, err)
}

// each calls fn with every result of a product of the job's project, oldest page first.
func (f *Files) each(ctx context.Context, j *queue.Job, p events.Product, fn func(results.Result, map[string]any) error) (int, error) {
	n := 0
	for off := 0; ; off += 100 {
		rs, total, err := f.results.List(ctx, results.Query{OrganizationID: j.OrganizationID, ProjectID: j.ProjectID, Product: p, Limit: 100, Offset: off})
		if err != nil {
			return n, err
		}
		for _, r := range rs {
			b, err := r.JSON()
			if err != nil {
				return n, err
			}
			var m map[string]any
			d := json.NewDecoder(bytes.NewReader(b))
			d.UseNumber()
			if err := d.Decode(&m); err != nil {
				return n, err
			}
			if err := fn(r, m); err != nil {
				return n, err
			}
			n++
		}
		j.KeepAlive()
		if len(rs) < 100 || int64(off+100) >= total {
			return n, nil
		}
	}
}

var csvColumns = map[events.Product][]string{
	events.Insight:   {"id", "receivedAt", "timestamp", "totalIssues", "issuesBySeverity.critical", "issuesBySeverity.high", "issuesBySeverity.medium", "issuesBySeverity.low", "detectors"},
	events.Autopilot: {"id", "receivedAt", "timestamp", "runId", "success", "trustScore", "qualityImproved", "selectedRecipe", "filesModified"},
	events.Guardian:  {"id", "receivedAt", "timestamp", "testRunId", "environment", "url", "passed", "tests.accessibility.score", "tests.security.vulnerabilities", "tests.performance.loadTime"},
}

func field(m map[string]any, path string) string {
	var v any = m
	for _, k := range strings.Split(path, ".") {
		mm, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = mm[k]
	}
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = fmt.Sprint(e)
		}
		return strings.Join(parts, ";")
	default:
		return fmt.Sprint(x)
	}
}

// Export is the DATA_EXPORT handler: the project's results as one NDJSON
// file (every product, one result per line) and one CSV per product.
func (f *Files) Export(ctx context.Context, j *queue.Job) (any, error) {
	var ex Export
	if err := json.Unmarshal(j.Payload, &ex); err != nil {
		return nil, bus.Permanent(fmt.Errorf("decoding export: %w", err))
	}
	products := events.Products
	if len(ex.Products) > 0 {
		products = nil
		for _, p := range ex.Products {
			products = append(products, events.Product(p))
		}
	}
	var nd bytes.Buffer
	rows := map[string]int{}
	var files []StoredFile
	stamp := time.Now().UTC().Format("20060102-150405")
	for i, p := range products {
		var cb bytes.Buffer
		w := csv.NewWriter(&cb)
		cols := csvColumns[p]
		_ = w.Write(append([]string{"product"}, cols...))
		n, err := f.each(ctx, j, p, func(_ results.Result, m map[string]any) error {
			m["product"] = string(p)
			line, err := json.Marshal(m)
			if err != nil {
				return err
			}
			nd.Write(line)
			nd.WriteByte('\n')
			rec := []string{string(p)}
			for _, c := range cols {
				rec = append(rec, field(m, c))
			}
			return w.Write(rec)
		})
		if err != nil {
			return nil, err
		}
		w.Flush()
		rows[string(p)] = n
		sf, err := f.store(ctx, j, fmt.Sprintf("%s-%s-%s.csv", j.ProjectID, p, stamp), "text/csv", cb.Bytes(), false)
		if err != nil {
			return nil, err
		}
		sf.Rows = n
		files = append(files, sf)
		j.Progress((i + 1) * 80 / len(products))
	}
	total := 0
	for _, n := range rows {
		total += n
	}
	sf, err := f.store(ctx, j, fmt.Sprintf("%s-results-%s.ndjson", j.ProjectID, stamp), "text/plain", nd.Bytes(), false)
	if err != nil {
		return nil, err
	}
	sf.Rows = total
	files = append([]StoredFile{sf}, files...)
	return map[string]any{"rows": rows, "files": files, "downloadUrl": sf.DownloadURL}, nil
}

var reportTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"pct": func(a, b int) string {
		if b == 0 {
			return "–"
		}
		return strconv.FormatFloat(100*float64(a)/float64(b), 'f', 1, 64) + "%"
	},
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#1b1f24;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}.muted{color:#57606a}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(12rem,1fr));gap:1rem;margin:1.5rem 0}
.card{border:1px solid #d0d7de;border-radius:8px;padding:1rem}.card b{display:block;font-size:1.6rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}th,td{border-bottom:1px solid #d0d7de;padding:.35rem .5rem;text-align:left}
.crit{color:#cf222e;font-weight:600}
</style></head><body>
<h1>{{.Title}}</h1>
<p class="muted">Organization {{.Org}} · project {{.Project}} · generated {{.Generated}}</p>
<div class="cards">
<div class="card">Insight analyses<b id="insight-count">{{.Insight.Count}}</b>{{.Insight.Issues}} issues, <span class="crit">{{.Insight.Critical}} critical</span></div>
<div class="card">Autopilot cycles<b id="autopilot-count">{{.Autopilot.Count}}</b>{{pct .Autopilot.Succeeded .Autopilot.Count}} succeeded</div>
<div class="card">Guardian runs<b id="guardian-count">{{.Guardian.Count}}</b>{{pct .Guardian.Passed .Guardian.Count}} passed</div>
</div>
<h2>Insight issues by severity</h2>
<table><tr><th>critical</th><th>high</th><th>medium</th><th>low</th></tr>
<tr><td class="crit">{{.Insight.Critical}}</td><td>{{.Insight.High}}</td><td>{{.Insight.Medium}}</td><td>{{.Insight.Low}}</td></tr></table>
<h2>Latest results</h2>
<table><tr><th>product</th><th>id</th><th>time</th><th>summary</th></tr>
{{range .Latest}}<tr><td>{{.Product}}</td><td>{{.ID}}</td><td>{{.At}}</td><td>{{.Summary}}</td></tr>
{{else}}<tr><td colspan="4" class="muted">No results yet.</td></tr>{{end}}</table>
</body></html>
`))

type reportData struct {
	Title, Org, Project, Generated string
	Insight                        struct{ Count, Issues, Critical, High, Medium, Low int }
	Autopilot                      struct{ Count, Succeeded int }
	Guardian                       struct{ Count, Passed int }
	Latest                         []reportRow
}

type reportRow struct{ Product, ID, At, Summary string }

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// Report is the REPORT_GENERATION handler: a self-contained HTML summary of
// the project (no scripts, no external resources), stored as a generated file.
func (f *Files) Report(ctx context.Context, j *queue.Job) (any, error) {
	var rp Report
	if err := json.Unmarshal(j.Payload, &rp); err != nil {
		return nil, bus.Permanent(fmt.Errorf("decoding report: %w", err))
	}
	d := reportData{Title: rp.Title, Org: j.OrganizationID, Project: j.ProjectID, Generated: time.Now().UTC().Format(time.RFC1123)}
	if d.Title == "" {
		d.Title = "ODAVL Sync report: " + j.ProjectID
	}
	latest := func(p events.Product, r results.Result, summary string) {
		if len(d.Latest) < 30 {
			d.Latest = append(d.Latest, reportRow{string(p), r.ID, r.ReceivedAt.UTC().Format(time.RFC3339), summary})
		}
	}
	var err error
	if _, err = f.each(ctx, j, events.Insight, func(r results.Result, m map[string]any) error {
		d.Insight.Count++
		c, h, md, l := atoi(field(m, "issuesBySeverity.critical")), atoi(field(m, "issuesBySeverity.high")), atoi(field(m, "issuesBySeverity.medium")), atoi(field(m, "issuesBySeverity.low"))
		d.Insight.Critical, d.Insight.High, d.Insight.Medium, d.Insight.Low = d.Insight.Critical+c, d.Insight.High+h, d.Insight.Medium+md, d.Insight.Low+l
		d.Insight.Issues += atoi(field(m, "totalIssues"))
		latest(events.Insight, r, fmt.Sprintf("%s issues (%d critical)", field(m, "totalIssues"), c))
		return nil
	}); err != nil {
		return nil, err
	}
	j.Progress(30)
	if _, err = f.each(ctx, j, events.Autopilot, func(r results.Result, m map[string]any) error {
		d.Autopilot.Count++
		if field(m, "success") == "true" {
			d.Autopilot.Succeeded++
		}
		latest(events.Autopilot, r, "run "+field(m, "runId")+", success "+field(m, "success")+", trust "+field(m, "trustScore"))
		return nil
	}); err != nil {
		return nil, err
	}
	j.Progress(60)
	if _, err = f.each(ctx, j, events.Guardian, func(r results.Result, m map[string]any) error {
		d.Guardian.Count++
		if field(m, "passed") == "true" {
			d.Guardian.Passed++
		}
		latest(events.Guardian, r, field(m, "environment")+" "+field(m, "url")+", passed "+field(m, "passed"))
		return nil
	}); err != nil {
		return nil, err
	}
	j.Progress(80)
	var b bytes.Buffer
	if err := reportTmpl.Execute(&b, d); err != nil {
		return nil, bus.Permanent(err)
	}
	sf, err := f.store(ctx, j, fmt.Sprintf("%s-report-%s.html", j.ProjectID, time.Now().UTC().Format("20060102-150405")), "text/html", b.Bytes(), true)
	if err != nil {
		return nil, err
	}
	return map[string]any{"file": sf, "downloadUrl": sf.DownloadURL, "results": d.Insight.Count + d.Autopilot.Count + d.Guardian.Count}, nil
}
