package sqlite

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/internal/backends"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/iterator"
	"github.com/FerretDB/FerretDB/internal/util/must"
	"github.com/FerretDB/FerretDB/internal/util/state"
)

// BenchmarkODAVLReadLarge reads pages of 50 ~10 KB documents through the
// list's index, with the allocator's size classes held (patch 10) and
// without, the sides taking turns on one database.
func BenchmarkODAVLReadLarge(b *testing.B) {
	ctx := context.Background()
	be, err := NewBackend(&NewBackendParams{URI: "file:" + b.TempDir() + "/", L: slog.New(slog.DiscardHandler), P: must.NotFail(state.NewProvider("")), BatchSize: 100})
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	c := must.NotFail(must.NotFail(be.Database("db")).Collection("results"))
	must.NotFail(c.CreateIndexes(ctx, &backends.CreateIndexesParams{Indexes: []backends.IndexInfo{{Name: "tenant_received_id", Key: []backends.IndexKeyPair{
		{Field: "organizationId"}, {Field: "projectId"}, {Field: "receivedAt", Descending: true}, {Field: "_id", Descending: true}}}}}))
	issues := types.MakeArray(40)
	for i := range 40 {
		issues.Append(must.NotFail(types.NewDocument("file", fmt.Sprintf("packages/web/src/component%02d.tsx", i), "line", int32(i*7), "column", int32(3),
			"severity", "low", "message", "Unexpected console statement: remove it or use the logger", "detector", "eslint")))
	}
	for batch := range 10 {
		docs := make([]*types.Document, 100)
		for i := range docs {
			n := batch*100 + i
			docs[i] = must.NotFail(types.NewDocument("_id", fmt.Sprintf("upload-%09d", n), "organizationId", "org", "projectId", "p",
				"receivedAt", time.UnixMilli(1733300000000+int64(n)).UTC(), "data", must.NotFail(types.NewDocument("issues", issues))))
		}
		must.NotFail(c.InsertAll(ctx, &backends.InsertAllParams{Docs: docs}))
	}
	for _, side := range []string{"unpinned", "pinned", "unpinned", "pinned", "unpinned", "pinned"} {
		if side == "pinned" {
			pinAllocator()
		} else {
			unpinAllocator()
		}
		b.Run(side, func(b *testing.B) {
			for range b.N {
				res := must.NotFail(c.Query(ctx, &backends.QueryParams{
					Filter:    must.NotFail(types.NewDocument("organizationId", "org", "projectId", "p")),
					IndexSort: must.NotFail(types.NewDocument("organizationId", int32(1), "projectId", int32(1), "receivedAt", int32(-1), "_id", int32(-1))),
					LimitHint: 50,
				}))
				docs := must.NotFail(iterator.ConsumeValuesN(res.Iter, 50))
				res.Iter.Close()
				if len(docs) != 50 {
					b.Fatalf("%d documents", len(docs))
				}
			}
		})
	}
	pinAllocator()
}
