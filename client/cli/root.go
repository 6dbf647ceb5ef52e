package cli

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Env is what every command gets from the process.
type Env struct {
	Getenv func(string) string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Version is the program's version (--version, the User-Agent).
	Version string
}

// NewRoot returns the odavl-sync command with the client commands; a bad
// flag is a usage error (exit 2).
func NewRoot(e *Env, short string) *cobra.Command {
	root := &cobra.Command{
		Use:           "odavl-sync",
		Short:         short,
		Version:       e.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(e.Stdin)
	root.SetOut(e.Stdout)
	root.SetErr(e.Stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return WithCode(ExitUsage, err) })
	root.AddCommand(newPush(e), newUpload(e), newStatus(e), newResults(e), newJobs(e), newSpool(e), newStats(e))
	return root
}

// Execute runs root with args and returns the exit code, the error said on
// e.Stderr.
func Execute(ctx context.Context, root *cobra.Command, args []string, e *Env) int {
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if _, _, ferr := root.Find(args); ferr != nil {
		err = WithCode(ExitUsage, ferr) // an unknown command
	}
	if err != nil {
		fmt.Fprintln(e.Stderr, "odavl-sync:", err)
		return ExitCode(err)
	}
	return ExitOK
}

// Run is the client alone: the program of `go install …/client/cmd/odavl-sync`.
func Run(ctx context.Context, args []string, e *Env) int {
	return Execute(ctx, NewRoot(e, "The ODAVL Sync client: push results from CI, follow jobs, read statistics"), args, e)
}

// BuildVersion is v, or, when v is "dev" (no -ldflags), the module version
// `go install …@version` recorded in the binary.
func BuildVersion(v string) string {
	if v != "dev" {
		return v
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return v
}
