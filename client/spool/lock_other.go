//go:build !unix

package spool

import (
	"context"
	"errors"
	"os"
	"time"
)

// lock creates path exclusively, polling until ctx ends. A lock left by a
// dead process must be removed by hand.
func lock(ctx context.Context, path string) (func(), error) {
	for {
		f, err := os.OpenFile(path+".held", os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			f.Close()
			return func() { _ = os.Remove(path + ".held") }, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
