// Package txring owns the AF_PACKET PACKET_TX_RING load generator: opening a
// packet socket with a TPACKET_V1/V2/V3 TX ring on an interface, filling frames,
// kicking the kernel with sendto(), reading frame statuses back from the
// shared mapping, and the multi-threaded sender behind `ringtrace send`
// (ring mode, loop-until-empty, and one sendto() per frame for comparison).
//
// It is the Go equivalent of the kernel's packet_mmap example and of
// etherate's TX_RING mode, written with golang.org/x/sys/unix (no cgo).
// Scenarios and tests use the same API to drive the kernel and to check
// that every frame returned to TP_STATUS_AVAILABLE.
package txring
