// Package bpfobj owns ringtrace's compiled CO-RE BPF objects: the bpf2go
// output generated from bpf/ringtrace.bpf.c and bpf/holders.bpf.c (the
// stuck-frame iterator; see holders.go) — committed, so a plain go build
// needs no clang — with their loaders (Load*, the *Specs and *Objects
// structs) and the names of their programs, maps and variables. The Go
// types bpf2go derives from bpf/ringtrace.h and bpf/holders.h are not here:
// typesplit moves them to tracer/bpfobj/bpftypes, which needs no BPF
// library, right after bpf2go writes them.
//
// Regenerate with `make generate` (needs clang and libbpf-dev) after editing
// anything under bpf/.
package bpfobj

//go:generate go tool bpf2go -tags linux -target amd64,arm64 -output-stem ringtrace -type rt_event -type rt_frame_short -type rt_short_flag -type rt_scan -type rt_kind -type rt_state -type rt_prec -type rt_cause -type rt_wait -type rt_hook -type rt_sock_agg -type rt_agg_key -type rt_sweep_kind -type rt_grave -type rt_limit -type sock_state Ringtrace ../../bpf/ringtrace.bpf.c -- -I../../bpf -I../../bpf/headers -O2 -g -Wall -Werror
//go:generate go run ./internal/typesplit -types bpftypes ringtrace_x86_bpfel.go ringtrace_arm64_bpfel.go
