// Command storage runs the storage service alone, as in its container.
// With the local provider it serves the signed blob URLs itself on
// STORAGE_ADDR (default :8082); set STORAGE_PUBLIC_URL to the address
// clients reach.
package main

import (
	"github.com/odavl/sync/libs/standalone"
	"github.com/odavl/sync/services/storage"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() { standalone.Main("storage", version, storage.Standalone) }
