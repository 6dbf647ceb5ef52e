package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/odavl/sync/libs/events"
	"github.com/odavl/sync/libs/rpc"
	"github.com/odavl/sync/services/storage/storagetest"
)

// blobDo sends a request straight to a signed URL, as a CLI would.
func blobDo(t *testing.T, method, u string, headers map[string]string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	a := storagetest.Send(t, method, u, headers, body)
	return a.Status, a.Header, a.Body
}

func random(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// fileEvents collects the file events of the serve's STORAGE stream.
type fileEvents struct {
	mu  sync.Mutex
	evs []events.Event
}

func (f *fileEvents) kinds(fileID string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, e := range f.evs {
		var d events.FileChanged
		if e.DataAs(&d) == nil && d.FileID == fileID {
			out = append(out, d.Kind)
		}
	}
	return out
}

var natsURLRE = regexp.MustCompile(`NATS: (nats://\S+)`)

func watchFiles(t *testing.T, s *served) *fileEvents {
	t.Helper()
	m := natsURLRE.FindStringSubmatch(s.out.String())
	if m == nil {
		t.Fatalf("no NATS URL in serve's welcome:\n%s", s.out.String())
	}
	nc, err := nats.Connect(m[1])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	cons, err := js.OrderedConsumer(context.Background(), events.StreamStorage, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.AllFiles}})
	if err != nil {
		t.Fatal(err)
	}
	fe := &fileEvents{}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		ev, err := events.Decode(msg.Data())
		var d events.FileChanged
		if err == nil {
			err = ev.DataAs(&d)
		}
		if err != nil || ev.Type != events.TypeFileEvent || ev.Subject != d.FileID ||
			msg.Subject() != events.FileEventSubject(d.OrganizationID, d.ProjectID, d.Kind) {
			t.Errorf("bad file event on %s: %s (%v)", msg.Subject(), msg.Data(), err)
			return
		}
		fe.mu.Lock()
		fe.evs = append(fe.evs, ev)
		fe.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return fe
}

// upload asks for an upload URL and sends body through it.
func upload(t *testing.T, s *served, key, org, project string, req map[string]any, body []byte) rpc.UploadURLResponse {
	t.Helper()
	r := s.DoAs(key, org, project, http.MethodPost, "/api/v1/storage/upload-url", req)
	if r.Status != http.StatusCreated {
		t.Fatalf("upload-url: %d %s", r.Status, r.Body)
	}
	var u rpc.UploadURLResponse
	r.JSON(t, &u)
	if st, _, b := blobDo(t, u.Instructions.Method, u.UploadURL, u.Instructions.Headers, body); st/100 != 2 {
		t.Fatalf("upload through the signed URL: %d %s", st, b)
	}
	return u
}

func getFile(t *testing.T, s *served, id string) (int, rpc.File) {
	t.Helper()
	r := s.Do(http.MethodGet, "/api/v1/storage/files/"+id, nil)
	var f rpc.File
	if r.Status == http.StatusOK {
		r.JSON(t, &f)
	}
	return r.Status, f
}

