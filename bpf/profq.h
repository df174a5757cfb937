/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one header shared by the BPF program and userspace: record layouts and map value types.
 * Fixed-width fields only, explicit padding, no pointers/bool/long/enums, so both sides agree
 * on every offset. Userspace checks the sizes with _Static_assert below.
 */
#ifndef PROFQ_BPF_H
#define PROFQ_BPF_H

#ifndef __bpf__
#include <linux/types.h>
#endif

/* perf's default kernel.perf_event_max_stack. */
#define PROFQ_MAX_FRAMES 127
#define PROFQ_COMM_LEN 16

/* profq_sample.flags */
#define PROFQ_SAMPLE_KERNEL_MODE (1u << 0) /* the CPU was in kernel mode */
#define PROFQ_SAMPLE_KSTACK_ERR (1u << 1)  /* bpf_get_stack failed for the kernel stack */
#define PROFQ_SAMPLE_USTACK_ERR (1u << 2)  /* bpf_get_stack failed for the user stack */
#define PROFQ_SAMPLE_KTHREAD (1u << 3)	   /* kernel thread: no user address space */

/*
 * One sample as it arrives through the ring buffer. Only the header and the first
 * kstack_len + ustack_len addresses are sent: kernel frames (leaf first), then user frames
 * (leaf first). The first address of each part is the interrupted instruction, the rest are
 * return addresses.
 */
struct profq_sample {
	__u64 time_ns;	/* CLOCK_BOOTTIME */
	__u64 start_ns; /* the group leader's start_boottime: with tgid, the process identity */
	__u64 mm_id;	/* address-space identity; changes on exec; 0 for kernel threads */
	__u32 tgid;
	__u32 tid;
	__u32 cpu;
	__u32 flags; /* PROFQ_SAMPLE_* */
	__u32 uid;   /* real uid, initial user namespace */
	__u16 kstack_len;
	__u16 ustack_len;
	char comm[PROFQ_COMM_LEN];  /* thread name */
	char pcomm[PROFQ_COMM_LEN]; /* process name (group leader's comm) */
	__u64 addrs[2 * PROFQ_MAX_FRAMES];
};

#define PROFQ_SAMPLE_HDR_SIZE 80

/* Per-CPU counters; userspace sums over CPUs. */
struct profq_counters {
	__u64 samples;	     /* every sample the program ran for, idle included */
	__u64 idle;	     /* samples of the idle task (pid 0): counted, not sent */
	__u64 lost_ringbuf;  /* ring buffer full: sample dropped */
	__u64 kstack_errors; /* kernel stack could not be read (sample still sent) */
	__u64 ustack_errors; /* user stack could not be read (sample still sent) */
};

#ifndef __bpf__
#include <stddef.h>
_Static_assert(offsetof(struct profq_sample, addrs) == PROFQ_SAMPLE_HDR_SIZE,
	       "profq_sample header layout");
_Static_assert(sizeof(struct profq_sample) == PROFQ_SAMPLE_HDR_SIZE + 2 * PROFQ_MAX_FRAMES * 8,
	       "profq_sample size");
_Static_assert(sizeof(struct profq_counters) == 40, "profq_counters size");
#endif

#endif
