// Command odavl-sync is the ODAVL Sync client alone: push results from a CI
// job, follow uploads and jobs, read statistics. It needs neither NATS nor a
// store:
//
//	go install github.com/odavl/sync/client/cmd/odavl-sync@latest
//
// The server binary (github.com/odavl/sync/cmd/odavl-sync) has the same
// commands and adds serve, keys and stats rebuild.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/odavl/sync/client/cli"
)

// version is set at build time with -ldflags "-X main.version=..."; else the
// module version go install recorded.
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], &cli.Env{Getenv: os.Getenv, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Version: cli.BuildVersion(version)})
	stop()
	os.Exit(code)
}
