// SPDX-License-Identifier: GPL-2.0
/*
 * ringtrace.bpf.c, part: the load-time configuration, bpf2go anchors, and the maps: per-frame, per-
 * socket, per-call and per-skb state, overflow counters.
 */

char LICENSE[] SEC("license") = "GPL";

#define AF_PACKET 17
#define S_IFMT 0170000
#define S_IFSOCK 0140000
#define TASK_RUNNING 0
#define MSG_DONTWAIT 0x40
#define O_NONBLOCK 04000
#define NET_TX_SOFTIRQ 2
#define NET_RX_SOFTIRQ 3
/* Without bpf_loop (before 5.17) the verifier walks loops iteration by
 * iteration: ring scans cover RT_BOUNDED_SCAN frames, walks that call into
 * the frame tracking (blocks, untraced frames) BOUNDED_WALK. */
#define BOUNDED_WALK 16
#define STACK_DEPTH 12 /* the wait function is within the first few frames */
/* Keeps the compiler's stores in program order (one CPU: a program that
 * preempts another sees them in that order). */
#define barrier() asm volatile("" ::: "memory")

const volatile struct rt_config cfg = {};

/*
 * Set once remember_skb has cached an skb (a ring skb sent through a hooked
 * xmit). Until then, as with the qdisc bypass, no skbs entry exists, and the
 * free and qdisc hooks, which run for every skb of the host, skip the lookup
 * a foreign skb would cost (≈ 50 ns a run).
 */
volatile __u32 skbs_used;

/* Anchors so bpf2go -type finds these types in BTF. */
const struct rt_event *__rt_event_anchor __attribute__((unused));
const struct rt_frame_key *__rt_frame_key_anchor __attribute__((unused));
const struct rt_frame *__rt_frame_anchor __attribute__((unused));
const struct rt_sweep *__rt_sweep_anchor __attribute__((unused));
const struct rt_grave *__rt_grave_anchor __attribute__((unused));
const struct rt_frame_short *__rt_frame_short_anchor __attribute__((unused));
const enum rt_short_flag *__rt_short_flag_anchor __attribute__((unused));
const enum rt_kind *__rt_kind_anchor __attribute__((unused));
const enum rt_state *__rt_state_anchor __attribute__((unused));
const enum rt_prec *__rt_prec_anchor __attribute__((unused));
const enum rt_cause *__rt_cause_anchor __attribute__((unused));
const enum rt_wait *__rt_wait_anchor __attribute__((unused));
const enum rt_hook *__rt_hook_anchor __attribute__((unused));
const enum rt_limit *__rt_limit_anchor __attribute__((unused));
const enum rt_sweep_kind *__rt_sweep_kind_anchor __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 24); /* resized by the loader */
} events SEC(".maps");

/* Ring-buffer reservation failures, per event kind: loss is never silent. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 32);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

/* Tracking-map insertion failures (frames, sockets, calls, skbs, aggs). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 5);
	__type(key, __u32);
	__type(value, __u64);
} overflow SEC(".maps");

#define OVF_FRAMES 0
#define OVF_SOCKS 1
#define OVF_CALLS 2
#define OVF_SKBS 3
#define OVF_AGGS 4

/* A send syscall's fd resolved to a TX-ring socket. The file's inode
 * number tells a file freed and reallocated at the same address (the thread
 * closed the socket and opened another) from the one resolved. */
struct call_fd {
	__u64 file;
	__u64 sk;
	__u64 ino;
	__s32 num;
	__u32 pad;
};

/*
 * A thread's sendmsg call on a TX-ring socket, keyed by thread id. Where
 * cfg.calls_kept is set the entry outlives the call: a return marks it idle
 * (sk = 0) and the thread's exit deletes it, so each call writes it in place
 * instead of inserting and deleting a hash entry (two bucket locks and the
 * free list: a third of an empty call's tracing cost). Readers of the map
 * must treat sk == 0 as no call. fd is the thread's last resolved send fd
 * (syscall hooks): a call on the same open file skips most of the fd ->
 * socket walk. It survives the idle mark.
 */
struct call_state {
	__u64 sk;
	__u64 ts_enter;
	__u64 drop_ts;
	__u64 sleep_ts;
	__u64 runq_ts; /* runnable without a CPU since (preempted or woken), 0: running */
	__u64 xmit_skb; /* the skb this call is handing to the device now (in_xmit) */
	/* the entry event is held back, for the return's one RT_SENDMSG_CALL
	 * (or a switch away from the CPU, which sends it): head_st is the
	 * status of the frame at head at entry. Taken with cmpxchg
	 * (take_held), 64 bits wide as clang's -mcpu=v1 has no narrower one:
	 * where the kernel runs syscall tracepoint programs preemptible (7.2:
	 * migration disabled only, under PREEMPT_LAZY) a switch can come in
	 * the middle of the return, and only one of the two may send it. */
	__u64 enter_held;
	__u32 seq;
	__u32 flags;
	__u32 head_entry;
	__u32 run_entry; /* SEND_REQUEST run at entry */
	__u32 rollback_idx;
	__u32 n_sent;
	__u32 sleep_reason;
	__u8 sleeping;
	__u8 in_xmit;
	__u8 head_req; /* the frame at head was SEND_REQUEST at entry (light scans) */
	__u8 head_st;
	__u8 hook;
	__u8 pad[3];
	struct call_fd fd;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct call_state);
} calls SEC(".maps");

