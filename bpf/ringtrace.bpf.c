// SPDX-License-Identifier: GPL-2.0
/*
 * ringtrace: follow AF_PACKET PACKET_TX_RING frames through
 * SEND_REQUEST -> SENDING -> AVAILABLE on any kernel, with whatever hooks it
 * allows. Every program below feeds the same handlers; the Go loader keeps
 * the programs of the attach plan it chose and deletes the rest before load:
 *
 *   class A (fentry/fexit), class B (kprobe/kretprobe): packet_sendmsg,
 *     tpacket_destruct_skb, __dev_queue_xmit / packet_xmit / __dev_direct_xmit,
 *     sock_alloc_send_pskb, __packet_set_status where it is still a symbol;
 *   class C (tracepoints only): syscall tracepoints for sendmsg enter/return
 *     plus ring status scans, net_dev_queue for SENDING, skb tracepoints and
 *     status reads for AVAILABLE, and a user-triggered sweep of frames whose
 *     completion no tracepoint shows;
 *   all classes: qdisc, driver, sched, softirq and napi tracepoints.
 *
 * Programs that scan the ring come in two variants: "_loop" (bpf_loop, 5.17+)
 * and "_bounded" (a capped bounded loop for older kernels).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "core_fixes.bpf.h"
#include "ringtrace.h"

char LICENSE[] SEC("license") = "GPL";

#define AF_PACKET 17
#define S_IFMT 0170000
#define S_IFSOCK 0140000
#define TASK_RUNNING 0
#define MSG_DONTWAIT 0x40
#define NET_TX_SOFTIRQ 2
#define NET_RX_SOFTIRQ 3
/* Without bpf_loop (before 5.17) the verifier walks loops iteration by
 * iteration: ring scans cover RT_BOUNDED_SCAN frames, walks that call into
 * the frame tracking (blocks, untraced frames) BOUNDED_WALK. */
#define BOUNDED_WALK 16
#define STACK_DEPTH 12 /* the wait function is within the first few frames */

const volatile struct rt_config cfg = {};

/* Anchors so bpf2go -type finds these types in BTF. */
const struct rt_event *__rt_event_anchor __attribute__((unused));
const struct rt_frame_key *__rt_frame_key_anchor __attribute__((unused));
const struct rt_frame *__rt_frame_anchor __attribute__((unused));
const struct rt_sweep *__rt_sweep_anchor __attribute__((unused));
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

/* A sendmsg call on a TX-ring socket in progress, keyed by thread id. */
struct call_state {
	__u64 sk;
	__u64 ts_enter;
	__u64 drop_ts;
	__u64 sleep_ts;
	__u64 runq_ts; /* runnable without a CPU since (preempted or woken), 0: running */
	__u64 xmit_skb; /* the skb this call is handing to the device now (in_xmit) */
	__u32 seq;
	__u32 flags;
	__u32 head_entry;
	__u32 run_entry; /* SEND_REQUEST run at entry */
	__u32 rollback_idx;
	__u32 n_sent;
	__u32 sleep_reason;
	__u8 sleeping;
	__u8 in_xmit;
	__u8 pad[2];
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
	__u8 pad[7];
	/* when the sweep first found the socket closed with frames still
	 * SENDING (uarg kernels complete them later), 0 while it lives */
	__u64 gone_ts;
	/* the device this socket's frames were last seen on, and its name:
	 * reading a name is a string copy, most events reuse this one */
	__u64 dev;
	__u32 ifindex;
	char dev_name[RT_IFNAME_LEN];
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
 * ring size. The sweep empties it (user space, without bpf_loop).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct rt_agg_key);
	__type(value, __u32);
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

/* Ring skbs on their way, so asynchronous events find their frame. */
struct skb_state {
	__u64 sk;
	__u64 ph;
	__u64 darg; /* skb_shinfo(skb)->destructor_arg when it was sent */
	__u64 ts_start_xmit;
	__u32 idx;
	__u32 ino; /* its socket's inode */
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

/* ------------------------------------------------------------------ */
/* helpers                                                            */

static __always_inline void count(void *map, __u32 key)
{
	__u64 *c = bpf_map_lookup_elem(map, &key);

	if (c)
		(*c)++;
}

/* bury leaves a gone socket's frame entries to the sweep. */
static __always_inline void bury(__u64 sk, struct sock_state *ss)
{
	struct rt_agg_key k = { .sk = sk, .ino = ss->ino };
	__u32 n = ss->n;

	if (n && bpf_map_update_elem(&graves, &k, &n, BPF_ANY))
		count(&overflow, OVF_SOCKS);
}

static __always_inline struct rt_event *ev_reserve(__u16 kind, __u8 hook)
{
	struct rt_event *e;
	__u64 id;

	if (!(cfg.events & (1u << kind)))
		return NULL;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(&lost, kind);
		return NULL;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts = bpf_ktime_get_ns();
	id = bpf_get_current_pid_tgid();
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->cpu = bpf_get_smp_processor_id();
	e->kind = kind;
	e->hook = hook;
	e->frame = RT_NO_FRAME;
	e->sndbuf = -1;
	e->wmem = -1;
	e->pending = -1;
	e->old_state = RT_ST_UNKNOWN;
	e->new_state = RT_ST_UNKNOWN;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	return e;
}

/* ev_sock fills the socket fields; ss may be NULL (looked up then). */
/*
 * ev_submit commits an event without waking the reader for each one: the
 * reader wakes itself every few milliseconds, and is woken at once only when
 * a good part of the buffer is waiting (a wake-up is an irq_work per event
 * otherwise, a large share of the per-frame cost).
 */
static __always_inline void ev_submit(struct rt_event *e)
{
	__u64 flags = BPF_RB_NO_WAKEUP;

	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= cfg.wakeup_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	bpf_ringbuf_submit(e, flags);
}

/*
 * direct: sk is a BTF-typed pointer (a tp_btf/fentry argument or a field
 * loaded from one), so fields are plain loads instead of probe-read helper
 * calls. Callers pass a constant: the other branch is compiled out.
 */
static __always_inline void ev_sock_x(struct rt_event *e, struct sock *sk, struct sock_state *ss, int direct)
{
	__u64 key = (__u64)sk;

	e->sk = key;
	if (direct) {
		e->sndbuf = sk->sk_sndbuf;
		e->wmem = sk->sk_wmem_alloc.refs.counter - 1;
	} else {
		e->sndbuf = BPF_CORE_READ(sk, sk_sndbuf);
		e->wmem = sk_wmem(sk);
	}
	if (!ss)
		ss = bpf_map_lookup_elem(&socks, &key);
	if (ss) {
		e->pending = ss->pending;
		e->sock_ino = ss->ino;
	}
}

static __always_inline void ev_sock(struct rt_event *e, struct sock *sk, struct sock_state *ss)
{
	ev_sock_x(e, sk, ss, 0);
}

/* The socket's inode number, 0 once the socket is closed (sk_socket gone). */
static __always_inline __u64 sock_ino(struct sock *sk)
{
	return BPF_CORE_READ(sk, sk_socket, file, f_inode, i_ino);
}

/* ev_dev names the device, from ss's cache when it is the same one. */
static __always_inline void ev_dev(struct rt_event *e, struct sock_state *ss, struct net_device *dev)
{
	if (!dev)
		return;
	if (ss && ss->dev == (__u64)dev) {
		e->ifindex = ss->ifindex;
		__builtin_memcpy(e->dev, ss->dev_name, RT_IFNAME_LEN);
		return;
	}
	e->ifindex = BPF_CORE_READ(dev, ifindex);
	BPF_CORE_READ_STR_INTO(&e->dev, dev, name);
	if (ss) {
		ss->ifindex = e->ifindex;
		__builtin_memcpy(ss->dev_name, e->dev, RT_IFNAME_LEN);
		ss->dev = (__u64)dev;
	}
}

/* Ring geometry of a packet socket's TX ring. */
struct ring {
	__u64 pg_vec;
	__u32 head;
	__u32 fpb;
	__u32 fsize;
	__u32 n;
	__u32 off; /* tp_status offset in a frame header */
};

static __always_inline int read_ring(struct packet_sock *po, struct ring *r)
{
	enum tpacket_versions v;

	r->pg_vec = (__u64)BPF_CORE_READ(po, tx_ring.pg_vec);
	if (!r->pg_vec)
		return -1;
	r->head = BPF_CORE_READ(po, tx_ring.head);
	r->fpb = BPF_CORE_READ(po, tx_ring.frames_per_block);
	r->fsize = BPF_CORE_READ(po, tx_ring.frame_size);
	r->n = BPF_CORE_READ(po, tx_ring.frame_max) + 1;
	if (!r->fpb || !r->fsize)
		return -1;
	v = BPF_CORE_READ(po, tp_version);
	/* V1 tp_status is an unsigned long at 0 (low word first on LE);
	 * V2 a __u32 at 0; V3 a __u32 at 20. */
	r->off = v == TPACKET_V3 ? 20 : 0;
	return 0;
}

/*
 * ring_of reads the ring with the geometry cached in the socket's state:
 * only head (and pg_vec, to notice a new ring) change between events.
 */
static __always_inline int ring_of(struct packet_sock *po, struct sock_state *ss, struct ring *r)
{
	__u64 pg = (__u64)BPF_CORE_READ(po, tx_ring.pg_vec);

	if (!pg)
		return -1;
	if (pg != ss->pg_vec || !ss->n) {
		if (read_ring(po, r))
			return -1;
		ss->pg_vec = r->pg_vec;
		ss->fpb = r->fpb;
		ss->fsize = r->fsize;
		ss->n = r->n;
		ss->off = r->off;
		ss->next_idx = RT_NO_FRAME;
		return 0;
	}
	r->pg_vec = pg;
	r->fpb = ss->fpb;
	r->fsize = ss->fsize;
	r->n = ss->n;
	r->off = ss->off;
	r->head = BPF_CORE_READ(po, tx_ring.head);
	return 0;
}

static __always_inline __u64 frame_addr(const struct ring *r, __u32 idx)
{
	__u64 buf = 0;

	bpf_probe_read_kernel(&buf, sizeof(buf), (void *)(r->pg_vec + (__u64)(idx / r->fpb) * sizeof(__u64)));
	if (!buf)
		return 0;
	return buf + (__u64)(idx % r->fpb) * r->fsize;
}

static __always_inline __u32 frame_status(__u64 ph, __u32 off)
{
	__u32 st = 0xff;

	if (ph)
		bpf_probe_read_kernel(&st, sizeof(st), (void *)(ph + off));
	return st;
}

static __always_inline int is_tx_ring_sock(struct sock *sk)
{
	if (!sk)
		return 0;
	if (BPF_CORE_READ(sk, __sk_common.skc_family) != AF_PACKET)
		return 0;
	return BPF_CORE_READ((struct packet_sock *)sk, tx_ring.pg_vec) != 0;
}

/* b is load-time configuration: keep it volatile, or clang folds the reads
 * to the zero initializer of the const object. */
static __always_inline int str16_eq(const char *a, const volatile char *b)
{
#pragma unroll
	for (int i = 0; i < 16; i++) {
		if (a[i] != b[i])
			return 0;
		if (!a[i])
			return 1;
	}
	return 1;
}

/*
 * sock_lookup finds (or, from a sendmsg context, starts) the tracking
 * state of a socket. Filters are evaluated once, when a sendmsg shows who
 * owns the socket; sockets first seen from another context (a softirq) are
 * tracked only when no pid/comm filter is set.
 */
static __always_inline struct sock_state *sock_lookup(struct sock *sk, int from_call)
{
	struct sock_state *ss, init = {};
	__u64 key = (__u64)sk;
	__u64 ino = 0;

	ss = bpf_map_lookup_elem(&socks, &key);
	/*
	 * A new socket at a freed socket's address is first seen sending
	 * (from_call): only then is the inode compared. A closed socket
	 * (inode 0) keeps its state so in-flight frames still complete.
	 */
	if (ss && !from_call)
		return ss->tracked ? ss : NULL;
	ino = sock_ino(sk);
	if (ss) {
		if (!ino || ss->ino == ino)
			return ss->tracked ? ss : NULL;
		if (ss->tracked) {
			struct rt_event *e = ev_reserve(RT_SOCK_GONE, RT_H_TRACEPOINT);

			if (e) {
				e->sk = key;
				e->sock_ino = ss->ino;
				e->pending = ss->map_sending;
				e->scan.nframes = ss->n;
				ev_submit(e);
			}
		}
		bury(key, ss);
		bpf_map_delete_elem(&socks, &key);
	}
	if (!from_call && (cfg.filter_pid || cfg.filter_comm_set))
		return NULL;
	/* A closed socket (sock_orphan() cleared sk_socket) whose state is
	 * gone: a late completion after sock_gone. Nothing to start, and a
	 * state with inode 0 would never be found closed. */
	if (!ino)
		return NULL;
	init.tracked = 1;
	init.ino = ino;
	if (from_call) {
		__u32 pid = bpf_get_current_pid_tgid() >> 32;
		char comm[RT_COMM_LEN];

		init.pid = pid;
		if (cfg.filter_pid && cfg.filter_pid != pid)
			init.tracked = 0;
		if (cfg.filter_comm_set) {
			bpf_get_current_comm(comm, sizeof(comm));
			if (!str16_eq(comm, cfg.filter_comm))
				init.tracked = 0;
		}
	}
	if (cfg.filter_ifname_set) {
		char name[RT_IFNAME_LEN] = {};
		struct net_device *dev = BPF_CORE_READ((struct packet_sock *)sk, cached_dev);

		if (dev)
			BPF_CORE_READ_STR_INTO(&name, dev, name);
		if (!dev || !str16_eq(name, cfg.filter_ifname))
			init.tracked = 0;
	}
	if (bpf_map_update_elem(&socks, &key, &init, BPF_NOEXIST) && !bpf_map_lookup_elem(&socks, &key))
		count(&overflow, OVF_SOCKS);
	ss = bpf_map_lookup_elem(&socks, &key);
	if (ss && ss->tracked)
		return ss;
	return NULL;
}

static __always_inline struct call_state *current_call(__u64 sk)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct call_state *c = bpf_map_lookup_elem(&calls, &tid);

