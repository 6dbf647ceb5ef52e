// ODAVL patch 3: indexed queries. The upstream SQLite backend pushes down only
// a single _id equality, so every other filter, sort and count decoded the
// whole collection in Go. This file turns the filters the product uses
// (equality, $in and ranges on top-level fields, $and) and sorts on top-level
// fields into SQL on the same expressions the secondary indexes are created
// on (metadata.FieldExpr), so SQLite reads only what matches, in order.
//
// The handler still filters every returned document in Go, so a condition
// that is not pushed down stays correct, only slower. A translation is
// "exact" when SQL selects precisely what MongoDB's filter matches; only then
// may a count or a LIMIT be computed by SQLite. Exactness assumes a field
// holds values of one kind (strings, numbers and dates, or booleans), as
// every collection of ODAVL Sync does: SQL compares a date's milliseconds
// with numbers, an ObjectID's hex with strings and a boolean with 1 and 0,
// which MongoDB's type brackets keep apart.

package sqlite

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/FerretDB/FerretDB/internal/backends/sqlite/metadata"
	"github.com/FerretDB/FerretDB/internal/handler/sjson"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/fsql"
	"github.com/FerretDB/FerretDB/internal/util/iterator"
	"github.com/FerretDB/FerretDB/internal/util/lazyerrors"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// where is a translated filter.
type where struct {
	conds []string
	args  []any
	exact bool // conds select exactly what the filter matches

	fields map[string]bool // top-level fields compared, to check for arrays
}

// sqlKind is the kind of SQL value a scalar becomes.
type sqlKind int

const (
	kindNone sqlKind = iota
	kindText
	kindNumber
	kindBool
)

// sqlScalar converts a filter value to the SQL value FieldExpr yields for it.
func sqlScalar(v any) (any, sqlKind) {
	switch v := v.(type) {
	case string:
		return v, kindText
	case types.ObjectID:
		return fmt.Sprintf("%x", [12]byte(v)), kindText
	case int32:
		return int64(v), kindNumber
	case int64:
		return v, kindNumber
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, kindNone
		}

		return v, kindNumber
	case time.Time:
		return v.UnixMilli(), kindNumber
	case bool:
		if v {
			return int64(1), kindBool
		}

		return int64(0), kindBool
	default:
		return nil, kindNone
	}
}

// translateFilter translates filter as far as it can.
func translateFilter(filter *types.Document) *where {
	w := &where{exact: true, fields: map[string]bool{}}
	w.add(filter)

	return w
}

// add translates the conditions of one filter document, ANDed.
func (w *where) add(filter *types.Document) {
	if filter == nil {
		return
	}

	iter := filter.Iterator()
	defer iter.Close()

	for {
		k, v, err := iter.Next()
		if errors.Is(err, iterator.ErrIteratorDone) {
			return
		}

		if err != nil {
			w.exact = false
			return
		}

		switch {
		case k == "$comment":
		case k == "$and":
			arr, ok := v.(*types.Array)
			if !ok {
				w.exact = false
				continue
			}

			for i := 0; i < arr.Len(); i++ {
				sub, ok := must.NotFail(arr.Get(i)).(*types.Document)
				if !ok {
					w.exact = false
					continue
				}

				w.add(sub)
			}
		case k == "_id":
			w.addID(v)
		case !metadata.PushdownField(k):
			w.exact = false
		default:
			w.addField(k, v)
		}
	}
}

// addID pushes down equality and $in on _id, on the _id index.
func (w *where) addID(v any) {
	ids := []any{v}

	if d, ok := v.(*types.Document); ok {
		if d.Len() != 1 {
			w.exact = false
			return
		}

		switch op := d.Keys()[0]; op {
		case "$eq":
			ids = []any{must.NotFail(d.Get(op))}
		case "$in":
			arr, ok := must.NotFail(d.Get(op)).(*types.Array)
			if !ok {
				w.exact = false
				return
			}

			ids = make([]any, arr.Len())
			for i := range ids {
				ids[i] = must.NotFail(arr.Get(i))
			}
		default:
			w.exact = false
			return
		}
	}

	placeholders := make([]string, len(ids))
	args := make([]any, len(ids))

	for i, id := range ids {
		switch id.(type) {
		case string, types.ObjectID:
			placeholders[i] = "?"
			args[i] = string(must.NotFail(sjson.MarshalSingleValue(id)))
		default:
			w.exact = false
			return
		}
	}

	if len(ids) == 0 {
		w.conds = append(w.conds, "0")
		return
	}

	w.conds = append(w.conds, fmt.Sprintf("%s IN (%s)", metadata.IDColumn, strings.Join(placeholders, ", ")))
	w.args = append(w.args, args...)
}

