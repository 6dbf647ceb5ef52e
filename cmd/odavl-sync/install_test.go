package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"
)

// TestCLIGoInstall installs the client binary the way a CI job does
// (`go install github.com/odavl/sync/client/cmd/odavl-sync@VERSION`), from a
// clean module cache and outside the workspace, the client module served by
// a file-based module proxy built here from the repository (published
// modules come from the real proxy); then the installed binary pushes to a
// real serve.
func TestCLIGoInstall(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("the go tool is not on PATH; CI needs it for the go install test")
		}
		t.Skip("the go tool is not on PATH: skipping the go install test")
	}
	const (
		modPath = "github.com/odavl/sync/client"
		version = "v0.1.0"
	)
	// The proxy: <root>/<module>/@v/{list,VERSION.info,VERSION.mod,VERSION.zip}.
	proxy := t.TempDir()
	vdir := filepath.Join(proxy, filepath.FromSlash(modPath), "@v")
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := filepath.Abs("../../client")
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join(src, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(gomod, []byte("replace")) {
		t.Fatalf("client/go.mod has a replace directive: go install …@version refuses it\n%s", gomod)
	}
	zf, err := os.Create(filepath.Join(vdir, version+".zip"))
	if err != nil {
		t.Fatal(err)
	}
	if err := modzip.CreateFromDir(zf, module.Version{Path: modPath, Version: version}, src); err != nil {
		t.Fatalf("zipping the client module: %v", err)
	}
	if err := zf.Close(); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"list":            version + "\n",
		version + ".info": `{"Version":"` + version + `","Time":"2026-12-01T00:00:00Z"}`,
		version + ".mod":  string(gomod),
	} {
		if err := os.WriteFile(filepath.Join(vdir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	gobin := t.TempDir()
	cmd := exec.Command(goTool, "install", modPath+"/cmd/odavl-sync@"+version)
	cmd.Dir = t.TempDir() // outside the workspace
	cmd.Env = append(os.Environ(),
		"GOMODCACHE="+t.TempDir(), // clean
		"GOBIN="+gobin,
		"GOPROXY=file://"+filepath.ToSlash(proxy)+",https://proxy.golang.org",
		"GONOSUMDB="+modPath, // not published: no checksum database knows it
		"GOPRIVATE=", "GONOPROXY=", "GOWORK=off", "GOTOOLCHAIN=local",
		"GOFLAGS=-modcacherw", // so that t.TempDir can remove the cache
	)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		if o := string(out); os.Getenv("CI") == "" && (strings.Contains(o, "dial tcp") || strings.Contains(o, "no such host") || strings.Contains(o, "i/o timeout")) {
			t.Skipf("skipped: the published modules could not be fetched from proxy.golang.org (set CI to fail instead): %s", o)
		}
		t.Fatalf("go install %s/cmd/odavl-sync@%s: %v\n%s", modPath, version, err, out)
	}
	bin := filepath.Join(gobin, "odavl-sync")
	fi, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("go install from a clean module cache took %s; the binary is %.1f MB (%d bytes)", took.Round(time.Millisecond), float64(fi.Size())/1e6, fi.Size())

	// Small: the client alone, neither NATS nor the store.
	deps, err := exec.Command(goTool, "version", "-m", bin).CombinedOutput()
	if err != nil {
		t.Fatalf("go version -m: %v\n%s", err, deps)
	}
	for _, heavy := range []string{"nats-io", "FerretDB", "mongo-driver", "gin-gonic"} {
		if strings.Contains(string(deps), heavy) {
			t.Errorf("the installed client links %s:\n%s", heavy, deps)
		}
	}
	if fi.Size() > 20<<20 {
		t.Errorf("the client binary is %d bytes; it should stay small", fi.Size())
	}

	// The installed binary works against a real server, configured like CI.
	s := startServe(t, nil)
	c := s.Cred
	doc := writeJSON(t, t.TempDir(), "insight.json", insightBody(c.OrganizationID, c.ProjectID, 1))
	runBin := func(args ...string) (string, string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = append(os.Environ(), "ODAVL_CLOUD_API="+c.APIURL, "ODAVL_API_KEY="+c.APIKey,
			"ODAVL_ORGANIZATION_ID="+c.OrganizationID, "ODAVL_PROJECT_ID="+c.ProjectID, "XDG_STATE_HOME="+t.TempDir())
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return stdout.String(), stderr.String(), code
	}
	if out, _, _ := runBin("--version"); !strings.Contains(out, version) {
		t.Errorf("odavl-sync --version: %q, want %s", out, version)
	}
	if out, errOut, code := runBin("push", "insight", doc, "--wait", "--verbose"); code != 0 || !strings.Contains(out, "state: stored") {
		t.Fatalf("the installed odavl-sync push: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if out, errOut, code := runBin("results", "list", "insight"); code != 0 || !strings.Contains(out, "1 insight result(s)") {
		t.Errorf("the installed odavl-sync results list: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if _, errOut, code := runBin("serve"); code != 2 || !strings.Contains(errOut, `unknown command "serve"`) {
		t.Errorf("the client binary serves (exit %d %q): it must not", code, errOut)
	}
}
