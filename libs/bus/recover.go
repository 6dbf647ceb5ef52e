package bus

import (
	"context"
	"fmt"
	"runtime/debug"
)

// Recover turns a panic of the handler into an error (with the stack), so
// the delivery is retried like any failure instead of ending the process.
func Recover() Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, d Delivery) (err error) {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("handler panic: %v\n%s", r, debug.Stack())
				}
			}()
			return next(ctx, d)
		}
	}
}
