// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The sampler: runs on every PERF_COUNT_SW_CPU_CLOCK sample of every CPU, reads the kernel and
 * user stacks and sends one variable-length record per sample through a ring buffer without
 * waking the reader (BPF_RB_NO_WAKEUP); profqd drains it on a timer. Idle samples are only
 * counted. Every failure is counted in the counters.
 */
#include <linux/bpf.h>
#include <linux/bpf_perf_event.h>
#include <linux/ptrace.h>
#include <linux/errno.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "kernel_types.h"
#include "profq.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20); /* resized by profqd before load */
} samples SEC(".maps");

/*
 * Counters, one slot per CPU (programs of one CPU never nest, so plain increments are exact).
 * Global data rather than a map: no lookup per sample, and userspace reads them through the
 * skeleton's memory mapping without a system call.
 */
struct profq_counters counters[PROFQ_MAX_CPUS];

static __always_inline struct profq_counters *cpu_counters(__u32 cpu)
{
	return &counters[cpu & (PROFQ_MAX_CPUS - 1)];
}

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 << 10);
} events SEC(".maps");

/*
 * A sample is too big for the 512-byte BPF stack: build it here, one entry per CPU (indexed by
 * CPU: programs of one CPU never nest), then copy it out. Not a per-CPU map: their values are
 * limited to 32 KiB, and a stack copy is up to that alone. Sized to the CPUs before load.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct profq_sample);
} scratch SEC(".maps");

/*
 * Python: the processes and threads profqd follows (it reads each thread's PyThreadState
 * address from the interpreter's thread list), and the structure offsets of each interpreter
 * version. See bpf/profq.h.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PROFQ_PY_PROCS);
	__type(key, __u32);
	__type(value, struct profq_py_proc);
} py_procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PROFQ_PY_THREADS);
	__type(key, struct profq_py_thread_key);
	__type(value, struct profq_py_thread);
} py_threads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PROFQ_PY_LAYOUTS);
	__type(key, __u32);
	__type(value, struct profq_py_layout);
} py_layouts SEC(".maps");

/* A frame and a code object's identity bytes as read, per CPU (fields at variable offsets are
 * read from a map value, whose bounds the verifier checks). */
struct py_buf {
	__u8 frame[PROFQ_PY_FRAME_READ_MAX + 8];
	__u64 ident[PROFQ_PY_IDENT_LEN / 8];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct py_buf);
} py_scratch SEC(".maps");

/* Bytes of user stack to copy per sample; 0: walk frame pointers in BPF instead. */
const volatile __u32 stack_copy = 0;

#define STACK_BYTES (PROFQ_MAX_FRAMES * sizeof(__u64))
#define PAGE_SIZE 4096
#define COPY_CHUNKS (PROFQ_STACK_COPY_MAX / PAGE_SIZE + 1)

/* x86-64 system call numbers */
#define NR_EXECVE 59
#define NR_EXECVEAT 322

/*
 * How many bytes of user stack to copy from sp: stacks grow down, so what is in use is above
 * it. The copy ends at a page boundary (so that every page after the first is whole, see
 * copy_user_stack()) at most stack_copy bytes up, or, for the process's first thread, just
 * above mm->start_stack, where its stack holds nothing but argv, the environment and the
 * auxiliary vector (the outermost frame's caller's frame is below). Other threads' stacks are
 * not known to the kernel: the copy stops at the first page that does not read. At least the
 * rest of sp's page.
 */
static __u32 user_stack_span(struct task_struct *task, __u64 sp, int leader)
{
	__u64 first = (sp | (PAGE_SIZE - 1)) + 1, end = (sp + stack_copy) & ~(__u64)(PAGE_SIZE - 1);

	if (leader) {
		__u64 top = BPF_CORE_READ(task, mm, start_stack);

		if (top > sp) {
			top = (top + 256 + PAGE_SIZE - 1) & ~(__u64)(PAGE_SIZE - 1);
			if (top < end)
				end = top;
		}
	}
	if (end < first)
		end = first;
	return (__u32)(end - sp);
}

