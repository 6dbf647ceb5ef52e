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
// [{$match: …}, {$group: {_id: <constant>, <field>: {$sum: 1}}}], and the
// count by one field's values, {$group: {_id: "$<field>", …}}. It returns
// the group id (or the field grouped by, without "$") and the count's field.
func countPipeline(stages []any) (id any, groupBy, field string, ok bool) {
	if len(stages) != 2 {
		return nil, "", "", false
	}

	match, _ := stages[0].(*types.Document)
	group, _ := stages[1].(*types.Document)

	if match.Len() != 1 || !match.Has("$match") || group.Len() != 1 || !group.Has("$group") {
		return nil, "", "", false
	}

	spec, _ := must.NotFail(group.Get("$group")).(*types.Document)
	if spec.Len() != 2 || spec.Keys()[0] != "_id" {
		return nil, "", "", false
	}

	id = must.NotFail(spec.Get("_id"))
	switch v := id.(type) {
	case int32, int64, types.NullType:
	case string:
		if strings.HasPrefix(v, "$") {
			groupBy = strings.TrimPrefix(v, "$")
			if groupBy == "" || strings.ContainsAny(groupBy, ".$") {
				return nil, "", "", false
			}
		}
	default:
		return nil, "", "", false
	}

	field = spec.Keys()[1]

	sum, _ := must.NotFail(spec.Get(field)).(*types.Document)
	if sum.Len() != 1 || !sum.Has("$sum") {
		return nil, "", "", false
	}

	switch one := must.NotFail(sum.Get("$sum")).(type) {
	case int32:
		ok = one == 1
	case int64:
		ok = one == 1
	case float64:
		ok = one == 1
	}

	return id, groupBy, field, ok
}

// countResult is what the count pipeline returns for a backend's count:
// nothing for no documents (as $group over none), else a document per group.
func countResult(id any, field string, res *backends.QueryResult) types.DocumentsIterator {
	count := func(n int64) any {
		if n <= math.MaxInt32 {
			return int32(n)
		}

		return n
	}

	var docs []*types.Document

	switch {
	case res.Groups != nil:
		for _, g := range res.Groups {
			v := g.Value
			if v == nil {
				v = types.Null
			}

			docs = append(docs, must.NotFail(types.NewDocument("_id", v, field, count(g.Count))))
		}
	case res.Count > 0:
		docs = append(docs, must.NotFail(types.NewDocument("_id", id, field, count(res.Count))))
	}

	return iterator.Values(iterator.ForSlice(docs))
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
