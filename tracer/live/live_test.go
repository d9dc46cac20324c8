package live

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// fakeLoad is an iterator load that has ended with err.
type fakeLoad struct {
	done chan struct{}
	err  error
}

func (f *fakeLoad) Ready() <-chan struct{}         { return f.done }
func (f *fakeLoad) Loaded() (time.Duration, error) { <-f.done; return time.Millisecond, f.err }

// TestWarnIteratorLoad: a failed load of the stuck-frame iterator is one
// warning line naming the error as soon as it fails; a load that worked,
// or a trace that ends first, says nothing.
func TestWarnIteratorLoad(t *testing.T) {
	failed := &fakeLoad{done: make(chan struct{}), err: errors.New("load holders iterator: invalid argument")}
	close(failed.done)
	var out bytes.Buffer
	warnIteratorLoad(context.Background(), failed, &out)
	if s := out.String(); strings.Count(s, "\n") != 1 || !strings.Contains(s, "WARNING: the stuck-frame iterator did not load") ||
		!strings.Contains(s, "invalid argument") {
		t.Errorf("warning %q", s)
	}

	ok := &fakeLoad{done: make(chan struct{})}
	close(ok.done)
	out.Reset()
	warnIteratorLoad(context.Background(), ok, &out)
	if out.Len() != 0 {
		t.Errorf("a load that worked: %q", out.String())
	}

	pending := &fakeLoad{done: make(chan struct{}), err: errors.New("never")}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	warnIteratorLoad(ctx, pending, &out)
	if out.Len() != 0 {
		t.Errorf("a trace that ended first: %q", out.String())
	}
}