/*
 * Copies len bytes of user stack from sp up into the record rec at PROFQ_SAMPLE_STACK_OFFSET,
 * page by page: a stack can hold pages never touched (above the frames, below the
 * environment), and one read across such a page would fail whole. The copy ends at the first
 * page that does not read; the frames nearest sp, which the unwinder needs first, come before
 * it. Each page goes through a slice of the record one page long (the verifier needs a
 * constant length): the first at offset 0 (the record has room for a page at least), the
 * others whole pages, since sp + len is at a page boundary. Returns the bytes copied.
 */
static __u32 copy_user_stack(struct bpf_dynptr *rec, __u64 sp, __u32 len)
{
	__u32 off = 0;

	for (int i = 0; i < COPY_CHUNKS && off < len; i++) {
		__u32 chunk = PAGE_SIZE - (__u32)((sp + off) & (PAGE_SIZE - 1));
		void *dst;

		/* Bounds for the verifier: off < 64 KiB, chunk <= one page of the slice. */
		barrier_var(off);
		off &= 2 * PROFQ_STACK_COPY_MAX - 1;
		dst = bpf_dynptr_data(rec, PROFQ_SAMPLE_STACK_OFFSET + off, PAGE_SIZE);
		barrier_var(chunk);
		chunk &= 2 * PAGE_SIZE - 1;
		if (!dst || chunk == 0 || chunk > PAGE_SIZE ||
		    bpf_probe_read_user(dst, chunk, (const void *)(sp + off)) < 0)
			break;
		off += chunk;
	}
	return off;
}

/* Dumpable as the kernel's get_dumpable(): SUID_DUMP_USER (1) is the only value that lets the
 * owner ptrace-read the process. */
#define MMF_DUMPABLE_MASK 3ul
#define SUID_DUMP_USER 1ul

/*
 * Whether the task's owner could read its /proc/PID/maps, as ptrace_may_access() decides for
 * an unprivileged caller with the task's real uid and gid: every uid and gid the same, and the
 * address space dumpable. A task without an mm is judged by its credentials alone.
 */
static __always_inline int task_private(struct task_struct *task)
{
	const struct cred *cred = BPF_CORE_READ(task, real_cred);
	struct mm_struct *mm = BPF_CORE_READ(task, mm);
	unsigned long mmf = SUID_DUMP_USER;
	__u32 uid, gid;

	if (!cred)
		return 1;
	uid = BPF_CORE_READ(cred, uid.val);
	gid = BPF_CORE_READ(cred, gid.val);
	if (BPF_CORE_READ(cred, euid.val) != uid || BPF_CORE_READ(cred, suid.val) != uid ||
	    BPF_CORE_READ(cred, egid.val) != gid || BPF_CORE_READ(cred, sgid.val) != gid)
		return 1;
	if (mm) {
		if (bpf_core_field_exists(((struct mm_struct___flags_bitmap *)0)->flags))
			mmf = BPF_CORE_READ((struct mm_struct___flags_bitmap *)mm,
					    flags.__mm_flags[0]);
		else
			mmf = BPF_CORE_READ((struct mm_struct___flags_word *)mm, flags);
	}
	return (mmf & MMF_DUMPABLE_MASK) != SUID_DUMP_USER;
}

/* Reads the field of the frame buffer at off (<= PROFQ_PY_FRAME_READ_MAX - size). */
static __always_inline __u64 buf_u64(const struct py_buf *b, __u32 off)
{
	__u64 v;

	barrier_var(off);
	off &= PROFQ_PY_FRAME_READ_MAX - 1;
	__builtin_memcpy(&v, &b->frame[off], sizeof(v));
	return v;
}

static __always_inline __u8 buf_u8(const struct py_buf *b, __u32 off)
{
	barrier_var(off);
	off &= PROFQ_PY_FRAME_READ_MAX - 1;
	return b->frame[off];
}

typedef struct PyWalk {
	struct profq_sample *s;
	const struct profq_py_layout *l;
	struct py_buf *b;
	__u64 frame; /* the next frame to read */
	__u32 n;     /* frames stored */
} PyWalk;

