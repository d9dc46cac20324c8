// SPDX-License-Identifier: GPL-2.0
/*
 * ringtrace.bpf.c, part: frame -> SENDING: the xmit functions and net_dev_queue, the sndbuf wait's
 * entry, __packet_set_status where it is a symbol.
 */

/* ------------------------------------------------------------------ */
/* SENDING                                                            */

/*
 * xmit_entry: a ring skb enters dev_queue_xmit (or the bypass path). Inside
 * tpacket_snd the frame's status was just set to SENDING and tx_ring.head
 * still points at it. direct: skb is BTF-typed (tp_btf, fentry), its own
 * fields are read with plain loads.
 */
static __always_inline void xmit_entry(struct sk_buff *skb, __u8 hook, int use_loop, int direct)
{
	struct sock_state *ss;
	struct call_state *c;
	struct sock *sk;
	struct ring r;
	__u64 ph, darg;
	__u32 idx;

	if (direct ? !ring_skb_arg_direct(skb, &sk, &ph, &darg) : !ring_skb_arg(skb, &sk, &ph, &darg))
		return;
	ss = sock_lookup(sk, 0);
	if (!ss || ring_of((struct packet_sock *)sk, ss, &r))
		return;
	idx = frame_index((struct packet_sock *)sk, (__u32)ss->ino, &r, ph, use_loop);
	if (idx == RT_NO_FRAME)
		return;
	if (cfg.skb_cache)
		remember_skb(skb, sk, (__u32)ss->ino, ph, idx, darg, r.pg_vec);
	else
		remember_ph(0, sk, (__u32)ss->ino, ph, idx, r.pg_vec);
	c = current_call((__u64)sk);
	if (c) {
		c->in_xmit = 1;
		c->xmit_skb = (__u64)skb;
	}
	to_sending(sk, ss, idx, ph, (__u64)skb, RT_EXACT, 0, RT_C_XMIT, hook, BPF_CORE_READ(skb, dev));
}

SEC("tp_btf/net_dev_queue")
int BPF_PROG(tp_net_dev_queue, struct sk_buff *skb)
{
	if (cfg.sending_via_tp)
		xmit_entry(skb, RT_H_TRACEPOINT, 1, 1);
	return 0;
}

SEC("tp_btf/net_dev_queue")
int BPF_PROG(tp_net_dev_queue_bounded, struct sk_buff *skb)
{
	if (cfg.sending_via_tp)
		xmit_entry(skb, RT_H_TRACEPOINT, 0, 1);
	return 0;
}

static __always_inline void xmit_return(struct sk_buff *skb, __s64 rc, __u8 hook)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct call_state *c = bpf_map_lookup_elem(&calls, &tid);
	struct rt_event *e;

	if (!c || !c->sk || !c->in_xmit)
		return;
	c->in_xmit = 0;
	e = ev_reserve(RT_XMIT_RC, hook);
	if (!e)
		return;
	ev_sock(e, (struct sock *)c->sk, NULL);
	e->skb = (__u64)skb;
	e->a[0] = (__u64)rc;
	ev_submit(e);
}

