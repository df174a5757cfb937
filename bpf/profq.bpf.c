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
 * The header and kernel frames built in s follow. 0, or -1 if it was lost (counted).
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
		return -1;
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

/* The current thread's identity in s: time, process, thread, names and privacy (flags). */
static __always_inline void sample_identity(struct profq_sample *s, struct task_struct *task,
					    __u64 pid_tgid, __u32 cpu, __u32 flags)
{
	s->start_ns = BPF_CORE_READ(task, group_leader, start_boottime);
	s->mm_id = (__u64)BPF_CORE_READ(task, mm);
	s->tgid = pid_tgid >> 32;
	s->tid = (__u32)pid_tgid;
	s->cpu = cpu;
	s->uid = (__u32)bpf_get_current_uid_gid();
	s->flags = flags | (task_private(task) ? PROFQ_SAMPLE_PRIVATE : 0);
	bpf_get_current_comm(s->comm, sizeof(s->comm));
	/* The process's name: this thread's, when it is the leader (most samples). */
	if (s->tid == s->tgid)
		__builtin_memcpy(s->pcomm, s->comm, sizeof(s->pcomm));
	else
		BPF_CORE_READ_STR_INTO(&s->pcomm, task, group_leader, comm);
}

/*
 * Reads the current thread's stacks into s, whose flags say whether the CPU was in kernel
 * mode: the kernel frames from ctx (kernel mode only), then the user part. In stack-copy mode
 * the user registers are uip, usp and ubp (the interrupted ones, user mode) or those saved at
 * kernel entry (kernel mode), with the Python frames; else the user frames are walked from ctx.
 * Shared by the sampler, the off-CPU program and the fault program. Returns the bytes of user
 * stack to copy (0: none, the frames are in s).
 */
static __always_inline __u32 capture_stacks(void *ctx, struct profq_sample *s,
					    struct profq_counters *c, struct task_struct *task,
					    __u64 uip, __u64 usp, __u64 ubp)
{
	__u32 klen = 0, ulen = 0, span = 0;
	long n;

	if (s->flags & PROFQ_SAMPLE_KERNEL_MODE) {
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
		struct pt_regs___kernel *saved = (void *)bpf_task_pt_regs(t);

		if (s->flags & PROFQ_SAMPLE_KERNEL_MODE) {
			__u64 nr = BPF_CORE_READ(saved, orig_ax);

			s->user_ip = BPF_CORE_READ(saved, ip);
			s->user_sp = BPF_CORE_READ(saved, sp);
			s->user_bp = BPF_CORE_READ(saved, bp);
			/* Inside execve the saved registers may be of the image being replaced,
			 * while the address space is already the new one's. */
			if (nr == NR_EXECVE || nr == NR_EXECVEAT)
				s->flags |= PROFQ_SAMPLE_FOREIGN_REGS;
		} else {
			s->user_ip = uip;
			s->user_sp = usp;
			s->user_bp = ubp;
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
	return span;
}

/* Sends s as capture_stacks() left it: 0, or -1 if it was lost (counted in c). */
static __always_inline int send_sample(struct profq_counters *c, struct profq_sample *s, __u32 span)
{
	__u32 size = PROFQ_SAMPLE_HDR_SIZE + (s->kstack_len + s->ustack_len) * sizeof(__u64);

	if (span)
		return send_with_stack(c, s, span);
	if (size > sizeof(*s))
		return -1;
	if (bpf_ringbuf_output(&samples, s, size, BPF_RB_NO_WAKEUP) < 0) {
		c->lost_ringbuf++;
		return -1;
	}
	return 0;
}

SEC("perf_event")
int profq_sample(struct bpf_perf_event_data *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct profq_counters *c;
	struct task_struct *task;
	struct profq_sample *s;
	__u32 cpu;

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
	/* CPL 0 in the interrupted CS: the sample hit kernel code. */
	sample_identity(s, task, pid_tgid, cpu,
			(ctx->regs.cs & 3) == 0 ? PROFQ_SAMPLE_KERNEL_MODE : 0);
	s->kind = PROFQ_KIND_CPU;
	s->seq = 0;
	s->weight = 0;
	send_sample(c, s,
		    capture_stacks(ctx, s, c, task, ctx->regs.rip, ctx->regs.rsp, ctx->regs.rbp));
	return 0;
}

/* ---- Memory: resident set over time (bpf/profq.h, PROFQ_EVENT_MEM) ---- */

/* Set by profqd before load. */
const volatile __u32 mem_enabled = 0;
const volatile __u64 mem_threshold = 1 << 20; /* bytes */
const volatile __u32 page_shift = 12;

/* The kernel's RSS counters (enum in include/linux/mm_types_task.h). */
#define MM_FILEPAGES 0
#define MM_ANONPAGES 1
#define MM_SWAPENTS 2
#define MM_SHMEMPAGES 3

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PROFQ_MEM_STATES);
	__type(key, __u64); /* the mm_struct's address */
	__type(value, struct profq_mem_state);
} mem_state SEC(".maps");