/* One step of the walk: reads the frame at w->frame and stores it unless it is a C-stack shim
 * (3.12+), whose caller-side neighbour then ends a run of the evaluation function. Returns 1 to
 * stop. */
static long py_step(__u64 index, void *ctx)
{
	PyWalk *w = ctx;
	const struct profq_py_layout *l = w->l;
	struct profq_py_frame *f;
	struct py_buf *b = w->b;
	__u32 size = l->frame_read, n = w->n;
	__u64 code, entry = 0;
	__u32 offset;

	if (w->frame == 0)
		return 1;
	if (n >= PROFQ_PY_MAX_FRAMES) {
		w->s->py_flags |= PROFQ_PY_TRUNCATED;
		return 1;
	}
	barrier_var(size);
	size &= PROFQ_PY_FRAME_READ_MAX * 2 - 1;
	if (size > PROFQ_PY_FRAME_READ_MAX || size < 16 ||
	    bpf_probe_read_user(b->frame, size, (const void *)w->frame) < 0) {
		w->s->py_flags |= PROFQ_PY_READ_ERROR;
		return 1;
	}
	code = buf_u64(b, l->frame_code);
	w->frame = buf_u64(b, l->frame_previous);
	if (l->frame_owner != PROFQ_PY_NONE && buf_u8(b, l->frame_owner) == l->owner_cstack) {
		/* The shim an evaluation-function call pushes: the frame before it was that
		 * call's first. */
		if (n > 0) {
			f = (void *)&w->s->addrs[PROFQ_MAX_FRAMES + 2 * ((n - 1) & 63)];
			f->code |= PROFQ_PY_ENTRY;
		}
		return 0;
	}
	if (l->model == PROFQ_PY_MODEL_FRAMEOBJ) {
		__s32 lasti = (__s32)buf_u64(b, l->frame_instr);

		offset = lasti > 0 ? (__u32)lasti * l->lasti_scale : 0;
		entry = PROFQ_PY_ENTRY;
	} else {
		__u64 instr = buf_u64(b, l->frame_instr);

		offset = instr > code + l->code_instr_base
				 ? (__u32)(instr - code - l->code_instr_base)
				 : 0;
		if (l->frame_is_entry != PROFQ_PY_NONE && buf_u8(b, l->frame_is_entry))
			entry = PROFQ_PY_ENTRY;
	}
	if (code == 0 || (code >> 63) ||
	    bpf_probe_read_user(b->ident, sizeof(b->ident), (const void *)(code + l->code_ident)) <
		    0) {
		w->s->py_flags |= PROFQ_PY_READ_ERROR;
		return 1;
	}
	f = (void *)&w->s->addrs[PROFQ_MAX_FRAMES + 2 * (n & 63)];
	f->code = code | entry;
	f->offset = offset;
	f->ident = profq_py_ident_hash(b->ident);
	w->n = n + 1;
	return 0;
}

typedef struct PyFind {
	__u64 tstate; /* the next thread state to look at */
	__u64 thread; /* the pthread_t looked for */
	__u64 found;
	__u16 id_off, next_off;
} PyFind;

/* One step through the thread list: stops at the state whose thread_id is f->thread. */
static long py_find_step(__u64 index, void *ctx)
{
	PyFind *f = ctx;
	__u64 id, next;

	if (f->tstate == 0 || (f->tstate >> 63) ||
	    bpf_probe_read_user(&id, sizeof(id), (const void *)(f->tstate + f->id_off)) < 0 ||
	    bpf_probe_read_user(&next, sizeof(next), (const void *)(f->tstate + f->next_off)) < 0)
		return 1;
	if (id == f->thread) {
		f->found = f->tstate;
		return 1;
	}
	f->tstate = next;
	return 0;
}

