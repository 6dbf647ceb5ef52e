// ODAVL patches 3 (counts on indexes) and 4 (atomic updates), see
// third_party/ferretdb/ODAVL-PATCHES.md.

package handler

import (
	"math"
	"strings"
	"sync"

	"github.com/FerretDB/FerretDB/internal/backends"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/iterator"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// countPipeline recognises the pipeline of the drivers' CountDocuments,
// [{$match: …}, {$group: {_id: <constant>, <field>: {$sum: 1}}}], and returns
// its group id and field.
func countPipeline(stages []any) (id any, field string, ok bool) {
	if len(stages) != 2 {
		return nil, "", false
	}

	match, _ := stages[0].(*types.Document)
	group, _ := stages[1].(*types.Document)

	if match.Len() != 1 || !match.Has("$match") || group.Len() != 1 || !group.Has("$group") {
		return nil, "", false
	}

	spec, _ := must.NotFail(group.Get("$group")).(*types.Document)
	if spec.Len() != 2 || spec.Keys()[0] != "_id" {
		return nil, "", false
	}

	id = must.NotFail(spec.Get("_id"))
	switch v := id.(type) {
	case int32, int64, types.NullType:
	case string:
		if strings.HasPrefix(v, "$") {
			return nil, "", false
		}
	default:
		return nil, "", false
	}

	field = spec.Keys()[1]

	sum, _ := must.NotFail(spec.Get(field)).(*types.Document)
	if sum.Len() != 1 || !sum.Has("$sum") {
		return nil, "", false
	}

	switch one := must.NotFail(sum.Get("$sum")).(type) {
	case int32:
		ok = one == 1
	case int64:
		ok = one == 1
	case float64:
		ok = one == 1
	}

	return id, field, ok
}

// countResult is what the count pipeline returns for n matching documents:
// nothing for none (as $group over no documents), else one document.
func countResult(id any, field string, n int64) types.DocumentsIterator {
	if n == 0 {
		return iterator.Values(iterator.ForSlice([]*types.Document{}))
	}

	var v any = n
	if n <= math.MaxInt32 {
		v = int32(n)
	}

	return iterator.Values(iterator.ForSlice([]*types.Document{must.NotFail(types.NewDocument("_id", id, field, v))}))
}

// collectionLocks serialise the read-modify-write of updates, findAndModify
// and upserts per collection. The backend reads a document, the handler
// applies the update in Go, and the backend writes it back in another SQLite
// transaction; without this lock two concurrent $inc on one document both
// read the old value and one is lost, and two racing upserts both insert (one
// fails with E11000). The embedded store is the only writer of its SQLite
// files, and SQLite lets one writer at a time anyway, so this costs no write
// concurrency.
var collectionLocks sync.Map // db + "." + collection → *sync.Mutex

// lockCollection locks db.coll for an update and returns the unlock, which
// may be called more than once.
func lockCollection(db, coll string) func() {
	if backends.ODAVLBaseline {
		return func() {}
	}

	m, _ := collectionLocks.LoadOrStore(db+"."+coll, new(sync.Mutex))
	mu := m.(*sync.Mutex)
	mu.Lock()

	return sync.OnceFunc(mu.Unlock)
}
