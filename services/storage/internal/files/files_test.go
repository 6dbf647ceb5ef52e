package files

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/odavl/sync/libs/mongodb"
	"github.com/odavl/sync/libs/mongotest"
	"github.com/odavl/sync/libs/natstest"
	"github.com/odavl/sync/libs/rpc"
	"github.com/odavl/sync/services/storage/internal/blob"
)

type testBundle struct {
	dir   string
	clock *time.Time
}

func setup(t *testing.T) (*Files, testBundle) {
	t.Helper()
	nb := natstest.Start(t)
	mb := mongotest.Start(t)
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	l, err := blob.NewLocal(dir, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	h = l.Handler()
	ctx := context.Background()
	if err := l.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if err := mongodb.EnsureIndexes(ctx, mb.DB, Indexes); err != nil {
		t.Fatal(err)
	}
	f := New(slog.New(slog.NewTextHandler(io.Discard, nil)), mb.DB, l, nb.JS, Options{PendingGrace: 10 * time.Minute})
	clock := time.Now()
	f.now = func() time.Time { return clock }
	return f, testBundle{dir: dir, clock: &clock}
}

var caller = rpc.Caller{Tenant: rpc.Tenant{OrganizationID: "o1", ProjectID: "p1"}, KeyID: "key_1"}

func put(t *testing.T, method, u string, h map[string]string, body []byte) http.Header {
	t.Helper()
	req, _ := http.NewRequest(method, u, bytes.NewReader(body))
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d", method, resp.StatusCode)
	}
	return resp.Header
}

func TestCleanupSettlesPendingFiles(t *testing.T) {
	f, tb := setup(t)
	ctx := context.Background()
	body := make([]byte, 100)
	_, _ = rand.Read(body)

	// Sent but never confirmed: the cleanup confirms it, nothing is lost.
	sent, err := f.UploadURL(ctx, rpc.UploadURLRequest{Caller: caller, Filename: "a.txt", ContentType: "text/plain", Size: 100, ExpiresIn: 60})
	if err != nil {
		t.Fatal(err)
	}
	put(t, sent.Instructions.Method, sent.UploadURL, sent.Instructions.Headers, body)
	// Never sent: dropped.
	never, err := f.UploadURL(ctx, rpc.UploadURLRequest{Caller: caller, Filename: "b.txt", ContentType: "text/plain", Size: 100, ExpiresIn: 60})
	if err != nil {
		t.Fatal(err)
	}
	// A multipart upload left with one part: aborted and dropped.
	mp, err := f.MultipartInit(ctx, rpc.UploadURLRequest{Caller: caller, Filename: "c.pdf", ContentType: "application/pdf", Size: 6 << 20, ExpiresIn: 60})
	if err != nil {
		t.Fatal(err)
	}
	pu, err := f.PartURL(ctx, rpc.PartRequest{Caller: caller, FileID: mp.FileID, PartNumber: 2})
	if err != nil {
		t.Fatal(err)
	}
	put(t, pu.Method, pu.URL, pu.Headers, make([]byte, pu.Size))
	if n, _ := os.ReadDir(filepath.Join(tb.dir, "multipart")); len(n) != 1 {
		t.Fatalf("%d multipart uploads on disk; want 1", len(n))
	}

	// Within the grace period nothing happens.
	*tb.clock = tb.clock.Add(5 * time.Minute)
	if got, err := f.Cleanup(ctx); err != nil || got != (rpc.CleanupResponse{}) {
		t.Fatalf("cleanup inside the grace period: %+v, %v", got, err)
	}
	*tb.clock = tb.clock.Add(10 * time.Minute)
	got, err := f.Cleanup(ctx)
	if err != nil || got != (rpc.CleanupResponse{Confirmed: 1, Abandoned: 2}) {
		t.Fatalf("cleanup: %+v, %v; want 1 confirmed, 2 abandoned", got, err)
	}
	if r, err := f.Get(ctx, rpc.FileRequest{Caller: caller, FileID: sent.FileID}); err != nil || r.Status != rpc.FileUploaded {
		t.Errorf("the sent file: %+v, %v; want UPLOADED", r, err)
	}
	for _, id := range []string{never.FileID, mp.FileID} {
		if _, err := f.Get(ctx, rpc.FileRequest{Caller: caller, FileID: id}); rpc.StatusOf(err) != 404 {
			t.Errorf("abandoned file %s: %v; want 404", id, err)
		}
	}
	if n, _ := os.ReadDir(filepath.Join(tb.dir, "multipart")); len(n) != 0 {
		t.Errorf("%d multipart uploads left on disk; want 0 (aborted)", len(n))
	}
	if got, err := f.Cleanup(ctx); err != nil || got != (rpc.CleanupResponse{}) {
		t.Errorf("second cleanup: %+v, %v; want nothing to do", got, err)
	}
}

