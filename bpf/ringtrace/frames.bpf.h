// SPDX-License-Identifier: GPL-2.0
/*
 * ringtrace.bpf.c, part: frame state transitions: SEND_REQUEST -> SENDING -> AVAILABLE, each claimed
 * once, emitted or counted in the aggregates.
 */

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

/*
 * emit_frame_short sends a frame event in a short record (struct
 * rt_frame_short) where user space has the names it leaves out: c is the
 * current thread's call on sk (current_call), whose entry record named the
 * thread unless it is still held back, and a device must be the one the
 * socket's last full record named (ss->dev). It returns 0, having sent
 * nothing, when a full record is due. The caller has claimed the change:
 * a lost record counts as lost.
 */
static __always_inline int emit_frame_short(struct sock *sk, struct sock_state *ss, struct call_state *c, __u32 idx,
					    __u64 skb, __u8 old, __u8 new, __u8 prec, __u64 ts_lo, __u8 cause,
					    __u8 hook, struct net_device *dev, __u64 sending_lo, int direct)
{
	struct rt_frame_short *e;
	__u64 id;

	if (!(cfg.events & (1u << RT_FRAME_SHORT)) || !c || c->enter_held || !ss || (dev && ss->dev != (__u64)dev))
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(&lost, RT_FRAME_SHORT);
		return 1;
	}
	/* Every field is written: the record is not zeroed first. */
	id = bpf_get_current_pid_tgid();
	e->ts = bpf_ktime_get_ns();
	e->ts_lo = prec == RT_BOUNDED ? ts_lo : 0;
	e->sk = (__u64)sk;
	e->skb = skb;
	e->sending_lo = sending_lo;
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->frame = idx;
	e->cpu = bpf_get_smp_processor_id();
	sock_mem(sk, direct, &e->sndbuf, &e->wmem);
	e->pending = ss->pending;
	e->sock_ino = ss->ino;
	e->kind = RT_FRAME_SHORT;
	e->old_state = old;
	e->new_state = new;
	e->prec = prec;
	e->cause = cause;
	e->hook = hook;
	e->flags = dev ? RT_FS_DEV : 0;
	ev_submit(e);
	return 1;
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
	struct rt_frame init = {};
	struct rt_frame *f;

	init.ph = ph;
	init.sock_ino = ino;
	init.state = RT_ST_UNKNOWN;
	if (in_slots(ss_slots(ss), idx)) {
		f = frame_slot(ss_slots(ss), idx);
		/* Free, or an earlier owner's: this socket's now. */
		if (f && f->sock_ino != ino)
			*f = init;
		return f;
	}
	f = bpf_map_lookup_elem(&frames, &k);
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
	f->avail_swept = 0;
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

static __always_inline void to_available_why(struct sock *sk, struct sock_state *ss, __u32 idx, __u64 ph, __u64 skb,
					     __u8 prec, __u64 ts_lo, __u8 cause, __u8 hook, int certain,
					     struct net_device *dev, __u64 reason, __u64 location, int direct,
					     struct call_state *c, int have_call);

/*
 * to_sending records SEND_REQUEST -> SENDING for a frame. An exact hook runs
 * inside tpacket_snd, which has just taken the frame from SEND_REQUEST: if
 * the entry still holds SENDING from an earlier call, that use completed
 * unseen (an skb orphaned on the way, whose later free or the sweep has not
 * come yet, while the sender already wrote the frame again): report its
 * completion, bounded by when it was last seen SENDING, then this use.
 * Without that the earlier use's SENDING hid this one's.
 */
static __always_inline void to_sending(struct sock *sk, struct sock_state *ss, __u32 idx, __u64 ph, __u64 skb,
				       __u8 prec, __u64 ts_lo, __u8 cause, __u8 hook, struct net_device *dev)
{
	struct call_state *c;
	struct rt_frame *f;

	ss = ss_of(sk, ss);
	f = frame_entry(ss, (__u64)sk, idx, ph);
	if (!f)
		return;
	c = current_call((__u64)sk);
	if (f->state == RT_ST_SENDING) {
		if (prec != RT_EXACT || !c || f->call_seq == c->seq)
			return;
		to_available_why(sk, ss, idx, f->ph, 0, RT_BOUNDED, f->ts_seen, RT_C_RETAKEN, hook, 0, NULL, 0, 0, 0, c,
				 1);
		if (f->state == RT_ST_SENDING)
			return;
	}
	if (!mark_sending(ss, f, c, ph, bpf_ktime_get_ns(), prec == RT_EXACT, 1))
		return;
	pending_add(ss, 1);
	if (cfg.aggregate) {
		struct rt_sock_agg *a = agg_of(sk, ss);

		if (a)
			a->sent++;
		return;
	}
	/* The status write (where __packet_set_status is a symbol, e.g. on
	 * arm64) comes before dev_queue_xmit: name the socket's bound device. */
	if (!dev)
		dev = BPF_CORE_READ((struct packet_sock *)sk, cached_dev);
	if (!emit_frame_short(sk, ss, c, idx, skb, RT_ST_SEND_REQUEST, RT_ST_SENDING, prec, ts_lo, cause, hook, dev, 0,
			      0))
		emit_frame(sk, ss, idx, skb, RT_ST_SEND_REQUEST, RT_ST_SENDING, prec, ts_lo, cause, hook, dev);
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
	if (!reason && !location &&
	    emit_frame_short(sk, ss, c, idx, skb, old, RT_ST_AVAILABLE, prec, ts_lo, cause, hook, dev, sending_lo, direct))
		return;
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
	ev_dev_x(e, ss, dev, 0);
	ev_submit(e);
}

static __always_inline void to_available(struct sock *sk, struct sock_state *ss, __u32 idx, __u64 ph, __u64 skb,
					 __u8 prec, __u64 ts_lo, __u8 cause, __u8 hook, int certain,
					 struct net_device *dev)
{
	to_available_why(sk, ss, idx, ph, skb, prec, ts_lo, cause, hook, certain, dev, 0, 0, 0, NULL, 0);
}
