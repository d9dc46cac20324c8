package promise

// TrackedThreads is how many threads w pairs calls for.
func TrackedThreads(w *Watch) int { return len(w.calls) }
