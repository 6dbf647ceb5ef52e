package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/odavl/sync/libs/natstest"
	"github.com/odavl/sync/libs/rpc"
)

// A handler failing because NATS or JetStream did not answer for a moment
// (a stream electing its leader after a server died) answers 503, which
// callers retry; any other failure stays a 500.
func TestTransientFailureIs503(t *testing.T) {
	t.Parallel()
	nb := natstest.Start(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	failWith := func(err error) rpc.Func[struct{}, struct{}] {
		return func(context.Context, struct{}) (struct{}, error) { return struct{}{}, err }
	}
	cases := []struct {
		subject string
		err     error
		want    int
	}{
		{"test.nostream", fmt.Errorf("publishing submission j1: %w", jetstream.ErrNoStreamResponse), 503},
		{"test.timeout", fmt.Errorf("storing: %w", nats.ErrTimeout), 503},
		{"test.reconnecting", nats.ErrConnectionReconnecting, 503},
		{"test.bug", errors.New("decoding record: unexpected field"), 500},
	}
	var eps []rpc.Endpoint
	for _, c := range cases {
		eps = append(eps, rpc.Endpoint{Name: c.subject[5:], Subject: c.subject, Handler: rpc.Handler(context.Background(), quiet, time.Minute, failWith(c.err))})
	}
	svc, err := rpc.AddService(natstest.Connect(t, nb.URL), "failing", "1.0.0", "test", eps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	for _, c := range cases {
		_, err := rpc.Call[struct{}](context.Background(), nb.Conn, c.subject, struct{}{})
		if got := rpc.StatusOf(err); got != c.want {
			t.Errorf("%s (%v): %d %v; want %d", c.subject, c.err, got, err, c.want)
		}
	}
}
