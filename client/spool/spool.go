// Package spool keeps the uploads a client could not deliver, on disk, until
// they can be: each entry is written atomically, replayed oldest first, and
// removed only once the server has accepted it or rejected it for good. A
// corrupted entry is set aside under corrupt/, a rejected one under
// rejected/; nothing is dropped silently.
//
// Only one Flush runs at a time per directory (an exclusive lock on the
// directory's .lock file), so no entry is sent twice by two flushes. An
// entry sent but not yet removed when the process dies is sent again by the
// next flush; its idempotency key makes the server answer the first receipt.
package spool

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Version is the version of the entry format this package writes.
const Version = 1

// Entry is one upload waiting to be delivered.
type Entry struct {
	Version int `json:"version"`
	// Kind is what to do: "push" (a result upload).
	Kind           string          `json:"kind"`
	Product        string          `json:"product"`
	OrganizationID string          `json:"organizationId"`
	ProjectID      string          `json:"projectId"`
	IdempotencyKey string          `json:"idempotencyKey"`
	Body           json.RawMessage `json:"body"`
	// Files are local files to upload before the push (Guardian
	// screenshots). Put copies them into the spool, so the entry does not
	// depend on files a CI job may delete, and Files names the copies.
	Files     []string  `json:"files,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	// Reason is why the entry was spooled.
	Reason string `json:"reason,omitempty"`
}

func (e Entry) check() error {
	switch {
	case e.Version != Version:
		return fmt.Errorf("version %d, want %d", e.Version, Version)
	case e.Kind != "push":
		return fmt.Errorf("unknown kind %q", e.Kind)
	case e.Product == "" || e.IdempotencyKey == "" || len(e.Body) == 0:
		return errors.New("product, idempotencyKey and body are required")
	case !json.Valid(e.Body):
		return errors.New("body is not valid JSON")
	}
	return nil
}

// Item is an entry as it sits in the spool.
type Item struct {
	// Name is the file name, which sorts oldest first.
	Name  string `json:"name"`
	Path  string `json:"path"`
	Entry Entry  `json:"entry"`
}

// Corrupt is a spool file that could not be read as an entry.
type Corrupt struct {
	Name string `json:"name"`
	// Path is where the file is now (under corrupt/ once set aside).
	Path string `json:"path"`
	Err  string `json:"error"`
}

// Spool is a spool directory.
type Spool struct {
	dir string
	now func() time.Time
}

// Open opens (creating it, mode 0700) the spool directory dir.
func Open(dir string, now func() time.Time) (*Spool, error) {
	if dir == "" {
		return nil, errors.New("spool: no directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating spool directory: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	return &Spool{dir: dir, now: now}, nil
}

// Dir is the spool directory.
func (s *Spool) Dir() string { return s.dir }

// Put writes e atomically (a temporary file, fsynced, renamed into place,
// the directory fsynced) and returns its item.
func (s *Spool) Put(e Entry) (Item, error) {
	e.Version = Version
	if e.Kind == "" {
		e.Kind = "push"
	}
	if e.CreatedAt.IsZero() {
		e.CreatedAt = s.now().UTC()
	}
	if err := e.check(); err != nil {
		return Item{}, fmt.Errorf("spooling: %w", err)
	}
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return Item{}, fmt.Errorf("spooling: %w", err)
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	// Names sort oldest first; one put after another sorts after it even
	// when the clock did not move.
	seq := e.CreatedAt.UnixNano()
	if names, err := s.names(); err == nil && len(names) > 0 {
		var last int64
		if _, err := fmt.Sscanf(names[len(names)-1], "%020d-", &last); err == nil && last >= seq {
			seq = last + 1
		}
	}
	name := fmt.Sprintf("%020d-%s-%s.json", seq, e.Product, hex.EncodeToString(rnd[:]))
	path := filepath.Join(s.dir, name)
	if len(e.Files) > 0 {
		copies, err := s.copyFiles(filesDir(s.dir, name), e.Files)
		if err != nil {
			_ = os.RemoveAll(filesDir(s.dir, name))
			return Item{}, fmt.Errorf("spooling: %w", err)
		}
		e.Files = copies
		if b, err = json.MarshalIndent(e, "", "  "); err != nil {
			return Item{}, fmt.Errorf("spooling: %w", err)
		}
	}
	if err := writeAtomic(path, append(b, '\n')); err != nil {
		return Item{}, fmt.Errorf("spooling: %w", err)
	}
	return Item{Name: name, Path: path, Entry: e}, nil
}

// filesDir is where the files of entry name are kept.
func filesDir(dir, name string) string {
	return filepath.Join(dir, "files", strings.TrimSuffix(name, ".json"))
}

// copyFiles copies files into dir (numbered, so equal base names stay
// apart), fsynced, and returns the copies' paths.
func (s *Spool) copyFiles(dir string, files []string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	out := make([]string, len(files))
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		out[i] = filepath.Join(dir, fmt.Sprintf("%03d-%s", i, filepath.Base(f)))
		if err := writeAtomic(out[i], b); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func writeAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o600)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

// names lists the entry files, oldest first.
func (s *Spool) names() ([]string, error) {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("reading spool: %w", err)
	}
	var names []string
	for _, de := range des {
		n := de.Name()
		if de.IsDir() || strings.HasPrefix(n, ".") || !strings.HasSuffix(n, ".json") {
			continue
		}
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

func (s *Spool) read(name string) (Entry, error) {
	var e Entry
	b, err := os.ReadFile(filepath.Join(s.dir, name))
	if err != nil {
		return e, err
	}
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.DisallowUnknownFields()
	if err := d.Decode(&e); err != nil {
		return e, err
	}
	return e, e.check()
}

// List returns the entries, oldest first, and the files that are not
// readable entries (left in place; Flush sets them aside).
func (s *Spool) List() ([]Item, []Corrupt, error) {
	names, err := s.names()
	if err != nil {
		return nil, nil, err
	}
	var items []Item
	var bad []Corrupt
	for _, n := range names {
		e, err := s.read(n)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // flushed meanwhile
			}
			bad = append(bad, Corrupt{Name: n, Path: filepath.Join(s.dir, n), Err: err.Error()})
			continue
		}
		items = append(items, Item{Name: n, Path: filepath.Join(s.dir, n), Entry: e})
	}
	return items, bad, nil
}

// SetAside lists the files set aside under sub ("corrupt" or "rejected").
func (s *Spool) SetAside(sub string) ([]string, error) {
	des, err := os.ReadDir(filepath.Join(s.dir, sub))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, de := range des {
		if !de.IsDir() && strings.HasSuffix(de.Name(), ".json") {
			out = append(out, filepath.Join(s.dir, sub, de.Name()))
		}
	}
	sort.Strings(out)
	return out, nil
}

// Outcome is what became of one delivery attempt.
type Outcome int

const (
	// Delivered: the server accepted the entry; it is removed.
	Delivered Outcome = iota
	// Rejected: the server refused it for good; it is moved to rejected/.
	Rejected
	// Keep: not delivered (server unreachable, or not authorized yet); the
	// flush stops here and keeps this entry and every later one, in order.
	Keep
	// Skip: not for this sender (another tenant); kept, and the flush goes on.
	Skip
)

// Sender delivers one entry. detail is kept with a rejected entry.
type Sender func(ctx context.Context, it Item) (o Outcome, detail string, err error)

// Result of one entry in a flush.
type Result struct {
	Item    Item    `json:"item"`
	Outcome Outcome `json:"-"`
	State   string  `json:"state"` // delivered, rejected, kept, skipped
	Detail  string  `json:"detail,omitempty"`
	Err     string  `json:"error,omitempty"`
	// MovedTo is where a rejected entry now is.
	MovedTo string `json:"movedTo,omitempty"`
}

// Report is what a flush did.
type Report struct {
	Results []Result  `json:"results"`
	Corrupt []Corrupt `json:"corrupt,omitempty"`
	// Remaining counts the entries still spooled.
	Remaining int `json:"remaining"`
	// Stopped is the error that stopped the flush early, if any.
	Stopped string `json:"stopped,omitempty"`
}

// Count returns how many results had outcome o.
func (r Report) Count(o Outcome) int {
	n := 0
	for _, x := range r.Results {
		if x.Outcome == o {
			n++
		}
	}
	return n
}

// Flush sends the entries oldest first, each once, holding the spool's lock
// (waiting for another flush to finish). A corrupted entry is moved to
// corrupt/ and reported.
func (s *Spool) Flush(ctx context.Context, send Sender) (Report, error) {
	var rep Report
	unlock, err := lock(ctx, filepath.Join(s.dir, ".lock"))
	if err != nil {
		return rep, fmt.Errorf("locking spool: %w", err)
	}
	defer unlock()
	names, err := s.names()
	if err != nil {
		return rep, err
	}
	for i, n := range names {
		if ctx.Err() != nil {
			rep.Stopped = ctx.Err().Error()
			rep.Remaining = s.remaining(names[i:])
			return rep, nil
		}
		e, err := s.read(n)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			c := Corrupt{Name: n, Path: filepath.Join(s.dir, n), Err: err.Error()}
			if to, merr := s.moveAside(n, "corrupt", ""); merr == nil {
				c.Path = to
			} else {
				c.Err += "; setting it aside: " + merr.Error()
			}
			rep.Corrupt = append(rep.Corrupt, c)
			continue
		}
		it := Item{Name: n, Path: filepath.Join(s.dir, n), Entry: e}
		o, detail, serr := send(ctx, it)
		r := Result{Item: it, Outcome: o, Detail: detail}
		if serr != nil {
			r.Err = serr.Error()
		}
		switch o {
		case Delivered:
			r.State = "delivered"
			if err := os.Remove(it.Path); err != nil {
				return rep, fmt.Errorf("removing delivered entry %s: %w", n, err)
			}
			_ = os.RemoveAll(filesDir(s.dir, n))
		case Rejected:
			r.State = "rejected"
			to, err := s.moveAside(n, "rejected", detail)
			if err != nil {
				return rep, fmt.Errorf("setting aside rejected entry %s: %w", n, err)
			}
			r.MovedTo = to
		case Skip:
			r.State = "skipped"
			rep.Remaining++
		default:
			r.State = "kept"
			rep.Results = append(rep.Results, r)
			rep.Stopped = r.Err
			rep.Remaining += s.remaining(names[i:])
			return rep, nil
		}
		rep.Results = append(rep.Results, r)
	}
	return rep, syncDir(s.dir)
}

func (s *Spool) remaining(names []string) int {
	n := 0
	for _, name := range names {
		if _, err := os.Stat(filepath.Join(s.dir, name)); err == nil {
			n++
		}
	}
	return n
}

// moveAside moves an entry into sub/, with a note beside it.
func (s *Spool) moveAside(name, sub, note string) (string, error) {
	dir := filepath.Join(s.dir, sub)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	to := filepath.Join(dir, name)
	if err := os.Rename(filepath.Join(s.dir, name), to); err != nil {
		return "", err
	}
	if note != "" {
		_ = writeAtomic(strings.TrimSuffix(to, ".json")+".reason.txt", []byte(note+"\n"))
	}
	if fd := filesDir(s.dir, name); dirExists(fd) {
		_ = os.MkdirAll(filepath.Join(dir, "files"), 0o700)
		_ = os.Rename(fd, filesDir(dir, name))
	}
	return to, syncDir(s.dir)
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
