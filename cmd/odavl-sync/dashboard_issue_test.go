package main

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/odavl/sync/services/storage/storagetest"
)

// TestDashboardDelayedJobSaysWhenItRuns: a job delayed by two minutes says
// "runs in 2 min" in the jobs table and its run time in its drill-down.
func TestDashboardDelayedJobSaysWhenItRuns(t *testing.T) {
	b, s, c := startDashboard(t)
	runAt := time.Now().Add(2*time.Minute + 10*time.Second).UTC()
	job := s.submitJob(t, map[string]any{
		"type": "EMAIL_SEND", "runAt": runAt.Format(time.RFC3339),
		"payload": map[string]any{"to": []string{"dev@example.com"}, "subject": "later", "text": "from the dashboard test"},
	}, "DELAYED")

	b.signIn(c)
	b.run("opening the Jobs tab", chromedp.Click(chromedp.CSS("#tab-jobs")))
	row := `[data-job="` + job.ID + `"]`
	b.waitJS("the delayed job", `!!document.querySelector('`+row+` [data-run-at]')`)
	if got := b.text(row + ` [data-status]`); !strings.EqualFold(got, "Delayed") {
		t.Errorf("status %q, want Delayed", got)
	}
	if got := b.text(row + ` [data-run-at]`); got != "runs in 2 min" {
		t.Errorf("the delayed job says %q, want \"runs in 2 min\"", got)
	}
	b.run("opening the job", chromedp.Click(chromedp.CSS(row+` [data-details]`)))
	detail := `tr[data-detail="` + job.ID + `"]`
	b.waitJS("its drill-down", `!!document.querySelector('`+detail+` [data-run-at]')`)
	if got := b.text(detail + ` [data-run-at]`); !strings.HasPrefix(got, "Runs in 2 min (") {
		t.Errorf("the drill-down says %q, want \"Runs in 2 min (<local time>)\"", got)
	}
	b.finish("jobs-delayed.png")
}

// TestDashboardAlertsLinkToTheirAnalysis: the Alerts tab lists the critical
// alerts with their issues, and an alert's link opens its analysis's
// drill-down in the Insight tab.
func TestDashboardAlertsLinkToTheirAnalysis(t *testing.T) {
	b, s, c := startDashboard(t)
	s.upload(t, "insight", insightBody(c.OrganizationID, c.ProjectID, 1))
	s.upload(t, "insight", insightBody(c.OrganizationID, c.ProjectID, 2))
	var alerts struct {
		Total int
		Items []struct{ UploadID string }
	}
	eventually(t, "two alerts", func() bool {
		s.Do(http.MethodGet, "/api/v1/alerts", nil).JSON(t, &alerts)
		return alerts.Total == 2
	})
	older := alerts.Items[1].UploadID

	b.signIn(c)
	b.run("opening the Alerts tab", chromedp.Click(chromedp.CSS("#tab-alerts")))
	b.waitJS("both alerts", `document.querySelectorAll('[data-list=alerts] [data-alert]').length === 2`)
	if got := b.text(`#panel-alerts > p`); got != "2 critical alerts, newest first." {
		t.Errorf("alerts heading %q", got)
	}
	first := b.text(`[data-list=alerts] [data-alert]`)
	if !strings.Contains(first, "1 critical issue") || !strings.Contains(first, "src/a.ts:3:7") || !strings.Contains(first, "Open analysis") {
		t.Errorf("first alert %q, want 1 critical issue at src/a.ts:3:7 and its link", first)
	}
	b.screenshot("alerts.png")

	b.run("following the older alert's link", chromedp.Click(chromedp.CSS(`[data-analysis="`+older+`"]`)))
	b.waitJS("its analysis open in the Insight tab", `document.getElementById('tab-insight').getAttribute('aria-selected') === 'true' &&
		document.querySelectorAll('[data-list=insight] [data-detail="`+older+`"] tr[data-issue]').length === 3`)
	if n := b.count(`[data-list=insight] [data-detail]`); n != 1 {
		t.Errorf("%d drill-downs open, want the alert's alone", n)
	}
	b.finish("alerts-to-analysis.png")
}

