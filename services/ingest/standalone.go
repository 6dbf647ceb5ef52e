package ingest

import (
	"context"

	"github.com/odavl/sync/libs/standalone"
)

// Standalone builds the service from the connections of a process of its
// own (libs/standalone): the ingest binary's build.
func Standalone(d standalone.Deps) (standalone.Service, error) {
	return standalone.Build(d, ConfigFromEnv, func(cfg Config) (*Service, error) {
		return New(context.Background(), d.Log, d.NC, d.DB, cfg, Options{Healthy: d.Healthy, Version: d.Version})
	})
}
