// SPDX-License-Identifier: GPL-2.0
/*
 * holders: who holds TX-ring frames that never completed.
 *
 * A BPF iterator over every task's open files (iter/task_file). For each
 * socket file it walks sk_receive_queue and reports the skbs that carry a
 * TX-ring frame, in either completion form:
 *   destructor form: skb->destructor == tpacket_destruct_skb and
 *     skb_shinfo(skb)->destructor_arg == frame address | 1; the ring's
 *     socket is skb->sk;
 *   uarg form (struct tpacket_uarg exists in the kernel's BTF):
 *     destructor_arg is a struct tpacket_uarg {ubuf, po, ph} (bit 0 clear,
 *     shinfo->flags has SKBFL_ZEROCOPY_FRAG, ubuf.ops->complete ==
 *     tpacket_ubuf_complete: tpacket_uarg_of() in core_fixes.bpf.h, shared
 *     with the tracer); the ring's socket is po, the frame ph.
 * Each ring skb's frame index is found here, by searching the sender's
 * ring (po->tx_ring.pg_vec) for the block that holds ph: listing every
 * block address instead made one socket's output outgrow the 32 KiB the
 * kernel allows one object (E2BIG failed every walk once a ring had more
 * than about 2900 blocks). For each packet socket with a TX ring it also
 * reports the ring's geometry. Read-only: it changes nothing, it only reads
 * kernel memory.
 *
 * Run on demand from user space (tracer/holders); the output is a sequence
 * of struct rt_holder and struct rt_holder_skb records (holders.h).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "holders.h"
#include "core_fixes.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define AF_PACKET 17
#define S_IFMT 00170000
#define S_IFSOCK 0140000

const volatile struct rt_holder_config hcfg = {};

/* Keep the shared types in BTF for bpf2go -type. */
const struct rt_holder *__rt_holder_anchor __attribute__((unused));
const enum rt_holder_kind *__rt_holder_kind_anchor __attribute__((unused));
const enum rt_holder_form *__rt_holder_form_anchor __attribute__((unused));
const struct rt_holder_skb *__rt_holder_skb_anchor __attribute__((unused));
const enum rt_holder_locate *__rt_holder_locate_anchor __attribute__((unused));

static __always_inline void fill_common(struct rt_holder *h, struct task_struct *task, __u32 fd, __u32 ino,
					struct sock *sk, __u32 family)
{
	__builtin_memset(h, 0, sizeof(*h));
	h->pid = BPF_CORE_READ(task, tgid);
	h->fd = fd;
	h->ino = ino;
	h->sk = (__u64)sk;
	h->family = family;
	BPF_CORE_READ_STR_INTO(&h->comm, task, comm);
}

/*
 * ring_frame: if skb carries a TX-ring frame, its frame address and the
 * packet socket of the ring; the form that recognised it, else 0.
 */
static __always_inline __u32 ring_frame(struct sk_buff *skb, __u64 *ph, __u64 *sender)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	unsigned int end = BPF_CORE_READ(skb, end);
	struct skb_shared_info *sh = (void *)(head + end);
	__u64 arg = (__u64)BPF_CORE_READ(sh, destructor_arg);

	if (!head || !arg)
		return 0;
	if (bpf_core_type_exists(struct tpacket_uarg)) {
		struct tpacket_uarg *u = tpacket_uarg_of(sh, hcfg.uarg_complete_addr);

		if (!u)
			return 0;
		uarg_po_ph(u, sender, ph);
		if (!*ph || !*sender)
			return 0;
		return RT_HF_UARG;
	}
	if (!hcfg.destruct_addr || !(arg & 1))
		return 0;
	if ((__u64)BPF_CORE_READ(skb, destructor) != hcfg.destruct_addr)
		return 0;
	*ph = arg & ~1ULL;
	*sender = (__u64)BPF_CORE_READ(skb, sk);
	return RT_HF_DESTRUCTOR;
}

/*
 * A search's results and counters. They live in the per-CPU scratch map,
 * not on the stack: the verifier knows nothing of a value loaded from a
 * map, so it does not walk a bpf_loop callback once per value of a counter
 * that starts at a constant on the stack (that made 30 times the
 * instructions to verify).
 */
struct search {
	__u64 base; /* the address of the block holding ph */
	__u32 block; /* the block holding ph, RT_HOLDER_NO_FRAME if none */
	__u32 searched; /* blocks read */
	__u32 budget; /* block reads left for the socket's searches */
	__u32 cut; /* stopped by the budget */
};

