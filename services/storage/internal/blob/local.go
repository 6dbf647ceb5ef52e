package blob

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Local keeps objects under a directory and serves them through URLs signed
// with HMAC-SHA256 over the method, key, expiry, size, content type and (for
// parts) upload id and part number. Its Handler answers those URLs under
// /blob/.
type Local struct {
	dir    string
	base   string
	secret []byte
	now    func() time.Time
	// OnGet is called after each successful download of key.
	OnGet func(key string)

	sweepMu sync.Mutex
	swept   time.Time
}

// keyRE restricts keys to what the service makes: tokens and slashes.
var keyRE = regexp.MustCompile(`^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$`)

// NewLocal returns a local provider over dir whose URLs start with
// publicURL (the gateway's or the storage binary's address). The signing
// key is generated once into dir/signing.key (mode 0600).
func NewLocal(dir, publicURL string) (*Local, error) {
	if dir == "" {
		return nil, errors.New("local storage needs a data directory")
	}
	u, err := url.Parse(publicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("local storage needs an absolute public URL, not %q", publicURL)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating blob directory: %w", err)
	}
	secret, err := signingKey(filepath.Join(dir, "signing.key"))
	if err != nil {
		return nil, err
	}
	return &Local{dir: dir, base: strings.TrimRight(publicURL, "/"), secret: secret, now: time.Now}, nil
}

func signingKey(path string) ([]byte, error) {
	if b, err := os.ReadFile(path); err == nil && len(b) == 32 {
		return b, nil
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		// Another process made it first.
		if b, err := os.ReadFile(path); err == nil && len(b) == 32 {
			return b, nil
		}
		return nil, fmt.Errorf("signing key %s is not 32 bytes", path)
	}
	if err != nil {
		return nil, fmt.Errorf("creating signing key: %w", err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		return nil, fmt.Errorf("writing signing key: %w", err)
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("writing signing key: %w", err)
	}
	return b, nil
}

// Name is "local".
func (l *Local) Name() string { return "local" }

// Ensure creates the directories.
func (l *Local) Ensure(context.Context) error {
	for _, d := range []string{"objects", "meta", "multipart", "tmp"} {
		if err := os.MkdirAll(filepath.Join(l.dir, d), 0o700); err != nil {
			return fmt.Errorf("creating blob directory: %w", err)
		}
	}
	return nil
}

// Signed URL query parameters.
const (
	qMethod = "X-Odavl-Method"
	qExpiry = "X-Odavl-Expires"
	qSize   = "X-Odavl-Size"
	qType   = "X-Odavl-Content-Type"
	qDisp   = "X-Odavl-Content-Disposition"
	qUpload = "X-Odavl-Upload-Id"
	qPart   = "X-Odavl-Part"
	qSig    = "X-Odavl-Signature"
)

var signedParams = []string{qMethod, qExpiry, qSize, qType, qDisp, qUpload, qPart}

func (l *Local) sign(key string, q url.Values) string {
	m := hmac.New(sha256.New, l.secret)
	m.Write([]byte("odavl-blob-v1\n" + key + "\n"))
	for _, p := range signedParams {
		m.Write([]byte(p + "=" + q.Get(p) + "\n"))
	}
	return hex.EncodeToString(m.Sum(nil))
}

func (l *Local) signed(key, method string, expires time.Duration, q url.Values, headers map[string]string) Signed {
	exp := l.now().Add(expires).Truncate(time.Second)
	q.Set(qMethod, method)
	q.Set(qExpiry, strconv.FormatInt(exp.Unix(), 10))
	q.Set(qSig, l.sign(key, q))
	return Signed{URL: l.base + "/blob/" + key + "?" + q.Encode(), Method: method, Headers: headers, ExpiresAt: exp}
}

// PresignPut signs a PUT bound to the size and content type.
func (l *Local) PresignPut(_ context.Context, key string, p PutParams) (Signed, error) {
	if !keyRE.MatchString(key) {
		return Signed{}, fmt.Errorf("bad key %q", key)
	}
	q := url.Values{qSize: {strconv.FormatInt(p.Size, 10)}, qType: {p.ContentType}}
	return l.signed(key, http.MethodPut, p.Expires, q, map[string]string{"Content-Type": p.ContentType}), nil
}

// PresignGet signs a GET.
func (l *Local) PresignGet(_ context.Context, key string, p GetParams) (Signed, error) {
	if !keyRE.MatchString(key) {
		return Signed{}, fmt.Errorf("bad key %q", key)
	}
	q := url.Values{}
	if p.ContentType != "" {
		q.Set(qType, p.ContentType)
	}
	if p.ContentDisposition != "" {
		q.Set(qDisp, p.ContentDisposition)
	}
	return l.signed(key, http.MethodGet, p.Expires, q, map[string]string{}), nil
}

type localMeta struct {
	ContentType string `json:"contentType"`
	Size        int64  `json:"size"`
	ETag        string `json:"etag"`
	// DeletedAt marks a tombstone: the file was deleted, and a PUT to an
	// upload URL still unexpired is refused instead of leaving an orphan.
	DeletedAt *time.Time `json:"deletedAt,omitempty"`
}

// readMeta reads key's metadata (a tombstone too); fs.ErrNotExist when none.
func (l *Local) readMeta(key string) (localMeta, error) {
	var m localMeta
	b, err := os.ReadFile(l.metaPath(key))
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("decoding blob metadata: %w", err)
	}
	return m, nil
}

