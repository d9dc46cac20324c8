/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kernel-version shims, in one place (the libbpf-tools core_fixes.bpf.h
 * pattern). Each "___flavour" struct describes a layout some kernels have;
 * bpf_core_field_exists() picks the one the running kernel has at load time,
 * and the dead branch is removed by the verifier.
 */
#ifndef __RINGTRACE_CORE_FIXES_H__
#define __RINGTRACE_CORE_FIXES_H__

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>

/* task_struct.state became __state in 5.14 (2f064a59a11f). */
struct task_struct___x {
	unsigned int __state;
} __attribute__((preserve_access_index));

struct task_struct___o {
	long state;
} __attribute__((preserve_access_index));

static __always_inline long task_state(struct task_struct *t)
{
	struct task_struct___x *tx = (void *)t;

	if (bpf_core_field_exists(tx->__state))
		return BPF_CORE_READ(tx, __state);
	return BPF_CORE_READ((struct task_struct___o *)t, state);
}

/*
 * sk_wmem_alloc is atomic_t up to 4.12 and refcount_t since (14afee4b6092):
 * both are a 4-byte counter at the member, holding 1 + bytes in flight.
 */
static __always_inline __s32 sk_wmem(struct sock *sk)
{
	__s32 v = 0;

	bpf_core_read(&v, sizeof(v), &sk->sk_wmem_alloc);
	return v - 1;
}

/*
 * struct tpacket_uarg (2026 stable kernels: 6.12.112+, 7.2.9+) completes
 * ring frames through a ubuf_info instead of skb->destructor.
 */
struct tpacket_uarg {
	struct ubuf_info ubuf;
	struct packet_sock *po;
	void *ph;
} __attribute__((preserve_access_index));

/*
 * uarg_po_ph reads a tpacket_uarg's socket and frame: one probe read where
 * ph follows po (every kernel so far), two otherwise.
 */
static __always_inline void uarg_po_ph(struct tpacket_uarg *u, __u64 *po, __u64 *ph)
{
	__u64 v[2] = {};
	__u32 off = bpf_core_field_offset(struct tpacket_uarg, po);

	if (bpf_core_field_offset(struct tpacket_uarg, ph) == off + sizeof(__u64)) {
		bpf_probe_read_kernel(v, sizeof(v), (void *)u + off);
	} else {
		v[0] = (__u64)BPF_CORE_READ(u, po);
		v[1] = (__u64)BPF_CORE_READ(u, ph);
	}
	*po = v[0];
	*ph = v[1];
}

/* struct ubuf_info_ops (6.10+): complete() is its first member. */
struct ubuf_info_ops___rt {
	const void *complete;
} __attribute__((preserve_access_index));

struct ubuf_info___ops {
	const struct ubuf_info_ops___rt *ops;
} __attribute__((preserve_access_index));

/* SKBFL_ZEROCOPY_FRAG (SKBFL_ZEROCOPY_ENABLE | SKBFL_SHARED_FRAG): what
 * skb_zcopy_init() sets in skb_shinfo(skb)->flags for a tpacket_uarg. */
#define RT_ZEROCOPY_FRAG 3

/*
 * tpacket_uarg_of: the struct tpacket_uarg a ring skb of the uarg form
 * carries, or NULL. Recognised from its structure, with no data symbol
 * (kallsyms lists &tpacket_ubuf_ops only with CONFIG_KALLSYMS_ALL):
 *   - skb_shinfo(skb)->flags has SKBFL_ZEROCOPY_FRAG. skb_zcopy_clear()
 *     (the ring pages copied out: veth forward, tap clone, local delivery)
 *     clears the flags but leaves destructor_arg pointing at the freed
 *     uarg, whose memory may still read as one;
 *   - destructor_arg has bit 0 clear (set: a zerocopy "nouarg" marker);
 *   - uarg->ubuf.ops->complete is tpacket_ubuf_complete, a text symbol on
 *     every uarg kernel (complete_addr, from kallsyms).
 * Both programs use it, so the holders walk and the tracer agree on what a
 * ring skb is.
 */
static __always_inline struct tpacket_uarg *tpacket_uarg_of(struct skb_shared_info *sh, __u64 complete_addr)
{
	struct ubuf_info___ops *ub;
	__u64 arg;

	/*
	 * Before 5.13 skb_shared_info has no flags: its relocation fails and
	 * the loader poisons the instruction, which must stay behind this
	 * test. A probe read keeps it there; a bpf_core_field_offset() value
	 * (tried, to read flags and destructor_arg in one probe read) was
	 * hoisted above it by clang, and the holders iterator no longer
	 * loaded on 5.10.
	 */
	if (!complete_addr)
		return NULL;
	if ((BPF_CORE_READ(sh, flags) & RT_ZEROCOPY_FRAG) != RT_ZEROCOPY_FRAG)
		return NULL;
	arg = (__u64)BPF_CORE_READ(sh, destructor_arg);
	if (!arg || (arg & 1))
		return NULL;
	ub = (void *)arg;
	if ((__u64)BPF_CORE_READ(ub, ops, complete) != complete_addr)
		return NULL;
	return (struct tpacket_uarg *)arg;
}

/*
 * PACKET_QDISC_BYPASS: a bit of po->flags (enum packet_sock_flags) since 6.4
 * ("net/packet: remove po->xmit"); before, po->xmit == packet_direct_xmit
 * (direct_xmit_addr, a text symbol).
 */
enum packet_sock_flags {
	PACKET_SOCK_QDISC_BYPASS = 6,
};

struct packet_sock___flags {
	unsigned long flags;
} __attribute__((preserve_access_index));

struct packet_sock___xmit {
	void *xmit;
} __attribute__((preserve_access_index));

static __always_inline int qdisc_bypass(struct packet_sock *po, __u64 direct_xmit_addr)
{
	struct packet_sock___flags *pf = (void *)po;
	struct packet_sock___xmit *px = (void *)po;

	if (bpf_core_enum_value_exists(enum packet_sock_flags, PACKET_SOCK_QDISC_BYPASS) &&
	    bpf_core_field_exists(pf->flags))
		return (BPF_CORE_READ(pf, flags) >> bpf_core_enum_value(enum packet_sock_flags, PACKET_SOCK_QDISC_BYPASS)) & 1;
	if (bpf_core_field_exists(px->xmit))
		return direct_xmit_addr && (__u64)BPF_CORE_READ(px, xmit) == direct_xmit_addr;
	return 0;
}

#endif /* __RINGTRACE_CORE_FIXES_H__ */