/*
 * A thread of a followed process that py_threads does not know (yet: profqd reads the thread
 * lists only when it gets to the process's samples, which may be seconds later): looks through
 * the thread list of the first interpreter, at most PROFQ_PY_THREAD_WALK_MAX states, for the
 * one whose thread_id is this thread's, and puts it into py_threads. NULL if there is none.
 */
static __always_inline const struct profq_py_thread *py_find_thread(
	const struct profq_py_proc *p, const struct profq_py_thread_key *key)
{
	struct profq_py_thread v = { .start_ns = p->start_ns, .layout = p->layout };
	PyFind f = { .thread = key->thread };
	const struct profq_py_layout *l;
	__u32 layout = p->layout;
	__u64 interp;

	l = bpf_map_lookup_elem(&py_layouts, &layout);
	if (!l || l->model == 0 || l->tstate_next == PROFQ_PY_NONE || !p->interp_head ||
	    key->thread == 0)
		return NULL;
	if (bpf_probe_read_user(&interp, sizeof(interp), (const void *)p->interp_head) < 0 ||
	    !interp || (interp >> 63) ||
	    bpf_probe_read_user(&f.tstate, sizeof(f.tstate),
				(const void *)(interp + l->interp_threads_head)) < 0)
		return NULL;
	f.id_off = l->tstate_thread_id;
	f.next_off = l->tstate_next;
	bpf_loop(PROFQ_PY_THREAD_WALK_MAX, py_find_step, &f, 0);
	if (!f.found)
		return NULL;
	v.tstate = f.found;
	if (bpf_map_update_elem(&py_threads, key, &v, BPF_ANY) < 0)
		return NULL;
	return bpf_map_lookup_elem(&py_threads, key);
}

/* The followed process of sample s, NULL if it is not one. */
static __always_inline const struct profq_py_proc *py_proc_of(const struct profq_sample *s)
{
	const struct profq_py_proc *p = bpf_map_lookup_elem(&py_procs, &s->tgid);

	return p && p->start_ns == s->start_ns ? p : NULL;
}

/* Reads thread state t's thread id and current frame: 0, or -1 if a read failed. */
static __always_inline int py_tstate(const struct profq_py_thread *t,
				     const struct profq_py_layout *l, __u64 *id, __u64 *frame)
{
	if (bpf_probe_read_user(id, sizeof(*id), (const void *)(t->tstate + l->tstate_thread_id)) <
		    0 ||
	    bpf_probe_read_user(frame, sizeof(*frame),
				(const void *)(t->tstate + l->tstate_frame)) < 0)
		return -1;
	return 0;
}

/*
 * The Python stack of the current thread, if profqd follows its process: each frame's code
 * object, instruction offset and identity hash into the record's Python part (s->py_len,
 * s->py_flags). The thread state must name this thread (a stale entry of an exited thread whose
 * control block another thread reuses is not walked, but looked for again). Bounded:
 * PROFQ_PY_MAX_FRAMES frames, plus as many shims; PROFQ_PY_THREAD_WALK_MAX thread states.
 */
