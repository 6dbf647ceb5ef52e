package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/odavl/sync/libs/rpc"
)

//go:embed dashboard
var dashboardFiles embed.FS

// dashboardCSP allows nothing but the page's own script, style and images and
// requests to its own origin; no inline code, no frames, and DOM sinks only
// through Trusted Types (the script never writes HTML, only text nodes).
// imageOrigin, when set (a checked origin, never a wildcard), is the blob
// store whose signed links show stored screenshots: images only, from it alone.
func dashboardCSP(imageOrigin string) string {
	img := "'self'"
	if imageOrigin != "" {
		img += " " + imageOrigin
	}
	return "default-src 'none'; script-src 'self'; style-src 'self'; img-src " + img + "; connect-src 'self'; " +
		"base-uri 'none'; form-action 'none'; frame-ancestors 'none'; require-trusted-types-for 'script'; trusted-types 'none'"
}

// streamHeartbeat is how often an idle event stream sends a comment, so
// proxies and load balancers keep the connection open.
const streamHeartbeat = 15 * time.Second

// streamBuffer is how many events may wait for a slow client before NATS
// drops the newest ones (the page refetches its lists on the next event).
const streamBuffer = 256

// maxStreamsPerKey bounds the event streams one API key holds open on one
// gateway replica (dashboards in many tabs share a key; a leaking client
// must not hold unbounded connections and subscriptions).
const maxStreamsPerKey = 32

// streamCounts counts the open event streams per key.
type streamCounts struct {
	mu   sync.Mutex
	open map[string]int
}

func (s *streamCounts) acquire(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open[key] >= maxStreamsPerKey {
		return false
	}
	s.open[key]++
	return true
}

func (s *streamCounts) release(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open[key]--; s.open[key] <= 0 {
		delete(s.open, key)
	}
}

// dashboardRoutes mounts the dashboard and its live event stream.
func (a *API) dashboardRoutes(r *gin.Engine, v1 *gin.RouterGroup) {
	sub, err := fs.Sub(dashboardFiles, "dashboard")
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	// The root is where a browser pointed at the server lands first.
	toDashboard := func(c *gin.Context) { c.Redirect(http.StatusFound, "/dashboard/") }
	r.GET("/", toDashboard)
	r.HEAD("/", toDashboard)
	// Every page, script, style and image of the folder (vendored libraries
	// included); their licences and notes stay in the source only.
	err = fs.WalkDir(sub, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || staticType(path.Ext(name)) == "" {
			return err
		}
		h := staticFile(sub, name, dashboardCSP(a.opts.ImageOrigin))
		if name == "index.html" {
			r.GET("/dashboard", h)
			r.GET("/dashboard/", h)
			return nil
		}
		r.GET("/dashboard/"+name, h)
		return nil
	})
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	streams := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "odavl_event_streams", Help: "Open dashboard event streams.",
	})
	a.metrics.reg.MustRegister(streams)
	counts := &streamCounts{open: map[string]int{}}
	v1.GET("/events/stream", a.eventStream(streams, counts))
}

// staticType is the content type of a dashboard file that is served by its
// extension, "" for one that is not served (a licence, a note).
func staticType(ext string) string {
	switch ext {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	}
	return ""
}

// staticFile serves one embedded file with its hash as ETag and the
// dashboard's security headers.
func staticFile(fsys fs.FS, name, csp string) gin.HandlerFunc {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(b)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	ctype := staticType(path.Ext(name))
	return func(c *gin.Context) {
		h := c.Writer.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", etag)
		if c.GetHeader("If-None-Match") == etag {
			c.Status(http.StatusNotModified)
			return
		}
		c.Data(http.StatusOK, ctype, b)
	}
}

// streamSubjects are the subjects of one tenant that the event stream
// forwards: processed uploads, critical alerts, job lifecycle and files.
func streamSubjects(t rpc.Tenant) []string {
	p := t.OrganizationID + "." + t.ProjectID
	return []string{
		"sync.v1." + p + ".*.processed",
		"sync.v1." + p + ".insight.alert.critical",
		"jobs.v1.events." + p + ".>",
		"storage.v1." + p + ".file.>",
	}
}