/* tgid -> its mm's address, for the exit, when task->mm may already be cleared. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PROFQ_MEM_STATES);
	__type(key, __u32);
	__type(value, __u64);
} mem_mm SEC(".maps");

/*
 * The fast path. rss_stat fires on every page the resident set gains or loses (a process
 * faulting in 1 GiB/s: 262,144 times a second), and almost every time the change is too small
 * to send. Each CPU keeps, for the last few address spaces it saw, the band of RSS values
 * that would send nothing (within the threshold of the last record sent): inside it the
 * program reads the counters, compares and returns, without a hash lookup. A band another CPU
 * made stale only delays a record until this CPU's next value leaves it.
 */
#define MEM_BANDS 8

struct mem_band {
	__u64 mm;
	__u64 lo, hi; /* bytes, exclusive */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MEM_BANDS);
	__type(key, __u32);
	__type(value, struct mem_band);
} mem_bands SEC(".maps");

struct mem_rss {
	__u64 file, anon, shmem;
};

static __always_inline __u64 pages_bytes(__s64 v)
{
	/* Per-CPU batches not yet folded in can make a count negative for a moment. */
	return v > 0 ? (__u64)v << page_shift : 0;
}

/* The counters as the kernel reads them (get_mm_counter()); mm is a trusted BTF pointer (the
 * tracepoint's argument, or the current task's), so these are plain loads, relocated by
 * CO-RE (constant indexes: the array's element size is relocated with each). */
static __always_inline void mm_rss(struct mm_struct *mm, struct mem_rss *r)
{
	r->file = pages_bytes(mm->rss_stat[MM_FILEPAGES].count);
	r->anon = pages_bytes(mm->rss_stat[MM_ANONPAGES].count);
	r->shmem = pages_bytes(mm->rss_stat[MM_SHMEMPAGES].count);
}

static __always_inline __u64 mem_total(const struct mem_rss *r)
{
	return r->file + r->anon + r->shmem;
}

static __always_inline void mem_send(struct profq_mem_state *st, __u64 now, __u32 flags)
{
	struct profq_counters *c = cpu_counters(bpf_get_smp_processor_id());
	struct profq_mem *e;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		c->lost_mem++;
		return;
	}
	e->type = PROFQ_EVENT_MEM;
	e->pid = st->tgid;
	e->time_ns = now;
	e->start_ns = st->start_ns;
	e->file_bytes = st->file;
	e->anon_bytes = st->anon;
	e->shmem_bytes = st->shmem;
	e->peak_bytes = st->peak;
	e->peak_ns = st->peak_ns;
	e->flags = flags | (st->flags & PROFQ_MEM_PEAK_OLD);
	e->pad = 0;
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
}

/*
 * The peak: the kernel's high-water mark (hiwater_rss, raised before every unmapping; with the
 * current RSS, what VmHWM shows), and every value this program saw. Reached between two
 * records, its time is known to the record before it.
 */
static __always_inline void mem_peak(struct profq_mem_state *st, struct mm_struct *mm, __u64 rss,
				     __u64 now)
{
	__u64 hiwater = (__u64)mm->hiwater_rss << page_shift;

	if (rss > st->peak) {
		st->peak = rss;
		st->peak_ns = now;
	}
	if (hiwater > st->peak) {
		st->peak = hiwater;
		st->peak_ns = st->last_ns ?: now;
	}
}

/* The process mm is charged to (mm->owner), 0 when the kernel does not say. */
static __always_inline __u32 mm_owner(struct mm_struct *mm)
{
	if (!bpf_core_field_exists(mm->owner))
		return 0;
	return BPF_CORE_READ(mm, owner, tgid);
}

/*
 * The state of mm, made when mm is the current task's (its first change we see), or made again
 * when the state is of a process that no longer owns mm: an address space freed without our
 * seeing its end and its memory reused for a new one. NULL for changes that are not a live
 * process's memory.
 */
