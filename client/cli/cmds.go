package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/odavl/sync/client"
	"github.com/odavl/sync/client/spool"
)

// clientFlags are the settings every client command takes.
type clientFlags struct {
	api, apiKey, org, project, credentials string
	spoolDir                               string
	json, strict, verbose                  bool
	retries                                int
	timeout                                time.Duration
}

func (f *clientFlags) register(cmd *cobra.Command) {
	fl := cmd.PersistentFlags()
	fl.StringVar(&f.api, "api", "", "server URL (default: ODAVL_CLOUD_API)")
	fl.StringVar(&f.apiKey, "api-key", "", "API key (default: ODAVL_API_KEY)")
	fl.StringVar(&f.org, "org", "", "organization id (default: ODAVL_ORGANIZATION_ID)")
	fl.StringVar(&f.project, "project", "", "project id (default: ODAVL_PROJECT_ID)")
	fl.StringVar(&f.credentials, "credentials", "", "a credentials.json as written by serve (<data>/credentials.json); flags and variables win over it")
	fl.StringVar(&f.spoolDir, "spool", "", "spool directory for uploads the server could not take (default: $XDG_STATE_HOME/odavl-sync/spool)")
	fl.BoolVar(&f.json, "json", false, "print the result as JSON on stdout")
	fl.BoolVar(&f.strict, "strict", false, "exit 3 when an upload was spooled instead of delivered")
	fl.BoolVar(&f.verbose, "verbose", false, "say what happens even when stdout is not a terminal")
	fl.IntVar(&f.retries, "retries", 5, "attempts per request for network errors, 5xx and 429 (1: no retry)")
	fl.DurationVar(&f.timeout, "timeout", 30*time.Second, "timeout of one request attempt")
}

// clockKey carries a client.Clock in the context (tests inject theirs).
type clockKey struct{}

// WithClock returns ctx carrying clk for the client commands.
func WithClock(ctx context.Context, clk client.Clock) context.Context {
	return context.WithValue(ctx, clockKey{}, clk)
}

func clockFrom(ctx context.Context) client.Clock {
	if c, ok := ctx.Value(clockKey{}).(client.Clock); ok {
		return c
	}
	return client.SystemClock{}
}

// session is what a client command works with.
type session struct {
	e     *Env
	f     *clientFlags
	out   *output
	cl    *client.Client
	cfg   client.Config
	clock client.Clock
	spool *spool.Spool
}

// resolveConfig reads the settings: flags, then ODAVL_* variables, then
// --credentials. A missing one is named in the error.
func resolveConfig(e *Env, f *clientFlags) (client.Config, error) {
	cfg := client.Config{BaseURL: f.api, APIKey: f.apiKey, OrganizationID: f.org, ProjectID: f.project}
	fill := func(dst *string, v string) {
		if strings.TrimSpace(*dst) == "" {
			*dst = strings.TrimSpace(v)
		}
	}
	fill(&cfg.BaseURL, e.Getenv("ODAVL_CLOUD_API"))
	fill(&cfg.APIKey, e.Getenv("ODAVL_API_KEY"))
	fill(&cfg.OrganizationID, e.Getenv("ODAVL_ORGANIZATION_ID"))
	fill(&cfg.ProjectID, e.Getenv("ODAVL_PROJECT_ID"))
	if f.credentials != "" {
		c, err := ReadCredentials(f.credentials)
		if err != nil {
			return cfg, WithCode(ExitUsage, fmt.Errorf("--credentials: %w", err))
		}
		fill(&cfg.BaseURL, c.APIURL)
		fill(&cfg.APIKey, c.APIKey)
		fill(&cfg.OrganizationID, c.OrganizationID)
		fill(&cfg.ProjectID, c.ProjectID)
	}
	if m := cfg.Missing(); len(m) > 0 {
		flag := map[string]string{"ODAVL_CLOUD_API": "--api", "ODAVL_API_KEY": "--api-key", "ODAVL_ORGANIZATION_ID": "--org", "ODAVL_PROJECT_ID": "--project"}
		parts := make([]string, len(m))
		for i, v := range m {
			parts[i] = v + " (or " + flag[v] + ")"
		}
		return cfg, WithCode(ExitUsage, fmt.Errorf("missing setting: %s; or pass --credentials <data>/credentials.json", strings.Join(parts, ", ")))
	}
	return cfg, nil
}

// spoolDir is --spool, else $XDG_STATE_HOME/odavl-sync/spool, else ~/.local/state/odavl-sync/spool.
func spoolDir(e *Env, f *clientFlags) (string, error) {
	if f.spoolDir != "" {
		return filepath.Abs(f.spoolDir)
	}
	if x := e.Getenv("XDG_STATE_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "odavl-sync", "spool"), nil
	}
	if h := e.Getenv("HOME"); h != "" {
		return filepath.Join(h, ".local", "state", "odavl-sync", "spool"), nil
	}
	return "", WithCode(ExitUsage, errors.New("no spool directory: set --spool, XDG_STATE_HOME or HOME"))
}

// openSpool opens the spool only (spool list needs no server).
func openSpool(ctx context.Context, e *Env, f *clientFlags) (*spool.Spool, error) {
	dir, err := spoolDir(e, f)
	if err != nil {
		return nil, err
	}
	clk := clockFrom(ctx)
	return spool.Open(dir, clk.Now)
}

// connect builds the client, opens the spool and, when flush is set, sends
// what the spool holds first (one attempt each; it stops at the first that
// does not go through).
func connect(ctx context.Context, e *Env, f *clientFlags, flush bool) (*session, error) {
	if f.retries < 1 {
		return nil, WithCode(ExitUsage, errors.New("--retries must be at least 1"))
	}
	cfg, err := resolveConfig(e, f)
	if err != nil {
		return nil, err
	}
	s := &session{e: e, f: f, out: newOutput(e, f), clock: clockFrom(ctx)}
	cfg.Clock = s.clock
	cfg.Timeout = f.timeout
	cfg.Retry = client.DefaultRetryPolicy()
	cfg.Retry.MaxAttempts = f.retries
	cfg.UserAgent = "odavl-sync/" + e.Version
	cfg.OnRetry = func(n client.RetryNotice) {
		s.out.info("retrying %s %s in %s (attempt %d failed: %v)", n.Method, n.URL, n.Wait.Round(time.Millisecond), n.Attempt, n.Err)
	}
	cl, err := client.New(cfg)
	if err != nil {
		return nil, WithCode(ExitUsage, err)
	}
	s.cl, s.cfg = cl, cl.Config()
	if s.spool, err = openSpool(ctx, e, f); err != nil {
		return nil, err
	}
	if flush {
		s.flushQuietly(ctx)
	}
	return s, nil
}

// flushQuietly sends spooled entries before the command's own work. It
// never changes the command's exit code; it reports what it did on stderr.
func (s *session) flushQuietly(ctx context.Context) {
	items, bad, err := s.spool.List()
	if err != nil {
		s.out.warn("spool: %v", err)
		return
	}
	if len(items) == 0 && len(bad) == 0 {
		return
	}
	one := client.NoRetry()
	rep, err := s.spool.Flush(ctx, s.sender(ctx, &one))
	if err != nil {
		s.out.warn("spool: %v", err)
		return
	}
	s.reportFlush(rep, false)
}
