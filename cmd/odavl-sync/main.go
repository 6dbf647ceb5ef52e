// Command odavl-sync is the one binary of ODAVL Sync: `serve` runs every
// service with embedded NATS, an embedded MongoDB-compatible store and a
// local blob store in one process; the other commands are its clients.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/odavl/sync/client/cli"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole program; tests call it with their own arguments, environment and streams.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{Getenv: getenv, Stdin: stdin, Stdout: stdout, Stderr: stderr, Version: version}
	return cli.Execute(ctx, newRoot(e), args, e)
}
