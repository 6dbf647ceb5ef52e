package bus

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// BatchHandler applies a batch of messages, in stream order. nil
// acknowledges the whole batch; an error hands it back for redelivery, the
// whole of it: it must be idempotent.
type BatchHandler func(ctx context.Context, msgs []jetstream.Msg) error

// BatchLoop runs a BatchHandler over a consumer until stopped.
type BatchLoop struct {
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// ConsumeBatches fetches up to max messages at a time (waiting at most wait
// for a batch to fill) from cons, a consumer with AckAllPolicy or
// AckExplicitPolicy, and hands each batch to h, one batch at a time. A batch
// is acknowledged once h returns nil (with AckAll, by its last message); on
// an error it is nakked after retry and fetched again.
func ConsumeBatches(ctx context.Context, log *slog.Logger, cons jetstream.Consumer, max int, wait, retry time.Duration, h BatchHandler) *BatchLoop {
	ctx, cancel := context.WithCancel(ctx)
	l := &BatchLoop{cancel: cancel, done: make(chan struct{})}
	ackAll := cons.CachedInfo().Config.AckPolicy == jetstream.AckAllPolicy
	go func() {
		defer close(l.done)
		for ctx.Err() == nil {
			b, err := cons.FetchNoWait(max)
			if err == nil {
				var msgs []jetstream.Msg
				for m := range b.Messages() {
					msgs = append(msgs, m)
				}
				if len(msgs) == 0 {
					// Nothing waiting: block for the first, then take what came with it.
					if b, err = cons.Fetch(max, jetstream.FetchMaxWait(wait)); err == nil {
						for m := range b.Messages() {
							msgs = append(msgs, m)
						}
					}
				}
				if len(msgs) > 0 {
					settleBatch(ctx, log, msgs, ackAll, retry, h)
				}
			}
			if err != nil && ctx.Err() == nil && !errors.Is(err, jetstream.ErrNoMessages) {
				log.Warn("fetching a batch", "err", err)
				sleepCtx(ctx, retry)
			}
		}
	}()
	return l
}

func settleBatch(ctx context.Context, log *slog.Logger, msgs []jetstream.Msg, ackAll bool, retry time.Duration, h BatchHandler) {
	if err := h(ctx, msgs); err != nil {
		if ctx.Err() != nil {
			return // stopping: JetStream redelivers after the ack wait
		}
		log.Warn("batch not applied, will retry", "messages", len(msgs), "err", err)
		for _, m := range msgs {
			_ = m.NakWithDelay(retry)
		}
		return
	}
	if ackAll {
		_ = msgs[len(msgs)-1].DoubleAck(ctx)
		return
	}
	for _, m := range msgs {
		_ = m.Ack()
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Stop stops fetching and waits for the batch in hand; it is not
// acknowledged if the handler was cut short.
func (l *BatchLoop) Stop() {
	l.once.Do(func() {
		l.cancel()
		<-l.done
	})
}
