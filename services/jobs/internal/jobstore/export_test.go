package jobstore

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"
)

// Apply applies a batch of the bucket's entries as the projection's
// consumer hands them over: tests repeat one to show a replay changes
// nothing.
func (p *Projection) Apply(ctx context.Context, msgs []jetstream.Msg) error {
	return p.apply(ctx, msgs)
}

// Lagging makes a writer read the bucket as a replica that has seen
// nothing yet would answer: every Get finds no entry, and its watch
// hands over no change. Writes, and the stream's history, are the
// bucket's own.
func Lagging(o WriterOptions) WriterOptions {
	o.bucket = func(kv jetstream.KeyValue) jetstream.KeyValue { return laggingKV{kv} }
	return o
}

type laggingKV struct{ jetstream.KeyValue }

func (laggingKV) Get(context.Context, string) (jetstream.KeyValueEntry, error) {
	return nil, jetstream.ErrKeyNotFound
}

func (l laggingKV) WatchAll(ctx context.Context, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error) {
	return l.KeyValue.Watch(ctx, "nothing.ever", opts...)
}
