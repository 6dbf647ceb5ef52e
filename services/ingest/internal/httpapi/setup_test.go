package httpapi

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/odavl/sync/libs/mongodb"
	"github.com/odavl/sync/libs/mongotest"
	"github.com/odavl/sync/libs/natstest"
	"github.com/odavl/sync/services/ingest/internal/schema"
	"github.com/odavl/sync/services/ingest/internal/tenancy"
	"github.com/odavl/sync/services/ingest/internal/uploads"
)

// testBundle is the real router over real NATS (JetStream, the contract's
// streams) and a real store, with one sync key.
type testBundle struct {
	router       *gin.Engine
	nats         *natstest.Bundle
	key          string
	org, project string
}

const testMaxBody = 1 << 20

func setup(tb testing.TB) *testBundle {
	tb.Helper()
	ctx := context.Background()
	nb := natstest.Start(tb)
	mb := mongotest.Start(tb)
	if err := mongodb.EnsureIndexes(ctx, mb.DB, tenancy.Indexes()); err != nil {
		tb.Fatal(err)
	}
	tenants := tenancy.New(mb.DB, 0)
	b := &testBundle{nats: nb, org: "acme", project: "web"}
	var err error
	if b.key, _, err = tenants.CreateKey(ctx, b.org, b.project, "test", []string{tenancy.ScopeSync}); err != nil {
		tb.Fatal(err)
	}
	up, err := uploads.Open(ctx, nb.JS, 30*24*time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	v, err := schema.New(time.Now)
	if err != nil {
		tb.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h, _ := New(log, nb.Conn, tenants, up, v, Options{MaxBodyBytes: testMaxBody, Ready: func(context.Context) error { return nil }})
	b.router = h.(*gin.Engine)
	return b
}
