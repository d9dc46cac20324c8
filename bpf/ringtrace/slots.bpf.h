// SPDX-License-Identifier: GPL-2.0
/*
 * ringtrace.bpf.c, part: where a frame's entry lives: a socket's range of the frame_slots array
 * (taken when its state starts, returned after it is buried) or the frames hash.
 */

/* gt_shift is (v > c) << sh without a branch, for v - c < 2^63: the
 * subtraction's sign bit. */
#define gt_shift(v, c, sh) ((((__u64)(c) - (v)) >> 63) << (sh))

/*
 * log2_u64 is floor(log2(v)), 0 for 0 (BPF has no count-leading-zeros),
 * for v < 2^63 (a duration in ns). Without branches: with a compare per
 * step the verifier walks each of the 32 paths through the whole rest of
 * the program, which made the summary's sweep 95 k instructions to verify.
 */
static __always_inline __u32 log2_u64(__u64 v)
{
	__u64 r, sh;

	sh = gt_shift(v, 0xffffffffULL, 5);
	v >>= sh;
	r = sh;
	sh = gt_shift(v, 0xffff, 4);
	v >>= sh;
	r |= sh;
	sh = gt_shift(v, 0xff, 3);
	v >>= sh;
	r |= sh;
	sh = gt_shift(v, 0xf, 2);
	v >>= sh;
	r |= sh;
	sh = gt_shift(v, 0x3, 1);
	v >>= sh;
	r |= sh;
	return (__u32)(r | (v >> 1));
}


/* Free ranges of other sizes a new range looks past in free_slots. */
#define SLOT_POPS 4

/* slots_span is how many frames a range (sock_state.slots) holds. */
static __always_inline __u32 slots_span(__u64 slots)
{
	return 1u << ((slots >> 32) & 31);
}

static __always_inline int in_slots(__u64 slots, __u32 idx)
{
	return slots && idx < slots_span(slots);
}

static __always_inline __u64 ss_slots(const struct sock_state *ss)
{
	return ss ? ss->slots : 0;
}

/*
 * slots_alloc takes a range for the n-frame TX ring of a new socket state:
 * a free range of its size, else fresh slots; 0 if none is left (or the
 * array is off). Runs once per socket.
 */
static __always_inline __u64 slots_alloc(struct packet_sock *po)
{
	__u64 v, cls, span, base;
	__u32 n;

	if (!cfg.frame_slots || !BPF_CORE_READ(po, tx_ring.pg_vec))
		return 0;
	n = BPF_CORE_READ(po, tx_ring.frame_max) + 1;
	if (!n || n > cfg.frame_slots)
		return 0;
	cls = log2_u64(((__u64)n << 1) - 1); /* ceil(log2(n)) */
	span = 1ULL << cls;
#pragma unroll
	for (int i = 0; i < SLOT_POPS; i++) {
		if (bpf_map_pop_elem(&free_slots, &v))
			break;
		if ((v >> 32) == cls)
			return v;
		/* Another size: back in line (a full queue loses it). */
		bpf_map_push_elem(&free_slots, &v, 0);
	}
#pragma unroll
	for (int i = 0; i < 4; i++) {
		base = slots_next;
		if (base + span > cfg.frame_slots)
			return 0;
		if (__sync_val_compare_and_swap(&slots_next, base, base + span) == base)
			return cls << 32 | (base + 1);
	}
	return 0;
}

/* slots_free returns a range for reuse (a full queue loses it). */
static __always_inline void slots_free(__u64 slots)
{
	if (slots)
		bpf_map_push_elem(&free_slots, &slots, 0);
}

/* frame_slot is frame idx's slot in a range, whoever owns it now; NULL
 * past the range. */
static __always_inline struct rt_frame *frame_slot(__u64 slots, __u32 idx)
{
	__u32 i;

	if (!in_slots(slots, idx))
		return NULL;
	i = (__u32)slots - 1 + idx;
	return bpf_map_lookup_elem(&frame_slots, &i);
}

/*
 * frame_find is the entry of frame k (of the socket whose range is slots),
 * NULL if it has none: in the range, a slot the socket owns; past it, the
 * frames hash.
 */
static __always_inline struct rt_frame *frame_find(__u64 slots, const struct rt_frame_key *k)
{
	struct rt_frame *f;

	if (!in_slots(slots, k->idx))
		return bpf_map_lookup_elem(&frames, k);
	f = frame_slot(slots, k->idx);
	return f && f->sock_ino == k->ino ? f : NULL;
}

/* sk_slots is a socket's range, for callers without its state. */
static __always_inline __u64 sk_slots(__u64 sk)
{
	struct sock_state *ss;

	if (!cfg.frame_slots)
		return 0;
	ss = bpf_map_lookup_elem(&socks, &sk);
	return ss_slots(ss);
}
