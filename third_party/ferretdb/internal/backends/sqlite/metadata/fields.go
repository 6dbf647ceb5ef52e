// ODAVL patch 3: indexed queries. Secondary indexes are created on the same
// SQL expressions the SQLite backend's queries filter and sort on, and every
// indexed top-level field gets a small partial "array marker" index, so a
// query can tell in O(1) whether any document holds an array in that field
// (MongoDB's equality then matches array elements, which a plain SQL
// comparison would miss: such a field is not pushed down exactly).

package metadata

import (
	"fmt"
	"strings"

	"github.com/FerretDB/FerretDB/internal/backends"
)

// PushdownField reports whether a field name can be pushed down: a
// top-level name with no characters that need quoting in a JSON path or an
// SQL literal.
func PushdownField(field string) bool {
	if field == "" || strings.HasPrefix(field, "$") {
		return false
	}

	return !strings.ContainsAny(field, ".\"'\\\x00")
}

// FieldExpr is the SQL expression of a top-level field's value as an SQL
// value: strings as TEXT, numbers and dates (milliseconds) as INTEGER or
// REAL, booleans as 1 and 0, missing fields as NULL. Queries and indexes use
// exactly this text, so SQLite matches them. The field must pass
// [PushdownField].
func FieldExpr(field string) string {
	return fmt.Sprintf(`%s->>'$."%s"'`, DefaultColumn, field)
}

// ArrayMarkerExpr is the expression of the array marker index of field.
func ArrayMarkerExpr(field string) string {
	return fmt.Sprintf(`json_type(%s, '$."%s"') = 'array'`, DefaultColumn, field)
}

// ArrayMarkerName is the name of the array marker index of field in table.
func ArrayMarkerName(table, field string) string {
	return table + "__arrays_" + field
}

// indexColumns returns the SQL columns of an index on key.
func indexColumns(key []IndexKeyPair) []string {
	columns := make([]string, len(key))

	for i, k := range key {
		if !backends.ODAVLBaseline && PushdownField(k.Field) && k.Field != "_id" {
			columns[i] = FieldExpr(k.Field)
		} else {
			fields := strings.Split(k.Field, ".")
			for j, f := range fields {
				fields[j] = fmt.Sprintf("%q", f)
			}

			columns[i] = fmt.Sprintf("%s->%s", DefaultColumn, strings.Join(fields, "->"))
		}

		if k.Descending {
			columns[i] += " DESC"
		}
	}

	return columns
}
