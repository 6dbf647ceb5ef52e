package embedded

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// Store is a running embedded FerretDB.
type Store struct {
	URI    string
	cancel context.CancelFunc
	done   chan struct{}
}

var newMu sync.Mutex

// The embedded store must be ODAVL's fork of FerretDB (third_party/ferretdb,
// through each module's replace directive): its indexed queries and atomic
// updates are what the services rely on. With upstream FerretDB this line
// does not compile.
const _ = ferretdb.ODAVLPatches

// StartStore starts FerretDB with its SQLite backend on dir, listening on
// listen (host:port; "127.0.0.1:0" picks a free port). log receives its
// messages; FerretDB logs every failed command at WARN, so give it a quiet one.
//
// Its SQLite commits are as durable as JetStream's by default: in WAL mode
// with synchronous=NORMAL a commit survives a crash of the process but the
// last ones may be lost to a power loss, as JetStream's messages may be
// within its sync_interval. fullSync makes every commit reach the disk
// (synchronous=FULL), for deployments that run JetStream with
// sync_interval: always. NORMAL is about 1.7× the landing rate of FULL on a
// 2-core machine (docs/store.md).
func StartStore(dir, listen string, log *slog.Logger, fullSync bool) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating store dir: %w", err)
	}
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	// The benchmark's "before" side (ODAVL_STORE_BASELINE=1) is the store as
	// it was: every commit synced.
	baseline := os.Getenv("ODAVL_STORE_BASELINE") == "1"
	// ferretdb.New sets up process-wide state without a lock (the race
	// detector reports it when parallel tests start stores at once).
	newMu.Lock()
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: listen},
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/?_pragma=synchronous(" + map[bool]string{false: "normal", true: "full"}[fullSync || baseline] + ")",
		Logger:    log,
	})
	newMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("creating ferretdb: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Store{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		_ = f.Run(ctx)
	}()
	s.URI = f.MongoDBURI()
	return s, nil
}

// Stop stops the server and waits until it has closed its files.
func (s *Store) Stop() {
	s.cancel()
	<-s.done
}
