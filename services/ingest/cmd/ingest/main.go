// Command ingest runs the gateway alone, as in its container.
package main

import (
	"context"

	"github.com/odavl/sync/libs/standalone"
	"github.com/odavl/sync/services/ingest"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	standalone.Main("ingest", version, func(d standalone.Deps) (standalone.Service, error) {
		cfg, err := ingest.ConfigFromEnv(d.Env)
		if err != nil {
			return nil, err
		}
		return ingest.New(context.Background(), d.Log, d.NC, d.DB, cfg, ingest.Options{Healthy: d.Healthy, Version: d.Version})
	})
}
