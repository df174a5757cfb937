/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <malloc.h>
#include <unistd.h>
#include <xxhash.h>

#include "base/log.h"
#include "base/macro.h"
#include "base/timeutil.h"
#include "process/maplog.h"
#include "process/proctable.h"
#include "sampling/profiler.h"
#include "unwind/stackcache.h"
#include "unwind/unwind.h"

/* A process not seen for this long is checked for exit (in /proc) by the sweep: its exit
 * event may have been lost. */
#define PROCESS_IDLE_NS (2 * NSEC_PER_SEC)
#define SWEEP_INTERVAL_NS (10 * NSEC_PER_SEC)
#define HOUSEKEEPING_NS NSEC_PER_SEC
/* The stack cache: about a sixty-fourth of the memory budget, at 56 bytes an entry (the entry
 * and its hash slots), a power of two of entries within these. At the default 64M, 16,384
 * entries (0.9 MiB): 80 s of distinct stacks at 99 Hz on two CPUs. 65,536 took 3.5 MiB, most
 * of it under a fork storm for keys never asked again (a key is of one process incarnation). */
#define STACK_CACHE_MIN 4096
#define STACK_CACHE_MAX 65536
#define STACK_CACHE_ENTRY_BYTES 56
/* Mappings of exited processes stay in the sideband log this long for late samples. */
#define MAPLOG_KEEP_NS (10 * NSEC_PER_SEC)

struct Profiler {
	ProfilerOptions opts;
	Store *store;
	Symbolizer *sym;
	MapLog *maplog;
	ProcTable *procs;
	StackCache *stacks;
	Python *python;		/* NULL: no Python frames */
	PersistWriter *persist; /* NULL: in memory only */
	int lock_fd;		/* the state dir's lock, -1 if not held */
	int persist_error;	/* why persistence is off */
	bool persist_failing;	/* the last write failed */
	uint8_t *held;		/* while loading: exited records already held, by ProcId */
	size_t n_held;
	PersistLoadStats loaded;
	size_t load_limit;	 /* store memory a restart loads */
	int64_t boot_to_real_ns; /* realtime - boottime, refreshed every tick */
	uint64_t last_sweep_ns;
	uint64_t last_housekeeping_ns;
	bool near_budget; /* the last memory check found the data within an eighth of its budget */
	uint64_t caches_shrunk_ns; /* when memory pressure last emptied the caches */
	/* Windows evicted for memory stay on disk: the start of the oldest (INT64_MAX: none),
	 * and the end of the newest the disk budget has deleted since (INT64_MIN: none). */
	int64_t evicted_from_ns;
	int64_t disk_deleted_ns;
	/* Processes with a memory point not stored yet (Process.mem_pending). */
	struct MemKey {
		uint32_t pid;
		uint64_t start_ns;
	} * mem_pending;
	size_t n_mem_pending, allocated_mem_pending;
	/* Off-CPU stacks waiting for their end, by thread id (direct-mapped, made on first use). */
	struct OffcpuPending *pending;
	/* The last captured off-CPU stack of a thread at a place (kernel frames and the user
	 * leaf), for the whole intervals read there without their user callers (made on first
	 * use). */
	struct OffcpuPlace *places;
	uint32_t place_clock;
	/* Samples named while their DWARF was asked of the worker, held to be handled again once
	 * it has answered (see hold_sample()). */
	struct HeldSample **waiting;
	size_t n_waiting, allocated_waiting, waiting_bytes;
	uint64_t waiting_answers; /* the worker's answers when they were last tried */
	bool no_holding;	  /* handling the held samples for the last time */
	ProfilerStats stats;
};

/* A sample record held for its DWARF: since when (CLOCK_MONOTONIC ns), and a copy of it. */
typedef struct HeldSample {
	uint64_t since;
	size_t size;
	uint8_t data[];
} HeldSample;

/* A sample is held at most this long, and the held ones take at most this much (of at most a
 * sixteenth of the memory budget): past either, a sample is stored with the names it got. At
 * 99 Hz on two busy CPUs, 4 MiB (the default budget's) holds about 5 s of samples. */
#define HOLD_MAX_NS (5 * NSEC_PER_SEC)
/* A held sample handled again finds its process in the table (and its sweep is a second). */
_Static_assert(HOLD_MAX_NS + NSEC_PER_SEC < PROCTABLE_EXIT_GRACE_NS,
	       "held samples outlive their process");
#define HOLD_MAX_BYTES (16u << 20)

static void held_samples_retry(Profiler *p, uint64_t mono, bool last);
static void held_samples_of(Profiler *p, uint32_t tgid, uint64_t start_ns);

/* A thread's captured off-CPU stack, resolved, until its end record says how long it was off.
 * Holds a reference to proc, stack and thread. proc 0: free. */
typedef struct OffcpuPending {
	ProcId proc;
	uint32_t tid, seq, kind;
	StackId stack;
	StrId thread;
	uint64_t start_ns; /* the group leader's start_boottime */
	uint64_t time_ns;  /* CLOCK_BOOTTIME of the switch-out */
} OffcpuPending;

#define OFFCPU_PENDING (1u << 14)

/* A thread's place of waiting and the full stack last captured there; holds a reference to
 * stack. stack 0: free. */
typedef struct OffcpuPlace {
	uint64_t key; /* hash of the thread and the place */
	StackId stack;
	uint32_t used; /* Profiler.place_clock when last put or borrowed from */
} OffcpuPlace;

/*
 * Sets of OFFCPU_WAYS places, the least recently used replaced. A place is borrowed from when
 * its thread next waits there uncaptured, often seconds later, while every CPU captures up to
 * a few hundred stacks a second elsewhere: with one slot per hash, any of those whose hash
 * fell on it would have put it out.
 */
#define OFFCPU_PLACES (1u << 14)
#define OFFCPU_WAYS 4u

static void pending_release(Profiler *p, OffcpuPending *e)
{
	if (!e->proc)
		return;
	store_stack_unref(p->store, e->stack);
	store_string_unref(p->store, e->thread);
	store_proc_unref(p->store, e->proc);
	*e = (OffcpuPending){ 0 };
}

static void on_loaded_proc(void *userdata, ProcId id, const StoreProc *sp)
{
	Profiler *p = userdata;

	/* Exited processes stay queryable after a restart, as they were before it; once each,
	 * though a record may come again in later segments. */
	if (!(sp->flags & PROC_EXITED))
		return;
	if (id >= p->n_held) {
		size_t n = MAX((size_t)id + 1, p->n_held * 2);
		uint8_t *h = realloc(p->held, n);

		if (!h)
			return;
		memset(h + p->n_held, 0, n - p->n_held);
		p->held = h;
		p->n_held = n;
	}
	if (!p->held[id]) {
		p->held[id] = 1;
		proctable_hold_exited(p->procs, id, sp->exit_ns);
	}
}

static void on_load_version(void *userdata, const char *path, uint32_t version)
{
	(void)userdata;
	log_warning("Skipped segment '%s': it is in format version %" PRIu32
		    ", this profqd reads version %d.",
		    path, version, SEGMENT_VERSION);
}

static void on_load_problem(void *userdata, const char *path, int error, size_t good, size_t size)
{
	(void)userdata;
	if (error == -EPROTONOSUPPORT)
		return; /* on_load_version() says it better */
	if (good > 0)
		log_warning_errno(error, "Skipped the last %zu of %zu bytes of segment '%s': %m",
				  size - good, size, path);
	else
		log_warning_errno(error, "Skipped segment '%s': %m", path);
}

/*
 * Of max_memory, what the profiler's own data may take: with the process's resident set
 * known, what lies outside the accounting (code, BPF maps, allocator slack, files libdw maps)
 * comes off first, but never more than half: memory the allocator keeps after a free must
 * not make every window go.
 */
