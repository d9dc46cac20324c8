// SPDX-License-Identifier: GPL-2.0
/*
 * ringtrace.bpf.c, part: the sweep: re-reading frames no event completed, socket close detection, and
 * digging out closed sockets' entries.
 */

/* ------------------------------------------------------------------ */
/* sweep: re-read frames no event completed                           */

/*
 * sweep_frame re-reads one frame the frames map holds as SENDING. A frame
 * whose status now reads AVAILABLE completed without any hook seeing it (an
 * orphan with no tracepoint, a uarg completion by page copy, a kprobe the
 * kernel skipped): emit it, bounded by the last time it was seen SENDING. A
 * socket whose ring is gone is reported once.
 */
static __always_inline void sweep_frame(const struct rt_frame_key *k, struct rt_frame *f)
{
	struct sock_state *ss;
	struct ring r;

	if (f->state != RT_ST_SENDING)
		return;
	ss = bpf_map_lookup_elem(&socks, &k->sk);
	if (!ss)
		return;
	if (read_ring((struct packet_sock *)k->sk, &r) || r.pg_vec != ss->pg_vec) {
		/* The ring is gone (the socket closed) or was re-created. A uarg
		 * kernel keeps the old ring's pages until its frames complete:
		 * read the status there, at the offset the ring had. A
		 * destructor kernel freed them: sock_gone abandons the frames. */
		if (!cfg.uarg_form || !ss->n)
			return;
		r.off = ss->off;
	}
	if ((frame_status(f->ph, r.off) & 7) == RT_ST_AVAILABLE) {
		/* Where the uarg's kfree is the completion hook, it fires a few
		 * instructions after the status write: a sweep on another CPU
		 * can read AVAILABLE in between and would report, bounded, a
		 * completion the exact hook is about to see. Such a frame is
		 * left to that hook for one sweep interval; the next run
		 * reports it if no hook did (user space sweeps twice at the
		 * end). */
		if (cfg.uarg_via_kfree && !f->avail_swept) {
			f->avail_swept = 1;
			return;
		}
		to_available((struct sock *)k->sk, ss, k->idx, f->ph, 0, RT_BOUNDED, f->ts_seen, RT_C_SCAN, RT_H_SWEEP, 0,
			     NULL);
	} else {
		f->ts_seen = bpf_ktime_get_ns();
	}
}

/*
 * sweep_loop, run by user space through BPF_PROG_TEST_RUN (which runs it with
 * preemption off), finds the SENDING frames itself. User space must not read
 * the frames map to find them: while a map syscall runs the kernel runs no
 * kprobe program on that CPU, and a reader preempted there blinds every
 * kprobe on it until it runs again. It walks the sockets, and the frames of
 * only those with entries in SENDING, by index: walking the frames map
 * visits all its buckets (65536 by default), ~1 ms a run even when idle.
 * Returns how many frames were SENDING.
 */
struct sweep_walk {
	__u64 sk;
	__u64 slots;
	__u32 ino;
	__s32 want; /* SENDING entries still to visit */
	__u32 sending;
	__u32 start; /* the ring's first index this walk reads */
	__u32 n; /* the ring's frames */
};

/*
 * The sweep's budget: frame entries one run looks up per socket (each
 * lookup ~40 ns). A walk that runs out resumes where it stopped at the
 * next run, so a SENDING frame deep in a 65536-frame ring is still
 * re-read, a few runs later, and no run holds its CPU (preemption off)
 * for milliseconds per ring. (A budget for the whole run, kept across
 * sockets, made the verifier walk every value it took: 700 k
 * instructions instead of 15 k.)
 */
#define SWEEP_SOCK_BUDGET 8192

