package main

import "github.com/spf13/cobra"

// addClientCommands adds the commands that talk to a running server.
func addClientCommands(root *cobra.Command, e *env) {}
