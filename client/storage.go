package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Access levels of a file.
const (
	AccessPublic       = "PUBLIC"
	AccessPrivate      = "PRIVATE"
	AccessOrganization = "ORGANIZATION"
	AccessProject      = "PROJECT"
)

// UploadURLRequest asks for a signed upload URL, or starts a multipart upload.
type UploadURLRequest struct {
	Filename    string `json:"filename"`
	ContentType string `json:"contentType"`
	Size        int64  `json:"size"`
	ExpiresIn   int    `json:"expiresIn,omitempty"` // seconds, 60-3600
	AccessLevel string `json:"accessLevel,omitempty"`
	// RetainFor keeps the file that many seconds, then the server removes
	// it; 0 keeps it (or applies the server's retention).
	RetainFor int64 `json:"retainFor,omitempty"`
}

// UploadInstructions say how to send the bytes.
type UploadInstructions struct {
	Method  string            `json:"method"`
	Headers map[string]string `json:"headers"`
}

// UploadURLResponse is a signed upload URL.
type UploadURLResponse struct {
	UploadURL    string             `json:"uploadUrl"`
	FileURL      string             `json:"fileUrl"`
	FileID       string             `json:"fileId"`
	ExpiresAt    time.Time          `json:"expiresAt"`
	Instructions UploadInstructions `json:"instructions"`
}

