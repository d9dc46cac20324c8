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

struct ubuf_info___ops {
	const void *ops;
} __attribute__((preserve_access_index));

#endif /* __RINGTRACE_CORE_FIXES_H__ */
