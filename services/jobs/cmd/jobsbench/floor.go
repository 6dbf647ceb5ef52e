package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/embedded"
	"github.com/odavl/sync/libs/events"
)

// floorStream is the stream of the floor's jobs.
const floorStream = "FLOOR"

// benchFloor measures the least a job queue on JetStream does per job, on
// a fresh server configured as ours (file storage, sync_interval 1s): one
// acknowledged publish per job from conc callers, then a durable pull
// consumer whose conc workers (libs/bus's consume loop, as every consumer
// of ours, with no middleware) take each delivery and acknowledge it, with
// no record, no event and no scheduling. Its process rate bounds what a
// queue that also records its jobs can reach here. The jobs are
// CloudEvents, as our submissions are (the loop decodes each). Then, as the queues'
// latency phase, latN more at rate/s, each timed from before its publish
// to its delivery in a worker's hands.
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
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: floorStream, Subjects: []string{"floor.>"}, Storage: jetstream.FileStorage}); err != nil {
		return figures{}, err
	}
	payload := randomText(size)
	enq, err := floorEnqueue(ctx, js, n, conc, payload)
	if err != nil {
		return figures{}, err
	}
	f := figures{EnqueuePerSec: float64(n) / enq.Seconds()}
	var lat latencies
	proc, paced, stop, err := floorConsume(ctx, js, n, n+latN, conc, &lat)
	if err != nil {
		return figures{}, err
	}
	defer stop()
	f.ProcessPerSec = float64(n) / proc.Seconds()
	lat.measuring.Store(true)
	floorPaced(ctx, js, latN, rate, payload)
	select {
	case <-paced:
	case <-time.After(2 * time.Minute):
		return figures{}, fmt.Errorf("floor: the paced jobs not all delivered after 2m")
	}
	f.P50, f.P99 = lat.percentiles()
	return f, nil
}

// floorEnqueue publishes n jobs from conc callers, each publish
// acknowledged, and returns how long it took.
func floorEnqueue(ctx context.Context, js jetstream.JetStream, n, conc int, payload string) (time.Duration, error) {
	return fromCallers(n, conc, func(i int64) error { return floorPublish(ctx, js, fmt.Sprintf("job-%d", i), payload) })
}

// floorConsume starts conc workers over the stream and returns how long
// the first n deliveries took until the server held every acknowledgement,
// a channel closed once total were handled, and the loop's stop.
func floorConsume(ctx context.Context, js jetstream.JetStream, n, total, conc int, lat *latencies) (time.Duration, <-chan struct{}, func(), error) {
	cfg := bus.ConsumerConfig{Stream: floorStream, Durable: "floor", Filters: []string{"floor.>"}, Workers: conc}
	cons, err := bus.EnsureConsumer(ctx, js, cfg)
	if err != nil {
		return 0, nil, nil, err
	}
	var handled atomic.Int64
	done, paced := make(chan struct{}), make(chan struct{})
	t0 := time.Now()
	loop, err := bus.Consume(ctx, quiet(), cons, cfg, func(_ context.Context, d bus.Delivery) error {
		lat.record(d.Event.Time)
		switch handled.Add(1) {
		case int64(n):
			close(done)
		case int64(total):
			close(paced)
		}
		return nil // acknowledged by the loop
	})
	if err != nil {
		return 0, nil, nil, err
	}
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		loop.Stop()
		return 0, nil, nil, fmt.Errorf("floor: %d of %d handled after 5m", handled.Load(), n)
	}
	for { // done when the server has taken every acknowledgement
		info, err := cons.Info(ctx)
		if err != nil {
			loop.Stop()
			return 0, nil, nil, err
		}
		if info.NumAckPending == 0 && info.NumPending == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(t0), paced, loop.Stop, nil
}

// floorPublish publishes one job as a CloudEvent, as our submissions are,
// its time the moment before the publish.
func floorPublish(ctx context.Context, js jetstream.JetStream, id, payload string) error {
	ev, err := events.New(id, "bench", "dev.odavl.bench.floor.v1", time.Now(), "org", "proj", map[string]string{"data": payload})
	if err != nil {
		return err
	}
	_, err = bus.Publish(ctx, js, "floor.normal.BENCH", ev)
	return err
}

// floorPaced publishes n jobs at rate/s, each from its own goroutine.
func floorPaced(ctx context.Context, js jetstream.JetStream, n, rate int, payload string) {
	atRate(n, rate, func(i int) { _ = floorPublish(ctx, js, fmt.Sprintf("paced-%d", i), payload) })
}
