package main

import "github.com/spf13/cobra"

// addStatsCommands adds `stats …` (rebuild).
func addStatsCommands(root *cobra.Command, e *env) {}
