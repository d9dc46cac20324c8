// SPDX-License-Identifier: GPL-2.0
/*
 * ringtrace.bpf.c, part: --detail calls (cfg.calls_only), frames without per-frame hooks. A call's
 * return counts the frames it took from how far tx_ring.head moved; a completion frontier passes
 * the frames taken, in ring order, up to the first one still SENDING. A blocking call's return moves
 * it to the end without a read (the kernel returned once none was in flight); a MSG_DONTWAIT
 * return, close() and the sweep read the frames completed since: O(frames completed), never
 * O(ring).
 */

/*
 * frontier_done moves the socket's frontier to done frames, if that is
 * ahead of it, and counts the frames it passed as completed (bounded: by
 * the return or the sweep before). A return and the sweep may move it at
 * once on two CPUs: the one whose cmpxchg wins counts; the other retries
 * against the new value, so no frame is counted twice. Without cfg.claims
 * (no cmpxchg) --detail calls is refused by user space.
 */
static __always_inline void frontier_done(struct sock *sk, struct sock_state *ss, __u64 done)
{
	struct rt_sock_agg *a;

	if (!cfg.claims)
		return;
	for (int i = 0; i < 4; i++) {
		__u64 cur = ss->done_total;

		if (done <= cur)
			return;
		if (__sync_val_compare_and_swap(&ss->done_total, cur, done) != cur)
			continue;
		a = agg_of(sk, ss);
		if (a) {
			a->completed_bounded += done - cur;
			a->unseen_sending += done - cur;
		}
		return;
	}
}

/* frontier_pending refreshes ss->pending, which events carry. */
static __always_inline void frontier_pending(struct sock_state *ss)
{
	__u64 t = ss->taken_total, d = ss->done_total;

	ss->pending = t > d ? (__s32)(t - d) : 0;
}

/*
 * frontier_taken counts the frames a call took. A ring holds n frames: the
 * slot of a frame taken n frames ago was taken again, so that frame
 * completed, whatever the sweep has seen.
 */
static __always_inline void frontier_taken(struct sock *sk, struct sock_state *ss, __u32 taken, __u32 n)
{
	struct rt_sock_agg *a;
	__u64 t;

	if (!taken || !n)
		return;
	__sync_fetch_and_add(&ss->taken_total, taken);
	a = agg_of(sk, ss);
	if (a)
		a->sent += taken;
	t = ss->taken_total;
	if (t > n)
		frontier_done(sk, ss, t - n);
	frontier_pending(ss);
}

/* (Caching the block address across frames, to save a read per frame,
 * made the verifier track it through every iteration: "the sequence of
 * 8193 jumps is too complex".) */
struct frontier_ctx {
	struct ring r;
	__u32 slot;
	__u32 passed;
};

static long frontier_cb(__u32 i, struct frontier_ctx *c)
{
	if ((frame_status(frame_addr(&c->r, c->slot), c->r.off) & 7) == RT_ST_SENDING)
		return 1;
	c->passed++;
	if (++c->slot >= c->r.n)
		c->slot = 0;
	return 0;
}

/*
 * frontier_walk, from the sweep: read the frames taken and not yet known
 * complete, oldest first, up to the first one still SENDING (or budget
 * frames). A frame out of ring order waits for the frontier to pass it:
 * its completion is then bounded by the sweep that does.
 */
static __always_inline void frontier_walk(struct sock *sk, struct sock_state *ss, __u32 budget)
{
	struct frontier_ctx c = {};
	__u64 t = ss->taken_total, d = ss->done_total, todo;

	if (t <= d || !ss->n || !ss->fpb)
		return;
	/* Read the ring it counted, not a new one (the next call renews it). */
	if ((__u64)BPF_CORE_READ((struct packet_sock *)sk, tx_ring.pg_vec) != ss->pg_vec)
		return;
	todo = t - d;
	if (todo > ss->n)
		todo = ss->n;
	if (todo > budget)
		todo = budget;
	c.r.pg_vec = ss->pg_vec;
	c.r.fpb = ss->fpb;
	c.r.fsize = ss->fsize;
	c.r.n = ss->n;
	c.r.off = ss->off;
	c.slot = (__u32)((ss->frontier_base + d) % ss->n);
	bpf_loop((__u32)todo, frontier_cb, &c, 0);
	if (c.passed)
		frontier_done(sk, ss, d + c.passed);
	frontier_pending(ss);
}
