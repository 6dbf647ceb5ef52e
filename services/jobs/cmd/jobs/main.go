// Command jobs runs the jobs service alone, as in its container.
package main

import (
	"github.com/odavl/sync/libs/standalone"
	"github.com/odavl/sync/services/jobs"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	standalone.Main("jobs", version, func(d standalone.Deps) (standalone.Service, error) {
		cfg, err := jobs.ConfigFromEnv(d.Env)
		if err != nil {
			return nil, err
		}
		return jobs.New(d.Log, d.NC, d.DB, cfg)
	})
}