func TestMultipartChecksAndRefusals(t *testing.T) {
	f, _ := setup(t)
	ctx := context.Background()
	size := int64(11 << 20)
	mp, err := f.MultipartInit(ctx, rpc.UploadURLRequest{Caller: caller, Filename: "big.json", ContentType: "application/json", Size: size})
	if err != nil {
		t.Fatal(err)
	}
	other := caller
	other.KeyID = "key_2"
	if _, err := f.PartURL(ctx, rpc.PartRequest{Caller: other, FileID: mp.FileID, PartNumber: 1}); rpc.StatusOf(err) != 403 {
		t.Errorf("part URL for another key: %v; want 403", err)
	}
	var parts []rpc.CompletedPart
	for n := 1; n <= mp.Parts; n++ {
		pu, err := f.PartURL(ctx, rpc.PartRequest{Caller: caller, FileID: mp.FileID, PartNumber: n})
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, pu.Size)
		_, _ = rand.Read(b)
		h := put(t, pu.Method, pu.URL, pu.Headers, b)
		parts = append(parts, rpc.CompletedPart{PartNumber: n, ETag: h.Get("ETag")})
	}
	wrong := append([]rpc.CompletedPart(nil), parts...)
	wrong[1].ETag = `"00000000000000000000000000000000"`
	if _, err := f.MultipartComplete(ctx, rpc.PartRequest{Caller: caller, FileID: mp.FileID, Parts: wrong}); rpc.StatusOf(err) != 400 {
		t.Errorf("complete with a wrong ETag: %v; want 400", err)
	}
	dup := append([]rpc.CompletedPart(nil), parts...)
	dup[2] = dup[0]
	if _, err := f.MultipartComplete(ctx, rpc.PartRequest{Caller: caller, FileID: mp.FileID, Parts: dup}); rpc.StatusOf(err) != 400 {
		t.Errorf("complete with a part twice: %v; want 400", err)
	}
	file, err := f.MultipartComplete(ctx, rpc.PartRequest{Caller: caller, FileID: mp.FileID, Parts: parts})
	if err != nil || file.Status != rpc.FileUploaded || file.Size != size {
		t.Fatalf("complete: %+v, %v", file, err)
	}
	if _, err := f.MultipartComplete(ctx, rpc.PartRequest{Caller: caller, FileID: mp.FileID, Parts: parts}); rpc.StatusOf(err) != 409 {
		t.Errorf("second complete: %v; want 409", err)
	}
}

func TestSanitize(t *testing.T) {
	t.Parallel()
	long := string(bytes.Repeat([]byte("é"), 200))
	cases := map[string]string{
		"report.pdf":             "report.pdf",
		"../../etc/passwd":       "passwd",
		`C:\Users\me\shot 1.png`: "shot 1.png",
		"..":                     "file",
		".hidden":                "hidden",
		"a\x00b\x1fc\u202e.txt":  "abc.txt",
		`what?<script>"x".html`:  "what__script__x_.html",
		"  spaced name.txt  ":    "spaced name.txt",
		long:                     long[:254],
		"ok/":                    "file",
		"日本語のファイル.csv":           "日本語のファイル.csv",
	}
	for in, want := range cases {
		if got := sanitize(in); got != want {
			t.Errorf("sanitize(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestConcurrentDownloadURLsAreAllCounted(t *testing.T) {
	f, _ := setup(t)
	ctx := context.Background()
	body := []byte("x")
	u, err := f.UploadURL(ctx, rpc.UploadURLRequest{Caller: caller, Filename: "x.txt", ContentType: "text/plain", Size: 1, AccessLevel: rpc.AccessProject})
	if err != nil {
		t.Fatal(err)
	}
	put(t, u.Instructions.Method, u.UploadURL, u.Instructions.Headers, body)
	const n = 20
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			_, err := f.DownloadURL(ctx, rpc.FileRequest{Caller: caller, FileID: u.FileID})
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	got, err := f.Get(ctx, rpc.FileRequest{Caller: caller, FileID: u.FileID})
	if err != nil || got.DownloadCount != n {
		t.Fatalf("downloadCount %d after %d concurrent download URLs (%v)", got.DownloadCount, n, err)
	}
}