static size_t data_budget(Profiler *p, size_t used)
{
	int64_t rss = p->opts.resident ? p->opts.resident() : -1;
	size_t other = rss > 0 && (size_t)rss > used ? (size_t)rss - used : 0;

	p->stats.memory_other = other;
	p->stats.data_budget = p->opts.max_memory - MIN(other, p->opts.max_memory / 2);
	return p->stats.data_budget;
}

static size_t stack_cache_entries(uint64_t max_memory)
{
	size_t n = STACK_CACHE_MIN;

	while (n < STACK_CACHE_MAX && 2 * n * STACK_CACHE_ENTRY_BYTES <= max_memory / 64)
		n *= 2;
	return n;
}

/* Keeps what a restart loads within the memory budget should load_start() have been wrong
 * (the directory changed meanwhile, or its estimate): oldest windows out first. */
static void on_loaded_segment(void *userdata)
{
	Profiler *p = userdata;

	while (store_memory(p->store) > p->load_limit + p->load_limit / 4 &&
	       store_window_evict(p->store) == 0)
		p->stats.evicted_memory++;
}

typedef struct ScratchLoad {
	Store *store;
	size_t limit;
	uint64_t left_out;
} ScratchLoad;

static void scratch_evict(ScratchLoad *l)
{
	while (store_live_memory(l->store) > l->limit && store_window_count(l->store) > 1 &&
	       store_window_evict(l->store) == 0)
		l->left_out++;
}

static void on_scratch_segment(void *userdata)
{
	scratch_evict(userdata);
}

/*
 * Where a restart should start loading the state dir: the end of the oldest window that fits
 * load_limit with all newer ones, found by loading the segments into a scratch store and
 * evicting the oldest windows there as it goes (so that it holds little more than load_limit
 * and a segment). Loading everything into the profiler's store and evicting afterwards would
 * leave its tables at the size of it all. not_before if all fits.
 */
static int64_t load_start(Profiler *p, int64_t not_before, uint64_t *ret_left_out)
{
	_cleanup_(store_freep) Store *scratch = NULL;
	ScratchLoad l = { .limit = p->load_limit };
	const PersistLoadCallbacks cb = { .segment_done = on_scratch_segment, .userdata = &l };
	PersistLoadStats st;
	const Window *w;

	*ret_left_out = 0;
	if (store_new(&scratch) < 0)
		return not_before;
	l.store = scratch;
	if (persist_load(scratch, p->opts.state_dir, not_before, &cb, &st) < 0)
		return not_before;
	w = store_window(scratch, 0);
	*ret_left_out = l.left_out;
	return l.left_out > 0 && w ? MAX(not_before, w->end_ns) : not_before;
}

/* Loads what the state dir holds and opens it for writing. */
static int persist_open(Profiler *p)
{
	const PersistLoadCallbacks cb = {
		.proc = on_loaded_proc,
		.problem = on_load_problem,
		.version = on_load_version,
		.segment_done = on_loaded_segment,
		.userdata = p,
	};
	/* Segments span a sixth of the retention (whole segments are deleted), within limits. */
	uint64_t span = MIN(MAX(p->opts.retention_ns / 6, p->opts.window_ns), 3600 * NSEC_PER_SEC);
	int64_t not_before = now_real_ns() - (int64_t)p->opts.retention_ns;
	uint64_t left_out;
	int r, lock_error;

	/* Two daemons writing one directory would each delete the other's segments as expired
	 * and interleave windows: the second one does not start. */
	lock_error = persist_lock(p->opts.state_dir, &p->lock_fd);
	if (lock_error == -EBUSY)
		return log_error_errno(lock_error,
				       "State directory '%s' is in use by another profqd (it holds "
				       "'%s/" PERSIST_LOCK_FILE "'): %m",
				       p->opts.state_dir, p->opts.state_dir);

	/* What a restart loads: half the budget (of 64M, 32M). The rest is for what the
	 * process holds besides (code, BPF maps, allocator slack: 13-25 MB measured at 99 Hz)
	 * and some symbols; evict() makes room for more of them as samples need it. */
	p->load_limit = p->opts.max_memory / 2;
	not_before = load_start(p, not_before, &left_out);
	r = persist_load(p->store, p->opts.state_dir, not_before, &cb, &p->loaded);
	p->held = mfree(p->held);
	p->n_held = 0;
	if (r < 0 && r != -ENOENT) {
		p->persist_error = r;
		return log_error_errno(r, "Failed to read state directory '%s': %m",
				       p->opts.state_dir);
	}
	if (p->loaded.windows > 0)
		log_info("Loaded %" PRIu64 " windows from %" PRIu64 " segments in '%s'.",
			 p->loaded.windows, p->loaded.segments, p->opts.state_dir);
	/* Without the lock, read only: another writer may come. */
	r = lock_error < 0 ? lock_error
			   : persist_writer_new(p->store, p->opts.state_dir, span, &p->persist);
	if (r < 0) {
		p->persist_error = r;
		return log_error_errno(r,
				       "Failed to open state directory '%s', keeping windows in "
				       "memory only: %m",
				       p->opts.state_dir);
	}
	/* Windows the budget left out stay on disk, read back by queries that reach them. */
	p->stats.evicted_memory += left_out;
	if (p->stats.evicted_memory > 0) {
		log_info("Left out the oldest %" PRIu64 " windows to stay within --max-memory.",
			 p->stats.evicted_memory);
		p->evicted_from_ns = now_real_ns() - (int64_t)p->opts.retention_ns;
	}
	return 0;
}

int profiler_new(const ProfilerOptions *opts, Profiler **ret)
{
	_cleanup_(profiler_freep) Profiler *p = NULL;
	int r;

	if (opts->frequency == 0 || opts->window_ns == 0)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->opts = *opts;
	p->lock_fd = -1;
	p->boot_to_real_ns = boot_to_real_offset();
	p->evicted_from_ns = INT64_MAX;
	p->disk_deleted_ns = INT64_MIN;
	r = store_new(&p->store);
	if (r < 0)
		return r;
	r = symbolizer_new(p->store, &p->sym);
	if (r < 0)
		return r;
	/* A quarter of the budget for address caches; symbol tables and windows take the rest. */
	symbolizer_set_cache_budget(p->sym, opts->max_memory / 4);
	symbolizer_set_cfi(p->sym, opts->unwind);
	symbolizer_set_dwarf_slice(p->sym, opts->dwarf_slice_ns);
	if (opts->dwarf_worker) {
		r = symbolizer_set_dwarf_worker(p->sym, opts->dwarf_worker);
		if (r < 0)
			return r;
	}
	r = symbolizer_set_debug_dirs(p->sym, opts->debug_dirs);
	if (r < 0)
		return r;
	r = maplog_new(&p->maplog);
	if (r < 0)
		return r;
	r = proctable_new(p->store, p->sym, p->maplog, &p->procs);
	if (r < 0)
		return r;
	/* A perf map's text takes about as much memory again as entries: a sixteenth of the
	 * budget each (4 MiB of 64M), so that a few JIT processes leave room for the rest. */
	proctable_set_perfmap_cap(p->procs, opts->max_memory / 16);
	r = stack_cache_new(p->store, stack_cache_entries(opts->max_memory), &p->stacks);
	if (r < 0)
		return r;
	if (opts->python && opts->unwind) {
		r = python_new(p->store, p->sym, opts->python, &p->python);
		if (r < 0)
			return r;
	}
	if (opts->state_dir) {
		r = persist_open(p);
		/* Only another daemon on the directory keeps us from starting (logged). */
		if (r == -ENOMEM || r == -EBUSY)
			return r;
	}
	*ret = TAKE_PTR(p);
	return 0;
}