// eventStream sends the caller's tenant's events as Server-Sent Events: each
// CloudEvent as one `event: <type>`, `id: <id>`, `data: <json>` frame. It
// reads plain NATS subscriptions (live only, no replay), so it ends when the
// client goes away or the server stops, and never holds a consumer.
func (a *API) eventStream(open prometheus.Gauge, counts *streamCounts) gin.HandlerFunc {
	return func(c *gin.Context) {
		key := keyOf(c).ID
		if !counts.acquire(key) {
			c.Header("Retry-After", "30")
			problem(c, http.StatusTooManyRequests, "too-many-streams",
				"this API key has "+strconv.Itoa(maxStreamsPerKey)+" event streams open already; close one (another tab) and retry")
			return
		}
		defer counts.release(key)
		a.streamEvents(c, open)
	}
}

func (a *API) streamEvents(c *gin.Context, open prometheus.Gauge) {
	ctx := c.Request.Context()
	msgs := make(chan *nats.Msg, streamBuffer)
	var subs []*nats.Subscription
	defer func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	}()
	for _, subj := range streamSubjects(tenantOf(c)) {
		s, err := a.nc.ChanSubscribe(subj, msgs)
		if err != nil {
			a.log.Error("subscribing event stream", "subject", subj, "err", err)
			problem(c, http.StatusServiceUnavailable, "unavailable", "the event stream is not available; retry")
			return
		}
		subs = append(subs, s)
	}
	// The subscriptions are registered on the server before the first byte
	// is sent, so an event published after the client sees the stream open
	// is never missed.
	fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err := a.nc.FlushWithContext(fctx)
	cancel()
	if err != nil {
		a.log.Warn("flushing event stream subscriptions", "err", err)
		problem(c, http.StatusServiceUnavailable, "unavailable", "the event stream is not available; retry")
		return
	}

	// The server's read timeout would end a stream after a minute (a read
	// deadline that passes cancels the request); a stream reads nothing.
	_ = http.NewResponseController(c.Writer).SetReadDeadline(time.Time{})

	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache, no-store")
	h.Set("X-Accel-Buffering", "no")
	c.Status(http.StatusOK)
	w := c.Writer
	open.Inc() // before the client can see the stream open
	defer open.Dec()
	// retry tells EventSource-like clients when to reconnect; the opening
	// comment lets the client know the subscription is live.
	if _, err := w.WriteString("retry: 3000\n: open\n\n"); err != nil {
		return
	}
	w.Flush()

	beat := time.NewTicker(streamHeartbeat)
	defer beat.Stop()
	var frame bytes.Buffer
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.opts.Stopping:
			// Tell the client the server is going away; it reconnects to
			// another replica (or to this one once it is back).
			_, _ = w.WriteString("event: shutdown\ndata: {}\n\n")
			w.Flush()
			return
		case <-beat.C:
			if _, err := w.WriteString(": ping\n\n"); err != nil {
				return
			}
			w.Flush()
		case m := <-msgs:
			frame.Reset()
			if !sseFrame(&frame, m.Data) {
				a.log.Warn("event stream skips a message that is not a CloudEvent", "subject", m.Subject)
				continue
			}
			if _, err := w.Write(frame.Bytes()); err != nil {
				return
			}
			w.Flush()
		}
	}
}

// sseFrame writes one CloudEvent as an SSE frame; the JSON is compacted so it
// stands on one data line. It reports false for a message that is not JSON.
func sseFrame(b *bytes.Buffer, data []byte) bool {
	var head struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	}
	if err := json.Unmarshal(data, &head); err != nil || head.Type == "" {
		return false
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, data); err != nil {
		return false
	}
	b.WriteString("event: ")
	b.WriteString(oneLine(head.Type))
	b.WriteString("\nid: ")
	b.WriteString(oneLine(head.ID))
	b.WriteString("\ndata: ")
	b.Write(compact.Bytes())
	b.WriteString("\n\n")
	return true
}

func oneLine(s string) string {
	return string(bytes.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == 0 {
			return -1
		}
		return r
	}, []byte(s)))
}
