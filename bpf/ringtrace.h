/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Types shared by ringtrace's BPF programs and its Go code. bpf2go -type
 * generates the Go side (tracer/bpfobj): never mirror these by hand.
 *
 * Only fixed-width types, no kernel types, so this compiles against the
 * CO-RE vmlinux.h and reads the same from Go.
 */
#ifndef __RINGTRACE_H__
#define __RINGTRACE_H__

#define RT_COMM_LEN 16
#define RT_IFNAME_LEN 16
#define RT_STACK_RANGES 16
#define RT_NO_FRAME 0xffffffffu
/* Power-of-two nanosecond buckets of in-kernel histograms: bucket i holds
 * [2^i, 2^(i+1)) ns, the last one everything longer (2^39 ns is 9 min). */
#define RT_HIST_BUCKETS 40

/* Sizes user space must agree on: bpf2go (-type rt_limit) generates them
 * for Go, so they are written down once. */
enum rt_limit {
	/* Without bpf_loop (before 5.17) the verifier walks loops iteration
	 * by iteration: a ring scan covers this many frames after head. */
	RT_BOUNDED_SCAN = 1024,
	RT_SWEEP_BATCH = 256, /* frames one sweep run re-reads (bpf_loop) */
	RT_SWEEP_BOUNDED = 16, /* the same without bpf_loop */
};

/* Logical events, independent of the hook that observed them. */
enum rt_kind {
	RT_SENDMSG_ENTER = 1, /* a[0]=flags a[1]=head a[2]=PACKET_QDISC_BYPASS set, ring scan in scan */
	RT_SENDMSG_RETURN = 2, /* a[0]=ret (s64), a[1]=head, a[2]=entry ts, scan, n=frames taken,
				* aux: bit 0 MSG_DONTWAIT, bits 1-7 the lowest signal pending at the return */
	RT_FRAME_STATE = 3, /* old -> new state of one frame */
	RT_QDISC_ENQUEUE = 4, /* a[0]=qdisc handle a[1]=qlen|backlog<<32 */
	RT_QDISC_DEQUEUE = 5, /* a[0]=qdisc handle a[1]=qlen|backlog<<32 a[2]=packets */
	RT_XMIT_START = 6, /* driver ndo_start_xmit entered */
	RT_XMIT_DONE = 7, /* a[0]=driver rc (s64) */
	RT_DROP = 8, /* synchronous drop: a[0]=reason a[1]=location */
	RT_SLEEP = 9, /* sender sleeps: aux=rt_wait reason */
	RT_WAKE = 10, /* sender woken: aux=rt_wait reason of the waker, a[0]=tid a[1]=sleep reason, ts_lo=asleep since;
		       * a[1]=RT_W_PREEMPT: it got a CPU after waiting runnable since ts_lo */
	RT_SOFTIRQ = 11, /* span: ts_lo=entry ts=exit aux=vec */
	RT_NAPI_POLL = 12, /* a[0]=work a[1]=budget a[2]=napi */
	RT_RX = 13, /* ring skb received on a device (veth peer, lo) */
	RT_XMIT_RC = 14, /* dev_queue_xmit / packet_xmit return: a[0]=rc */
	RT_SOCK_GONE = 15, /* ring of a tracked socket went away: pending=frames abandoned SENDING,
			   * scan.nframes=its ring's size, a[0]=its TPACKET version + 1 (0: none seen) */
	RT_FRAME_PICKED = 16, /* tpacket_snd took the SEND_REQUEST frame at head */
	RT_BLIND = 17, /* a CPU ran a task the kernel runs no BPF program for: ts_lo=switched in, ts=the CPU's
			* next switch seen; pid, tid: that task, comm: its process's (thread group leader's);
			* cpu: the CPU (always streamed) */
	RT_SENDMSG_CALL = 18, /* a whole non-blocking call that found no frame to send at its entry (a poll of
			       * the ring), in one record that user space splits into RT_SENDMSG_ENTER and
			       * RT_SENDMSG_RETURN: the return's fields, plus ts_lo=entry ts, skb=flags | head at
			       * entry << 32, old_state=the status of the frame at head at entry, new_state=
			       * the frames the entry's scan read (1, or 0 with light scans), prec=
			       * PACKET_QDISC_BYPASS set, ifindex and dev=the device (never delivered as such) */
	RT_FRAME_SHORT = 19, /* an RT_FRAME_STATE in a struct rt_frame_short record (never delivered as such) */
	RT_XMIT_PAIR = 20, /* an RT_XMIT_START and its RT_XMIT_DONE in one record, written at the driver's
			    * return (xmit_one fires both around ndo_start_xmit, on one CPU): the done's fields,
			    * plus ts_lo=the start's time, a[1]=the start's wmem | pending << 32 (as u32),
			    * a[2]=the start's sndbuf (never delivered as such) */
};

