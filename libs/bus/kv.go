package bus

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// OpenKV opens the bucket cfg describes, created if missing, with direct
// gets off: its reads go through the stream's leader.
//
// nats.go makes buckets with direct gets, which any replica answers, one
// that lags included: on a cluster, a Get right after an acknowledged Put
// may miss it (nats-server#6557; turning direct gets off is the advised
// remedy). A bucket whose reads decide what to write over which revision,
// or answer "not found" to a caller just told the write is durable, needs
// read-your-writes.
//
// An existing bucket is updated on its stream (description, replicas, the
// entries' TTL, the TTL of limit markers, direct gets), never through nats.go's
// CreateOrUpdateKeyValue, which would turn direct gets on again for every
// process that loads its handle meanwhile (the client reads the setting
// once, when it loads the handle).
func OpenKV(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	_, err := js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		_, err = js.CreateKeyValue(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) {
			err = nil // another process made it first
		}
	}
	if err != nil {
		return nil, fmt.Errorf("opening bucket %s: %w", cfg.Bucket, err)
	}
	name := "KV_" + cfg.Bucket
	s, err := js.Stream(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("reading stream %s: %w", name, err)
	}
	have := s.CachedInfo().Config
	want := have
	want.AllowDirect = false
	want.Description = cfg.Description
	want.Replicas = max(cfg.Replicas, 1)
	want.MaxAge = cfg.TTL
	if cfg.LimitMarkerTTL > 0 {
		want.AllowMsgTTL, want.SubjectDeleteMarkerTTL = true, cfg.LimitMarkerTTL
	}
	if want.AllowDirect != have.AllowDirect || want.Description != have.Description || want.Replicas != have.Replicas || want.MaxAge != have.MaxAge ||
		want.AllowMsgTTL != have.AllowMsgTTL || want.SubjectDeleteMarkerTTL != have.SubjectDeleteMarkerTTL {
		if _, err := js.UpdateStream(ctx, want); err != nil {
			return nil, fmt.Errorf("updating stream %s: %w", name, err)
		}
	}
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("opening bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}
