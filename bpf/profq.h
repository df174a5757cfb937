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
/* Off-CPU (see PROFQ_KIND_*): the stack of a thread being switched out, and, when it is switched
 * back in, its end: a header without frames whose weight is the interval's. */
#define PROFQ_SAMPLE_OFFCPU_STACK (1u << 8)
#define PROFQ_SAMPLE_OFFCPU_END (1u << 9)
/* A long interval whose stack was not captured: sent at its end with what can be read of the
 * thread then (kernel frames, the user instruction pointer) and its weight. */
#define PROFQ_SAMPLE_OFFCPU_WHOLE (1u << 10)
#define PROFQ_SAMPLE_OFFCPU_ALL \
	(PROFQ_SAMPLE_OFFCPU_STACK | PROFQ_SAMPLE_OFFCPU_END | PROFQ_SAMPLE_OFFCPU_WHOLE)
/* A page fault sample (PROFQ_KIND_FAULTS): the stack that faulted, weight its bytes. */
#define PROFQ_SAMPLE_FAULT (1u << 11)

/*
 * profq_sample.kind: what the record measures. A CPU sample stands for one sampling period; an
 * off-CPU pair (PROFQ_SAMPLE_OFFCPU_STACK, then PROFQ_SAMPLE_OFFCPU_END with the same tid and
 * seq) for weight nanoseconds that the thread spent switched out, by its state when it was
 * switched out (preempted while runnable, an interruptible sleep, an uninterruptible one), at
 * the stack it was switched out at.
 */
#define PROFQ_KIND_CPU 0
#define PROFQ_KIND_RUNNABLE 1
#define PROFQ_KIND_SLEEPING 2
#define PROFQ_KIND_BLOCKED 3
/* One in period minor page faults (PERF_COUNT_SW_PAGE_FAULTS_MIN), at the faulting stack;
 * weight: period x the page size, in bytes. */
#define PROFQ_KIND_FAULTS 4

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
	__u16 py_len;	 /* Python frames at PROFQ_PY_FRAMES_OFFSET (stack-copy mode) */
	__u16 py_flags;	 /* PROFQ_PY_* */
	__u32 kind;	 /* PROFQ_KIND_* */
	__u32 seq;	 /* off-CPU: the thread's capture number, pairs a stack with its end */
	/* PROFQ_SAMPLE_OFFCPU_END, _WHOLE: the nanoseconds it stands for; PROFQ_SAMPLE_FAULT:
	 * the bytes; else 0 */
	__u64 weight;
	__u64 addrs[2 * PROFQ_MAX_FRAMES];
	__u8 stack[]; /* stack-copy mode: the record is sized to it */
};

#define PROFQ_SAMPLE_HDR_SIZE 128
#define PROFQ_SAMPLE_STACK_OFFSET (PROFQ_SAMPLE_HDR_SIZE + 2 * PROFQ_MAX_FRAMES * 8)

/*
 * Python. For a thread of a CPython process profqd knows (py_procs, py_threads), the BPF
 * program walks the interpreter's frame chain from the thread's thread state and stores, in
 * stack-copy mode, py_len profq_py_frame entries (innermost first) at PROFQ_PY_FRAMES_OFFSET:
 * the second half of addrs[], which holds no user frames in that mode. The structure offsets
 * come from a profq_py_layout per interpreter version (py_layouts).
 */
#define PROFQ_PY_MAX_FRAMES 63
#define PROFQ_PY_FRAMES_OFFSET (PROFQ_SAMPLE_HDR_SIZE + PROFQ_MAX_FRAMES * 8)
#define PROFQ_PY_LAYOUTS 16
/* Python processes and threads profqd follows at once (the maps' sizes). */
#define PROFQ_PY_PROCS 1024
#define PROFQ_PY_THREADS 16384

