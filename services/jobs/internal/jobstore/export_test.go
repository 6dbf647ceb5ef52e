package jobstore

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"
)

// Apply applies a batch of the bucket's entries as the projection's
// consumer hands them over: tests repeat one to show a replay changes
// nothing.
func (p *Projection) Apply(ctx context.Context, msgs []jetstream.Msg) error {
	return p.apply(ctx, msgs)
}
