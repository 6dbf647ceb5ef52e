package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/odavl/sync/client/cli"

	"github.com/odavl/sync/libs/embedded"
	"github.com/odavl/sync/libs/jsonlog"
)

type storeFlags struct {
	data     string
	listen   string
	fullSync bool
	logLevel string
}

func newStore(e *env) *cobra.Command {
	var f storeFlags
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Run the embedded MongoDB-compatible store alone, for services run as their own processes",
		Long: `store runs the embedded store (FerretDB on SQLite, the one serve embeds) on
--data and listens on --listen with the MongoDB wire protocol, until it is
stopped. It prints the store's MONGO_URI on a line of its own, for services
run as separate processes (the local cluster of make cluster). On
Kubernetes run MongoDB instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runStore(cmd.Context(), e, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.data, "data", "./data", "data directory (the store's files go under DIR/store)")
	fl.StringVar(&f.listen, "listen", "127.0.0.1:27017", "where the store listens (port 0 picks a free one)")
	fl.BoolVar(&f.fullSync, "full-sync", false, "make every commit reach the disk (SQLite synchronous=FULL), for JetStream's sync_interval: always")
	fl.StringVar(&f.logLevel, "log-level", "error", "the store's log level: debug, info, warn or error (it logs every failed command at warn)")
	return cmd
}

// runStore runs the store until ctx ends: the data directory is locked as
// serve locks it, so a serve and a store never share one.
func runStore(ctx context.Context, e *env, f storeFlags) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return cli.WithCode(cli.ExitUsage, fmt.Errorf("--log-level: %w", err))
	}
	data, unlock, err := takeDataDir(f.data)
	if err != nil {
		return err
	}
	defer unlock()
	dir := filepath.Join(data, "store")
	st, err := embedded.StartStore(dir, f.listen, jsonlog.New(e.Stderr, level).With("component", "ferretdb"), f.fullSync)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", f.listen, err)
	}
	defer st.Stop()
	fmt.Fprintf(e.Stdout, "store listening: MONGO_URI=%s (data %s)\n", st.URI, dir)
	<-ctx.Done()
	return nil
}