Profiler *profiler_free(Profiler *p)
{
	if (!p)
		return NULL;
	/* Held samples not let go by profiler_release_held(): nothing to name them with now. */
	for (size_t i = 0; i < p->n_waiting; i++)
		free(p->waiting[i]);
	free(p->waiting);
	/* Owners of store references go before the store. */
	persist_writer_free(p->persist);
	if (p->lock_fd >= 0)
		close(p->lock_fd);
	for (size_t i = 0; p->pending && i < OFFCPU_PENDING; i++)
		pending_release(p, &p->pending[i]);
	free(p->pending);
	for (size_t i = 0; p->places && i < OFFCPU_PLACES; i++)
		if (p->places[i].stack)
			store_stack_unref(p->store, p->places[i].stack);
	free(p->places);
	stack_cache_free(p->stacks);
	python_free(p->python);
	proctable_free(p->procs);
	maplog_free(p->maplog);
	symbolizer_free(p->sym);
	store_free(p->store);
	free(p->mem_pending);
	free(p);
	return NULL;
}

/*
 * Makes the open window the one holding t (realtime). Windows end on multiples of the window
 * length; each starts where the previous one ended, except after a gap (start-up, a stall),
 * where it starts at t: a window never claims time nobody sampled.
 */
static int window_for(Profiler *p, int64_t t)
{
	Window *w = store_window_current(p->store);
	int64_t len = (int64_t)p->opts.window_ns, start, end;
	int r;

	if (w && t < w->end_ns)
		return 0;
	start = t;
	if (w) {
		if (t < w->end_ns + len)
			start = w->end_ns;
		r = profiler_close_window(p);
		if (r < 0)
			return r;
	}
	end = start - ((start % len) + len) % len + len;
	return store_window_open(p->store, start, end, NSEC_PER_SEC / p->opts.frequency);
}

/* A sample's addresses: kernel frames, then user frames (leaf first); then, for a Python
 * process, its Python frames as two words each (code | PROFQ_PY_ENTRY, offset | ident << 32),
 * which the stack cache's key covers too. */
typedef struct RawStack {
	uint64_t addrs[2 * PROFQ_MAX_FRAMES + 2 * PROFQ_PY_MAX_FRAMES];
	uint32_t kernel;   /* the first `kernel` addresses are kernel ones */
	uint32_t n;	   /* kernel and user addresses */
	uint32_t py;	   /* Python frames after them */
	bool truncated;	   /* the user part does not reach the outermost frame */
	size_t stack_used; /* bytes of the stack copy the unwinding read (unwind.h) */
	/* The first kernel address is a return address too: a switched-out thread's stack as
	 * read from outside it (PROFQ_SAMPLE_OFFCPU_WHOLE), which starts in its caller of the
	 * scheduler. */
	bool kernel_ret;
} RawStack;

typedef struct UnwindCtx {
	Profiler *p;
	Process *proc;
	uint64_t time_ns, mono;
} UnwindCtx;

static Cfi *cfi_of(void *userdata, uint64_t addr, uint64_t *ret_vaddr)
{
	UnwindCtx *u = userdata;
	const Mapping *m = proctable_find_mapping(u->p->procs, u->proc, addr, u->time_ns, u->mono);

	return m ? symbolizer_cfi(u->p->sym, m->binary, &m->map, addr, ret_vaddr) : NULL;
}

static const struct profq_py_frame *py_frames(const struct profq_sample *s)
{
	return (const struct profq_py_frame *)((const uint8_t *)s + PROFQ_PY_FRAMES_OFFSET);
}

/* The addresses of a sample: the kernel's frames, then the user frames as the BPF program
 * walked them (frame pointers) or as we unwind them from its stack copy. */
static void raw_stack(Profiler *p, Process *proc, const struct profq_sample *s, uint64_t mono,
		      RawStack *ret)
{
	UnwindCtx ctx = { .p = p, .proc = proc, .time_ns = s->time_ns, .mono = mono };
	UnwindInput in;
	UnwindResult res;

	/* Python frames come only with a stack copy (record_ok()). */
	ret->py = 0;
	ret->stack_used = 0;
	ret->kernel = s->kstack_len;
	ret->kernel_ret = s->flags & PROFQ_SAMPLE_OFFCPU_WHOLE;
	memcpy(ret->addrs, s->addrs, s->kstack_len * sizeof(uint64_t));
	if (!(s->flags & PROFQ_SAMPLE_USER_REGS)) {
		memcpy(ret->addrs + s->kstack_len, s->addrs + s->kstack_len,
		       s->ustack_len * sizeof(uint64_t));
		ret->n = (uint32_t)s->kstack_len + s->ustack_len;
		/* A full-depth walk was probably cut off. */
		ret->truncated = s->ustack_len >= PROFQ_MAX_FRAMES;
		return;
	}
	in = (UnwindInput){ .ip = s->user_ip,
			    .sp = s->user_sp,
			    .bp = s->user_bp,
			    .stack = s->stack,
			    .stack_len = s->stack_len };
	unwind_user(&in, cfi_of, &ctx, ret->addrs + s->kstack_len, PROFQ_MAX_FRAMES, &res);
	ret->n = s->kstack_len + (uint32_t)res.n;
	ret->truncated = res.end != UNWIND_COMPLETE;
	ret->stack_used = res.stack_used;
	p->stats.unwind[res.end]++;
	p->stats.unwind_fp_frames += res.fp_frames;
	if (s->py_len) {
		const struct profq_py_frame *f = py_frames(s);

		for (uint32_t i = 0; i < s->py_len; i++) {
			ret->addrs[ret->n + 2 * i] = f[i].code;
			ret->addrs[ret->n + 2 * i + 1] = f[i].offset | (uint64_t)f[i].ident << 32;
		}
		ret->py = s->py_len;
	}
}

/* Frames of a stack being built: those symbolize() interned itself (Python frames, flagged
 * copies) are references it drops once the stack is interned. */
typedef struct FrameList {
	FrameId *frames;
	size_t n, max;
	FrameId owned[STORE_STACK_MAX];
	size_t n_owned;
} FrameList;

static void frames_add_owned(FrameList *l, FrameId f)
{
	l->frames[l->n++] = f;
	l->owned[l->n_owned++] = f;
}

/* The Python frames of one run of the evaluation function (up to and including its entry
 * frame), from *next on: interned into l. */
static void python_run(Profiler *p, PyProc *pp, const RawStack *raw, uint32_t *next, FrameList *l)
{
	const uint64_t *w = raw->addrs + raw->n;

	while (*next < raw->py && l->n < l->max) {
		struct profq_py_frame f = { .code = w[2 * *next],
					    .offset = (uint32_t)w[2 * *next + 1],
					    .ident = (uint32_t)(w[2 * *next + 1] >> 32) };
		FrameId id;

		(*next)++;
		if (python_frame(p->python, pp, &f, &id) == 0)
			frames_add_owned(l, id);
		if (f.code & PROFQ_PY_ENTRY)
			break;
	}
}

/* The user frames of addr: with pp, an evaluation-function frame is preceded (leaf side) by
 * the Python frames it ran, and flagged FRAME_PYTHON_EVAL (hidden unless Python frames are). */
static int user_frames(Profiler *p, Process *proc, PyProc *pp, const RawStack *raw, uint32_t i,
		       uint64_t time_ns, uint64_t mono, uint32_t *py_next, FrameList *l)
{
	uint64_t addr = raw->addrs[i];
	bool ret_addr = i != raw->kernel;
	const char *jit = NULL;
	const Mapping *m;
	size_t first;
	int r;

	m = proctable_find_mapping(p->procs, proc, addr, time_ns, mono);
	/* Not in a file: JIT code, named by the process's perf map if it has one. */
	if (!m || !m->binary)
		jit = proctable_jit_symbol(p->procs, proc, addr - ret_addr, mono);
	if (jit)
		return symbolizer_jit_frame(p->sym, jit, addr - ret_addr, l->frames + l->n);
	if (!m)
		return symbolizer_unknown_frame(p->sym, addr, l->frames + l->n);
	if (!pp || *py_next >= raw->py || !python_is_eval(pp, addr - ret_addr))
		return symbolizer_user_frames(p->sym, m->binary, &m->map, addr, ret_addr,
					      l->frames + l->n, l->max - l->n);
	python_run(p, pp, raw, py_next, l);
	first = l->n;
	r = symbolizer_user_frames(p->sym, m->binary, &m->map, addr, ret_addr, l->frames + l->n,
				   l->max - l->n);
	for (int k = 0; k < r; k++) {
		FrameId flagged;

		if (symbolizer_flag_frame(p->sym, l->frames[first + k], FRAME_PYTHON_EVAL,
					  &flagged) == 0) {
			l->frames[first + k] = flagged;
			l->owned[l->n_owned++] = flagged;
		}
	}
	return r;
}

