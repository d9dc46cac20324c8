// SPDX-License-Identifier: GPL-2.0
/* ringtrace.bpf.c, part: NET_RX / NET_TX softirq spans and napi polls. */

/* ------------------------------------------------------------------ */
/* softirq and napi                                                   */

SEC("tp_btf/softirq_entry")
int BPF_PROG(tp_softirq_entry, unsigned int vec)
{
	__u64 *ts;

	if (vec != NET_TX_SOFTIRQ && vec != NET_RX_SOFTIRQ)
		return 0;
	ts = bpf_map_lookup_elem(&softirq_ts, &vec);
	if (ts)
		*ts = bpf_ktime_get_ns();
	return 0;
}

SEC("tp_btf/softirq_exit")
int BPF_PROG(tp_softirq_exit, unsigned int vec)
{
	struct rt_event *e;
	__u64 *ts;

	if (vec != NET_TX_SOFTIRQ && vec != NET_RX_SOFTIRQ)
		return 0;
	ts = bpf_map_lookup_elem(&softirq_ts, &vec);
	if (!ts || !*ts)
		return 0;
	e = ev_reserve(RT_SOFTIRQ, RT_H_TRACEPOINT);
	if (e) {
		e->ts_lo = *ts;
		e->aux = vec;
		ev_submit(e);
	}
	*ts = 0;
	return 0;
}

SEC("tp_btf/napi_poll")
int BPF_PROG(tp_napi_poll, struct napi_struct *napi, int work, int budget)
{
	struct rt_event *e = ev_reserve(RT_NAPI_POLL, RT_H_TRACEPOINT);

	if (!e)
		return 0;
	e->a[0] = work;
	e->a[1] = budget;
	e->a[2] = (__u64)napi;
	ev_dev(e, NULL, BPF_CORE_READ(napi, dev));
	ev_submit(e);
	return 0;
}
