// SPDX-License-Identifier: GPL-2.0
/*
 * ringtrace.bpf.c, part: the sendmsg call: enter and return, from syscall tracepoints (class C) or
 * packet_sendmsg (classes A and B).
 */

/* ------------------------------------------------------------------ */
/* sendmsg enter / return                                             */

/* ev_dev_of names sk's device in e. */
static __always_inline void ev_dev_of(struct rt_event *e, struct sock *sk, struct sock_state *ss)
{
	ev_dev(e, ss, BPF_CORE_READ((struct packet_sock *)sk, cached_dev));
	if (!e->ifindex)
		e->ifindex = BPF_CORE_READ((struct packet_sock *)sk, ifindex);
}

/* enter_event fills a call's RT_SENDMSG_ENTER but its scan. */
static __always_inline void enter_event(struct rt_event *e, struct sock *sk, struct sock_state *ss, __u32 flags,
					__u32 head)
{
	ev_sock(e, sk, ss);
	e->a[0] = flags;
	e->a[1] = head;
	e->a[2] = qdisc_bypass((struct packet_sock *)sk, cfg.direct_xmit_addr);
	e->frame = head;
	ev_dev_of(e, sk, ss);
}

/* held_scan is the entry scan of a call whose entry event was held: one
 * frame read, at head, neither SEND_REQUEST nor WRONG_FORMAT (none counted
 * with light scans). */
static __always_inline void held_scan(struct rt_scan *s, const struct call_state *c, __u32 nframes)
{
	s->head = c->head_entry;
	s->nframes = nframes;
	if (cfg.light_scans)
		return;
	s->scanned = 1;
	s->available = c->head_st == RT_ST_AVAILABLE;
	s->sending = c->head_st == RT_ST_SENDING;
}

/*
 * take_held reports whether the caller is the one to send c's held entry
 * event, and clears the hold: of a call's return and a switch away from
 * its CPU that preempted it, exactly one wins. Holds need bpf_loop (5.17+),
 * which implies cfg.claims (BPF cmpxchg, 5.12+): without claims no entry
 * is ever held, and the loader rewrites the unreachable cmpxchg.
 */
static __always_inline int take_held(struct call_state *c)
{
	if (!c->enter_held || !cfg.claims)
		return 0;
	return __sync_val_compare_and_swap(&c->enter_held, 1, 0) == 1;
}

/*
 * flush_enter sends the entry event of the current thread's call c now
 * (with its entry time) if it was held: the call is leaving its CPU, so
 * events of its own (a sleep) would otherwise come before its entry by
 * more than user space's reorder window.
 */
static __always_inline void flush_enter(struct call_state *c)
{
	__u64 key = c->sk;
	struct sock_state *ss;
	struct rt_event *e;

	if (!take_held(c))
		return;
	ss = bpf_map_lookup_elem(&socks, &key);
	e = ev_reserve(RT_SENDMSG_ENTER, c->hook);
	if (!e)
		return;
	enter_event(e, (struct sock *)key, ss, c->flags, c->head_entry);
	e->ts = c->ts_enter;
	held_scan(&e->scan, c, ss ? ss->n : 0);
	ev_submit(e);
}

/*
 * call_enter records a send call on sk. kept is the thread's calls entry
 * where cfg.calls_kept lets it outlive calls (NULL: none yet, or not kept),
 * fd what the syscall's fd resolved to (NULL from packet_sendmsg): ino is
 * the socket's inode when the caller read it already, else 0.
 */
static __always_inline void call_enter(struct sock *sk, __u64 ino, __u32 flags, __u8 hook, int use_loop,
				       struct call_state *kept, const struct call_fd *fd)
{
	struct sock_state *ss = sock_lookup_ino(sk, 1, ino);
	struct call_state c = {};
	struct rt_event *e;
	struct rt_scan s = {};
	struct ring r;
	__u32 tid = (__u32)bpf_get_current_pid_tgid(), head_st = 0xff;

