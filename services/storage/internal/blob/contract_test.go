package blob_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/odavl/sync/services/storage/internal/blob"
	"github.com/odavl/sync/services/storage/storagetest"
)

// provider is one implementation under the contract, with what its signed
// URLs can bind: an Azure SAS binds neither the content type nor the length
// of an upload (the service checks both before a file counts as uploaded).
type provider struct {
	blob.Provider
	bindsUpload bool
}

func setupLocal(t *testing.T) provider {
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	l, err := blob.NewLocal(t.TempDir(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	h = l.Handler()
	return provider{l, true}
}

func setupS3(t *testing.T) provider {
	s := storagetest.StartS3(t)
	p, err := blob.NewS3(blob.S3Config{Region: s.Region, AccessKeyID: s.AccessKey, SecretAccessKey: s.SecretKey,
		Bucket: "contract", Endpoint: s.Endpoint, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	return provider{p, true}
}

func setupAzure(t *testing.T) provider {
	s := storagetest.StartAzure(t)
	p, err := blob.NewAzure(blob.AzureConfig{Account: s.Account, Key: s.Key, Container: "contract", Endpoint: s.Endpoint})
	if err != nil {
		t.Fatal(err)
	}
	return provider{p, false}
}

func TestContractLocal(t *testing.T) { t.Parallel(); contract(t, setupLocal(t)) }
func TestContractS3(t *testing.T)    { t.Parallel(); contract(t, setupS3(t)) }
func TestContractAzure(t *testing.T) { t.Parallel(); contract(t, setupAzure(t)) }

type answer struct {
	status int
	header http.Header
	body   []byte
}

func send(t *testing.T, method, u string, headers map[string]string, body []byte) answer {
	t.Helper()
	a := storagetest.Send(t, method, u, headers, body)
	return answer{a.Status, a.Header, a.Body}
}

func ok(a answer) bool { return a.status >= 200 && a.status < 300 }

// refused is a 403, or a connection closed before a large body was read.
func refused(a answer) bool { return a.status == http.StatusForbidden || a.status == 0 }

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

var seq int

func newKey(t *testing.T) string {
	seq++
	return fmt.Sprintf("org1/proj1/file_%s_%d", strings.ReplaceAll(strings.ToLower(t.Name()[len(t.Name())-8:]), "/", "_"), seq)
}

// tamper changes one character of the signature parameter of u.
func tamper(t *testing.T, u string) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	q := pu.Query()
	for _, name := range []string{"X-Amz-Signature", "sig", "X-Odavl-Signature"} {
		if v := q.Get(name); v != "" {
			if name == "sig" {
				// base64: flip the first character between A and B.
				if v[0] == 'A' {
					v = "B" + v[1:]
				} else {
					v = "A" + v[1:]
				}
			} else {
				if v[0] == '0' {
					v = "1" + v[1:]
				} else {
					v = "0" + v[1:]
				}
			}
			q.Set(name, v)
			pu.RawQuery = q.Encode()
			return pu.String()
		}
	}
	t.Fatalf("no signature in %s", u)
	return ""
}

// otherObject points u at the key with suffix appended, in the same store.
func otherObject(t *testing.T, u, suffix string) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	pu.Path += suffix
	pu.RawPath = ""
	return pu.String()
}

func contract(t *testing.T, p provider) {
	ctx := context.Background()
	if err := p.Ensure(ctx); err != nil {
		t.Fatalf("ensure: %v", err)
	}
	if err := p.Ensure(ctx); err != nil {
		t.Fatalf("ensure twice: %v", err)
	}
	put := func(t *testing.T, key, ct string, body []byte) blob.Signed {
		t.Helper()
		s, err := p.PresignPut(ctx, key, blob.PutParams{ContentType: ct, Size: int64(len(body)), Expires: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(s.URL, "http://") {
			t.Fatalf("signed URL %q is not absolute", s.URL)
		}
		return s
	}

	t.Run("upload, stat, download", func(t *testing.T) {
		key, body := newKey(t), randBytes(3000)
		s := put(t, key, "image/png", body)
		if a := send(t, s.Method, s.URL, s.Headers, body); !ok(a) {
			t.Fatalf("upload: %d %s", a.status, a.body)
		}
		info, err := p.Stat(ctx, key)
		if err != nil || info.Size != 3000 || info.ContentType != "image/png" {
			t.Fatalf("stat = %+v, %v; want 3000 bytes of image/png", info, err)
		}
		g, err := p.PresignGet(ctx, key, blob.GetParams{Expires: time.Minute, ContentDisposition: `attachment; filename="shot.png"`})
		if err != nil {
			t.Fatal(err)
		}
		a := send(t, g.Method, g.URL, g.Headers, nil)
		if a.status != 200 || !bytes.Equal(a.body, body) {
			t.Fatalf("download: %d, %d bytes; want 200 and the %d bytes sent", a.status, len(a.body), len(body))
		}
		if cd := a.header.Get("Content-Disposition"); cd != `attachment; filename="shot.png"` {
			t.Errorf("Content-Disposition = %q", cd)
		}
		if ct := a.header.Get("Content-Type"); ct != "image/png" {
			t.Errorf("Content-Type = %q", ct)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		key, body := newKey(t), randBytes(1000)
		s := put(t, key, "application/json", body)
		cases := []struct {
			name            string
			method, url, ct string
			body            []byte
		}{
			{"tampered signature", s.Method, tamper(t, s.URL), "application/json", body},
			{"other object", s.Method, otherObject(t, s.URL, "x"), "application/json", body},
			{"wrong method", http.MethodDelete, s.URL, "application/json", nil},
		}
		for _, c := range cases {
			h := map[string]string{}
			for k, v := range s.Headers {
				h[k] = v
			}
			h["Content-Type"] = c.ct
			if a := send(t, c.method, c.url, h, c.body); a.status != http.StatusForbidden {
				t.Errorf("%s: %d %s; want 403", c.name, a.status, a.body)
			}
		}
		if _, err := p.Stat(ctx, key); !errors.Is(err, blob.ErrNotFound) {
			t.Fatalf("stat after refused uploads: %v; want not found", err)
		}
		if _, err := p.Stat(ctx, key+"x"); !errors.Is(err, blob.ErrNotFound) {
			t.Fatalf("stat of the other object: %v; want not found", err)
		}

		// A download URL cannot upload, and an upload URL cannot download.
		if a := send(t, s.Method, s.URL, s.Headers, body); !ok(a) {
			t.Fatalf("upload: %d %s", a.status, a.body)
		}
		g, err := p.PresignGet(ctx, key, blob.GetParams{Expires: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		h := map[string]string{"Content-Type": "application/json", "X-Ms-Blob-Type": "BlockBlob"}
		if a := send(t, http.MethodPut, g.URL, h, body); a.status != http.StatusForbidden {
			t.Errorf("PUT through a download URL: %d; want 403", a.status)
		}
		if a := send(t, http.MethodGet, s.URL, nil, nil); a.status != http.StatusForbidden {
			t.Errorf("GET through an upload URL: %d; want 403", a.status)
		}
		if a := send(t, g.Method, tamper(t, g.URL), nil, nil); a.status != http.StatusForbidden {
			t.Errorf("tampered download URL: %d; want 403", a.status)
		}
		if a := send(t, g.Method, otherObject(t, g.URL, "y"), nil, nil); a.status != http.StatusForbidden {
			t.Errorf("download URL for another object: %d; want 403", a.status)
		}
	})

	t.Run("content type and size bound", func(t *testing.T) {
		key, body := newKey(t), randBytes(500)
		s := put(t, key, "image/png", body)
		h := map[string]string{}
		for k, v := range s.Headers {
			h[k] = v
		}
		h["Content-Type"] = "text/html"
		a := send(t, s.Method, s.URL, h, body)
		if p.bindsUpload {
			if a.status != http.StatusForbidden {
				t.Fatalf("upload of another content type: %d %s; want 403", a.status, a.body)
			}
		} else if info, err := p.Stat(ctx, key); ok(a) && (err != nil || info.ContentType == "image/png") {
			// The provider takes it; Stat must show it so confirmation refuses.
			t.Fatalf("stat after another content type: %+v, %v; want text/html visible", info, err)
		}
		key2 := newKey(t)
		s2 := put(t, key2, "image/png", body)
		big := append(append([]byte{}, body...), randBytes(100)...)
		a = send(t, s2.Method, s2.URL, s2.Headers, big)
		if p.bindsUpload {
			if ok(a) {
				t.Fatalf("upload of more bytes than signed: %d; want refused", a.status)
			}
		} else if info, err := p.Stat(ctx, key2); ok(a) && (err != nil || info.Size == int64(len(body))) {
			t.Fatalf("stat after a larger upload: %+v, %v; want the other size visible", info, err)
		}
	})

	t.Run("expired", func(t *testing.T) {
		t.Parallel()
		key, body := newKey(t), randBytes(100)
		s, err := p.PresignPut(ctx, key, blob.PutParams{ContentType: "text/plain", Size: 100, Expires: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Until(s.ExpiresAt) + 1500*time.Millisecond)
		if a := send(t, s.Method, s.URL, s.Headers, body); a.status != http.StatusForbidden {
			t.Fatalf("expired upload URL: %d %s; want 403", a.status, a.body)
		}
	})

	t.Run("multipart 12 MB", func(t *testing.T) {
		key := newKey(t)
		const part = 5 << 20
		body := randBytes(12 << 20)
		id, err := p.CreateMultipart(ctx, key, "application/pdf")
		if err != nil {
			t.Fatal(err)
		}
		var parts []blob.Part
		md5s := md5.New()
		for n, off := 1, 0; off < len(body); n, off = n+1, off+part {
			chunk := body[off:min(off+part, len(body))]
			s, err := p.PresignPart(ctx, key, id, n, int64(len(chunk)), time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if n == 1 {
				if a := send(t, s.Method, s.URL, s.Headers, append(chunk[:len(chunk):len(chunk)], 'x')); p.bindsUpload && ok(a) {
					t.Fatalf("part larger than signed: %d; want refused", a.status)
				}
				if a := send(t, s.Method, tamper(t, s.URL), s.Headers, chunk); !refused(a) {
					t.Fatalf("tampered part URL: %d; want 403", a.status)
				}
			}
			a := send(t, s.Method, s.URL, s.Headers, chunk)
			if !ok(a) {
				t.Fatalf("part %d: %d %s", n, a.status, a.body)
			}
			sum := md5.Sum(chunk)
			md5s.Write(sum[:])
			parts = append(parts, blob.Part{Number: n, ETag: a.header.Get("ETag")})
		}
		if len(parts) != 3 {
			t.Fatalf("%d parts; want 3", len(parts))
		}
		if _, err := p.Stat(ctx, key); !errors.Is(err, blob.ErrNotFound) {
			t.Fatalf("object visible before completion: %v", err)
		}
		if err := p.CompleteMultipart(ctx, key, id, "application/pdf", parts); err != nil {
			t.Fatalf("complete: %v", err)
		}
		info, err := p.Stat(ctx, key)
		if err != nil || info.Size != int64(len(body)) || info.ContentType != "application/pdf" {
			t.Fatalf("stat = %+v, %v", info, err)
		}
		if p.Name() != "azure" {
			if want := hex.EncodeToString(md5s.Sum(nil)) + "-3"; info.ETag != want {
				t.Errorf("ETag = %q; want the MD5 of the parts' MD5s %q", info.ETag, want)
			}
		}
		g, _ := p.PresignGet(ctx, key, blob.GetParams{Expires: time.Minute})
		if a := send(t, g.Method, g.URL, nil, nil); a.status != 200 || !bytes.Equal(a.body, body) {
			t.Fatalf("download of the assembled object: %d, %d bytes", a.status, len(a.body))
		}
	})

	t.Run("abort and delete", func(t *testing.T) {
		key := newKey(t)
		id, err := p.CreateMultipart(ctx, key, "text/csv")
		if err != nil {
			t.Fatal(err)
		}
		chunk := randBytes(1000)
		s, _ := p.PresignPart(ctx, key, id, 1, 1000, time.Minute)
		a := send(t, s.Method, s.URL, s.Headers, chunk)
		if !ok(a) {
			t.Fatalf("part: %d %s", a.status, a.body)
		}
		if err := p.AbortMultipart(ctx, key, id); err != nil {
			t.Fatalf("abort: %v", err)
		}
		if p.Name() != "azure" {
			if err := p.CompleteMultipart(ctx, key, id, "text/csv", []blob.Part{{1, a.header.Get("ETag")}}); err == nil {
				t.Fatal("completing an aborted upload succeeded")
			}
		}
		if _, err := p.Stat(ctx, key); !errors.Is(err, blob.ErrNotFound) {
			t.Fatalf("stat after abort: %v; want not found", err)
		}

		key2, body := newKey(t), randBytes(10)
		s2 := put(t, key2, "text/plain", body)
		send(t, s2.Method, s2.URL, s2.Headers, body)
		if err := p.Delete(ctx, key2); err != nil {
			t.Fatal(err)
		}
		if err := p.Delete(ctx, key2); err != nil {
			t.Fatalf("second delete: %v", err)
		}
		if _, err := p.Stat(ctx, key2); !errors.Is(err, blob.ErrNotFound) {
			t.Fatalf("stat after delete: %v; want not found", err)
		}
		g, _ := p.PresignGet(ctx, key2, blob.GetParams{Expires: time.Minute})
		if a := send(t, g.Method, g.URL, nil, nil); a.status != http.StatusNotFound {
			t.Fatalf("download after delete: %d; want 404", a.status)
		}
	})
}