/* Symbolizes a raw stack into l (leaf first). */
static void symbolize(Profiler *p, Process *proc, PyProc *pp, const RawStack *raw, uint64_t time_ns,
		      uint64_t mono, FrameList *l)
{
	uint32_t py_next = 0;
	int r;

	for (uint32_t i = 0; i < raw->n && l->n < l->max; i++) {
		uint64_t addr = raw->addrs[i];
		/* The first address of each part is where the CPU was; the rest are return
		 * addresses. */
		bool ret_addr = (i != 0 || raw->kernel_ret) && i != raw->kernel;

		if (i < raw->kernel)
			r = symbolizer_kernel_frames(p->sym, addr, ret_addr, l->frames + l->n,
						     l->max - l->n);
		else
			r = user_frames(p, proc, pp, raw, i, time_ns, mono, &py_next, l);
		if (r > 0)
			l->n += (size_t)r;
	}
	/* Python frames the native stack had no evaluation frame for (it was cut short): the
	 * outermost, so at the root end. */
	if (pp && py_next < raw->py) {
		p->stats.python_unmatched++;
		while (py_next < raw->py && l->n < l->max)
			python_run(p, pp, raw, &py_next, l);
	}
	/* Say a stack is cut off rather than let it look complete. */
	if (raw->truncated && raw->n > raw->kernel && l->n < l->max &&
	    symbolizer_marker_frame(p->sym, "[truncated]", FRAME_TRUNCATED, &l->frames[l->n]) ==
		    0) {
		l->n++;
		p->stats.truncated++;
	}
	if (l->n == 0 && symbolizer_marker_frame(p->sym, "[no stack]", 0, &l->frames[0]) == 0)
		l->n = 1;
}

/* Is the record as long as its header says, and no longer than a record can be? */
static bool record_ok(const struct profq_sample *s, size_t size)
{
	if (size < PROFQ_SAMPLE_HDR_SIZE || s->kstack_len > PROFQ_MAX_FRAMES ||
	    s->ustack_len > PROFQ_MAX_FRAMES || s->tgid == 0)
		return false;
	if ((s->flags &
	     (PROFQ_SAMPLE_OFFCPU_STACK | PROFQ_SAMPLE_OFFCPU_END | PROFQ_SAMPLE_OFFCPU_WHOLE)) &&
	    !kind_off_cpu(s->kind))
		return false;
	if (!!(s->flags & PROFQ_SAMPLE_FAULT) != (s->kind == PROFQ_KIND_FAULTS) ||
	    ((s->flags & PROFQ_SAMPLE_FAULT) &&
	     (s->weight == 0 || (s->flags & PROFQ_SAMPLE_OFFCPU_ALL))))
		return false;
	if (s->py_len > PROFQ_PY_MAX_FRAMES || (s->py_len && !(s->flags & PROFQ_SAMPLE_USER_REGS)))
		return false;
	if (s->flags & PROFQ_SAMPLE_USER_REGS)
		return s->ustack_len == 0 && s->stack_len <= PROFQ_STACK_COPY_MAX &&
		       size >= PROFQ_SAMPLE_STACK_OFFSET + (size_t)s->stack_len;
	return size >= PROFQ_SAMPLE_HDR_SIZE + ((size_t)s->kstack_len + s->ustack_len) * 8;
}

/*
 * Drops the scheduler's own frames from the leaf end of an off-CPU stack read at sched_switch
 * (the tracepoint's, __schedule, schedule): what is left starts where the thread chose to wait
 * (do_nanosleep, pipe_read, futex_wait...), or was preempted.
 */
static void offcpu_trim(Profiler *p, FrameList *l)
{
	size_t cut = 0;

	for (size_t i = 0; i < l->n && i < 16; i++) {
		const StoreFrame *f = store_frame(p->store, l->frames[i]);
		const char *name = f ? store_string(p->store, f->function) : NULL;

		if (!f || !(f->flags & FRAME_KERNEL))
			break;
		if (name && streq(name, "__schedule")) {
			cut = i + 1;
			if (cut < l->n) {
				f = store_frame(p->store, l->frames[cut]);
				name = f ? store_string(p->store, f->function) : NULL;
				if (name && streq(name, "schedule"))
					cut++;
			}
			break;
		}
	}
	if (cut == 0 || cut >= l->n)
		return;
	memmove(l->frames, l->frames + cut, (l->n - cut) * sizeof(FrameId));
	l->n -= cut;
}

/*
 * Where a thread waited: its process incarnation and thread, the kernel return addresses of its
 * stack below the scheduler, and its user instruction pointer, hashed; 0 without a user
 * address. The kernel reads a switched-out thread's stack from outside (a whole interval's)
 * without any frame in the scheduler's or lock functions' text (do_nanosleep,
 * schedule_timeout, a mutex's slow path...); read at the switch, the stack has those and, leaf
 * of them, the tracepoint's own frames. Both are reduced to what is left after the leafmost
 * scheduler frame with scheduler frames left out, so that the two name the same place.
 */
static uint64_t offcpu_place(Profiler *p, const struct profq_sample *s, const RawStack *raw)
{
	uint64_t addrs[PROFQ_MAX_FRAMES + 1];
	size_t n = 0, from = 0;
	uint64_t h;

	if (raw->n <= raw->kernel)
		return 0;
	if (!raw->kernel_ret)
		for (size_t i = 0; i < raw->kernel; i++)
			if (symbolizer_kernel_sched(p->sym, raw->addrs[i])) {
				from = i;
				break;
			}
	for (size_t i = from; i < raw->kernel && n < PROFQ_MAX_FRAMES; i++)
		if (!symbolizer_kernel_sched(p->sym, raw->addrs[i]))
			addrs[n++] = raw->addrs[i];
	addrs[n++] = raw->addrs[raw->kernel];
	h = XXH3_64bits(addrs, n * sizeof(uint64_t));
	h ^= ((uint64_t)s->tgid << 32 | s->tid) * 0x9E3779B97F4A7C15ULL ^ s->start_ns;
	return h ? h : 1;
}

/* The set of key's place. */
static OffcpuPlace *place_set(Profiler *p, uint64_t key)
{
	return &p->places[key & (OFFCPU_PLACES - OFFCPU_WAYS)];
}

/* Remembers a captured stack at its place (taking a reference): in the slot that holds the
 * place already, else a free one, else the set's least recently used. */
static void offcpu_place_put(Profiler *p, const struct profq_sample *s, const RawStack *raw,
			     StackId stack)
{
	uint64_t key = offcpu_place(p, s, raw);
	OffcpuPlace *set, *e;

	if (key == 0)
		return;
	if (!p->places) {
		p->places = calloc(OFFCPU_PLACES, sizeof(OffcpuPlace));
		if (!p->places)
			return;
	}
	set = place_set(p, key);
	e = &set[0];
	for (size_t i = 0; i < OFFCPU_WAYS; i++) {
		if (set[i].stack && set[i].key == key) {
			e = &set[i];
			break;
		}
		if (!set[i].stack)
			e = &set[i];
		else if (e->stack && (int32_t)(set[i].used - e->used) < 0)
			e = &set[i];
	}
	if (e->stack)
		store_stack_unref(p->store, e->stack);
	store_stack_ref(p->store, stack);
	*e = (OffcpuPlace){ .key = key, .stack = stack, .used = ++p->place_clock };
}