	if (!ss || ring_of((struct packet_sock *)sk, ss, &r))
		return;
	ss->seq++;
	ss->last_ts = bpf_ktime_get_ns();
	if (cfg.light_scans) {
		s.head = r.head;
		s.nframes = r.n;
		head_st = frame_status(frame_addr(&r, r.head), r.off) & 7;
	} else if (use_loop) {
		/* The SEND_REQUEST run from head: the frames this call will
		 * take, never the whole ring. A sender polling a 16384-frame
		 * ring with empty calls must not pay for its size. */
		head_st = scan_ring_x(&r, &s, use_loop, 1);
	} else {
		scan_ring(&r, &s, use_loop); /* RT_BOUNDED_SCAN frames at most */
		ss->pending = s.sending; /* resynchronise the event-sourced count */
	}
	c.sk = (__u64)sk;
	c.ts_enter = ss->last_ts;
	c.seq = ss->seq;
	c.flags = flags;
	c.head_entry = r.head;
	c.run_entry = s.run_send_request;
	c.rollback_idx = RT_NO_FRAME;
	/* Light scans read no run at entry: one status read tells a call
	 * that took the whole ring (head back where it was) from one that
	 * took nothing. */
	c.head_req = head_st == RT_ST_SEND_REQUEST;
	c.hook = hook;
	/* A non-blocking call that finds no frame to send (a poll of the
	 * ring: the frame at head is not SEND_REQUEST, nor a WRONG_FORMAT one
	 * the scan would read past) is reported in one record at its return:
	 * its entry event would cost as much as the rest of its entry. */
	if (use_loop && cfg.claims && (flags & MSG_DONTWAIT) && (head_st == RT_ST_AVAILABLE || head_st == RT_ST_SENDING) &&
	    (cfg.events & (1u << RT_SENDMSG_CALL))) {
		c.enter_held = 1;
		c.head_st = head_st;
	}
	if (fd)
		c.fd = *fd;
	else if (kept)
		c.fd = kept->fd;
	if (kept) {
		/* In place: no bucket lock, no free list. sk last: a switch
		 * that preempts this program (see take_held) must find the
		 * entry idle or whole, never half written. */
		kept->sk = 0;
		c.sk = 0;
		barrier();
		*kept = c;
		barrier();
		kept->sk = (__u64)sk;
	} else if (bpf_map_update_elem(&calls, &tid, &c, BPF_ANY))
		count(&overflow, OVF_CALLS);
	if (c.enter_held)
		return;
	e = ev_reserve(RT_SENDMSG_ENTER, hook);
	if (!e)
		return;
	enter_event(e, sk, ss, flags, r.head);
	e->scan = s;
	ev_submit(e);
}

/*
 * pending_signal: the lowest signal pending for the current thread and not
 * blocked, 0 if none. Read as the call returns, before the kernel delivers
 * it: a blocking tpacket_snd whose sndbuf wait a signal interrupts returns
 * the bytes queued so far (a Go sender gets SIGURG from its runtime).
 */
static __always_inline __u8 pending_signal(int use_loop)
{
	__u64 set;
	__u8 n = 1;

	if (use_loop) {
		/* bpf_loop (5.17+) implies bpf_get_current_task_btf (5.11+):
		 * plain loads instead of five probe reads */
		struct task_struct *t = bpf_get_current_task_btf();

		set = (t->pending.signal.sig[0] | t->signal->shared_pending.signal.sig[0]) & ~t->blocked.sig[0];
	} else {
		struct task_struct *t = (struct task_struct *)bpf_get_current_task();

		set = BPF_CORE_READ(t, pending.signal.sig[0]) | BPF_CORE_READ(t, signal, shared_pending.signal.sig[0]);
		set &= ~BPF_CORE_READ(t, blocked.sig[0]);
	}
	if (!set)
		return 0;
	/* the lowest set bit, by halves */
	for (int k = 32; k; k >>= 1) {
		if (!(set & ((1ULL << k) - 1))) {
			n += k;
			set >>= k;
		}
	}
	return n;
}