static __always_inline struct profq_mem_state *mem_find(struct mm_struct *mm,
							const struct mem_rss *r, __u64 now)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct profq_mem_state *st, init = {};
	__u64 key = (__u64)mm, *old;
	__u32 tgid = (__u32)(bpf_get_current_pid_tgid() >> 32), owner;
	struct mm_struct *cur = task->mm;

	st = bpf_map_lookup_elem(&mem_state, &key);
	/* The process's own old address space torn down (exec), or its teardown at exit. */
	if (st && st->tgid == tgid)
		return cur == mm ? st : NULL;
	/* Another task: reclaim, a vfork child before its exec, a remote access; or the state
	 * is stale. mm->owner tells. */
	if (st) {
		owner = mm_owner(mm);
		if (owner == 0 || owner == st->tgid)
			return st;
	}
	if (tgid == 0 || cur != mm)
		return NULL;
	init.tgid = tgid;
	init.start_ns = task->group_leader->start_boottime;
	init.peak = mem_total(r);
	init.peak_ns = now;
	/* Started before we followed it: the kernel's high-water mark is the peak so far. */
	if (((__u64)mm->hiwater_rss << page_shift) > init.peak) {
		init.peak = (__u64)mm->hiwater_rss << page_shift;
		init.flags = PROFQ_MEM_PEAK_OLD;
	}
	if (bpf_map_update_elem(&mem_state, &key, &init, BPF_ANY) < 0)
		return NULL;
	/* The address space the process had before (exec) is done with. */
	old = bpf_map_lookup_elem(&mem_mm, &tgid);
	if (old && *old != key)
		(void)bpf_map_delete_elem(&mem_state, old);
	(void)bpf_map_update_elem(&mem_mm, &tgid, &key, BPF_ANY);
	return bpf_map_lookup_elem(&mem_state, &key);
}

SEC("tp_btf/rss_stat")
int BPF_PROG(profq_rss_stat, struct mm_struct *mm, int member)
{
	/* By the current process: mostly the owner of mm (the verifier allows no arithmetic on
	 * the pointer itself). */
	__u32 slot = (__u32)(bpf_get_current_pid_tgid() >> 32) & (MEM_BANDS - 1);
	struct profq_mem_state *st;
	struct mem_band *band;
	struct mem_rss r;
	__u64 rss, now, delta, threshold;

	if (member == MM_SWAPENTS) /* not resident */
		return 0;
	mm_rss(mm, &r);
	rss = mem_total(&r);
	band = bpf_map_lookup_elem(&mem_bands, &slot);
	if (!band)
		return 0;
	if (band->mm == (__u64)mm && rss > band->lo && rss < band->hi)
		return 0;

	now = bpf_ktime_get_boot_ns();
	st = mem_find(mm, &r, now);
	if (!st)
		return 0;
	cpu_counters(bpf_get_smp_processor_id())->mem_events++;
	st->file = r.file;
	st->anon = r.anon;
	st->shmem = r.shmem;
	threshold = st->last_rss >> 6;
	if (threshold < mem_threshold)
		threshold = mem_threshold;
	delta = rss > st->last_rss ? rss - st->last_rss : st->last_rss - rss;
	if (delta >= threshold) {
		mem_peak(st, mm, rss, now);
		st->last_rss = rss;
		st->last_ns = now;
		mem_send(st, now, 0);
		threshold = rss >> 6;
		if (threshold < mem_threshold)
			threshold = mem_threshold;
	} else if (rss > st->peak) {
		st->peak = rss;
		st->peak_ns = now;
	}
	band->mm = (__u64)mm;
	band->lo = st->last_rss > threshold ? st->last_rss - threshold : 0;
	band->hi = st->last_rss + threshold;
	/* Above the peak, every new value is a new peak: only the record sent when the band is
	 * left, and the high-water mark, say it. */
	return 0;
}

/* The last thread's exit: the final record, with the kernel's high-water mark while the task
 * still holds its mm. */
static __always_inline void mem_exit(struct task_struct *task)
{
	__u32 tgid = task->tgid;
	struct profq_mem_state *st;
	struct mm_struct *mm = task->mm;
	struct mem_rss r;
	__u64 *key, now = bpf_ktime_get_boot_ns();

	key = bpf_map_lookup_elem(&mem_mm, &tgid);
	if (!key)
		return;
	st = bpf_map_lookup_elem(&mem_state, key);
	if (st && st->tgid == tgid) {
		if (mm && (__u64)mm == *key) {
			mm_rss(mm, &r);
			st->file = r.file;
			st->anon = r.anon;
			st->shmem = r.shmem;
			mem_peak(st, mm, mem_total(&r), now);
		}
		mem_send(st, now, PROFQ_MEM_EXIT);
		(void)bpf_map_delete_elem(&mem_state, key);
	}
	(void)bpf_map_delete_elem(&mem_mm, &tgid);
}

SEC("tp_btf/mark_victim")
int BPF_PROG(profq_mark_victim, struct task_struct *task, __u32 uid)
{
	__u32 tgid = task->tgid;
	struct profq_mem_state *st;
	struct mm_struct *mm = task->mm;
	struct mem_rss r;
	__u64 *key, now = bpf_ktime_get_boot_ns();

	key = bpf_map_lookup_elem(&mem_mm, &tgid);
	if (!key)
		return 0;
	st = bpf_map_lookup_elem(&mem_state, key);
	if (!st || st->tgid != tgid)
		return 0;
	if (mm && (__u64)mm == *key) {
		mm_rss(mm, &r);
		st->file = r.file;
		st->anon = r.anon;
		st->shmem = r.shmem;
		mem_peak(st, mm, mem_total(&r), now);
	}
	mem_send(st, now, PROFQ_MEM_OOM_KILL);
	return 0;
}

