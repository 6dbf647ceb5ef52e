package bus

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// KeepAlive keeps a delivery from being redelivered while it is in hand
// (waiting for a worker, then handled), for at most limit from its
// receipt: it sends an in-progress ack every third of the ack wait. Without it a handler that outlasts the ack wait
// (the first backoff, when there is one) sees its message redelivered to
// another worker while it still runs; past limit, a stuck handler's message
// is redelivered.
func KeepAlive(limit time.Duration) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, d Delivery) error {
			if limit <= 0 || d.Msg == nil || d.AckWait <= 0 {
				return next(ctx, d)
			}
			start := d.Received
			if start.IsZero() {
				start = time.Now()
			}
			stop := keepAlive(d.Msg, d.AckWait/3, start.Add(limit))
			defer stop()
			return next(ctx, d)
		}
	}
}

// keepAlive sends an in-progress ack for msg every interval until the
// returned stop is called or until passes.
func keepAlive(msg jetstream.Msg, every time.Duration, until time.Time) (stop func()) {
	if every <= 0 || !time.Now().Before(until) {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		end := time.NewTimer(time.Until(until))
		defer end.Stop()
		for {
			select {
			case <-done:
				return
			case <-end.C:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	return func() { close(done) }
}
