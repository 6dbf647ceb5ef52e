package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/odavl/sync/libs/bus"
	"github.com/odavl/sync/libs/natstest"
)

// OpenKV makes a bucket whose reads go through its stream's leader, and
// turns direct gets off on a bucket made with nats.go's defaults (an
// older version of ours); opening it again, as every instance does at its
// start, keeps them off, and its entries and their TTL stay.
func TestOpenKVReadsThroughTheLeader(t *testing.T) {
	t.Parallel()
	nb := natstest.Start(t)
	ctx := context.Background()
	direct := func(bucket string) bool {
		s, err := nb.JS.Stream(ctx, "KV_"+bucket)
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().Config.AllowDirect
	}
	cfg := jetstream.KeyValueConfig{Bucket: "fresh", History: 1, LimitMarkerTTL: time.Minute}
	if _, err := bus.OpenKV(ctx, nb.JS, cfg); err != nil {
		t.Fatal(err)
	}
	if direct("fresh") {
		t.Error("a bucket OpenKV made answers direct gets")
	}

	old, err := nb.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "older", History: 1, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if !direct("older") {
		t.Fatal("nats.go's defaults changed: its buckets no longer answer direct gets")
	}
	for range 2 {
		kv, err := bus.OpenKV(ctx, nb.JS, jetstream.KeyValueConfig{Bucket: "older", History: 1, TTL: time.Hour, Description: "d"})
		if err != nil {
			t.Fatal(err)
		}
		if e, err := kv.Get(ctx, "k"); err != nil || string(e.Value()) != "v" {
			t.Fatalf("the entry after OpenKV: %v %v", e, err)
		}
	}
	s, err := nb.JS.Stream(ctx, "KV_older")
	if err != nil {
		t.Fatal(err)
	}
	if c := s.CachedInfo().Config; c.AllowDirect || c.MaxAge != time.Hour || c.Description != "d" {
		t.Errorf("the older bucket's stream after OpenKV: direct gets %v, max age %s, description %q; want off, 1h, d", c.AllowDirect, c.MaxAge, c.Description)
	}
}