static long sweep_idx(__u32 i, struct sweep_walk *w)
{
	struct rt_frame_key k = { .sk = w->sk, .ino = w->ino };
	struct rt_frame *f;

	if (w->want <= 0 || i >= w->n)
		return 1;
	k.idx = w->start + i;
	if (k.idx >= w->n)
		k.idx -= w->n;
	f = frame_find(w->slots, &k);
	/* Entries of an earlier socket at this address are not counted. */
	if (!f || f->state != RT_ST_SENDING || f->sock_ino != w->ino)
		return 0;
	w->want--;
	w->sending++;
	sweep_frame(&k, f);
	return 0;
}

/* gc_idx deletes (frees, in a slot range) one frame entry of a socket that
 * is gone. */
struct gc_ctx {
	__u64 sk;
	__u64 slots;
	__u32 ino;
};

static long gc_idx(__u32 i, struct gc_ctx *g)
{
	struct rt_frame_key k = { .sk = g->sk, .idx = i, .ino = g->ino };
	struct rt_frame *f = frame_find(g->slots, &k);
	struct ph_state *ps;
	__u64 ph;

	if (!f)
		return 0;
	ph = f->ph;
	ps = bpf_map_lookup_elem(&ph2idx, &ph);
	if (ps && ps->sk == g->sk && ps->ino == g->ino)
		bpf_map_delete_elem(&ph2idx, &ph);
	if (in_slots(g->slots, i))
		f->sock_ino = 0;
	else
		bpf_map_delete_elem(&frames, &k);
	return 0;
}

/*
 * gc_call forgets a sendmsg call whose socket is gone: its thread never
 * returned (killed inside the call, or the exit tracepoint skipped). A kept
 * entry (cfg.calls_kept) is only marked idle, and only if its thread has not
 * started another call meanwhile: deleting it could free it under the
 * thread's next call entry, which writes it in place.
 */
static long gc_call(void *map, const __u32 *tid, struct call_state *c, void *unused)
{
	__u64 sk = c->sk;

	if (!sk || bpf_map_lookup_elem(&socks, &sk))
		return 0;
	if (cfg.calls_kept)
		__sync_val_compare_and_swap(&c->sk, sk, 0);
	else
		bpf_map_delete_elem(map, tid);
	return 0;
}

/*
 * sock_closed: the socket at sk is not the one ss tracks any more: it was
 * closed (sock_orphan() cleared sk_socket; its memory may even hold another
 * socket by now). A uarg kernel still completes the frames that were in
 * flight (the uarg holds the socket, the ring's pages outlive it): wait for
 * them. A destructor kernel freed the ring at close: they never complete.
 */
static __always_inline int sock_closed(__u64 sk, struct sock_state *ss)
{
	if (ss->ino && sock_ino((struct sock *)sk) == ss->ino)
		return 0;
	if (!ss->gone_ts)
		ss->gone_ts = bpf_ktime_get_ns();
	return 1;
}

/*
 * sock_gone ends a closed socket's timeline (RT_SOCK_GONE, gone_event) and
 * forgets it; its frame entries are buried for the sweep to delete.
 */
static __always_inline void sock_gone(__u64 sk, struct sock_state *ss)
{
	struct rt_event *e;

	if (ss->tracked) {
		e = ev_reserve(RT_SOCK_GONE, RT_H_SWEEP);
		if (e) {
			gone_event(e, sk, ss);
			e->pid = ss->pid;
			e->tid = 0;
			e->comm[0] = 0;
			ev_submit(e);
		}
	}
	bury(sk, ss);
	bpf_map_delete_elem(&socks, &sk);
}

/* dig deletes a buried socket's frame entries, then returns its slot
 * range. */
static long dig(void *map, const struct rt_agg_key *k, struct rt_grave *gr, void *unused)
{
	struct gc_ctx g = { .sk = k->sk, .slots = gr->slots, .ino = (__u32)k->ino };

	bpf_loop(gr->n, gc_idx, &g, 0);
	slots_free(gr->slots);
	bpf_map_delete_elem(map, k);
	return 0;
}

