// SPDX-License-Identifier: GPL-2.0
/* ringtrace.bpf.c, part: qdisc, driver and receive events. */

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
	if (cfg.events & (1u << RT_XMIT_PAIR)) {
		/* The driver's return writes both events in one record. */
		struct sock_state *ss = ss_of((struct sock *)st->sk, NULL);

		sock_mem((struct sock *)st->sk, 0, &st->xs_sndbuf, &st->xs_wmem);
		st->xs_pending = ss ? ss->pending : -1;
		st->xs_held = 1;
		return 0;
	}
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
	struct skb_state *st;
	struct sock_state *ss;
	struct rt_event *e;
	__u32 held;

	if (!skbs_used)
		return 0;
	st = bpf_map_lookup_elem(&skbs, &key);
	if (!st)
		return 0;
	sk = st->sk;
	ss = ss_of((struct sock *)sk, NULL);
	if (!ss)
		return 0;
	held = st->xs_held;
	st->xs_held = 0;
	e = ev_reserve(held ? RT_XMIT_PAIR : RT_XMIT_DONE, RT_H_TRACEPOINT);
	if (e) {
		ev_sock(e, (struct sock *)sk, ss);
		e->frame = st->idx;
		e->skb = (__u64)skb;
		e->a[0] = (__u64)(__s64)rc;
		if (held) {
			e->ts_lo = st->ts_start_xmit;
			e->a[1] = (__u64)(__u32)st->xs_wmem | (__u64)(__u32)st->xs_pending << 32;
			e->a[2] = (__u64)(__u32)st->xs_sndbuf;
		}
		ev_dev(e, ss, dev);
		ev_submit(e);
	}
	/* Where the uarg's kfree is the completion hook, it fires a few
	 * instructions after the status write, on whichever CPU freed the
	 * skb (the peer's receive path on veth): read here in between, the
	 * completion would be reported bounded ahead of the exact hook. It
	 * is left to that hook (the sweep is the backstop). */
	if (cfg.avail_via_tp && !cfg.uarg_via_kfree && (frame_status(st->ph, ss->off) & 7) == RT_ST_AVAILABLE)
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
		struct rt_frame *f = frame_find(sk_slots(st->sk), &k);

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
