package sqlite

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/internal/backends"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/must"
	"github.com/FerretDB/FerretDB/internal/util/state"
)

// Patch 11: no writer checkpoints (wal_autocheckpoint is 0), yet the pages
// written reach the database file soon after, checkpointed in the
// background, and the documents read back whole after a restart.
func TestODAVLCheckpointsInTheBackground(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	open := func() backends.Backend {
		be, err := NewBackend(&NewBackendParams{URI: "file:" + dir + "/", L: slog.New(slog.DiscardHandler), P: must.NotFail(state.NewProvider("")), BatchSize: 100})
		if err != nil {
			t.Fatal(err)
		}
		return be
	}
	be := open()
	c := must.NotFail(must.NotFail(be.Database("db")).Collection("c"))
	big := strings.Repeat("x", 10_000)
	for batch := range 10 { // ~10 MB: far over the 1,000 pages an automatic checkpoint waits for
		docs := make([]*types.Document, 100)
		for i := range docs {
			docs[i] = must.NotFail(types.NewDocument("_id", fmt.Sprintf("d%04d", batch*100+i), "s", big))
		}
		must.NotFail(c.InsertAll(ctx, &backends.InsertAllParams{Docs: docs}))
	}
	file := filepath.Join(dir, "db.sqlite")
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := os.Stat(file)
		if err == nil && st.Size() > 9_000_000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the database file holds %v bytes 10 s after ~10 MB were written: not checkpointed", st.Size())
		}
		time.Sleep(20 * time.Millisecond)
	}
	be.Close()

	be = open()
	defer be.Close()
	res := must.NotFail(must.NotFail(must.NotFail(be.Database("db")).Collection("c")).Query(ctx, nil))
	defer res.Iter.Close()
	n := 0
	for {
		_, doc, err := res.Iter.Next()
		if err != nil {
			break
		}
		if v, _ := doc.Get("s"); v != big {
			t.Fatalf("document %v lost its field", must.NotFail(doc.Get("_id")))
		}
		n++
	}
	if n != 1000 {
		t.Fatalf("%d documents after a restart, want 1000", n)
	}
}