// storageRoundTrip is what every provider must do through serve: a file pending
// until its bytes are there, confirmed, downloaded and counted, a
// multipart upload of 12 MB, refusals, deletion.
func storageRoundTrip(t *testing.T, s *served, provider string) {
	c := s.Cred
	fe := watchFiles(t, s)
	body := random(2048)
	r := s.Do(http.MethodPost, "/api/v1/storage/upload-url", map[string]any{"filename": "../../shots/home page.png", "contentType": "image/png", "size": len(body), "accessLevel": "PROJECT"})
	if r.Status != http.StatusCreated {
		t.Fatalf("upload-url: %d %s", r.Status, r.Body)
	}
	var u rpc.UploadURLResponse
	r.JSON(t, &u)
	if !strings.HasPrefix(u.UploadURL, "http://") || u.FileID == "" || u.Instructions.Method != http.MethodPut || u.Instructions.Headers["Content-Type"] != "image/png" {
		t.Fatalf("upload-url answer: %s", r.Body)
	}
	if d := time.Until(u.ExpiresAt); d < 59*time.Minute || d > 61*time.Minute {
		t.Errorf("expiresAt %v is not an hour away", u.ExpiresAt)
	}

	// Pending, and nothing to download, until the bytes are there.
	var l rpc.ListFilesResponse
	s.Do(http.MethodGet, "/api/v1/storage/files", nil).JSON(t, &l)
	if l.Total != 1 || l.Items[0].Status != rpc.FilePending || l.Items[0].Name != "home page.png" || l.Items[0].OriginalName != "../../shots/home page.png" {
		t.Fatalf("list before the bytes: %+v", l)
	}
	if r := s.Do(http.MethodPost, "/api/v1/storage/files/"+u.FileID+"/confirm", nil); r.Status != http.StatusConflict {
		t.Fatalf("confirm before the bytes: %d %s; want 409", r.Status, r.Body)
	}
	if r := s.Do(http.MethodGet, "/api/v1/storage/upload-url?fileId="+u.FileID, nil); r.Status != http.StatusConflict {
		t.Fatalf("download URL before the bytes: %d %s; want 409", r.Status, r.Body)
	}
	if st, f := getFile(t, s, u.FileID); st != 200 || f.Status != rpc.FilePending {
		t.Fatalf("file before the bytes: %d %+v", st, f)
	}

	// Refused by the store: tampered, other content type.
	tampered := strings.Replace(strings.Replace(u.UploadURL, "Signature=", "Signature=0", 1), "sig=", "sig=A", 1)
	if tampered == u.UploadURL {
		t.Fatalf("no signature in %s", u.UploadURL)
	}
	if st, _, _ := blobDo(t, "PUT", tampered, u.Instructions.Headers, body); st != 403 {
		t.Errorf("tampered upload URL: %d; want 403", st)
	}
	if st, _ := getFile(t, s, u.FileID); st != 200 {
		t.Fatalf("file after a refused upload: %d", st)
	}
	if r := s.Do(http.MethodPost, "/api/v1/storage/files/"+u.FileID+"/confirm", nil); r.Status != http.StatusConflict {
		t.Fatalf("confirm after a refused upload: %d %s; want 409", r.Status, r.Body)
	}
	h := map[string]string{}
	for k, v := range u.Instructions.Headers {
		h[k] = v
	}
	h["Content-Type"] = "text/html"
	st, _, _ := blobDo(t, "PUT", u.UploadURL, h, body)
	if provider == "azure" {
		// A SAS cannot bind the type: the confirmation refuses the object and deletes it.
		if st/100 != 2 {
			t.Fatalf("azure upload: %d", st)
		}
		if r := s.Do(http.MethodPost, "/api/v1/storage/files/"+u.FileID+"/confirm", nil); r.Status != http.StatusUnprocessableEntity {
			t.Fatalf("confirm of an object of another type: %d %s; want 422", r.Status, r.Body)
		}
	} else if st != 403 {
		t.Fatalf("upload of another content type: %d; want 403", st)
	}

	if st, _, b := blobDo(t, u.Instructions.Method, u.UploadURL, u.Instructions.Headers, body); st/100 != 2 {
		t.Fatalf("upload: %d %s", st, b)
	}
	r = s.Do(http.MethodPost, "/api/v1/storage/files/"+u.FileID+"/confirm", nil)
	var f rpc.File
	r.JSON(t, &f)
	if r.Status != 200 || f.Status != rpc.FileUploaded || f.UploadedAt == nil || f.Size != 2048 {
		t.Fatalf("confirm: %d %s", r.Status, r.Body)
	}
	eventually(t, "the uploaded event", func() bool { return len(fe.kinds(u.FileID)) == 1 })

	// Download, counted each time a URL is issued.
	for i := 1; i <= 2; i++ {
		r = s.Do(http.MethodGet, "/api/v1/storage/upload-url?fileId="+u.FileID+"&expiresIn=120", nil)
		var d rpc.DownloadURLResponse
		r.JSON(t, &d)
		if r.Status != 200 || d.DownloadURL == "" {
			t.Fatalf("download URL: %d %s", r.Status, r.Body)
		}
		st, hdr, got := blobDo(t, "GET", d.DownloadURL, nil, nil)
		if st != 200 || !bytes.Equal(got, body) || hdr.Get("Content-Type") != "image/png" {
			t.Fatalf("download: %d, %d bytes, %q", st, len(got), hdr.Get("Content-Type"))
		}
		if cd := hdr.Get("Content-Disposition"); !strings.Contains(cd, `filename="home page.png"`) {
			t.Errorf("Content-Disposition %q", cd)
		}
		if st, _, _ := blobDo(t, "PUT", d.DownloadURL, map[string]string{"Content-Type": "image/png", "X-Ms-Blob-Type": "BlockBlob"}, body); st != 403 {
			t.Errorf("PUT through a download URL: %d; want 403", st)
		}
		_, f = getFile(t, s, u.FileID)
		if f.DownloadCount != int64(i) {
			t.Fatalf("downloadCount %d after %d download URLs", f.DownloadCount, i)
		}
		if provider == "local" && f.Downloads != int64(i) {
			t.Errorf("downloads %d after %d served", f.Downloads, i)
		}
	}
	// fileUrl is permanent: it redirects to a fresh signed URL.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("GET", u.FileURL, nil)
	req.Header.Set("Authorization", "Bearer "+c.APIKey)
	req.Header.Set("X-Organization-Id", c.OrganizationID)
	req.Header.Set("X-Project-Id", c.ProjectID)
	resp, err := noRedirect.Do(req)
	if err != nil || resp.StatusCode != http.StatusFound || resp.Header.Get("Location") == "" {
		t.Fatalf("fileUrl %s: %v %v", u.FileURL, resp, err)
	}
	resp.Body.Close()

	// Multipart, 12 MB in three parts.
	big := random(12 << 20)
	r = s.Do(http.MethodPost, "/api/v1/storage/multipart", map[string]any{"filename": "report.pdf", "contentType": "application/pdf", "size": len(big)})
	var mp rpc.MultipartResponse
	r.JSON(t, &mp)
	if r.Status != http.StatusCreated || mp.Parts != 3 || mp.PartSize != 5<<20 {
		t.Fatalf("multipart: %d %s", r.Status, r.Body)
	}
	var parts []rpc.CompletedPart
	for n := 1; n <= mp.Parts; n++ {
		r = s.Do(http.MethodPost, fmt.Sprintf("/api/v1/storage/multipart/%s/parts/%d", mp.FileID, n), nil)
		var pu rpc.PartURLResponse
		r.JSON(t, &pu)
		if r.Status != 200 {
			t.Fatalf("part URL %d: %d %s", n, r.Status, r.Body)
		}
		chunk := big[(n-1)*(5<<20) : min(n*(5<<20), len(big))]
		if pu.Size != int64(len(chunk)) {
			t.Fatalf("part %d size %d, want %d", n, pu.Size, len(chunk))
		}
		st, hdr, b := blobDo(t, pu.Method, pu.URL, pu.Headers, chunk)
		if st/100 != 2 {
			t.Fatalf("part %d: %d %s", n, st, b)
		}
		parts = append(parts, rpc.CompletedPart{PartNumber: n, ETag: hdr.Get("ETag")})
	}
	if r := s.Do(http.MethodPost, "/api/v1/storage/multipart/"+mp.FileID+"/parts/4", nil); r.Status != 400 {
		t.Errorf("part 4 of 3: %d; want 400", r.Status)
	}
	if r := s.Do(http.MethodPost, "/api/v1/storage/multipart/"+mp.FileID+"/complete", map[string]any{"parts": parts[:2]}); r.Status != 400 {
		t.Errorf("complete with 2 of 3 parts: %d %s; want 400", r.Status, r.Body)
	}
	r = s.Do(http.MethodPost, "/api/v1/storage/multipart/"+mp.FileID+"/complete", map[string]any{"parts": parts})
	r.JSON(t, &f)
	if r.Status != 200 || f.Status != rpc.FileUploaded || f.Size != int64(len(big)) {
		t.Fatalf("complete: %d %s", r.Status, r.Body)
	}
	r = s.Do(http.MethodGet, "/api/v1/storage/upload-url?fileId="+mp.FileID, nil)
	var d rpc.DownloadURLResponse
	r.JSON(t, &d)
	if st, _, got := blobDo(t, "GET", d.DownloadURL, nil, nil); st != 200 || !bytes.Equal(got, big) {
		t.Fatalf("download of the multipart file: %d, %d bytes", st, len(got))
	}

	// Stats: count and bytes by content type.
	var stats rpc.StorageStatsResponse
	s.Do(http.MethodGet, "/api/v1/storage/stats", nil).JSON(t, &stats)
	if stats.TotalFiles != 2 || stats.TotalBytes != int64(2048+len(big)) ||
		stats.ByContentType["image/png"] != (rpc.ContentStats{Files: 1, Bytes: 2048}) ||
		stats.ByContentType["application/pdf"] != (rpc.ContentStats{Files: 1, Bytes: int64(len(big))}) {
		t.Errorf("stats = %+v", stats)
	}

	// Delete: gone from the records and the store.
	if r := s.Do(http.MethodDelete, "/api/v1/storage/files/"+u.FileID, nil); r.Status != 200 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	if st, _ := getFile(t, s, u.FileID); st != 404 {
		t.Errorf("file after delete: %d; want 404", st)
	}
	if st, _, _ := blobDo(t, "GET", d.DownloadURL, nil, nil); st != 200 {
		t.Errorf("the other file after a delete: %d", st)
	}
	eventually(t, "the deleted event", func() bool { k := fe.kinds(u.FileID); return len(k) == 2 && k[1] == "deleted" })
}

