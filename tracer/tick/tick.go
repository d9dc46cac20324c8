// Package tick owns the one periodic loop the tracer's background checks
// share: run a function every interval until the context ends or the caller
// stops it, and let stop wait for a run in progress.
package tick

import (
	"context"
	"time"
)

// Every calls f every d until ctx is done or stop is called. stop returns
// once the loop has ended, so f is not running after it.
func Every(ctx context.Context, d time.Duration, f func()) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				f()
			}
		}
	}()
	return func() { close(done); <-finished }
}