/* Frame states: the tp_status values (low three bits). */
enum rt_state {
	RT_ST_AVAILABLE = 0,
	RT_ST_SEND_REQUEST = 1,
	RT_ST_SENDING = 2,
	RT_ST_WRONG_FORMAT = 4,
	RT_ST_UNKNOWN = 0xff,
};

/* How precise an event's time is. */
enum rt_prec {
	RT_EXACT = 0, /* observed at (or in the same call chain as) the change */
	RT_BOUNDED = 1, /* happened in [ts_lo, ts] */
};

/* What made a frame change state (or what an event saw). */
enum rt_cause {
	RT_C_NONE = 0,
	RT_C_XMIT = 1, /* tpacket_snd set SENDING, seen at dev_queue_xmit */
	RT_C_DESTRUCT = 2, /* tpacket_destruct_skb / uarg completion hook */
	RT_C_FREE = 3, /* ring skb freed (consume/kfree), destructor follows */
	RT_C_DROP = 4, /* ring skb dropped synchronously in xmit */
	RT_C_DRIVER_ORPHAN = 5, /* completed inside the driver (lo, tun) */
	RT_C_ORPHANED = 6, /* orphaned without a tracepoint, seen later */
	RT_C_SCAN = 7, /* found by a ring status scan */
	RT_C_ROLLBACK = 8, /* tpacket_snd wrote SEND_REQUEST back */
	RT_C_BAD_FRAME = 9, /* tpacket_snd wrote WRONG_FORMAT */
	RT_C_TAKEN = 10, /* frame taken by the kernel, SENDING not seen */
	RT_C_PICKED = 11, /* SEND_REQUEST seen at the kernel's head */
	RT_C_SET_STATUS = 12, /* __packet_set_status hooked directly */
	RT_C_COPIED = 13, /* uarg: ring pages copied out (success=0) */
	RT_C_USER = 14, /* user space wrote it; seen by the sendmsg entry scan */
	RT_C_RETAKEN = 15, /* taken again by tpacket_snd: its earlier use completed unseen */
};

/* Why a sender slept, or what woke it. */
enum rt_wait {
	RT_W_OTHER = 0,
	RT_W_SNDBUF = 1, /* sock_alloc_send_pskb: sk_wmem_alloc >= sk_sndbuf */
	RT_W_COMPLETION = 2, /* tpacket_snd waits for TX completion */
	RT_W_PG_VEC_LOCK = 3, /* another sender holds po->pg_vec_lock */
	RT_W_PREEMPT = 4, /* runnable, waiting for a CPU (preempted, or woken and not yet running) */
};

/* A ring status scan: counts from the whole ring and the run of
 * SEND_REQUEST frames starting at the kernel's head. */
struct rt_scan {
	__u32 head;
	__u32 nframes;
	__u32 run_send_request;
	__u32 send_request;
	__u32 sending;
	__u32 available;
	__u32 wrong_format;
	__u32 scanned; /* frames actually scanned (may be capped) */
};

