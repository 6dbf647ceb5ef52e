package bus

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// Log logs a delivery that is terminated (at error) or will be retried (at
// warn), with its consumer, event, attempt, the error and, when the
// delivery is traced, its trace id. A delivery that is acknowledged is not
// logged.
func Log(log *slog.Logger) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, d Delivery) error {
			err := next(ctx, d)
			outcome := Outcome(err)
			if outcome == OutcomeAck {
				return nil
			}
			attrs := []any{"consumer", d.Consumer, "event", d.Event.ID, "type", d.Event.Type, "subject", d.Subject, "attempt", d.Attempt}
			if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
				attrs = append(attrs, "traceId", sc.TraceID().String())
			}
			if outcome == OutcomeTerm {
				log.ErrorContext(ctx, "event terminated", append(attrs, "err", err)...)
			} else {
				log.WarnContext(ctx, "event failed, will retry", append(attrs, "retryIn", d.RetryIn, "err", err)...)
			}
			return err
		}
	}
}
