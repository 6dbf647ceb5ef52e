package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/odavl/sync/client/cli"
)

// A second serve on a data directory in use fails at once, naming the pid
// that holds it, and leaves the first one and its credentials alone; once
// the first stops, the directory starts again.
func TestSecondServeOnOneDataDirFailsAtOnce(t *testing.T) {
	s := startServe(t, nil)
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := run(ctx, []string{"serve", "--data", s.Data, "--addr", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0"},
		func(string) string { return "" }, strings.NewReader(""), &out, &errOut)
	if code == cli.ExitOK || !strings.Contains(errOut.String(), "in use by pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("second serve: exit %d, stderr %q; want a failure naming pid %d", code, errOut.String(), os.Getpid())
	}
	if c, err := cli.ReadCredentials(filepath.Join(s.Data, credentialsFile)); err != nil || c.APIURL != s.Cred.APIURL {
		t.Errorf("credentials after the refused start: %+v %v; want the first serve's URL %s", c, err, s.Cred.APIURL)
	}
	if r := s.Do(http.MethodGet, "/api/v1/sync/insight", nil); r.Status != http.StatusOK {
		t.Errorf("the first serve after the refused start: %d %s", r.Status, r.Body)
	}
	s2 := s.Restart()
	if r := s2.Do(http.MethodGet, "/api/v1/sync/insight", nil); r.Status != http.StatusOK {
		t.Errorf("after a restart on the same directory: %d %s", r.Status, r.Body)
	}
}

// The operator key is printed once, when serve creates it; a restart points
// at the credentials file instead of printing the key again.
func TestTheKeyIsPrintedOnlyWhenCreated(t *testing.T) {
	s := startServe(t, nil)
	if !strings.Contains(s.out.String(), s.Cred.APIKey) {
		t.Fatalf("the first start does not show the new key:\n%s", s.out.String())
	}
	s2 := s.Restart()
	out := s2.out.String()
	if strings.Contains(out, s.Cred.APIKey) {
		t.Fatalf("a restart printed the key again:\n%s", out)
	}
	if !strings.Contains(out, filepath.Join(s.Data, credentialsFile)) || !strings.Contains(out, "KEY=$(grep -o") {
		t.Errorf("a restart does not say where the key is:\n%s", out)
	}
}