/* nargs: the function's parameter count; fexit's return value follows them. */
#define XMIT_PROGS(fn, nargs, name)                                              \
	SEC("fentry/" #fn)                                                       \
	int BPF_PROG(fentry_##name, struct sk_buff *skb)                         \
	{                                                                        \
		xmit_entry(skb, RT_H_FENTRY, 0, 1);                              \
		return 0;                                                        \
	}                                                                        \
	SEC("fexit/" #fn)                                                        \
	int fexit_##name(unsigned long long *ctx)                               \
	{                                                                        \
		xmit_return((struct sk_buff *)ctx[0], (int)ctx[nargs], RT_H_FENTRY); \
		return 0;                                                        \
	}                                                                        \
	SEC("kprobe/" #fn)                                                       \
	int BPF_KPROBE(kprobe_##name, struct sk_buff *skb)                       \
	{                                                                        \
		xmit_entry(skb, RT_H_KPROBE, 0, 0);                              \
		return 0;                                                        \
	}                                                                        \
	SEC("kretprobe/" #fn)                                                    \
	int BPF_KRETPROBE(kretprobe_##name, int ret)                             \
	{                                                                        \
		xmit_return(NULL, ret, RT_H_KPROBE);                             \
		return 0;                                                        \
	}

/* __dev_queue_xmit(skb, sb_dev): the qdisc path (dev_queue_xmit is an
 * inline wrapper on 5.19+ and a real function before). */
XMIT_PROGS(__dev_queue_xmit, 2, qxmit)
XMIT_PROGS(dev_queue_xmit, 1, qxmit_legacy)
/* Bypass: packet_direct_xmit(skb) (3.14-6.3), __dev_direct_xmit(skb, queue_id) (4.19+). */
XMIT_PROGS(packet_direct_xmit, 1, direct_xmit_legacy)
XMIT_PROGS(__dev_direct_xmit, 2, direct_xmit)

/* "Frame picked": sock_alloc_send_pskb for the frame at the kernel's head. */
static __always_inline void alloc_entry(struct sock *sk, __u8 hook)
{
	struct call_state *c = current_call((__u64)sk);
	struct sock_state *ss = ss_of(sk, NULL);
	struct rt_event *e;
	struct ring r;
	__u64 ph;

	if (!c || !ss || ring_of((struct packet_sock *)sk, ss, &r))
		return;
	ph = frame_addr(&r, r.head);
	if ((frame_status(ph, r.off) & 7) != RT_ST_SEND_REQUEST)
		return;
	e = ev_reserve(RT_FRAME_PICKED, hook);
	if (!e)
		return;
	ev_sock(e, sk, ss);
	e->frame = r.head;
	e->cause = RT_C_PICKED;
	ev_submit(e);
}

SEC("fentry/sock_alloc_send_pskb")
int BPF_PROG(fentry_sock_alloc_send_pskb, struct sock *sk)
{
	alloc_entry(sk, RT_H_FENTRY);
	return 0;
}

SEC("kprobe/sock_alloc_send_pskb")
int BPF_KPROBE(kprobe_sock_alloc_send_pskb, struct sock *sk)
{
	alloc_entry(sk, RT_H_KPROBE);
	return 0;
}

/* __packet_set_status(po, frame, status), where it is not inlined: every
 * kernel write of a TX frame status, exact. */
static __always_inline void set_status(struct packet_sock *po, __u64 ph, int status, __u8 hook)
{
	struct sock *sk = (struct sock *)po;
	struct sock_state *ss = sock_lookup(sk, 0);
	struct rt_frame *f;
	struct ring r;
	__u32 idx;
	__u8 old, new = status & 7;

	if (!ss || ring_of(po, ss, &r))
		return;
	idx = frame_index(po, (__u32)ss->ino, &r, ph, 0);
	if (idx == RT_NO_FRAME)
		return;
	f = frame_entry(ss, (__u64)sk, idx, ph);
	if (!f || f->state == new)
		return;
	old = frame_status(ph, r.off) & 7;
	if (new == RT_ST_SENDING) {
		to_sending(sk, ss, idx, ph, 0, RT_EXACT, 0, RT_C_SET_STATUS, hook, NULL);
		return;
	}
	if (new == RT_ST_AVAILABLE) {
		to_available(sk, ss, idx, ph, 0, RT_EXACT, 0, RT_C_SET_STATUS, hook, 1, NULL);
		return;
	}
	set_state(ss, f, new);
	emit_frame(sk, ss, idx, 0, old, new, RT_EXACT, 0, new == RT_ST_SEND_REQUEST ? RT_C_ROLLBACK : RT_C_BAD_FRAME,
		   hook, NULL);
}

SEC("fentry/__packet_set_status")
int BPF_PROG(fentry_set_status, struct packet_sock *po, void *frame, int status)
{
	set_status(po, (__u64)frame, status, RT_H_FENTRY);
	return 0;
}

SEC("kprobe/__packet_set_status")
int BPF_KPROBE(kprobe_set_status, struct packet_sock *po, void *frame, int status)
{
	set_status(po, (__u64)frame, status, RT_H_KPROBE);
	return 0;
}