static __always_inline void call_return(__s64 ret, __u8 hook, int use_loop)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct call_state *c = bpf_map_lookup_elem(&calls, &tid);
	struct sock_state *ss;
	struct rt_scan s = {};
	struct rt_event *e;
	struct sock *sk;
	struct ring r;
	__u32 taken, head_st;
	int held;

	if (!c || !c->sk)
		return;
	sk = (struct sock *)c->sk;
	ss = ss_of(sk, NULL);
	if (!ss || ring_of((struct packet_sock *)sk, ss, &r))
		goto out;
	/* A synchronous drop rolls its frame back to SEND_REQUEST. */
	if (c->rollback_idx < r.n) {
		__u64 ph = frame_addr(&r, c->rollback_idx);
		struct rt_frame *f;

		if ((frame_status(ph, r.off) & 7) == RT_ST_SEND_REQUEST) {
			f = frame_entry(ss, c->sk, c->rollback_idx, ph);
			if (f)
				set_state(ss, f, RT_ST_SEND_REQUEST);
			emit_frame(sk, ss, c->rollback_idx, 0, RT_ST_AVAILABLE, RT_ST_SEND_REQUEST, RT_BOUNDED, c->drop_ts,
				   RT_C_ROLLBACK, hook, NULL);
		}
	}
	/* The ring at the return (its frame at head decides what follows). */
	head_st = scan_ring_x(&r, &s, use_loop, 1);
	/* A frame tpacket_snd refused stops the ring at head. */
	if (head_st == RT_ST_WRONG_FORMAT) {
		struct rt_frame *f = frame_entry(ss, c->sk, r.head, frame_addr(&r, r.head));

		if (f && f->state != RT_ST_WRONG_FORMAT) {
			set_state(ss, f, RT_ST_WRONG_FORMAT);
			emit_frame(sk, ss, r.head, 0, RT_ST_SEND_REQUEST, RT_ST_WRONG_FORMAT, RT_BOUNDED, c->ts_enter,
				   RT_C_BAD_FRAME, hook, NULL);
		}
	}
	/* The frames this call took: how far head moved. */
	taken = r.head >= c->head_entry ? r.head - c->head_entry : r.head + r.n - c->head_entry;
	if (taken == 0 && (c->run_entry == r.n || c->head_req) && (head_st == RT_ST_SENDING || head_st == RT_ST_AVAILABLE))
		taken = r.n; /* the whole ring went round */
	if (use_loop && cfg.calls_only) {
		/* --detail calls: counted, not followed, frame by frame. After
		 * a MSG_DONTWAIT call (or a failed one) the frontier walk reads
		 * the frames that completed since the last walk and stops at
		 * the first still SENDING: O(frames this call took), however
		 * large the ring (budget twice that). */
		frontier_taken(sk, ss, taken, r.n);
		if (ret >= 0 && !(c->flags & MSG_DONTWAIT))
			/* A blocking tpacket_snd returns only once the socket
			 * has no frame in flight (its pending count read 0):
			 * all are done, nothing to read. */
			frontier_done(sk, ss, ss->taken_total);
		else
			frontier_walk(sk, ss, 2 * (taken > 16 ? taken : 16));
		frontier_pending(ss);
	} else if (taken > c->n_sent) {
		/* Frames this call took that no hook showed SENDING. */
		struct taken_ctx t = {};

		t.sk = sk;
		t.r = r;
		t.ts_enter = c->ts_enter;
		t.from = c->head_entry;
		t.count = taken;
		t.seq = c->seq;
		t.ino = (__u32)ss->ino;
		t.slots = ss->slots;
		t.hook = hook;
		if (use_loop) {
			bpf_loop(cfg.max_scan, taken_cb, &t, 0);
		} else {
			for (__u32 i = 0; i < BOUNDED_WALK; i++)
				if (taken_cb_body(i, &t))
					break;
		}
	}
	/*
	 * Its frames whose completion no hook reported: only those this call
	 * took, never the rest of the ring (the sweep re-reads those). Without
	 * bpf_loop the sweep finds them all. Not where the uarg's kfree reports
	 * completions: it comes after the status write and after the wake-up
	 * of a blocking sender, so a return often reads frames AVAILABLE whose
	 * completion event is a few hundred ns away; and a raw tracepoint
	 * skips no run but one nested in itself.
	 */
	if (use_loop && !cfg.light_scans && !cfg.calls_only && !(cfg.uarg_via_kfree && !cfg.complete_hooked) &&
	    ss->pending > 0 && taken > 0) {
		struct missed_ctx m = {};

		m.sk = sk;
		m.r = r;
		m.want = ss->pending;
		m.from = c->head_entry;
		m.count = taken;
		m.ino = (__u32)ss->ino;
		m.slots = ss->slots;
		m.hook = hook;
		bpf_loop(cfg.max_scan, missed_cb, &m, 0);
	}
	held = take_held(c);
	e = ev_reserve(held ? RT_SENDMSG_CALL : RT_SENDMSG_RETURN, hook);
	if (e && held) {
		e->ts_lo = c->ts_enter;
		e->skb = c->flags | (__u64)c->head_entry << 32;
		e->old_state = c->head_st;
		e->new_state = !cfg.light_scans; /* the frames its entry scan read */
		e->prec = qdisc_bypass((struct packet_sock *)sk, cfg.direct_xmit_addr);
		ev_dev_of(e, sk, ss);
	}
	if (e) {
		ev_sock(e, sk, ss);
		if (!use_loop && !cfg.light_scans)
			e->pending = s.sending;
		e->a[0] = (__u64)ret;
		e->a[1] = r.head;
		e->a[2] = c->ts_enter;
		e->scan = s;
		e->frame = r.head;
		e->n = c->n_sent > taken ? c->n_sent : taken;
		e->aux = (c->flags & MSG_DONTWAIT ? 1 : 0) | pending_signal(use_loop) << 1;
		ev_submit(e);
	}
