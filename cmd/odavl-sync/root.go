package main

import (
	"github.com/spf13/cobra"

	"github.com/odavl/sync/client/cli"
)

// env is what every command gets from the process.
type env = cli.Env

// newRoot is the client commands of package cli with serve, keys and stats rebuild.
func newRoot(e *env) *cobra.Command {
	root := cli.NewRoot(e, "ODAVL Sync: the cloud side of the ODAVL developer tools")
	root.AddCommand(newServe(e), newStore(e), newKeys(e))
	addStatsRebuild(root, e)
	return root
}
