package jobs

import (
	"github.com/odavl/sync/libs/standalone"
)

// Standalone builds the service from the connections of a process of its
// own (libs/standalone): the jobs binary's build.
func Standalone(d standalone.Deps) (standalone.Service, error) {
	return standalone.Build(d, ConfigFromEnv, func(cfg Config) (*Service, error) {
		cfg.Metrics, cfg.Registerer = d.Metrics, d.Registry
		return New(d.Log, d.NC, d.DB, cfg)
	})
}
