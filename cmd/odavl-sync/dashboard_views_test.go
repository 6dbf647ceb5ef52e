package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// upload posts one result of product and fails the test unless it is accepted.
func (s *served) upload(t *testing.T, product string, body map[string]any) {
	t.Helper()
	if r := s.Do(http.MethodPost, "/api/v1/sync/"+product, body); r.Status != http.StatusAccepted {
		t.Fatalf("%s upload: %d %s", product, r.Status, r.Body)
	}
}

// submitJob submits a job and waits until it reaches status.
func (s *served) submitJob(t *testing.T, body map[string]any, status string) apiJob {
	t.Helper()
	r := s.Do(http.MethodPost, "/api/v1/jobs", body)
	if r.Status != http.StatusAccepted {
		t.Fatalf("submitting a %v job: %d %s", body["type"], r.Status, r.Body)
	}
	var job apiJob
	r.JSON(t, &job)
	s.waitJob(t, job.ID, status)
	return job
}

// waitListed waits until the list of product holds n results.
func (s *served) waitListed(t *testing.T, product string, n int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d %s results listed", n, product), func() bool {
		var l struct{ Total int }
		s.Do(http.MethodGet, "/api/v1/sync/"+product, nil).JSON(t, &l)
		return l.Total == n
	})
}

// choose sets a select (or date input) of the page as a person would: the
// value, then the change event.
func (b *browser) choose(sel, value string) {
	b.t.Helper()
	js, _ := json.Marshal(sel)
	v, _ := json.Marshal(value)
	if ok, _ := b.eval(`(() => { const e = document.querySelector(` + string(js) + `); if (!e) return false;
		e.value = ` + string(v) + `; e.dispatchEvent(new Event('change', { bubbles: true })); return true })()`).(bool); !ok {
		b.t.Fatalf("no %s to choose %q in", sel, value)
	}
}

// startDashboard starts Chromium and a serve for a dashboard test.
func startDashboard(t *testing.T) (*browser, *served, credentials) {
	t.Helper()
	b := startBrowser(t)
	s := startServe(t, nil)
	return b, s, s.Cred
}

// finish saves the last screenshot and fails the test on any problem the
// browser reported.
func (b *browser) finish(screenshot string) {
	b.t.Helper()
	b.screenshot(screenshot)
	b.noProblems()
}

// count is how many elements sel selects.
func (b *browser) count(sel string) int {
	b.t.Helper()
	js, _ := json.Marshal(sel)
	n, _ := b.eval(`document.querySelectorAll(` + string(js) + `).length`).(float64)
	return int(n)
}

