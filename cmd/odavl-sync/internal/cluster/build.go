package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Binaries are the programs a cluster runs, as Build names them in its bin
// directory.
var Binaries = []string{"nats-server", "odavl-sync", "ingest", "jobs", "storage", "stats"}

// packages are what Build builds, in Binaries' order: nats-server at the
// version cmd/odavl-sync's go.mod pins (the one the tests embed).
var packages = []string{
	"github.com/nats-io/nats-server/v2", "./cmd/odavl-sync",
	"./services/ingest/cmd/ingest", "./services/jobs/cmd/jobs", "./services/storage/cmd/storage", "./services/stats/cmd/stats",
}

// Version is the build version the cluster's binaries report (-X main.version).
const Version = "cluster"

// Build builds every binary into bin with one go build from the workspace
// root (the directory holding go.work). go build writes a binary only when
// it changed, so a bin directory kept between runs (BinDir) costs a link
// check the next time.
func Build(ctx context.Context, root, bin string) error {
	if _, err := os.Stat(filepath.Join(root, "go.work")); err != nil {
		return fmt.Errorf("cluster: %s is not the workspace root (no go.work): %w", root, err)
	}
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	args := append([]string{"build", "-ldflags", "-X main.version=" + Version, "-o", bin + string(filepath.Separator)}, packages...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("cluster: go build: %w\n%s", err, out)
	}
	for _, b := range Binaries {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			return fmt.Errorf("cluster: go build made no %s: %w", b, err)
		}
	}
	return nil
}

// BinDir is a directory for the binaries of the workspace at root that
// stays between runs (under the system's temporary directory, one per
// workspace), so each run only relinks what changed.
func BinDir(root string) string {
	sum := sha256.Sum256([]byte(root))
	return filepath.Join(os.TempDir(), "odavl-sync-cluster-bin-"+hex.EncodeToString(sum[:6]))
}

// Root is the workspace root: the nearest directory at or above dir that
// holds go.work.
func Root(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cluster: no go.work at or above the working directory")
		}
		dir = parent
	}
}