func TestStorageLocal(t *testing.T) {
	s := startServe(t, nil)
	storageRoundTrip(t, s, "local")
	var l rpc.ListFilesResponse
	s.Do(http.MethodGet, "/api/v1/storage/files?status=UPLOADED", nil).JSON(t, &l)
	if l.Total != 1 {
		t.Fatalf("uploaded files: %+v", l)
	}
	if _, err := os.Stat(filepath.Join(s.Data, "blobs", "objects", s.Cred.OrganizationID, s.Cred.ProjectID, l.Items[0].ID)); err != nil {
		t.Errorf("the blob is not under the data directory: %v", err)
	}
	fi, err := os.Stat(filepath.Join(s.Data, "blobs", "signing.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("signing key: %v %v; want mode 0600", fi, err)
	}
}

func TestStorageS3(t *testing.T) {
	srv := storagetest.StartS3(t)
	s := startServe(t, map[string]string{
		"STORAGE_PROVIDER": "s3", "AWS_REGION": srv.Region, "AWS_ACCESS_KEY_ID": srv.AccessKey, "AWS_SECRET_ACCESS_KEY": srv.SecretKey,
		"S3_BUCKET_NAME": "odavl-e2e", "S3_ENDPOINT": srv.Endpoint, "S3_FORCE_PATH_STYLE": "true",
	})
	storageRoundTrip(t, s, "s3")
}

func TestStorageAzure(t *testing.T) {
	srv := storagetest.StartAzure(t)
	// No STORAGE_PROVIDER: the Azure variables select it.
	s := startServe(t, map[string]string{
		"AZURE_STORAGE_ACCOUNT_NAME": srv.Account, "AZURE_STORAGE_ACCOUNT_KEY": srv.Key,
		"AZURE_CONTAINER_NAME": "odavl-e2e", "AZURE_BLOB_ENDPOINT": srv.Endpoint,
	})
	storageRoundTrip(t, s, "azure")
}

func newKey(t *testing.T, s *served, org, project string) string {
	t.Helper()
	r := s.Do(http.MethodPost, "/api/v1/admin/keys", map[string]any{"organizationId": org, "projectId": project, "name": "t", "scopes": []string{"sync"}})
	if r.Status != http.StatusCreated {
		t.Fatalf("creating a key: %d %s", r.Status, r.Body)
	}
	var k struct{ Key string }
	r.JSON(t, &k)
	return k.Key
}

func TestStorageAccessLevels(t *testing.T) {
	s := startServe(t, nil)
	c := s.Cred
	type who struct{ key, org, project string }
	uploader := who{c.APIKey, c.OrganizationID, c.ProjectID}
	sameProject := who{newKey(t, s, c.OrganizationID, c.ProjectID), c.OrganizationID, c.ProjectID}
	otherProject := who{newKey(t, s, c.OrganizationID, "other-project"), c.OrganizationID, "other-project"}
	otherOrg := who{newKey(t, s, "other-org", "p1"), "other-org", "p1"}
	callers := []who{uploader, sameProject, otherProject, otherOrg}
	// Another project or organization gets an unknown id's 404 for a file it
	// may not read; only a key of the file's own project learns it is there.
	want := map[string][4]int{
		"PRIVATE":      {200, 403, 404, 404},
		"PROJECT":      {200, 200, 404, 404},
		"ORGANIZATION": {200, 200, 200, 404},
		"PUBLIC":       {200, 200, 200, 200},
	}
	for level, codes := range want {
		body := []byte("hello " + level)
		u := upload(t, s, c.APIKey, c.OrganizationID, c.ProjectID, map[string]any{"filename": level + ".txt", "contentType": "text/plain", "size": len(body), "accessLevel": level}, body)
		allowed := int64(0)
		for i, w := range callers {
			r := s.DoAs(w.key, w.org, w.project, http.MethodGet, "/api/v1/storage/upload-url?fileId="+u.FileID, nil)
			if r.Status != codes[i] {
				t.Errorf("%s file, caller %d: %d %s; want %d", level, i, r.Status, r.Body, codes[i])
				continue
			}
			if r.Status == 200 {
				allowed++
				var d rpc.DownloadURLResponse
				r.JSON(t, &d)
				if st, _, got := blobDo(t, "GET", d.DownloadURL, nil, nil); st != 200 || !bytes.Equal(got, body) {
					t.Errorf("%s file, caller %d: download %d %q", level, i, st, got)
				}
			} else if !strings.Contains(r.Header.Get("Content-Type"), "application/problem+json") {
				t.Errorf("refusal is %q, not problem+json", r.Header.Get("Content-Type"))
			}
		}
		if _, f := getFile(t, s, u.FileID); f.DownloadCount != allowed {
			t.Errorf("%s file: downloadCount %d; want %d (refusals do not count)", level, f.DownloadCount, allowed)
		}
		// The permanent link of a PUBLIC file needs no key; of any other, a key.
		publicLink := c.APIURL + "/public/files/" + u.FileID
		st, _, got := blobDo(t, "GET", publicLink, nil, nil)
		if level == "PUBLIC" {
			if u.FileURL != publicLink || st != 200 || !bytes.Equal(got, body) {
				t.Errorf("PUBLIC file: fileUrl %s, keyless GET %d %q", u.FileURL, st, got)
			}
		} else {
			if st != 404 {
				t.Errorf("%s file through the public link: %d; want 404", level, st)
			}
			if st, _, _ := blobDo(t, "GET", u.FileURL, nil, nil); st != 401 {
				t.Errorf("%s file's fileUrl without a key: %d; want 401", level, st)
			}
		}
	}
	// A PRIVATE file: another key of the project can neither download nor delete it.
	body := []byte("secret")
	u := upload(t, s, c.APIKey, c.OrganizationID, c.ProjectID, map[string]any{"filename": "s.txt", "contentType": "text/plain", "size": len(body)}, body)
	if r := s.DoAs(sameProject.key, sameProject.org, sameProject.project, http.MethodDelete, "/api/v1/storage/files/"+u.FileID, nil); r.Status != 403 {
		t.Errorf("delete of a PRIVATE file by another key: %d; want 403", r.Status)
	}
	if r := s.DoAs(otherOrg.key, otherOrg.org, otherOrg.project, http.MethodGet, "/api/v1/storage/files/"+u.FileID, nil); r.Status != 404 {
		t.Errorf("another organization reads the record: %d; want 404", r.Status)
	}
}

func TestStorageRefusesBadRequests(t *testing.T) {
	s := startServe(t, nil)
	ok := map[string]any{"filename": "a.png", "contentType": "image/png", "size": 10}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for kk, vv := range ok {
			m[kk] = vv
		}
		m[k] = v
		return m
	}
	cases := []struct {
		name  string
		body  any
		field string
	}{
		{"too large", with("size", 100<<20+1), "size"},
		{"empty", with("size", 0), "size"},
		{"svg", with("contentType", "image/svg+xml"), "contentType"},
		{"html", with("contentType", "text/html"), "contentType"},
		{"no name", with("filename", ""), "filename"},
		{"long name", with("filename", strings.Repeat("a", 256)), "filename"},
		{"short expiry", with("expiresIn", 59), "expiresIn"},
		{"long expiry", with("expiresIn", 3601), "expiresIn"},
		{"access level", with("accessLevel", "WORLD"), "accessLevel"},
		{"generated from a client", with("generated", true), ""},
	}
	for _, c := range cases {
		r := s.Do(http.MethodPost, "/api/v1/storage/upload-url", c.body)
		if r.Status != 400 || !strings.Contains(r.Header.Get("Content-Type"), "application/problem+json") {
			t.Errorf("%s: %d %s; want 400 problem+json", c.name, r.Status, r.Body)
			continue
		}
		if c.field != "" && !strings.Contains(string(r.Body), `"field":"`+c.field+`"`) {
			t.Errorf("%s: %s does not name %s", c.name, r.Body, c.field)
		}
	}
	if r := s.Do(http.MethodPost, "/api/v1/storage/multipart", with("size", 1000)); r.Status != 400 {
		t.Errorf("multipart of a small file: %d; want 400", r.Status)
	}
	var l rpc.ListFilesResponse
	s.Do(http.MethodGet, "/api/v1/storage/files", nil).JSON(t, &l)
	if l.Total != 0 {
		t.Errorf("refused requests left %d records", l.Total)
	}
	if r := s.Do(http.MethodGet, "/api/v1/storage/upload-url?fileId=nope", nil); r.Status != 400 {
		t.Errorf("bad file id: %d; want 400", r.Status)
	}
	if r := s.Do(http.MethodGet, "/api/v1/storage/upload-url?fileId=file_00000000000000000000000000000000", nil); r.Status != 404 {
		t.Errorf("unknown file id: %d; want 404", r.Status)
	}
	if r := s.DoAs("", "", "", http.MethodPost, "/api/v1/storage/upload-url", ok); r.Status != 401 {
		t.Errorf("no key: %d; want 401", r.Status)
	}
}

