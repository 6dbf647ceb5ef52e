package stats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// LeaseBucket is the JetStream key-value bucket that holds the stats lease:
// the one key LeaseKey names the instance that counts. Its entries expire
// LeaseTTL after their last renewal, so a crashed holder's lease lapses.
const (
	LeaseBucket = "stats_lease"
	LeaseKey    = "holder"
)

// ErrAnotherInstance is returned by Run when another stats instance holds
// the lease: the service counts in one instance only (updates of a project
// are serialised in its memory), so a second one refuses to start.
var ErrAnotherInstance = errors.New("another stats instance is running against this NATS and store: run exactly one")

// lease is this instance's hold on the bucket's key.
type lease struct {
	kv     jetstream.KeyValue
	holder string
	rev    uint64
	ttl    time.Duration
}

// acquireLease creates the key atomically (it fails when a live entry is
// there) and returns the lease, or ErrAnotherInstance naming the holder and
// when its lease lapses unless renewed.
func acquireLease(ctx context.Context, js jetstream.JetStream, cfg Config) (*lease, error) {
	ttl := cfg.LeaseTTL
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: LeaseBucket, Description: "ODAVL Sync stats: the one running instance",
		History: 1, TTL: ttl, Storage: jetstream.FileStorage, Replicas: max(cfg.Replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("creating bucket %s: %w", LeaseBucket, err)
	}
	host, _ := os.Hostname()
	holder := host + "/" + nuid.Next()
	rev, err := kv.Create(ctx, LeaseKey, []byte(holder))
	// A stream that has no leader yet (a cluster forming, an election)
	// does not answer for a moment: try again for up to 30 s. A create
	// whose answer was lost shows as the key holding this holder.
	for deadline := time.Now().Add(30 * time.Second); transient(err) && time.Now().Before(deadline) && ctx.Err() == nil; {
		time.Sleep(250 * time.Millisecond)
		rev, err = kv.Create(ctx, LeaseKey, []byte(holder))
		if errors.Is(err, jetstream.ErrKeyExists) {
			if cur, gerr := kv.Get(ctx, LeaseKey); gerr == nil && string(cur.Value()) == holder {
				rev, err = cur.Revision(), nil
			}
		}
	}
	if errors.Is(err, jetstream.ErrKeyExists) && cfg.TakeOverLease {
		rev, err = kv.Put(ctx, LeaseKey, []byte(holder))
	}
	if errors.Is(err, jetstream.ErrKeyExists) {
		cur, gerr := kv.Get(ctx, LeaseKey)
		if gerr != nil {
			return nil, fmt.Errorf("%w (lease %s/%s held)", ErrAnotherInstance, LeaseBucket, LeaseKey)
		}
		return nil, fmt.Errorf("%w: %s holds the lease %s/%s, renewed %s; it lapses %s after its holder stops renewing it",
			ErrAnotherInstance, cur.Value(), LeaseBucket, LeaseKey, cur.Created().UTC().Format(time.RFC3339), ttl)
	}
	if err != nil {
		return nil, fmt.Errorf("taking lease %s/%s: %w", LeaseBucket, LeaseKey, err)
	}
	return &lease{kv: kv, holder: holder, rev: rev, ttl: ttl}, nil
}

// keep renews the lease every third of its TTL until ctx ends, and calls
// lost (once) when a renewal fails for longer than the TTL or finds the key
// changed: another instance may then be counting, so this one must stop.
func (l *lease) keep(ctx context.Context, log *slog.Logger, lost func(error)) {
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	lastOK := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, l.ttl/3)
		rev, err := l.kv.Update(rctx, LeaseKey, []byte(l.holder), l.rev)
		cancel()
		switch {
		case err == nil:
			l.rev, lastOK = rev, time.Now()
		case ctx.Err() != nil:
			return
		case errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyNotFound) ||
			time.Since(lastOK) >= l.ttl:
			lost(fmt.Errorf("lease %s/%s lost: %w", LeaseBucket, LeaseKey, err))
			return
		default:
			log.Warn("renewing stats lease", "err", err)
		}
	}
}

// release deletes the key if this instance still holds it, so a successor
// starts at once instead of after the TTL.
func (l *lease) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = l.kv.Delete(ctx, LeaseKey, jetstream.LastRevision(l.rev))
}

// transient reports whether err is JetStream not answering for a moment.
func transient(err error) bool {
	return errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, context.DeadlineExceeded)
}
