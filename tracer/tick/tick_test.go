package tick

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestEveryStops: f runs repeatedly, and not once stop has returned.
func TestEveryStops(t *testing.T) {
	var n atomic.Int64
	stop := Every(context.Background(), time.Millisecond, func() { n.Add(1) })
	for n.Load() < 3 {
		time.Sleep(time.Millisecond)
	}
	stop()
	after := n.Load()
	time.Sleep(10 * time.Millisecond)
	if n.Load() != after {
		t.Fatalf("f ran after stop returned: %d then %d", after, n.Load())
	}
}

// TestEveryEndsWithContext: a cancelled context ends the loop; stop still returns.
func TestEveryEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	stop := Every(ctx, time.Hour, func() { t.Error("f ran") })
	cancel()
	stop()
}
