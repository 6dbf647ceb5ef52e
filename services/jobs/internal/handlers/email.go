package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/smtp"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/services/jobs/internal/queue"
)

// SMTP configures mail delivery; an empty Host writes mail to the outbox.
type SMTP struct {
	Host     string
	Port     int
	User     string
	Password string
	From     string
}

// Mailer sends the mail of EMAIL_SEND jobs.
type Mailer struct {
	log    *slog.Logger
	smtp   SMTP
	outbox string
}

// NewMailer returns a mailer: through SMTP when configured, else into
// outbox (one .eml file per job), which it says in the log.
func NewMailer(log *slog.Logger, s SMTP, outbox string) *Mailer {
	if s.From == "" {
		s.From = "ODAVL Sync <no-reply@odavl.local>"
	}
	if s.Port == 0 {
		s.Port = 587
	}
	if s.Host == "" {
		log.Info("email delivery: no SMTP_HOST, mail is written to the outbox directory", "outbox", outbox)
	}
	return &Mailer{log: log, smtp: s, outbox: outbox}
}

// Handle is the EMAIL_SEND handler.
func (m *Mailer) Handle(ctx context.Context, j *queue.Job) (any, error) {
	var e Email
	if err := json.Unmarshal(j.Payload, &e); err != nil {
		return nil, bus.Permanent(fmt.Errorf("decoding email: %w", err))
	}
	if fs := Validate(j.Type, j.Payload); len(fs) > 0 {
		return nil, bus.Permanent(fmt.Errorf("invalid email: %s %s", fs[0].Field, fs[0].Message))
	}
	msg := m.compose(j.JobID, e)
	if m.smtp.Host == "" {
		if err := os.MkdirAll(m.outbox, 0o700); err != nil {
			return nil, fmt.Errorf("creating outbox: %w", err)
		}
		path := filepath.Join(m.outbox, j.JobID+".eml")
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, msg, 0o600); err != nil {
			return nil, fmt.Errorf("writing mail: %w", err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return nil, fmt.Errorf("writing mail: %w", err)
		}
		m.log.Info("email written to outbox (no SMTP configured)", "job", j.JobID, "to", e.To, "path", path)
		return map[string]any{"delivery": "outbox", "path": path, "to": e.To}, nil
	}
	addr := net.JoinHostPort(m.smtp.Host, strconv.Itoa(m.smtp.Port))
	var auth smtp.Auth
	if m.smtp.User != "" {
		auth = smtp.PlainAuth("", m.smtp.User, m.smtp.Password, m.smtp.Host)
	}
	from, _ := parseFrom(m.smtp.From)
	done := make(chan error, 1)
	go func() { done <- smtp.SendMail(addr, auth, from, e.To, msg) }()
	select {
	case err := <-done:
		if err != nil {
			return nil, fmt.Errorf("sending mail through %s: %w", addr, err)
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return map[string]any{"delivery": "smtp", "server": addr, "to": e.To}, nil
}

func parseFrom(s string) (string, error) {
	if i := strings.LastIndex(s, "<"); i >= 0 {
		return strings.Trim(s[i:], "<> "), nil
	}
	return s, nil
}

func (m *Mailer) compose(id string, e Email) []byte {
	var b strings.Builder
	h := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	h("From", m.smtp.From)
	h("To", strings.Join(e.To, ", "))
	h("Subject", mime.QEncoding.Encode("utf-8", e.Subject))
	h("Date", time.Now().UTC().Format(time.RFC1123Z))
	h("Message-ID", "<"+id+"@odavl-sync>")
	h("MIME-Version", "1.0")
	if e.HTML != "" {
		h("Content-Type", `text/html; charset="utf-8"`)
		b.WriteString("\r\n" + e.HTML + "\r\n")
	} else {
		h("Content-Type", `text/plain; charset="utf-8"`)
		b.WriteString("\r\n" + e.Text + "\r\n")
	}
	return []byte(b.String())
}