// pngOf is a w×h PNG of one colour.
func pngOf(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{R: 37, G: 99, B: 235, A: 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestDashboardGuardianScreenshots: a screenshot stored through the storage
// API shows as its image (loaded under the page's policy, through a signed
// download link), an http(s) one as its link.
func TestDashboardGuardianScreenshots(t *testing.T) {
	b, s, c := startDashboard(t)
	if got := dashboardImgSrc(t, c); got != "'self'" {
		t.Errorf("img-src %q with local storage, want 'self' alone", got)
	}
	guardianScreenshots(t, b, s, c.APIURL, "guardian-screenshots.png")
	b.run("narrowing the viewport", chromedp.EmulateViewport(390, 844))
	b.fits("the screenshots at 390 px")
	b.finish("guardian-screenshots-phone.png")
}

// TestDashboardGuardianScreenshotsOnS3: with serve storing files on S3
// (versitygw), the page's policy allows images from the S3 endpoint's
// origin, that one alone, and a stored screenshot loads from it.
func TestDashboardGuardianScreenshotsOnS3(t *testing.T) {
	srv := storagetest.StartS3(t)
	b := startBrowser(t)
	s := startServe(t, map[string]string{
		"STORAGE_PROVIDER": "s3", "AWS_REGION": srv.Region, "AWS_ACCESS_KEY_ID": srv.AccessKey, "AWS_SECRET_ACCESS_KEY": srv.SecretKey,
		"S3_BUCKET_NAME": "odavl-shots", "S3_ENDPOINT": srv.Endpoint, "S3_FORCE_PATH_STYLE": "true",
	})
	if got, want := dashboardImgSrc(t, s.Cred), "'self' "+srv.Endpoint; got != want {
		t.Errorf("img-src %q, want %q", got, want)
	}
	guardianScreenshots(t, b, s, srv.Endpoint, "guardian-screenshots-s3.png")
	b.noProblems()
}

// TestDashboardGuardianScreenshotsOnAzure: the same with Azure Blob
// (Azurite): the policy names the blob endpoint's origin (its path, the
// account, is no part of it).
func TestDashboardGuardianScreenshotsOnAzure(t *testing.T) {
	srv := storagetest.StartAzure(t)
	b := startBrowser(t)
	s := startServe(t, map[string]string{
		"AZURE_STORAGE_ACCOUNT_NAME": srv.Account, "AZURE_STORAGE_ACCOUNT_KEY": srv.Key,
		"AZURE_CONTAINER_NAME": "odavl-shots", "AZURE_BLOB_ENDPOINT": srv.Endpoint,
	})
	u, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	origin := u.Scheme + "://" + u.Host
	if got, want := dashboardImgSrc(t, s.Cred), "'self' "+origin; got != want {
		t.Errorf("img-src %q, want %q", got, want)
	}
	guardianScreenshots(t, b, s, origin, "guardian-screenshots-azure.png")
	b.noProblems()
}

// dashboardImgSrc is the img-src of the policy the dashboard is served with.
func dashboardImgSrc(t *testing.T, c credentials) string {
	t.Helper()
	resp, err := http.Get(c.APIURL + "/dashboard/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, d := range strings.Split(resp.Header.Get("Content-Security-Policy"), ";") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(d), "img-src "); ok {
			return v
		}
	}
	t.Fatalf("no img-src in %q", resp.Header.Get("Content-Security-Policy"))
	return ""
}

// guardianScreenshots uploads a 64×40 PNG through the storage API, names it
// and an http(s) URL in a Guardian run, and checks in the run's drill-down
// that the stored one loads as its image through a signed link of
// linkOrigin, the other shows as its link; it saves screenshot.
func guardianScreenshots(t *testing.T, b *browser, s *served, linkOrigin, screenshot string) {
	t.Helper()
	c := s.Cred
	shot := pngOf(t, 64, 40)
	u := upload(t, s, c.APIKey, c.OrganizationID, c.ProjectID, map[string]any{"filename": "home.png", "contentType": "image/png", "size": len(shot)}, shot)
	if r := s.Do(http.MethodPost, "/api/v1/storage/files/"+u.FileID+"/confirm", nil); r.Status != http.StatusOK {
		t.Fatalf("confirm: %d %s", r.Status, r.Body)
	}
	run := dashGuardianBody(c.OrganizationID, c.ProjectID, "tr-shots")
	run["screenshots"] = []string{u.FileID, "https://cdn.example.com/shots/checkout.png"}
	s.upload(t, "guardian", run)
	s.waitListed(t, "guardian", 1)

	b.signIn(c)
	b.run("opening the Guardian tab", chromedp.Click(chromedp.CSS("#tab-guardian")))
	b.waitJS("the test run", `!!document.querySelector('[data-list=guardian] article [data-details]')`)
	b.run("opening the test run", chromedp.Click(chromedp.CSS(`[data-list=guardian] article [data-details]`)))
	img := `document.querySelector('[data-detail] img[data-screenshot="` + u.FileID + `"]')`
	b.waitJS("the stored screenshot loaded", `(() => { const i = `+img+`; return !!i && i.complete && i.naturalWidth > 0 })()`)
	if got := b.eval(`(() => { const i = ` + img + `; return i.naturalWidth + 'x' + i.naturalHeight })()`); got != "64x40" {
		t.Errorf("the image is %v, want 64x40", got)
	}
	if src, _ := b.eval(img + `.currentSrc`).(string); !strings.HasPrefix(src, linkOrigin+"/") {
		t.Errorf("the image was loaded from %q, want a signed link of %s", src, linkOrigin)
	}
	if href, _ := b.eval(img + `.closest('a').href`).(string); !strings.HasPrefix(href, linkOrigin+"/") {
		t.Errorf("the image links to %q, want a signed link of %s", href, linkOrigin)
	}
	if got := b.eval(`document.querySelector('[data-detail] [data-shot="https://cdn.example.com/shots/checkout.png"] a').href`); got != "https://cdn.example.com/shots/checkout.png" {
		t.Errorf("the http(s) screenshot links to %v", got)
	}
	if got := b.text(`[data-list=guardian] [data-detail]`); !strings.Contains(got, "2 screenshots") {
		t.Errorf("guardian details %q, want 2 screenshots", got)
	}
	b.screenshot(screenshot)
}

// TestDashboardProjectSwitcher: an admin key sees its organization's
// projects in a switcher, and choosing one shows that project's results.
func TestDashboardProjectSwitcher(t *testing.T) {
	b, s, c := startDashboard(t)
	webKey := newKey(t, s, c.OrganizationID, "web")
	s.upload(t, "insight", insightBody(c.OrganizationID, c.ProjectID, 1))
	s.upload(t, "insight", insightBody(c.OrganizationID, c.ProjectID, 2))
	if r := s.DoAs(webKey, c.OrganizationID, "web", http.MethodPost, "/api/v1/sync/insight", insightBody(c.OrganizationID, "web", 3)); r.Status != http.StatusAccepted {
		t.Fatalf("web upload: %d %s", r.Status, r.Body)
	}
	s.waitListed(t, "insight", 2)
	eventually(t, "the web project's analysis", func() bool {
		var l struct{ Total int }
		s.DoAs(webKey, c.OrganizationID, "web", http.MethodGet, "/api/v1/sync/insight", nil).JSON(t, &l)
		return l.Total == 1
	})

	b.signIn(c)
	b.waitJS("the project switcher", `document.querySelectorAll('#project-switch option').length === 2`)
	if got := b.eval(`[...document.querySelectorAll('#project-switch option')].map(o => o.value).join(',') + ' ' + document.getElementById('project-switch').value`); got != "default,web "+c.ProjectID && got != "web,"+c.ProjectID+" "+c.ProjectID {
		t.Errorf("switcher %v, want %s and web with %s chosen", got, c.ProjectID, c.ProjectID)
	}
	b.run("opening the Insight tab", chromedp.Click(chromedp.CSS("#tab-insight")))
	b.waitJS("the two analyses of "+c.ProjectID, `document.querySelectorAll('[data-list=insight] article').length === 2`)
	b.screenshot("projects-switcher.png")

	b.choose("#project-switch", "web")
	b.waitJS("the web project's analysis", `document.getElementById('panel-insight').dataset.total === '1' &&
		document.querySelectorAll('[data-list=insight] article').length === 1 && document.getElementById('live').dataset.state === 'live'`)
	if got := b.text("#tenant"); !strings.HasPrefix(got, c.OrganizationID+" /") || b.eval(`document.getElementById('project-switch').value`) != "web" {
		t.Errorf("tenant shows %q with %v chosen, want web", got, b.eval(`document.getElementById('project-switch').value`))
	}
	if got := b.eval(`JSON.parse(sessionStorage.getItem('odavl.dashboard')).project`); got != "web" {
		t.Errorf("the session keeps project %v, want web", got)
	}
	b.screenshot("projects-web.png")
	b.run("narrowing the viewport", chromedp.EmulateViewport(390, 844))
	b.fits("the project switcher at 390 px")
	b.finish("projects-phone.png")
}

// TestDashboardErrorStatesAndRecovery: a key refused when the page opens
// signs out with the server's reason, and signing in again works; a list
// shows its loading state, then, while the server is down, an error box
// whose "Try again" reads it again once the server is back.
func TestDashboardErrorStatesAndRecovery(t *testing.T) {
	b, s, c := startDashboard(t)
	s.upload(t, "guardian", dashGuardianBody(c.OrganizationID, c.ProjectID, "tr-err"))
	s.waitListed(t, "guardian", 1)

	// A session whose key the server refuses (rotated since the tab
	// opened): the page signs out and says why.
	session, _ := json.Marshal(map[string]string{"key": "odavl_rotated_key", "org": c.OrganizationID, "project": c.ProjectID})
	b.run("opening the dashboard", chromedp.Navigate(c.APIURL+"/dashboard"), chromedp.WaitVisible(chromedp.CSS("#signin-form")))
	b.eval(`sessionStorage.setItem('odavl.dashboard', ` + strconv.Quote(string(session)) + `)`)
	b.run("opening it again", chromedp.Navigate(c.APIURL+"/dashboard"))
	b.waitJS("the refusal", `!document.getElementById('signin').hidden && !document.getElementById('error').hidden &&
		document.getElementById('app').hidden && sessionStorage.getItem('odavl.dashboard') === null`)
	if got := b.text("#error"); !strings.HasPrefix(got, "Your API key was refused: ") || !strings.Contains(got, "unknown or revoked API key") {
		t.Errorf("refused key says %q, want the refusal with the server's reason", got)
	}
	if got := b.eval(`document.getElementById('f-org').value + '/' + document.getElementById('f-project').value`); got != c.OrganizationID+"/"+c.ProjectID {
		t.Errorf("the form keeps %v, want the refused session's %s/%s", got, c.OrganizationID, c.ProjectID)
	}
	b.screenshot("error-key-refused.png")
	b.run("signing in with the right key",
		chromedp.SendKeys(chromedp.CSS("#f-key"), c.APIKey),
		chromedp.Click(chromedp.CSS("#signin-submit")),
		chromedp.WaitVisible(chromedp.CSS("#app")))
	b.waitJS("the live stream", `document.getElementById('live').dataset.state === 'live'`)
	if !b.eval(`document.getElementById('error').hidden`).(bool) {
		t.Errorf("the refusal still shows after signing in: %q", b.text("#error"))
	}

	// The server stops: opening a list shows its loading state at once,
	// then an error box with the reason and a way to try again.
	addr := strings.TrimPrefix(c.APIURL, "http://")
	if code := s.Stop(); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	loading, _ := b.eval(`(() => { document.getElementById('tab-guardian').click();
		const s = document.querySelector('#panel-guardian [role=status]'); return s ? s.textContent : '' })()`).(string)
	if loading != "Loading Guardian test runs…" {
		t.Errorf("the Guardian tab first shows %q, want its loading state", loading)
	}
	b.waitJS("the error box", `!!document.querySelector('#panel-guardian [role=alert] [data-reload]')`)
	if got := b.text("#panel-guardian [role=alert]"); !strings.HasPrefix(got, "Could not load Guardian test runs: The server cannot be reached") {
		t.Errorf("the error box says %q", got)
	}
	b.waitJS("the live indicator to say it is reconnecting", `document.getElementById('live').dataset.state === 'offline'`)
	b.screenshot("error-server-down.png")
	// Try again reads the list again (its loading state replaces the
	// error at once) and, the server still down, fails the same way.
	if retried, _ := b.eval(`(() => { document.querySelector('#panel-guardian [data-reload]').click();
		return !!document.querySelector('#panel-guardian .spinner') && !document.querySelector('#panel-guardian [role=alert]') })()`).(bool); !retried {
		t.Error("Try again did not read the list again")
	}
	b.waitJS("the error box again", `!!document.querySelector('#panel-guardian [role=alert] [data-reload]')`)

	// Back on the same address: Try again (or the stream, which reads the
	// open lists again when it reconnects, whichever comes first) shows the
	// run, and the stream is live again.
	s = startServeArgs(t, s.Data, nil, "--addr", addr, "--nats-listen", "127.0.0.1:0", "--log-level", "warn")
	b.eval(`(() => { const r = document.querySelector('#panel-guardian [data-reload]'); if (r) r.click(); return true })()`)
	b.waitJS("the Guardian run", `document.querySelectorAll('[data-list=guardian] article').length === 1 && !document.querySelector('#panel-guardian [role=alert]')`)
	b.waitJS("the live stream back", `document.getElementById('live').dataset.state === 'live'`)
	b.forgetProblems() // the refused requests of the outage
	b.run("opening the run", chromedp.Click(chromedp.CSS(`[data-list=guardian] article [data-details]`)))
	b.waitJS("its drill-down", `/LCP/.test((document.querySelector('[data-list=guardian] [data-detail]') || {}).innerText || '')`)
	b.finish("error-recovered.png")
}