/* ---- end of memory ---- */

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
	e->cgroup_id = bpf_get_current_cgroup_id();
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

/* The thread group's times, summed as thread_group_cputime() sums them. */
typedef struct GroupTimes {
	struct signal_struct *sig;
	__u64 head;	/* &sig->thread_head */
	__u64 node;	/* the list node to look at next */
	__u64 node_off; /* offset of thread_node in task_struct */
	__u64 utime, stime, rtime;
	__u32 seq;
	__u32 done; /* the walk came back to head */
} GroupTimes;

static long group_seq_step(__u64 index, void *ctx)
{
	GroupTimes *g = ctx;
	struct signal_struct *sig = g->sig; /* not inside BPF_CORE_READ: GroupTimes is ours */

	g->seq = BPF_CORE_READ(sig, stats_lock.seqcount.seqcount.sequence);
	return g->seq & 1 ? 0 : 1;
}

static long group_thread_step(__u64 index, void *ctx)
{
	GroupTimes *g = ctx;
	struct list_head *node;
	struct task_struct *t;

	if (g->node == g->head) {
		g->done = 1;
		return 1;
	}
	if (g->node < g->node_off)
		return 1;
	t = (struct task_struct *)(g->node - g->node_off);
	g->utime += BPF_CORE_READ(t, utime);
	g->stime += BPF_CORE_READ(t, stime);
	g->rtime += BPF_CORE_READ(t, se.sum_exec_runtime);
	node = (struct list_head *)g->node;
	g->node = (__u64)BPF_CORE_READ(node, next);
	return 0;
}

/*
 * The thread group's user, system and run time into e, as thread_group_cputime() sums them: the
 * totals the signal struct keeps of the threads already released, plus each thread still on its
 * list. That is not only the exiting (last) thread and a leader that exited first: a thread
 * whose exit began earlier may still be on its way to release_task() (another CPU, or
 * preempted), where its times move into the totals and it leaves the list, under the
 * stats_lock sequence count, which the sum is read against (and read again when a release
 * moved something meanwhile). 0 when the sum could not be completed.
 */
