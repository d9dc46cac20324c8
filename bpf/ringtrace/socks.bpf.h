// SPDX-License-Identifier: GPL-2.0
/*
 * ringtrace.bpf.c, part: which sockets are traced (AF_PACKET with a TX ring, the filters), their
 * state, and the sendmsg call in progress.
 */

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

/* gone_pending is what a closed socket leaves in flight: its frames map
 * entries in SENDING, or with --detail calls the frames taken past the
 * frontier. */
static __always_inline __s32 gone_pending(const struct sock_state *ss)
{
	if (cfg.calls_only)
		return (__s32)(ss->taken_total - ss->done_total);
	return ss->map_sending;
}

/* gone_event fills a closed socket's RT_SOCK_GONE: its frames left in
 * flight, its ring's size and TPACKET version (a[0], as tp_version). */
static __always_inline void gone_event(struct rt_event *e, __u64 sk, const struct sock_state *ss)
{
	e->sk = sk;
	e->sock_ino = (__u32)ss->ino;
	e->pending = gone_pending(ss);
	e->scan.nframes = ss->n;
	e->a[0] = ss->tp_version;
}

/*
 * sock_lookup_ino finds (or, from a sendmsg context, starts) the tracking
 * state of a socket. Filters are evaluated once, when a sendmsg shows who
 * owns the socket; sockets first seen from another context (a softirq) are
 * tracked only when no pid/comm filter is set. ino is the socket's inode
 * number where the caller has read it (from the fd's file), else 0.
 */
static __always_inline struct sock_state *sock_lookup_ino(struct sock *sk, int from_call, __u64 ino)
{
	struct sock_state *ss, init = {};
	__u64 key = (__u64)sk;

	ss = bpf_map_lookup_elem(&socks, &key);
	/*
	 * A new socket at a freed socket's address is first seen sending
	 * (from_call): only then is the inode compared. A closed socket
	 * (inode 0) keeps its state so in-flight frames still complete.
	 */
	if (ss && !from_call)
		return ss->tracked ? ss : NULL;
	if (!ino)
		ino = sock_ino(sk);
	if (ss) {
		if (!ino || ss->ino == ino)
			return ss->tracked ? ss : NULL;
		if (ss->tracked) {
			struct rt_event *e = ev_reserve(RT_SOCK_GONE, RT_H_TRACEPOINT);

			if (e) {
				gone_event(e, key, ss);
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
	if (init.tracked)
		init.slots = slots_alloc((struct packet_sock *)sk);
	if (bpf_map_update_elem(&socks, &key, &init, BPF_NOEXIST)) {
		/* Another CPU started it first (or the map is full). */
		slots_free(init.slots);
		if (!bpf_map_lookup_elem(&socks, &key))
			count(&overflow, OVF_SOCKS);
	}
	ss = bpf_map_lookup_elem(&socks, &key);
	if (ss && ss->tracked)
		return ss;
	return NULL;
}

/* sock_lookup: sock_lookup_ino reading the socket's inode itself (when
 * from_call) */
static __always_inline struct sock_state *sock_lookup(struct sock *sk, int from_call)
{
	return sock_lookup_ino(sk, from_call, 0);
}

/* A calls entry with sk 0 is a thread's idle one (cfg.calls_kept). */
static __always_inline struct call_state *current_call(__u64 sk)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct call_state *c = bpf_map_lookup_elem(&calls, &tid);

	if (c && c->sk && (!sk || c->sk == sk))
		return c;
	return NULL;
}
