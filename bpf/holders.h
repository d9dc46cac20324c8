/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Records of the holders iterator (holders.bpf.c), shared with Go:
 * bpf2go -type generates tracer/bpfobj's HoldersRtHolder. Never mirror
 * these by hand. Fixed-width types only.
 */
#ifndef __RINGTRACE_HOLDERS_H__
#define __RINGTRACE_HOLDERS_H__

#define RT_HOLDER_COMM_LEN 16
/* Block addresses carried by one RT_HR_RING record. */
#define RT_HOLDER_BLOCKS 32
/* Blocks of one TX ring the iterator describes at most. */
#define RT_HOLDER_MAX_BLOCKS 8192
/* Receive-queue skbs the iterator looks at per socket at most: with
 * bpf_loop (5.17+), and with a plain bounded loop (older kernels). */
#define RT_HOLDER_MAX_SKBS 65536
#define RT_HOLDER_MAX_SKBS_BOUNDED 256

enum rt_holder_kind {
	/* A ring skb in the receive queue of the socket behind (pid, fd). */
	RT_HR_SKB = 1,
	/* Part of the TX ring of the packet socket behind (pid, fd): block
	 * addresses first_block .. first_block + nblocks - 1. */
	RT_HR_RING = 2,
	/* The receive queue of a socket with skbs queued: how many, how many
	 * were walked (truncated = 1: stopped at RT_HOLDER_MAX_SKBS) and how
	 * many carried a ring frame (form). */
	RT_HR_QUEUE = 3,
};

/* How the ring skb was recognised. */
enum rt_holder_form {
	RT_HF_DESTRUCTOR = 1, /* skb->destructor == tpacket_destruct_skb, destructor_arg == ph | 1 */
	RT_HF_UARG = 2, /* destructor_arg == struct tpacket_uarg * {ubuf, po, ph} */
};

struct rt_holder {
	__u32 kind; /* enum rt_holder_kind */
	__u32 pid; /* tgid of the task whose fd table holds the file */
	__u32 fd;
	__u32 ino; /* inode of the socket file */
	__u64 sk; /* struct sock * of that socket */
	__u64 skb; /* SKB: the ring skb */
	__u64 sender; /* SKB: struct sock * of the packet socket whose ring the frame is in */
	__u64 ph; /* SKB: frame address */
	__u32 qlen; /* SKB, QUEUE: sk_receive_queue.qlen */
	__u32 form; /* SKB: enum rt_holder_form; QUEUE: ring skbs found */
	__u32 walked; /* QUEUE: skbs looked at */
	__u32 truncated; /* QUEUE: the walk stopped before the end of the queue */
	__u32 family; /* sk_family of the socket */
	__u32 protocol; /* RING: the packet socket's bound protocol (network order) */
	__u32 frame_size; /* RING */
	__u32 frames_per_block; /* RING */
	__u32 frame_max; /* RING: frames - 1 */
	__u32 first_block; /* RING */
	__u32 nblocks; /* RING: valid entries of blocks */
	__u32 total_blocks; /* RING: pg_vec_len */
	__u64 blocks[RT_HOLDER_BLOCKS]; /* RING */
	char comm[RT_HOLDER_COMM_LEN];
};

/* Load-time configuration (.rodata), written by the Go loader. */
struct rt_holder_config {
	__u64 destruct_addr; /* tpacket_destruct_skb, 0 if unknown */
	__u64 uarg_complete_addr; /* tpacket_ubuf_complete (uarg kernels), 0 if unknown */
};

#endif /* __RINGTRACE_HOLDERS_H__ */