func (l *Local) objectPath(key string) string {
	return filepath.Join(l.dir, "objects", filepath.FromSlash(key))
}
func (l *Local) metaPath(key string) string {
	return filepath.Join(l.dir, "meta", filepath.FromSlash(key)+".json")
}
func (l *Local) uploadDir(id string) string { return filepath.Join(l.dir, "multipart", id) }

// Stat reads the object's metadata.
func (l *Local) Stat(_ context.Context, key string) (Info, error) {
	if !keyRE.MatchString(key) {
		return Info{}, ErrNotFound
	}
	m, err := l.readMeta(key)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && m.DeletedAt != nil) {
		return Info{}, ErrNotFound
	}
	if err != nil {
		return Info{}, fmt.Errorf("reading blob metadata: %w", err)
	}
	st, err := os.Stat(l.objectPath(key))
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, ErrNotFound
	}
	if err != nil {
		return Info{}, fmt.Errorf("stat blob: %w", err)
	}
	return Info{Size: st.Size(), ContentType: m.ContentType, ETag: m.ETag}, nil
}

// Retire deletes a file's object for good: a tombstone stays in its
// metadata's place for as long as an upload URL of it can be valid, so a
// PUT after the delete is refused (410) instead of storing an orphan.
func (l *Local) Retire(ctx context.Context, key string) error {
	if !keyRE.MatchString(key) {
		return nil
	}
	now := l.now().UTC()
	if err := l.writeMeta(key, localMeta{DeletedAt: &now}); err != nil {
		return err
	}
	l.sweepTombstones(now)
	if err := os.Remove(l.objectPath(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("deleting blob: %w", err)
	}
	return nil
}

// tombstoneLife is how long a tombstone is kept: longer than any upload URL.
const tombstoneLife = 2 * time.Hour

// sweepTombstones removes tombstones older than tombstoneLife, at most once
// an hour.
func (l *Local) sweepTombstones(now time.Time) {
	l.sweepMu.Lock()
	if now.Sub(l.swept) < time.Hour {
		l.sweepMu.Unlock()
		return
	}
	l.swept = now
	l.sweepMu.Unlock()
	root := filepath.Join(l.dir, "meta")
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".json") {
			return nil
		}
		rel, _ := filepath.Rel(root, strings.TrimSuffix(p, ".json"))
		if m, err := l.readMeta(filepath.ToSlash(rel)); err == nil && m.DeletedAt != nil && now.Sub(*m.DeletedAt) > tombstoneLife {
			_ = os.Remove(p)
		}
		return nil
	})
}

// Delete removes the object and its metadata.
func (l *Local) Delete(_ context.Context, key string) error {
	if !keyRE.MatchString(key) {
		return nil
	}
	for _, p := range []string{l.metaPath(key), l.objectPath(key)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("deleting blob: %w", err)
		}
	}
	return nil
}

