package bpfobj

// The holders iterator (bpf/holders.bpf.c): its own object, loaded by
// tracer/holders/walk in the background once a trace is attached, with the
// record types of bpf/holders.h (in tracer/bpfobj/bpftypes).

//go:generate go tool bpf2go -tags linux -target amd64,arm64 -output-stem holders -type rt_holder -type rt_holder_skb -type rt_holder_kind -type rt_holder_form -type rt_holder_locate Holders ../../bpf/holders.bpf.c -- -I../../bpf -I../../bpf/headers -O2 -g -Wall -Werror
//go:generate go run ./internal/typesplit -types bpftypes holders_x86_bpfel.go holders_arm64_bpfel.go
