package walk

import (
	"fmt"
	"time"

	"github.com/ringtrace/ringtrace/tracer/holders"
)

// Loader loads the holders iterator in the background and walks with it.
// A trace starts one right after its probes are attached (never before: the
// load must not delay them), so that the first stuck walk does not pay the
// load — about 25 ms natively, 0.3 s alone in a TCG guest and up to 1.2 s
// there beside a running trace, where a walk waiting for it came too late
// to see the frames still held. Walk waits
// for a load still in progress; a failed load fails every Walk with its
// error (a trace reports it as a failed walk) and never the trace. Close
// waits for the load and unloads the iterator. Safe for concurrent use.
type Loader struct {
	done chan struct{} // closed when the load has finished, loaded or failed
	w    *Walker
	err  error
	took time.Duration
}

// Load starts loading the iterator with c. c.KernelBTF is dropped once
// loaded: a trace holds on for hours, a kernel spec is megabytes.
func Load(c Config) *Loader {
	l := &Loader{done: make(chan struct{})}
	go func() {
		defer close(l.done)
		start := time.Now()
		defer func() {
			// In the background a panic would end the trace: it only fails the walks.
			if p := recover(); p != nil {
				l.w, l.err = nil, fmt.Errorf("load holders iterator: panic: %v", p)
			}
			l.took = time.Since(start)
		}()
		l.w, l.err = NewWalker(c)
	}()
	return l
}

// Ready is closed once the load has finished (loaded or failed).
func (l *Loader) Ready() <-chan struct{} { return l.done }

// Loaded waits for the load and says how long it took and why it failed.
func (l *Loader) Loaded() (time.Duration, error) {
	<-l.done
	return l.took, l.err
}

// Walk takes a snapshot, once the iterator is loaded.
func (l *Loader) Walk(why string) (*holders.Snapshot, error) {
	if _, err := l.Loaded(); err != nil {
		return nil, err
	}
	return l.w.Walk(why)
}

// Close waits for the load and unloads the iterator. Safe to call twice;
// Walk fails after it.
func (l *Loader) Close() error {
	if _, err := l.Loaded(); err != nil {
		return nil // nothing was loaded
	}
	return l.w.Close()
}
