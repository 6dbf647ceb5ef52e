package bus

import (
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"
)

// Lifeline watches a process's NATS connections. nats.go reconnects after
// a network failure by itself, but some server errors (an over-long control
// line, an unknown -ERR) close a connection for good: the services on it
// would stop working while the process looked alive. A Lifeline turns such a
// close into a failure the process acts on: Err reports it (for /healthz)
// and Lost is closed (to stop the process, so its supervisor restarts it).
type Lifeline struct {
	mu      sync.Mutex
	closing bool
	err     error
	lost    chan struct{}
}

// NewLifeline returns a Lifeline watching no connection yet.
func NewLifeline() *Lifeline { return &Lifeline{lost: make(chan struct{})} }

// Watch makes a close of nc that the process did not ask for (Closing was
// not called first) fatal. It replaces nc's closed handler.
func (l *Lifeline) Watch(name string, nc *nats.Conn) {
	nc.SetClosedHandler(func(c *nats.Conn) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.closing || l.err != nil {
			return
		}
		cause := c.LastError()
		if cause == nil {
			cause = errors.New("closed")
		}
		l.err = fmt.Errorf("nats connection %s lost for good: %w", name, cause)
		close(l.lost)
	})
}

// Closing says the process is closing its connections itself: closes from
// now on are expected.
func (l *Lifeline) Closing() {
	l.mu.Lock()
	l.closing = true
	l.mu.Unlock()
}

// Err is nil while no watched connection has been lost.
func (l *Lifeline) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Lost is closed when a watched connection is lost.
func (l *Lifeline) Lost() <-chan struct{} { return l.lost }
