// Package nsexec runs a function inside another network namespace on a
// locked OS thread and returns the calling goroutine to its own namespace,
// and finds which namespaces hold an interface of a given name (Where).
//
// Sockets and netlink handles created inside the function stay bound to the
// namespace they were created in, so the typical use is "create the socket
// there, use it from anywhere".
package nsexec

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// Do runs fn with the calling OS thread switched to ns. A zero or negative
// handle (the zero value, or netns.None()) runs fn in the current namespace. If the thread cannot
// be switched back, it is left locked so the Go runtime retires it instead of
// reusing a thread in the wrong namespace.
func Do(ns netns.NsHandle, fn func() error) error {
	if ns <= 0 {
		return fn()
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("get current netns: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter netns: %w", err)
	}
	fnErr := fn()
	if err := netns.Set(orig); err != nil {
		// Keep the thread locked: the runtime terminates it when the
		// goroutine exits, so no other goroutine inherits the namespace.
		return fmt.Errorf("return to original netns: %w", err)
	}
	runtime.UnlockOSThread()
	return fnErr
}
