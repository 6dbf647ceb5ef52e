package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/FerretDB/FerretDB/internal/backends"
	"github.com/FerretDB/FerretDB/internal/handler/sjson"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/iterator"
	"github.com/FerretDB/FerretDB/internal/util/jsonb"
	"github.com/FerretDB/FerretDB/internal/util/must"
	"github.com/FerretDB/FerretDB/internal/util/odavl"
	"github.com/FerretDB/FerretDB/internal/util/state"
)

// randomJSON is a value of every JSON shape: numbers of each form sjson
// writes, strings that need escapes and some that do not, nesting.
func randomJSON(r *rand.Rand, depth int) any {
	n := 7
	if depth <= 0 {
		n = 5
	}

	switch r.IntN(n) {
	case 0:
		return []any{0, -1, math.MaxInt64, math.MinInt64, 1.5, -2.25e-300, 1e300, math.MaxFloat64, r.Int64(), r.Float64()}[r.IntN(10)]
	case 1:
		return []string{"", "plain", "ünïcödé ✓", "quote \" backslash \\ tab \t nl \n", "\u2028\u0000<>&", "a/b", "$s", "12345678901"}[r.IntN(8)]
	case 2:
		return r.IntN(2) == 0
	case 3:
		return nil
	case 4:
		return string(bytes.Repeat([]byte{'x'}, r.IntN(70000)))
	case 5:
		m := map[string]any{}
		for i := range r.IntN(6) {
			m[fmt.Sprintf("k%d-%c", i, 'a'+r.IntN(26))] = randomJSON(r, depth-1)
		}

		return m
	default:
		a := make([]any, r.IntN(6))
		for i := range a {
			a[i] = randomJSON(r, depth-1)
		}

		return a
	}
}