/* The stack last captured at the place of a whole interval's stack, or 0. */
static StackId offcpu_place_get(Profiler *p, const struct profq_sample *s, const RawStack *raw)
{
	uint64_t key = p->places ? offcpu_place(p, s, raw) : 0;
	OffcpuPlace *set = key ? place_set(p, key) : NULL;

	for (size_t i = 0; set && i < OFFCPU_WAYS; i++)
		if (set[i].stack && set[i].key == key) {
			set[i].used = ++p->place_clock;
			return set[i].stack;
		}
	return 0;
}

/* Keeps a captured off-CPU stack for its end record (taking references). */
static void offcpu_hold(Profiler *p, const struct profq_sample *s, ProcId proc, StackId stack,
			StrId thread)
{
	OffcpuPending *e;

	if (!p->pending) {
		p->pending = calloc(OFFCPU_PENDING, sizeof(OffcpuPending));
		if (!p->pending) {
			p->stats.offcpu_unpaired++;
			return;
		}
	}
	e = &p->pending[s->tid & (OFFCPU_PENDING - 1)];
	/* A thread's earlier capture whose end never came, or another thread's: replaced. */
	if (e->proc)
		p->stats.offcpu_replaced++;
	pending_release(p, e);
	store_proc_ref(p->store, proc);
	store_stack_ref(p->store, stack);
	store_string_ref(p->store, thread);
	*e = (OffcpuPending){ .proc = proc,
			      .tid = s->tid,
			      .seq = s->seq,
			      .kind = s->kind,
			      .stack = stack,
			      .thread = thread,
			      .start_ns = s->start_ns,
			      .time_ns = s->time_ns };
}

/* Lets go of held stacks whose end will not come (the thread exited while switched out) or
 * would fall out of the retention at once. */
static void offcpu_sweep(Profiler *p, int64_t now_ns)
{
	int64_t oldest = now_ns - p->boot_to_real_ns - (int64_t)p->opts.retention_ns;

	for (size_t i = 0; p->pending && i < OFFCPU_PENDING; i++) {
		OffcpuPending *e = &p->pending[i];
		const StoreProc *sp = e->proc ? store_proc(p->store, e->proc) : NULL;

		if (e->proc && (!sp || (sp->flags & PROC_EXITED) || (int64_t)e->time_ns < oldest)) {
			p->stats.offcpu_expired++;
			pending_release(p, e);
		}
	}
}

