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
// A watch the client ends on its own (a lost stream leader, a connection
// that came back) is started again after the last revision applied, so
// that the view never goes stale for good.
func Follow(ctx context.Context, kv jetstream.KeyValue, done <-chan struct{}, apply func(jetstream.KeyValueEntry)) error {
	w, err := kv.WatchAll(context.WithoutCancel(ctx))
	if err != nil {
		return fmt.Errorf("watching %s: %w", kv.Bucket(), err)
	}
	initial := make(chan struct{})
	go func() {
		var last uint64
		first := true
		for {
			ended := follow(w, done, func(e jetstream.KeyValueEntry) {
				if e == nil { // the end of the current state
					if first {
						first = false
						close(initial)
					}
					return
				}
				last = max(last, e.Revision())
				apply(e)
			})
			_ = w.Stop()
			if !ended {
				return // done
			}
			for {
				select {
				case <-done:
					return
				case <-time.After(time.Second):
				}
				if w, err = kv.WatchAll(context.WithoutCancel(ctx), jetstream.ResumeFromRevision(last+1)); err == nil {
					break
				}
			}
		}
	}()
	select {
	case <-initial:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("bucket %s: no initial state in 10s", kv.Bucket())
	}
}

// follow hands the watch's updates to apply until the watch ends (true)
// or done is closed (false).
func follow(w jetstream.KeyWatcher, done <-chan struct{}, apply func(jetstream.KeyValueEntry)) bool {
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return true
			}
			apply(e)
		case <-done:
			return false
		}
	}
}
