// SPDX-License-Identifier: GPL-2.0
/*
 * ringtrace: follow AF_PACKET PACKET_TX_RING frames through
 * SEND_REQUEST -> SENDING -> AVAILABLE on any kernel, with whatever hooks it
 * allows. Every program below feeds the same handlers; the Go loader keeps
 * the programs of the attach plan it chose and deletes the rest before load:
 *
 *   class A (fentry/fexit), class B (kprobe/kretprobe): packet_sendmsg,
 *     tpacket_destruct_skb, __dev_queue_xmit / packet_xmit / __dev_direct_xmit,
 *     sock_alloc_send_pskb, __packet_set_status where it is still a symbol;
 *   class C (tracepoints only): syscall tracepoints for sendmsg enter/return
 *     plus ring status scans, net_dev_queue for SENDING, skb tracepoints and
 *     status reads for AVAILABLE, and a user-triggered sweep of frames whose
 *     completion no tracepoint shows;
 *   all classes: qdisc, driver, sched, softirq and napi tracepoints.
 *
 * Programs that scan the ring come in two variants: "_loop" (bpf_loop, 5.17+)
 * and "_bounded" (a capped bounded loop for older kernels).
 *
 * One object, split by concern into the parts in bpf/ringtrace/, included in
 * order (each part uses what the parts before it define):
 *   state.bpf.h        configuration, bpf2go anchors, maps and the state they hold
 *   output.bpf.h       struct rt_event: reserve, fill, submit; loss counters
 *   ring.bpf.h         TX ring geometry, frame addresses and statuses, frame index
 *   slots.bpf.h        where a frame's entry lives: a socket's range of an array, or a hash
 *   socks.bpf.h        which sockets are traced, their state, the call in progress
 *   frames.bpf.h       SEND_REQUEST -> SENDING -> AVAILABLE, each claimed once
 *   frontier.bpf.h     --detail calls: frames counted by ring head and a completion frontier
 *   ring_skb.bpf.h     recognising a ring skb (destructor or uarg form) and its frame
 *   scan.bpf.h         ring status scans
 *   send.bpf.h         sendmsg enter / return (syscall tracepoints, packet_sendmsg)
 *   sending.bpf.h      frame -> SENDING: xmit, net_dev_queue, sndbuf wait, set_status
 *   completion.bpf.h   frame -> AVAILABLE: destructor, uarg (kfree), skb frees, drops
 *   qdisc.bpf.h        qdisc, driver and receive events
 *   sched.bpf.h        the sender's sleeps and wake-ups
 *   softirq.bpf.h      NET_RX / NET_TX softirq spans and napi polls
 *   sweep.bpf.h        re-reading frames no event completed; closed sockets
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "core_fixes.bpf.h"
#include "ringtrace.h"

#include "ringtrace/state.bpf.h"
#include "ringtrace/output.bpf.h"
#include "ringtrace/ring.bpf.h"
#include "ringtrace/slots.bpf.h"
#include "ringtrace/socks.bpf.h"
#include "ringtrace/frames.bpf.h"
#include "ringtrace/frontier.bpf.h"
#include "ringtrace/ring_skb.bpf.h"
#include "ringtrace/scan.bpf.h"
#include "ringtrace/send.bpf.h"
#include "ringtrace/sending.bpf.h"
#include "ringtrace/completion.bpf.h"
#include "ringtrace/qdisc.bpf.h"
#include "ringtrace/sched.bpf.h"
#include "ringtrace/softirq.bpf.h"
#include "ringtrace/sweep.bpf.h"