out:
	if (cfg.calls_kept)
		c->sk = 0; /* idle until the thread's next call, or its exit */
	else
		bpf_map_delete_elem(&calls, &tid);
}

/* ------------------------------------------------------------------ */
/* class C: syscall tracepoints                                       */

struct sys_enter_args {
	__u64 common;
	__s32 nr;
	__s32 pad;
	__u64 args[6];
};

struct sys_exit_args {
	__u64 common;
	__s32 nr;
	__s32 pad;
	__s64 ret;
};

/* fd_file: the file open at the current thread's fd, or NULL. */
static __always_inline struct file *fd_file(int fd, int use_loop)
{
	struct file **fda, *f = NULL;

	if (fd < 0)
		return NULL;
	if (use_loop) {
		/* bpf_get_current_task_btf (5.11+, bpf_loop is 5.17+): the
		 * walk to the fd array is plain loads, not probe reads */
		struct task_struct *t = bpf_get_current_task_btf();
		struct files_struct *files = t->files;
		struct fdtable *fdt;

		if (!files)
			return NULL;
		fdt = files->fdt;
		if (!fdt || (unsigned int)fd >= fdt->max_fds)
			return NULL;
		fda = fdt->fd;
	} else {
		struct task_struct *t = (void *)bpf_get_current_task();
		struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);

		if (!fdt || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
			return NULL;
		fda = BPF_CORE_READ(fdt, fd);
	}
	bpf_probe_read_kernel(&f, sizeof(f), &fda[fd]);
	return f;
}

/* file_inode_flags reads f's inode and flags: in one read where the flags
 * follow the inode pointer (struct file since 6.12). */
static __always_inline struct inode *file_inode_flags(struct file *f, __u32 *flags)
{
	__u32 oi = bpf_core_field_offset(f->f_inode), of = bpf_core_field_offset(f->f_flags);
	struct {
		__u64 inode;
		__u32 flags;
		__u32 pad;
	} b = {};

	if (of == oi + 8 && bpf_core_field_size(f->f_flags) == 4) {
		bpf_probe_read_kernel(&b, 12, (void *)f + oi);
		*flags = b.flags;
		return (struct inode *)b.inode;
	}
	*flags = BPF_CORE_READ(f, f_flags);
	return BPF_CORE_READ(f, f_inode);
}

