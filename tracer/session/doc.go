// Package session owns a live trace's kernel side (tracer/live owns the
// rest: sinks, watchers, the final report): it loads the BPF object with the
// programs and load-time configuration an attach plan asks for, attaches
// them, streams events out of the BPF ring buffer, puts them in timestamp
// order across CPUs, drops duplicate frame transitions two hooks raced to
// report, re-reads frames no hook saw complete (the sweep), counts every
// event the kernel could not queue, and releases everything on Close.
package session