// MultipartResponse starts a multipart upload.
type MultipartResponse struct {
	FileID    string    `json:"fileId"`
	FileURL   string    `json:"fileUrl"`
	UploadID  string    `json:"uploadId"`
	PartSize  int64     `json:"partSize"`
	Parts     int       `json:"parts"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// PartURLResponse is the signed URL of one part.
type PartURLResponse struct {
	PartNumber int               `json:"partNumber"`
	Size       int64             `json:"size"`
	URL        string            `json:"url"`
	Method     string            `json:"method"`
	Headers    map[string]string `json:"headers"`
	ExpiresAt  time.Time         `json:"expiresAt"`
}

// CompletedPart is a part sent, with the ETag the store answered.
type CompletedPart struct {
	PartNumber int    `json:"partNumber"`
	ETag       string `json:"etag"`
}

// File is a file record.
type File struct {
	ID             string `json:"id"`
	OrganizationID string `json:"organizationId"`
	ProjectID      string `json:"projectId"`
	Name           string `json:"name"`
	OriginalName   string `json:"originalName"`
	ContentType    string `json:"contentType"`
	Size           int64  `json:"size"`
	AccessLevel    string `json:"accessLevel"`
	Status         string `json:"status"`        // PENDING, UPLOADED, DELETED
	DownloadCount  int64  `json:"downloadCount"` // download URLs issued
	Downloads      int64  `json:"downloads,omitempty"`
	Multipart      bool   `json:"multipart,omitempty"`
	// FileURL is permanent: it redirects to a fresh signed download URL.
	FileURL    string     `json:"fileUrl,omitempty"`
	CreatedAt  time.Time  `json:"createdAt"`
	UploadedAt *time.Time `json:"uploadedAt,omitempty"`
	ExpiresAt  *time.Time `json:"expiresAt,omitempty"`
}

// FileListOptions filter and page the file list.
type FileListOptions struct {
	Status      string // PENDING or UPLOADED
	ContentType string
	Limit       int
	Offset      int
}

// FileList is a page of files.
type FileList struct {
	Items  []File `json:"items"`
	Total  int64  `json:"total"`
	Limit  int    `json:"limit"`
	Offset int    `json:"offset"`
}

// StorageStats counts the project's files and bytes by content type.
type StorageStats struct {
	TotalFiles    int64                   `json:"totalFiles"`
	TotalBytes    int64                   `json:"totalBytes"`
	ByContentType map[string]ContentStats `json:"byContentType"`
}

// ContentStats is the count and bytes of one content type.
type ContentStats struct {
	Files int64 `json:"files"`
	Bytes int64 `json:"bytes"`
}

// ListFiles returns a page of the project's files.
func (c *Client) ListFiles(ctx context.Context, o FileListOptions) (*FileList, error) {
	q := url.Values{}
	if o.Status != "" {
		q.Set("status", o.Status)
	}
	if o.ContentType != "" {
		q.Set("contentType", o.ContentType)
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Offset > 0 {
		q.Set("offset", strconv.Itoa(o.Offset))
	}
	var l FileList
	if err := c.getJSON(ctx, "/api/v1/storage/files", q, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// GetFile returns a file record.
func (c *Client) GetFile(ctx context.Context, id string) (*File, error) {
	var f File
	if err := c.getJSON(ctx, "/api/v1/storage/files/"+url.PathEscape(id), nil, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// DeleteFile deletes a file.
func (c *Client) DeleteFile(ctx context.Context, id string) (*File, error) {
	var f File
	if _, err := c.do(ctx, request{method: http.MethodDelete, path: "/api/v1/storage/files/" + url.PathEscape(id), auth: true}, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// Stats returns the project's storage statistics.
func (c *Client) StorageStats(ctx context.Context) (*StorageStats, error) {
	var s StorageStats
	if err := c.getJSON(ctx, "/api/v1/storage/stats", nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// AbortMultipart drops an unfinished multipart upload and its parts.
func (c *Client) AbortMultipart(ctx context.Context, fileID string) (*File, error) {
	var f File
	if _, err := c.do(ctx, request{method: http.MethodDelete, path: "/api/v1/storage/multipart/" + url.PathEscape(fileID), auth: true}, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// Content returns the permanent URL of a file's bytes (an authenticated GET
// of it redirects to a fresh signed download URL).
func (c *Client) ContentURL(id string) string {
	return c.url("/api/v1/storage/files/"+url.PathEscape(id)+"/content", nil)
}

// DownloadURLResponse is a signed download URL.
type DownloadURLResponse struct {
	DownloadURL string    `json:"downloadUrl"`
	FileID      string    `json:"fileId"`
	ExpiresAt   time.Time `json:"expiresAt"`
}

// UploadURL asks for a signed URL to PUT one file to.
func (c *Client) UploadURL(ctx context.Context, r UploadURLRequest) (*UploadURLResponse, error) {
	var out UploadURLResponse
	if err := c.postJSON(ctx, "/api/v1/storage/upload-url", r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DownloadURL asks for a signed URL to GET a file from.
func (c *Client) DownloadURL(ctx context.Context, fileID string) (*DownloadURLResponse, error) {
	var out DownloadURLResponse
	if err := c.getJSON(ctx, "/api/v1/storage/upload-url", url.Values{"fileId": {fileID}}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ConfirmFile tells the server the bytes of a signed-URL upload are sent.
func (c *Client) ConfirmFile(ctx context.Context, fileID string) (*File, error) {
	var out File
	if err := c.postJSON(ctx, "/api/v1/storage/files/"+url.PathEscape(fileID)+"/confirm", struct{}{}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// StartMultipart starts a multipart upload; the server picks the part size.
func (c *Client) StartMultipart(ctx context.Context, r UploadURLRequest) (*MultipartResponse, error) {
	var out MultipartResponse
	if err := c.postJSON(ctx, "/api/v1/storage/multipart", r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// PartURL asks for the signed URL of part n (from 1).
func (c *Client) PartURL(ctx context.Context, fileID string, n int) (*PartURLResponse, error) {
	var out PartURLResponse
	if err := c.postJSON(ctx, "/api/v1/storage/multipart/"+url.PathEscape(fileID)+"/parts/"+strconv.Itoa(n), struct{}{}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CompleteMultipart assembles the parts into the file.
func (c *Client) CompleteMultipart(ctx context.Context, fileID string, parts []CompletedPart) (*File, error) {
	var out File
	body := struct {
		Parts []CompletedPart `json:"parts"`
	}{parts}
	if err := c.postJSON(ctx, "/api/v1/storage/multipart/"+url.PathEscape(fileID)+"/complete", body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Download GETs a signed download URL (absolute, or a path below the base
// URL), retried like every call; the key is not sent to it. It answers the
// file's bytes, at most 32 MiB.
func (c *Client) Download(ctx context.Context, signedURL string) ([]byte, error) {
	var b []byte
	if _, err := c.do(ctx, request{method: http.MethodGet, path: signedURL, timeout: c.cfg.TransferTimeout}, &b); err != nil {
		return nil, err
	}
	return b, nil
}

// send PUTs (or as told) size bytes from open to a signed URL, retried, and
// returns the answer's ETag. onBytes sees every chunk sent (negative to take
// back an attempt that failed).
func (c *Client) send(ctx context.Context, method, target string, headers map[string]string, open func() io.Reader, size int64, onBytes func(int64)) (string, error) {
	if method == "" {
		method = http.MethodPut
	}
	h := http.Header{}
	ct := ""
	for k, v := range headers {
		if strings.EqualFold(k, "Content-Type") {
			ct = v
			continue
		}
		if strings.EqualFold(k, "Content-Length") || strings.EqualFold(k, "Host") {
			continue
		}
		h.Set(k, v)
	}
	var sent atomic.Int64
	hdr, err := c.do(ctx, request{
		method: method, path: c.url(target, nil), header: h, contentType: ct, size: size, timeout: c.cfg.TransferTimeout,
		// A signed URL carries its own authorization; the key is never sent to it.
		body: func() (io.Reader, error) {
			if n := sent.Swap(0); n != 0 && onBytes != nil {
				onBytes(-n)
			}
			return &countingReader{r: open(), n: &sent, on: onBytes}, nil
		},
	}, nil)
	if err != nil {
		if n := sent.Swap(0); n != 0 && onBytes != nil {
			onBytes(-n)
		}
		return "", err
	}
	return strings.Trim(hdr.Get("ETag"), `"`), nil
}