static __always_inline void python_stack(struct profq_sample *s, struct task_struct *task)
{
	struct profq_py_thread_key key = { .tgid = s->tgid };
	const struct profq_py_proc *p = NULL;
	const struct profq_py_thread *t;
	const struct profq_py_layout *l;
	__u32 zero = 0, layout;
	PyWalk w = { .s = s };
	__u16 found = 0;
	__u64 frame, id;

	key.thread = BPF_CORE_READ(task, thread.fsbase);
	t = bpf_map_lookup_elem(&py_threads, &key);
	if (!t || t->start_ns != s->start_ns) {
		p = py_proc_of(s);
		if (!p)
			return;
		t = py_find_thread(p, &key);
		if (!t) {
			s->py_flags = PROFQ_PY_THREAD_UNKNOWN;
			return;
		}
		found = PROFQ_PY_THREAD_FOUND;
	}
	layout = t->layout;
	l = bpf_map_lookup_elem(&py_layouts, &layout);
	w.b = bpf_map_lookup_elem(&py_scratch, &zero);
	if (!l || !w.b || l->model == 0)
		return;
	w.l = l;
	if (py_tstate(t, l, &id, &frame) < 0) {
		s->py_flags = PROFQ_PY_READ_ERROR;
		return;
	}
	if (id != key.thread && !found) {
		/* Stale: another thread's state, or one freed. Look for this thread's. */
		p = py_proc_of(s);
		t = p ? py_find_thread(p, &key) : NULL;
		if (!t || t->layout != layout || py_tstate(t, l, &id, &frame) < 0) {
			s->py_flags = PROFQ_PY_THREAD_MISMATCH;
			return;
		}
		found = PROFQ_PY_THREAD_FOUND;
	}
	if (id != key.thread) {
		s->py_flags = PROFQ_PY_THREAD_MISMATCH | found;
		return;
	}
	if (frame && l->cframe_frame != PROFQ_PY_NONE &&
	    bpf_probe_read_user(&frame, sizeof(frame), (const void *)(frame + l->cframe_frame)) <
		    0) {
		s->py_flags = PROFQ_PY_READ_ERROR | found;
		return;
	}
	s->py_flags = PROFQ_PY_WALKED | found;
	w.frame = frame;
	bpf_loop(2 * PROFQ_PY_MAX_FRAMES, py_step, &w, 0);
	s->py_len = w.n;
}

/*
 * Sends sample s, whose user stack spans span bytes from s->user_sp, as a record reserved in
 * the ring buffer at its size: the stack is copied once, from the user's pages into the record.
 * The header and kernel frames built in s follow.
 */
static __always_inline int send_with_stack(struct profq_counters *c, struct profq_sample *s,
					   __u32 span)
{
	__u32 klen = s->kstack_len & 0x7f;
	struct bpf_dynptr rec;

	span &= 2 * PROFQ_STACK_COPY_MAX - 1;
	if (bpf_ringbuf_reserve_dynptr(
		    &samples, PROFQ_SAMPLE_STACK_OFFSET + (span > PAGE_SIZE ? span : PAGE_SIZE), 0,
		    &rec) < 0) {
		bpf_ringbuf_discard_dynptr(&rec, 0);
		c->lost_ringbuf++;
		return 0;
	}
	s->stack_len = copy_user_stack(&rec, s->user_sp, span);
	c->stack_copy_bytes += s->stack_len;
	if (s->stack_len == 0) {
		c->stack_copy_errors++;
		/* In the kernel with an unreadable user stack (e.g. inside execve, the new mm
		 * locked while it is built): the saved user registers may be of an image that is
		 * gone. Keep the kernel frames only. */
		s->flags |= PROFQ_SAMPLE_STACK_ERR;
		if (s->flags & PROFQ_SAMPLE_KERNEL_MODE) {
			s->flags |= PROFQ_SAMPLE_FOREIGN_REGS;
			s->flags &= ~PROFQ_SAMPLE_USER_REGS;
		}
	}
	bpf_dynptr_write(&rec, 0, s, PROFQ_SAMPLE_HDR_SIZE + klen * sizeof(__u64), 0);
	if (s->py_len) {
		/* At most PROFQ_PY_MAX_FRAMES (63) frames, in bounds the verifier can see. */
		__u32 n = s->py_len;

		barrier_var(n);
		n &= PROFQ_PY_MAX_FRAMES;
		bpf_dynptr_write(&rec, PROFQ_PY_FRAMES_OFFSET, &s->addrs[PROFQ_MAX_FRAMES],
				 n * sizeof(struct profq_py_frame), 0);
	}
	bpf_ringbuf_submit_dynptr(&rec, BPF_RB_NO_WAKEUP);
	return 0;
}

