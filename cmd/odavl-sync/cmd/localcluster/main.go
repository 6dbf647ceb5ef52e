// Command localcluster runs ODAVL Sync split and doubled on loopback (make
// cluster): three clustered nats-server processes with R3 JetStream, the
// store as its own process, two gateways, two jobs and two storage
// instances and one stats instance, each its own process built from this
// workspace. It prints where everything listens and the operator key, and
// stops them all on SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/odavl/sync/cmd/odavl-sync/internal/cluster"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "localcluster:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("localcluster", flag.ContinueOnError)
	dir := fs.String("dir", "", "data and logs (default: a new temporary directory, removed at stop)")
	gateways := fs.Int("gateways", 2, "gateway instances")
	jobs := fs.Int("jobs", 2, "jobs instances")
	storage := fs.Int("storage", 2, "storage instances")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *gateways < 1 || *jobs < 1 || *storage < 1 {
		return fmt.Errorf("-gateways, -jobs and -storage must be at least 1 (got %d, %d, %d)", *gateways, *jobs, *storage)
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	root, err := cluster.Root(wd)
	if err != nil {
		return err
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "odavl-sync-cluster-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*dir = d
	}

	bin := cluster.BinDir(root)
	fmt.Fprintf(stdout, "building into %s ...\n", bin)
	if err := cluster.Build(ctx, root, bin); err != nil {
		return err
	}
	c, err := cluster.Start(ctx, cluster.Options{Bin: bin, Dir: *dir, Gateways: *gateways, Jobs: *jobs, Storage: *storage})
	if err != nil {
		return err
	}
	defer c.Stop()
	fmt.Fprintln(stdout, c.Summary())
	fmt.Fprintf(stdout, "ODAVL_CLOUD_API=%s ODAVL_API_KEY=%s ODAVL_ORGANIZATION_ID=local ODAVL_PROJECT_ID=default (NATS_URL=%s)\n",
		c.GatewayURLs()[0], c.AdminKey(), c.NATSURL())
	fmt.Fprintln(stdout, "Ctrl-C stops every process")
	<-ctx.Done()
	return nil
}
