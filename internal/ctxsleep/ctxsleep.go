// Package ctxsleep waits for a duration unless a context ends first: the
// pause between the retries of the AWS adapters and the HTTP client.
package ctxsleep

import (
	"context"
	"time"
)

// Sleep waits d, or until ctx is done, whichever comes first, and returns
// ctx's error in the second case (and at once when d <= 0 and ctx is done).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