func TestStorageCleanupRemovesExpiredFiles(t *testing.T) {
	s := startServe(t, map[string]string{"STORAGE_CLEANUP_INTERVAL": "100ms"})
	fe := watchFiles(t, s)
	c := s.Cred
	body := []byte(`{"a":1}`)
	keep := upload(t, s, c.APIKey, c.OrganizationID, c.ProjectID, map[string]any{"filename": "keep.json", "contentType": "application/json", "size": len(body)}, body)
	u := upload(t, s, c.APIKey, c.OrganizationID, c.ProjectID, map[string]any{"filename": "tmp.json", "contentType": "application/json", "size": len(body), "retainFor": 2}, body)
	for _, id := range []string{keep.FileID, u.FileID} {
		if r := s.Do(http.MethodPost, "/api/v1/storage/files/"+id+"/confirm", nil); r.Status != 200 {
			t.Fatalf("confirm: %d %s", r.Status, r.Body)
		}
	}
	r := s.Do(http.MethodGet, "/api/v1/storage/upload-url?fileId="+u.FileID, nil)
	var d rpc.DownloadURLResponse
	r.JSON(t, &d)
	blobPath := filepath.Join(s.Data, "blobs", "objects", c.OrganizationID, c.ProjectID, u.FileID)
	if _, err := os.Stat(blobPath); err != nil {
		t.Fatalf("blob before expiry: %v", err)
	}
	eventually(t, "the expired file gone from the records", func() bool { st, _ := getFile(t, s, u.FileID); return st == 404 })
	if _, err := os.Stat(blobPath); !os.IsNotExist(err) {
		t.Errorf("blob after expiry: %v; want gone", err)
	}
	if st, _, _ := blobDo(t, "GET", d.DownloadURL, nil, nil); st != 404 {
		t.Errorf("download URL of the expired file: %d; want 404", st)
	}
	eventually(t, "the expired event", func() bool { k := fe.kinds(u.FileID); return len(k) == 2 && k[1] == "expired" })
	if st, f := getFile(t, s, keep.FileID); st != 200 || f.Status != rpc.FileUploaded {
		t.Errorf("the file without expiry: %d %+v", st, f)
	}
}

