package jobstore

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"
)

// Apply applies a batch of the bucket's entries as the projection's
// consumer hands them over: tests repeat one to show a replay changes
// nothing. What the projection does once the batch is acknowledged
// (taking the entries out) follows at once.
func (p *Projection) Apply(ctx context.Context, msgs []jetstream.Msg) error {
	then, err := p.apply(ctx, msgs)
	if err == nil && then != nil {
		then(ctx)
	}
	return err
}

// ApplyOnly applies a batch and leaves its entries in the bucket, as a
// crash right after the batch's acknowledgement would.
func (p *Projection) ApplyOnly(ctx context.Context, msgs []jetstream.Msg) error {
	then, err := p.apply(ctx, msgs)
	if then != nil {
		p.taken.Add(1) // as if taken out: this projection "crashed" before
	}
	return err
}
