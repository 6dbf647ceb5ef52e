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
// what a queue that also records its jobs can reach here. Then, as the
// queues' latency phase, latN more at rate/s, each timed from before its
// publish to its delivery in a worker's hands.
func benchFloor(ctx context.Context, dir string, n, conc, size, latN, rate int) (figures, error) {
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
	done, paced := make(chan struct{}), make(chan struct{})
	var lat latencies
	for range conc {
		go func() {
			for m := range msgs {
				if at, err := time.Parse(time.RFC3339Nano, m.Headers().Get("Bench-Sent")); err == nil {
					lat.record(at)
				}
				switch m.Ack(); acked.Add(1) {
				case int64(n):
					close(done)
				case int64(n + latN):
					close(paced)
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

	lat.measuring.Store(true)
	every := time.Second / time.Duration(rate)
	start := time.Now()
	for i := range latN {
		if d := time.Until(start.Add(time.Duration(i) * every)); d > 0 {
			time.Sleep(d)
		}
		go func() {
			m := nats.NewMsg("floor.normal.BENCH")
			m.Data = payload
			m.Header.Set("Bench-Sent", time.Now().Format(time.RFC3339Nano))
			_, _ = js.PublishMsg(ctx, m, jetstream.WithMsgID(fmt.Sprintf("paced-%d", i)))
		}()
	}
	select {
	case <-paced:
	case <-time.After(2 * time.Minute):
		return figures{}, fmt.Errorf("floor: %d of %d paced jobs delivered after 2m", acked.Load()-int64(n), latN)
	}
	p50, p99 := lat.percentiles()
	return figures{EnqueuePerSec: float64(n) / enq.Seconds(), ProcessPerSec: float64(n) / proc.Seconds(), P50: p50, P99: p99}, nil
}