/* profq_sample.py_flags */
#define PROFQ_PY_WALKED (1u << 0) /* the thread's Python stack was walked (py_len may be 0) */
#define PROFQ_PY_THREAD_UNKNOWN (1u << 1)  /* a Python process's thread without a known state */
#define PROFQ_PY_READ_ERROR (1u << 2)	   /* a read failed: the walk stopped there */
#define PROFQ_PY_TRUNCATED (1u << 3)	   /* more than PROFQ_PY_MAX_FRAMES frames */
#define PROFQ_PY_THREAD_MISMATCH (1u << 4) /* the thread state is another thread's (stale) */
#define PROFQ_PY_THREAD_FOUND (1u << 5)	   /* found by the BPF walk of the thread list */
/* Thread states the BPF program looks through for a thread py_threads does not know. */
#define PROFQ_PY_THREAD_WALK_MAX 64

/* In profq_py_frame.code: the outermost frame run by one call of the interpreter's evaluation
 * function (every frame up to 3.10; in 3.11+ the frames it entered since, e.g. Python calling
 * Python, run in the same call). User addresses are below 2^63. */
#define PROFQ_PY_ENTRY (1ull << 63)

struct profq_py_frame {
	__u64 code;   /* the code object's address, | PROFQ_PY_ENTRY */
	__u32 offset; /* byte offset of the current instruction in the code's bytecode */
	__u32 ident;  /* hash of the code object's identity bytes (profq_py_layout.code_ident) */
};

/* profq_py_layout.model */
#define PROFQ_PY_MODEL_FRAMEOBJ 1 /* 3.8-3.10: PyFrameObject chain, int f_lasti */
#define PROFQ_PY_MODEL_INTERP 2	  /* 3.11+: _PyInterpreterFrame chain, instruction pointer */
#define PROFQ_PY_NONE 0xffff	  /* an offset the version does not have */
#define PROFQ_PY_FRAME_READ_MAX 128
#define PROFQ_PY_IDENT_LEN 16

/* The structure offsets the BPF walk needs for one interpreter version. */
struct profq_py_layout {
	__u16 tstate_frame;	/* -> frame (3.8-3.10), -> cframe (3.11, 3.12), -> frame (3.13+) */
	__u16 cframe_frame;	/* cframe -> current frame (3.11, 3.12); else PROFQ_PY_NONE */
	__u16 tstate_thread_id; /* the thread's pthread_t (thread_id): its fs base */
	__u16 frame_previous;	/* the calling frame */
	__u16 frame_code;	/* the code object */
	__u16 frame_instr;	/* int f_lasti (FRAMEOBJ), or instruction pointer (INTERP) */
	__u16 frame_owner;	/* char owner (3.11+), PROFQ_PY_NONE before */
	__u16 frame_is_entry;	/* bool is_entry (3.11 only), else PROFQ_PY_NONE */
	__u16 code_instr_base;	/* INTERP: offset of the bytecode in the code object */
	__u16 code_ident;	/* PROFQ_PY_IDENT_LEN bytes of fields fixed for a code's life */
	__u8 model;		/* PROFQ_PY_MODEL_* */
	__u8 lasti_scale;	/* FRAMEOBJ: bytes per f_lasti unit (1 in 3.8/3.9, 2 in 3.10) */
	__u8 owner_cstack;	/* owner of the C-stack shim frames (3.12+), 0xff if none */
	__u8 frame_read;	/* bytes of a frame covering the fields above, <= 128 */
	__u16 interp_threads_head; /* PyInterpreterState -> first PyThreadState */
	__u16 tstate_next;	   /* PyThreadState -> next (PROFQ_PY_NONE: no list walk in BPF) */
};

/*
 * The hash of a code object's PROFQ_PY_IDENT_LEN identity bytes (two little-endian u64 words),
 * computed by the BPF walk for each frame and by profqd when it reads the code object: a code
 * object freed and another allocated at its address almost always hash differently.
 */
