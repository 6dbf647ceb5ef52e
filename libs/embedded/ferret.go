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
func StartStore(dir, listen string, log *slog.Logger) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating store dir: %w", err)
	}
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	// ferretdb.New sets up process-wide state without a lock (the race
	// detector reports it when parallel tests start stores at once).
	newMu.Lock()
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: listen},
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/",
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
