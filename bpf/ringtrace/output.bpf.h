// SPDX-License-Identifier: GPL-2.0
/*
 * ringtrace.bpf.c, part: the output records: loss counters, reserving, filling and submitting struct
 * rt_event in the ring buffer.
 */

/* ------------------------------------------------------------------ */
/* helpers                                                            */

static __always_inline void count(void *map, __u32 key)
{
	__u64 *c = bpf_map_lookup_elem(map, &key);

	if (c)
		(*c)++;
}

/*
 * Sockets found gone so far, and that count as of the sweep's last clean-up
 * of what they leave (graves, calls): walking those maps visits every
 * bucket (16 k for calls), so an idle sweep skips them.
 */
volatile __u64 gone_count;
volatile __u64 gone_cleaned;

/* bury leaves a gone socket's frame entries, and its slot range, to the
 * sweep. */
static __always_inline void bury(__u64 sk, struct sock_state *ss)
{
	struct rt_agg_key k = { .sk = sk, .ino = ss->ino };
	struct rt_grave g = { .slots = ss->slots, .n = ss->n };

	__sync_fetch_and_add(&gone_count, 1);
	if ((g.n || g.slots) && bpf_map_update_elem(&graves, &k, &g, BPF_ANY))
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

/*
 * The reader's position in the ring buffer as some CPU last read it. It
 * only grows, so the producer's position less this over-estimates what
 * waits.
 */
volatile __u64 cons_seen;

/*
 * ev_submit commits an event without waking the reader for each one: the
 * reader wakes itself every few milliseconds, and is woken at once only when
 * a good part of the buffer is waiting (a wake-up is an irq_work per event
 * otherwise, a large share of the per-frame cost). What waits is the
 * producer's position (a cache line this CPU just wrote, reserving) less the
 * reader's, a line the reader's CPU writes after every batch: that one is
 * read only when the over-estimate from cons_seen reaches the threshold,
 * about once per cfg.wakeup_bytes written while the reader keeps up, and
 * for every event while it does not (each then wakes it, as before).
 */
static __always_inline void ev_submit(void *e)
{
	__u64 flags = BPF_RB_NO_WAKEUP;
	__u64 prod = bpf_ringbuf_query(&events, BPF_RB_PROD_POS), cons;

	if (prod - cons_seen >= cfg.wakeup_bytes) {
		cons = bpf_ringbuf_query(&events, BPF_RB_CONS_POS);
		cons_seen = cons;
		if (prod - cons >= cfg.wakeup_bytes)
			flags = BPF_RB_FORCE_WAKEUP;
	}
	bpf_ringbuf_submit(e, flags);
}

/*
 * sock_mem reads sk_sndbuf and the bytes in flight (sk_wmem_alloc - 1).
 * direct: sk is a BTF-typed pointer (a tp_btf/fentry argument or a field
 * loaded from one), so fields are plain loads instead of probe-read helper
 * calls. Callers pass a constant: the other branch is compiled out.
 */
static __always_inline void sock_mem(struct sock *sk, int direct, __s32 *sndbuf, __s32 *wmem)
{
	if (direct) {
		*sndbuf = sk->sk_sndbuf;
		*wmem = sk->sk_wmem_alloc.refs.counter - 1;
	} else {
		*sndbuf = BPF_CORE_READ(sk, sk_sndbuf);
		*wmem = sk_wmem(sk);
	}
}

/* ev_sock fills the socket fields; ss may be NULL (looked up then). */
static __always_inline void ev_sock_x(struct rt_event *e, struct sock *sk, struct sock_state *ss, int direct)
{
	__u64 key = (__u64)sk;

	e->sk = key;
	sock_mem(sk, direct, &e->sndbuf, &e->wmem);
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

/*
 * ev_dev_x names the device, from ss's cache when it is the same one. keep
 * (a constant): a device read afresh becomes the cached one. The cache holds
 * the socket's own device, the one its calls, its sends and the driver's
 * returns name; a completion or a drop seen at an skb's free names the
 * device the skb reached (a veth peer), which would evict it at every
 * frame. User space mirrors the cache for short records
 * (tracer/event.Decoder.learn): which records keep must stay in step.
 */
static __always_inline void ev_dev_x(struct rt_event *e, struct sock_state *ss, struct net_device *dev, int keep)
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
	if (keep && ss) {
		ss->ifindex = e->ifindex;
		__builtin_memcpy(ss->dev_name, e->dev, RT_IFNAME_LEN);
		ss->dev = (__u64)dev;
	}
}

static __always_inline void ev_dev(struct rt_event *e, struct sock_state *ss, struct net_device *dev)
{
	ev_dev_x(e, ss, dev, 1);
}
