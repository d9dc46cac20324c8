// Package kernel owns what ringtrace knows about a kernel, as data: its
// release and version (ParseRelease), where its BTF came from, its build
// config keys, the kallsyms addresses of the functions and data ringtrace
// hooks or compares against (ReadKallsyms, and Symbolizer, which names
// text addresses), tracefs, and which hook families and BPF facilities
// (fentry, kprobes, tp_btf, BPF ring buffer, bpf_loop…) it accepts, with
// MayLack saying why a kernel may lack one. Facts holds it all: the attach
// plan is computed from it, recordings carry it in their header, reports
// read it back. Nothing here loads BPF or needs root; tracer/kernel/probe
// gathers the facts of the running kernel.
package kernel