/* A thread's name from a record, control bytes replaced: interned (a new reference). */
static int thread_name(Profiler *p, const struct profq_sample *s, StrId *ret)
{
	char comm[PROFQ_COMM_LEN + 1];

	memcpy(comm, s->comm, PROFQ_COMM_LEN);
	comm[PROFQ_COMM_LEN] = '\0';
	for (char *c = comm; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	return store_intern_string(p->store, comm, ret);
}

/*
 * The end of an interval whose stack did not come (given way to CPU samples in the reader's
 * queue, or lost with a full ring): its time still counts, at a marker stack, so that the
 * thread's off-CPU total stays whole.
 */
static int offcpu_end_unpaired(Profiler *p, const struct profq_sample *s)
{
	Process *proc;
	FrameId frame;
	StackId stack;
	StrId thread;
	int r;

	p->stats.offcpu_unpaired++;
	r = proctable_get(p->procs, s, now_mono_ns(), &proc);
	if (r < 0)
		return r;
	r = symbolizer_marker_frame(p->sym, "[off-cpu stack lost]", 0, &frame);
	if (r < 0)
		return r;
	r = store_intern_stack(p->store, &frame, 1, &stack); /* the marker: held by sym */
	if (r < 0)
		return r;
	r = thread_name(p, s, &thread);
	if (r >= 0) {
		r = store_window_add_weight(p->store, proctable_record_of(proc, s), s->tid, thread,
					    stack, s->kind, s->weight);
		store_string_unref(p->store, thread);
	}
	store_stack_unref(p->store, stack);
	return r;
}

/* The end of a captured interval: its weight, at the stack captured for it. */
static int offcpu_end(Profiler *p, const struct profq_sample *s)
{
	OffcpuPending *e = p->pending ? &p->pending[s->tid & (OFFCPU_PENDING - 1)] : NULL;
	int r;

	r = window_for(p, (int64_t)s->time_ns + p->boot_to_real_ns);
	if (r < 0)
		goto fail;
	if (!e || !e->proc || e->tid != s->tid || e->seq != s->seq || e->start_ns != s->start_ns) {
		r = offcpu_end_unpaired(p, s);
		if (r < 0)
			goto fail;
		return 0;
	}
	r = store_window_add_weight(p->store, e->proc, e->tid, e->thread, e->stack, e->kind,
				    s->weight);
	pending_release(p, e);
	if (r < 0)
		goto fail;
	p->stats.offcpu_stored++;
	return 0;
fail:
	p->stats.failed++;
	return r;
}

/* Counts a sample with its stack into the open window (or, off-CPU, holds it for its end). */
static int sample_store(Profiler *p, const struct profq_sample *s, Process *proc,
			const RawStack *raw, StackId stack)
{
	bool offcpu = s->flags & (PROFQ_SAMPLE_OFFCPU_STACK | PROFQ_SAMPLE_OFFCPU_WHOLE);
	bool whole = s->flags & PROFQ_SAMPLE_OFFCPU_WHOLE;
	StrId thread;
	int r;

	r = thread_name(p, s, &thread);
	if (r < 0)
		return r;
	if (s->flags & PROFQ_SAMPLE_FAULT) {
		r = store_window_add_weight(p->store, proctable_record_of(proc, s), s->tid, thread,
					    stack, KIND_FAULTS, s->weight);
		store_string_unref(p->store, thread);
		if (r >= 0)
			p->stats.faults_stored++;
		return r;
	}
	if (whole) {
		/* Its user callers from the thread's last capture at the same place, if any. */
		StackId full = offcpu_place_get(p, s, raw);

		if (full)
			p->stats.offcpu_callers_borrowed++;
		r = store_window_add_weight(p->store, proctable_record_of(proc, s), s->tid, thread,
					    full ? full : stack, s->kind, s->weight);
		store_string_unref(p->store, thread);
		if (r >= 0)
			p->stats.offcpu_stored++;
		return r;
	}
	if (offcpu) {
		offcpu_place_put(p, s, raw, stack);
		offcpu_hold(p, s, proctable_record_of(proc, s), stack, thread);
		store_string_unref(p->store, thread);
		return 0;
	}
	r = store_window_add(p->store, proctable_record_of(proc, s), s->tid, thread, stack,
			     s->flags & PROFQ_SAMPLE_KERNEL_MODE, 1);
	store_string_unref(p->store, thread);
	if (r >= 0)
		p->stats.stored++;
	return r;
}

/*
 * A sample named while its DWARF (a binary's opening, a compile unit) was still asked of the
 * worker process would keep the symbol table's names for good: the first samples of every new
 * binary without their inlined calls and lines, a stripped binary's without the names its debug
 * file gives. Such a sample is held instead, a copy of its record, and handled again, from
 * the start, once the worker has answered (profiler_tick()); until HOLD_MAX_NS after it first
 * came, and within HOLD_MAX_BYTES. Samples and their mappings are read by their time (the
 * mapping log), so a sample handled later is read as it was taken; it is counted into the
 * window open then. Whether it was held or not, it counts once in the statistics of samples.
 * Page-fault samples are held too (a program faults its memory in at its start, when its
 * binary's DWARF is still asked for); off-CPU ones are not (their stack and its end pair up
 * in order).
 */
static bool hold_sample(Profiler *p, const struct profq_sample *s, size_t size, const RawStack *raw,
			uint64_t since, uint64_t mono)
{
	size_t max = MIN((size_t)HOLD_MAX_BYTES, p->opts.max_memory / 16);
	HeldSample *h;

	/* Of the stack copy, only what the unwinding read: the same unwinding later reads the
	 * same (a few hundred bytes, where the copy may be 16 KiB). */
	if (s->flags & PROFQ_SAMPLE_USER_REGS)
		size = MIN(size, PROFQ_SAMPLE_STACK_OFFSET + raw->stack_used);

	if (!p->opts.dwarf_worker || p->no_holding || mono - since >= HOLD_MAX_NS ||
	    p->waiting_bytes + size + sizeof(*h) > max ||
	    GREEDY_REALLOC(p->waiting, p->allocated_waiting, p->n_waiting + 1) < 0)
		return false;
	h = malloc(sizeof(*h) + size);
	if (!h)
		return false;
	h->since = since;
	h->size = size;
	memcpy(h->data, s, size);
	if (s->flags & PROFQ_SAMPLE_USER_REGS)
		((struct profq_sample *)h->data)->stack_len = (uint32_t)raw->stack_used;
	p->waiting[p->n_waiting++] = h;
	p->waiting_bytes += sizeof(*h) + size;
	return true;
}

static int add_sample(Profiler *p, const struct profq_sample *s, size_t size, uint64_t since);

int profiler_add_sample(Profiler *p, const struct profq_sample *s, size_t size)
{
	return add_sample(p, s, size, 0);
}

/* Handles the held samples again (those still named without their DWARF are held again), when
 * the worker has answered since the last time, or the oldest is due; all of them, for the last
 * time, with last. */
static void held_samples_retry(Profiler *p, uint64_t mono, bool last)
{
	HeldSample **list = p->waiting;
	size_t n = p->n_waiting;
	uint64_t answers = symbolizer_dwarf_answers(p->sym);

	if (n == 0 ||
	    (!last && answers == p->waiting_answers && mono - list[0]->since < HOLD_MAX_NS))
		return;
	p->waiting_answers = answers;
	p->waiting = NULL;
	p->n_waiting = p->allocated_waiting = p->waiting_bytes = 0;
	p->no_holding = last;
	for (size_t i = 0; i < n; i++) {
		const struct profq_sample *s = (const struct profq_sample *)list[i]->data;

		/* Its process exec'd meanwhile: read now, the sample would take the old address
		 * space back (proctable_get() takes a new mm for an exec). Lost, and counted. */
		if (proctable_exec_since(p->procs, s))
			p->stats.held_lost++;
		else
			(void)add_sample(p, s, list[i]->size, list[i]->since);
		free(list[i]);
	}
	free(list);
	p->no_holding = false;
}

/* Handles now, for the last time, the held samples of one process incarnation. */
static void held_samples_of(Profiler *p, uint32_t tgid, uint64_t start_ns)
{
	bool was = p->no_holding;
	size_t keep = 0;

	p->no_holding = true;
	for (size_t i = 0; i < p->n_waiting; i++) {
		HeldSample *h = p->waiting[i];
		const struct profq_sample *s = (const struct profq_sample *)h->data;

		if (s->tgid != tgid || s->start_ns != start_ns) {
			p->waiting[keep++] = h;
			continue;
		}
		p->waiting_bytes -= sizeof(*h) + h->size;
		(void)add_sample(p, s, h->size, h->since);
		free(h);
	}
	p->n_waiting = keep;
	p->no_holding = was;
}

void profiler_release_held(Profiler *p)
{
	held_samples_retry(p, now_mono_ns(), true);
}

static int add_sample(Profiler *p, const struct profq_sample *s, size_t size, uint64_t since)
{
	FrameId frames[STORE_STACK_MAX];
	FrameList list = { .frames = frames, .max = ARRAY_SIZE(frames) };
	PyProc *pp = NULL;
	uint64_t mono = now_mono_ns(), provisional;
	StackKey128 key;
	StackId stack;
	Process *proc;
	RawStack raw;
	bool cached = true;
	int r;

	bool offcpu = size >= PROFQ_SAMPLE_HDR_SIZE &&
		      (s->flags & (PROFQ_SAMPLE_OFFCPU_STACK | PROFQ_SAMPLE_OFFCPU_END |
				   PROFQ_SAMPLE_OFFCPU_WHOLE));
	bool whole = offcpu && (s->flags & PROFQ_SAMPLE_OFFCPU_WHOLE);
	bool fault = size >= PROFQ_SAMPLE_HDR_SIZE && (s->flags & PROFQ_SAMPLE_FAULT);

	if (!offcpu && !fault && since == 0)
		p->stats.samples++;
	if (!record_ok(s, size)) {
		p->stats.bad_records++;
		return 0;
	}
	if (s->flags & PROFQ_SAMPLE_OFFCPU_END)
		return offcpu_end(p, s);
	r = window_for(p, (int64_t)s->time_ns + p->boot_to_real_ns);
	if (r < 0)
		goto fail;
	/* The first sample after an exec takes the process's new address space: its samples held
	 * from before go first, with the old one, as they are named now. */
	if (p->n_waiting > 0 && proctable_exec_since(p->procs, s))
		held_samples_of(p, s->tgid, s->start_ns);
	r = proctable_get(p->procs, s, mono, &proc);
	if (r < 0)
		goto fail;

	if (p->python)
		pp = python_sample(p->python, proc, s, mono);
	raw_stack(p, proc, s, mono, &raw);
	proctable_jit_refresh(p->procs, proc, mono);
	/* Python frames count only where they are merged: a key of their own. */
	if (!pp)
		raw.py = 0;
	key = stack_cache_key(s->tgid, s->start_ns, proc->generation,
			      raw.kernel | raw.py << 16 | (uint32_t)whole << 29 |
				      (uint32_t)offcpu << 30 | (uint32_t)raw.truncated << 31,
			      raw.addrs, raw.n + 2 * raw.py);
	if (stack_cache_get(p->stacks, key, &stack) == 0) {
		p->stats.stack_hits++;
	} else {
		provisional = symbolizer_provisional(p->sym);
		symbolize(p, proc, pp, &raw, s->time_ns, mono, &list);
		if (offcpu)
			offcpu_trim(p, &list);
		/* Read from outside the thread: its user callers are not known. */
		if (whole && list.n < list.max &&
		    symbolizer_marker_frame(p->sym, "[user callers not read]", FRAME_TRUNCATED,
					    &list.frames[list.n]) == 0)
			list.n++;
		r = store_intern_stack(p->store, frames, list.n, &stack);
		for (size_t i = 0; i < list.n_owned; i++)
			store_frame_unref(p->store, list.owned[i]);
		if (r < 0)
			goto fail;
		/* Named while a compile unit was still being indexed: the same stack is named
		 * again next time, with its DWARF once that is done; this sample too, if it may
		 * wait for it. */
		cached = symbolizer_provisional(p->sym) == provisional;
		if (!cached && !offcpu && hold_sample(p, s, size, &raw, since ?: mono, mono)) {
			store_stack_unref(p->store, stack);
			if (since == 0)
				p->stats.held++;
			return 0;
		}
		if (cached) {
			r = stack_cache_put(p->stacks, key, stack);
			if (r < 0) {
				store_stack_unref(p->store, stack);
				goto fail;
			}
		}
	}

	r = sample_store(p, s, proc, &raw, stack);
	if (!cached)
		store_stack_unref(p->store, stack);
	if (r < 0)
		goto fail;
	return 0;
fail:
	p->stats.failed++;
	return r;
}

bool profiler_work(Profiler *p)
{
	return symbolizer_work(p->sym);
}

bool profiler_has_work(const Profiler *p)
{
	return symbolizer_has_work(p->sym);
}

/*
 * At most one point per second of the clock per process while it changes: the second's newest
 * record, stored when a record of a later second comes or a second after it is over (records
 * still queued). Exits and OOM kills are stored at once, in place of a record of their own
 * second held back. A record's realtime is taken once, when it comes: the boot-to-realtime
 * offset may move before it is stored, and a record converted twice could land in a second
 * already stored.
 */
static int64_t real_second(int64_t real_ns)
{
	return real_ns / (int64_t)NSEC_PER_SEC;
}

static int mem_store(Profiler *p, Process *proc, const struct profq_mem *m, int64_t real_ns)
{
	int64_t off = real_ns - (int64_t)m->time_ns;
	MemPoint pt = { .proc = proc->id,
			.flags = (m->flags & PROFQ_MEM_EXIT ? MEM_EXIT : 0) |
				 (m->flags & PROFQ_MEM_OOM_KILL ? MEM_OOM_KILL : 0) |
				 (m->flags & PROFQ_MEM_PEAK_OLD ? MEM_PEAK_OLD : 0),
			.time_ns = real_ns,
			.anon = m->anon_bytes,
			.file = m->file_bytes,
			.shmem = m->shmem_bytes,
			.peak = m->peak_bytes,
			.peak_ns = (int64_t)m->peak_ns + off };
	int r;

	proc->mem_stored_second = real_second(real_ns);
	r = window_for(p, pt.time_ns);
	if (r >= 0)
		r = store_window_add_mem(p->store, &pt);
	if (r < 0)
		return r;
	p->stats.mem_points++;
	return 0;
}

static int add_mem(Profiler *p, const struct profq_mem *m, size_t size)
{
	int64_t real_ns = (int64_t)m->time_ns + p->boot_to_real_ns;
	Process *proc;
	int r;

	p->stats.mem_records++;
	if (size < sizeof(*m) || m->pid == 0) {
		p->stats.bad_records++;
		return 0;
	}
	/* A record is sent as the process faults, before any sample or exec may name it. */
	if (proctable_find(p->procs, m->pid, m->start_ns, true, &proc) < 0) {
		p->stats.mem_unknown++;
		return 0;
	}
	if (proc->mem_pending && real_second(proc->mem_last_real_ns) != real_second(real_ns)) {
		proc->mem_pending = false;
		r = mem_store(p, proc, &proc->mem_last, proc->mem_last_real_ns);
		if (r < 0)
			return r;
	}
	if (m->flags & (PROFQ_MEM_EXIT | PROFQ_MEM_OOM_KILL)) {
		proc->mem_pending = false;
		return mem_store(p, proc, m, real_ns);
	}
	/* Late for a second already stored (drained after the tick that closed it). */
	if (real_second(real_ns) <= proc->mem_stored_second)
		return 0;
	proc->mem_last = *m;
	proc->mem_last_real_ns = real_ns;
	if (proc->mem_pending)
		return 0;
	proc->mem_pending = true;
	r = GREEDY_REALLOC(p->mem_pending, p->allocated_mem_pending, p->n_mem_pending + 1);
	if (r < 0) {
		proc->mem_pending = false;
		return r;
	}
	p->mem_pending[p->n_mem_pending++] = (struct MemKey){ m->pid, m->start_ns };
	return 0;
}

/* Stores the points held back whose second is over; keeps the others. */
static void mem_flush(Profiler *p, int64_t now_ns)
{
	size_t keep = 0;

	for (size_t i = 0; i < p->n_mem_pending; i++) {
		struct MemKey k = p->mem_pending[i];
		Process *proc;

		if (proctable_find(p->procs, k.pid, k.start_ns, false, &proc) < 0 ||
		    !proc->mem_pending)
			continue;
		/* A second's records may still be queued a tick after it: a second's grace. */
		if (real_second(proc->mem_last_real_ns) >= now_ns / (int64_t)NSEC_PER_SEC - 1) {
			p->mem_pending[keep++] = k;
			continue;
		}
		proc->mem_pending = false;
		if (mem_store(p, proc, &proc->mem_last, proc->mem_last_real_ns) < 0)
			p->stats.failed++;
	}
	p->n_mem_pending = keep;
}

int profiler_add_event(Profiler *p, const struct profq_event *e, size_t size)
{
	int r;

	if (size >= sizeof(uint32_t) && e->type == PROFQ_EVENT_MEM)
		return add_mem(p, (const struct profq_mem *)(const void *)e, size);
	if (size < sizeof(*e) || e->pid == 0 || e->args_len > PROFQ_ARGS_LEN ||
	    (e->type != PROFQ_EVENT_EXEC && e->type != PROFQ_EVENT_EXIT)) {
		p->stats.bad_records++;
		return 0;
	}
	if (p->python)
		python_forget(p->python, e->pid, e->type == PROFQ_EVENT_EXIT, e->time_ns);
	r = proctable_event(p->procs, e, now_mono_ns());
	if (r < 0)
		p->stats.failed++;
	return r;
}

void profiler_exec_seen(Profiler *p, uint32_t pid, uint64_t start_ns, uint64_t exec_ns)
{
	if (p->python)
		python_exec(p->python, pid, start_ns, exec_ns, now_mono_ns());
}

void profiler_python_code_seen(Profiler *p, uint32_t pid, uint64_t start_ns,
			       const struct profq_py_frame *f)
{
	if (p->python)
		python_code_seen(p->python, pid, start_ns, f);
}

void profiler_poll(Profiler *p)
{
	if (p->python)
		python_poll(p->python, now_mono_ns());
}

void profiler_sideband_event(Profiler *p, const SidebandEvent *ev)
{
	maplog_event(p->maplog, ev);
}

void profiler_set_sideband_refresh(Profiler *p, void (*refresh)(void *userdata), void *userdata)
{
	proctable_set_maplog_refresh(p->procs, refresh, userdata);
}

void profiler_refresh(Profiler *p, uint32_t pid)
{
	proctable_refresh(p->procs, pid);
}

void profiler_add_counters(Profiler *p, uint64_t lost, uint64_t idle)
{
	Window *w = store_window_current(p->store);

	p->stats.lost += lost;
	p->stats.idle += idle;
	if (w) {
		w->lost += lost;
		w->idle += idle;
	}
}

int profiler_close_window(Profiler *p)
{
	size_t n = store_window_count(p->store);
	int r = store_window_close(p->store);

	if (r < 0)
		return r == -ENOENT ? 0 : r;
	p->stats.windows_closed++;
	if (p->persist) {
		r = persist_write_window(p->persist, store_window(p->store, n - 1));
		/* Kept in memory; the next window tries again in a new segment. Say so once. */
		if (r < 0) {
			p->stats.persist_errors++;
			if (!p->persist_failing)
				log_warning_errno(r,
						  "Failed to write a window to '%s', keeping it "
						  "in memory: %m",
						  p->opts.state_dir);
			p->persist_failing = true;
		} else if (p->persist_failing) {
			p->persist_failing = false;
			log_info("Writing windows to '%s' again.", p->opts.state_dir);
		}
	}
	return 0;
}

/* The budget kept; pass: the housekeeping pass (once a second), else a tick's check near the
 * budget. */
static void evict(Profiler *p, int64_t now_ns, uint64_t mono_ns, bool pass)
{
	size_t budget, used, low;
	uint64_t evicted = 0;
	const Window *w;

	/* Retention: windows that ended before now - retention. */
	for (;;) {
		w = store_window(p->store, 0);
		if (!w || w->open || w->end_ns > now_ns - (int64_t)p->opts.retention_ns)
			break;
		if (store_window_evict(p->store) < 0)
			break;
		p->stats.evicted_retention++;
	}
	used = profiler_memory(p);
	/* A sixteenth of it kept free for what grows between two checks (a tick's samples, a
	 * binary's tables read at once, the process table in a fork storm), so that the resident
	 * set stays within --max-memory meanwhile, not only at the checks. */
	budget = data_budget(p, used);
	budget -= budget / 16;
	/* Within an eighth of it: checked every tick until the next pass finds room. */
	p->near_budget = used > budget - budget / 8;
	if (used <= budget) {
		/* A libdw that took more than this to open is not opened again until there is
		 * room. */
		symbolizer_set_headroom(p->sym, budget - used);
		return;
	}
	/* Memory: down to a thirty-second below the budget, so that the next pass is not a
	 * window away (each one empties caches). First what can be read again (caches, symbols
	 * of binaries no process maps, libdw), then the oldest windows, never the open one. The
	 * caches at most once a second: emptied at every tick's check they cost more CPU to
	 * fill again than the memory they held (a churn soak: profqd at 13% of a core, not
	 * 10%); a tick between takes windows. */
	low = budget - budget / 32;
	if (pass || mono_ns - p->caches_shrunk_ns >= HOUSEKEEPING_NS) {
		p->caches_shrunk_ns = mono_ns;
		symbolizer_shrink(p->sym, used - low);
		/* Code objects are read again from live processes. */
		if (p->python && profiler_memory(p) > low)
			(void)python_shrink(p->python);
		/* Perf maps can be read again from their files too; a live process's after a
		 * while. */
		used = profiler_memory(p);
		if (used > low)
			(void)proctable_drop_perfmaps(p->procs, used - low, mono_ns);
		/* What keeps evicted windows' stacks alive: the stack cache. */
		if (profiler_memory(p) > low)
			stack_cache_clear(p->stacks);
	}
	/* Exited processes no window has samples of (a fork storm's) before any profile. */
	if (profiler_memory(p) > low)
		(void)proctable_drop_unsampled_exited(p->procs);
	while (profiler_memory(p) > low) {
		w = store_window(p->store, 0);
		if (!w || w->open)
			break;
		/* On disk, it stays there (until --retention or --max-disk ends it). */
		if (p->persist)
			p->evicted_from_ns = MIN(p->evicted_from_ns, w->start_ns);
		/* And the writer, for windows of its current segment (a ring shorter than a
		 * segment): the next window starts a new one. */
		if (p->persist && persist_segment_holds(p->persist, w->end_ns))
			persist_rotate(p->persist);
		if (store_window_evict(p->store) < 0)
			break;
		evicted++;
	}
	p->stats.evicted_memory += evicted;
	/* Give what was freed back to the kernel: resident memory is what the budget bounds. Once
	 * a second: between passes the allocator reuses it (a trim at every tick's check cost a
	 * page fault per page taken again). */
	if (pass)
		malloc_trim(0);
	used = profiler_memory(p);
	symbolizer_set_headroom(p->sym, budget > used ? budget - used : 0);
}

/* Segments go when their windows all left the retention, oldest first beyond the disk budget. */
static void expire_disk(Profiler *p, int64_t now_ns)
{
	int64_t deleted;

	if (!p->persist)
		return;
	persist_expire(p->persist, now_ns - (int64_t)p->opts.retention_ns);
	if (!p->opts.max_disk)
		return;
	deleted = persist_expire_bytes(p->persist, p->opts.max_disk);
	p->disk_deleted_ns = MAX(p->disk_deleted_ns, deleted);
}

int profiler_tick(Profiler *p, int64_t now_ns, uint64_t mono_ns)
{
	int r;

	size_t windows = store_window_count(p->store);
	int64_t off = boot_to_real_offset();

	/* Its two clock reads may be a preemption apart on a busy machine: a change under 5 ms is
	 * that, not the clock set, and would move records across second boundaries (memory
	 * points are one a second by it). */
	if (off - p->boot_to_real_ns >= 5 * (int64_t)NSEC_PER_MSEC ||
	    p->boot_to_real_ns - off >= 5 * (int64_t)NSEC_PER_MSEC)
		p->boot_to_real_ns = off;
	/* The DWARF worker's answers, if no lookup took them since, and the samples that wait
	 * for them. */
	symbolizer_tick(p->sym);
	held_samples_retry(p, mono_ns, false);
	proctable_tick(p->procs);
	r = window_for(p, now_ns);
	if (r < 0)
		return r;
	mem_flush(p, now_ns);
	/* Housekeeping that walks tables: once a second, and whenever a window closed. Near the
	 * memory budget, the budget every tick: a fork storm adds megabytes a second (its
	 * processes' records and mappings), which a check a second let the resident set pass
	 * the budget by. */
	if (mono_ns - p->last_housekeeping_ns < HOUSEKEEPING_NS &&
	    store_window_count(p->store) == windows) {
		if (p->near_budget)
			evict(p, now_ns, mono_ns, false);
		return 0;
	}
	p->last_housekeeping_ns = mono_ns;
	symbolizer_trim(p->sym);
	if (p->python)
		python_tick(p->python, mono_ns);
	/* Exited processes and their mappings go every second (a walk of the tables, no
	 * system call): a fork storm's bookkeeping is then a few seconds of its forks. */
	proctable_drop_exited(p->procs, mono_ns);
	maplog_expire(p->maplog, (uint64_t)(now_ns - p->boot_to_real_ns), MAPLOG_KEEP_NS);
	if (mono_ns - p->last_sweep_ns >= SWEEP_INTERVAL_NS) {
		p->last_sweep_ns = mono_ns;
		proctable_sweep(p->procs, mono_ns, PROCESS_IDLE_NS, now_ns, p->opts.retention_ns);
		expire_disk(p, now_ns);
		offcpu_sweep(p, now_ns);
	}
	evict(p, now_ns, mono_ns, true);
	return 0;
}

const PersistLoadStats *profiler_persist_state(const Profiler *p, PersistStats *ret_stats,
					       bool *ret_enabled, int *ret_error)
{
	*ret_enabled = p->persist != NULL;
	*ret_error = p->persist_error;
	if (p->persist)
		persist_stats(p->persist, ret_stats);
	else
		*ret_stats = (PersistStats){ 0 };
	return &p->loaded;
}

Store *profiler_store(Profiler *p)
{
	return p->store;
}

bool profiler_disk_history(const Profiler *p, int64_t *ret_from_ns, int64_t *ret_deleted_ns)
{
	const Window *w = store_window(p->store, 0);

	if (!p->persist || p->evicted_from_ns == INT64_MAX || !w ||
	    p->evicted_from_ns >= w->start_ns || p->disk_deleted_ns >= w->start_ns)
		return false;
	*ret_from_ns = p->evicted_from_ns;
	*ret_deleted_ns = p->disk_deleted_ns;
	return true;
}

Symbolizer *profiler_symbolizer(Profiler *p)
{
	return p->sym;
}

size_t profiler_memory(const Profiler *p)
{
	return sizeof(*p) + p->allocated_mem_pending * sizeof(*p->mem_pending) + p->waiting_bytes +
	       p->allocated_waiting * sizeof(*p->waiting) + store_memory(p->store) +
	       symbolizer_memory(p->sym) + proctable_memory(p->procs) +
	       stack_cache_memory(p->stacks) + maplog_memory(p->maplog) +
	       (p->python ? python_memory(p->python) : 0) +
	       (p->pending ? OFFCPU_PENDING * sizeof(OffcpuPending) : 0) +
	       (p->places ? OFFCPU_PLACES * sizeof(OffcpuPlace) : 0);
}

void profiler_memory_parts(const Profiler *p, ProfilerMemory *ret)
{
	ProcTableStats pt;

	*ret = (ProfilerMemory){
		.store = store_memory(p->store),
		.symbolizer = symbolizer_memory(p->sym),
		.processes = proctable_memory(p->procs),
		.stacks = stack_cache_memory(p->stacks),
		.maplog = maplog_memory(p->maplog),
		.python = p->python ? python_memory(p->python) : 0,
	};
	proctable_stats(p->procs, &pt);
	ret->perf_maps = pt.perfmap_memory;
}

void profiler_stats(const Profiler *p, ProfilerStats *ret)
{
	*ret = p->stats;
}

void profiler_proc_stats(const Profiler *p, ProcTableStats *ret)
{
	proctable_stats(p->procs, ret);
}

bool profiler_python_stats(const Profiler *p, PythonStats *ret)
{
	if (!p->python)
		return false;
	python_stats(p->python, ret);
	return true;
}
