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
 * For each packet socket with a TX ring it also reports the ring's block
 * addresses, so user space can tell that ph lies inside that ring and which
 * frame it is. Read-only: it changes nothing, it only reads kernel memory.
 *
 * Run on demand from user space (tracer/holders); the output is a sequence
 * of struct rt_holder (holders.h).
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

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rt_holder);
} hscratch SEC(".maps");

/* The iterator's context and the members only this program reads, as local
 * "___h" flavours: CO-RE matches them to the kernel's types by name. */
struct seq_file;

struct bpf_iter_meta {
	struct seq_file *seq;
} __attribute__((preserve_access_index));

struct bpf_iter__task_file {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
	__u32 fd;
	struct file *file;
} __attribute__((preserve_access_index));

struct sk_buff___h {
	struct sk_buff___h *next;
} __attribute__((preserve_access_index));

struct sk_buff_head___h {
	struct sk_buff___h *next;
	__u32 qlen;
} __attribute__((preserve_access_index));

struct sock___h {
	struct sk_buff_head___h sk_receive_queue;
} __attribute__((preserve_access_index));

struct packet_sock___h {
	__be16 num;
} __attribute__((preserve_access_index));

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
		*ph = (__u64)BPF_CORE_READ(u, ph);
		*sender = (__u64)BPF_CORE_READ(u, po);
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

struct walk_ctx {
	struct seq_file *seq;
	struct rt_holder *h;
	__u64 skb; /* next skb to look at */
	__u64 q; /* &sk->sk_receive_queue: the end of the list */
	__u32 qlen;
	__u32 found;
	__u32 walked;
};

/* walk_one looks at one queued skb; 1 at the end of the queue. */
static __always_inline long walk_one(struct walk_ctx *c)
{
	struct rt_holder *h = c->h;
	struct sk_buff___h *skb = (void *)c->skb;
	__u64 ph = 0, sender = 0;
	__u32 form;

	if (!skb || (__u64)skb == c->q)
		return 1;
	c->walked++;
	form = ring_frame((struct sk_buff *)skb, &ph, &sender);
	if (form) {
		c->found++;
		h->kind = RT_HR_SKB;
		h->skb = (__u64)skb;
		h->ph = ph;
		h->sender = sender;
		h->qlen = c->qlen;
		h->form = form;
		bpf_seq_write(c->seq, h, sizeof(*h));
	}
	c->skb = (__u64)BPF_CORE_READ(skb, next);
	return 0;
}

/* bpf_loop callback */
static long walk_cb(__u32 i, void *data)
{
	return walk_one(data);
}

static __always_inline void walk_queue(struct seq_file *seq, struct rt_holder *h, struct sock *sk, int use_loop)
{
	struct sock___h *s = (void *)sk;
	struct walk_ctx c = { .seq = seq, .h = h };
	int i;

	c.qlen = BPF_CORE_READ(s, sk_receive_queue.qlen);
	if (!c.qlen)
		return;
	c.q = (__u64)&s->sk_receive_queue;
	c.skb = (__u64)BPF_CORE_READ(s, sk_receive_queue.next);
	if (use_loop) {
		bpf_loop(RT_HOLDER_MAX_SKBS, walk_cb, &c, 0);
	} else {
		for (i = 0; i < RT_HOLDER_MAX_SKBS_BOUNDED; i++)
			if (walk_one(&c))
				break;
	}
	h->kind = RT_HR_QUEUE;
	h->skb = h->ph = h->sender = 0;
	h->qlen = c.qlen;
	h->form = c.found;
	h->walked = c.walked;
	h->truncated = c.skb && c.skb != c.q;
	bpf_seq_write(seq, h, sizeof(*h));
}

struct ring_ctx {
	struct seq_file *seq;
	struct rt_holder *h;
	__u64 pg_vec;
	__u32 total; /* blocks to describe */
};

/* describe_chunk writes the RT_HR_RING record of blocks chunk * RT_HOLDER_BLOCKS ..; 1 when done. */
static __always_inline long describe_chunk(__u32 chunk, struct ring_ctx *c)
{
	struct rt_holder *h = c->h;
	__u32 first = chunk * RT_HOLDER_BLOCKS;
	__u64 n64;

	if (first >= c->total)
		return 1;
	n64 = c->total - first;
	if (n64 > RT_HOLDER_BLOCKS)
		n64 = RT_HOLDER_BLOCKS;
	/* Opaque to the compiler, so the verifier sees the bound checked. */
	asm volatile("%[n] &= 0x3f" : [n] "+r"(n64));
	if (n64 > RT_HOLDER_BLOCKS)
		n64 = RT_HOLDER_BLOCKS;
	h->first_block = first;
	h->nblocks = n64;
	/* pg_vec is an array of struct pgv { char *buffer; }: 8 bytes each. */
	if (!n64 || bpf_probe_read_kernel(h->blocks, n64 * sizeof(__u64), (void *)(c->pg_vec + (__u64)first * sizeof(__u64))))
		h->nblocks = 0;
	bpf_seq_write(c->seq, h, sizeof(*h));
	return 0;
}

/* bpf_loop callback */
static long chunk_cb(__u32 i, void *data)
{
	return describe_chunk(i, data);
}

static __always_inline void describe_ring(struct seq_file *seq, struct rt_holder *h, struct packet_sock *po, int use_loop)
{
	struct ring_ctx c = { .seq = seq, .h = h };
	__u32 chunk;

	c.pg_vec = (__u64)BPF_CORE_READ(po, tx_ring.pg_vec);
	if (!c.pg_vec)
		return;
	c.total = BPF_CORE_READ(po, tx_ring.pg_vec_len);
	h->kind = RT_HR_RING;
	h->protocol = BPF_CORE_READ((struct packet_sock___h *)po, num);
	h->frame_size = BPF_CORE_READ(po, tx_ring.frame_size);
	h->frames_per_block = BPF_CORE_READ(po, tx_ring.frames_per_block);
	h->frame_max = BPF_CORE_READ(po, tx_ring.frame_max);
	h->total_blocks = c.total;
	if (c.total > RT_HOLDER_MAX_BLOCKS)
		c.total = RT_HOLDER_MAX_BLOCKS;
	if (use_loop) {
		bpf_loop(RT_HOLDER_MAX_BLOCKS / RT_HOLDER_BLOCKS, chunk_cb, &c, 0);
		return;
	}
	for (chunk = 0; chunk < RT_HOLDER_MAX_BLOCKS / RT_HOLDER_BLOCKS; chunk++)
		if (describe_chunk(chunk, &c))
			break;
}

static __always_inline int visit(struct bpf_iter__task_file *ctx, int use_loop)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	struct rt_holder *h;
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
	h = bpf_map_lookup_elem(&hscratch, &zero);
	if (!h)
		return 0;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	ino = BPF_CORE_READ(file, f_inode, i_ino);
	fill_common(h, task, ctx->fd, ino, sk, family);
	walk_queue(seq, h, sk, use_loop);
	if (family == AF_PACKET)
		describe_ring(seq, h, (struct packet_sock *)sk, use_loop);
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
