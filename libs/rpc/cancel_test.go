package rpc_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/odavl/sync/libs/natstest"
	"github.com/odavl/sync/libs/rpc"
)

// A request whose caller gives up is cancelled in the service, long before
// the service's own timeout: the work (a store query under ctx) stops with
// it. A deadline that fires in the service is a 504, not a 500.
func TestWorkStopsWhenItsCallerGivesUp(t *testing.T) {
	t.Parallel()
	nb := natstest.Start(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	started, stopped := make(chan struct{}, 3), make(chan error, 3)
	slow := func(ctx context.Context, _ struct{}) (struct{}, error) {
		started <- struct{}{}
		<-ctx.Done() // a query that would run for the service's whole minute
		stopped <- ctx.Err()
		return struct{}{}, ctx.Err()
	}
	svc, err := rpc.AddService(natstest.Connect(t, nb.URL), "slow", "1.0.0", "test", []rpc.Endpoint{
		{Name: "slow", Subject: "test.slow", Handler: rpc.Handler(context.Background(), quiet, time.Minute, slow)},
		{Name: "bounded", Subject: "test.bounded", Handler: rpc.Handler(context.Background(), quiet, 100*time.Millisecond, slow)},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })

	// The caller leaves (its HTTP client went away).
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := rpc.Call[struct{}](ctx, nb.Conn, "test.slow", struct{}{}); done <- err }()
	<-started // the request is in the service's hands
	cancel()
	if err := <-done; rpc.StatusOf(err) != rpc.StatusClientClosed {
		t.Errorf("a cancelled call: %v, want %d", err, rpc.StatusClientClosed)
	}
	select {
	case err := <-stopped:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("the service's work ended with %v, want its cancellation", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the service went on after its caller gave up")
	}

	// The caller's deadline bounds the service's work; the answer is a 504.
	dctx, dcancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer dcancel()
	_, err = rpc.Call[struct{}](dctx, nb.Conn, "test.slow", struct{}{})
	if rpc.StatusOf(err) != 504 {
		t.Errorf("a call past its deadline: %v, want 504", err)
	}
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the service went on past its caller's deadline")
	}

	// The service's own deadline: a 504 from the service (was a 500).
	_, err = rpc.Call[struct{}](context.Background(), nb.Conn, "test.bounded", struct{}{})
	var e *rpc.Error
	if !errors.As(err, &e) || e.Status != 504 {
		t.Errorf("a service past its own deadline: %v, want its 504", err)
	}
	<-stopped
}
