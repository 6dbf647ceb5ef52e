package backends

import "os"

// ODAVLBaseline switches ODAVL's patches 3 (index pushdown) and 4 (atomic
// updates) off when the process starts with ODAVL_STORE_BASELINE=1, so that
// `make bench-store` can measure the store before and after them in one run.
// Nothing but that benchmark sets it.
var ODAVLBaseline = os.Getenv("ODAVL_STORE_BASELINE") == "1"
