// Command storage runs the storage service alone, as in its container.
package main

import (
	"github.com/odavl/sync/libs/standalone"
	"github.com/odavl/sync/services/storage"
)

func main() {
	standalone.Main("storage", func(d standalone.Deps) (standalone.Service, error) {
		cfg, err := storage.ConfigFromEnv(d.Env)
		if err != nil {
			return nil, err
		}
		return storage.New(d.Log, d.NC, d.DB, cfg)
	})
}
