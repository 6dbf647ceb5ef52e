// Command jobs runs the jobs service alone, as in its container.
package main

import (
	"github.com/odavl/sync/libs/standalone"
	"github.com/odavl/sync/services/jobs"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() { standalone.Main("jobs", version, jobs.Standalone) }
