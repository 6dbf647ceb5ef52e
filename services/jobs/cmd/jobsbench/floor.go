package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/odavl/sync/libs/embedded"
)

// benchFloor measures the least any job queue on JetStream does per job,
// on a fresh server configured as ours (file storage, sync_interval 1s):
// one acknowledged publish per job from conc callers, then conc workers
// that take each delivery of a durable pull consumer and acknowledge it,
// with no record, no event and no scheduling. Its process rate bounds
// what a queue that also records its jobs can reach here.
func benchFloor(ctx context.Context, dir string, n, conc, size int) (figures, error) {
	sdir, err := os.MkdirTemp(dir, "floor-")
	if err != nil {
		return figures{}, err
	}
	defer os.RemoveAll(sdir)
	ns, err := embedded.StartNATS(embedded.NATSConfig{StoreDir: filepath.Join(sdir, "js"), DontListen: true, SyncInterval: time.Second})
	if err != nil {
		return figures{}, err
	}
	defer ns.Shutdown()
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		return figures{}, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return figures{}, err
	}
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "FLOOR", Subjects: []string{"floor.>"}, Storage: jetstream.FileStorage})
	if err != nil {
		return figures{}, err
	}
	payload := []byte(randomText(size))

	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, conc)
	t0 := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				if _, err := js.Publish(ctx, "floor.normal.BENCH", payload, jetstream.WithMsgID(fmt.Sprintf("job-%d", i))); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	enq := time.Since(t0)
	select {
	case err := <-errc:
		return figures{}, err
	default:
	}

	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "floor", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: n})
	if err != nil {
		return figures{}, err
	}
	msgs := make(chan jetstream.Msg, conc)
	var acked atomic.Int64
	done := make(chan struct{})
	for range conc {
		go func() {
			for m := range msgs {
				if m.Ack() == nil && acked.Add(1) == int64(n) {
					close(done)
				}
			}
		}()
	}
	t0 = time.Now()
	cc, err := cons.Consume(func(m jetstream.Msg) { msgs <- m })
	if err != nil {
		return figures{}, err
	}
	defer cc.Stop()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		return figures{}, fmt.Errorf("floor: %d of %d acknowledged after 5m", acked.Load(), n)
	}
	// Done when the server has taken every acknowledgement.
	for {
		info, err := cons.Info(ctx)
		if err != nil {
			return figures{}, err
		}
		if info.NumAckPending == 0 && info.NumPending == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	proc := time.Since(t0)
	return figures{EnqueuePerSec: float64(n) / enq.Seconds(), ProcessPerSec: float64(n) / proc.Seconds()}, nil
}
