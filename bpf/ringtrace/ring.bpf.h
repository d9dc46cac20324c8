// SPDX-License-Identifier: GPL-2.0
/*
 * ringtrace.bpf.c, part: TX ring geometry: reading the ring of a packet socket, frame addresses and
 * statuses, and the frame index of a frame address.
 */

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
 * ring_head reads the TX ring's pg_vec and head: in one read where head
 * follows pg_vec (it does in every struct packet_ring_buffer so far), each
 * probe read costing as much as a short walk of the ring.
 */
static __always_inline __u64 ring_head(struct packet_sock *po, __u32 *head)
{
	__u32 opg = bpf_core_field_offset(po->tx_ring.pg_vec), ohead = bpf_core_field_offset(po->tx_ring.head);
	struct {
		__u64 pg_vec;
		__u32 head;
		__u32 pad;
	} b = {};

	if (ohead == opg + 8 && bpf_core_field_size(po->tx_ring.head) == 4) {
		bpf_probe_read_kernel(&b, 12, (void *)po + opg);
		*head = b.head;
		return b.pg_vec;
	}
	*head = BPF_CORE_READ(po, tx_ring.head);
	return (__u64)BPF_CORE_READ(po, tx_ring.pg_vec);
}

/*
 * ring_of reads the ring with the geometry cached in the socket's state:
 * only head (and pg_vec, to notice a new ring) change between events.
 */
static __always_inline int ring_of(struct packet_sock *po, struct sock_state *ss, struct ring *r)
{
	__u32 head;
	__u64 pg = ring_head(po, &head);

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
		ss->tp_version = BPF_CORE_READ(po, tp_version) + 1;
		ss->next_idx = RT_NO_FRAME;
		/* A new ring: its frames are counted from its head now. */
		ss->taken_total = 0;
		ss->done_total = 0;
		ss->frontier_base = r->head;
		return 0;
	}
	r->pg_vec = pg;
	r->fpb = ss->fpb;
	r->fsize = ss->fsize;
	r->n = ss->n;
	r->off = ss->off;
	r->head = head;
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