/* A TX-ring socket ringtrace has seen. */
struct sock_state {
	__u64 pg_vec;
	__u64 last_ts;
	__u64 ino; /* socket inode: a new socket at a reused address differs */
	__u32 pid;
	__u32 seq; /* sendmsg calls so far */
	__s32 pending; /* event-sourced SENDING count */
	/* this socket's frames map entries in SENDING: the frames the sweep
	 * re-reads (pending is re-synchronised with the ring, this is not) */
	__s32 map_sending;
	/* TX ring geometry, valid while pg_vec is unchanged */
	__u32 fpb;
	__u32 fsize;
	__u32 n;
	__u32 off;
	/* the frame expected to complete next (the one after the last that
	 * did): frames mostly complete in ring order, and checking a guess
	 * costs one read where finding an index costs map lookups */
	__u32 next_idx;
	__u8 tracked; /* 0: filtered out */
	__u8 tp_version; /* the ring's TPACKET version + 1 (0: no ring seen yet) */
	__u8 pad[2];
	/* where the sweep's next walk of this ring starts: a walk that ran
	 * out of budget resumes there */
	__u32 sweep_pos;
	/* when the sweep first found the socket closed with frames still
	 * SENDING (uarg kernels complete them later), 0 while it lives */
	__u64 gone_ts;
	/* the device this socket's frames were last seen on, and its name:
	 * reading a name is a string copy, most events reuse this one */
	__u64 dev;
	__u32 ifindex;
	char dev_name[RT_IFNAME_LEN];
	/* --detail calls (cfg.calls_only): frames taken, and the oldest of
	 * them known complete, since the ring was first seen with its head at
	 * frontier_base: the k-th frame taken sits at (frontier_base + k) % n,
	 * and frames complete in ring order. done_total only grows (a max
	 * kept with cmpxchg): the sweep and a call's return both move it. */
	__u64 taken_total;
	__u64 done_total;
	__u32 frontier_base;
	__u32 pad2;
	/* its range of frame_slots, set when the state starts and kept for
	 * its life: (2^class slots) class << 32 | (first slot + 1); 0: none,
	 * its frame entries are in the frames hash (so are those of frames
	 * past the range, a ring re-created larger) */
	__u64 slots;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct sock_state);
} socks SEC(".maps");

/*
 * Sockets that are gone (closed, or replaced at their address by a new
 * socket) whose frame entries are still to be deleted: (address, inode) ->
 * ring size and slot range. The sweep empties it (user space, without
 * bpf_loop).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct rt_agg_key);
	__type(value, struct rt_grave);
} graves SEC(".maps");

/* Summary mode (cfg.aggregate): per-socket frame aggregates, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct rt_agg_key);
	__type(value, struct rt_sock_agg);
} aggs SEC(".maps");

/* One all-zero aggregate: the initial value of new aggs entries (too big
 * for the stack). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rt_sock_agg);
} agg_zero SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536); /* resized by the loader (--max-frames) */
	__type(key, struct rt_frame_key);
	__type(value, struct rt_frame);
} frames SEC(".maps");

/*
 * Frame entries in an array (cfg.frame_slots): a socket's frame idx is slot
 * base + idx of the range its state got when it started, an array lookup
 * where the frames hash hashes the key and walks a bucket under its lock
 * (26-35 ns a frame with --summary, 41-80 streaming, measured). A slot's
 * sock_ino says whose it is: ranges are reused, and a new owner's first use
 * resets it. Ranges come in powers of two, from free_slots (class << 32 |
 * base + 1, pushed when the sweep has cleaned up after a buried socket) or
 * else from slots_next; with none left a socket uses the frames hash.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1); /* resized by the loader (cfg.frame_slots) */
	__type(key, __u32);
	__type(value, struct rt_frame);
} frame_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 4096);
	__type(value, __u64);
} free_slots SEC(".maps");

/* The first slot no range has taken yet (moved with cmpxchg). */
volatile __u64 slots_next;

/* Ring skbs on their way, so asynchronous events find their frame. */
struct skb_state {
	__u64 sk;
	__u64 ph;
	__u64 darg; /* skb_shinfo(skb)->destructor_arg when it was sent */
	__u64 ts_start_xmit;
	__u32 idx;
	__u32 ino; /* its socket's inode */
	/* An xmit start held for the driver's return (RT_XMIT_PAIR): its
	 * socket counts, and whether one is held. */
	__s32 xs_sndbuf;
	__s32 xs_wmem;
	__s32 xs_pending;
	__u32 xs_held;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct skb_state);
} skbs SEC(".maps");

/* Frame address -> (socket, index), learned when frames are sent. */
struct ph_state {
	__u64 sk;
	__u64 pg_vec; /* the ring it was found in: a re-created ring invalidates it */
	__u64 skb; /* the skb remember_skb cached for it (an skbs entry), or 0 */
	__u32 idx;
	__u32 ino; /* the socket's inode */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536); /* resized by the loader with frames */
	__type(key, __u64);
	__type(value, struct ph_state);
} ph2idx SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} softirq_ts SEC(".maps");

/* Frames user space asks the sweep program to re-read. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rt_sweep);
} sweep_req SEC(".maps");
