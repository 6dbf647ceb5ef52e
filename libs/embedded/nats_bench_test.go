package embedded_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/embedded"
	"github.com/odavl/sync/libs/events"
)

// BenchmarkPublishDurability measures acknowledged 1 KB event publishes by 8
// concurrent publishers against the embedded server's file store, with
// JetStream's default fsync (acknowledged before fsync, flushed every 2
// minutes), a 1 s interval, and sync_interval always (fsync before every
// acknowledgement). Compare the sub-benchmarks of one run.
func BenchmarkPublishDurability(b *testing.B) {
	for _, mode := range []struct {
		name string
		cfg  embedded.NATSConfig
	}{
		{"default", embedded.NATSConfig{}},
		{"interval-1s", embedded.NATSConfig{SyncInterval: time.Second}},
		{"always", embedded.NATSConfig{SyncAlways: true}},
	} {
		b.Run(mode.name, func(b *testing.B) {
			cfg := mode.cfg
			cfg.StoreDir, cfg.DontListen = b.TempDir(), true
			ns, err := embedded.StartNATS(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer ns.Shutdown()
			nc, err := nats.Connect("", nats.InProcessServer(ns))
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			js, _ := jetstream.New(nc)
			ctx := context.Background()
			if err := bus.EnsureStreams(ctx, js, bus.StreamOptions{}); err != nil {
				b.Fatal(err)
			}
			data := map[string]string{"pad": string(make([]byte, 900))}
			var seq atomic.Int64
			b.SetParallelism(4) // 8 publishers on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					id := "e" + strconv.FormatInt(seq.Add(1), 10)
					ev, _ := events.New(id, "/bench", events.TypeInsightReceived, time.Now(), "o", "p", data)
					if _, err := bus.Publish(ctx, js, events.ReceivedSubject("o", "p", events.Insight, id), ev); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "acked/s")
		})
	}
}
