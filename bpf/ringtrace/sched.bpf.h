// SPDX-License-Identifier: GPL-2.0
/* ringtrace.bpf.c, part: the sender's sleeps and wake-ups. */

/* ------------------------------------------------------------------ */
/* sender sleeps and wakes                                            */

static __always_inline __u32 stack_reason(void *ctx)
{
	__u64 stack[STACK_DEPTH] = {};
	long n = bpf_get_stack(ctx, stack, sizeof(stack), 0);

	if (n <= 0)
		return RT_W_OTHER;
	for (int i = 0; i < STACK_DEPTH; i++) {
		if (i * 8 >= n)
			break;
		for (int j = 0; j < RT_STACK_RANGES; j++) {
			if (!cfg.stack_ranges[j].start)
				break;
			if (stack[i] >= cfg.stack_ranges[j].start && stack[i] < cfg.stack_ranges[j].end)
				return cfg.stack_ranges[j].reason;
		}
	}
	return RT_W_OTHER;
}

/*
 * Blind CPU time. Some kernels run no BPF program while certain tasks are
 * current (this host's 6.18 build hides its init process, PID 1, and all its
 * threads): not the sched_switch out of them, nor a softirq that runs on
 * their time (a qdisc dequeue, a veth xmit, a TX completion). Every event
 * there is lost without a trace: no recursion miss, no ring buffer loss.
 * The switch into such a task is seen (it runs on the previous task's time),
 * so a CPU whose next seen switch leaves another task than the one last
 * switched in ran a hidden task in between: RT_BLIND reports that window.
 */
struct cpu_task {
	__u64 task; /* struct task_struct * last switched in */
	__u64 ts;
	__u32 tid;
	__u32 tgid;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cpu_task);
} cpu_tasks SEC(".maps");

static __always_inline void blind_check(struct task_struct *prev, struct task_struct *next)
{
	__u32 zero = 0, ptid = BPF_CORE_READ(prev, pid);
	struct cpu_task *ct = bpf_map_lookup_elem(&cpu_tasks, &zero);
	__u64 now = bpf_ktime_get_ns();
	struct rt_event *e;

	if (!ct)
		return;
	if (ct->ts && ct->tid != ptid) {
		struct task_struct *t = (struct task_struct *)ct->task;

		e = ev_reserve(RT_BLIND, RT_H_TRACEPOINT);
		if (e) {
			e->pid = ct->tgid;
			e->tid = ct->tid;
			e->ts = now; /* the window ends where the next one may begin */
			e->ts_lo = ct->ts;
			BPF_CORE_READ_STR_INTO(&e->comm, t, group_leader, comm); /* its process */
			ev_submit(e);
		}
	}
	ct->task = (__u64)next;
	ct->ts = now;
	ct->tid = BPF_CORE_READ(next, pid);
	ct->tgid = BPF_CORE_READ(next, tgid);
}

/*
 * A sender inside sendmsg either sleeps (blocked: RT_SLEEP, then RT_WAKE
 * from sched_waking) or waits for a CPU while runnable: preempted, or woken
 * and not yet running. That run-queue wait is one RT_WAKE with
 * a[1] = RT_W_PREEMPT and ts_lo = when it became runnable, emitted when the
 * task gets a CPU again: on a busy machine it is where the link idles.
 */
SEC("tp_btf/sched_switch")
int BPF_PROG(tp_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u32 tid = BPF_CORE_READ(prev, pid);
	struct call_state *c = bpf_map_lookup_elem(&calls, &tid);
	struct rt_event *e;
	__u32 reason;

	blind_check(prev, next);
	if (c && c->sk)
		flush_enter(c); /* current is prev */
	if (c && c->sk && !c->sleeping) {
		if (preempt || task_state(prev) == TASK_RUNNING) {
			c->runq_ts = bpf_ktime_get_ns(); /* still runnable */
		} else {
			reason = stack_reason(ctx);
			c->sleeping = 1;
			c->sleep_ts = bpf_ktime_get_ns();
			c->sleep_reason = reason;
			e = ev_reserve(RT_SLEEP, RT_H_TRACEPOINT); /* after bpf_get_stack: see emit_drop */
			if (e) {
				ev_sock(e, (struct sock *)c->sk, NULL);
				e->aux = reason;
				e->a[0] = c->flags;
				ev_submit(e);
			}
		}
	}
	tid = BPF_CORE_READ(next, pid);
	c = bpf_map_lookup_elem(&calls, &tid);
	if (!c || !c->sk || !c->runq_ts)
		return 0;
	e = ev_reserve(RT_WAKE, RT_H_TRACEPOINT);
	if (e) {
		ev_sock(e, (struct sock *)c->sk, NULL);
		/* current is still prev: the event is about next */
		e->pid = BPF_CORE_READ(next, tgid);
		e->tid = tid;
		BPF_CORE_READ_STR_INTO(&e->comm, next, comm);
		e->aux = RT_W_PREEMPT;
		e->a[0] = tid;
		e->a[1] = RT_W_PREEMPT;
		e->ts_lo = c->runq_ts;
		ev_submit(e);
	}
	c->runq_ts = 0;
	return 0;
}

SEC("tp_btf/sched_waking")
int BPF_PROG(tp_sched_waking, struct task_struct *p)
{
	__u32 tid = BPF_CORE_READ(p, pid);
	struct call_state *c = bpf_map_lookup_elem(&calls, &tid);
	struct rt_event *e;

	__u32 waker;

	if (!c || !c->sk || !c->sleeping)
		return 0;
	c->sleeping = 0;
	c->runq_ts = bpf_ktime_get_ns(); /* runnable from now on */
	waker = stack_reason(ctx); /* what the waker was doing */
	e = ev_reserve(RT_WAKE, RT_H_TRACEPOINT);
	if (!e)
		return 0;
	ev_sock(e, (struct sock *)c->sk, NULL);
	e->aux = waker;
	e->a[0] = tid; /* the woken sender */
	e->a[1] = c->sleep_reason;
	e->ts_lo = c->sleep_ts;
	ev_submit(e);
	return 0;
}