static __always_inline int group_cputime(struct signal_struct *sig, struct profq_event *e)
{
	GroupTimes g = {
		.sig = sig,
		.head = (__u64)&sig->thread_head,
		.node_off = bpf_core_field_offset(struct task_struct, thread_node),
	};

	for (int attempt = 0; attempt < 3; attempt++) {
		/* A release in progress holds the count odd for a few instructions. */
		bpf_loop(1024, group_seq_step, &g, 0);
		if (g.seq & 1)
			continue;
		g.utime = BPF_CORE_READ(sig, utime);
		g.stime = BPF_CORE_READ(sig, stime);
		g.rtime = BPF_CORE_READ(sig, sum_sched_runtime);
		g.node = (__u64)BPF_CORE_READ(sig, thread_head.next);
		g.done = 0;
		bpf_loop(PROFQ_EXIT_THREAD_WALK_MAX, group_thread_step, &g, 0);
		if (g.done && BPF_CORE_READ(sig, stats_lock.seqcount.seqcount.sequence) == g.seq) {
			e->utime_ns = g.utime;
			e->stime_ns = g.stime;
			e->rtime_ns = g.rtime;
			return 1;
		}
	}
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(profq_exit, struct task_struct *task, _Bool group_dead)
{
	struct task_struct *leader;
	struct signal_struct *sig;
	struct profq_counters *c;
	struct profq_event *e;

	/* Only the last thread: every other one has begun its exit by now. */
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
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->exit_code = (__u32)BPF_CORE_READ(task, exit_code);
	e->args_len = 0;
	if (!group_cputime(sig, e)) {
		e->utime_ns = e->stime_ns = e->rtime_ns = 0;
		e->flags |= PROFQ_EVENT_PARTIAL;
	}
	e->cutime_ns = BPF_CORE_READ(sig, cutime);
	e->cstime_ns = BPF_CORE_READ(sig, cstime);
	BPF_CORE_READ_STR_INTO(&e->comm, task, comm);
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	/* After the exit event, which names a process profqd has not seen yet. */
	if (mem_enabled)
		mem_exit(task);
	return 0;
}

/*
 * Off-CPU time, from tp_btf/sched_switch alone (fentry and kprobes need a kernel built with the
 * function tracer). The thread going out is current: its stack is read there, as a CPU sample's,
 * and sent at once (PROFQ_SAMPLE_OFFCPU_STACK), with its state, timestamped in a slot keyed by
 * the thread (task storage: a thread woken on another CPU finds its own; the slot goes with the
 * thread). When it comes back in, the interval d is known and a small end record pairs with the
 * stack (PROFQ_SAMPLE_OFFCPU_END, same seq). Reading a stack at every switch is too dear under
 * a switch storm: a switch-out is captured with probability keep, the larger of the CPU's (set
 * per 100 ms epoch so that about offcpu_budget are captured per epoch) and, when the thread
 * waits (is not preempted) and the CPU has captured less than OFFCPU_QUIET_CAP times its
 * budget in the epoch, the thread's (1 for a thread that waits less often than every
 * OFFCPU_QUIET_NS). A captured interval of length d stands for d / keep; one at least
 * offcpu_long_ns long counts at d whether captured or not, sent whole at the switch-in if it was
 * not, with the stack that can be read from outside the thread (PROFQ_SAMPLE_OFFCPU_WHOLE: kernel
 * frames and the user instruction pointer). Both unbiased: docs/ARCHITECTURE.md.
 */

/* Stacks captured per CPU per epoch, about; 0: off (the program is not attached). */
const volatile __u32 offcpu_budget = 0;
/*
 * Preemptions captured per CPU per epoch, about. Their rate is bounded by the scheduler (a
 * tick's, a wake-up's), not by what threads do, so they get a budget of their own: a preempted
 * thread's stack is where it was computing, which a long interval sent whole (user callers not
 * read) would lose.
 */
const volatile __u32 offcpu_preempt_budget = 0;
/* An interval at least this long always counts, at its full length. */
const volatile __u64 offcpu_long_ns = 10000000;

#define OFFCPU_EPOCH_NS 100000000ull
#define OFFCPU_ONE 65536u

#define TASK_INTERRUPTIBLE 0x1
#define TASK_UNINTERRUPTIBLE 0x2
#define TASK_DEAD 0x80
#define TASK_NOLOAD 0x400
#define PF_KTHREAD 0x00200000

struct offcpu_slot {
	__u64 out_ns;	/* CLOCK_BOOTTIME at switch-out; 0: switched in (or never seen out) */
	__u64 last_ns;	/* the thread's last wait (switch-out not preempted) */
	__u64 gap_ns;	/* moving average of the time between its waits */
	__u32 seq;	/* captures of this thread */
	__u32 keep;	/* the capture's probability, in 1/65536 */
	__u32 state;	/* PROFQ_KIND_* at switch-out */
	__u32 captured; /* the stack was sent at this switch-out */
	__u64 whole_ip; /* the user ip of its last long wait sent whole; 0 once captured there */
};

/* A thread that waits less often than every this (on average) is always captured... */
#define OFFCPU_QUIET_NS 100000000ull
/* ...while the CPU has captured fewer than this many times its budget in the epoch. */
#define OFFCPU_QUIET_CAP 2
/*
 * A thread waiting again where its last long wait was sent whole (the same user instruction
 * pointer: the same syscall from the same code, most likely) is captured, up to this many times
 * the budget per CPU and epoch besides the rest: a whole interval's user callers are those of
 * the thread's last capture at its place (profqd), and a place never captured has none. On a
 * busy CPU the budget goes to threads waiting often, and a thread waiting long at two places in
 * turn could go its whole life uncaptured at one of them.
 */
#define OFFCPU_REVISIT_CAP 1

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct offcpu_slot);
} offcpu_slots SEC(".maps");

/* The record being built, per CPU. Not the samples' scratch: a CPU sample (NMI) may interrupt
 * this program. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct profq_sample);
} offcpu_scratch SEC(".maps");

struct profq_offcpu_counters offcpu_counters[PROFQ_MAX_CPUS];

static __always_inline __u32 offcpu_kind(_Bool preempt, unsigned int state)
{
	/* Preempted, or switched out before its sleep took effect: it was ready to run. */
	if (preempt || !(state & (TASK_INTERRUPTIBLE | TASK_UNINTERRUPTIBLE)))
		return PROFQ_KIND_RUNNABLE;
	/* TASK_IDLE (uninterruptible but not counted in the load) is a sleep, not I/O. */
	if ((state & TASK_UNINTERRUPTIBLE) && !(state & TASK_NOLOAD))
		return PROFQ_KIND_BLOCKED;
	return PROFQ_KIND_SLEEPING;
}

/* The probability that n events an epoch are captured about budget times. */
static __always_inline __u32 offcpu_share(__u64 budget, __u64 n)
{
	__u64 keep = n > budget ? budget * OFFCPU_ONE / n : OFFCPU_ONE;

	return keep ? (__u32)keep : 1;
}