type countingReader struct {
	r  io.Reader
	n  *atomic.Int64
	on func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.n.Add(int64(n))
		if c.on != nil {
			c.on(int64(n))
		}
	}
	return n, err
}

// MultipartThreshold is the size above which UploadFile uses a multipart
// upload (the server refuses multipart for smaller files).
const MultipartThreshold = 5 << 20

// MaxFileSize is the largest file the server takes.
const MaxFileSize = 100 << 20

// UploadOptions adjust UploadFile.
type UploadOptions struct {
	ContentType string // default: guessed by the caller
	AccessLevel string
	// Progress sees the bytes sent so far of the total.
	Progress func(done, total int64)
	// Concurrency is how many parts are sent at once; default 4.
	Concurrency int
	// Resume continues a multipart upload an earlier call left unfinished
	// (its parts already sent are skipped); nil starts afresh.
	Resume *MultipartState
	// Save, when set, is called with the multipart state after the start
	// and after every part, so an interrupted upload can be resumed.
	Save func(MultipartState)
	// Threshold overrides MultipartThreshold.
	Threshold int64
}

// MultipartState is how far a multipart upload got.
type MultipartState struct {
	FileID   string          `json:"fileId"`
	UploadID string          `json:"uploadId"`
	FileURL  string          `json:"fileUrl,omitempty"`
	PartSize int64           `json:"partSize"`
	Parts    int             `json:"parts"`
	Size     int64           `json:"size"`
	Done     []CompletedPart `json:"done"`
}

// UploadedFile is the outcome of UploadFile.
type UploadedFile struct {
	FileID  string `json:"fileId"`
	FileURL string `json:"fileUrl"`
	Size    int64  `json:"size"`
	// Parts is the number of parts of a multipart upload (0: one PUT).
	Parts int `json:"parts,omitempty"`
	// Resumed counts parts an earlier attempt had sent.
	Resumed int   `json:"resumed,omitempty"`
	File    *File `json:"file,omitempty"`
}