	if (c && (!sk || c->sk == sk))
		return c;
	return NULL;
}

/* ------------------------------------------------------------------ */
/* frame index from a frame address                                  */

struct idx_ctx {
	__u64 pg_vec;
	__u64 ph;
	__u32 fpb;
	__u32 fsize;
	__u32 blocks;
	__u32 idx;
};

static __always_inline long idx_cb_body(__u32 b, void *data)
{
	struct idx_ctx *c = data;
	__u64 buf = 0;

	if (b >= c->blocks)
		return 1;
	bpf_probe_read_kernel(&buf, sizeof(buf), (void *)(c->pg_vec + (__u64)b * sizeof(__u64)));
	if (buf && c->ph >= buf && c->ph < buf + (__u64)c->fpb * c->fsize) {
		c->idx = b * c->fpb + (__u32)((c->ph - buf) / c->fsize);
		return 1;
	}
	return 0;
}

/* bpf_loop callback */
static long idx_cb(__u32 i, void *data)
{
	return idx_cb_body(i, data);
}

/*
 * frame_index maps a frame address to its index: the kernel's head when the
 * event is synchronous with tpacket_snd, the cache filled when frames are
 * sent, else a walk over the ring's blocks (blocks are not contiguous).
 */
static __always_inline __u32 frame_index(struct packet_sock *po, __u32 ino, const struct ring *r, __u64 ph, int use_loop)
{
	struct ph_state *ps;
	struct idx_ctx c = {};

	if (frame_addr(r, r->head) == ph)
		return r->head;
	ps = bpf_map_lookup_elem(&ph2idx, &ph);
	if (ps && ps->sk == (__u64)po && ps->ino == ino && ps->pg_vec == r->pg_vec && ps->idx < r->n)
		return ps->idx;
	c.pg_vec = r->pg_vec;
	c.ph = ph;
	c.fpb = r->fpb;
	c.fsize = r->fsize;
	c.blocks = r->n / r->fpb;
	c.idx = RT_NO_FRAME;
	if (use_loop) {
		bpf_loop(cfg.max_scan, idx_cb, &c, 0);
	} else {
		for (__u32 b = 0; b < BOUNDED_WALK; b++)
			if (idx_cb_body(b, &c))
				break;
	}
	if (c.idx != RT_NO_FRAME) {
		struct ph_state n = { .sk = (__u64)po, .ino = ino, .pg_vec = r->pg_vec, .idx = c.idx };

		bpf_map_update_elem(&ph2idx, &ph, &n, BPF_ANY);
	}
	return c.idx;
}

/*
 * predicted_idx returns ss->next_idx if the frame at ph is that frame, else
 * RT_NO_FRAME. The guess is only a hint (sockets are shared across CPUs and
 * it is written without locks): the frame's address, computed from the
 * ring, confirms it. ss's geometry is the ring's: ring_of renews it, and
 * forgets the guess, at the sendmsg that first uses a new ring, before any
 * of its frames can complete.
 */
static __always_inline __u32 predicted_idx(struct sock_state *ss, __u64 ph)
{
	struct ring r = { .pg_vec = ss->pg_vec, .fpb = ss->fpb, .fsize = ss->fsize };
	__u32 idx = ss->next_idx;

	if (!r.pg_vec || !r.fpb || idx >= ss->n || frame_addr(&r, idx) != ph)
		return RT_NO_FRAME;
	return idx;
}

static __always_inline void predict_after(struct sock_state *ss, __u32 idx)
{
	ss->next_idx = idx + 1 < ss->n ? idx + 1 : 0;
}

/* ------------------------------------------------------------------ */
/* frame state transitions                                            */

/* ss_of returns ss, or looks the socket's state up when the caller has none. */
static __always_inline struct sock_state *ss_of(struct sock *sk, struct sock_state *ss)
{
	__u64 key = (__u64)sk;

	return ss ? ss : bpf_map_lookup_elem(&socks, &key);
}

static __always_inline void emit_frame_why(struct sock *sk, struct sock_state *ss, __u32 idx, __u64 skb, __u8 old,
					   __u8 new, __u8 prec, __u64 ts_lo, __u8 cause, __u8 hook,
					   struct net_device *dev, __u64 reason, __u64 location)
{
	struct rt_event *e;

	ss = ss_of(sk, ss);
	e = ev_reserve(RT_FRAME_STATE, hook);
	if (!e)
		return;
	e->a[0] = reason;
	e->a[1] = location;
	ev_sock(e, sk, ss);
	e->frame = idx;
	e->skb = skb;
	e->old_state = old;
	e->new_state = new;
	e->prec = prec;
	e->ts_lo = prec == RT_BOUNDED ? ts_lo : 0;
	e->cause = cause;
	ev_dev(e, ss, dev);
	ev_submit(e);
}

static __always_inline void emit_frame(struct sock *sk, struct sock_state *ss, __u32 idx, __u64 skb, __u8 old,
				       __u8 new, __u8 prec, __u64 ts_lo, __u8 cause, __u8 hook, struct net_device *dev)
{
	emit_frame_why(sk, ss, idx, skb, old, new, prec, ts_lo, cause, hook, dev, 0, 0);
}

static __always_inline struct rt_frame *frame_entry(struct sock_state *ss, __u64 sk, __u32 idx, __u64 ph)
{
	__u32 ino = ss ? (__u32)ss->ino : 0;
	struct rt_frame_key k = { .sk = sk, .idx = idx, .ino = ino };
	struct rt_frame *f = bpf_map_lookup_elem(&frames, &k);
	struct rt_frame init = {};

	if (f) {
		/* An entry left by an earlier socket at this address. */
		if (f->sock_ino != ino) {
			f->sock_ino = ino;
			f->state = RT_ST_UNKNOWN;
			f->busy = 0;
			f->ph = ph;
		}
		return f;
	}
	init.ph = ph;
	init.sock_ino = ino;
	init.state = RT_ST_UNKNOWN;
	if (bpf_map_update_elem(&frames, &k, &init, BPF_NOEXIST) && !bpf_map_lookup_elem(&frames, &k)) {
		count(&overflow, OVF_FRAMES);
		return NULL;
	}
	return bpf_map_lookup_elem(&frames, &k);
}

static __always_inline void pending_add(struct sock_state *ss, __s32 d)
{
	if (ss)
		__sync_fetch_and_add(&ss->pending, d);
}

/*
 * flip_busy moves f->busy from one value to another, atomically where the
 * kernel can (cfg.claims): of two CPUs reporting the same transition only
 * the one whose flip succeeds goes on. Without cfg.claims (before 5.12) the
 * Go loader rewrites the unreachable cmpxchg into a load the verifier of
 * those kernels accepts.
 */
static __always_inline int flip_busy(struct rt_frame *f, __u64 from, __u64 to)
{
	if (!cfg.claims) {
		f->busy = to;
		return 1;
	}
	return __sync_val_compare_and_swap(&f->busy, from, to) == from;
}

/*
 * set_state_x moves a frame's entry to state, keeping ss->map_sending and
 * f->busy in step. claim: a move in or out of SENDING must win f->busy
 * (another CPU may be reporting it right now); returns 0 if it did not.
 */
static __always_inline int set_state_x(struct sock_state *ss, struct rt_frame *f, __u8 state, int claim)
{
	__u64 was = f->state == RT_ST_SENDING, in = state == RT_ST_SENDING;

	if (was != in) {
		if (!claim)
			f->busy = in;
		else if (!flip_busy(f, was, in))
			return 0;
		if (ss)
			__sync_fetch_and_add(&ss->map_sending, in ? 1 : -1);
	}
	f->state = state;
	return 1;
}

/* set_state moves a frame's entry to state where no other CPU can race it. */
static __always_inline void set_state(struct sock_state *ss, struct rt_frame *f, __u8 state)
{
	set_state_x(ss, f, state, 0);
}

/* agg_of finds (or starts) a socket's aggregates on this CPU. */
static __always_inline struct rt_sock_agg *agg_of(struct sock *sk, struct sock_state *ss)
{
	struct rt_agg_key k = { .sk = (__u64)sk };
	struct rt_sock_agg *a, *zero;
	__u32 z = 0;

	if (!ss)
		return NULL;
	k.ino = ss->ino;
	a = bpf_map_lookup_elem(&aggs, &k);
	if (a)
		return a;
	zero = bpf_map_lookup_elem(&agg_zero, &z);
	if (!zero)
		return NULL;
	if (bpf_map_update_elem(&aggs, &k, zero, BPF_NOEXIST) && !bpf_map_lookup_elem(&aggs, &k))
		count(&overflow, OVF_AGGS);
	return bpf_map_lookup_elem(&aggs, &k);
}

/* mark_sending updates a frame's entry for SEND_REQUEST -> SENDING; 0 if
 * claim is set and another CPU did it first. */
static __always_inline int mark_sending(struct sock_state *ss, struct rt_frame *f, struct call_state *c, __u64 ph,
					__u64 now, int exact, int claim)
{
	if (!set_state_x(ss, f, RT_ST_SENDING, claim))
		return 0;
	f->sending_exact = exact;
	f->avail_read = 0;
	f->ph = ph;
	f->ts_sending = now;
	f->ts_seen = now;
	if (c) {
		f->call_seq = c->seq;
		c->n_sent++;
	} else if (ss) {
		f->call_seq = ss->seq;
	}
	return 1;
}