SEC("perf_event")
int profq_sample(struct bpf_perf_event_data *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct profq_counters *c;
	struct task_struct *task;
	struct profq_sample *s;
	__u32 klen = 0, ulen = 0, span = 0, size, cpu;
	long n;

	cpu = bpf_get_smp_processor_id();
	c = cpu_counters(cpu);
	c->samples++;
	if ((__u32)pid_tgid == 0) {
		c->idle++;
		return 0;
	}
	s = bpf_map_lookup_elem(&scratch, &cpu);
	if (!s)
		return 0;

	task = (struct task_struct *)bpf_get_current_task();
	s->time_ns = bpf_ktime_get_boot_ns();
	s->start_ns = BPF_CORE_READ(task, group_leader, start_boottime);
	s->mm_id = (__u64)BPF_CORE_READ(task, mm);
	s->tgid = pid_tgid >> 32;
	s->tid = (__u32)pid_tgid;
	s->cpu = cpu;
	s->uid = (__u32)bpf_get_current_uid_gid();
	s->flags = task_private(task) ? PROFQ_SAMPLE_PRIVATE : 0;
	bpf_get_current_comm(s->comm, sizeof(s->comm));
	/* The process's name: this thread's, when it is the leader (most samples). */
	if (s->tid == s->tgid)
		__builtin_memcpy(s->pcomm, s->comm, sizeof(s->pcomm));
	else
		BPF_CORE_READ_STR_INTO(&s->pcomm, task, group_leader, comm);

	/* CPL 0 in the interrupted CS: the sample hit kernel code. */
	if ((ctx->regs.cs & 3) == 0) {
		s->flags |= PROFQ_SAMPLE_KERNEL_MODE;
		n = bpf_get_stack(ctx, s->addrs, STACK_BYTES, 0);
		if (n < 0) {
			c->kstack_errors++;
			s->flags |= PROFQ_SAMPLE_KSTACK_ERR;
		} else {
			klen = ((__u32)n / sizeof(__u64)) & 0x7f;
		}
	}
	s->stack_len = 0;
	s->py_len = 0;
	s->py_flags = 0;
	if (s->mm_id == 0) {
		s->flags |= PROFQ_SAMPLE_KTHREAD;
	} else if (stack_copy) {
		struct task_struct *t = bpf_get_current_task_btf();
		struct pt_regs___kernel *uregs = (void *)bpf_task_pt_regs(t);

		/* The user registers: the interrupted ones, or those saved at kernel entry. */
		if (s->flags & PROFQ_SAMPLE_KERNEL_MODE) {
			__u64 nr = BPF_CORE_READ(uregs, orig_ax);

			s->user_ip = BPF_CORE_READ(uregs, ip);
			s->user_sp = BPF_CORE_READ(uregs, sp);
			s->user_bp = BPF_CORE_READ(uregs, bp);
			/* Inside execve the saved registers may be of the image being replaced,
			 * while the address space is already the new one's. */
			if (nr == NR_EXECVE || nr == NR_EXECVEAT)
				s->flags |= PROFQ_SAMPLE_FOREIGN_REGS;
		} else {
			s->user_ip = ctx->regs.rip;
			s->user_sp = ctx->regs.rsp;
			s->user_bp = ctx->regs.rbp;
		}
		if (!(s->flags & PROFQ_SAMPLE_FOREIGN_REGS)) {
			s->flags |= PROFQ_SAMPLE_USER_REGS;
			span = user_stack_span(t, s->user_sp, s->tid == s->tgid);
			python_stack(s, task);
		}
	} else {
		n = bpf_get_stack(ctx, &s->addrs[klen], STACK_BYTES, BPF_F_USER_STACK);
		if (n < 0) {
			c->ustack_errors++;
			s->flags |= PROFQ_SAMPLE_USTACK_ERR;
		} else {
			ulen = ((__u32)n / sizeof(__u64)) & 0x7f;
		}
	}
	s->kstack_len = klen;
	s->ustack_len = ulen;

	if (span)
		return send_with_stack(c, s, span);
	size = PROFQ_SAMPLE_HDR_SIZE + (klen + ulen) * sizeof(__u64);
	if (size > sizeof(*s))
		return 0;
	if (bpf_ringbuf_output(&samples, s, size, BPF_RB_NO_WAKEUP) < 0)
		c->lost_ringbuf++;
	return 0;
}

static struct profq_event *event_reserve(struct profq_counters **ret_c)
{
	struct profq_counters *c = cpu_counters(bpf_get_smp_processor_id());
	struct profq_event *e;

