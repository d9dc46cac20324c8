// Package kernel owns what ringtrace learns about the running kernel before
// it loads anything: release and version, where BTF comes from, kernel
// config, kallsyms addresses of the functions and data it hooks or compares
// against, tracefs (mounted on demand), and feature probes for each hook
// family (fentry, kprobes, tp_btf, BPF ring buffer, bpf_loop). The result,
// Facts, is plain data: the attach plan is computed from it, and recordings
// carry it in their header.
package kernel
