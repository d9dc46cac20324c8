// Package event owns ringtrace's logical events as Go sees them: decoding
// the fixed-size records the BPF programs write into the ring buffer (the
// layout bpf2go generated from bpf/ringtrace.h, in tracer/bpfobj/bpftypes),
// the names of kinds, frame states, causes and wait reasons, and the two
// output forms — a decoded, ordered text line in the spirit of the seed's
// SystemTap output, and one JSON object per event whose frame_state shape
// is a stable contract.
package event
