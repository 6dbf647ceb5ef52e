package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/odavl/sync/client"
	clicmd "github.com/odavl/sync/client/cli"
)

func randomFile(t testing.TB, dir, name string, n int) (string, []byte) {
	t.Helper()
	b := make([]byte, n)
	_, _ = rand.Read(b)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p, b
}

// download fetches a file's bytes through a fresh signed URL.
func download(t testing.TB, cl *client.Client, id string) []byte {
	t.Helper()
	d, err := cl.DownloadURL(context.Background(), id)
	if err != nil {
		t.Fatalf("download URL of %s: %v", id, err)
	}
	resp, err := http.Get(d.DownloadURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("download of %s: %d %s", id, resp.StatusCode, b)
	}
	return b
}

func newClient(t testing.TB, c credentials) *client.Client {
	t.Helper()
	cl, err := client.New(client.Config{BaseURL: c.APIURL, APIKey: c.APIKey, OrganizationID: c.OrganizationID, ProjectID: c.ProjectID})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

type uploadOut struct {
	Path    string
	FileID  string
	FileURL string
	Size    int64
	Parts   int
	Resumed int
	File    *client.File
}

func TestCLIUpload12MBMultipartResumes(t *testing.T) {
	s := startServe(t, nil)
	c := s.Cred
	px := newFaultProxy(t, c.APIURL)
	cli := newCLIFor(t, c, px.srv.URL)
	dir := t.TempDir()
	cl := newClient(t, c)

	// A small file: one signed PUT, confirmed.
	small, smallBytes := randomFile(t, dir, "notes.txt", 3000)
	var up uploadOut
	cli.mustRun("upload", small, "--json").JSON(t, &up)
	if up.Parts != 0 || up.File == nil || up.File.Status != "UPLOADED" || up.FileURL == "" {
		t.Fatalf("small upload: %+v", up)
	}
	if got := download(t, cl, up.FileID); !bytes.Equal(got, smallBytes) {
		t.Errorf("small file read back: %d bytes, want %d", len(got), len(smallBytes))
	}

	// 12 MB: three parts. The third part's URL is refused once, so the first
	// run stops after two parts; the second run sends only the third.
	big, bigBytes := randomFile(t, dir, "report.pdf", 12<<20)
	px.mu.Lock()
	px.match = func(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/api/v1/storage/multipart/") }
	px.mu.Unlock()
	px.then(nil, nil, answer(http.StatusBadRequest, nil))
	r := cli.run("upload", big, "--concurrency", "1")
	if r.Code != clicmd.ExitRejected || !strings.Contains(r.Stderr, "part 3 of 3") {
		t.Fatalf("interrupted upload: exit %d: %s", r.Code, r.Stderr)
	}
	firstRun := len(px.Seen())
	cli.mustRun("upload", big, "--json", "--concurrency", "1").JSON(t, &up)
	if up.Parts != 3 || up.Resumed != 2 || up.Size != 12<<20 || up.File == nil || up.File.Status != "UPLOADED" {
		t.Fatalf("resumed upload: %+v", up)
	}
	second := px.Seen()[firstRun:]
	if len(second) != 2 || !strings.HasSuffix(second[0], "/parts/3") || !strings.HasSuffix(second[1], "/complete") {
		t.Errorf("the resumed upload asked for %v, want part 3 and complete only", second)
	}
	if got := download(t, cl, up.FileID); !bytes.Equal(got, bigBytes) {
		t.Errorf("12 MB file read back: %d bytes, differs", len(got))
	}
	// Nothing of the finished upload is kept for resuming.
	if left, _ := filepath.Glob(filepath.Join(cli.spool, "uploads", "*.json")); len(left) != 0 {
		t.Errorf("resume state left behind: %v", left)
	}

	// A type the server does not take: rejected with the field named.
	bin, _ := randomFile(t, dir, "blob.bin", 100)
	r = cli.run("upload", bin)
	if r.Code != clicmd.ExitRejected || !strings.Contains(r.Stderr, "contentType") {
		t.Errorf("upload of a .bin: exit %d: %s", r.Code, r.Stderr)
	}
}

func TestCLIPushGuardianWithScreenshots(t *testing.T) {
	s := startServe(t, nil)
	c := s.Cred
	cred := filepath.Join(s.Data, credentialsFile)
	cli := newCLI(t, nil)
	dir := t.TempDir()
	shots := filepath.Join(dir, "shots")
	if err := os.Mkdir(shots, 0o700); err != nil {
		t.Fatal(err)
	}
	png := append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 2000)...)
	want := map[string][]byte{}
	for _, n := range []string{"home.png", "checkout.png", "cart.png"} {
		b := append(append([]byte(nil), png...), n...)
		want[n] = b
		if err := os.WriteFile(filepath.Join(shots, n), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_ = os.WriteFile(filepath.Join(shots, "README"), []byte("not an image"), 0o600)
	body := guardianBody(c.OrganizationID, c.ProjectID, "tr-shots", "production", true)
	delete(body, "screenshots")
	run := writeJSON(t, dir, "run.json", body)

	var p struct {
		pushOut
		Screenshots []uploadOut
	}
	cli.mustRun("push", "guardian", run, "--screenshots", shots, "--credentials", cred, "--json", "--wait").JSON(t, &p)
	if p.Status == nil || p.Status.State != client.StateStored || len(p.Screenshots) != 3 {
		t.Fatalf("push with screenshots: %+v", p)
	}
	cl := newClient(t, c)
	raw, err := cl.Get(context.Background(), client.Guardian, p.Receipt.EventID)
	if err != nil {
		t.Fatal(err)
	}
	var stored client.GuardianRun
	if err := json.Unmarshal(raw, &stored); err != nil {
		t.Fatal(err)
	}
	if len(stored.Screenshots) != 3 {
		t.Fatalf("stored run references %v", stored.Screenshots)
	}
	for i, sh := range p.Screenshots {
		if stored.Screenshots[i] != sh.FileID {
			t.Errorf("screenshot %d referenced as %s, uploaded as %s", i, stored.Screenshots[i], sh.FileID)
		}
		if got := download(t, cl, sh.FileID); !bytes.Equal(got, want[filepath.Base(sh.Path)]) {
			t.Errorf("%s read back differs", sh.Path)
		}
		if sh.File == nil || sh.File.ContentType != "image/png" {
			t.Errorf("%s stored as %+v", sh.Path, sh.File)
		}
	}
}

func TestCLISpooledGuardianKeepsItsScreenshots(t *testing.T) {
	s := startServe(t, nil)
	c := s.Cred
	cred := filepath.Join(s.Data, credentialsFile)
	cli := newCLI(t, nil)
	dir := t.TempDir()
	shots := filepath.Join(dir, "shots")
	if err := os.Mkdir(shots, 0o700); err != nil {
		t.Fatal(err)
	}
	png := append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 500)...)
	for _, n := range []string{"a.png", "b.png"} {
		if err := os.WriteFile(filepath.Join(shots, n), append(append([]byte(nil), png...), n...), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	body := guardianBody(c.OrganizationID, c.ProjectID, "tr-offline", "staging", false)
	delete(body, "screenshots")
	run := writeJSON(t, dir, "run.json", body)

	s.Stop()
	r := cli.run("push", "guardian", run, "--screenshots", shots, "--credentials", cred, "--retries", "2")
	if r.Code != clicmd.ExitOK || !strings.Contains(r.Stderr, "spooled") {
		t.Fatalf("push with the server down: exit %d: %s", r.Code, r.Stderr)
	}
	// The CI job's workspace is gone by the time the server is back.
	if err := os.RemoveAll(shots); err != nil {
		t.Fatal(err)
	}
	s2 := startServeOn(t, s.Data, nil)
	var fr clicmd.FlushReport
	cli.mustRun("spool", "flush", "--credentials", cred, "--json").JSON(t, &fr)
	if fr.Delivered != 1 {
		t.Fatalf("flush: %+v", fr)
	}
	cl := newClient(t, s2.Cred)
	var l client.ResultList
	eventually(t, "the run stored", func() bool {
		got, err := cl.List(context.Background(), client.Guardian, client.ListOptions{})
		if err == nil {
			l = *got
		}
		return err == nil && l.Total == 1
	})
	var stored client.GuardianRun
	if err := json.Unmarshal(l.Items[0], &stored); err != nil {
		t.Fatal(err)
	}
	if len(stored.Screenshots) != 2 {
		t.Fatalf("the spooled run references %v, want its 2 screenshots", stored.Screenshots)
	}
	files, err := cl.ListFiles(context.Background(), client.FileListOptions{Status: "UPLOADED"})
	if err != nil || files.Total != 2 {
		t.Errorf("files: %+v %v", files, err)
	}
	if left, _ := filepath.Glob(filepath.Join(cli.spool, "files", "*")); len(left) != 0 {
		t.Errorf("spooled screenshot copies left after delivery: %v", left)
	}
}

func TestCLIGuardianTakenAsServerStopsIsReplayedNotConflicting(t *testing.T) {
	s := startServe(t, nil)
	c := s.Cred
	px := newFaultProxy(t, c.APIURL)
	cli := newCLIFor(t, c, px.srv.URL)
	dir := t.TempDir()
	shots := filepath.Join(dir, "shots")
	_ = os.Mkdir(shots, 0o700)
	if err := os.WriteFile(filepath.Join(shots, "home.png"), append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 300)...), 0o600); err != nil {
		t.Fatal(err)
	}
	body := guardianBody(c.OrganizationID, c.ProjectID, "tr-taken", "staging", true)
	delete(body, "screenshots")
	run := writeJSON(t, dir, "run.json", body)
	// The screenshots go up; the server takes the run and stops before answering.
	px.then(func(w http.ResponseWriter, r *http.Request, forward func(http.ResponseWriter)) {
		forward(httptest.NewRecorder())
		s.Stop()
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
	})
	r := cli.run("push", "guardian", run, "--screenshots", shots, "--retries", "2")
	if r.Code != clicmd.ExitOK || !strings.Contains(r.Stderr, "spooled") {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	s2 := startServeOn(t, s.Data, nil)
	px.retarget(t, s2.Cred.APIURL)
	var fr clicmd.FlushReport
	if r := cli.run("spool", "flush", "--json"); r.Code != 0 {
		t.Fatalf("flush: exit %d %s %s", r.Code, r.Stdout, r.Stderr)
	} else {
		r.JSON(t, &fr)
	}
	if fr.Delivered != 1 || fr.Rejected != 0 {
		t.Fatalf("flush: %+v", fr)
	}
	cl := newClient(t, s2.Cred)
	var l *client.ResultList
	eventually(t, "the run stored", func() bool {
		var err error
		l, err = cl.List(context.Background(), client.Guardian, client.ListOptions{})
		return err == nil && l.Total >= 1
	})
	files, _ := cl.ListFiles(context.Background(), client.FileListOptions{})
	if l.Total != 1 || files == nil || files.Total != 1 {
		t.Errorf("%d runs and %+v files stored, want one of each", l.Total, files)
	}
}
