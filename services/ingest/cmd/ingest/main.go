// Command ingest runs the gateway alone, as in its container.
package main

import (
	"github.com/odavl/sync/libs/standalone"
	"github.com/odavl/sync/services/ingest"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() { standalone.Main("ingest", version, ingest.Standalone) }
