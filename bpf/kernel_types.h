/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The few kernel types the BPF program reads, declared for CO-RE: libbpf relocates each field
 * access against the running kernel's BTF (/sys/kernel/btf/vmlinux) at load time, so only the
 * fields we use are named and their order and offsets here do not matter. Vendoring this subset
 * instead of a generated vmlinux.h keeps the build independent of the build host's kernel and
 * the repository free of a 3 MB generated file (see docs/ARCHITECTURE.md).
 */
#ifndef PROFQ_KERNEL_TYPES_H
#define PROFQ_KERNEL_TYPES_H

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

/* Since Linux 6.2 each RSS counter is a percpu_counter; count is what the kernel reads too
 * (get_mm_counter), up to the per-CPU batches not yet folded in. */
struct percpu_counter {
	__s64 count;
};

struct task_struct;

struct mm_struct {
	struct task_struct *owner; /* CONFIG_MEMCG: the task the mm is charged to */
	unsigned long hiwater_rss; /* pages */
	struct percpu_counter rss_stat[4];
	unsigned long start_stack;
	unsigned long arg_start;
	unsigned long arg_end;
};

/* mm->flags: a word before Linux 6.18, a one-word bitmap (mm_flags_t) since. Either way the
 * dumpable bits are the lowest two of the first word. */
struct mm_struct___flags_word {
	unsigned long flags;
};

struct mm_flags___bitmap {
	unsigned long __mm_flags[1];
};

struct mm_struct___flags_bitmap {
	struct mm_flags___bitmap flags;
};

typedef struct {
	unsigned int val;
} kuid_t;

typedef struct {
	unsigned int val;
} kgid_t;

struct cred {
	kuid_t uid;
	kgid_t gid;
	kuid_t suid;
	kgid_t sgid;
	kuid_t euid;
	kgid_t egid;
};

struct sched_entity {
	__u64 sum_exec_runtime;
};

struct list_head {
	struct list_head *next;
};

/* seqlock_t (an anonymous struct in the kernel): its sequence count, odd while written. */
struct seqcount {
	unsigned int sequence;
};

struct seqcount_spinlock {
	struct seqcount seqcount;
};

struct seqlock___profq {
	struct seqcount_spinlock seqcount;
};

struct signal_struct {
	struct list_head thread_head; /* the live and zombie threads, by task_struct.thread_node */
	struct seqlock___profq stats_lock; /* a thread's times move into utime... and it leaves
					      thread_head under it */
	__u64 utime;
	__u64 stime;
	__u64 cutime;
	__u64 cstime;
	unsigned long long sum_sched_runtime;
};

/* x86-64: the user's fs base, which glibc and musl point at the thread's control block: the
 * thread's pthread_t. */
struct thread_struct {
	unsigned long fsbase;
};

struct task_struct {
	unsigned int flags; /* PF_* */
	int pid;
	int tgid;
	int exit_code;
	struct task_struct *group_leader;
	struct task_struct *real_parent;
	struct mm_struct *mm;
	const struct cred *real_cred;
	struct signal_struct *signal;
	struct list_head thread_node;
	struct sched_entity se;
	__u64 utime;
	__u64 stime;
	__u64 start_boottime;
	char comm[16];
	struct thread_struct thread;
};

struct linux_binprm;

/* The kernel's pt_regs by its own field names (the UAPI one says rip, rsp, rbp); libbpf matches
 * the "___kernel" flavour to struct pt_regs. */
struct pt_regs___kernel {
	unsigned long ip;
	unsigned long sp;
	unsigned long bp;
	unsigned long orig_ax;
};

#pragma clang attribute pop

#endif
