package stats

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/odavl/sync/libs/natstest"
)

// runOnce runs a second stats service on the bundle (its own connection) and
// returns what Run returned, failing the test if it has not returned within
// the deadline or if it became ready.
func (b *testBundle) runOnce(t *testing.T, cfg Config) error {
	t.Helper()
	svc, err := New(b.log, natstest.Connect(t, b.nats.URL), b.db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = svc.Run(ctx)
	if svc.Ready() {
		t.Error("the refused instance reports ready")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("the second instance ran instead of refusing to start")
	}
	return err
}

// TestSecondInstanceRefusesToStart: with one stats service counting, a
// second one against the same NATS and store stops at once and says why,
// and never consumes; once the first stops, the next one starts.
func TestSecondInstanceRefusesToStart(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	first := b.start(t, nil)

	err := b.runOnce(t, DefaultConfig())
	if !errors.Is(err, ErrAnotherInstance) {
		t.Fatalf("second instance: %v, want ErrAnotherInstance", err)
	}
	for _, want := range []string{"run exactly one", LeaseBucket, "lapses 15s after"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal %q does not say %q", err, want)
		}
	}
	if !first.svc.Ready() {
		t.Error("the first instance stopped being ready")
	}

	// A clean stop hands the lease back: the next instance starts at once.
	first.stop()
	b.start(t, nil)
}

// TestCrashedInstanceLeaseLapses: an instance that died without releasing
// its lease (the key is still there, never renewed) blocks a new one only
// until the lease's TTL has passed.
func TestCrashedInstanceLeaseLapses(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	cfg := DefaultConfig()
	cfg.LeaseTTL = 2 * time.Second
	ctx := context.Background()
	kv, err := b.nats.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: LeaseBucket, History: 1, TTL: cfg.LeaseTTL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, LeaseKey, []byte("crashed-pod/1")); err != nil {
		t.Fatal(err)
	}
	crashed := time.Now()

	err = b.runOnce(t, cfg)
	if !errors.Is(err, ErrAnotherInstance) || !strings.Contains(err.Error(), "crashed-pod/1") {
		t.Fatalf("while the crashed lease lives: %v, want ErrAnotherInstance naming crashed-pod/1", err)
	}

	// Restarted (as Kubernetes restarts the pod) until it starts.
	deadline := time.Now().Add(30 * time.Second)
	for {
		svc, err := New(b.log, natstest.Connect(t, b.nats.URL), b.db, cfg)
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- svc.Run(rctx) }()
		eventually(t, "the instance starts or refuses", func() bool {
			select {
			case err = <-done:
				return true
			default:
				return svc.Ready()
			}
		})
		if svc.Ready() {
			if since := time.Since(crashed); since < cfg.LeaseTTL {
				t.Errorf("started %v after the crash, before the %v lease lapsed", since, cfg.LeaseTTL)
			}
			cancel()
			if err := <-done; err != nil {
				t.Errorf("stopping: %v", err)
			}
			return
		}
		cancel()
		if !errors.Is(err, ErrAnotherInstance) {
			t.Fatalf("restart: %v, want ErrAnotherInstance until the lease lapses", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the crashed lease has not lapsed %v after a %v TTL", time.Since(crashed), cfg.LeaseTTL)
		}
		time.Sleep(200 * time.Millisecond) // a restart back-off, not an assertion
	}
}

// TestLeaseRenewed: a running instance keeps its lease well past the TTL,
// so a later second instance is still refused.
func TestLeaseRenewed(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	r := b.start(t, nil) // LeaseTTL 1s
	cfg := r.svc.cfg
	kv, err := b.nats.JS.KeyValue(context.Background(), LeaseBucket)
	if err != nil {
		t.Fatal(err)
	}
	first, err := kv.Get(context.Background(), LeaseKey)
	if err != nil {
		t.Fatal(err)
	}
	// Wait for three renewals: the entry's revision moves on while the
	// TTL passes three times.
	eventually(t, "three renewals", func() bool {
		e, err := kv.Get(context.Background(), LeaseKey)
		return err == nil && e.Revision() >= first.Revision()+3 && time.Since(first.Created()) > 3*cfg.LeaseTTL
	})
	if err := b.runOnce(t, cfg); !errors.Is(err, ErrAnotherInstance) {
		t.Fatalf("second instance after %v: %v, want ErrAnotherInstance", 3*cfg.LeaseTTL, err)
	}
	if !r.svc.Ready() {
		t.Error("the holder stopped being ready")
	}
}
