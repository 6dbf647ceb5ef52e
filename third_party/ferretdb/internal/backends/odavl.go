package backends

import "github.com/FerretDB/FerretDB/internal/util/odavl"

// ODAVLBaseline is odavl.Baseline: ODAVL's patches off, for the benchmark's
// "before" side.
var ODAVLBaseline = odavl.Baseline