// TestDashboardTrendCharts: the Trends tab draws one point per day of the
// chosen range for each chart, says what the range holds in words, follows
// a new upload live and fits a phone screen.
func TestDashboardTrendCharts(t *testing.T) {
	b, s, c := startDashboard(t)
	s.upload(t, "insight", insightBody(c.OrganizationID, c.ProjectID, 1))
	s.upload(t, "insight", insightBody(c.OrganizationID, c.ProjectID, 2))
	s.upload(t, "autopilot", dashAutopilotBody(c.OrganizationID, c.ProjectID, "run-1"))
	s.upload(t, "guardian", dashGuardianBody(c.OrganizationID, c.ProjectID, "tr-1")) // LCP 1500 ms
	slow := dashGuardianBody(c.OrganizationID, c.ProjectID, "tr-2")
	slow["tests"].(map[string]any)["performance"].(map[string]any)["lcp"] = 2500
	s.upload(t, "guardian", slow)
	eventually(t, "the statistics to count the uploads", func() bool {
		var sum struct {
			Insight   struct{ Analyses int }
			Autopilot struct{ Total int }
			Guardian  struct{ Total int }
		}
		s.Do(http.MethodGet, "/api/v1/stats/summary", nil).JSON(t, &sum)
		return sum.Insight.Analyses == 2 && sum.Autopilot.Total == 1 && sum.Guardian.Total == 2
	})

	b.signIn(c)
	charts := []string{"issues", "autopilot", "guardian", "load", "lcp", "jobs"}
	drawn := func(days int) string {
		return `(() => { const f = [...document.querySelectorAll('#panel-trends figure[data-chart]')];
			return f.length === ` + strconv.Itoa(len(charts)) + ` && f.every(e => e.dataset.points === '` + strconv.Itoa(days) + `' &&
				Number(e.dataset.drawn) > 0 && !!e.querySelector('canvas')) })()`
	}
	b.waitJS("the charts of 7 days", drawn(7))
	if got := b.eval(`document.getElementById('tab-trends').getAttribute('aria-selected')`); got != "true" {
		t.Errorf("the Trends tab is not the first one shown (aria-selected %v)", got)
	}
	caption := func(chart string) string { return b.text(`[data-chart=` + chart + `] figcaption .sub`) }
	if got, want := caption("issues"), "6 issues found in the last 7 days (2 critical, 2 high, 2 medium, 0 low)"; got != want {
		t.Errorf("issues caption %q, want %q", got, want)
	}
	if got, want := caption("autopilot"), "1 run in the last 7 days"; got != want {
		t.Errorf("autopilot caption %q, want %q", got, want)
	}
	if got, want := caption("guardian"), "2 test runs in the last 7 days"; got != want {
		t.Errorf("guardian caption %q, want %q", got, want)
	}
	// Every run was received today: one day of seven has an LCP, the
	// average of 1500 and 2500 ms.
	if got := b.eval(`document.querySelector('[data-chart=lcp]').dataset.values`); got != "1" {
		t.Errorf("the LCP chart has a value on %v days, want 1 (of 7 points)", got)
	}
	if got, want := caption("lcp"), "The average LCP of each day's test runs: 1 day with runs in the last 7 days, the latest 2 s"; got != want {
		t.Errorf("LCP caption %q, want %q", got, want)
	}
	// Job counts arrive with the jobs' own events, beside the uploads'.
	b.waitJS("the 5 completed uploads in the jobs chart", `document.querySelector('[data-chart=jobs] figcaption .sub').textContent.includes('5 completed')`)
	if got := b.text(`[data-chart=issues] .u-legend`); !strings.Contains(got, "Critical") || !strings.Contains(got, "Low") {
		t.Errorf("issues legend %q", got)
	}
	b.screenshot("charts-7-days.png")

	b.run("choosing 30 days", chromedp.Click(chromedp.CSS(`#panel-trends [data-days="30"]`)))
	b.waitJS("the charts of 30 days", drawn(30))
	if got := caption("issues"); !strings.HasSuffix(got, "in the last 30 days (2 critical, 2 high, 2 medium, 0 low)") {
		t.Errorf("issues caption over 30 days %q", got)
	}
	b.screenshot("charts-30-days.png")

	// A new analysis shows in the charts without a reload, from the stream.
	b.eval(`window.__notReloaded = true`)
	s.upload(t, "insight", insightBody(c.OrganizationID, c.ProjectID, 3))
	b.waitJS("the new analysis in the issues chart", `document.querySelector('[data-chart=issues] figcaption .sub').textContent.startsWith('9 issues found in the last 30 days')`)
	if b.eval(`window.__notReloaded === true && document.querySelector('[data-chart=issues]').dataset.points === '30'`) != true {
		t.Error("the page reloaded, or the live redraw lost the 30-day range")
	}

	b.run("choosing 90 days", chromedp.Click(chromedp.CSS(`#panel-trends [data-days="90"]`)))
	b.waitJS("the charts of 90 days", drawn(90))

	// On a phone the charts narrow to the screen and stay drawn.
	b.run("narrowing the viewport", chromedp.EmulateViewport(390, 844))
	b.waitJS("the charts to follow the narrow screen", `[...document.querySelectorAll('#panel-trends canvas')].every(c =>
		c.getBoundingClientRect().right <= window.innerWidth && c.getBoundingClientRect().width > 200)`)
	b.fits("the charts at 390 px")
	b.finish("charts-phone.png")
}

