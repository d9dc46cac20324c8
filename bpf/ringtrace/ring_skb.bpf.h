// SPDX-License-Identifier: GPL-2.0
/* ringtrace.bpf.c, part: recognising a ring skb (destructor form, uarg form) and the frame it carries. */

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

/* uarg_ring_skb: ring_skb_arg's uarg form, from the skb's shared info. */
static __always_inline int uarg_ring_skb(struct skb_shared_info *sh, struct sock **skp, __u64 *php, __u64 *argp)
{
	struct tpacket_uarg *u = tpacket_uarg_of(sh, cfg.uarg_complete_addr);
	__u64 po;

	*argp = (__u64)u;
	if (!u)
		return 0;
	uarg_po_ph(u, &po, php);
	*skp = (struct sock *)po;
	return *skp && *php;
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
	return uarg_ring_skb(shinfo_of(skb), skp, php, argp);
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
	/* skb_shinfo() from two plain loads; what it points to is read with
	 * probe reads either way. */
	sh = (void *)(skb->head + skb->end);
	if (cfg.uarg_form)
		return uarg_ring_skb(sh, skp, php, argp);
	if ((__u64)skb->destructor != cfg.destruct_addr || !cfg.destruct_addr)
		return 0;
	*skp = skb->sk;
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

/*
 * remember_ph caches frame address -> index the first time a frame is seen,
 * for the completion hooks that find a frame by address when it is not the
 * one they predict (on destructor kernels the skb's free has moved the
 * guess on by the time the destructor runs), and which skb carries it now
 * (0: none cached in skbs).
 */
static __always_inline void remember_ph(__u64 skb, struct sock *sk, __u32 ino, __u64 ph, __u32 idx, __u64 pg_vec)
{
	struct ph_state *known = bpf_map_lookup_elem(&ph2idx, &ph);

	if (known && known->sk == (__u64)sk && known->ino == ino && known->idx == idx && known->pg_vec == pg_vec) {
		if (known->skb != skb)
			known->skb = skb;
	} else if (pg_vec) {
		struct ph_state ps = { .sk = (__u64)sk, .ino = ino, .pg_vec = pg_vec, .skb = skb, .idx = idx };

		bpf_map_update_elem(&ph2idx, &ph, &ps, BPF_ANY);
	}
}

/* remember_skb caches skb -> frame (for later events of this skb), and the
 * frame's address (remember_ph). */
static __always_inline void remember_skb(struct sk_buff *skb, struct sock *sk, __u32 ino, __u64 ph, __u32 idx,
					 __u64 darg, __u64 pg_vec)
{
	__u64 key = (__u64)skb;
	/* ts_start_xmit starts at queueing; net_dev_start_xmit, when
	 * attached, narrows it. */
	struct skb_state st = { .sk = (__u64)sk, .ino = ino, .ph = ph, .idx = idx, .darg = darg,
				.ts_start_xmit = bpf_ktime_get_ns() };

	if (!skbs_used)
		skbs_used = 1;
	if (bpf_map_update_elem(&skbs, &key, &st, BPF_ANY))
		count(&overflow, OVF_SKBS);
	remember_ph(key, sk, ino, ph, idx, pg_vec);
}

/*
 * known_skb finds a ring skb we saw being sent. skb addresses are recycled
 * at once and not every free has a tracepoint, so the entry only counts if
 * the skb still carries the same destructor_arg (it survives orphaning).
 * skb is BTF-typed (every caller is a tp_btf program): skb_shinfo() comes
 * from plain loads.
 */
static __always_inline int known_skb(struct sk_buff *skb, struct skb_state **stp)
{
	__u64 key = (__u64)skb;
	struct skb_shared_info *sh;

	*stp = NULL;
	if (!skbs_used)
		return 0;
	*stp = bpf_map_lookup_elem(&skbs, &key);
	if (!*stp)
		return 0;
	sh = (void *)(skb->head + skb->end);
	if ((__u64)BPF_CORE_READ(sh, destructor_arg) != (*stp)->darg) {
		bpf_map_delete_elem(&skbs, &key);
		*stp = NULL;
		return 0;
	}
	return 1;
}