/* Per-CPU scratch: the records being written, the search state. */
struct scratch {
	struct rt_holder h;
	struct rt_holder_skb s;
	struct search f;
	/* without bpf_loop: the ring skbs found, placed after the walk */
	struct rt_holder_skb kept[RT_HOLDER_MAX_LISTED_BOUNDED];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} hscratch SEC(".maps");

/* What one socket writes fits the kernel's seq_file buffer (holders.h). */
_Static_assert(2 * sizeof(struct rt_holder) + RT_HOLDER_MAX_LISTED * sizeof(struct rt_holder_skb) <= 32768,
	       "one socket's records outgrow the 32 KiB bpf_iter buffer");
_Static_assert((RT_HOLDER_MAX_LISTED_BOUNDED & (RT_HOLDER_MAX_LISTED_BOUNDED - 1)) == 0,
	       "RT_HOLDER_MAX_LISTED_BOUNDED is not a power of 2");

/*
 * The block search: which block of a ring holds frame address ph. A ring's
 * blocks are separate allocations in any order (pg_vec[i].buffer), so the
 * search reads their addresses one by one, starting at a hint (the block
 * of the previous frame found: a queue holds a sender's frames in ring
 * order, so most searches read one or two blocks) and wrapping around.
 * With bpf_loop it covers the whole ring, within a per-socket budget, going
 * up through the ring as the queue does. Without, it reads
 * RT_HOLDER_SEARCH_BOUNDED blocks going down from the hint, and the queue's
 * ring skbs are placed newest first: the first hint is the block of the
 * frame sent last, the held frames are usually the last ones sent.
 */
struct find_ctx {
	struct search *f;
	__u64 pg_vec;
	__u64 ph;
	__u64 span; /* bytes of frames in a block: frames_per_block * frame_size */
	__u32 nblocks;
	__u32 start; /* block to read first */
	__u32 back; /* go down from start, not up */
};

/* find_block reads the i-th block of the search; 1 when the search is over. */
static __always_inline long find_block(__u32 i, struct find_ctx *c)
{
	struct search *f = c->f;
	__u64 b = 0;
	__u32 k;

	if (i >= c->nblocks)
		return 1;
	if (!f->budget) {
		f->cut = 1;
		return 1;
	}
	f->budget--;
	/* k = start + i or start - i, wrapping (start and i < nblocks) */
	k = c->back ? c->start + c->nblocks - i : c->start + i;
	if (k >= c->nblocks)
		k -= c->nblocks;
	/* pg_vec is an array of struct pgv { char *buffer; }: 8 bytes each. */
	if (bpf_probe_read_kernel(&b, sizeof(b), (void *)(c->pg_vec + (__u64)k * sizeof(__u64))))
		return 0;
	f->searched++;
	if (b && c->ph >= b && c->ph - b < c->span) {
		f->block = k;
		f->base = b;
		return 1;
	}
	return 0;
}

/* bpf_loop callback */
static long find_cb(__u32 i, void *data)
{
	return find_block(i, data);
}

/* A sender's TX ring, as the searches need it. */
struct ring_geo {
	__u64 po; /* the packet socket it was read from, 0: none yet */
	__u64 pg_vec;
	__u32 nblocks;
	__u32 frame_size;
	__u32 fpb;
	__u32 frame_max;
	__u32 hint; /* block to search first */
};

static __always_inline void read_geo(struct ring_geo *g, struct packet_sock *po)
{
	__u32 last;

	g->po = (__u64)po;
	g->pg_vec = (__u64)BPF_CORE_READ(po, tx_ring.pg_vec);
	g->nblocks = BPF_CORE_READ(po, tx_ring.pg_vec_len);
	g->frame_size = BPF_CORE_READ(po, tx_ring.frame_size);
	g->fpb = BPF_CORE_READ(po, tx_ring.frames_per_block);
	g->frame_max = BPF_CORE_READ(po, tx_ring.frame_max);
	/* The first hint: the block of the frame sent last (the one before
	 * head, the next to send), where the newest held frames are. */
	last = BPF_CORE_READ(po, tx_ring.head);
	last = last ? last - 1 : g->frame_max;
	g->hint = g->fpb ? last / g->fpb : 0;
}

/*
 * locate: the index of frame address ph in ring g, searching from block
 * start. Returns an enum rt_holder_locate; *frame and *searched are set.
 * f->budget: block reads left (updated).
 */