/* to_sending records SEND_REQUEST -> SENDING for a frame. */
static __always_inline void to_sending(struct sock *sk, struct sock_state *ss, __u32 idx, __u64 ph, __u64 skb,
				       __u8 prec, __u64 ts_lo, __u8 cause, __u8 hook, struct net_device *dev)
{
	struct rt_frame *f;

	ss = ss_of(sk, ss);
	f = frame_entry(ss, (__u64)sk, idx, ph);
	if (!f || f->state == RT_ST_SENDING)
		return;
	if (!mark_sending(ss, f, current_call((__u64)sk), ph, bpf_ktime_get_ns(), prec == RT_EXACT, 1))
		return;
	pending_add(ss, 1);
	if (cfg.aggregate) {
		struct rt_sock_agg *a = agg_of(sk, ss);

		if (a)
			a->sent++;
		return;
	}
	emit_frame(sk, ss, idx, skb, RT_ST_SEND_REQUEST, RT_ST_SENDING, prec, ts_lo, cause, hook, dev);
}

/* log2_u64 is floor(log2(v)), 0 for 0 (BPF has no count-leading-zeros). */
static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 r = 0, sh;

	sh = (v > 0xffffffffULL) << 5;
	v >>= sh;
	r |= sh;
	sh = (v > 0xffff) << 4;
	v >>= sh;
	r |= sh;
	sh = (v > 0xff) << 3;
	v >>= sh;
	r |= sh;
	sh = (v > 0xf) << 2;
	v >>= sh;
	r |= sh;
	sh = (v > 0x3) << 1;
	v >>= sh;
	r |= sh;
	return r | (__u32)(v >> 1);
}

/* agg_completion counts a completion in the socket's aggregates. */
static __always_inline void agg_completion(struct sock *sk, struct sock_state *ss, struct rt_frame *f, __u8 old,
					   __u8 prec, __u8 cause, __u64 now)
{
	struct rt_sock_agg *a = agg_of(sk, ss);
	__u64 d;
	__u64 b;

	if (!a)
		return;
	if (cause == RT_C_DROP) {
		/* A synchronous drop: tpacket_snd rolls the frame back and sends
		 * it again, one frame use (per-CPU counts may wrap; their sum
		 * is right). */
		if (old != RT_ST_SEND_REQUEST)
			a->sent--;
		return;
	}
	if (prec == RT_EXACT)
		a->completed_exact++;
	else
		a->completed_bounded++;
	if (old == RT_ST_SEND_REQUEST)
		a->sent++; /* SENDING and AVAILABLE at once */
	if (!f->sending_exact) {
		a->unseen_sending++;
		return;
	}
	d = now > f->ts_sending ? now - f->ts_sending : 0;
	b = log2_u64(d);
	/* The clamp in one 64-bit register: verifiers before ~6.3 lose the
	 * bound of a compare on a 32-bit subregister that clang emits for a
	 * plain C clamp ("R0 unbounded memory access" on 5.10 and 6.1). */
	asm volatile("if %[b] < %[n] goto +1; %[b] = %[last]"
		     : [b] "+r"(b)
		     : [n] "i"(RT_HIST_BUCKETS), [last] "i"(RT_HIST_BUCKETS - 1));
	a->inflight_count++;
	a->inflight_sum += d;
	if (d > a->inflight_max)
		a->inflight_max = d;
	a->hist[b]++;
}

/*
 * to_available records SENDING -> AVAILABLE. certain: the caller knows the
 * frame completes now (destructor or free of the ring skb), so a frame
 * nobody saw become SENDING (qdisc bypass) completes too: then one event
 * says both, SEND_REQUEST -> AVAILABLE with a[2] = the earliest time it can
 * have become SENDING (its call's entry, or the socket's last activity),
 * and user space (event.Normalizer) reports the two transitions. Otherwise
 * the frame must be known SENDING.
 */
/* have_call: the caller already looked the current call up (c, may be NULL). */
static __always_inline void to_available_why(struct sock *sk, struct sock_state *ss, __u32 idx, __u64 ph, __u64 skb,
					     __u8 prec, __u64 ts_lo, __u8 cause, __u8 hook, int certain,
					     struct net_device *dev, __u64 reason, __u64 location, int direct,
					     struct call_state *c, int have_call)
{
	struct rt_frame *f;
	struct rt_event *e;
	__u64 now = bpf_ktime_get_ns(), sending_lo = 0;
	__u8 old = RT_ST_SENDING;

	ss = ss_of(sk, ss);
	f = frame_entry(ss, (__u64)sk, idx, ph);
	if (!f)
		return;
	if (f->state != RT_ST_SENDING) {
		if (!certain)
			return;
		/* The uarg's kfree comes right after the status write: a ring
		 * scan in between (a call's return, the sweep, on another CPU)
		 * may have reported this completion already, bounded. */
		if (f->state == RT_ST_AVAILABLE && f->avail_read && hook == RT_H_TRACEPOINT && cfg.uarg_via_kfree) {
			f->avail_read = 0;
			return;
		}
		if (!have_call)
			c = current_call((__u64)sk);
		sending_lo = c ? c->ts_enter : (ss ? ss->last_ts : 0);
		mark_sending(ss, f, c, ph, now, 0, 0);
		old = RT_ST_SEND_REQUEST;
	}
	/* A scan that read the status this hook's function wrote may be
	 * reporting the same completion on another CPU: one of the two does. */
	if (!set_state_x(ss, f, RT_ST_AVAILABLE, 1))
		return;
	if (old == RT_ST_SENDING)
		pending_add(ss, -1);
	f->ts_seen = now;
	f->avail_read = prec == RT_BOUNDED;
	if (cfg.aggregate) {
		agg_completion(sk, ss, f, old, prec, cause, now);
		return;
	}
	e = ev_reserve(RT_FRAME_STATE, hook);
	if (!e)
		return;
	ev_sock_x(e, sk, ss, direct);
	e->frame = idx;
	e->skb = skb;
	e->old_state = old;
	e->new_state = RT_ST_AVAILABLE;
	e->prec = prec;
	e->ts_lo = prec == RT_BOUNDED ? ts_lo : 0;
	e->cause = cause;
	e->a[0] = reason;
	e->a[1] = location;
	e->a[2] = sending_lo;
	ev_dev(e, ss, dev);
	ev_submit(e);
}

static __always_inline void to_available(struct sock *sk, struct sock_state *ss, __u32 idx, __u64 ph, __u64 skb,
					 __u8 prec, __u64 ts_lo, __u8 cause, __u8 hook, int certain,
					 struct net_device *dev)
{
	to_available_why(sk, ss, idx, ph, skb, prec, ts_lo, cause, hook, certain, dev, 0, 0, 0, NULL, 0);
}

/* ------------------------------------------------------------------ */
/* ring skbs                                                          */

/* skb_shinfo() for an skb read with probe reads. */
static __always_inline struct skb_shared_info *shinfo_of(struct sk_buff *skb)
{
	unsigned char *head = BPF_CORE_READ(skb, head);

	return (void *)(head + BPF_CORE_READ(skb, end));
}

static __always_inline __u64 shinfo_destructor_arg(struct sk_buff *skb)
{
	return (__u64)BPF_CORE_READ(shinfo_of(skb), destructor_arg);
}

/*
 * ring_skb_arg recognises an skb carrying a TX-ring frame: destructor form
 * (skb->destructor == tpacket_destruct_skb, frame = destructor_arg & ~1,
 * socket = skb->sk) or uarg form (tpacket_uarg_of(): destructor_arg is a
 * struct tpacket_uarg whose ubuf.ops->complete is tpacket_ubuf_complete:
 * frame = uarg->ph, socket = uarg->po). Clones share destructor_arg but not
 * the destructor, so they don't match in the destructor form; in the uarg
 * form the zerocopy flags (cleared once the pages are copied) and the ops
 * check do. *argp is destructor_arg either way.
 */
static __always_inline int ring_skb_arg(struct sk_buff *skb, struct sock **skp, __u64 *php, __u64 *argp)
{
	struct tpacket_uarg *u;

	if (!skb)
		return 0;
	if (!cfg.uarg_form) {
		if ((__u64)BPF_CORE_READ(skb, destructor) != cfg.destruct_addr || !cfg.destruct_addr)
			return 0;
		*skp = BPF_CORE_READ(skb, sk);
		*argp = shinfo_destructor_arg(skb);
		*php = *argp & ~1ULL;
		return *skp && *php;
	}
	u = tpacket_uarg_of(shinfo_of(skb), cfg.uarg_complete_addr);
	*argp = (__u64)u;
	if (!u)
		return 0;
	*skp = (struct sock *)BPF_CORE_READ(u, po);
	*php = (__u64)BPF_CORE_READ(u, ph);
	return *skp && *php;
}

/*
 * ring_skb_arg for a BTF-typed skb (tp_btf, fentry): plain loads. In the
 * uarg form the socket comes from uarg->po, a probe-read value, so it is
 * not BTF-typed there: callers read it with !cfg.uarg_form as "direct".
 */
static __always_inline int ring_skb_arg_direct(struct sk_buff *skb, struct sock **skp, __u64 *php, __u64 *argp)
{
	struct skb_shared_info *sh;

	if (!skb)
		return 0;
	if (cfg.uarg_form)
		return ring_skb_arg(skb, skp, php, argp);
	if ((__u64)skb->destructor != cfg.destruct_addr || !cfg.destruct_addr)
		return 0;
	*skp = skb->sk;
	sh = (void *)(skb->head + skb->end);
	*argp = (__u64)BPF_CORE_READ(sh, destructor_arg);
	*php = *argp & ~1ULL;
	return *skp && *php;
}

static __always_inline int ring_skb(struct sk_buff *skb, struct sock **skp, __u64 *php)
{
	__u64 arg;

	return ring_skb_arg(skb, skp, php, &arg);
}

/* Resolve (socket, index) of a ring skb, from the skb cache or the skb. */
static __always_inline int skb_frame(struct sk_buff *skb, struct sock **skp, __u64 *php, __u32 *idxp, int use_loop)
{
	__u64 key = (__u64)skb;
	struct sock_state *ss;
	struct skb_state *st;
	struct ring r;

	if (ring_skb(skb, skp, php)) {
		ss = sock_lookup(*skp, 0);
		if (!ss || ring_of((struct packet_sock *)*skp, ss, &r))
			return 0;
		*idxp = frame_index((struct packet_sock *)*skp, (__u32)ss->ino, &r, *php, use_loop);
		return *idxp != RT_NO_FRAME;
	}
	st = bpf_map_lookup_elem(&skbs, &key);
	if (!st)
		return 0;
	*skp = (struct sock *)st->sk;
	*php = st->ph;
	*idxp = st->idx;
	return 1;
}

/* remember_skb caches skb -> frame (for later events of this skb) and, the
 * first time a frame is seen, frame address -> index. */
static __always_inline void remember_skb(struct sk_buff *skb, struct sock *sk, __u32 ino, __u64 ph, __u32 idx,
					 __u64 darg, __u64 pg_vec)
{
	__u64 key = (__u64)skb;
	/* ts_start_xmit starts at queueing; net_dev_start_xmit, when
	 * attached, narrows it. */
	struct skb_state st = { .sk = (__u64)sk, .ino = ino, .ph = ph, .idx = idx, .darg = darg,
				.ts_start_xmit = bpf_ktime_get_ns() };
	struct ph_state *known = bpf_map_lookup_elem(&ph2idx, &ph);

	if (bpf_map_update_elem(&skbs, &key, &st, BPF_ANY))
		count(&overflow, OVF_SKBS);
	if (known && known->sk == (__u64)sk && known->ino == ino && known->idx == idx && known->pg_vec == pg_vec) {
		known->skb = key;
	} else if (pg_vec) {
		struct ph_state ps = { .sk = (__u64)sk, .ino = ino, .pg_vec = pg_vec, .skb = key, .idx = idx };

		bpf_map_update_elem(&ph2idx, &ph, &ps, BPF_ANY);
	}
}

