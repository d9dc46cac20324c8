/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Minimal kernel type definitions for ringtrace's CO-RE programs.
 *
 * Only the members ringtrace reads are declared. Every struct carries
 * preserve_access_index, so offsets are relocated by member *name* against
 * the running kernel's BTF at load time: the order and the omitted members
 * here do not matter, the names and the kinds of the members do. Anonymous
 * unions in the kernel (e.g. sk_buff.destructor, skb_shared_info
 * .destructor_arg) are found by name through the relocation.
 *
 * Members that differ between kernel versions have "___flavour" variants in
 * core_fixes.bpf.h; keep this file to what exists on every kernel we support.
 */
#ifndef __RINGTRACE_VMLINUX_H__
#define __RINGTRACE_VMLINUX_H__
/* Tell bpf_tracing.h to use the kernel's pt_regs member names. */
#define __VMLINUX_H__

typedef signed char __s8;
typedef unsigned char __u8;
typedef short __s16;
typedef unsigned short __u16;
typedef int __s32;
typedef unsigned int __u32;
typedef long long __s64;
typedef unsigned long long __u64;
typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef __s32 s32;
typedef __s64 s64;
typedef _Bool bool;
enum { false = 0, true = 1 };
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef unsigned short umode_t;
typedef int pid_t;

enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_HASH = 5,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_QUEUE = 22,
	BPF_MAP_TYPE_RINGBUF = 27,
};

enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
	BPF_EXIST = 2,
};

enum {
	BPF_RB_NO_WAKEUP = 1,
	BPF_RB_FORCE_WAKEUP = 2,
};

enum {
	BPF_RB_AVAIL_DATA = 0,
	BPF_RB_RING_SIZE = 1,
	BPF_RB_CONS_POS = 2,
	BPF_RB_PROD_POS = 3,
};

typedef struct {
	int counter;
} atomic_t;

typedef struct {
	atomic_t refs;
} refcount_t;

/* pt_regs of the architecture the object is built for (bpf2go -target
 * defines __TARGET_ARCH_*): what bpf_tracing.h's PT_REGS_* macros read in
 * kprobes, and the syscall arguments of the kprobes' syscall wrappers. */
#if defined(__TARGET_ARCH_arm64)
struct user_pt_regs {
	__u64 regs[31];
	__u64 sp;
	__u64 pc;
	__u64 pstate;
};

struct pt_regs {
	union {
		struct user_pt_regs user_regs;
		struct {
			__u64 regs[31];
			__u64 sp;
			__u64 pc;
			__u64 pstate;
		};
	};
	__u64 orig_x0;
} __attribute__((preserve_access_index));
#else
struct pt_regs {
	long unsigned int r15;
	long unsigned int r14;
	long unsigned int r13;
	long unsigned int r12;
	long unsigned int bp;
	long unsigned int bx;
	long unsigned int r11;
	long unsigned int r10;
	long unsigned int r9;
	long unsigned int r8;
	long unsigned int ax;
	long unsigned int cx;
	long unsigned int dx;
	long unsigned int si;
	long unsigned int di;
	long unsigned int orig_ax;
	long unsigned int ip;
	long unsigned int cs;
	long unsigned int flags;
	long unsigned int sp;
	long unsigned int ss;
};
#endif

struct net_device {
	char name[16];
	int ifindex;
} __attribute__((preserve_access_index));

struct sock_common {
	unsigned short skc_family;
} __attribute__((preserve_access_index));

struct socket;
struct sk_buff;

struct sk_buff_head {
	struct sk_buff *next;
	__u32 qlen;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
	struct sk_buff_head sk_receive_queue;
	refcount_t sk_wmem_alloc;
	int sk_sndbuf;
	long sk_sndtimeo;
	struct socket *sk_socket;
} __attribute__((preserve_access_index));

struct file;

struct socket {
	struct sock *sk;
	struct file *file;
} __attribute__((preserve_access_index));

struct inode {
	umode_t i_mode;
	unsigned long i_ino;
} __attribute__((preserve_access_index));

struct file {
	struct inode *f_inode;
	void *private_data;
	unsigned int f_flags;
} __attribute__((preserve_access_index));

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
} __attribute__((preserve_access_index));

struct files_struct {
	struct fdtable *fdt;
} __attribute__((preserve_access_index));

struct list_head {
	struct list_head *next, *prev;
};

typedef struct {
	unsigned long sig[1];
} sigset_t;

struct sigpending {
	struct list_head list;
	sigset_t signal;
} __attribute__((preserve_access_index));

struct signal_struct {
	struct sigpending shared_pending;
} __attribute__((preserve_access_index));

struct task_struct {
	pid_t pid;
	pid_t tgid;
	char comm[16];
	struct files_struct *files;
	struct task_struct *group_leader;
	struct signal_struct *signal;
	sigset_t blocked;
	struct sigpending pending;
} __attribute__((preserve_access_index));

struct pgv {
	char *buffer;
} __attribute__((preserve_access_index));

struct packet_ring_buffer {
	struct pgv *pg_vec;
	unsigned int head;
	unsigned int frames_per_block;
	unsigned int frame_size;
	unsigned int frame_max;
	unsigned int pg_vec_order;
	unsigned int pg_vec_pages;
	unsigned int pg_vec_len;
} __attribute__((preserve_access_index));

enum tpacket_versions {
	TPACKET_V1 = 0,
	TPACKET_V2 = 1,
	TPACKET_V3 = 2,
};

struct packet_sock {
	struct sock sk;
	struct packet_ring_buffer tx_ring;
	int ifindex;
	enum tpacket_versions tp_version;
	unsigned int tp_hdrlen;
	struct net_device *cached_dev;
	__be16 num;
} __attribute__((preserve_access_index));

struct skb_shared_info {
	__u8 flags;
	__u8 tx_flags;
	void *destructor_arg;
} __attribute__((preserve_access_index));

struct sk_buff {
	struct sk_buff *next;
	struct net_device *dev;
	struct sock *sk;
	void (*destructor)(struct sk_buff *);
	unsigned int len;
	unsigned int end; /* sk_buff_data_t: an offset on 64-bit */
	unsigned char *head;
	int skb_iif; /* the device it arrived on: 0 until a receive path set it */
} __attribute__((preserve_access_index));

struct qdisc_skb_head {
	__u32 qlen;
} __attribute__((preserve_access_index));

struct gnet_stats_queue {
	__u32 qlen;
	__u32 backlog;
	__u32 drops;
} __attribute__((preserve_access_index));

struct Qdisc {
	u32 handle;
	u32 parent;
	struct qdisc_skb_head q;
	struct gnet_stats_queue qstats;
} __attribute__((preserve_access_index));

struct netdev_queue;

struct napi_struct {
	struct net_device *dev;
} __attribute__((preserve_access_index));

struct msghdr {
	unsigned int msg_flags;
} __attribute__((preserve_access_index));

struct ubuf_info {
	refcount_t refcnt;
	u8 flags;
} __attribute__((preserve_access_index));

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

#endif /* __RINGTRACE_VMLINUX_H__ */
