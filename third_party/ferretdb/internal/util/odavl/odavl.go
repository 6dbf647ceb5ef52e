// Package odavl holds the switch of ODAVL's patches to this fork of FerretDB
// (ODAVL-PATCHES.md).
package odavl

import "os"

// Baseline switches ODAVL's patches 3 to 13 off when the process starts with
// ODAVL_STORE_BASELINE=1, so that `make bench-store` can measure the store
// before and after them in one run. Nothing but that benchmark sets it.
var Baseline = os.Getenv("ODAVL_STORE_BASELINE") == "1"
