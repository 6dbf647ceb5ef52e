package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/odavl/sync/libs/events"
)

// StreamOptions tune the streams for a deployment.
type StreamOptions struct {
	// Replicas is the stream replica count: 1 for the embedded server, 3 on a cluster.
	Replicas int
	// MaxAge bounds how long events are kept (default 30 days). An upload's
	// received event is its idempotency record: MaxAge is at least the
	// gateway's IDEMPOTENCY_TTL.
	MaxAge time.Duration
	// Duplicates is the dedupe window for Nats-Msg-Id (default 2 minutes).
	Duplicates time.Duration
}

// StreamConfigs returns the configuration of the contract's streams.
func StreamConfigs(o StreamOptions) []jetstream.StreamConfig {
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 30 * 24 * time.Hour
	}
	if o.Duplicates <= 0 {
		o.Duplicates = 2 * time.Minute
	}
	mk := func(name, desc string, subjects ...string) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name:        name,
			Description: desc,
			Subjects:    subjects,
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			Replicas:    o.Replicas,
			MaxAge:      o.MaxAge,
			Duplicates:  o.Duplicates,
		}
	}
	return []jetstream.StreamConfig{
		// The gateway reads an upload's received event back by its subject
		// to answer a replay, from the stream's leader (no direct gets: a
		// follower may not have applied it yet).
		mk(events.StreamSync, "ODAVL Sync uploads: received, processed, alerts", "sync.v1.>"),
		// Job submissions (jobs.v1.<priority>.<type>) and lifecycle events
		// (jobs.v1.events.>) share one stream: NATS counts the two subject
		// sets as overlapping, and consumers tell them apart by filter.
		mk(events.StreamJobs, "ODAVL Sync jobs: submissions and lifecycle events", "jobs.v1.>"),
		mk(events.StreamStorage, "ODAVL Sync files: uploaded, deleted, expired", "storage.v1.>"),
	}
}

// EnsureStreams creates or updates the contract's streams. It is idempotent.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, o StreamOptions) error {
	for _, cfg := range StreamConfigs(o) {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("creating stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}