/* This epoch's capture probability; rolls the epoch over every OFFCPU_EPOCH_NS. */
static __always_inline __u32 offcpu_keep(struct profq_offcpu_counters *oc, __u64 now)
{
	if (now - oc->epoch_ns >= OFFCPU_EPOCH_NS) {
		oc->keep = offcpu_share(offcpu_budget, oc->epoch_switches);
		oc->keep_preempt = offcpu_share(offcpu_preempt_budget, oc->epoch_preempts);
		oc->epoch_ns = now;
		oc->epoch_switches = 0;
		oc->epoch_captures = 0;
		oc->epoch_preempts = 0;
		oc->epoch_revisits = 0;
	}
	oc->epoch_switches++;
	return oc->keep;
}

/*
 * Whether the sample ring holds more than quarters/4 of its size: off-CPU and fault records then
 * give way (counted in *shed), so that CPU samples always find room.
 */
static __always_inline int offcpu_ring_full(__u32 *shed, __u64 quarters)
{
	__u64 size = bpf_ringbuf_query(&samples, BPF_RB_RING_SIZE);

	if (bpf_ringbuf_query(&samples, BPF_RB_AVAIL_DATA) <= size / 4 * quarters)
		return 0;
	(*shed)++;
	return 1;
}

/*
 * Sends the stack of the current thread, being switched out: kernel frames from ctx, the user
 * registers saved at kernel entry and, in stack-copy mode, the user stack, as profq_sample()
 * does for a sample taken in kernel mode. 0, or -1 if it was lost.
 */
static __always_inline int offcpu_send_stack(void *ctx, struct task_struct *task,
					     const struct offcpu_slot *slot,
					     struct profq_offcpu_counters *oc, __u32 cpu)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct profq_sample *s;
	__u32 zero = 0;

	if (offcpu_ring_full(&oc->ring_shed, 2))
		return -1;
	s = bpf_map_lookup_elem(&offcpu_scratch, &zero);
	if (!s)
		return -1;
	s->kind = slot->state;
	s->seq = slot->seq;
	s->weight = 0;
	s->time_ns = slot->out_ns;
	sample_identity(s, task, pid_tgid, cpu,
			PROFQ_SAMPLE_OFFCPU_STACK | PROFQ_SAMPLE_KERNEL_MODE);
	return send_sample(&oc->ring, s, capture_stacks(ctx, s, &oc->ring, task, 0, 0, 0));
}

/* Sends the end of next's captured interval. */
static __always_inline void offcpu_send_end(struct task_struct *next,
					    const struct offcpu_slot *slot,
					    struct profq_offcpu_counters *oc, __u64 now, __u32 cpu)
{
	__u64 d = now - slot->out_ns;
	__u64 weight = d >= offcpu_long_ns ? d : d * OFFCPU_ONE / (slot->keep ?: 1);
	struct profq_sample *s;

	if (offcpu_ring_full(&oc->ring_shed, 3))
		return;
	s = bpf_ringbuf_reserve(&samples, PROFQ_SAMPLE_HDR_SIZE, 0);
	if (!s) {
		oc->lost_ringbuf++;
		return;
	}
	s->time_ns = now;
	s->start_ns = BPF_CORE_READ(next, group_leader, start_boottime);
	s->mm_id = (__u64)BPF_CORE_READ(next, mm);
	s->tgid = BPF_CORE_READ(next, tgid);
	s->tid = BPF_CORE_READ(next, pid);
	s->cpu = cpu;
	s->flags = PROFQ_SAMPLE_OFFCPU_END | PROFQ_SAMPLE_KERNEL_MODE;
	s->uid = BPF_CORE_READ(next, real_cred, uid.val);
	s->kstack_len = 0;
	s->ustack_len = 0;
	BPF_CORE_READ_STR_INTO(&s->comm, next, comm);
	BPF_CORE_READ_STR_INTO(&s->pcomm, next, group_leader, comm);
	s->user_ip = s->user_sp = s->user_bp = 0;
	s->stack_len = 0;
	s->py_len = 0;
	s->py_flags = 0;
	s->kind = slot->state;
	s->seq = slot->seq;
	s->weight = weight;
	bpf_ringbuf_submit(s, BPF_RB_NO_WAKEUP);
	oc->ends++;
	oc->end_ns += weight;
}

/* The user instruction pointer a thread entered the kernel at (saved in its pt_regs). */
static __always_inline __u64 offcpu_user_ip(struct task_struct *task)
{
	struct pt_regs___kernel *uregs = (void *)bpf_task_pt_regs(task);

	return BPF_CORE_READ(uregs, ip);
}