static __always_inline __u32 locate(struct search *f, struct ring_geo *g, __u64 ph, __u32 start, __u32 *frame,
				    __u32 *searched, int use_loop)
{
	struct find_ctx c = { .f = f, .pg_vec = g->pg_vec, .ph = ph, .nblocks = g->nblocks };
	__u32 i, off, idx, block;

	*frame = RT_HOLDER_NO_FRAME;
	*searched = 0;
	if (!g->pg_vec || !g->nblocks || !g->frame_size || !g->fpb)
		return RT_HL_NO_RING;
	c.span = (__u64)g->fpb * g->frame_size;
	c.start = start < c.nblocks ? start : 0;
	f->block = RT_HOLDER_NO_FRAME;
	f->searched = 0;
	f->cut = 0;
	if (use_loop) {
		bpf_loop(c.nblocks, find_cb, &c, 0);
	} else {
		c.back = 1;
		for (i = 0; i < RT_HOLDER_SEARCH_BOUNDED; i++)
			if (find_block(i, &c))
				break;
		if (f->block == RT_HOLDER_NO_FRAME && c.nblocks > RT_HOLDER_SEARCH_BOUNDED)
			f->cut = 1;
	}
	*searched = f->searched;
	block = f->block;
	if (block == RT_HOLDER_NO_FRAME)
		return f->cut ? RT_HL_CUT : RT_HL_NOT_IN_RING;
	g->hint = block;
	off = ph - f->base;
	if (off % g->frame_size)
		return RT_HL_NOT_IN_RING;
	idx = block * g->fpb + off / g->frame_size;
	if (idx > g->frame_max)
		return RT_HL_NOT_IN_RING;
	*frame = idx;
	return RT_HL_FOUND;
}

struct walk_ctx {
	struct seq_file *seq;
	struct scratch *sc;
	__u64 skb; /* next skb to look at */
	__u64 q; /* &sk->sk_receive_queue: the end of the list */
	struct ring_geo g; /* the last sender's ring */
};

/*
 * place_skb searches for s's frame in its sender's ring and writes s.
 * use_loop, here and below, is a constant argument, never a field: the
 * program for kernels without bpf_loop must not keep a reference to a
 * bpf_loop callback, which 5.10 cannot even load.
 */
static __always_inline void place_skb(struct walk_ctx *c, struct rt_holder_skb *s, int use_loop)
{
	if (c->g.po != s->sender)
		read_geo(&c->g, (struct packet_sock *)s->sender);
	s->blocks = c->g.nblocks;
	s->status = locate(&c->sc->f, &c->g, s->ph, c->g.hint, &s->frame, &s->searched, use_loop);
	bpf_seq_write(c->seq, s, sizeof(*s));
}

/*
 * walk_one looks at one queued skb; 1 at the end of the queue. With
 * bpf_loop, it places and writes the ring skbs it finds; without, it only
 * keeps them in the scratch map (walk_queue places them after the walk:
 * placing inside the bounded loop made it too long to verify).
 */
static __always_inline long walk_one(struct walk_ctx *c, int use_loop)
{
	struct rt_holder *h = &c->sc->h;
	struct sk_buff *skb = (void *)c->skb;
	struct rt_holder_skb *s;
	__u64 ph = 0, sender = 0;
	__u32 form, n;

	if (!skb || (__u64)skb == c->q)
		return 1;
	/* The counters are the QUEUE record's, in the map: see struct search. */
	h->walked++;
	form = ring_frame((struct sk_buff *)skb, &ph, &sender);
	if (form) {
		h->found++;
		n = h->listed;
		if (use_loop) {
			s = &c->sc->s;
			if (n >= RT_HOLDER_MAX_LISTED)
				goto next;
		} else {
			if (n >= RT_HOLDER_MAX_LISTED_BOUNDED)
				goto next;
			s = &c->sc->kept[n];
		}
		s->kind = RT_HR_SKB;
		s->form = form;
		s->skb = (__u64)skb;
		s->ph = ph;
		s->sender = sender;
		h->listed = n + 1;
		if (use_loop)
			place_skb(c, s, use_loop);
	}
next:
	c->skb = (__u64)BPF_CORE_READ(skb, next);
	return 0;
}

/* bpf_loop callback */
static long walk_cb(__u32 i, void *data)
{
	return walk_one(data, 1);
}

