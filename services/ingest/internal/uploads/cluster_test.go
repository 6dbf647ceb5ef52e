package uploads_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/services/ingest/internal/uploads"
)

// On a three-node cluster with R3 streams (where a refused expectation is
// error 10164, not 10071, and a publish whose message id is still being
// applied is refused with 10158), concurrent uploads under one key are one
// upload and replays of it, and a different payload under the key a
// conflict.
func TestOneKeyOnACluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	js := startCluster(t)
	ctx := context.Background()
	if err := bus.EnsureStreams(ctx, js, bus.StreamOptions{Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	up, err := uploads.Open(ctx, js, 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	oneUpload(t, up, js, 12)
}

// startCluster starts three JetStream servers routed to each other and
// returns a JetStream context on the first.
func startCluster(t *testing.T) jetstream.JetStream {
	t.Helper()
	ports := make([]int, 3)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	var routes []*url.URL
	for _, p := range ports {
		routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	var first *server.Server
	for i, p := range ports {
		ns, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
			Cluster: server.ClusterOpts{Name: "c", Host: "127.0.0.1", Port: p}, Routes: routes, NoLog: true, NoSigs: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		go ns.Start()
		t.Cleanup(ns.Shutdown)
		if !ns.ReadyForConnections(10 * time.Second) {
			t.Fatal("server not ready")
		}
		if first == nil {
			first = ns
		}
	}
	nc, err := nats.Connect(first.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for { // until the cluster has a JetStream meta leader
		if _, err := js.AccountInfo(context.Background()); err == nil {
			return js
		}
		if time.Now().After(deadline) {
			t.Fatal("no JetStream meta leader in 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