struct rt_event {
	__u64 ts; /* bpf_ktime_get_ns: when it was seen (upper bound) */
	__u64 ts_lo; /* RT_BOUNDED: earliest time it can have happened */
	__u64 sk; /* struct sock * of the packet socket, 0 if none */
	__u64 skb;
	__u64 a[3]; /* kind-specific, see enum rt_kind */
	struct rt_scan scan; /* SENDMSG_ENTER/RETURN */
	__u32 pid; /* tgid of current */
	__u32 tid;
	__u32 frame; /* ring frame index or RT_NO_FRAME */
	__u32 cpu;
	__s32 sndbuf; /* sk_sndbuf at the event, -1 if unknown */
	__s32 wmem; /* sk_wmem_alloc - 1 (bytes in flight), -1 if unknown */
	__s32 pending; /* frames this socket has SENDING, -1 if unknown */
	__u32 ifindex;
	__u32 sock_ino; /* inode of the socket: tells apart sockets at a reused address */
	__u32 n; /* SENDMSG_RETURN: frames the call took from SEND_REQUEST */
	__u16 kind; /* enum rt_kind */
	__u8 old_state; /* enum rt_state */
	__u8 new_state;
	__u8 prec; /* enum rt_prec */
	__u8 cause; /* enum rt_cause */
	__u8 aux; /* kind-specific: wait reason, softirq vec */
	__u8 hook; /* enum rt_hook: which hook produced it */
	char comm[RT_COMM_LEN];
	char dev[RT_IFNAME_LEN];
};

/*
 * A frame state change in a short record (RT_FRAME_SHORT): what an
 * RT_FRAME_STATE record says, in 80 bytes instead of 168, for the per-frame
 * events of a stream. It leaves out what user space already has, so that
 * the decoder fills it in: the thread's comm, from the entry record of the
 * send call the thread is in (on that call's socket; a full record of the
 * same thread, earlier in the buffer), and the device, from the socket's
 * last full record naming its own device (RT_FS_DEV; see ev_dev_x). A
 * drop's reason and location (a[0], a[1]) are never in one: drops come in
 * full records.
 */
struct rt_frame_short {
	__u64 ts;
	__u64 ts_lo;
	__u64 sk;
	__u64 skb;
	__u64 sending_lo; /* a[2] of the RT_FRAME_STATE */
	__u32 pid;
	__u32 tid;
	__u32 frame;
	__u32 cpu;
	__s32 sndbuf;
	__s32 wmem;
	__s32 pending;
	__u32 sock_ino;
	__u16 kind; /* RT_FRAME_SHORT */
	__u8 old_state;
	__u8 new_state;
	__u8 prec;
	__u8 cause;
	__u8 hook;
	__u8 flags; /* enum rt_short_flag */
};

enum rt_short_flag {
	RT_FS_DEV = 1, /* on the socket's own device, named by its last full record that kept it (ev_dev_x) */
};

/*
 * Per-socket frame aggregates, kept in the kernel when the frame events are
 * not streamed (summary mode, cfg.aggregate): what they would have said.
 */
struct rt_sock_agg {
	__u64 sent; /* frames that became SENDING */
	__u64 completed_exact;
	__u64 completed_bounded;
	__u64 unseen_sending; /* completed with no exact SENDING time (qdisc bypass): not in the histogram */
	__u64 inflight_count; /* completions with an exact SENDING time: the histogram's */
	__u64 inflight_sum; /* ns */
	__u64 inflight_max; /* ns */
	__u64 hist[RT_HIST_BUCKETS]; /* SENDING -> AVAILABLE, power-of-two ns buckets */
};

/* Key of the aggs map: a socket at an address, told apart by its inode. */
struct rt_agg_key {
	__u64 sk;
	__u64 ino;
};

/* The hook family that produced an event. */
enum rt_hook {
	RT_H_TRACEPOINT = 0,
	RT_H_FENTRY = 1,
	RT_H_KPROBE = 2,
	RT_H_SWEEP = 3,
};

struct rt_stack_range {
	__u64 start;
	__u64 end;
	__u32 reason; /* enum rt_wait */
	__u32 pad;
};

