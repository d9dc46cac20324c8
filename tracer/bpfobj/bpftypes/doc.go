// Package bpftypes owns the Go types of what ringtrace's BPF programs share
// with Go: the structs and enums bpf2go derives from bpf/ringtrace.h and
// bpf/holders.h (the event record, the aggregates, the sweep request, the
// holders iterator's records, the load-time configuration) and their
// constants. It imports no BPF library: code that decodes what the BPF
// side wrote (tracer/event, tracer/holders, tracer/report) builds without
// the loader and runs without a kernel.
//
// Its files are generated: `make generate` runs bpf2go in tracer/bpfobj,
// then typesplit (tracer/bpfobj/internal/typesplit) moves the C types out
// of bpf2go's output into this package, so that each type exists once. The
// loader (the embedded objects, their Load functions, program and map
// names) stays in tracer/bpfobj.
package bpftypes
