// ODAVL patch 9: documents are stored as SQLite's binary JSON (JSONB).
//
// Every expression index and pushed-down filter reads the stored document
// with SQLite's JSON functions. Stored as text, each call found its parse in
// SQLite's JSON cache only by comparing the whole text (a 10 KB memcmp in
// the transpiled C), and the first parsed it: 61% of an indexed insert's
// time under the write lock. A JSONB value is read where it lies, with no
// parse and no cache. Here it is made from the JSON text sjson writes, in Go
// and outside the write lock; it is read in place (sjson.UnmarshalJSONB,
// patch 13).
//
// The format: https://sqlite.org/jsonb.html (package jsonb converts to and
// from it). Only the types JSON text needs are written: null, true, false,
// int, float, text, textj (text with escapes), array and object.

package sqlite

// isJSONB tells a stored JSONB document from JSON text: text starts with
// '{' (sjson writes no leading space), which is no JSONB object's header.
func isJSONB(b []byte) bool {
	return len(b) > 0 && b[0] != '{'
}
