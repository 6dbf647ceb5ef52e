package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Follow applies every entry of a KV bucket, then every change, to apply
// (one goroutine, in order) until done is closed. It returns once the
// bucket's current state is applied, or an error if that takes over 10s.
func Follow(ctx context.Context, kv jetstream.KeyValue, done <-chan struct{}, apply func(jetstream.KeyValueEntry)) error {
	w, err := kv.WatchAll(context.WithoutCancel(ctx))
	if err != nil {
		return fmt.Errorf("watching %s: %w", kv.Bucket(), err)
	}
	initial := make(chan struct{})
	go func() {
		defer func() { _ = w.Stop() }()
		first := true
		for {
			var e jetstream.KeyValueEntry
			var ok bool
			select {
			case e, ok = <-w.Updates():
				if !ok {
					return
				}
			case <-done:
				return
			}
			if e == nil { // the end of the current state
				if first {
					first = false
					close(initial)
				}
				continue
			}
			apply(e)
		}
	}()
	select {
	case <-initial:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("bucket %s: no initial state in 10s", kv.Bucket())
	}
}