// CreateMultipart makes the upload's part directory.
func (l *Local) CreateMultipart(_ context.Context, key, contentType string) (string, error) {
	if !keyRE.MatchString(key) {
		return "", fmt.Errorf("bad key %q", key)
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	if err := os.MkdirAll(l.uploadDir(id), 0o700); err != nil {
		return "", fmt.Errorf("creating multipart upload: %w", err)
	}
	mb, _ := json.Marshal(map[string]string{"key": key, "contentType": contentType})
	if err := os.WriteFile(filepath.Join(l.uploadDir(id), "upload.json"), mb, 0o600); err != nil {
		return "", fmt.Errorf("creating multipart upload: %w", err)
	}
	return id, nil
}

var uploadIDRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// PresignPart signs the PUT of one part, bound to its size.
func (l *Local) PresignPart(_ context.Context, key, uploadID string, n int, size int64, expires time.Duration) (Signed, error) {
	if !keyRE.MatchString(key) || !uploadIDRE.MatchString(uploadID) {
		return Signed{}, fmt.Errorf("bad key %q or upload id %q", key, uploadID)
	}
	q := url.Values{qSize: {strconv.FormatInt(size, 10)}, qUpload: {uploadID}, qPart: {strconv.Itoa(n)}}
	return l.signed(key, http.MethodPut, expires, q, map[string]string{}), nil
}

// CompleteMultipart checks each part's MD5 against its ETag and
// concatenates the parts into the object.
func (l *Local) CompleteMultipart(_ context.Context, key, uploadID, contentType string, parts []Part) error {
	if !keyRE.MatchString(key) || !uploadIDRE.MatchString(uploadID) {
		return fmt.Errorf("bad key %q or upload id %q", key, uploadID)
	}
	dir := l.uploadDir(uploadID)
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("%w: multipart upload %s", ErrNotFound, uploadID)
	}
	parts = append([]Part(nil), parts...)
	sort.Slice(parts, func(i, j int) bool { return parts[i].Number < parts[j].Number })
	tmp, err := os.CreateTemp(filepath.Join(l.dir, "tmp"), "mp-*")
	if err != nil {
		return fmt.Errorf("assembling parts: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	sums := md5.New()
	var size int64
	for _, p := range parts {
		f, err := os.Open(filepath.Join(dir, strconv.Itoa(p.Number)))
		if err != nil {
			return fmt.Errorf("%w: part %d", ErrPartMismatch, p.Number)
		}
		h := md5.New()
		n, err := io.Copy(io.MultiWriter(tmp, h), f)
		f.Close()
		if err != nil {
			return fmt.Errorf("assembling parts: %w", err)
		}
		sum := h.Sum(nil)
		if hex.EncodeToString(sum) != strings.Trim(p.ETag, `"`) {
			return fmt.Errorf("%w: part %d has another ETag", ErrPartMismatch, p.Number)
		}
		sums.Write(sum)
		size += n
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("assembling parts: %w", err)
	}
	etag := fmt.Sprintf("%s-%d", hex.EncodeToString(sums.Sum(nil)), len(parts))
	if err := l.install(tmp.Name(), key, localMeta{ContentType: contentType, Size: size, ETag: etag}); err != nil {
		return err
	}
	return os.RemoveAll(dir)
}

// ErrPartMismatch is a completion naming a part that was not uploaded as listed.
var ErrPartMismatch = errors.New("part missing or different")

// AbortMultipart removes the upload's parts.
func (l *Local) AbortMultipart(_ context.Context, _, uploadID string) error {
	if !uploadIDRE.MatchString(uploadID) {
		return nil
	}
	return os.RemoveAll(l.uploadDir(uploadID))
}

// Errors of a PUT that must not store its bytes.
var (
	errExists  = errors.New("this blob was uploaded already; it is never overwritten")
	errRetired = errors.New("this file was deleted; its upload URL no longer stores anything")
)

// install makes tmp the object of key unless key has one (errExists) or was
// retired (errRetired). Its metadata is the claim: it is linked into place,
// which fails when it exists, so of two PUTs at once exactly one stores.
func (l *Local) install(tmp, key string, m localMeta) error {
	obj, meta := l.objectPath(key), l.metaPath(key)
	for _, d := range []string{filepath.Dir(obj), filepath.Dir(meta)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("storing blob: %w", err)
		}
	}
	mt, err := l.tempMeta(meta, m)
	if err != nil {
		return err
	}
	defer os.Remove(mt)
	if err := os.Link(mt, meta); errors.Is(err, fs.ErrExist) {
		return l.claimed(key)
	} else if err != nil {
		return fmt.Errorf("storing blob metadata: %w", err)
	}
	if err := os.Rename(tmp, obj); err != nil {
		_ = os.Remove(meta)
		return fmt.Errorf("storing blob: %w", err)
	}
	return nil
}

// claimed says why key cannot be stored.
func (l *Local) claimed(key string) error {
	if m, err := l.readMeta(key); err == nil && m.DeletedAt != nil {
		return errRetired
	}
	return errExists
}

// writeMeta replaces key's metadata atomically.
func (l *Local) writeMeta(key string, m localMeta) error {
	meta := l.metaPath(key)
	if err := os.MkdirAll(filepath.Dir(meta), 0o700); err != nil {
		return fmt.Errorf("storing blob metadata: %w", err)
	}
	mt, err := l.tempMeta(meta, m)
	if err != nil {
		return err
	}
	if err := os.Rename(mt, meta); err != nil {
		_ = os.Remove(mt)
		return fmt.Errorf("storing blob metadata: %w", err)
	}
	return nil
}

// tempMeta writes m beside meta under a unique name.
func (l *Local) tempMeta(meta string, m localMeta) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(meta), ".meta-*")
	if err != nil {
		return "", fmt.Errorf("storing blob metadata: %w", err)
	}
	mb, _ := json.Marshal(m)
	_, err = f.Write(mb)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("storing blob metadata: %w", err)
	}
	return f.Name(), nil
}

// Handler serves the signed URLs; mount it at /blob/.
func (l *Local) Handler() http.Handler {
	return http.HandlerFunc(l.serve)
}