/*
 * fd_sock: the TX-ring socket open at fd, or NULL; *dontwait gets
 * MSG_DONTWAIT if its file is O_NONBLOCK (the syscall adds it to the flags
 * packet_sendmsg sees). out gets what fd resolved to. A call on the file
 * cache resolved last time (the same file, still open: its inode number is
 * the same) skips the walk from the file to its socket and the socket's
 * checks.
 */
static __always_inline struct sock *fd_sock(int fd, __u32 *dontwait, const struct call_fd *cache, struct call_fd *out,
					    int use_loop)
{
	struct file *f = fd_file(fd, use_loop);
	struct inode *inode;
	struct socket *so;
	struct sock *sk;
	__u32 fflags;
	__u64 ino;

	if (!f)
		return NULL;
	inode = file_inode_flags(f, &fflags);
	ino = BPF_CORE_READ(inode, i_ino);
	if (cache && ino && cache->file == (__u64)f && cache->num == fd && cache->ino == ino) {
		sk = (struct sock *)cache->sk;
	} else {
		if ((BPF_CORE_READ(inode, i_mode) & S_IFMT) != S_IFSOCK)
			return NULL;
		so = BPF_CORE_READ(f, private_data);
		sk = BPF_CORE_READ(so, sk);
		if (!is_tx_ring_sock(sk))
			return NULL;
	}
	*dontwait = fflags & O_NONBLOCK ? MSG_DONTWAIT : 0;
	out->file = (__u64)f;
	out->sk = (__u64)sk;
	out->ino = ino;
	out->num = fd;
	return sk;
}

/*
 * send_flags: the flags argument of the send syscall at ctx. sendmsg(fd,
 * msg, flags) has it in args[2]; sendto(fd, buf, len, flags, ...) and
 * sendmmsg(fd, vec, vlen, flags) in args[3]. A plain load of args[3] would
 * make the program read past sys_enter_sendmsg's shorter record, and the
 * kernel would refuse to attach it there: args[3] is probe-read, and only
 * for the calls whose record has it.
 */
static __always_inline __u32 send_flags(struct sys_enter_args *ctx)
{
	__u64 flags = ctx->args[2]; /* in every record: a plain load */

	if (ctx->nr != cfg.sendmsg_nr)
		bpf_probe_read_kernel(&flags, sizeof(flags), &ctx->args[3]);
	return (__u32)flags;
}

static __always_inline void sys_enter(struct sys_enter_args *ctx, int use_loop)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct call_state *kept = NULL;
	struct call_fd fd = {};
	__u32 dontwait = 0;
	struct sock *sk;

	if (!cfg.calls_via_syscalls)
		return;
	if (cfg.calls_kept)
		kept = bpf_map_lookup_elem(&calls, &tid);
	sk = fd_sock((int)ctx->args[0], &dontwait, kept ? &kept->fd : NULL, &fd, use_loop);
	if (sk)
		call_enter(sk, fd.ino, send_flags(ctx) | dontwait, RT_H_TRACEPOINT, use_loop, kept, &fd);
}

/*
 * The send syscalls' entry and exit: one program each, attached to
 * sendto, sendmsg and sendmmsg, so each is verified once. They are the
 * largest programs of all (tens of thousands of instructions to verify,
 * most of the start-up).
 */
#define SYSCALL_ENTER(variant, use_loop)                                        \
	SEC("tracepoint/syscalls/sys_enter_sendto")                              \
	int sys_enter_send_##variant(struct sys_enter_args *ctx)                 \
	{                                                                        \
		sys_enter(ctx, use_loop);                                        \
		return 0;                                                        \
	}

#define SYSCALL_EXIT(variant, use_loop)                                         \
	SEC("tracepoint/syscalls/sys_exit_sendto")                               \
	int sys_exit_send_##variant(struct sys_exit_args *ctx)                   \
	{                                                                        \
		if (cfg.calls_via_syscalls)                                      \
			call_return(ctx->ret, RT_H_TRACEPOINT, use_loop);       \
		return 0;                                                        \
	}

SYSCALL_ENTER(loop, 1)
SYSCALL_ENTER(bounded, 0)
SYSCALL_EXIT(loop, 1)
SYSCALL_EXIT(bounded, 0)