	*ret_c = c;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		c->lost_events++;
	return e;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(profq_exec, struct task_struct *task, int old_pid, struct linux_binprm *bprm)
{
	struct profq_counters *c;
	struct profq_event *e;
	unsigned long start, end;
	__u32 len;

	e = event_reserve(&c);
	if (!e)
		return 0;
	e->type = PROFQ_EVENT_EXEC;
	e->pid = BPF_CORE_READ(task, tgid);
	e->time_ns = bpf_ktime_get_boot_ns();
	e->start_ns = BPF_CORE_READ(task, group_leader, start_boottime);
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = (__u32)bpf_get_current_uid_gid();
	/* After the exec: a setuid image's credentials and dumpable flag are in place. */
	e->flags = task_private(task) ? PROFQ_EVENT_PRIVATE : 0;
	e->pad = 0;
	e->exit_code = 0;
	e->utime_ns = e->stime_ns = e->rtime_ns = e->cutime_ns = e->cstime_ns = 0;
	BPF_CORE_READ_STR_INTO(&e->comm, task, comm);
	/* The new image's argv: fresh on its stack, so resident. */
	start = BPF_CORE_READ(task, mm, arg_start);
	end = BPF_CORE_READ(task, mm, arg_end);
	len = end > start ? (__u32)(end - start) : 0;
	if (len > PROFQ_ARGS_LEN - 1)
		len = PROFQ_ARGS_LEN - 1;
	/* For the verifier, which loses the bound above in a 64-bit copy of len: the barrier
	 * keeps clang from folding the mask away, and the read uses the masked register. */
	barrier_var(len);
	len &= PROFQ_ARGS_LEN - 1;
	if (len == 0 || bpf_probe_read_user(e->args, len, (const void *)start) < 0)
		len = 0;
	e->args_len = len;
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(profq_exit, struct task_struct *task, _Bool group_dead)
{
	struct task_struct *leader;
	struct signal_struct *sig;
	struct profq_counters *c;
	struct profq_event *e;

	/* Only the last thread: then the group's accounting is complete. */
	if (!group_dead)
		return 0;
	e = event_reserve(&c);
	if (!e)
		return 0;
	sig = BPF_CORE_READ(task, signal);
	leader = BPF_CORE_READ(task, group_leader);
	e->type = PROFQ_EVENT_EXIT;
	e->pid = BPF_CORE_READ(task, tgid);
	e->time_ns = bpf_ktime_get_boot_ns();
	e->start_ns = BPF_CORE_READ(leader, start_boottime);
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = (__u32)bpf_get_current_uid_gid();
	/* The mm may be gone by now: the credentials still tell. */
	e->flags = task_private(task) ? PROFQ_EVENT_PRIVATE : 0;
	e->pad = 0;
	e->exit_code = (__u32)BPF_CORE_READ(task, exit_code);
	e->args_len = 0;
	/*
	 * As thread_group_cputime(): threads already reaped are summed in signal; this (last)
	 * thread and a leader that exited first (a zombie until the group dies) are not yet.
	 */
	e->utime_ns = BPF_CORE_READ(sig, utime) + BPF_CORE_READ(task, utime);
	e->stime_ns = BPF_CORE_READ(sig, stime) + BPF_CORE_READ(task, stime);
	e->rtime_ns = BPF_CORE_READ(sig, sum_sched_runtime) +
		      BPF_CORE_READ(task, se.sum_exec_runtime);
	if (leader != task) {
		e->utime_ns += BPF_CORE_READ(leader, utime);
		e->stime_ns += BPF_CORE_READ(leader, stime);
		e->rtime_ns += BPF_CORE_READ(leader, se.sum_exec_runtime);
	}
	e->cutime_ns = BPF_CORE_READ(sig, cutime);
	e->cstime_ns = BPF_CORE_READ(sig, cstime);
	BPF_CORE_READ_STR_INTO(&e->comm, task, comm);
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	return 0;
}
