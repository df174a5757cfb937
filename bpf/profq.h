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
/* CPUs the counters have slots for (a power of two); CPUs beyond share slots. */
#define PROFQ_MAX_CPUS 1024
#define PROFQ_COMM_LEN 16

/* profq_sample.flags */
#define PROFQ_SAMPLE_KERNEL_MODE (1u << 0) /* the CPU was in kernel mode */
#define PROFQ_SAMPLE_KSTACK_ERR (1u << 1)  /* bpf_get_stack failed for the kernel stack */
#define PROFQ_SAMPLE_USTACK_ERR (1u << 2)  /* bpf_get_stack failed for the user stack */
#define PROFQ_SAMPLE_KTHREAD (1u << 3)	   /* kernel thread: no user address space */
#define PROFQ_SAMPLE_USER_REGS (1u << 4)   /* user_regs and the stack copy are valid */
#define PROFQ_SAMPLE_STACK_ERR (1u << 5)   /* the user stack could not be copied */
/* The user registers are not of this mm (mid-execve): no user frames. */
#define PROFQ_SAMPLE_FOREIGN_REGS (1u << 6)
#define PROFQ_SAMPLE_PRIVATE (1u << 7) /* see PROFQ_EVENT_PRIVATE */

/* Largest user stack copy. */
#define PROFQ_STACK_COPY_MAX 32768

/*
 * One sample as it arrives through the ring buffer: the header, then kstack_len kernel frames
 * and ustack_len user frames (leaf first; the first address of each part is the interrupted
 * instruction, the rest return addresses). In stack-copy mode (PROFQ_SAMPLE_USER_REGS) the user
 * frames are not walked in BPF: the record instead holds the user registers and, at
 * PROFQ_SAMPLE_STACK_OFFSET, stack_len bytes copied from the user stack pointer up, which profqd
 * unwinds with the binaries' CFI. The record ends after the last part present.
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
	__u64 user_ip;		    /* user registers at the sample (stack-copy mode) */
	__u64 user_sp;
	__u64 user_bp;
	__u32 stack_len; /* bytes of user stack copied (stack-copy mode) */
	__u32 pad;
	__u64 addrs[2 * PROFQ_MAX_FRAMES];
	__u8 stack[]; /* stack-copy mode: the record is sized to it */
};

#define PROFQ_SAMPLE_HDR_SIZE 112
#define PROFQ_SAMPLE_STACK_OFFSET (PROFQ_SAMPLE_HDR_SIZE + 2 * PROFQ_MAX_FRAMES * 8)

#define PROFQ_EVENT_EXEC 1 /* the process exec'd: a new image and command line */
#define PROFQ_EVENT_EXIT 2 /* the last thread of the process exited */
#define PROFQ_ARGS_LEN 512

/* profq_event.flags, and PROFQ_SAMPLE_PRIVATE: the process's owner could not read its
 * /proc/PID/maps (not dumpable, or real, effective and saved ids differ: setuid/setgid). */
#define PROFQ_EVENT_PRIVATE (1u << 0)

/*
 * Process lifecycle, from tp_btf/sched_process_exec and tp_btf/sched_process_exit, through their
 * own ring buffer. At exit the times are the kernel's raw per-task accounting summed over the
 * thread group the way thread_group_cputime() does; userspace scales user/sys to rtime as
 * cputime_adjust() does, which is what wait4() and /proc report.
 */
struct profq_event {
	__u32 type;	/* PROFQ_EVENT_* */
	__u32 pid;	/* tgid */
	__u64 time_ns;	/* CLOCK_BOOTTIME */
	__u64 start_ns; /* the group leader's start_boottime */
	__u32 ppid;
	__u32 uid;
	__u32 exit_code; /* EXIT: wait status as wait4() reports it */
	__u32 args_len;	 /* EXEC: bytes of args */
	__u64 utime_ns;	 /* EXIT: user time of the thread group (raw) */
	__u64 stime_ns;	 /* EXIT: system time (raw) */
	__u64 rtime_ns;	 /* EXIT: scheduler runtime: user + system, precise */
	__u64 cutime_ns; /* EXIT: user time of waited-for children (adjusted) */
	__u64 cstime_ns; /* EXIT: system time of waited-for children (adjusted) */
	__u32 flags;	 /* PROFQ_EVENT_* */
	__u32 pad;
	char comm[PROFQ_COMM_LEN];
	char args[PROFQ_ARGS_LEN]; /* EXEC: argv, NUL-separated, possibly cut */
};

/* Counters, one slot per CPU; userspace sums over CPUs. */
struct profq_counters {
	__u64 samples;		 /* every sample the program ran for, idle included */
	__u64 idle;		 /* samples of the idle task (pid 0): counted, not sent */
	__u64 lost_ringbuf;	 /* ring buffer full: sample dropped */
	__u64 kstack_errors;	 /* kernel stack could not be read (sample still sent) */
	__u64 ustack_errors;	 /* user stack could not be read (sample still sent) */
	__u64 lost_events;	 /* event ring buffer full: exec/exit event dropped */
	__u64 stack_copy_errors; /* user stack could not be copied (sample still sent) */
	__u64 stack_copy_bytes;	 /* bytes of user stack copied */
};

#ifndef __bpf__
#include <stddef.h>
_Static_assert(offsetof(struct profq_sample, addrs) == PROFQ_SAMPLE_HDR_SIZE,
	       "profq_sample header layout");
_Static_assert(offsetof(struct profq_sample, stack) == PROFQ_SAMPLE_STACK_OFFSET,
	       "profq_sample stack offset");
_Static_assert(sizeof(struct profq_sample) == PROFQ_SAMPLE_STACK_OFFSET, "profq_sample size");
_Static_assert(sizeof(struct profq_counters) == 64, "profq_counters size");
_Static_assert(sizeof(struct profq_event) == 616, "profq_event size");
#endif

#endif
