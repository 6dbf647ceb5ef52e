package main

import (
	"bytes"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/odavl/sync/libs/rpc"
)

// rawField is the text of the string field name of a raw JSON answer, as a
// user copies it from curl's output: not decoded, escapes and all.
func rawField(t *testing.T, body []byte, name string) string {
	t.Helper()
	m := regexp.MustCompile(`"` + name + `":\s*"([^"]*)"`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no %q in %s", name, body)
	}
	return string(m[1])
}

// A signed URL copied from the raw text of a JSON answer works: the answer
// writes & as it is, not \u0026 (which the store refuses with 403).
func TestSignedURLsCopiedFromTheRawAnswerWork(t *testing.T) {
	s := startServe(t, nil)
	k := s.contract()
	content := []byte("notes: <b> & co")
	r := k.do(t, s, http.MethodPost, "/api/v1/storage/upload-url", map[string]any{"filename": "notes.txt", "contentType": "text/plain", "size": len(content), "accessLevel": "PROJECT"})
	if r.Status != http.StatusCreated {
		t.Fatalf("upload-url: %d %s", r.Status, r.Body)
	}
	var u rpc.UploadURLResponse
	r.JSON(t, &u)
	copied := rawField(t, r.Body, "uploadUrl")
	if bytes.Contains(r.Body, []byte(`\u0026`)) || !strings.Contains(copied, "&") {
		t.Errorf("the raw answer escapes the URL's &: %s", r.Body)
	}
	if copied != u.UploadURL {
		t.Errorf("the URL copied from the raw answer is %q; decoded it is %q", copied, u.UploadURL)
	}
	if st, _, b := blobDo(t, u.Instructions.Method, copied, u.Instructions.Headers, content); st != http.StatusOK {
		t.Fatalf("PUT to the URL copied from the raw answer: %d %s", st, b)
	}
	if r := k.do(t, s, http.MethodPost, "/api/v1/storage/files/"+u.FileID+"/confirm", nil); r.Status != http.StatusOK {
		t.Fatalf("confirm: %d %s", r.Status, r.Body)
	}

	r = k.do(t, s, http.MethodGet, "/api/v1/storage/upload-url?fileId="+u.FileID, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("download URL: %d %s", r.Status, r.Body)
	}
	copied = rawField(t, r.Body, "downloadUrl")
	if bytes.Contains(r.Body, []byte(`\u0026`)) || !strings.Contains(copied, "&") {
		t.Errorf("the raw answer escapes the URL's &: %s", r.Body)
	}
	st, _, got := blobDo(t, http.MethodGet, copied, nil, nil)
	if st != http.StatusOK || !bytes.Equal(got, content) {
		t.Fatalf("GET of the URL copied from the raw answer: %d %q; want 200 %q", st, got, content)
	}
}

// A result read back (one, a page, the receipt) carries the uploaded URL
// as it was sent: & as it is, in the raw text too.
func TestResultsReadBackKeepURLsLiteral(t *testing.T) {
	s := startServe(t, nil)
	c := s.Cred
	const page = "https://example.com/checkout?step=2&cart=9"
	body := guardianBody(c.OrganizationID, c.ProjectID, "tr-amp", "staging", true)
	body["url"] = page
	body["screenshots"] = []string{"https://cdn.example.com/shot.png?w=800&h=600"}
	r := s.Do(http.MethodPost, "/api/v1/sync/guardian", body)
	var rc receiptBody
	r.JSON(t, &rc)
	if r.Status != http.StatusAccepted {
		t.Fatalf("upload: %d %s", r.Status, r.Body)
	}
	resultURL := s.stored(rc)
	for _, path := range []string{resultURL, "/api/v1/sync/guardian", "/api/v1/sync/guardian?environment=staging"} {
		r := s.Do(http.MethodGet, path, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, r.Status, r.Body)
		}
		if got := rawField(t, r.Body, "url"); got != page || bytes.Contains(r.Body, []byte(`\u0026`)) {
			t.Errorf("GET %s: url %q in the raw answer, want %q: %.400s", path, got, page, r.Body)
		}
	}
}
