// Package natstest gives each test its own real NATS server with JetStream
// on a file store in the test's temporary directory, listening on a free
// loopback port, and the contract's streams.
package natstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/embedded"
)

// Bundle is a running server with one connection to it.
type Bundle struct {
	Server *server.Server
	URL    string
	Conn   *nats.Conn
	JS     jetstream.JetStream
}

// Start starts a server for tb, creates the contract's streams, and stops
// everything at cleanup.
func Start(tb testing.TB) *Bundle {
	tb.Helper()
	ns, err := embedded.StartNATS(embedded.NATSConfig{StoreDir: tb.TempDir(), Port: -1})
	if err != nil {
		tb.Fatalf("starting nats: %v", err)
	}
	tb.Cleanup(ns.Shutdown)
	b := &Bundle{Server: ns, URL: ns.ClientURL()}
	b.Conn = Connect(tb, b.URL)
	b.JS, err = jetstream.New(b.Conn)
	if err != nil {
		tb.Fatalf("jetstream: %v", err)
	}
	if err := bus.EnsureStreams(context.Background(), b.JS, bus.StreamOptions{}); err != nil {
		tb.Fatalf("streams: %v", err)
	}
	return b
}

// Connect opens a connection to url that is closed at cleanup.
func Connect(tb testing.TB, url string) *nats.Conn {
	tb.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1))
	if err != nil {
		tb.Fatalf("connecting to nats: %v", err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// Settled waits until cons has nothing left to deliver or redeliver (every
// message acked, terminated or past its MaxDeliver): no delivery can come
// after it. It fails tb after 10 s.
func Settled(tb testing.TB, cons jetstream.Consumer) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := cons.Info(context.Background())
		if err == nil && info.NumAckPending == 0 && info.NumPending == 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the consumer never settled: %+v %v", info, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