// TestDashboardDrillDown: Details opens an Insight analysis to its issues
// (filtered by severity and detector), an Autopilot run to its phases and
// files, a Guardian run to its metrics and a job to its history and output.
func TestDashboardDrillDown(t *testing.T) {
	b, s, c := startDashboard(t)
	s.upload(t, "insight", insightBody(c.OrganizationID, c.ProjectID, 1))
	s.upload(t, "autopilot", dashAutopilotBody(c.OrganizationID, c.ProjectID, "run-42"))
	s.upload(t, "guardian", dashGuardianBody(c.OrganizationID, c.ProjectID, "tr-7"))
	s.waitListed(t, "insight", 1)
	s.waitListed(t, "autopilot", 1)
	s.waitListed(t, "guardian", 1)
	export := s.submitJob(t, map[string]any{"type": "DATA_EXPORT", "payload": map[string]any{"products": []string{"insight"}}}, "COMPLETED")

	b.signIn(c)

	// Insight: the issues with their place in the code, then filtered.
	b.run("opening the Insight tab", chromedp.Click(chromedp.CSS("#tab-insight")))
	b.waitJS("the analysis", `!!document.querySelector('[data-list=insight] article [data-details]')`)
	b.run("opening the analysis", chromedp.Click(chromedp.CSS(`[data-list=insight] article [data-details]`)))
	b.waitJS("its issues", `document.querySelectorAll('[data-list=insight] [data-detail] tr[data-issue]').length === 3`)
	if got := b.text(`[data-list=insight] [data-detail] tr[data-issue]`); !strings.Contains(got, "src/a.ts:3:7") ||
		!strings.Contains(got, "eval is evil #1") || !strings.Contains(got, "eslint") || !strings.Contains(strings.ToLower(got), "critical") {
		t.Errorf("first issue row %q, want src/a.ts:3:7, critical, eslint, eval is evil #1", got)
	}
	b.choose(`[data-detail] [data-issue-filter=severity]`, "high")
	b.waitJS("the high issue alone", `document.querySelectorAll('[data-detail] tr[data-issue]').length === 1`)
	if got := b.text(`[data-detail] [data-location]`); got != "src/b.ts:10:1" {
		t.Errorf("the high issue is at %q, want src/b.ts:10:1", got)
	}
	b.choose(`[data-detail] [data-issue-filter=severity]`, "")
	b.choose(`[data-detail] [data-issue-filter=detector]`, "eslint")
	b.waitJS("the eslint issues", `document.querySelectorAll('[data-detail] tr[data-issue]').length === 2`)
	if got := b.text(`[data-list=insight] [data-detail] p`); got != "Showing 2 issues of 3." {
		t.Errorf("issue count %q", got)
	}
	b.screenshot("drilldown-insight.png")

	// Autopilot: phases with durations, recipe, trust score, files.
	b.run("opening the Autopilot tab", chromedp.Click(chromedp.CSS("#tab-autopilot")))
	b.waitJS("the run", `!!document.querySelector('[data-list=autopilot] article [data-details]')`)
	b.run("opening the run", chromedp.Click(chromedp.CSS(`[data-list=autopilot] article [data-details]`)))
	b.waitJS("its phases", `document.querySelectorAll('[data-list=autopilot] [data-detail] tr[data-phase-row]').length === 5`)
	if got := b.text(`[data-detail] tr[data-phase-row=verify]`); !strings.Contains(got, "2.5 s") || !strings.Contains(strings.ToLower(got), "failed") {
		t.Errorf("verify phase row %q, want failed in 2.5 s", got)
	}
	if got := b.text(`[data-list=autopilot] [data-detail]`); !strings.Contains(got, "remove-unused-imports") || !strings.Contains(got, "82%") ||
		!strings.Contains(got, "3 files") || !strings.Contains(got, "src/c.ts") {
		t.Errorf("autopilot details %q, want the recipe, 82%%, 3 files and src/c.ts", got)
	}
	b.screenshot("drilldown-autopilot.png")

	// Guardian: every score and metric, LCP included.
	b.run("opening the Guardian tab", chromedp.Click(chromedp.CSS("#tab-guardian")))
	b.waitJS("the test run", `!!document.querySelector('[data-list=guardian] article [data-details]')`)
	b.run("opening the test run", chromedp.Click(chromedp.CSS(`[data-list=guardian] article [data-details]`)))
	b.waitJS("its metrics", `!!document.querySelector('[data-list=guardian] [data-detail] dl')`)
	if got := strings.ToLower(b.text(`[data-list=guardian] [data-detail]`)); !strings.Contains(got, "lcp\n1.5 s") || !strings.Contains(got, "violations\n2") ||
		!strings.Contains(got, "warnings\n4") || !strings.Contains(got, "2 screenshots") {
		t.Errorf("guardian details %q, want LCP 1.5 s, 2 violations, 4 warnings, 2 screenshots", got)
	}
	b.screenshot("drilldown-guardian.png")

	// A job: attempts, history and its output's download links.
	b.run("opening the Jobs tab", chromedp.Click(chromedp.CSS("#tab-jobs")))
	sel := `[data-job="` + export.ID + `"] [data-details]`
	b.waitJS("the export job", `!!document.querySelector('`+sel+`')`)
	b.run("opening the export job", chromedp.Click(chromedp.CSS(sel)))
	detail := `tr[data-detail="` + export.ID + `"]`
	b.waitJS("its history and output", `document.querySelectorAll('`+detail+` tr[data-history]').length >= 2 && document.querySelectorAll('`+detail+` [data-download]').length > 0`)
	if got := strings.ToLower(b.text(detail)); !strings.Contains(got, "attempts\n1 of") || !strings.Contains(got, "progress\n100%") ||
		!strings.Contains(got, "data export") || !strings.Contains(got, "download default-insight-") {
		t.Errorf("job details %q, want 1 attempt, 100%% progress, Data export and its files", got)
	}
	href, _ := b.eval(`document.querySelector('` + detail + ` [data-download]').href`).(string)
	if resp, err := http.Get(href); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("the download link %q: %v %v", href, resp, err)
	} else {
		resp.Body.Close()
	}
	// The drill-down stays open while the list refreshes live.
	s.upload(t, "insight", insightBody(c.OrganizationID, c.ProjectID, 2))
	b.waitJS("the new upload's job", `document.querySelectorAll('#panel-jobs tr[data-job]').length === 5`)
	if got := b.count(detail + ` tr[data-history]`); got < 2 {
		t.Errorf("the job's drill-down closed on a live refresh (%d history rows)", got)
	}
	b.finish("drilldown-job.png")
}