// The JSONB made here is what SQLite makes of the same text, byte for byte;
// SQLite reads it back as the same text, finds it well-formed, and its
// field lookups answer as on the text; and it converts back to the text.
func TestODAVLJSONBIsSQLitesJSONB(t *testing.T) {
	db, err := sql.Open("sqlite", "file::memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	r := rand.New(rand.NewPCG(9, 1))

	var docs [][]byte

	for range 400 {
		m := map[string]any{}
		for i := range r.IntN(8) {
			m[fmt.Sprintf("f%d", i)] = randomJSON(r, 3)
		}

		docs = append(docs, must.NotFail(json.Marshal(m)))
	}

	// Documents as sjson stores them, with its "$s" schema.
	for _, v := range []any{int32(-7), int64(math.MinInt64), 0.1, math.Copysign(0, -1), "é\"\\", time.UnixMilli(1733300000123).UTC(),
		types.Binary{B: []byte{0, 1, 255}}, types.ObjectID{1, 2, 3}, types.Null, types.Regex{Pattern: `^a\d$`, Options: "i"}, types.Timestamp(42),
		must.NotFail(types.NewArray(int32(1), "x", false)), must.NotFail(types.NewDocument("a", must.NotFail(types.NewDocument("b", 1.5))))} {
		d := must.NotFail(types.NewDocument("_id", "u-1", "v", v))
		docs = append(docs, must.NotFail(sjson.Marshal(d)))
	}

	for _, text := range docs {
		b, err := jsonb.FromText(text)
		if err != nil {
			t.Fatalf("%s: %v", text, err)
		}

		var want []byte
		if err := db.QueryRow("SELECT jsonb(?)", string(text)).Scan(&want); err != nil {
			t.Fatal(err)
		}

		if !bytes.Equal(b, want) {
			t.Fatalf("JSONB of %.200s:\n got %x\nwant %x", text, b[:min(len(b), 64)], want[:min(len(want), 64)])
		}

		var back string
		var valid int
		if err := db.QueryRow("SELECT json(?), json_valid(?, 8)", b, b).Scan(&back, &valid); err != nil {
			t.Fatal(err)
		}

		if back != string(text) || valid != 1 {
			t.Fatalf("SQLite reads %.200s as %.200s (strictly valid: %d)", text, back, valid)
		}

		got, err := jsonb.ToText(b)
		if err != nil || !bytes.Equal(got, text) {
			t.Fatalf("back from JSONB: %.200s, %v; want %.200s", got, err, text)
		}

		var fields map[string]json.RawMessage
		must.NoError(json.Unmarshal(text, &fields))

		for k := range fields {
			path := fmt.Sprintf(`$."%s"`, k)

			var onText, onBlob any
			var typeText, typeBlob string
			if err := db.QueryRow("SELECT ? ->> ?, json_type(?, ?), ? ->> ?, json_type(?, ?)", string(text), path, string(text), path, b, path, b, path).
				Scan(&onText, &typeText, &onBlob, &typeBlob); err != nil {
				t.Fatal(err)
			}

			if fmt.Sprint(onText) != fmt.Sprint(onBlob) || typeText != typeBlob {
				t.Fatalf("%s of %.200s: text %v (%s), JSONB %v (%s)", path, text, onText, typeText, onBlob, typeBlob)
			}
		}

		if !isJSONB(b) || isJSONB(text) {
			t.Fatalf("isJSONB cannot tell %.40s from its JSONB", text)
		}
	}
}

// What is not JSON is refused, not stored half-made.
func TestODAVLJSONBRefusesWhatIsNotJSON(t *testing.T) {
	for _, bad := range []string{`{`, `{"a":}`, `{"a" 1}`, `{"a":1,}`, `[1 2]`, `{"a":tru}`, `{"a":"x`, "{\"a\":\"\x01\"}", `{"a":1}x`, `{"a":--1}`, `{"a":1.2.3}`} {
		if b, err := jsonb.FromText([]byte(bad)); err == nil {
			t.Errorf("%q made %x", bad, b)
		}
	}

	for _, bad := range [][]byte{{0xcc}, {0xc7, 5, 'a'}, {0x1b, 0x13}, {0x14, '1'}, {0xfc, 0, 0, 0, 0, 0, 0, 0, 99}} {
		if s, err := jsonb.ToText(bad); err == nil {
			t.Errorf("%x read as %s", bad, s)
		}
	}
}

// A collection made before patch 9 keeps its documents as JSON text and
// works beside a new one, which stores JSONB, across a restart: inserts,
// filtered and sorted reads, updates and deletes give the same answers.
func TestODAVLTextAndJSONBCollectionsAnswerAlike(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	sp := must.NotFail(state.NewProvider(""))
	open := func() backends.Backend {
		b, err := NewBackend(&NewBackendParams{URI: "file:" + dir + "/", L: slog.New(slog.DiscardHandler), P: sp, BatchSize: 100})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	b := open()
	db := must.NotFail(b.Database("db"))
	odavl.Baseline = true // the store as it was: a JSON text column
	must.NoError(db.CreateCollection(ctx, &backends.CreateCollectionParams{Name: "old"}))
	odavl.Baseline = false
	must.NoError(db.CreateCollection(ctx, &backends.CreateCollectionParams{Name: "new"}))

	doc := func(i int) *types.Document {
		return must.NotFail(types.NewDocument("_id", fmt.Sprintf("d%03d", i), "org", "o", "n", int64(i), "tags", must.NotFail(types.NewArray("a", "b")),
			"note", "quote \" and ünïcödé", "at", time.UnixMilli(1733300000000+int64(i)).UTC()))
	}

	for _, name := range []string{"old", "new"} {
		c := must.NotFail(db.Collection(name))
		for i := 0; i < 30; i += 10 {
			var docs []*types.Document
			for j := i; j < i+10; j++ {
				docs = append(docs, doc(j))
			}
			must.NotFail(c.InsertAll(ctx, &backends.InsertAllParams{Docs: docs}))
		}
		must.NotFail(c.CreateIndexes(ctx, &backends.CreateIndexesParams{Indexes: []backends.IndexInfo{{Name: "org_n", Key: []backends.IndexKeyPair{{Field: "org"}, {Field: "n", Descending: true}}}}}))
		d := doc(7)
		d.Set("n", int64(1000))
		must.NotFail(c.UpdateAll(ctx, &backends.UpdateAllParams{Docs: []*types.Document{d}}))
		must.NotFail(c.DeleteAll(ctx, &backends.DeleteAllParams{IDs: []any{"d003"}}))
	}

	read := func(b backends.Backend, name string) string {
		c := must.NotFail(must.NotFail(b.Database("db")).Collection(name))
		res := must.NotFail(c.Query(ctx, &backends.QueryParams{
			Filter:    must.NotFail(types.NewDocument("org", "o", "n", must.NotFail(types.NewDocument("$gte", int64(5))))),
			IndexSort: must.NotFail(types.NewDocument("org", int32(1), "n", int32(-1))),
		}))
		docs := must.NotFail(iterator.ConsumeValues(res.Iter))
		var out bytes.Buffer
		for _, d := range docs {
			out.Write(must.NotFail(sjson.Marshal(d)))
		}
		return out.String()
	}

	raw, err := sql.Open("sqlite", "file:"+dir+"/db.sqlite")
	must.NoError(err)
	defer raw.Close()
	for name, typ := range map[string]string{"old": "text", "new": "blob"} {
		var table, got string
		must.NoError(raw.QueryRow("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE ?", name+"_%").Scan(&table))
		must.NoError(raw.QueryRow(fmt.Sprintf("SELECT DISTINCT typeof(_ferretdb_sjson) FROM %q", table)).Scan(&got))
		if got != typ {
			t.Fatalf("collection %s stores %s, want %s", name, got, typ)
		}
	}

	want := read(b, "old")
	if got := read(b, "new"); got != want || len(want) == 0 {
		t.Fatalf("the JSONB collection answers\n%.300s\nthe text one\n%.300s", got, want)
	}

	b.Close()
	b = open()
	defer b.Close()

	if got := read(b, "old"); got != want {
		t.Fatalf("after a restart the text collection answers\n%.300s\nwant\n%.300s", got, want)
	}
	if got := read(b, "new"); got != want {
		t.Fatalf("after a restart the JSONB collection answers\n%.300s\nwant\n%.300s", got, want)
	}
}

// BenchmarkODAVLInsertIndexed inserts ~10 KB documents, 100 a call, into a
// collection with a result list's index (organization, project, received,
// _id), stored as JSON text (before patch 9) and as JSONB, the two sides
// taking turns on one database.
func BenchmarkODAVLInsertIndexed(b *testing.B) {
	ctx := context.Background()
	be, err := NewBackend(&NewBackendParams{URI: "file:" + b.TempDir() + "/", L: slog.New(slog.DiscardHandler), P: must.NotFail(state.NewProvider("")), BatchSize: 100})
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	db := must.NotFail(be.Database("db"))
	issues := types.MakeArray(40)
	for i := range 40 {
		issues.Append(must.NotFail(types.NewDocument("file", fmt.Sprintf("packages/web/src/component%02d.tsx", i), "line", int32(i*7), "column", int32(3),
			"severity", "low", "message", "Unexpected console statement: remove it or use the logger", "detector", "eslint")))
	}
	n := 0
	doc := func() *types.Document {
		n++
		return must.NotFail(types.NewDocument("_id", fmt.Sprintf("upload-%09d", n), "organizationId", "org", "projectId", fmt.Sprintf("p%d", n%4),
			"product", "insight", "receivedAt", time.UnixMilli(1733300000000+int64(n)).UTC(), "data", must.NotFail(types.NewDocument("issues", issues))))
	}
	b.Logf("document: %d bytes of JSON text", len(must.NotFail(sjson.Marshal(doc()))))
	for _, side := range []string{"text", "jsonb"} {
		odavl.Baseline = side == "text"
		must.NoError(db.CreateCollection(ctx, &backends.CreateCollectionParams{Name: side}))
		odavl.Baseline = false
		c := must.NotFail(db.Collection(side))
		must.NotFail(c.CreateIndexes(ctx, &backends.CreateIndexesParams{Indexes: []backends.IndexInfo{{Name: "tenant_received_id", Key: []backends.IndexKeyPair{
			{Field: "organizationId"}, {Field: "projectId"}, {Field: "receivedAt", Descending: true}, {Field: "_id", Descending: true}}}}}))
	}
	for _, side := range []string{"text", "jsonb", "text", "jsonb", "text", "jsonb"} {
		b.Run(side, func(b *testing.B) {
			c := must.NotFail(db.Collection(side))
			for range b.N {
				docs := make([]*types.Document, 100)
				for i := range docs {
					docs[i] = doc()
				}
				must.NotFail(c.InsertAll(ctx, &backends.InsertAllParams{Docs: docs}))
			}
			b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "docs/s")
		})
	}
}
