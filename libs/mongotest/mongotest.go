// Package mongotest gives each test its own real embedded FerretDB (SQLite
// backend in the test's temporary directory) and a client of the official
// mongo-driver connected to it.
package mongotest

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/odavl/sync/libs/embedded"
	"github.com/odavl/sync/libs/mongodb"
)

// Bundle is a running store and a client of it.
type Bundle struct {
	URI    string
	Client *mongo.Client
	DB     *mongo.Database
}

// Start starts a store for tb; MONGO_TEST_URI, when set, uses that server
// instead (with a database of the test's own). Everything stops at cleanup.
func Start(tb testing.TB) *Bundle {
	tb.Helper()
	uri := os.Getenv("MONGO_TEST_URI")
	if uri == "" {
		st, err := embedded.StartStore(tb.TempDir(), "127.0.0.1:0", slog.New(slog.NewTextHandler(io.Discard, nil)), false)
		if err != nil {
			tb.Fatalf("starting store: %v", err)
		}
		tb.Cleanup(st.Stop)
		uri = st.URI
	}
	c, err := mongodb.Connect(context.Background(), uri)
	if err != nil {
		tb.Fatalf("connecting: %v", err)
	}
	tb.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return &Bundle{URI: uri, Client: c, DB: c.Database(dbName(tb))}
}

func dbName(tb testing.TB) string {
	b := []byte(tb.Name())
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	if len(b) > 48 {
		b = b[len(b)-48:]
	}
	return "t_" + string(b)
}
