/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Records of the holders iterator (holders.bpf.c), shared with Go:
 * bpf2go -type generates tracer/bpfobj's HoldersRtHolder and
 * HoldersRtHolderSkb. Never mirror these by hand. Fixed-width types only.
 *
 * Every record starts with its __u32 kind, which tells its layout: RT_HR_SKB
 * records are a struct rt_holder_skb, the others a struct rt_holder.
 *
 * The kernel fails a whole read of the iterator (E2BIG) when what one object
 * (one task's fd) writes does not fit its seq_file buffer, PAGE_SIZE << 3 =
 * 32 KiB on x86: so the iterator bounds what it writes per socket (one
 * RT_HR_RING, one RT_HR_QUEUE, at most RT_HOLDER_MAX_LISTED RT_HR_SKB) and
 * never lists a ring's blocks: it names each held skb's frame itself.
 */
#ifndef __RINGTRACE_HOLDERS_H__
#define __RINGTRACE_HOLDERS_H__

#define RT_HOLDER_COMM_LEN 16
/* Receive-queue skbs the iterator looks at per socket at most: with
 * bpf_loop (5.17+), and with a plain bounded loop (older kernels). */
#define RT_HOLDER_MAX_SKBS 65536
#define RT_HOLDER_MAX_SKBS_BOUNDED 256
/* RT_HR_SKB records written per socket at most, with bpf_loop and without
 * (a power of 2): the ring skbs found beyond are counted in its RT_HR_QUEUE
 * record, not listed. */
#define RT_HOLDER_MAX_LISTED 600
#define RT_HOLDER_MAX_LISTED_BOUNDED 64
/* Blocks of ring one socket's searches may read in all, with bpf_loop: 2
 * searches of the largest ring the kernel allows (pg_vec is a kcalloc of at
 * most 4 MiB: 524288 blocks), some tens of ms. */
#define RT_HOLDER_SEARCH_BUDGET (1 << 20)
/* Blocks one search reads at most without bpf_loop, going down from the
 * hint's. */
#define RT_HOLDER_SEARCH_BOUNDED 4
/* frame of an RT_HR_SKB record whose frame was not found */
#define RT_HOLDER_NO_FRAME 0xffffffff

enum rt_holder_kind {
	/* struct rt_holder_skb: a ring skb in the receive queue of the
	 * socket of the RT_HR_QUEUE record that follows it. */
	RT_HR_SKB = 1,
	/* The TX ring of the packet socket behind (pid, fd): its geometry. */
	RT_HR_RING = 2,
	/* The receive queue of a socket with skbs queued: how many, how many
	 * were walked (truncated = 1: stopped at RT_HOLDER_MAX_SKBS), how many
	 * carried a ring frame (found) and how many of those the RT_HR_SKB
	 * records before it list (listed). */
	RT_HR_QUEUE = 3,
};

/* How the ring skb was recognised. */
enum rt_holder_form {
	RT_HF_DESTRUCTOR = 1, /* skb->destructor == tpacket_destruct_skb, destructor_arg == ph | 1 */
	RT_HF_UARG = 2, /* destructor_arg == struct tpacket_uarg * {ubuf, po, ph} */
};

/* What the search of the sender's ring for a frame address found. */
enum rt_holder_locate {
	RT_HL_FOUND = 1, /* frame is its index */
	RT_HL_NOT_IN_RING = 2, /* every block searched: no frame of the ring starts at ph */
	RT_HL_NO_RING = 3, /* the sender has no TX ring (pg_vec NULL, or no frame geometry) */
	RT_HL_CUT = 4, /* not every block searched: RT_HOLDER_SEARCH_BOUNDED or the budget */
};

/* RT_HR_RING and RT_HR_QUEUE: one socket, behind fd of process pid. */
struct rt_holder {
	__u32 kind; /* enum rt_holder_kind */
	__u32 pid; /* tgid of the task whose fd table holds the file */
	__u32 fd;
	__u32 ino; /* inode of the socket file */
	__u64 sk; /* struct sock * of that socket */
	__u32 family; /* sk_family of the socket */
	__u32 qlen; /* QUEUE: sk_receive_queue.qlen */
	__u32 walked; /* QUEUE: skbs looked at */
	__u32 truncated; /* QUEUE: the walk stopped before the end of the queue */
	__u32 found; /* QUEUE: ring skbs found */
	__u32 listed; /* QUEUE: of them in the RT_HR_SKB records before this one */
	__u32 protocol; /* RING: the packet socket's bound protocol (network order) */
	__u32 frame_size; /* RING */
	__u32 frames_per_block; /* RING */
	__u32 frame_max; /* RING: frames - 1 */
	__u32 blocks; /* RING: pg_vec_len */
	__u32 head; /* RING: tx_ring.head, the frame the kernel sends next */
	__u32 check_frame; /* RING, with hcfg.check_start: what the search made of frame head's address */
	__u32 check_status; /* RING, with hcfg.check_start: enum rt_holder_locate */
	__u32 check_searched; /* RING, with hcfg.check_start: blocks read */
	__u32 pad;
	char comm[RT_HOLDER_COMM_LEN];
};

/* RT_HR_SKB: a ring skb, held by the socket of the next RT_HR_QUEUE record. */
struct rt_holder_skb {
	__u32 kind; /* RT_HR_SKB */
	__u32 form; /* enum rt_holder_form */
	__u32 frame; /* its index in the sender's ring, RT_HOLDER_NO_FRAME unless status is RT_HL_FOUND */
	__u32 status; /* enum rt_holder_locate */
	__u64 skb;
	__u64 ph; /* frame address */
	__u64 sender; /* struct sock * of the packet socket whose ring the frame is in */
	__u32 searched; /* blocks of the sender's ring read to find it */
	__u32 blocks; /* the sender ring's pg_vec_len */
};

/* Load-time configuration (.rodata), written by the Go loader. */
struct rt_holder_config {
	__u64 destruct_addr; /* tpacket_destruct_skb, 0 if unknown */
	__u64 uarg_complete_addr; /* tpacket_ubuf_complete (uarg kernels), 0 if unknown */
	/* Self-check (tests): when not 0, each RT_HR_RING record also says
	 * where the block search, started at block check_start - 1, places the
	 * address of the ring's frame head. */
	__u32 check_start;
	__u32 pad;
};

#endif /* __RINGTRACE_HOLDERS_H__ */
