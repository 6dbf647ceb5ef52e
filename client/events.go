package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Event is a CloudEvent of the caller's project, as the live stream sends it.
type Event struct {
	SpecVersion    string          `json:"specversion"`
	ID             string          `json:"id"`
	Source         string          `json:"source"`
	Type           string          `json:"type"`
	Subject        string          `json:"subject,omitempty"` // the upload, job or file id
	Time           time.Time       `json:"time"`
	DataSchema     string          `json:"dataschema,omitempty"` // the $id of the data's schema in the AsyncAPI document
	OrganizationID string          `json:"organizationid,omitempty"`
	ProjectID      string          `json:"projectid,omitempty"`
	Data           json.RawMessage `json:"data,omitempty"`
}

// ErrStreamShutdown is returned by Events when the server said it stops;
// connect again.
var ErrStreamShutdown = errors.New("the server ended the event stream (shutdown); reconnect")

// Events streams the project's live events (processed uploads, critical
// alerts, job and file changes) to on, until ctx ends (nil), on returns an
// error (that error), or the stream ends (ErrStreamShutdown, or a
// *TransportError). No replay: only events published while connected.
// opened, when set, is called once the server has accepted the stream.
func (c *Client) Events(ctx context.Context, opened func(), on func(Event) error) error {
	target := c.url("/api/v1/events/stream", nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	req.Header.Set("Authorization", "Bearer "+c.cfg.APIKey)
	req.Header.Set("X-Organization-Id", c.cfg.OrganizationID)
	req.Header.Set("X-Project-Id", c.cfg.ProjectID)
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return &TransportError{Method: http.MethodGet, URL: target, Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return decodeError(http.MethodGet, target, resp, b, c.cfg.Clock.Now())
	}
	if opened != nil {
		opened()
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	var kind string
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if kind == "shutdown" {
				return ErrStreamShutdown
			}
			if data.Len() > 0 {
				var ev Event
				if err := json.Unmarshal([]byte(data.String()), &ev); err != nil {
					return fmt.Errorf("event stream: decoding an event: %w", err)
				}
				if err := on(ev); err != nil {
					return err
				}
			}
			kind = ""
			data.Reset()
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event:"):
			kind = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return &TransportError{Method: http.MethodGet, URL: target, Err: err}
	}
	if kind == "shutdown" {
		return ErrStreamShutdown
	}
	return &TransportError{Method: http.MethodGet, URL: target, Err: io.ErrUnexpectedEOF}
}