/*
 * known_skb finds a ring skb we saw being sent. skb addresses are recycled
 * at once and not every free has a tracepoint, so the entry only counts if
 * the skb still carries the same destructor_arg (it survives orphaning).
 */
static __always_inline int known_skb(struct sk_buff *skb, struct skb_state **stp)
{
	__u64 key = (__u64)skb;

	*stp = bpf_map_lookup_elem(&skbs, &key);
	if (!*stp)
		return 0;
	if (shinfo_destructor_arg(skb) != (*stp)->darg) {
		bpf_map_delete_elem(&skbs, &key);
		*stp = NULL;
		return 0;
	}
	return 1;
}

/* ------------------------------------------------------------------ */
/* ring scans                                                         */

struct scan_ctx {
	__u64 pg_vec;
	__u32 light; /* stop where the SEND_REQUEST run from head ends */
	__u32 pad;
	__u32 fpb;
	__u32 fsize;
	__u32 n;
	__u32 off;
	__u32 head;
	__u32 run_open;
	struct rt_scan s;
};

static __always_inline long scan_cb_body(__u32 i, void *data)
{
	struct scan_ctx *c = data;
	struct ring r;
	__u32 idx, st;

	if (i >= c->n)
		return 1;
	idx = c->head + i;
	if (idx >= c->n)
		idx -= c->n;
	r.pg_vec = c->pg_vec;
	r.fpb = c->fpb;
	r.fsize = c->fsize;
	st = frame_status(frame_addr(&r, idx), c->off) & 7;
	c->s.scanned++;
	switch (st) {
	case RT_ST_AVAILABLE:
		c->s.available++;
		break;
	case RT_ST_SEND_REQUEST:
		c->s.send_request++;
		break;
	case RT_ST_SENDING:
		c->s.sending++;
		break;
	case RT_ST_WRONG_FORMAT:
		c->s.wrong_format++;
		break;
	}
	if (c->run_open) {
		if (st == RT_ST_SEND_REQUEST)
			c->s.run_send_request++;
		else
			c->run_open = 0;
	}
	return c->light && !c->run_open;
}

/* bpf_loop callback */
static long scan_cb(__u32 i, void *data)
{
	return scan_cb_body(i, data);
}

/* scan_flat's result (a global function cannot take a stack pointer on 5.10). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rt_scan);
} flat_scan SEC(".maps");

/*
 * scan_flat is scan_cb without bpf_loop (kernels before 5.17): the verifier
 * walks every iteration, and a branch per state would multiply its states,
 * so the body is branch-free: statuses index a counter array and the
 * SEND_REQUEST run is kept with arithmetic. Failed reads leave 0xff (an
 * "other" status) instead of being tested.
 *
 * It is a global function, so the verifier walks its RT_BOUNDED_SCAN
 * iterations once per program, with its arguments as unknown scalars,
 * instead of once per path into it: the callers' paths (a walk over taken
 * frames with a break anywhere, drop rollbacks) would otherwise multiply the
 * walk past the 1M-instruction limit. Arguments are scalars only, as 5.10
 * requires (at most five: two are pairs of u32); the counts go to
 * flat_scan.
 */
__noinline int scan_flat(__u64 pg_vec, __u64 fpb_fsize, __u64 n_off, __u32 head)
{
	__u32 fpb = fpb_fsize >> 32, fsize = (__u32)fpb_fsize, nframes = n_off >> 32, off = (__u32)n_off;
	__u32 key = 0, counts[8] = {};
	__u32 n = nframes < RT_BOUNDED_SCAN ? nframes : RT_BOUNDED_SCAN;
	__u32 run_open = 1, run = 0;
	struct rt_scan *out;

	for (__u32 i = 0; i < RT_BOUNDED_SCAN; i++) {
		__u32 idx, st = 0xff;
		__u64 buf = 0;

		if (i >= n)
			break;
		idx = head + i;
		idx -= idx >= nframes ? nframes : 0;
		bpf_probe_read_kernel(&buf, sizeof(buf), (void *)(pg_vec + (__u64)(idx / fpb) * sizeof(__u64)));
		bpf_probe_read_kernel(&st, sizeof(st), (void *)(buf + (__u64)(idx % fpb) * fsize + off));
		st &= 7;
		counts[st]++;
		run_open &= ((st ^ RT_ST_SEND_REQUEST) - 1) >> 31; /* stays 1 while st == 1 */
		run += run_open;
	}
	out = bpf_map_lookup_elem(&flat_scan, &key);
	if (!out)
		return -1;
	out->scanned = n;
	out->run_send_request = run;
	out->available = counts[RT_ST_AVAILABLE];
	out->send_request = counts[RT_ST_SEND_REQUEST];
	out->sending = counts[RT_ST_SENDING];
	out->wrong_format = counts[RT_ST_WRONG_FORMAT];
	return 0;
}

/*
 * scan_ring counts the ring's frames by status and the SEND_REQUEST run from
 * the kernel's head. light (bpf_loop variant only): just the run, and the
 * counts of the frames it looked at.
 */
static __always_inline void scan_ring_x(const struct ring *r, struct rt_scan *out, int use_loop, int light)
{
	struct scan_ctx c = {};

	c.light = light;
	c.pg_vec = r->pg_vec;
	c.fpb = r->fpb;
	c.fsize = r->fsize;
	c.n = r->n;
	c.off = r->off;
	c.head = r->head;
	c.run_open = 1;
	if (use_loop) {
		bpf_loop(cfg.max_scan, scan_cb, &c, 0);
	} else {
		__u32 key = 0;
		struct rt_scan *fs;

		if (scan_flat(c.pg_vec, (__u64)c.fpb << 32 | c.fsize, (__u64)c.n << 32 | c.off, c.head) == 0 &&
		    (fs = bpf_map_lookup_elem(&flat_scan, &key)))
			c.s = *fs;
	}
	c.s.head = r->head;
	c.s.nframes = r->n;
	*out = c.s;
}

static __always_inline void scan_ring(const struct ring *r, struct rt_scan *out, int use_loop)
{
	scan_ring_x(r, out, use_loop, 0);
}

/* Frames taken by a call whose SENDING no hook showed (qdisc bypass). */
struct taken_ctx {
	struct sock *sk;
	struct ring r;
	__u64 ts_enter;
	__u32 from;
	__u32 count;
	__u32 seq;
	__u32 ino;
	__u8 hook;
};

static __always_inline long taken_cb_body(__u32 i, void *data)
{
	struct taken_ctx *c = data;
	struct rt_frame_key k = { .sk = (__u64)c->sk, .ino = c->ino };
	struct rt_frame *f;
	__u32 st;
	__u64 ph;

	if (i >= c->count)
		return 1;
	k.idx = c->from + i;
	if (k.idx >= c->r.n)
		k.idx -= c->r.n;
	f = bpf_map_lookup_elem(&frames, &k);
	if (f && f->call_seq == c->seq && f->state != RT_ST_UNKNOWN)
		return 0; /* seen in this call */
	ph = frame_addr(&c->r, k.idx);
	st = frame_status(ph, c->r.off) & 7;
	if (st == RT_ST_SENDING) {
		to_sending(c->sk, NULL, k.idx, ph, 0, RT_BOUNDED, c->ts_enter, RT_C_TAKEN, c->hook, NULL);
	} else if (st == RT_ST_AVAILABLE) {
		/* Sent and completed with no event: both bounded by the call. */
		to_available(c->sk, NULL, k.idx, ph, 0, RT_BOUNDED, c->ts_enter, RT_C_SCAN, c->hook, 1, NULL);
	}
	return 0;
}

/* bpf_loop callback */
static long taken_cb(__u32 i, void *data)
{
	return taken_cb_body(i, data);
}

/*
 * Frames the events left SENDING that the ring shows AVAILABLE at a call's
 * return: a completion no hook reported. The usual cause is a kprobe the
 * kernel skipped (it runs no kprobe program while another BPF program is
 * running on that CPU, and a softirq completing frames can interrupt one).
 * Found at the return, each bounded by when it was last seen SENDING; the
 * periodic sweep would find them too, but after the call has returned.
 */
struct missed_ctx {
	struct sock *sk;
	struct ring r;
	__s32 want; /* completions still unaccounted for */
	__u32 ino;
	__u8 hook;
};

