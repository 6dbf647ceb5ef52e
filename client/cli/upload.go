package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/odavl/sync/client"
)

// uploadedFile is one file sent, as upload and push --screenshots report it.
type uploadedFile struct {
	Path string `json:"path"`
	client.UploadedFile
}

func newUpload(e *Env) *cobra.Command {
	var f clientFlags
	var contentType, access, name string
	var concurrency int
	cmd := &cobra.Command{
		Use:   "upload FILE",
		Short: "Upload a file through a signed URL (multipart from 5 MiB, resumable), with a progress bar on a terminal",
		Args:  exactArgs(1, "upload takes a FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, err := connect(ctx, e, &f, true)
			if err != nil {
				return err
			}
			up, err := s.uploadFile(ctx, args[0], uploadSettings{name: name, contentType: contentType, access: access, concurrency: concurrency, bar: true}, nil)
			if err != nil {
				if client.IsRejected(err) {
					s.printError(err)
					return rejection("upload of "+args[0], err)
				}
				return err
			}
			s.out.result(up, false, func(w io.Writer) {
				how := "one request"
				if up.Parts > 0 {
					how = fmt.Sprintf("%d parts", up.Parts)
					if up.Resumed > 0 {
						how += fmt.Sprintf(", %d resumed", up.Resumed)
					}
				}
				fmt.Fprintf(w, "uploaded %s (%s, %s): %s\n", args[0], bytesText(up.Size), how, up.FileID)
				if up.FileURL != "" {
					fmt.Fprintf(w, "url: %s\n", up.FileURL)
				}
			})
			return nil
		},
	}
	f.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&contentType, "content-type", "", "content type (default: from the file name, else sniffed)")
	fl.StringVar(&access, "access", "", "access level: PUBLIC, PRIVATE, ORGANIZATION or PROJECT (default: the server's)")
	fl.StringVar(&name, "name", "", "file name to store (default: the file's base name)")
	fl.IntVar(&concurrency, "concurrency", 4, "parts sent at once")
	return cmd
}

type uploadSettings struct {
	name, contentType, access string
	concurrency               int
	bar                       bool
}

// uploadFile sends one file, resuming a multipart upload an earlier run of
// the same file left unfinished (its state is kept beside the spool).
func (s *session) uploadFile(ctx context.Context, path string, us uploadSettings, retry *client.RetryPolicy) (*uploadedFile, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, WithCode(ExitUsage, err)
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, WithCode(ExitUsage, fmt.Errorf("%s is not a regular file", path))
	}
	if us.name == "" {
		us.name = filepath.Base(path)
	}
	if us.contentType == "" {
		us.contentType = contentTypeOf(fh, path)
	}
	abs, _ := filepath.Abs(path)
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%d\x00%d\x00%s\x00%s", abs, fi.Size(), fi.ModTime().UnixNano(), s.cfg.BaseURL, s.cfg.ProjectID)))
	statePath := filepath.Join(s.spool.Dir(), "uploads", hex.EncodeToString(sum[:12])+".json")
	var resume *client.MultipartState
	if b, err := os.ReadFile(statePath); err == nil {
		var st client.MultipartState
		if json.Unmarshal(b, &st) == nil && st.Size == fi.Size() {
			resume = &st
			s.out.info("resuming the upload of %s (%d of %d parts sent)", path, len(st.Done), st.Parts)
		}
	}
	var bar *progress
	if us.bar {
		bar = s.out.progress(filepath.Base(path), fi.Size())
	}
	var saveMu sync.Mutex
	o := client.UploadOptions{
		ContentType: us.contentType, AccessLevel: us.access, Concurrency: us.concurrency, Resume: resume,
		Progress: func(done, total int64) { bar.Set(done, total) },
		Save: func(st client.MultipartState) {
			saveMu.Lock()
			defer saveMu.Unlock()
			b, _ := json.Marshal(st)
			if err := os.MkdirAll(filepath.Dir(statePath), 0o700); err == nil {
				_ = os.WriteFile(statePath+".tmp", b, 0o600)
				_ = os.Rename(statePath+".tmp", statePath)
			}
		},
	}
	up, err := s.cl.UploadFile(ctx, fh, fi.Size(), us.name, o)
	if bar != nil && err == nil {
		bar.Finish()
	}
	if err != nil {
		if resume != nil && client.IsRejected(err) {
			// The server forgot the multipart upload (expired): start afresh next time.
			_ = os.Remove(statePath)
		}
		return nil, err
	}
	_ = os.Remove(statePath)
	return &uploadedFile{Path: path, UploadedFile: *up}, nil
}

func contentTypeOf(fh *os.File, path string) string {
	if ct := mime.TypeByExtension(strings.ToLower(filepath.Ext(path))); ct != "" {
		if i := strings.IndexByte(ct, ';'); i >= 0 && !strings.HasPrefix(ct, "text/") {
			ct = ct[:i]
		}
		return ct
	}
	head := make([]byte, 512)
	n, _ := fh.ReadAt(head, 0)
	return http.DetectContentType(head[:n])
}

// listScreenshots lists the images of dir, by name.
func listScreenshots(dir string) ([]string, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, de := range des {
		if de.IsDir() {
			continue
		}
		switch strings.ToLower(filepath.Ext(de.Name())) {
		case ".png", ".jpg", ".jpeg", ".webp", ".gif":
			abs, err := filepath.Abs(filepath.Join(dir, de.Name()))
			if err != nil {
				return nil, err
			}
			files = append(files, abs)
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no images (.png, .jpg, .jpeg, .webp, .gif) in %s", dir)
	}
	if len(files) > 100 {
		return nil, fmt.Errorf("%d images in %s; a run holds at most 100 screenshots", len(files), dir)
	}
	sort.Strings(files)
	return files, nil
}

func (s *session) uploadScreenshots(ctx context.Context, files []string) ([]uploadedFile, error) {
	return s.uploadScreenshotsWith(ctx, files, nil)
}

// uploadScreenshotsWith uploads the files concurrently (4 at a time) and
// returns them in the order given.
func (s *session) uploadScreenshotsWith(ctx context.Context, files []string, retry *client.RetryPolicy) ([]uploadedFile, error) {
	out := make([]uploadedFile, len(files))
	errs := make([]error, len(files))
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i, path := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			up, err := s.uploadFile(ctx, path, uploadSettings{access: client.AccessProject, concurrency: 2}, retry)
			if err != nil {
				errs[i] = fmt.Errorf("screenshot %s: %w", filepath.Base(path), err)
				return
			}
			out[i] = *up
			s.out.info("screenshot %s uploaded: %s", filepath.Base(path), up.FileID)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		// Keep the class of the first error (transient → spool, rejected → exit 4).
		for _, e := range errs {
			if e != nil {
				return out, e
			}
		}
	}
	return out, nil
}

// withScreenshots sets the run's screenshots to the uploaded files' ids,
// which the server checks (each a file of the project, its bytes uploaded).
func withScreenshots(body []byte, files []uploadedFile) ([]byte, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("reading the guardian run: %w", err)
	}
	refs := make([]string, len(files))
	for i, f := range files {
		refs[i] = f.FileID
	}
	b, _ := json.Marshal(refs)
	doc["screenshots"] = b
	return json.Marshal(doc)
}