// addField pushes down the conditions on one top-level field.
func (w *where) addField(field string, v any) {
	expr := metadata.FieldExpr(field)

	d, ok := v.(*types.Document)
	if !ok {
		w.compare(field, expr, "=", v)
		return
	}

	if d.Len() == 0 || !strings.HasPrefix(d.Keys()[0], "$") {
		w.exact = false // equality with an embedded document
		return
	}

	for _, op := range d.Keys() {
		ov := must.NotFail(d.Get(op))

		switch op {
		case "$eq":
			w.compare(field, expr, "=", ov)
		case "$gt":
			w.compare(field, expr, ">", ov)
		case "$gte":
			w.compare(field, expr, ">=", ov)
		case "$lt":
			w.compare(field, expr, "<", ov)
		case "$lte":
			w.compare(field, expr, "<=", ov)
		case "$in":
			w.in(field, expr, ov)
		default:
			w.exact = false
		}
	}
}

// compare adds expr op v.
func (w *where) compare(field, expr, op string, v any) {
	arg, kind := sqlScalar(v)
	if kind == kindNone || (kind == kindBool && op != "=") {
		w.exact = false
		return
	}

	w.fields[field] = true
	w.conds = append(w.conds, fmt.Sprintf("%s %s ?", expr, op))
	w.args = append(w.args, arg)

	// Keep a range inside its type bracket, as MongoDB does: in SQLite
	// every number sorts before every text, and NULL (missing) compares
	// to nothing.
	switch {
	case op == "=":
	case kind == kindText:
		w.conds = append(w.conds, expr+" >= ''")
	case kind == kindNumber:
		w.conds = append(w.conds, expr+" < ''")
	}
}

// in adds expr IN (values).
func (w *where) in(field, expr string, v any) {
	arr, ok := v.(*types.Array)
	if !ok {
		w.exact = false
		return
	}

	placeholders := make([]string, arr.Len())
	args := make([]any, arr.Len())

	for i := 0; i < arr.Len(); i++ {
		arg, kind := sqlScalar(must.NotFail(arr.Get(i)))
		if kind == kindNone {
			w.exact = false
			return
		}

		placeholders[i] = "?"
		args[i] = arg
	}

	w.fields[field] = true

	if len(args) == 0 {
		w.conds = append(w.conds, "0")
		return
	}

	w.conds = append(w.conds, fmt.Sprintf("%s IN (%s)", expr, strings.Join(placeholders, ", ")))
	w.args = append(w.args, args...)
}

// checkArrays makes the translation safe for fields that hold arrays: MongoDB
// matches an array by its elements, which an SQL comparison of the field
// misses. A field without an array marker index (not indexed), or one in
// which some document holds an array, is compared inexactly, with array
// documents let through for the handler's Go filter.
func (w *where) checkArrays(ctx context.Context, db *fsql.DB, table string) error {
	for field := range w.fields {
		safe, err := noArrays(ctx, db, table, field)
		if err != nil {
			return err
		}

		if safe {
			continue
		}

		w.exact = false
		expr := metadata.FieldExpr(field)

		for i, c := range w.conds {
			if strings.HasPrefix(c, expr+" ") {
				w.conds[i] = fmt.Sprintf("(%s OR json_type(%s, '$.\"%s\"') = 'array')", c, metadata.DefaultColumn, field)
			}
		}
	}

	return nil
}

// noArrays reports whether field has an array marker index and no document
// holds an array in it.
func noArrays(ctx context.Context, db *fsql.DB, table, field string) (bool, error) {
	var marker bool

	q := `SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?)`
	if err := db.QueryRowContext(ctx, q, metadata.ArrayMarkerName(table, field)).Scan(&marker); err != nil {
		return false, lazyerrors.Error(err)
	}

	if !marker {
		return false, nil
	}

	var arrays bool

	q = fmt.Sprintf(`SELECT EXISTS (SELECT 1 FROM %q WHERE %s)`, table, metadata.ArrayMarkerExpr(field))
	if err := db.QueryRowContext(ctx, q).Scan(&arrays); err != nil {
		return false, lazyerrors.Error(err)
	}

	return !arrays, nil
}

// clause returns the WHERE clause, or "".
func (w *where) clause() string {
	if len(w.conds) == 0 {
		return ""
	}

	return " WHERE " + strings.Join(w.conds, " AND ")
}

// orderBy translates a sort document on top-level fields whose documents
// hold no arrays, or returns "".
func orderBy(ctx context.Context, db *fsql.DB, table string, sort *types.Document) (string, error) {
	if sort.Len() == 0 {
		return "", nil
	}

	terms := make([]string, 0, sort.Len())

	for _, k := range sort.Keys() {
		dir, ok := must.NotFail(sort.Get(k)).(int64)
		if !ok || (dir != 1 && dir != -1) {
			return "", nil
		}

		var expr string

		switch {
		case k == "_id":
			expr = metadata.IDColumn
		case !metadata.PushdownField(k):
			return "", nil
		default:
			safe, err := noArrays(ctx, db, table, k)
			if err != nil || !safe {
				return "", err
			}

			expr = metadata.FieldExpr(k)
		}

		if dir == -1 {
			expr += " DESC"
		}

		terms = append(terms, expr)
	}

	return " ORDER BY " + strings.Join(terms, ", "), nil
}