func TestStorageGeneratedHTMLIsServedSafely(t *testing.T) {
	s := startServe(t, nil)
	m := natsURLRE.FindStringSubmatch(s.out.String())
	nc, err := nats.Connect(m[1])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := s.Cred
	body := []byte("<html><script>alert(1)</script></html>")
	ctx := context.Background()
	// A service (the jobs service's reports) uses the same request with Generated.
	u, err := rpc.Call[rpc.UploadURLResponse](ctx, nc, rpc.StorageUploadURL, rpc.UploadURLRequest{
		Caller:   rpc.Caller{Tenant: rpc.Tenant{OrganizationID: c.OrganizationID, ProjectID: c.ProjectID}, KeyID: "service:jobs"},
		Filename: "report.html", ContentType: "text/html", Size: int64(len(body)), AccessLevel: "PROJECT", Generated: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if st, _, b := blobDo(t, "PUT", u.UploadURL, u.Instructions.Headers, body); st != 200 {
		t.Fatalf("upload: %d %s", st, b)
	}
	r := s.Do(http.MethodGet, "/api/v1/storage/upload-url?fileId="+u.FileID, nil)
	var d rpc.DownloadURLResponse
	r.JSON(t, &d)
	st, h, _ := blobDo(t, "GET", d.DownloadURL, nil, nil)
	if st != 200 || h.Get("Content-Security-Policy") != "sandbox" || h.Get("X-Content-Type-Options") != "nosniff" || !strings.HasPrefix(h.Get("Content-Disposition"), "attachment") {
		t.Errorf("generated HTML served with %d %v", st, h)
	}
}

// The routes the storage service mounts on the gateway answer as the
// gateway's OpenAPI document says: a public link without a key, a signed
// blob URL that is refused.
func TestStorageRoutesAnswerAsDocumented(t *testing.T) {
	s := startServe(t, nil)
	k := s.contract()
	r := s.DoAs("", "", "", http.MethodGet, "/public/files/file_00000000000000000000000000000000", nil)
	if r.Status != http.StatusNotFound {
		t.Errorf("unknown public file: %d %s; want 404", r.Status, r.Body)
	}
	k.check(t, http.MethodGet, "/public/files/file_00000000000000000000000000000000", r)

	content := []byte("x")
	r = s.Do(http.MethodPost, "/api/v1/storage/upload-url", map[string]any{"filename": "x.txt", "contentType": "text/plain", "size": len(content)})
	var u rpc.UploadURLResponse
	r.JSON(t, &u)
	for _, c := range []struct {
		name, method, url string
		headers           map[string]string
		want              int
	}{
		{"tampered", http.MethodPut, strings.Replace(u.UploadURL, "Signature=", "Signature=0", 1), u.Instructions.Headers, http.StatusForbidden},
		{"another method", http.MethodGet, u.UploadURL, nil, http.StatusForbidden},
		{"another content type", http.MethodPut, u.UploadURL, map[string]string{"Content-Type": "text/html"}, http.StatusForbidden},
	} {
		st, h, b := blobDo(t, c.method, c.url, c.headers, content)
		if st != c.want {
			t.Errorf("%s: %d %s; want %d", c.name, st, b, c.want)
		}
		// The key spans segments: check against /blob/{key} itself.
		k.check(t, c.method, "/blob/{key}", apiResp{Status: st, Header: h, Body: b})
	}
}
