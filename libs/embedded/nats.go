// Package embedded starts the servers of the one-command default in process:
// NATS with JetStream on a file store, and FerretDB with its SQLite backend,
// which the services speak to through the official mongo-driver.
package embedded

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATSConfig configures the embedded NATS server.
type NATSConfig struct {
	// StoreDir holds JetStream's file store.
	StoreDir string
	// Host and Port to listen on; Port -1 picks a free port, DontListen serves in-process only.
	Host       string
	Port       int
	DontListen bool
	// SyncInterval is how often JetStream fsyncs (0: the server default, 2 minutes).
	// SyncAlways fsyncs every write before acknowledging it.
	SyncInterval time.Duration
	SyncAlways   bool
	// MaxPayload is the largest message (default 8 MiB).
	MaxPayload int32
}

// StartNATS starts a NATS server with JetStream and waits until it accepts connections.
func StartNATS(c NATSConfig) (*server.Server, error) {
	if c.MaxPayload == 0 {
		c.MaxPayload = 8 << 20
	}
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	opts := &server.Options{
		ServerName:   "odavl-sync-embedded",
		Host:         c.Host,
		Port:         c.Port,
		DontListen:   c.DontListen,
		JetStream:    true,
		StoreDir:     c.StoreDir,
		MaxPayload:   c.MaxPayload,
		SyncInterval: c.SyncInterval,
		SyncAlways:   c.SyncAlways,
		NoSigs:       true,
		NoLog:        true,
	}
	if !c.DontListen && c.Port > 0 {
		// The server reports a busy port only in its log; say it here.
		addr := net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("nats cannot listen on %s: %w", addr, err)
		}
		_ = ln.Close()
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("creating nats server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("nats server not ready after 10s")
	}
	return ns, nil
}
