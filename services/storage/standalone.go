package storage

import (
	"cmp"

	"github.com/odavl/sync/libs/standalone"
)

// Standalone builds the service from the connections of a process of its
// own (libs/standalone): the storage binary's build.
func Standalone(d standalone.Deps) (standalone.Service, error) {
	return standalone.Build(d, ConfigFromEnv, func(cfg Config) (*Service, error) {
		// The local provider serves its signed URLs itself.
		if cfg.Provider == ProviderLocal {
			cfg.Addr = cmp.Or(cfg.Addr, ":8082")
			cfg.DataDir = cmp.Or(cfg.DataDir, "./data/blobs")
		}
		return New(d.Log, d.NC, d.DB, cfg)
	})
}
