package sqlite

import (
	"sync"

	"modernc.org/libc"

	"github.com/FerretDB/FerretDB/internal/util/odavl"
)

// ODAVL patch 10: SQLite's memory (modernc.org/libc's malloc) comes from
// modernc.org/memory, which carves each size class out of 1 MB pages mapped
// for it and unmaps a page as soon as its last block is freed. Reading a
// ~10 KB document allocates a buffer of its size and frees it after the
// row: with nothing else of that class alive, every read mapped 1 MB,
// faulted its pages in and unmapped it (8% of a result list's CPU). One
// block of each class is held for the life of the process, so that each
// class keeps its first page.

// pinClasses are the allocator's size classes, 2^4 to 2^18 bytes (above
// 256 KB a block is mapped on its own).
const pinFirst, pinLast = 4, 18

var pinned struct {
	sync.Mutex
	blocks []uintptr
}

// pinAllocator holds one block of each size class (once; not on the
// benchmark's baseline side).
func pinAllocator() {
	if odavl.Baseline {
		return
	}

	pinned.Lock()
	defer pinned.Unlock()

	if pinned.blocks != nil {
		return
	}

	tls := libc.NewTLS()
	defer tls.Close()

	for log := pinFirst; log <= pinLast; log++ {
		// The allocator rounds a size up to 16 bytes and files it under
		// the bit length of that, less one: 2^(log-1)+1 is in class log.
		n := 1
		if log > pinFirst {
			n = 1<<(log-1) + 1
		}

		if p := libc.Xmalloc(tls, libc.Tsize_t(n)); p != 0 {
			pinned.blocks = append(pinned.blocks, p)
		}
	}
}

// unpinAllocator frees the held blocks (for BenchmarkODAVLReadLarge).
func unpinAllocator() {
	pinned.Lock()
	defer pinned.Unlock()

	tls := libc.NewTLS()
	defer tls.Close()

	for _, p := range pinned.blocks {
		libc.Xfree(tls, p)
	}

	pinned.blocks = nil
}