/*
 * A long interval whose stack was not captured: sent whole at the switch-in, with the stack
 * next is switched out at, read from outside it: its kernel frames (bpf_get_task_stack()) and
 * its user instruction pointer (saved at kernel entry); its user callers cannot be read from
 * here (another address space is mapped). Returns that instruction pointer if it was sent (a
 * sleeping interval's), else 0.
 */
static __always_inline __u64 offcpu_send_whole(struct task_struct *next,
					       const struct offcpu_slot *slot,
					       struct profq_offcpu_counters *oc, __u64 now,
					       __u32 cpu)
{
	struct pt_regs___kernel *uregs = (void *)bpf_task_pt_regs(next);
	__u32 zero = 0, klen = 0, size;
	__u64 ip = 0;
	struct profq_sample *s;
	long n;

	if (offcpu_ring_full(&oc->ring_shed, 3))
		return 0;
	s = bpf_map_lookup_elem(&offcpu_scratch, &zero);
	if (!s)
		return 0;
	s->time_ns = now;
	s->start_ns = BPF_CORE_READ(next, group_leader, start_boottime);
	s->mm_id = (__u64)BPF_CORE_READ(next, mm);
	s->tgid = BPF_CORE_READ(next, tgid);
	s->tid = BPF_CORE_READ(next, pid);
	s->cpu = cpu;
	s->uid = BPF_CORE_READ(next, real_cred, uid.val);
	s->flags = PROFQ_SAMPLE_OFFCPU_WHOLE | PROFQ_SAMPLE_KERNEL_MODE |
		   (task_private(next) ? PROFQ_SAMPLE_PRIVATE : 0);
	BPF_CORE_READ_STR_INTO(&s->comm, next, comm);
	BPF_CORE_READ_STR_INTO(&s->pcomm, next, group_leader, comm);
	n = bpf_get_task_stack(next, s->addrs, STACK_BYTES, 0);
	if (n < 0) {
		oc->ring.kstack_errors++;
		s->flags |= PROFQ_SAMPLE_KSTACK_ERR;
	} else {
		klen = ((__u32)n / sizeof(__u64)) & 0x7f;
	}
	s->user_ip = s->user_sp = s->user_bp = 0;
	s->ustack_len = 0;
	if (s->mm_id && klen < PROFQ_MAX_FRAMES) {
		ip = BPF_CORE_READ(uregs, ip);
		s->addrs[klen & 0x7f] = ip;
		s->ustack_len = 1;
	}
	s->kstack_len = klen;
	s->stack_len = 0;
	s->py_len = 0;
	s->py_flags = 0;
	s->kind = slot->state;
	s->seq = 0;
	s->weight = now - slot->out_ns;
	size = PROFQ_SAMPLE_HDR_SIZE + (klen + s->ustack_len) * sizeof(__u64);
	if (size > sizeof(*s))
		return 0;
	if (bpf_ringbuf_output(&samples, s, size, BPF_RB_NO_WAKEUP) < 0) {
		oc->lost_ringbuf++;
		return 0;
	}
	oc->wholes++;
	oc->end_ns += s->weight;
	return slot->state != PROFQ_KIND_RUNNABLE ? ip : 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(profq_offcpu_switch, _Bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	__u32 cpu = bpf_get_smp_processor_id();
	struct profq_offcpu_counters *oc = &offcpu_counters[cpu & (PROFQ_MAX_CPUS - 1)];
	__u64 now = bpf_ktime_get_boot_ns();
	struct offcpu_slot *slot;

	/* The thread coming in: the end of its captured interval, or a long one whole. */
	if (next->pid != 0 && !(next->flags & PF_KTHREAD)) {
		slot = bpf_task_storage_get(&offcpu_slots, next, 0, 0);
		if (slot && slot->out_ns && now > slot->out_ns) {
			if (slot->captured)
				offcpu_send_end(next, slot, oc, now, cpu);
			else if (now - slot->out_ns >= offcpu_long_ns)
				slot->whole_ip = offcpu_send_whole(next, slot, oc, now, cpu);
			slot->out_ns = 0;
		}
	}
	/* The thread going out (current): capture it, or not. Not at its exit: it never
	 * comes back. */
	if (prev->pid == 0 || (prev->flags & PF_KTHREAD) || (prev_state & TASK_DEAD))
		return 0;
	oc->switches++;
	__u32 keep = offcpu_keep(oc, now), quiet, state;

	slot = bpf_task_storage_get(&offcpu_slots, prev, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!slot) {
		oc->no_storage++;
		return 0;
	}
	/*
	 * A thread that waits rarely is captured at every wait whatever the CPU's budget
	 * (daemons, a request waiting on I/O), one that waits often at about ten a second, as
	 * long as the CPU has not captured twice its budget in this epoch: the
	 * probability is the larger of the two, known (from the past only) before the
	 * interval's length is. Being preempted is not waiting: those switches count against
	 * the CPU's budget only, and do not make the thread look busy.
	 */
	state = offcpu_kind(preempt, prev_state);
	slot->out_ns = now;
	slot->state = state;
	slot->captured = 0;
	if (state == PROFQ_KIND_RUNNABLE) {
		oc->epoch_preempts++;
		if (oc->keep_preempt > keep)
			keep = oc->keep_preempt;
	} else {
		if (slot->last_ns == 0)
			slot->gap_ns = OFFCPU_QUIET_NS;
		else if (now > slot->last_ns)
			slot->gap_ns = slot->gap_ns - (slot->gap_ns >> 3) +
				       ((now - slot->last_ns) >> 3);
		slot->last_ns = now;
		quiet = slot->gap_ns >= OFFCPU_QUIET_NS
				? OFFCPU_ONE
				: (__u32)(slot->gap_ns * OFFCPU_ONE / OFFCPU_QUIET_NS);
		if (quiet > keep && oc->epoch_captures < OFFCPU_QUIET_CAP * offcpu_budget)
			keep = quiet;
		/* Its place's last long wait went whole: this one is captured (the choice
		 * depends on the past only, as the others do). */
		if (keep < OFFCPU_ONE && slot->whole_ip &&
		    oc->epoch_revisits < OFFCPU_REVISIT_CAP * offcpu_budget &&
		    offcpu_user_ip(prev) == slot->whole_ip) {
			keep = OFFCPU_ONE;
			oc->epoch_revisits++;
			oc->revisits++;
		}
	}
	if (keep < OFFCPU_ONE && (bpf_get_prandom_u32() & (OFFCPU_ONE - 1)) >= keep)
		return 0;
	/* Waits captured: preemptions have a budget of their own, and on a busy CPU they would
	 * use up the quiet threads' before those wait. */
	if (state != PROFQ_KIND_RUNNABLE)
		oc->epoch_captures++;
	slot->seq++;
	slot->keep = keep;
	if (offcpu_send_stack(ctx, prev, slot, oc, cpu) == 0) {
		slot->captured = 1;
		oc->captured++;
		if (slot->whole_ip && state != PROFQ_KIND_RUNNABLE &&
		    offcpu_user_ip(prev) == slot->whole_ip)
			slot->whole_ip = 0;
	}
	return 0;
}

/*
 * Page faults: a PERF_COUNT_SW_PAGE_FAULTS_MIN event per CPU counts every successful minor fault
 * (the kernel's mm_account_fault(): not the ones that failed or will be retried, not major
 * ones) and runs this program every period of them, on the faulting thread, with the fault's
 * registers: user ones for a fault in user code (the stack that touched the memory), kernel
 * ones for a fault in a copy to or from user memory (read(2) into a new buffer). The record is
 * a CPU sample's with kind PROFQ_KIND_FAULTS and the weight period x the page size in bytes;
 * it gives way to CPU samples when the ring is half full (as off-CPU stacks do).
 * docs/ARCHITECTURE.md says what the
 * count covers (and not).
 */

/* The record being built, per CPU: a CPU sample (a timer interrupt) may interrupt this
 * program, which runs in the faulting thread with preemption off. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct profq_sample);
} fault_scratch SEC(".maps");

struct profq_fault_counters fault_counters[PROFQ_MAX_CPUS];

SEC("perf_event")
int profq_fault(struct bpf_perf_event_data *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 cpu = bpf_get_smp_processor_id(), zero = 0;
	struct profq_fault_counters *fc = &fault_counters[cpu & (PROFQ_MAX_CPUS - 1)];
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct profq_sample *s;
	__u64 weight = ctx->sample_period << page_shift;

	fc->samples++;
	if ((__u32)pid_tgid == 0 || BPF_CORE_READ(task, mm) == NULL) {
		fc->kthread++;
		return 0;
	}
	if (offcpu_ring_full(&fc->ring_shed, 2))
		return 0;
	s = bpf_map_lookup_elem(&fault_scratch, &zero);
	if (!s)
		return 0;
	s->time_ns = bpf_ktime_get_boot_ns();
	sample_identity(s, task, pid_tgid, cpu,
			PROFQ_SAMPLE_FAULT |
				((ctx->regs.cs & 3) == 0 ? PROFQ_SAMPLE_KERNEL_MODE : 0));
	s->kind = PROFQ_KIND_FAULTS;
	s->seq = 0;
	s->weight = weight;
	if (send_sample(&fc->ring, s,
			capture_stacks(ctx, s, &fc->ring, task, ctx->regs.rip, ctx->regs.rsp,
				       ctx->regs.rbp)) == 0) {
		fc->sent++;
		fc->bytes += weight;
	}
	return 0;
}