static __always_inline void walk_queue(struct seq_file *seq, struct scratch *sc, struct sock *sk, int use_loop)
{
	struct sock *s = (void *)sk;
	struct walk_ctx c = { .seq = seq, .sc = sc };
	struct rt_holder *h = &sc->h;
	__u32 qlen;
	int i;

	qlen = BPF_CORE_READ(s, sk_receive_queue.qlen);
	if (!qlen)
		return;
	sc->f.budget = RT_HOLDER_SEARCH_BUDGET;
	c.q = (__u64)&s->sk_receive_queue;
	c.skb = (__u64)BPF_CORE_READ(s, sk_receive_queue.next);
	if (use_loop) {
		bpf_loop(RT_HOLDER_MAX_SKBS, walk_cb, &c, 0);
	} else {
		for (i = 0; i < RT_HOLDER_MAX_SKBS_BOUNDED; i++)
			if (walk_one(&c, 0))
				break;
		/* newest first, see find_ctx */
		for (i = 0; i < RT_HOLDER_MAX_LISTED_BOUNDED; i++) {
			if (i >= h->listed)
				break;
			/* listed <= RT_HOLDER_MAX_LISTED_BOUNDED, a power of 2 */
			place_skb(&c, &sc->kept[(h->listed - 1 - i) & (RT_HOLDER_MAX_LISTED_BOUNDED - 1)], 0);
		}
	}
	h->kind = RT_HR_QUEUE;
	h->qlen = qlen;
	h->truncated = c.skb && c.skb != c.q;
	bpf_seq_write(seq, h, sizeof(*h));
}

static __always_inline void describe_ring(struct seq_file *seq, struct scratch *sc, struct packet_sock *po, int use_loop)
{
	struct rt_holder *h = &sc->h;
	struct ring_geo g = {};
	__u64 addr = 0, pgv = 0;
	__u32 block;

	read_geo(&g, po);
	if (!g.pg_vec)
		return;
	h->kind = RT_HR_RING;
	h->protocol = BPF_CORE_READ((struct packet_sock *)po, num);
	h->frame_size = g.frame_size;
	h->frames_per_block = g.fpb;
	h->frame_max = g.frame_max;
	h->blocks = g.nblocks;
	h->head = BPF_CORE_READ(po, tx_ring.head);
	if (hcfg.check_start && g.fpb) {
		/* packet_lookup_frame(): pg_vec[head / fpb].buffer + (head % fpb) * frame_size */
		block = h->head / g.fpb;
		if (!bpf_probe_read_kernel(&pgv, sizeof(pgv), (void *)(g.pg_vec + (__u64)block * sizeof(__u64))) && pgv)
			addr = pgv + (__u64)(h->head % g.fpb) * g.frame_size;
		sc->f.budget = RT_HOLDER_SEARCH_BUDGET;
		h->check_status = locate(&sc->f, &g, addr, hcfg.check_start - 1, &h->check_frame, &h->check_searched, use_loop);
	}
	bpf_seq_write(seq, h, sizeof(*h));
}

static __always_inline int visit(struct bpf_iter__task_file *ctx, int use_loop)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	struct scratch *sc;
	struct socket *sock;
	struct sock *sk;
	__u32 zero = 0, family, ino;
	umode_t mode;

	if (!task || !file)
		return 0;
	mode = BPF_CORE_READ(file, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return 0;
	sock = BPF_CORE_READ(file, private_data);
	if (!sock)
		return 0;
	sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return 0;
	sc = bpf_map_lookup_elem(&hscratch, &zero);
	if (!sc)
		return 0;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	ino = BPF_CORE_READ(file, f_inode, i_ino);
	fill_common(&sc->h, task, ctx->fd, ino, sk, family);
	walk_queue(seq, sc, sk, use_loop);
	if (family == AF_PACKET) {
		fill_common(&sc->h, task, ctx->fd, ino, sk, family);
		describe_ring(seq, sc, (struct packet_sock *)sk, use_loop);
	}
	return 0;
}

/* Kernels with bpf_loop (5.17+): walks up to RT_HOLDER_MAX_SKBS per queue. */
SEC("iter/task_file")
int holders(struct bpf_iter__task_file *ctx)
{
	return visit(ctx, 1);
}

/* Older kernels: a bounded loop, RT_HOLDER_MAX_SKBS_BOUNDED per queue. */
SEC("iter/task_file")
int holders_bounded(struct bpf_iter__task_file *ctx)
{
	return visit(ctx, 0);
}