/* Load-time configuration, written into .rodata by the Go loader. */
struct rt_config {
	__u64 destruct_addr; /* tpacket_destruct_skb */
	__u64 uarg_complete_addr; /* tpacket_ubuf_complete on uarg kernels, else 0 */
	__u32 uarg_complete_len; /* its length in bytes: kfree call sites inside it */
	__u32 sendmsg_nr; /* this architecture's syscall number of sendmsg */
	__u64 direct_xmit_addr; /* packet_direct_xmit (po->xmit of a bypass socket before 6.4), else 0 */
	__u32 filter_pid; /* 0: any */
	__u32 max_scan; /* frames a ring scan looks at */
	__u32 events; /* bit (1 << rt_kind) set: emit that kind */
	__u32 wakeup_bytes; /* wake the reader when this much is waiting */
	__u8 aggregate; /* SENDING/AVAILABLE update sock_state.agg instead of emitting events */
	__u8 light_scans; /* sendmsg scans: none at entry, the SEND_REQUEST run at return */
	__u8 calls_only; /* --detail calls: no per-frame hooks; frames counted by ring head and completion frontier */
	__u8 calls_kept; /* calls entries outlive their call (idle: sk 0) and are deleted at thread exit */
	__u8 filter_comm_set;
	__u8 filter_ifname_set;
	__u8 kfree_has_reason; /* tp kfree_skb has the drop reason arg */
	__u8 avail_via_tp; /* completions from skb tracepoints (no destructor hook) */
	__u8 sending_via_tp; /* SENDING from net_dev_queue (no xmit hook) */
	__u8 calls_via_syscalls; /* sendmsg enter/return from syscall tracepoints */
	__u8 uarg_form; /* frames complete via struct tpacket_uarg */
	__u8 uarg_via_kfree; /* completions from tp kfree(uarg) in tpacket_ubuf_complete */
	__u8 complete_hooked; /* tpacket_ubuf_complete is hooked: the kfree only backs it up */
	__u8 hook_class; /* enum rt_hook of the frame hooks */
	__u8 claims; /* the kernel has BPF atomic cmpxchg (5.12+): rt_frame.busy is flipped with it */
	__u8 skb_cache; /* xmit hooks cache skb -> frame (skbs): something reads it (skb events, completions read at a free) */
	/* frame entries in the frame_slots array: its size (a power of two), 0: the frames hash only (kernels
	 * without bpf_loop or cmpxchg, --detail calls) */
	__u32 frame_slots;
	char filter_comm[RT_COMM_LEN];
	char filter_ifname[RT_IFNAME_LEN];
	struct rt_stack_range stack_ranges[RT_STACK_RANGES];
};

/* Per-frame tracking, keyed by (socket address, frame index, socket inode). */
struct rt_frame_key {
	__u64 sk;
	__u32 idx;
	__u32 ino; /* the socket's inode: sockets at a reused address differ */
};

struct rt_frame {
	__u64 ph; /* kernel address of the frame header */
	__u64 ts_sending; /* when SENDING was emitted */
	__u64 ts_seen; /* last time it was seen SENDING */
	__u32 call_seq; /* sendmsg call of its socket that sent it */
	__u32 sock_ino; /* socket the entry belongs to (addresses are reused) */
	__u8 state; /* last state emitted (enum rt_state) */
	__u8 sending_exact; /* ts_sending is when it became SENDING, not when it was found so */
	/* its last completion was found by a status read (bounded), not by
	 * the completion hook: that hook may still come for the same use */
	__u8 avail_read;
	/* the sweep read AVAILABLE while the entry says SENDING; it reports
	 * the completion at its next run if no hook did meanwhile */
	__u8 avail_swept;
	__u8 pad[4];
	/* 1 while SENDING. Moves in and out of SENDING by to_sending and
	 * to_available flip it atomically (cfg.claims): a completion hook and a
	 * ring scan that read the status it wrote, on two CPUs, both see the
	 * frame SENDING, and only the one that flips busy reports it. */
	__u64 busy;
};

/* A socket that is gone, in the graves map until the sweep has deleted its frame entries. */
struct rt_grave {
	__u64 slots; /* its range of frame_slots (sock_state.slots), returned after the clean-up; 0: none */
	__u32 n; /* its ring's frames */
	__u32 pad;
};

/* What a sweep request from user space names (rt_sweep.kind). */
enum rt_sweep_kind {
	RT_SWEEP_FRAMES = 0, /* keys: frames to re-read */
	RT_SWEEP_SOCKS = 1, /* keys (sk, ino; idx unused): sockets to check for closing */
};

struct rt_sweep {
	__u32 n;
	__u32 kind; /* enum rt_sweep_kind */
	struct rt_frame_key keys[RT_SWEEP_BATCH];
};

#endif /* __RINGTRACE_H__ */