static long sweep_sock(void *map, const __u64 *sk, struct sock_state *ss, struct sweep_walk *w)
{
	__s64 iters, done;
	__u32 pos;

	if (sock_closed(*sk, ss) && (!cfg.uarg_form || ss->map_sending <= 0 || !ss->tracked)) {
		sock_gone(*sk, ss);
		return 0;
	}
	if (cfg.calls_only) {
		if (ss->tracked)
			frontier_walk((struct sock *)*sk, ss, SWEEP_SOCK_BUDGET);
		return 0;
	}
	if (!ss->tracked || ss->map_sending <= 0 || !ss->n)
		return 0;
	w->sk = *sk;
	w->slots = ss->slots;
	w->ino = (__u32)ss->ino;
	w->want = ss->map_sending;
	w->n = ss->n;
	w->start = ss->sweep_pos < ss->n ? ss->sweep_pos : 0;
	/* The budget bounds the iterations up front: counters the callback
	 * decremented would make the verifier walk each of their values. */
	iters = ss->n;
	if (iters > SWEEP_SOCK_BUDGET)
		iters = SWEEP_SOCK_BUDGET;
	done = bpf_loop(iters, sweep_idx, w, 0);
	/* Out of budget before every SENDING entry was seen: resume after
	 * the last frame read. Else start at the ring's first frame again. */
	pos = 0;
	if (w->want > 0 && done >= iters && iters < ss->n) {
		pos = w->start + (__u32)iters;
		if (pos >= ss->n)
			pos -= ss->n;
	}
	ss->sweep_pos = pos;
	return 0;
}

SEC("raw_tp")
int sweep_loop(void *ctx)
{
	struct sweep_walk w = {};
	__u64 gone;

	bpf_for_each_map_elem(&socks, sweep_sock, &w, 0);
	/* Graves and calls left by a socket exist only once one went: a
	 * socket found gone in the walk above is cleaned up after now. */
	gone = gone_count;
	if (gone != gone_cleaned) {
		gone_cleaned = gone;
		bpf_for_each_map_elem(&graves, dig, NULL, 0);
		bpf_for_each_map_elem(&calls, gc_call, NULL, 0);
	}
	return w.sending;
}

/*
 * Kernels without bpf_loop (before 5.17) may lack bpf_for_each_map_elem
 * (5.13) too: there user space names the SENDING frames in sweep_req and
 * sweep_bounded re-reads them; or it names sockets (RT_SWEEP_SOCKS), and
 * those closed are ended (user space deletes the buried frame entries).
 */
static __always_inline long sweep_one(__u32 i, struct rt_sweep *req)
{
	struct rt_frame_key k;
	struct rt_frame *f;

	if (i >= req->n || i >= RT_SWEEP_BATCH)
		return 1;
	/* Hide i from clang so the mask survives: it shows the verifier the
	 * bound that the comparison above only implies. */
	asm volatile("" : "+r"(i));
	k = req->keys[i & (RT_SWEEP_BATCH - 1)];
	if (req->kind == RT_SWEEP_SOCKS) {
		struct sock_state *ss = bpf_map_lookup_elem(&socks, &k.sk);

		if (ss && ss->ino == k.ino && sock_closed(k.sk, ss) &&
		    (!cfg.uarg_form || ss->map_sending <= 0 || !ss->tracked))
			sock_gone(k.sk, ss);
		return 0;
	}
	f = frame_find(sk_slots(k.sk), &k);
	if (f)
		sweep_frame(&k, f);
	return 0;
}

/* Without bpf_loop the verifier walks every iteration: user space sends
 * RT_SWEEP_BOUNDED frames per run. */

SEC("raw_tp")
int sweep_bounded(void *ctx)
{
	__u32 zero = 0;
	struct rt_sweep *req = bpf_map_lookup_elem(&sweep_req, &zero);

	if (!req)
		return 0;
	for (__u32 i = 0; i < RT_SWEEP_BOUNDED; i++)
		if (sweep_one(i, req))
			break;
	return 0;
}