func refuse(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]any{"type": "https://odavl.dev/problems/blob", "title": http.StatusText(status), "status": status, "detail": msg})
	_, _ = w.Write(b)
}

func refuseClaimed(w http.ResponseWriter, err error) {
	if errors.Is(err, errRetired) {
		refuse(w, http.StatusGone, err.Error())
		return
	}
	refuse(w, http.StatusConflict, err.Error())
}

func (l *Local) serve(w http.ResponseWriter, r *http.Request) {
	key, ok := strings.CutPrefix(r.URL.Path, "/blob/")
	if !ok || !keyRE.MatchString(key) {
		refuse(w, http.StatusNotFound, "no such blob")
		return
	}
	q := r.URL.Query()
	if !hmac.Equal([]byte(q.Get(qSig)), []byte(l.sign(key, q))) {
		refuse(w, http.StatusForbidden, "signature does not match")
		return
	}
	if r.Method != q.Get(qMethod) && !(r.Method == http.MethodHead && q.Get(qMethod) == http.MethodGet) {
		refuse(w, http.StatusForbidden, "this URL is signed for "+q.Get(qMethod)+", not "+r.Method)
		return
	}
	exp, err := strconv.ParseInt(q.Get(qExpiry), 10, 64)
	if err != nil || l.now().Unix() >= exp {
		refuse(w, http.StatusForbidden, "this URL has expired")
		return
	}
	if q.Get(qMethod) == http.MethodPut {
		l.put(w, r, key, q)
		return
	}
	l.get(w, r, key, q)
}

func (l *Local) put(w http.ResponseWriter, r *http.Request, key string, q url.Values) {
	size, _ := strconv.ParseInt(q.Get(qSize), 10, 64)
	upload, part := q.Get(qUpload), q.Get(qPart)
	if upload == "" && r.Header.Get("Content-Type") != q.Get(qType) {
		refuse(w, http.StatusForbidden, "Content-Type must be "+q.Get(qType)+" as signed")
		return
	}
	if r.ContentLength != size {
		refuse(w, http.StatusForbidden, "Content-Length must be "+strconv.FormatInt(size, 10)+" as signed")
		return
	}
	dest := ""
	if upload == "" {
		if _, err := os.Stat(l.metaPath(key)); err == nil {
			refuseClaimed(w, l.claimed(key))
			return
		}
	} else {
		if _, err := os.Stat(l.uploadDir(upload)); err != nil {
			refuse(w, http.StatusNotFound, "no such multipart upload")
			return
		}
		dest = filepath.Join(l.uploadDir(upload), part)
	}
	// The server's read timeout is set for API bodies; a signed upload of
	// up to 100 MB may take longer.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(30 * time.Minute))
	tmp, err := os.CreateTemp(filepath.Join(l.dir, "tmp"), "put-*")
	if err != nil {
		refuse(w, http.StatusInternalServerError, "cannot store the blob")
		return
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := md5.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r.Body, size+1))
	if err != nil || n != size {
		refuse(w, http.StatusBadRequest, "the body is not the "+strconv.FormatInt(size, 10)+" bytes signed")
		return
	}
	if err := tmp.Sync(); err != nil {
		refuse(w, http.StatusInternalServerError, "cannot store the blob")
		return
	}
	etag := hex.EncodeToString(h.Sum(nil))
	if dest != "" {
		err = os.Rename(tmp.Name(), dest)
	} else {
		err = l.install(tmp.Name(), key, localMeta{ContentType: q.Get(qType), Size: size, ETag: etag})
	}
	if errors.Is(err, errExists) || errors.Is(err, errRetired) {
		refuseClaimed(w, err)
		return
	}
	if err != nil {
		refuse(w, http.StatusInternalServerError, "cannot store the blob")
		return
	}
	w.Header().Set("ETag", `"`+etag+`"`)
	w.WriteHeader(http.StatusOK)
}

func (l *Local) get(w http.ResponseWriter, r *http.Request, key string, q url.Values) {
	info, err := l.Stat(r.Context(), key)
	if err != nil {
		refuse(w, http.StatusNotFound, "no such blob")
		return
	}
	f, err := os.Open(l.objectPath(key))
	if err != nil {
		refuse(w, http.StatusNotFound, "no such blob")
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		refuse(w, http.StatusInternalServerError, "cannot read the blob")
		return
	}
	ct := info.ContentType
	if v := q.Get(qType); v != "" {
		ct = v
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox")
	h.Set("ETag", `"`+info.ETag+`"`)
	if v := q.Get(qDisp); v != "" {
		h.Set("Content-Disposition", v)
	}
	if r.Method == http.MethodGet && l.OnGet != nil {
		l.OnGet(key)
	}
	http.ServeContent(w, r, "", st.ModTime(), f)
}
