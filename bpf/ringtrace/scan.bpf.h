// SPDX-License-Identifier: GPL-2.0
/*
 * ringtrace.bpf.c, part: ring status scans: the run of SEND_REQUEST frames, frames taken but never
 * seen SENDING, completions missed.
 */

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
	__u32 blk; /* the block buf is the address of (buf 0: none read yet) */
	__u32 pad2;
	__u64 buf;
	struct rt_scan s;
};

/*
 * scan_status reads the status of the i-th frame from head (i < c->n). The
 * block's address is read once for its frames (frame_addr reads it for
 * each). Each frame is found from i alone, not by stepping from the frame
 * before: counters carried from one bpf_loop run to the next made the
 * verifier walk the callback over and over (tried: the entry program's
 * 65 k verified instructions became 654 k; this form takes 28 k).
 */
static __always_inline __u32 scan_status(struct scan_ctx *c, __u32 i)
{
	__u32 idx, blk, st = 0xff;
	__u64 buf;

	idx = c->head + i;
	if (idx >= c->n)
		idx -= c->n;
	blk = idx / c->fpb;
	buf = c->buf;
	if (!buf || blk != c->blk) {
		buf = 0;
		bpf_probe_read_kernel(&buf, sizeof(buf), (void *)(c->pg_vec + (__u64)blk * sizeof(__u64)));
		c->buf = buf;
		c->blk = blk;
	}
	if (buf)
		bpf_probe_read_kernel(&st, sizeof(st), (void *)(buf + (__u64)(idx - blk * c->fpb) * c->fsize + c->off));
	return st & 7;
}

/* scan_count counts the i-th frame from head, of status st; 1: stop. */
static __always_inline long scan_count(struct scan_ctx *c, __u32 i, __u32 st)
{
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
	/* A light scan reads the SEND_REQUEST run, and past a WRONG_FORMAT
	 * frame at head the frames waiting behind it, up to the first frame
	 * that is neither. */
	if (!c->light || st == RT_ST_SEND_REQUEST || (i == 0 && st == RT_ST_WRONG_FORMAT))
		return 0;
	return 1;
}

/* bpf_loop callback: the frame at head is read before the loop, so its
 * i-th run reads the (i + 1)-th frame from head. */
static long scan_cb(__u32 i, void *data)
{
	struct scan_ctx *c = data;

	if (i + 1 >= c->n)
		return 1;
	return scan_count(c, i + 1, scan_status(c, i + 1));
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
 * the kernel's head. light (bpf_loop variant only): just the run (and the
 * frames waiting behind a WRONG_FORMAT frame at head), and the counts of
 * the frames it looked at: O(frames a call takes), not O(ring). Returns the
 * status of the frame at head.
 */
static __always_inline __u32 scan_ring_x(const struct ring *r, struct rt_scan *out, int use_loop, int light)
{
	struct scan_ctx c = {};
	__u32 head_st = 0xff;

	c.light = light;
	c.pg_vec = r->pg_vec;
	c.fpb = r->fpb;
	c.fsize = r->fsize;
	c.n = r->n;
	c.off = r->off;
	c.head = r->head;
	c.run_open = 1;
	if (!c.fpb || c.head >= c.n) /* no ring, or not one this reads right */
		c.n = 0;
	if (c.n)
		head_st = scan_status(&c, 0);
	if (use_loop) {
		/* Where the frame at head ends a light scan (a poll, a call
		 * that found nothing to send), it is all the scan reads. */
		if (c.n && cfg.max_scan && !scan_count(&c, 0, head_st))
			bpf_loop(cfg.max_scan - 1, scan_cb, &c, 0);
	} else if (c.n) {
		__u32 key = 0;
		struct rt_scan *fs;

		if (scan_flat(c.pg_vec, (__u64)c.fpb << 32 | c.fsize, (__u64)c.n << 32 | c.off, c.head) == 0 &&
		    (fs = bpf_map_lookup_elem(&flat_scan, &key)))
			c.s = *fs;
	}
	c.s.head = r->head;
	c.s.nframes = r->n;
	*out = c.s;
	return head_st;
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
	__u64 slots; /* the socket's range (sock_state.slots) */
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
	f = frame_find(c->slots, &k);
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
 * The call's frames the events left SENDING that the ring shows AVAILABLE
 * at its return: a completion no hook reported. The usual cause is a kprobe
 * the kernel skipped (it runs no kprobe program while another BPF program
 * is running on that CPU, and a softirq completing frames can interrupt
 * one). Found at the return, each bounded by when it was last seen
 * SENDING. Only the frames this call took are read: earlier calls' are the
 * sweep's. (A walk of its own: folded into taken_cb, it more than doubled
 * the verifier's work on every sendmsg return program.)
 */
struct missed_ctx {
	struct sock *sk;
	struct ring r;
	__u64 slots; /* the socket's range (sock_state.slots) */
	__s32 want; /* completions still unaccounted for */
	__u32 from; /* the call's first frame */
	__u32 count; /* frames it took */
	__u32 ino;
	__u8 hook;
};

static long missed_cb(__u32 i, void *data)
{
	struct missed_ctx *c = data;
	struct rt_frame_key k = { .sk = (__u64)c->sk, .ino = c->ino };
	struct rt_frame *f;
	__u64 ph;

	if (i >= c->count || c->want <= 0)
		return 1;
	k.idx = c->from + i;
	if (k.idx >= c->r.n)
		k.idx -= c->r.n;
	f = frame_find(c->slots, &k);
	if (!f || f->state != RT_ST_SENDING)
		return 0;
	ph = frame_addr(&c->r, k.idx);
	if ((frame_status(ph, c->r.off) & 7) == RT_ST_AVAILABLE) {
		to_available(c->sk, NULL, k.idx, ph, 0, RT_BOUNDED, f->ts_seen, RT_C_SCAN, c->hook, 0, NULL);
		c->want--;
	}
	return 0;
}