#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif
static __always_inline __u32 profq_py_ident_hash(const __u64 w[2])
{
	__u64 h = (w[0] ^ (w[1] * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull;

	return (__u32)(h >> 32) ^ (__u32)h;
}

/*
 * py_procs: tgid -> the process incarnation and its layout. For a thread py_threads does not
 * know, the BPF program looks through the thread list of the interpreter that interp_head
 * points to (&_PyRuntime.interpreters.head; 0: it does not) for the thread state whose thread_id
 * is the thread's, and adds it to py_threads.
 */
struct profq_py_proc {
	__u64 start_ns; /* the group leader's start_boottime */
	__u32 layout;	/* index in py_layouts */
	__u32 pad;
	__u64 interp_head; /* address of the pointer to the first PyInterpreterState, or 0 */
};

/*
 * py_threads: a thread of a followed process, by its pthread_t (the thread_id its thread state
 * holds, which is its control block's address, the fs base the kernel keeps for it: what the
 * BPF program can read of the current thread), -> its thread state.
 */
struct profq_py_thread_key {
	__u64 thread; /* pthread_t */
	__u32 tgid;
	__u32 pad;
};

struct profq_py_thread {
	__u64 tstate;	/* PyThreadState address */
	__u64 start_ns; /* the process incarnation (group leader's start_boottime) */
	__u32 layout;
	__u32 pad;
};

#define PROFQ_EVENT_EXEC 1 /* the process exec'd: a new image and command line */
#define PROFQ_EVENT_EXIT 2 /* the last thread of the process exited */
#define PROFQ_ARGS_LEN 512

/* profq_event.flags, and PROFQ_SAMPLE_PRIVATE: the process's owner could not read its
 * /proc/PID/maps (not dumpable, or real, effective and saved ids differ: setuid/setgid). */
#define PROFQ_EVENT_PRIVATE (1u << 0)
/* EXIT: the times could not be summed over every thread (more threads than the walk takes, or
 * the list kept changing under it): they are not the kernel's figures. */
#define PROFQ_EVENT_PARTIAL (1u << 1)
/* Threads the exit handler sums (the list holds those not yet released: the last one, a zombie
 * leader, and any still exiting). */
#define PROFQ_EXIT_THREAD_WALK_MAX 16384

/*
 * Process lifecycle, from tp_btf/sched_process_exec and tp_btf/sched_process_exit, through their
 * own ring buffer. At exit the times are the kernel's raw per-task accounting summed over the
 * thread group the way thread_group_cputime() does (the signal struct's totals of the threads
 * released, plus every thread still on its list, under its sequence count); userspace scales
 * user/sys to rtime as cputime_adjust() does, which is what wait4() and /proc report.
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
	/* The cgroup v2 id (the inode of its directory) of the task: for the process's cgroup
	 * when /proc no longer shows it. */
	__u64 cgroup_id;
	char comm[PROFQ_COMM_LEN];
	char args[PROFQ_ARGS_LEN]; /* EXEC: argv, NUL-separated, possibly cut */
};

/*
 * Memory. A BPF program on the kmem:rss_stat tracepoint (every change of a process's resident
 * set counters) keeps each address space's RSS (profq_mem_state, by mm) and sends a profq_mem
 * record through the event ring when the RSS moved by at least mem_threshold bytes or 1/64 of
 * itself since the last record. Every record carries the peak so far: the larger of the
 * kernel's high-water mark (mm->hiwater_rss) and every RSS the program saw. The last thread's
 * exit sends a last record (PROFQ_MEM_EXIT); the OOM killer's choice of a victim
 * (tp_btf/mark_victim) one with PROFQ_MEM_OOM_KILL.
 */
#define PROFQ_EVENT_MEM 3

/* profq_mem.flags */
#define PROFQ_MEM_EXIT (1u << 0)     /* the process's last record: its exit */
#define PROFQ_MEM_OOM_KILL (1u << 1) /* the OOM killer chose this process */
#define PROFQ_MEM_PEAK_OLD (1u << 2) /* the peak predates tracking (kernel high-water mark) */
#define PROFQ_MEM_STATES 16384	     /* address spaces followed at once (the map's size) */

struct profq_mem {
	__u32 type;	   /* PROFQ_EVENT_MEM */
	__u32 pid;	   /* tgid */
	__u64 time_ns;	   /* CLOCK_BOOTTIME */
	__u64 start_ns;	   /* the group leader's start_boottime */
	__u64 file_bytes;  /* resident file pages */
	__u64 anon_bytes;  /* resident anonymous pages */
	__u64 shmem_bytes; /* resident shared memory pages */
	__u64 peak_bytes;  /* the largest RSS (file + anon + shmem) so far */
	__u64 peak_ns;	   /* CLOCK_BOOTTIME when it was reached */
	__u32 flags;	   /* PROFQ_MEM_* */
	__u32 pad;
};

/* mem_state: one address space (by its mm_struct's address). */
struct profq_mem_state {
	__u64 start_ns;
	__u64 file; /* bytes, as of the last change seen */
	__u64 anon;
	__u64 shmem;
	__u64 last_ns;	/* the last record sent */
	__u64 last_rss; /* bytes, as of that record */
	__u64 peak;	/* bytes */
	__u64 peak_ns;
	__u32 tgid;
	__u32 flags; /* PROFQ_MEM_PEAK_OLD */
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
	__u64 mem_events;	 /* rss_stat events seen for a followed address space */
	__u64 lost_mem;		 /* event ring buffer full: memory record dropped */
};

/*
 * Off-CPU counters and sampling state, one slot per CPU. ring counts the stack records' ring
 * and stack-copy outcomes as profq_counters does for samples.
 */
struct profq_offcpu_counters {
	__u64 switches;	    /* switch-outs of user threads (timed) */
	__u64 captured;	    /* stacks sent at switch-out */
	__u64 ends;	    /* ends sent at switch-in */
	__u64 end_ns;	    /* the weight they stand for, with the wholes' */
	__u64 lost_ringbuf; /* ends lost: ring buffer full */
	__u64 no_storage;   /* no per-thread slot could be made: the switch went untimed */
	__u64 epoch_ns;	    /* start of the current sampling epoch */
	__u32 epoch_switches;
	__u32 keep;	      /* this epoch's capture probability, in 1/65536 */
	__u32 epoch_captures; /* waits (not preemptions) captured this epoch */
	__u32 epoch_preempts; /* preemptions (runnable switch-outs) this epoch */
	__u32 keep_preempt;   /* this epoch's capture probability of a preemption, 1/65536 */
	__u32 ring_shed; /* records not sent: the ring was filling (room kept for CPU samples) */
	__u64 wholes;	 /* long intervals sent whole (not captured) */
	__u64 revisits;	 /* captures at a place where the thread's last long wait went whole */
	__u32 epoch_revisits; /* of them this epoch */
	__u32 pad0;
	struct profq_counters ring;
};

/* Page fault samples, one slot per CPU; ring counts their ring and stack outcomes. */
struct profq_fault_counters {
	__u64 samples;	 /* samples the program ran for (one per period faults) */
	__u64 sent;	 /* records sent */
	__u64 bytes;	 /* the bytes the sent records stand for */
	__u32 ring_shed; /* records not sent: the ring was filling (room kept for CPU samples) */
	__u32 kthread;	 /* samples without a user address space: not sent */
	struct profq_counters ring;
};

#ifndef __bpf__
#include <stddef.h>
_Static_assert(offsetof(struct profq_sample, addrs) == PROFQ_SAMPLE_HDR_SIZE,
	       "profq_sample header layout");
_Static_assert(offsetof(struct profq_sample, stack) == PROFQ_SAMPLE_STACK_OFFSET,
	       "profq_sample stack offset");
_Static_assert(sizeof(struct profq_sample) == PROFQ_SAMPLE_STACK_OFFSET, "profq_sample size");
_Static_assert(sizeof(struct profq_counters) == 80, "profq_counters size");
_Static_assert(sizeof(struct profq_mem) == 72, "profq_mem size");
_Static_assert(sizeof(struct profq_mem_state) == 72, "profq_mem_state size");
_Static_assert(sizeof(struct profq_offcpu_counters) == 184, "profq_offcpu_counters size");
_Static_assert(sizeof(struct profq_fault_counters) == 112, "profq_fault_counters size");
_Static_assert(sizeof(struct profq_py_frame) == 16, "profq_py_frame size");
_Static_assert(sizeof(struct profq_py_layout) == 28, "profq_py_layout size");
_Static_assert(PROFQ_PY_FRAMES_OFFSET + PROFQ_PY_MAX_FRAMES * 16 <= PROFQ_SAMPLE_STACK_OFFSET,
	       "Python frames fit in addrs");
_Static_assert(sizeof(struct profq_event) == 624, "profq_event size");
#endif

#endif
