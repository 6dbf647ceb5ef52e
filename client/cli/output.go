package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/odavl/sync/client"
)

// output is how a client command speaks: JSON on stdout with --json; text
// when stdout is a terminal (or --verbose); otherwise quiet, except for
// warnings (a spooled upload, a rejected one) on stderr.
type output struct {
	e       *Env
	json    bool
	chatty  bool // informational lines
	barsOut io.Writer
}

func newOutput(e *Env, f *clientFlags) *output {
	o := &output{e: e, json: f.json, chatty: f.verbose || isTerminal(e.Stdout)}
	if isTerminal(e.Stderr) && !f.json {
		o.barsOut = e.Stderr
	}
	return o
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// info is a line for a person watching; quiet when nobody is.
func (o *output) info(format string, args ...any) {
	if o.chatty && !o.json {
		fmt.Fprintf(o.e.Stderr, format+"\n", args...)
	}
}

// warn is always said, on stderr.
func (o *output) warn(format string, args ...any) {
	fmt.Fprintf(o.e.Stderr, "odavl-sync: "+format+"\n", args...)
}

// result prints v as JSON with --json, else text when chatty (or always).
func (o *output) result(v any, always bool, text func(w io.Writer)) {
	if o.json {
		enc := json.NewEncoder(o.e.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(v)
		return
	}
	if always || o.chatty {
		text(o.e.Stdout)
	}
}

// rejection turns a rejected request into the command's error, with the
// server's field errors, exit code 4.
func rejection(what string, err error) error {
	var ae *client.Error
	if !errors.As(err, &ae) {
		return WithCode(ExitRejected, fmt.Errorf("%s rejected: %w", what, err))
	}
	// Keep what the error was wrapped in ("part 3 of 3: ").
	ctx := strings.TrimSuffix(err.Error(), ae.Error())
	return WithCode(ExitRejected, &rejectedError{what: what, ctx: ctx, e: ae})
}

type rejectedError struct {
	what, ctx string
	e         *client.Error
}

func (r *rejectedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s rejected: %s%d", r.what, r.ctx, r.e.Status)
	if r.e.Title != "" {
		b.WriteString(" " + r.e.Title)
	}
	if r.e.Detail != "" {
		b.WriteString(": " + r.e.Detail)
	} else if r.e.Body != "" {
		b.WriteString(": " + r.e.Body)
	}
	for _, f := range r.e.Fields {
		fmt.Fprintf(&b, "\n  %s: %s", f.Field, f.Message)
	}
	return b.String()
}

func (r *rejectedError) Unwrap() error { return r.e }

// problemJSON is how --json shows an error.
type problemJSON struct {
	Error   string        `json:"error"`
	Problem *client.Error `json:"problem,omitempty"`
}

// progress draws a progress bar on a terminal; it is silent elsewhere.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	label string
	total int64
	done  int64
	last  time.Time
	start time.Time
}

func (o *output) progress(label string, total int64) *progress {
	return &progress{w: o.barsOut, label: label, total: total, start: time.Now()}
}

// Set records done bytes of total.
func (p *progress) Set(done, total int64) {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done, p.total = done, total
	if now := time.Now(); now.Sub(p.last) >= 100*time.Millisecond || done >= total {
		p.last = now
		p.draw()
	}
}

func (p *progress) draw() {
	const width = 30
	frac := 1.0
	if p.total > 0 {
		frac = float64(p.done) / float64(p.total)
	}
	n := int(frac * width)
	rate := float64(p.done) / max(time.Since(p.start).Seconds(), 0.001)
	fmt.Fprintf(p.w, "\r%s [%s%s] %3.0f%% %s/%s %s/s", p.label, strings.Repeat("=", n), strings.Repeat(" ", width-n), frac*100,
		bytesText(p.done), bytesText(p.total), bytesText(int64(rate)))
}

// Finish ends the bar's line.
func (p *progress) Finish() {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.draw()
	fmt.Fprintln(p.w)
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fGiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fKiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}