static long missed_cb(__u32 i, void *data)
{
	struct missed_ctx *c = data;
	struct rt_frame_key k = { .sk = (__u64)c->sk, .idx = i, .ino = c->ino };
	struct rt_frame *f;
	__u64 ph;

	if (i >= c->r.n || c->want <= 0)
		return 1;
	f = bpf_map_lookup_elem(&frames, &k);
	if (!f || f->state != RT_ST_SENDING)
		return 0;
	ph = frame_addr(&c->r, i);
	if ((frame_status(ph, c->r.off) & 7) == RT_ST_AVAILABLE) {
		to_available(c->sk, NULL, i, ph, 0, RT_BOUNDED, f->ts_seen, RT_C_SCAN, c->hook, 0, NULL);
		c->want--;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* sendmsg enter / return                                             */

static __always_inline void call_enter(struct sock *sk, __u32 flags, __u8 hook, int use_loop)
{
	struct sock_state *ss = sock_lookup(sk, 1);
	struct call_state c = {};
	struct rt_event *e;
	struct rt_scan s = {};
	struct ring r;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	if (!ss || ring_of((struct packet_sock *)sk, ss, &r))
		return;
	ss->seq++;
	ss->last_ts = bpf_ktime_get_ns();
	if (cfg.light_scans) {
		s.head = r.head;
		s.nframes = r.n;
	} else {
		scan_ring(&r, &s, use_loop);
		ss->pending = s.sending; /* resynchronise the event-sourced count */
	}
	c.sk = (__u64)sk;
	c.ts_enter = ss->last_ts;
	c.seq = ss->seq;
	c.flags = flags;
	c.head_entry = r.head;
	c.run_entry = s.run_send_request;
	c.rollback_idx = RT_NO_FRAME;
	if (bpf_map_update_elem(&calls, &tid, &c, BPF_ANY))
		count(&overflow, OVF_CALLS);
	e = ev_reserve(RT_SENDMSG_ENTER, hook);
	if (!e)
		return;
	ev_sock(e, sk, ss);
	e->a[0] = flags;
	e->a[1] = r.head;
	e->a[2] = qdisc_bypass((struct packet_sock *)sk, cfg.direct_xmit_addr);
	e->scan = s;
	e->frame = r.head;
	ev_dev(e, ss, BPF_CORE_READ((struct packet_sock *)sk, cached_dev));
	if (!e->ifindex)
		e->ifindex = BPF_CORE_READ((struct packet_sock *)sk, ifindex);
	ev_submit(e);
}

static __always_inline void call_return(__s64 ret, __u8 hook, int use_loop)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct call_state *c = bpf_map_lookup_elem(&calls, &tid);
	struct sock_state *ss;
	struct rt_scan s = {};
	struct rt_event *e;
	struct sock *sk;
	struct ring r;
	__u32 taken;

	if (!c)
		return;
	sk = (struct sock *)c->sk;
	ss = ss_of(sk, NULL);
	if (!ss || ring_of((struct packet_sock *)sk, ss, &r))
		goto out;
	/* A synchronous drop rolls its frame back to SEND_REQUEST. */
	if (c->rollback_idx < r.n) {
		__u64 ph = frame_addr(&r, c->rollback_idx);
		struct rt_frame *f;

		if ((frame_status(ph, r.off) & 7) == RT_ST_SEND_REQUEST) {
			f = frame_entry(ss, c->sk, c->rollback_idx, ph);
			if (f)
				set_state(ss, f, RT_ST_SEND_REQUEST);
			emit_frame(sk, ss, c->rollback_idx, 0, RT_ST_AVAILABLE, RT_ST_SEND_REQUEST, RT_BOUNDED, c->drop_ts,
				   RT_C_ROLLBACK, hook, NULL);
		}
	}
	/* A frame tpacket_snd refused stops the ring at head. */
	if ((frame_status(frame_addr(&r, r.head), r.off) & 7) == RT_ST_WRONG_FORMAT) {
		struct rt_frame *f = frame_entry(ss, c->sk, r.head, frame_addr(&r, r.head));

		if (f && f->state != RT_ST_WRONG_FORMAT) {
			set_state(ss, f, RT_ST_WRONG_FORMAT);
			emit_frame(sk, ss, r.head, 0, RT_ST_SEND_REQUEST, RT_ST_WRONG_FORMAT, RT_BOUNDED, c->ts_enter,
				   RT_C_BAD_FRAME, hook, NULL);
		}
	}
	/* Frames taken but never seen SENDING (qdisc bypass). */
	taken = r.head >= c->head_entry ? r.head - c->head_entry : r.head + r.n - c->head_entry;
	if (taken == 0 && c->run_entry == r.n && (frame_status(frame_addr(&r, r.head), r.off) & 7) != RT_ST_SEND_REQUEST)
		taken = r.n; /* the whole ring went round */
	if (taken > c->n_sent) {
		struct taken_ctx t = {};

		t.sk = sk;
		t.r = r;
		t.ts_enter = c->ts_enter;
		t.from = c->head_entry;
		t.count = taken;
		t.seq = c->seq;
		t.ino = (__u32)ss->ino;
		t.hook = hook;
		if (use_loop) {
			bpf_loop(cfg.max_scan, taken_cb, &t, 0);
		} else {
			for (__u32 i = 0; i < BOUNDED_WALK; i++)
				if (taken_cb_body(i, &t))
					break;
		}
	}
	scan_ring_x(&r, &s, use_loop, cfg.light_scans);
	/* Fewer frames SENDING than the events say: some completed unseen.
	 * Without bpf_loop the walk is left to the sweep. Not where the uarg's
	 * kfree reports completions: it comes after the status write and after
	 * the wake-up of a blocking sender, so a return often reads frames
	 * AVAILABLE whose completion event is a few hundred ns away; and a
	 * raw tracepoint skips no run but one nested in itself. */
	if (use_loop && !cfg.light_scans && !(cfg.uarg_via_kfree && !cfg.complete_hooked) &&
	    ss->pending > (__s32)s.sending) {
		struct missed_ctx m = {};

		m.sk = sk;
		m.r = r;
		m.want = ss->pending - (__s32)s.sending;
		m.ino = (__u32)ss->ino;
		m.hook = hook;
		bpf_loop(cfg.max_scan, missed_cb, &m, 0);
	}
	e = ev_reserve(RT_SENDMSG_RETURN, hook);
	if (e) {
		ev_sock(e, sk, ss);
		if (!cfg.light_scans)
			e->pending = s.sending;
		e->a[0] = (__u64)ret;
		e->a[1] = r.head;
		e->a[2] = c->ts_enter;
		e->scan = s;
		e->frame = r.head;
		e->n = c->n_sent > taken ? c->n_sent : taken;
		e->aux = c->flags & MSG_DONTWAIT ? 1 : 0;
		ev_submit(e);
	}
out:
	bpf_map_delete_elem(&calls, &tid);
}

/* ------------------------------------------------------------------ */
/* class C: syscall tracepoints                                       */

struct sys_enter_args {
	__u64 common;
	__s32 nr;
	__s32 pad;
	__u64 args[6];
};

struct sys_exit_args {
	__u64 common;
	__s32 nr;
	__s32 pad;
	__s64 ret;
};

static __always_inline struct sock *fd_sock(int fd)
{
	struct task_struct *t = (void *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
	struct file **fda, *f = NULL;
	struct socket *so;
	struct sock *sk;

	if (fd < 0 || !fdt || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fda = BPF_CORE_READ(fdt, fd);
	bpf_probe_read_kernel(&f, sizeof(f), &fda[fd]);
	if (!f || (BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return NULL;
	so = BPF_CORE_READ(f, private_data);
	sk = BPF_CORE_READ(so, sk);
	return is_tx_ring_sock(sk) ? sk : NULL;
}

static __always_inline void sys_enter(struct sys_enter_args *ctx, int flags_arg, int use_loop)
{
	struct sock *sk;

	if (!cfg.calls_via_syscalls)
		return;
	sk = fd_sock((int)ctx->args[0]);
	if (sk)
		call_enter(sk, (__u32)ctx->args[flags_arg], RT_H_TRACEPOINT, use_loop);
}

#define SYSCALL_PROGS(name, flags_arg, variant, use_loop)                      \
	SEC("tracepoint/syscalls/sys_enter_" #name)                              \
	int sys_enter_##name##_##variant(struct sys_enter_args *ctx)             \
	{                                                                        \
		sys_enter(ctx, flags_arg, use_loop);                             \
		return 0;                                                        \
	}                                                                        \
	SEC("tracepoint/syscalls/sys_exit_" #name)                               \
	int sys_exit_##name##_##variant(struct sys_exit_args *ctx)               \
	{                                                                        \
		if (cfg.calls_via_syscalls)                                      \
			call_return(ctx->ret, RT_H_TRACEPOINT, use_loop);       \
		return 0;                                                        \
	}

SYSCALL_PROGS(sendto, 3, loop, 1)
SYSCALL_PROGS(sendmsg, 2, loop, 1)
SYSCALL_PROGS(sendmmsg, 3, loop, 1)
SYSCALL_PROGS(sendto, 3, bounded, 0)
SYSCALL_PROGS(sendmsg, 2, bounded, 0)
SYSCALL_PROGS(sendmmsg, 3, bounded, 0)

/* ------------------------------------------------------------------ */
/* class A / B: packet_sendmsg                                        */

static __always_inline void sendmsg_enter(struct socket *sock, struct msghdr *msg, __u8 hook, int use_loop)
{
	struct sock *sk = BPF_CORE_READ(sock, sk);

	if (is_tx_ring_sock(sk))
		call_enter(sk, BPF_CORE_READ(msg, msg_flags), hook, use_loop);
}

SEC("fentry/packet_sendmsg")
int BPF_PROG(fentry_packet_sendmsg_loop, struct socket *sock, struct msghdr *msg, __u64 len)
{
	sendmsg_enter(sock, msg, RT_H_FENTRY, 1);
	return 0;
}

SEC("fexit/packet_sendmsg")
int BPF_PROG(fexit_packet_sendmsg_loop, struct socket *sock, struct msghdr *msg, __u64 len, int ret)
{
	call_return(ret, RT_H_FENTRY, 1);
	return 0;
}

SEC("fentry/packet_sendmsg")
int BPF_PROG(fentry_packet_sendmsg_bounded, struct socket *sock, struct msghdr *msg, __u64 len)
{
	sendmsg_enter(sock, msg, RT_H_FENTRY, 0);
	return 0;
}

SEC("fexit/packet_sendmsg")
int BPF_PROG(fexit_packet_sendmsg_bounded, struct socket *sock, struct msghdr *msg, __u64 len, int ret)
{
	call_return(ret, RT_H_FENTRY, 0);
	return 0;
}

SEC("kprobe/packet_sendmsg")
int BPF_KPROBE(kprobe_packet_sendmsg_loop, struct socket *sock, struct msghdr *msg)
{
	sendmsg_enter(sock, msg, RT_H_KPROBE, 1);
	return 0;
}

SEC("kretprobe/packet_sendmsg")
int BPF_KRETPROBE(kretprobe_packet_sendmsg_loop, int ret)
{
	call_return(ret, RT_H_KPROBE, 1);
	return 0;
}

SEC("kprobe/packet_sendmsg")
int BPF_KPROBE(kprobe_packet_sendmsg_bounded, struct socket *sock, struct msghdr *msg)
{
	sendmsg_enter(sock, msg, RT_H_KPROBE, 0);
	return 0;
}

SEC("kretprobe/packet_sendmsg")
int BPF_KRETPROBE(kretprobe_packet_sendmsg_bounded, int ret)
{
	call_return(ret, RT_H_KPROBE, 0);
	return 0;
}

/* ------------------------------------------------------------------ */
/* SENDING                                                            */

/*
 * xmit_entry: a ring skb enters dev_queue_xmit (or the bypass path). Inside
 * tpacket_snd the frame's status was just set to SENDING and tx_ring.head
 * still points at it.
 */
static __always_inline void xmit_entry(struct sk_buff *skb, __u8 hook, int use_loop)
{
	struct sock_state *ss;
	struct call_state *c;
	struct sock *sk;
	struct ring r;
	__u64 ph, darg;
	__u32 idx;

	if (!ring_skb_arg(skb, &sk, &ph, &darg))
		return;
	ss = sock_lookup(sk, 0);
	if (!ss || ring_of((struct packet_sock *)sk, ss, &r))
		return;
	idx = frame_index((struct packet_sock *)sk, (__u32)ss->ino, &r, ph, use_loop);
	if (idx == RT_NO_FRAME)
		return;
	remember_skb(skb, sk, (__u32)ss->ino, ph, idx, darg, r.pg_vec);
	c = current_call((__u64)sk);
	if (c) {
		c->in_xmit = 1;
		c->xmit_skb = (__u64)skb;
	}
	to_sending(sk, ss, idx, ph, (__u64)skb, RT_EXACT, 0, RT_C_XMIT, hook, BPF_CORE_READ(skb, dev));
}

SEC("tp_btf/net_dev_queue")
int BPF_PROG(tp_net_dev_queue, struct sk_buff *skb)
{
	if (cfg.sending_via_tp)
		xmit_entry(skb, RT_H_TRACEPOINT, 1);
	return 0;
}

SEC("tp_btf/net_dev_queue")
int BPF_PROG(tp_net_dev_queue_bounded, struct sk_buff *skb)
{
	if (cfg.sending_via_tp)
		xmit_entry(skb, RT_H_TRACEPOINT, 0);
	return 0;
}

static __always_inline void xmit_return(struct sk_buff *skb, __s64 rc, __u8 hook)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct call_state *c = bpf_map_lookup_elem(&calls, &tid);
	struct rt_event *e;

	if (!c || !c->in_xmit)
		return;
	c->in_xmit = 0;
	e = ev_reserve(RT_XMIT_RC, hook);
	if (!e)
		return;
	ev_sock(e, (struct sock *)c->sk, NULL);
	e->skb = (__u64)skb;
	e->a[0] = (__u64)rc;
	ev_submit(e);
}

/* nargs: the function's parameter count; fexit's return value follows them. */
#define XMIT_PROGS(fn, nargs, name)                                              \
	SEC("fentry/" #fn)                                                       \
	int BPF_PROG(fentry_##name, struct sk_buff *skb)                         \
	{                                                                        \
		xmit_entry(skb, RT_H_FENTRY, 0);                                 \
		return 0;                                                        \
	}                                                                        \
	SEC("fexit/" #fn)                                                        \
	int fexit_##name(unsigned long long *ctx)                               \
	{                                                                        \
		xmit_return((struct sk_buff *)ctx[0], (int)ctx[nargs], RT_H_FENTRY); \
		return 0;                                                        \
	}                                                                        \
	SEC("kprobe/" #fn)                                                       \
	int BPF_KPROBE(kprobe_##name, struct sk_buff *skb)                       \
	{                                                                        \
		xmit_entry(skb, RT_H_KPROBE, 0);                                 \
		return 0;                                                        \
	}                                                                        \
	SEC("kretprobe/" #fn)                                                    \
	int BPF_KRETPROBE(kretprobe_##name, int ret)                             \
	{                                                                        \
		xmit_return(NULL, ret, RT_H_KPROBE);                             \
		return 0;                                                        \
	}

/* __dev_queue_xmit(skb, sb_dev): the qdisc path (dev_queue_xmit is an
 * inline wrapper on 5.19+ and a real function before). */
XMIT_PROGS(__dev_queue_xmit, 2, qxmit)
XMIT_PROGS(dev_queue_xmit, 1, qxmit_legacy)
/* Bypass: packet_direct_xmit(skb) (3.14-6.3), __dev_direct_xmit(skb, queue_id) (4.19+). */
XMIT_PROGS(packet_direct_xmit, 1, direct_xmit_legacy)
XMIT_PROGS(__dev_direct_xmit, 2, direct_xmit)

/* "Frame picked": sock_alloc_send_pskb for the frame at the kernel's head. */
static __always_inline void alloc_entry(struct sock *sk, __u8 hook)
{
	struct call_state *c = current_call((__u64)sk);
	struct sock_state *ss = ss_of(sk, NULL);
	struct rt_event *e;
	struct ring r;
	__u64 ph;

	if (!c || !ss || ring_of((struct packet_sock *)sk, ss, &r))
		return;
	ph = frame_addr(&r, r.head);
	if ((frame_status(ph, r.off) & 7) != RT_ST_SEND_REQUEST)
		return;
	e = ev_reserve(RT_FRAME_PICKED, hook);
	if (!e)
		return;
	ev_sock(e, sk, ss);
	e->frame = r.head;
	e->cause = RT_C_PICKED;
	ev_submit(e);
}

SEC("fentry/sock_alloc_send_pskb")
int BPF_PROG(fentry_sock_alloc_send_pskb, struct sock *sk)
{
	alloc_entry(sk, RT_H_FENTRY);
	return 0;
}

SEC("kprobe/sock_alloc_send_pskb")
int BPF_KPROBE(kprobe_sock_alloc_send_pskb, struct sock *sk)
{
	alloc_entry(sk, RT_H_KPROBE);
	return 0;
}

/* __packet_set_status(po, frame, status), where it is not inlined: every
 * kernel write of a TX frame status, exact. */
static __always_inline void set_status(struct packet_sock *po, __u64 ph, int status, __u8 hook)
{
	struct sock *sk = (struct sock *)po;
	struct sock_state *ss = sock_lookup(sk, 0);
	struct rt_frame *f;
	struct ring r;
	__u32 idx;
	__u8 old, new = status & 7;

	if (!ss || ring_of(po, ss, &r))
		return;
	idx = frame_index(po, (__u32)ss->ino, &r, ph, 0);
	if (idx == RT_NO_FRAME)
		return;
	f = frame_entry(ss, (__u64)sk, idx, ph);
	if (!f || f->state == new)
		return;
	old = frame_status(ph, r.off) & 7;
	if (new == RT_ST_SENDING) {
		to_sending(sk, ss, idx, ph, 0, RT_EXACT, 0, RT_C_SET_STATUS, hook, NULL);
		return;
	}
	if (new == RT_ST_AVAILABLE) {
		to_available(sk, ss, idx, ph, 0, RT_EXACT, 0, RT_C_SET_STATUS, hook, 1, NULL);
		return;
	}
	set_state(ss, f, new);
	emit_frame(sk, ss, idx, 0, old, new, RT_EXACT, 0, new == RT_ST_SEND_REQUEST ? RT_C_ROLLBACK : RT_C_BAD_FRAME,
		   hook, NULL);
}

SEC("fentry/__packet_set_status")
int BPF_PROG(fentry_set_status, struct packet_sock *po, void *frame, int status)
{
	set_status(po, (__u64)frame, status, RT_H_FENTRY);
	return 0;
}

SEC("kprobe/__packet_set_status")
int BPF_KPROBE(kprobe_set_status, struct packet_sock *po, void *frame, int status)
{
	set_status(po, (__u64)frame, status, RT_H_KPROBE);
	return 0;
}

/* ------------------------------------------------------------------ */
/* AVAILABLE                                                          */

/* ring_idx finds the index of the frame at ph in sk's ring (bounded
 * search), RT_NO_FRAME if it is not there. */
static __always_inline __u32 ring_idx(struct sock *sk, struct sock_state *ss, __u64 ph)
{
	struct ring r;

	if (ring_of((struct packet_sock *)sk, ss, &r))
		return RT_NO_FRAME;
	return frame_index((struct packet_sock *)sk, (__u32)ss->ino, &r, ph, 0);
}

/*
 * completes: whether the kernel writes a completing frame's status. A
 * destructor kernel does so only while the socket has its ring
 * (tpacket_destruct_skb tests po->tx_ring.pg_vec): frames still in flight
 * when the socket closed are abandoned, never AVAILABLE. A uarg kernel keeps
 * the ring's pages until they complete.
 */
static __always_inline int completes(struct sock *sk)
{
	return cfg.uarg_form || BPF_CORE_READ((struct packet_sock *)sk, tx_ring.pg_vec);
}

/*
 * frame_done: a completion hook saw the frame at ph of socket sk become
 * AVAILABLE (exact). The frame's index is cached by address where it was
 * sent through a hooked xmit, else it is the one after the last that
 * completed, else it is found in the ring. When kfree_skb's tracepoint,
 * just before, marked a synchronous drop of this frame, the completion is
 * the drop tpacket_snd rolls back (RT_C_DROP). certain: this hook is the
 * first to see the completion, so a frame nobody saw become SENDING
 * completes too; otherwise (a hook backing up another) only a frame the
 * events hold SENDING does.
 */
static __always_inline void frame_done(struct sock *sk, __u64 ph, __u64 skb, struct net_device *dev, __u8 cause,
				       __u8 hook, int certain)
{
	struct sock_state *ss;
	struct call_state *c;
	struct ph_state *ps;
	__u32 idx;

	if (!sk || !ph)
		return;
	ss = sock_lookup(sk, 0);
	if (!ss || !completes(sk))
		return;
	ps = bpf_map_lookup_elem(&ph2idx, &ph);
	if (ps && ps->sk == (__u64)sk && ps->ino == (__u32)ss->ino && ps->pg_vec && ps->pg_vec == ss->pg_vec) {
		idx = ps->idx;
	} else if ((idx = predicted_idx(ss, ph)) == RT_NO_FRAME && (idx = ring_idx(sk, ss, ph)) == RT_NO_FRAME) {
		return;
	}
	predict_after(ss, idx);
	c = current_call((__u64)sk);
	if (c && c->rollback_idx == idx)
		cause = RT_C_DROP;
	to_available_why(sk, ss, idx, ph, skb, RT_EXACT, 0, cause, hook, certain, dev, 0, 0, 0, c, 1);
}

/* tpacket_destruct_skb(skb): the destructor form's completion. Where the
 * free tracepoints report completions too (class B), they run first and
 * this hook reports the frames orphaned without a free. */
static __always_inline void destruct(struct sk_buff *skb, __u8 hook)
{
	frame_done(BPF_CORE_READ(skb, sk), shinfo_destructor_arg(skb) & ~1ULL, (__u64)skb, BPF_CORE_READ(skb, dev),
		   RT_C_DESTRUCT, hook, !cfg.avail_via_tp);
}

SEC("fentry/tpacket_destruct_skb")
int BPF_PROG(fentry_tpacket_destruct_skb, struct sk_buff *skb)
{
	destruct(skb, RT_H_FENTRY);
	return 0;
}

SEC("kprobe/tpacket_destruct_skb")
int BPF_KPROBE(kprobe_tpacket_destruct_skb, struct sk_buff *skb)
{
	destruct(skb, RT_H_KPROBE);
	return 0;
}

/*
 * tpacket_ubuf_complete(skb, uarg, success): the uarg form's completion.
 * Only the call that drops the last reference (refcnt == 1 on entry)
 * releases the frame; success == 0 means the pages were copied out.
 */
static __always_inline void ubuf_complete(struct tpacket_uarg *u, int success, __u8 hook)
{
	int refs = 0;

	bpf_core_read(&refs, sizeof(refs), &u->ubuf.refcnt);
	if (refs != 1)
		return;
	frame_done((struct sock *)BPF_CORE_READ(u, po), (__u64)BPF_CORE_READ(u, ph), 0, NULL,
		   success ? RT_C_DESTRUCT : RT_C_COPIED, hook, 1);
}

SEC("fentry/tpacket_ubuf_complete")
int BPF_PROG(fentry_tpacket_ubuf_complete, struct sk_buff *skb, struct tpacket_uarg *u, bool success)
{
	ubuf_complete(u, success, RT_H_FENTRY);
	return 0;
}

SEC("kprobe/tpacket_ubuf_complete")
int BPF_KPROBE(kprobe_tpacket_ubuf_complete, struct sk_buff *skb, struct tpacket_uarg *u, bool success)
{
	ubuf_complete(u, success, RT_H_KPROBE);
	return 0;
}

/*
 * kfree(uarg) from tpacket_ubuf_complete: the uarg form's completion where
 * that function cannot be hooked (tracepoints only). tpacket_ubuf_complete
 * frees its struct tpacket_uarg right after it wrote TP_STATUS_AVAILABLE,
 * on every completion path: the skb's data released, or the ring pages
 * copied out (a veth forward, a tap's clone, a local delivery), which no
 * skb tracepoint shows. The free's call site, inside tpacket_ubuf_complete,
 * tells it from every other kfree in the kernel at two compares; the uarg
 * is still intact at the tracepoint. Where tpacket_ubuf_complete is hooked
 * by kprobe (class B), this backs it up: a kprobe run the kernel skipped.
 */
SEC("raw_tp/kfree")
int tp_kfree_uarg(__u64 *ctx)
{
	/* A raw tracepoint, not tp_btf: before 6.13 the verifier refuses a
	 * typed load of kfree's `const void *ptr` ("type UNKNOWN is not a
	 * struct"). Both skip only runs nested in themselves. */
	__u64 call_site = ctx[0];
	struct tpacket_uarg *u = (void *)ctx[1];

	if (!cfg.uarg_via_kfree || call_site - cfg.uarg_complete_addr >= cfg.uarg_complete_len || !u)
		return 0;
	frame_done((struct sock *)BPF_CORE_READ(u, po), (__u64)BPF_CORE_READ(u, ph), 0, NULL, RT_C_DESTRUCT,
		   RT_H_TRACEPOINT, !cfg.complete_hooked);
	return 0;
}

/* emit_drop reports a qdisc drop of a ring skb. Reserve, fill, submit in
 * one straight block: older verifiers lose a reservation held across
 * other work. */
static __always_inline void emit_drop(struct sock *sk, struct sock_state *ss, __u32 idx, struct sk_buff *skb,
				      __u64 reason, __u64 location, int async)
{
	struct net_device *dev = BPF_CORE_READ(skb, dev);
	struct rt_event *e = ev_reserve(RT_DROP, RT_H_TRACEPOINT);

	if (!e)
		return;
	ev_sock(e, sk, ss);
	e->frame = idx;
	e->skb = (__u64)skb;
	e->a[0] = reason;
	e->a[1] = location;
	e->aux = async; /* 1: asynchronous */
	ev_dev(e, ss, dev);
	ev_submit(e);
}


/*
 * skb_freed: a ring skb is freed. With its destructor still set the frame
 * completes right after this tracepoint (exact); a kfree inside the
 * sender's xmit is a synchronous drop that tpacket_snd will roll back. An
 * skb we know whose destructor is already gone was orphaned without a
 * tracepoint: its frame completed in between (bounded).
 */
static __always_inline void skb_freed(struct sk_buff *skb, int is_kfree, __u64 reason, __u64 location)
{
	__u64 key = (__u64)skb, ph, darg;
	struct sock_state *ss;
	struct skb_state *st;
	struct ph_state *ps;
	struct sock *sk;
	struct call_state *c;
	int tx_side, sync_drop;
	__u32 idx;

	if (ring_skb_arg_direct(skb, &sk, &ph, &darg)) {
		ss = sock_lookup(sk, 0);
		if (!ss)
			return;
		/* Where the frame was seen before (sent through a hooked xmit,
		 * or an earlier use), its index is cached by address; else find
		 * it from the ring. */
		ps = bpf_map_lookup_elem(&ph2idx, &ph);
		st = NULL;
		if (ps && ps->sk == (__u64)sk && ps->ino == (__u32)ss->ino && ps->pg_vec && ps->pg_vec == ss->pg_vec) {
			idx = ps->idx;
			if (ps->skb == key) { /* sent through a hooked xmit: drop its cache entry */
				st = bpf_map_lookup_elem(&skbs, &key);
				ps->skb = 0;
			}
		} else if ((idx = predicted_idx(ss, ph)) != RT_NO_FRAME) {
			/* Not sent through a hooked xmit (qdisc bypass): nothing
			 * cached it, and it completes in ring order. */
		} else {
			st = bpf_map_lookup_elem(&skbs, &key);
			if (st && st->darg == darg && st->sk == (__u64)sk) {
				idx = st->idx;
			} else if ((idx = ring_idx(sk, ss, ph)) == RT_NO_FRAME) {
				return;
			}
		}
		predict_after(ss, idx);
		c = current_call((__u64)sk);
		/*
		 * Which side freed it: once the frame reached a receiving device
		 * (a veth peer in the same namespace), skb->dev is that device,
		 * not the one the socket is bound to, and the free is the
		 * completion. On the sending side, a kfree of the very skb the
		 * sender is handing to its device, in that call, is a drop
		 * tpacket_snd sees and rolls back; any other kfree there (a
		 * qdisc dropping at dequeue, in the sender's qdisc run or the
		 * NET_TX softirq) is a drop the sender is never told of.
		 */
		tx_side = 0;
		sync_drop = 0;
		if (is_kfree) {
			/* An unbound socket (a device per sendto) has no cached
			 * device: its frees count as completions. */
			struct net_device *bound = BPF_CORE_READ((struct packet_sock *)sk, cached_dev);

			tx_side = bound && skb->dev == bound;
			sync_drop = tx_side && c && c->in_xmit && c->xmit_skb == key;
		}
		if (sync_drop && c) {
			c->rollback_idx = idx;
			c->drop_ts = bpf_ktime_get_ns();
		}
		if (tx_side)
			emit_drop(sk, ss, idx, skb, reason, location, !sync_drop);
		/* With the uarg's free hooked, the completion is reported there,
		 * right after the status write this free leads to. */
		if (cfg.avail_via_tp && !cfg.uarg_via_kfree && completes(sk))
			to_available_why(sk, ss, idx, ph, key, RT_EXACT, 0, sync_drop ? RT_C_DROP : RT_C_FREE,
					 RT_H_TRACEPOINT, 1, skb->dev, is_kfree ? reason : 0,
					 is_kfree ? location : 0, !cfg.uarg_form, c, 1);
		if (st)
			bpf_map_delete_elem(&skbs, &key);
		return;
	}
	if (!cfg.avail_via_tp || !known_skb(skb, &st))
		return;
	{
		struct rt_frame_key k = { .sk = st->sk, .idx = st->idx, .ino = st->ino };
		struct rt_frame *f = bpf_map_lookup_elem(&frames, &k);

		ss = ss_of((struct sock *)st->sk, NULL);
		if (f && ss && f->state == RT_ST_SENDING && (frame_status(st->ph, ss->off) & 7) == RT_ST_AVAILABLE)
			to_available((struct sock *)st->sk, ss, st->idx, st->ph, key, RT_BOUNDED, f->ts_seen,
				     RT_C_ORPHANED, RT_H_TRACEPOINT, 0, NULL);
	}
	bpf_map_delete_elem(&skbs, &key);
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(tp_kfree_skb, struct sk_buff *skb, void *location)
{
	__u64 reason = 0;

	if (cfg.kfree_has_reason)
		reason = ctx[2];
	skb_freed(skb, 1, reason, (__u64)location);
	return 0;
}

SEC("tp_btf/consume_skb")
int BPF_PROG(tp_consume_skb, struct sk_buff *skb)
{
	skb_freed(skb, 0, 0, 0);
	return 0;
}

/* ------------------------------------------------------------------ */
/* qdisc, driver, receive                                             */

static __always_inline void qdisc_event(__u16 kind, struct Qdisc *q, struct sk_buff *skb, int packets)
{
	struct skb_state *st;
	struct rt_event *e;

	if (!skb || !known_skb(skb, &st)) /* qdisc_dequeue: NULL when empty */
		return;
	e = ev_reserve(kind, RT_H_TRACEPOINT);
	if (!e)
		return;
	ev_sock(e, (struct sock *)st->sk, NULL);
	e->frame = st->idx;
	e->skb = (__u64)skb;
	e->a[0] = BPF_CORE_READ(q, handle);
	e->a[1] = (__u64)BPF_CORE_READ(q, q.qlen) | (__u64)BPF_CORE_READ(q, qstats.backlog) << 32;
	e->a[2] = packets;
	ev_submit(e);
}

SEC("tp_btf/qdisc_enqueue")
int BPF_PROG(tp_qdisc_enqueue, struct Qdisc *q, const struct netdev_queue *txq, struct sk_buff *skb)
{
	qdisc_event(RT_QDISC_ENQUEUE, q, skb, 1);
	return 0;
}

SEC("tp_btf/qdisc_dequeue")
int BPF_PROG(tp_qdisc_dequeue, struct Qdisc *q, const struct netdev_queue *txq, int packets, struct sk_buff *skb)
{
	qdisc_event(RT_QDISC_DEQUEUE, q, skb, packets);
	return 0;
}

SEC("tp_btf/net_dev_start_xmit")
int BPF_PROG(tp_net_dev_start_xmit, struct sk_buff *skb, struct net_device *dev)
{
	struct skb_state *st;
	struct rt_event *e;

	if (!known_skb(skb, &st))
		return 0;
	st->ts_start_xmit = bpf_ktime_get_ns();
	e = ev_reserve(RT_XMIT_START, RT_H_TRACEPOINT);
	if (!e)
		return 0;
	ev_sock(e, (struct sock *)st->sk, NULL);
	e->frame = st->idx;
	e->skb = (__u64)skb;
	ev_dev(e, NULL, dev);
	ev_submit(e);
	return 0;
}

/*
 * net_dev_xmit: the driver returned. lo and tun orphan the skb inside
 * ndo_start_xmit, which runs the destructor with no tracepoint: the frame's
 * status is already AVAILABLE here. Do not dereference the skb: on veth it
 * may be gone.
 */
SEC("tp_btf/net_dev_xmit")
int BPF_PROG(tp_net_dev_xmit, struct sk_buff *skb, int rc, struct net_device *dev)
{
	__u64 key = (__u64)skb, sk;
	struct skb_state *st = bpf_map_lookup_elem(&skbs, &key);
	struct sock_state *ss;
	struct rt_event *e;

	if (!st)
		return 0;
	sk = st->sk;
	ss = ss_of((struct sock *)sk, NULL);
	if (!ss)
		return 0;
	e = ev_reserve(RT_XMIT_DONE, RT_H_TRACEPOINT);
	if (e) {
		ev_sock(e, (struct sock *)sk, ss);
		e->frame = st->idx;
		e->skb = (__u64)skb;
		e->a[0] = (__u64)(__s64)rc;
		ev_dev(e, ss, dev);
		ev_submit(e);
	}
	if (cfg.avail_via_tp && (frame_status(st->ph, ss->off) & 7) == RT_ST_AVAILABLE)
		to_available((struct sock *)sk, ss, st->idx, st->ph, (__u64)skb, RT_BOUNDED,
			     st->ts_start_xmit, RT_C_DRIVER_ORPHAN, RT_H_TRACEPOINT, 0, dev);
	return 0;
}

SEC("tp_btf/netif_receive_skb")
int BPF_PROG(tp_netif_receive_skb, struct sk_buff *skb)
{
	struct skb_state *st;
	struct rt_event *e;
	struct sock *sk;
	__u64 ph;
	__u32 idx;

	if (!known_skb(skb, &st)) {
		/* Bypass: the first event of a frame can be its arrival. */
		struct sock_state *ss;

		if (!skb_frame(skb, &sk, &ph, &idx, 0))
			return 0;
		ss = ss_of(sk, NULL);
		remember_skb(skb, sk, ss ? (__u32)ss->ino : 0, ph, idx, shinfo_destructor_arg(skb), 0);
		if (!known_skb(skb, &st))
			return 0;
	}
	if (st->sk) {
		struct rt_frame_key k = { .sk = st->sk, .idx = st->idx, .ino = st->ino };
		struct rt_frame *f = bpf_map_lookup_elem(&frames, &k);

		if (f)
			f->ts_seen = bpf_ktime_get_ns();
	}
	e = ev_reserve(RT_RX, RT_H_TRACEPOINT);
	if (!e)
		return 0;
	ev_sock(e, (struct sock *)st->sk, NULL);
	e->frame = st->idx;
	e->skb = (__u64)skb;
	ev_dev(e, NULL, BPF_CORE_READ(skb, dev));
	ev_submit(e);
	return 0;
}

/* ------------------------------------------------------------------ */
/* sender sleeps and wakes                                            */

static __always_inline __u32 stack_reason(void *ctx)
{
	__u64 stack[STACK_DEPTH] = {};
	long n = bpf_get_stack(ctx, stack, sizeof(stack), 0);

	if (n <= 0)
		return RT_W_OTHER;
	for (int i = 0; i < STACK_DEPTH; i++) {
		if (i * 8 >= n)
			break;
		for (int j = 0; j < RT_STACK_RANGES; j++) {
			if (!cfg.stack_ranges[j].start)
				break;
			if (stack[i] >= cfg.stack_ranges[j].start && stack[i] < cfg.stack_ranges[j].end)
				return cfg.stack_ranges[j].reason;
		}
	}
	return RT_W_OTHER;
}

/*
 * A sender inside sendmsg either sleeps (blocked: RT_SLEEP, then RT_WAKE
 * from sched_waking) or waits for a CPU while runnable: preempted, or woken
 * and not yet running. That run-queue wait is one RT_WAKE with
 * a[1] = RT_W_PREEMPT and ts_lo = when it became runnable, emitted when the
 * task gets a CPU again: on a busy machine it is where the link idles.
 */
SEC("tp_btf/sched_switch")
int BPF_PROG(tp_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u32 tid = BPF_CORE_READ(prev, pid);
	struct call_state *c = bpf_map_lookup_elem(&calls, &tid);
	struct rt_event *e;
	__u32 reason;

	if (c && !c->sleeping) {
		if (preempt || task_state(prev) == TASK_RUNNING) {
			c->runq_ts = bpf_ktime_get_ns(); /* still runnable */
		} else {
			reason = stack_reason(ctx);
			c->sleeping = 1;
			c->sleep_ts = bpf_ktime_get_ns();
			c->sleep_reason = reason;
			e = ev_reserve(RT_SLEEP, RT_H_TRACEPOINT); /* after bpf_get_stack: see emit_drop */
			if (e) {
				ev_sock(e, (struct sock *)c->sk, NULL);
				e->aux = reason;
				e->a[0] = c->flags;
				ev_submit(e);
			}
		}
	}
	tid = BPF_CORE_READ(next, pid);
	c = bpf_map_lookup_elem(&calls, &tid);
	if (!c || !c->runq_ts)
		return 0;
	e = ev_reserve(RT_WAKE, RT_H_TRACEPOINT);
	if (e) {
		ev_sock(e, (struct sock *)c->sk, NULL);
		/* current is still prev: the event is about next */
		e->pid = BPF_CORE_READ(next, tgid);
		e->tid = tid;
		BPF_CORE_READ_STR_INTO(&e->comm, next, comm);
		e->aux = RT_W_PREEMPT;
		e->a[0] = tid;
		e->a[1] = RT_W_PREEMPT;
		e->ts_lo = c->runq_ts;
		ev_submit(e);
	}
	c->runq_ts = 0;
	return 0;
}

SEC("tp_btf/sched_waking")
int BPF_PROG(tp_sched_waking, struct task_struct *p)
{
	__u32 tid = BPF_CORE_READ(p, pid);
	struct call_state *c = bpf_map_lookup_elem(&calls, &tid);
	struct rt_event *e;

	__u32 waker;

	if (!c || !c->sleeping)
		return 0;
	c->sleeping = 0;
	c->runq_ts = bpf_ktime_get_ns(); /* runnable from now on */
	waker = stack_reason(ctx); /* what the waker was doing */
	e = ev_reserve(RT_WAKE, RT_H_TRACEPOINT);
	if (!e)
		return 0;
	ev_sock(e, (struct sock *)c->sk, NULL);
	e->aux = waker;
	e->a[0] = tid; /* the woken sender */
	e->a[1] = c->sleep_reason;
	e->ts_lo = c->sleep_ts;
	ev_submit(e);
	return 0;
}

/* ------------------------------------------------------------------ */
/* softirq and napi                                                   */

SEC("tp_btf/softirq_entry")
int BPF_PROG(tp_softirq_entry, unsigned int vec)
{
	__u64 *ts;

	if (vec != NET_TX_SOFTIRQ && vec != NET_RX_SOFTIRQ)
		return 0;
	ts = bpf_map_lookup_elem(&softirq_ts, &vec);
	if (ts)
		*ts = bpf_ktime_get_ns();
	return 0;
}

SEC("tp_btf/softirq_exit")
int BPF_PROG(tp_softirq_exit, unsigned int vec)
{
	struct rt_event *e;
	__u64 *ts;

	if (vec != NET_TX_SOFTIRQ && vec != NET_RX_SOFTIRQ)
		return 0;
	ts = bpf_map_lookup_elem(&softirq_ts, &vec);
	if (!ts || !*ts)
		return 0;
	e = ev_reserve(RT_SOFTIRQ, RT_H_TRACEPOINT);
	if (e) {
		e->ts_lo = *ts;
		e->aux = vec;
		ev_submit(e);
	}
	*ts = 0;
	return 0;
}

SEC("tp_btf/napi_poll")
int BPF_PROG(tp_napi_poll, struct napi_struct *napi, int work, int budget)
{
	struct rt_event *e = ev_reserve(RT_NAPI_POLL, RT_H_TRACEPOINT);

	if (!e)
		return 0;
	e->a[0] = work;
	e->a[1] = budget;
	e->a[2] = (__u64)napi;
	ev_dev(e, NULL, BPF_CORE_READ(napi, dev));
	ev_submit(e);
	return 0;
}

/* ------------------------------------------------------------------ */
/* sweep: re-read frames no event completed                           */

/*
 * sweep_frame re-reads one frame the frames map holds as SENDING. A frame
 * whose status now reads AVAILABLE completed without any hook seeing it (an
 * orphan with no tracepoint, a uarg completion by page copy, a kprobe the
 * kernel skipped): emit it, bounded by the last time it was seen SENDING. A
 * socket whose ring is gone is reported once.
 */
static __always_inline void sweep_frame(const struct rt_frame_key *k, struct rt_frame *f)
{
	struct sock_state *ss;
	struct ring r;

	if (f->state != RT_ST_SENDING)
		return;
	ss = bpf_map_lookup_elem(&socks, &k->sk);
	if (!ss)
		return;
	if (read_ring((struct packet_sock *)k->sk, &r) || r.pg_vec != ss->pg_vec) {
		/* The ring is gone (the socket closed) or was re-created. A uarg
		 * kernel keeps the old ring's pages until its frames complete:
		 * read the status there, at the offset the ring had. A
		 * destructor kernel freed them: sock_gone abandons the frames. */
		if (!cfg.uarg_form || !ss->n)
			return;
		r.off = ss->off;
	}
	if ((frame_status(f->ph, r.off) & 7) == RT_ST_AVAILABLE)
		to_available((struct sock *)k->sk, ss, k->idx, f->ph, 0, RT_BOUNDED, f->ts_seen, RT_C_SCAN, RT_H_SWEEP, 0,
			     NULL);
	else
		f->ts_seen = bpf_ktime_get_ns();
}

/*
 * sweep_loop, run by user space through BPF_PROG_TEST_RUN (which runs it with
 * preemption off), finds the SENDING frames itself. User space must not read
 * the frames map to find them: while a map syscall runs the kernel runs no
 * kprobe program on that CPU, and a reader preempted there blinds every
 * kprobe on it until it runs again. It walks the sockets, and the frames of
 * only those with entries in SENDING, by index: walking the frames map
 * visits all its buckets (65536 by default), ~1 ms a run even when idle.
 * Returns how many frames were SENDING.
 */
struct sweep_walk {
	__u64 sk;
	__u32 ino;
	__s32 want; /* SENDING entries still to visit */
	__u32 sending;
};

static long sweep_idx(__u32 i, struct sweep_walk *w)
{
	struct rt_frame_key k = { .sk = w->sk, .idx = i, .ino = w->ino };
	struct rt_frame *f;

	if (w->want <= 0)
		return 1;
	f = bpf_map_lookup_elem(&frames, &k);
	/* Entries of an earlier socket at this address are not counted. */
	if (!f || f->state != RT_ST_SENDING || f->sock_ino != w->ino)
		return 0;
	w->want--;
	w->sending++;
	sweep_frame(&k, f);
	return 0;
}

/* gc_idx deletes one frame entry of a socket that is gone. */
struct gc_ctx {
	__u64 sk;
	__u32 ino;
};

static long gc_idx(__u32 i, struct gc_ctx *g)
{
	struct rt_frame_key k = { .sk = g->sk, .idx = i, .ino = g->ino };
	struct rt_frame *f = bpf_map_lookup_elem(&frames, &k);
	struct ph_state *ps;
	__u64 ph;

	if (!f)
		return 0;
	ph = f->ph;
	ps = bpf_map_lookup_elem(&ph2idx, &ph);
	if (ps && ps->sk == g->sk && ps->ino == g->ino)
		bpf_map_delete_elem(&ph2idx, &ph);
	bpf_map_delete_elem(&frames, &k);
	return 0;
}

/* gc_call forgets a sendmsg call whose socket is gone: its thread never
 * returned (killed inside the call, or the exit tracepoint skipped). */
static long gc_call(void *map, const __u32 *tid, struct call_state *c, void *unused)
{
	if (!bpf_map_lookup_elem(&socks, &c->sk))
		bpf_map_delete_elem(map, tid);
	return 0;
}

/*
 * sock_closed: the socket at sk is not the one ss tracks any more: it was
 * closed (sock_orphan() cleared sk_socket; its memory may even hold another
 * socket by now). A uarg kernel still completes the frames that were in
 * flight (the uarg holds the socket, the ring's pages outlive it): wait for
 * them. A destructor kernel freed the ring at close: they never complete.
 */
static __always_inline int sock_closed(__u64 sk, struct sock_state *ss)
{
	if (ss->ino && sock_ino((struct sock *)sk) == ss->ino)
		return 0;
	if (!ss->gone_ts)
		ss->gone_ts = bpf_ktime_get_ns();
	return 1;
}

/*
 * sock_gone ends a closed socket's timeline (RT_SOCK_GONE: pending is how
 * many of its frames were abandoned SENDING, scan.nframes its ring's size)
 * and forgets it; its frame entries are buried for the sweep to delete.
 */
static __always_inline void sock_gone(__u64 sk, struct sock_state *ss)
{
	struct rt_event *e;

	if (ss->tracked) {
		e = ev_reserve(RT_SOCK_GONE, RT_H_SWEEP);
		if (e) {
			e->sk = sk;
			e->sock_ino = (__u32)ss->ino;
			e->pid = ss->pid;
			e->tid = 0;
			e->comm[0] = 0;
			e->frame = RT_NO_FRAME;
			e->pending = ss->map_sending;
			e->scan.nframes = ss->n;
			ev_submit(e);
		}
	}
	bury(sk, ss);
	bpf_map_delete_elem(&socks, &sk);
}

/* dig deletes a buried socket's frame entries. */
static long dig(void *map, const struct rt_agg_key *k, __u32 *n, void *unused)
{
	struct gc_ctx g = { .sk = k->sk, .ino = (__u32)k->ino };

	bpf_loop(*n, gc_idx, &g, 0);
	bpf_map_delete_elem(map, k);
	return 0;
}

static long sweep_sock(void *map, const __u64 *sk, struct sock_state *ss, struct sweep_walk *w)
{
	if (sock_closed(*sk, ss) && (!cfg.uarg_form || ss->map_sending <= 0 || !ss->tracked)) {
		sock_gone(*sk, ss);
		return 0;
	}
	if (!ss->tracked || ss->map_sending <= 0 || !ss->n)
		return 0;
	w->sk = *sk;
	w->ino = (__u32)ss->ino;
	w->want = ss->map_sending;
	bpf_loop(ss->n, sweep_idx, w, 0);
	return 0;
}

SEC("raw_tp")
int sweep_loop(void *ctx)
{
	struct sweep_walk w = {};

	bpf_for_each_map_elem(&socks, sweep_sock, &w, 0);
	bpf_for_each_map_elem(&graves, dig, NULL, 0);
	bpf_for_each_map_elem(&calls, gc_call, NULL, 0);
	return w.sending;
}

/*
 * Kernels without bpf_loop (before 5.17) may lack bpf_for_each_map_elem
 * (5.13) too: there user space names the SENDING frames in sweep_req and
 * sweep_bounded re-reads them; or it names sockets (RT_SWEEP_SOCKS), and
 * those closed are ended (user space deletes the buried frame entries).
 */
static __always_inline long sweep_one(__u32 i, struct rt_sweep *req)
{
	struct rt_frame_key k;
	struct rt_frame *f;

	if (i >= req->n || i >= RT_SWEEP_BATCH)
		return 1;
	/* Hide i from clang so the mask survives: it shows the verifier the
	 * bound that the comparison above only implies. */
	asm volatile("" : "+r"(i));
	k = req->keys[i & (RT_SWEEP_BATCH - 1)];
	if (req->kind == RT_SWEEP_SOCKS) {
		struct sock_state *ss = bpf_map_lookup_elem(&socks, &k.sk);

		if (ss && ss->ino == k.ino && sock_closed(k.sk, ss) &&
		    (!cfg.uarg_form || ss->map_sending <= 0 || !ss->tracked))
			sock_gone(k.sk, ss);
		return 0;
	}
	f = bpf_map_lookup_elem(&frames, &k);
	if (f)
		sweep_frame(&k, f);
	return 0;
}

/* Without bpf_loop the verifier walks every iteration: user space sends
 * RT_SWEEP_BOUNDED frames per run. */

SEC("raw_tp")
int sweep_bounded(void *ctx)
{
	__u32 zero = 0;
	struct rt_sweep *req = bpf_map_lookup_elem(&sweep_req, &zero);

	if (!req)
		return 0;
	for (__u32 i = 0; i < RT_SWEEP_BOUNDED; i++)
		if (sweep_one(i, req))
			break;
	return 0;
}