/* ------------------------------------------------------------------ */
/* class A / B: packet_sendmsg                                        */

static __always_inline void sendmsg_enter(struct socket *sock, struct msghdr *msg, __u8 hook, int use_loop)
{
	struct sock *sk = BPF_CORE_READ(sock, sk);
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct call_state *kept = NULL;

	if (!is_tx_ring_sock(sk))
		return;
	if (cfg.calls_kept)
		kept = bpf_map_lookup_elem(&calls, &tid);
	call_enter(sk, 0, BPF_CORE_READ(msg, msg_flags), hook, use_loop, kept, NULL);
}

SEC("fentry/packet_sendmsg")
int BPF_PROG(fentry_packet_sendmsg_loop, struct socket *sock, struct msghdr *msg, __u64 len)
{
	sendmsg_enter(sock, msg, RT_H_FENTRY, 1);
	return 0;
}

SEC("fexit/packet_sendmsg")
int BPF_PROG(fexit_packet_sendmsg_loop, struct socket *sock, struct msghdr *msg, __u64 len, int ret)
{
	call_return(ret, RT_H_FENTRY, 1);
	return 0;
}

SEC("fentry/packet_sendmsg")
int BPF_PROG(fentry_packet_sendmsg_bounded, struct socket *sock, struct msghdr *msg, __u64 len)
{
	sendmsg_enter(sock, msg, RT_H_FENTRY, 0);
	return 0;
}

SEC("fexit/packet_sendmsg")
int BPF_PROG(fexit_packet_sendmsg_bounded, struct socket *sock, struct msghdr *msg, __u64 len, int ret)
{
	call_return(ret, RT_H_FENTRY, 0);
	return 0;
}

SEC("kprobe/packet_sendmsg")
int BPF_KPROBE(kprobe_packet_sendmsg_loop, struct socket *sock, struct msghdr *msg)
{
	sendmsg_enter(sock, msg, RT_H_KPROBE, 1);
	return 0;
}

SEC("kretprobe/packet_sendmsg")
int BPF_KRETPROBE(kretprobe_packet_sendmsg_loop, int ret)
{
	call_return(ret, RT_H_KPROBE, 1);
	return 0;
}

SEC("kprobe/packet_sendmsg")
int BPF_KPROBE(kprobe_packet_sendmsg_bounded, struct socket *sock, struct msghdr *msg)
{
	sendmsg_enter(sock, msg, RT_H_KPROBE, 0);
	return 0;
}

SEC("kretprobe/packet_sendmsg")
int BPF_KRETPROBE(kretprobe_packet_sendmsg_bounded, int ret)
{
	call_return(ret, RT_H_KPROBE, 0);
	return 0;
}

/* ------------------------------------------------------------------ */
/* --detail calls: a socket's close                                   */

/*
 * The frames that completed after a socket's last call and before its
 * close (a sender that drains its ring, then closes) are read at the
 * close, while the ring is still there: the sweep may come too late.
 * Every close() in the system runs this; it ends at the fd lookup unless
 * the fd is a TX-ring socket being traced.
 */
SEC("tracepoint/syscalls/sys_enter_close")
int sys_enter_close_loop(struct sys_enter_args *ctx)
{
	struct sock_state *ss;
	struct sock *sk;
	struct call_fd fd;
	__u32 dontwait;
	__u64 key;

	if (!cfg.calls_only)
		return 0;
	sk = fd_sock((int)ctx->args[0], &dontwait, NULL, &fd, 1);
	if (!sk)
		return 0;
	key = (__u64)sk;
	ss = bpf_map_lookup_elem(&socks, &key);
	if (ss && ss->tracked)
		frontier_walk(sk, ss, ss->n);
	return 0;
}

/* ------------------------------------------------------------------ */
/* a thread's exit                                                    */

/* With cfg.calls_kept a thread's calls entry lives until the thread does. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(tp_thread_exit)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	if (cfg.calls_kept)
		bpf_map_delete_elem(&calls, &tid);
	return 0;
}