// UploadFile uploads size bytes of r as name: through one signed URL, or in
// parts (concurrently, each retried) above MultipartThreshold.
func (c *Client) UploadFile(ctx context.Context, r io.ReaderAt, size int64, name string, o UploadOptions) (*UploadedFile, error) {
	if o.ContentType == "" {
		o.ContentType = "application/octet-stream"
	}
	threshold := o.Threshold
	if threshold <= 0 {
		threshold = MultipartThreshold
	}
	var done atomic.Int64
	progress := func(n int64) {
		v := done.Add(n)
		if o.Progress != nil {
			o.Progress(v, size)
		}
	}
	req := UploadURLRequest{Filename: name, ContentType: o.ContentType, Size: size, AccessLevel: o.AccessLevel}
	if size <= threshold && o.Resume == nil {
		u, err := c.UploadURL(ctx, req)
		if err != nil {
			return nil, err
		}
		method := u.Instructions.Method
		if _, err := c.send(ctx, method, u.UploadURL, u.Instructions.Headers, func() io.Reader { return io.NewSectionReader(r, 0, size) }, size, progress); err != nil {
			return nil, err
		}
		f, err := c.ConfirmFile(ctx, u.FileID)
		if err != nil {
			return nil, err
		}
		return &UploadedFile{FileID: u.FileID, FileURL: u.FileURL, Size: size, File: f}, nil
	}
	st := o.Resume
	if st == nil || st.Size != size || st.FileID == "" {
		m, err := c.StartMultipart(ctx, req)
		if err != nil {
			return nil, err
		}
		if m.PartSize <= 0 || m.Parts <= 0 {
			return nil, fmt.Errorf("multipart upload %s: the server answered part size %d and %d parts", m.FileID, m.PartSize, m.Parts)
		}
		st = &MultipartState{FileID: m.FileID, UploadID: m.UploadID, FileURL: m.FileURL, PartSize: m.PartSize, Parts: m.Parts, Size: size}
		if o.Save != nil {
			o.Save(*st)
		}
	}
	res := &UploadedFile{FileID: st.FileID, FileURL: st.FileURL, Size: size, Parts: st.Parts}
	etags := make([]string, st.Parts+1)
	for _, p := range st.Done {
		if p.PartNumber >= 1 && p.PartNumber <= st.Parts && p.ETag != "" {
			etags[p.PartNumber] = p.ETag
			res.Resumed++
			progress(partLen(st, p.PartNumber))
		}
	}
	conc := o.Concurrency
	if conc <= 0 {
		conc = 4
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for n := 1; n <= st.Parts; n++ {
		if etags[n] != "" {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			etag, err := c.sendPart(ctx, r, st, n, progress)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("part %d of %d: %w", n, st.Parts, err)
					cancel()
				}
				return
			}
			etags[n] = etag
			st.Done = append(st.Done, CompletedPart{PartNumber: n, ETag: etag})
			if o.Save != nil {
				o.Save(*st)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return res, firstErr
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	parts := make([]CompletedPart, 0, st.Parts)
	for n := 1; n <= st.Parts; n++ {
		parts = append(parts, CompletedPart{PartNumber: n, ETag: etags[n]})
	}
	f, err := c.CompleteMultipart(ctx, st.FileID, parts)
	if err != nil {
		return res, err
	}
	res.File = f
	if res.FileURL == "" {
		res.FileURL = f.FileURL
	}
	return res, nil
}

func partLen(st *MultipartState, n int) int64 {
	off := int64(n-1) * st.PartSize
	return min(st.PartSize, st.Size-off)
}

func (c *Client) sendPart(ctx context.Context, r io.ReaderAt, st *MultipartState, n int, progress func(int64)) (string, error) {
	u, err := c.PartURL(ctx, st.FileID, n)
	if err != nil {
		return "", err
	}
	off, l := int64(n-1)*st.PartSize, partLen(st, n)
	etag, err := c.send(ctx, u.Method, u.URL, u.Headers, func() io.Reader { return io.NewSectionReader(r, off, l) }, l, progress)
	if err != nil {
		return "", err
	}
	if etag == "" {
		return "", fmt.Errorf("the store answered part %d without an ETag", n)
	}
	return etag, nil
}
