// SPDX-License-Identifier: GPL-2.0
/*
 * ringtrace.bpf.c, part: frame -> AVAILABLE: tpacket_destruct_skb, tpacket_ubuf_complete and the
 * uarg's kfree, and the skb free tracepoints (drops included).
 */

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
	/* Frames complete in ring order: the one after the last is one read
	 * away, a hash lookup less than the address cache. */
	if ((idx = predicted_idx(ss, ph)) == RT_NO_FRAME) {
		ps = bpf_map_lookup_elem(&ph2idx, &ph);
		if (ps && ps->sk == (__u64)sk && ps->ino == (__u32)ss->ino && ps->pg_vec &&
		    ps->pg_vec == ss->pg_vec)
			idx = ps->idx;
		else if ((idx = ring_idx(sk, ss, ph)) == RT_NO_FRAME)
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
	__u64 po, ph;

	bpf_core_read(&refs, sizeof(refs), &u->ubuf.refcnt);
	if (refs != 1)
		return;
	uarg_po_ph(u, &po, &ph);
	frame_done((struct sock *)po, ph, 0, NULL, success ? RT_C_DESTRUCT : RT_C_COPIED, hook, 1);
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
	__u64 po, ph;

	if (!cfg.uarg_via_kfree || call_site - cfg.uarg_complete_addr >= cfg.uarg_complete_len || !u)
		return 0;
	uarg_po_ph(u, &po, &ph);
	frame_done((struct sock *)po, ph, 0, NULL, RT_C_DESTRUCT,
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
	ev_dev_x(e, ss, dev, 0);
	ev_submit(e);
}


/* tx_side_free: whether a kfree of sk's ring skb is on the sending side
 * (skb_freed says why). An unbound socket (a device per sendto) has no
 * cached device: its frees count as completions. */
static __always_inline int tx_side_free(struct sk_buff *skb, struct sock *sk)
{
	struct net_device *bound = BPF_CORE_READ((struct packet_sock *)sk, cached_dev);

	return bound && skb->dev == bound && !BPF_CORE_READ(skb, skb_iif);
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
		/* Where the uarg's free reports the completion, a free here
		 * matters only as a drop on the sending side: tell that first,
		 * from two reads, before any lookup. */
		tx_side = is_kfree && tx_side_free(skb, sk);
		if (cfg.uarg_via_kfree && !tx_side) {
			if (skbs_used)
				bpf_map_delete_elem(&skbs, &key);
			return;
		}
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
		if (!cfg.uarg_via_kfree) /* else the uarg's free moves the guess */
			predict_after(ss, idx);
		c = current_call((__u64)sk);
		/*
		 * Which side freed it (tx_side_free): once the frame reached a
		 * receiving device (a veth peer in the same namespace),
		 * skb->dev is that device, not the one the socket is bound to,
		 * and the free is the completion. On lo the receiving device
		 * is the sending one, and the receive runs in the softirq that
		 * ends the sender's xmit: the receive path has set skb_iif (0
		 * until then), so a drop there (UNHANDLED_PROTO) is the frame's
		 * completion, not a drop tpacket_snd rolls back. On the sending
		 * side, a kfree of the very skb the sender is handing to its
		 * device, in that call, is a drop tpacket_snd sees and rolls
		 * back; any other kfree there (a qdisc dropping at dequeue, in
		 * the sender's qdisc run or the NET_TX softirq) is a drop the
		 * sender is never told of.
		 */
		sync_drop = tx_side && c && c->in_xmit && c->xmit_skb == key;
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
	/* Orphaned elsewhere: read the status at this free, unless the uarg's
	 * kfree (right after the status write) reports it exactly. */
	if (!cfg.uarg_via_kfree) {
		struct rt_frame_key k = { .sk = st->sk, .idx = st->idx, .ino = st->ino };
		struct rt_frame *f;

		ss = ss_of((struct sock *)st->sk, NULL);
		f = frame_find(ss_slots(ss), &k);
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