// TestDashboardFilters: filters narrow the lists (environment, result,
// status, type, days) and pages reach past the newest 20.
func TestDashboardFilters(t *testing.T) {
	b, s, c := startDashboard(t)
	const analyses = 23
	for i := range analyses {
		s.upload(t, "insight", insightBody(c.OrganizationID, c.ProjectID, i))
	}
	staging := dashGuardianBody(c.OrganizationID, c.ProjectID, "tr-staging")
	prod := dashGuardianBody(c.OrganizationID, c.ProjectID, "tr-prod")
	prod["environment"], prod["passed"], prod["url"] = "production", false, "https://shop.example.com/"
	s.upload(t, "guardian", staging)
	s.upload(t, "guardian", prod)
	s.waitListed(t, "insight", analyses)
	s.waitListed(t, "guardian", 2)

	b.signIn(c)

	// Guardian by environment and result.
	b.run("opening the Guardian tab", chromedp.Click(chromedp.CSS("#tab-guardian")))
	articles := `document.querySelectorAll('[data-list=guardian] article').length`
	b.waitJS("both runs", articles+` === 2`)
	b.choose("#filter-guardian-environment", "production")
	b.waitJS("the production run alone", articles+` === 1 && document.querySelector('[data-list=guardian] article h3').textContent === 'https://shop.example.com/'`)
	b.screenshot("filters-guardian-production.png")
	b.choose("#filter-guardian-environment", "staging")
	b.choose("#filter-guardian-passed", "false")
	b.waitJS("no failed staging run", `!document.querySelector('[data-list=guardian]') && !!document.querySelector('#panel-guardian .note')`)
	if got := b.text("#panel-guardian .note"); got != "No Guardian test runs match these filters." {
		t.Errorf("empty filter result says %q", got)
	}

	// Insight pages: the newest 20, then the 3 older ones.
	b.run("opening the Insight tab", chromedp.Click(chromedp.CSS("#tab-insight")))
	list := `document.querySelectorAll('[data-list=insight] article').length`
	b.waitJS("the first page", list+` === 20`)
	if got := b.text(`#panel-insight .pager [data-range]`); got != "1–20 of 23" {
		t.Errorf("first page says %q", got)
	}
	b.run("going to the older page", chromedp.Click(chromedp.CSS(`#panel-insight [data-page=next]`)))
	b.waitJS("the second page", list+` === 3`)
	if got := b.text(`#panel-insight .pager [data-range]`); got != "21–23 of 23" {
		t.Errorf("second page says %q", got)
	}
	if b.eval(`document.querySelector('#panel-insight [data-page=next]').disabled`) != true {
		t.Error("Older is enabled on the last page")
	}
	b.screenshot("filters-insight-page-2.png")
	// Days: from tomorrow holds nothing, from today everything.
	tomorrow := time.Now().UTC().AddDate(0, 0, 1).Format(time.DateOnly)
	b.choose("#filter-insight-from", tomorrow)
	b.waitJS("no analysis from tomorrow", `!!document.querySelector('#panel-insight .note') && !document.querySelector('[data-list=insight]')`)
	b.choose("#filter-insight-from", time.Now().UTC().Format(time.DateOnly))
	b.waitJS("today's analyses from the first page", list+` === 20 && document.querySelector('#panel-insight .pager [data-range]').textContent === '1–20 of 23'`)

	// Jobs by type and status.
	b.run("opening the Jobs tab", chromedp.Click(chromedp.CSS("#tab-jobs")))
	rows := `document.querySelectorAll('#panel-jobs tr[data-job]').length`
	b.waitJS("the first page of jobs", rows+` === 20`)
	b.choose("#filter-jobs-type", "GUARDIAN_TEST")
	b.waitJS("the two Guardian jobs", rows+` === 2 && [...document.querySelectorAll('#panel-jobs td[data-type]')].every(td => td.textContent === 'Guardian test')`)
	b.choose("#filter-jobs-status", "FAILED")
	b.waitJS("no failed Guardian job", `!!document.querySelector('#panel-jobs .note')`)
	if got := b.text("#panel-jobs .note"); got != "No jobs match these filters." {
		t.Errorf("empty jobs filter says %q", got)
	}
	// The statistics cards still count every job, not the filtered page.
	if got := b.text(`[data-stat=total] .value`); got != strconv.Itoa(analyses+2) {
		t.Errorf("total jobs card %q, want %d", got, analyses+2)
	}
	b.screenshot("filters-jobs.png")

	// Jobs by the UTC days they were created: none from tomorrow, none up
	// to yesterday, the two Guardian jobs from today to today.
	today, yesterday := time.Now().UTC().Format(time.DateOnly), time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly)
	b.choose("#filter-jobs-status", "")
	b.choose("#filter-jobs-from", tomorrow)
	b.waitJS("no job created from tomorrow", `!!document.querySelector('#panel-jobs .note') && !document.querySelector('#panel-jobs tr[data-job]')`)
	if got := b.text("#panel-jobs .note"); got != "No jobs match these filters." {
		t.Errorf("jobs from tomorrow: %q", got)
	}
	b.choose("#filter-jobs-from", "")
	b.choose("#filter-jobs-to", yesterday)
	b.waitJS("no job created up to yesterday", `!!document.querySelector('#panel-jobs .note') && !document.querySelector('#panel-jobs tr[data-job]')`)
	b.choose("#filter-jobs-from", today)
	b.choose("#filter-jobs-to", today)
	b.waitJS("today's two Guardian jobs", rows+` === 2 && [...document.querySelectorAll('#panel-jobs td[data-type]')].every(td => td.textContent === 'Guardian test')`)
	b.finish("filters-jobs-days.png")
}
