package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/odavl/sync/libs/rpc"
)

// uploadURL asks for a signed upload URL of a PROJECT file of size bytes.
func uploadURL(t *testing.T, s *served, size int) rpc.UploadURLResponse {
	t.Helper()
	r := s.Do(http.MethodPost, "/api/v1/storage/upload-url", map[string]any{"filename": "report.txt", "contentType": "text/plain", "size": size, "accessLevel": "PROJECT"})
	if r.Status != http.StatusCreated {
		t.Fatalf("upload-url: %d %s", r.Status, r.Body)
	}
	var u rpc.UploadURLResponse
	r.JSON(t, &u)
	return u
}

// An upload URL of a deleted file stores nothing: 410, and no orphan blob
// under the data directory (it used to answer 200 and keep the bytes).
func TestUploadURLOfADeletedFileStoresNothing(t *testing.T) {
	s := startServe(t, nil)
	body := random(1024)
	for _, uploaded := range []bool{false, true} {
		u := uploadURL(t, s, len(body))
		if uploaded {
			if st, _, b := blobDo(t, u.Instructions.Method, u.UploadURL, u.Instructions.Headers, body); st != http.StatusOK {
				t.Fatalf("upload: %d %s", st, b)
			}
		}
		if r := s.Do(http.MethodDelete, "/api/v1/storage/files/"+u.FileID, nil); r.Status != http.StatusOK {
			t.Fatalf("delete: %d %s", r.Status, r.Body)
		}
		st, _, b := blobDo(t, u.Instructions.Method, u.UploadURL, u.Instructions.Headers, body)
		if st != http.StatusGone {
			t.Errorf("PUT after delete (uploaded before: %v): %d %s, want 410", uploaded, st, b)
		}
		obj := filepath.Join(s.Data, "blobs", "objects", s.Cred.OrganizationID, s.Cred.ProjectID, u.FileID)
		if _, err := os.Stat(obj); !os.IsNotExist(err) {
			t.Errorf("an orphan blob is left at %s (%v)", obj, err)
		}
	}
}

// Two PUTs of one upload URL at once, their bodies sent in two halves:
// exactly one stores (200), the other is 409, and the file holds one of the
// two bodies whole. (Both used to get 200.)
func TestConcurrentPutsOfOneUploadURLStoreOnce(t *testing.T) {
	s := startServe(t, nil)
	const size = 64 << 10
	bodies := [][]byte{random(size), random(size)}
	for round := range 5 {
		u := uploadURL(t, s, size)
		status := make([]int, 2)
		var halves, done sync.WaitGroup
		writers := make([]*io.PipeWriter, 2)
		for i := range 2 {
			pr, pw := io.Pipe()
			writers[i] = pw
			req, _ := http.NewRequest(u.Instructions.Method, u.UploadURL, pr)
			for k, v := range u.Instructions.Headers {
				req.Header.Set(k, v)
			}
			req.ContentLength = size
			done.Add(1)
			go func() {
				defer done.Done()
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Errorf("PUT %d: %v", i, err)
					return
				}
				resp.Body.Close()
				status[i] = resp.StatusCode
			}()
			halves.Add(1)
			go func() {
				defer halves.Done()
				_, _ = pw.Write(bodies[i][:size/2])
			}()
		}
		halves.Wait()
		time.Sleep(100 * time.Millisecond) // both requests are in their handlers, neither body complete
		for i, pw := range writers {
			go func() { _, _ = pw.Write(bodies[i][size/2:]); _ = pw.Close() }()
		}
		done.Wait()
		ok, conflict := 0, 0
		for _, st := range status {
			switch st {
			case http.StatusOK:
				ok++
			case http.StatusConflict:
				conflict++
			}
		}
		if ok != 1 || conflict != 1 {
			t.Fatalf("round %d: answers %v, want one 200 and one 409", round, status)
		}
		r := s.Do(http.MethodGet, "/api/v1/storage/upload-url?fileId="+u.FileID, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("download URL: %d %s", r.Status, r.Body)
		}
		var d rpc.DownloadURLResponse
		r.JSON(t, &d)
		_, _, got := blobDo(t, http.MethodGet, d.DownloadURL, nil, nil)
		if !bytes.Equal(got, bodies[0]) && !bytes.Equal(got, bodies[1]) {
			t.Fatalf("round %d: the stored %d bytes are neither body whole", round, len(got))
		}
	}
}
