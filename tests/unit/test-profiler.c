/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/json-util.h"
#include "base/macro.h"
#include "base/procfs.h"
#include "base/timeutil.h"
#include "query/query.h"
#include "sampling/profiler.h"
#include "symbolize/symbolizer.h"
#include "tmpdir.h"

/* The "sampled" program: real functions of this binary, so the profiler can symbolize them. */
__attribute__((noinline)) static unsigned prof_leaf(unsigned x)
{
	for (unsigned i = 0; i < 16; i++)
		x = x * 2654435761u ^ i;
	return x;
}

__attribute__((noinline)) static unsigned prof_mid(unsigned x)
{
	return prof_leaf(x + 1) * 3 + 7;
}

__attribute__((noinline)) static unsigned prof_top(unsigned x)
{
	return prof_mid(x ^ 0x55) + prof_leaf(x);
}

/* Our start time as the BPF program reads it; the process table checks it against /proc. */
static uint64_t self_start_boot_ns(void)
{
	static uint64_t start;
	ProcStat st;

	if (start == 0) {
		assert_int_equal(procfs_read_stat(getpid(), &st), 0);
		start = st.starttime * (NSEC_PER_SEC / procfs_clock_ticks());
	}
	return start;
}

static size_t sample_init(struct profq_sample *s, uint32_t tid, bool kernel_mode)
{
	*s = (struct profq_sample){
		.time_ns = clock_ns(CLOCK_BOOTTIME),
		.start_ns = self_start_boot_ns(),
		.mm_id = 0xabcdef00,
		.tgid = (uint32_t)getpid(),
		.tid = tid,
		.flags = kernel_mode ? PROFQ_SAMPLE_KERNEL_MODE : 0,
		.uid = (uint32_t)getuid(),
		.ustack_len = 3,
	};
	snprintf(s->comm, sizeof(s->comm), "worker-%u", tid % 10);
	snprintf(s->pcomm, sizeof(s->pcomm), "test-profiler");
	/* The interrupted instruction, then two return addresses, leaf first. */
	s->addrs[0] = (uint64_t)(uintptr_t)&prof_leaf + 4;
	s->addrs[1] = (uint64_t)(uintptr_t)&prof_mid + 4;
	s->addrs[2] = (uint64_t)(uintptr_t)&prof_top + 4;
	return PROFQ_SAMPLE_HDR_SIZE + 3 * sizeof(uint64_t);
}

static Profiler *profiler(uint64_t window_ns, uint64_t retention_ns, uint64_t max_memory)
{
	ProfilerOptions o = {
		.frequency = 100,
		.window_ns = window_ns,
		.retention_ns = retention_ns,
		.max_memory = max_memory,
	};
	Profiler *p = NULL;

	assert_int_equal(profiler_new(&o, &p), 0);
	assert_non_null(p);
	return p;
}

static json_object *top(Profiler *p, uint32_t pid)
{
	QueryContext ctx = { .store = profiler_store(p),
			     .now_ns = (int64_t)clock_ns(CLOCK_REALTIME),
			     .viewer = { 0, true } };
	json_object *answer = NULL;
	Request req;

	request_init(&req, COMMAND_TOP);
	req.pid = pid;
	assert_int_equal(query_answer(&ctx, &req, &answer), 0);
	if (answer_error_code(answer, NULL, NULL) == 0)
		fail_msg("top failed: %s", json_object_to_json_string(answer));
	return answer;
}

static json_object *row(json_object *answer, const char *function)
{
	json_object *rows = json_object_object_get(answer, "rows");

	for (size_t i = 0; i < json_object_array_length(rows); i++) {
		json_object *r = json_object_array_get_idx(rows, i);

		if (streq(strempty(json_get_string(r, "function")), function))
			return r;
	}
	fail_msg("no row %s in %s", function, json_object_to_json_string(answer));
	return NULL;
}

static void test_samples(void **state)
{
	_cleanup_(profiler_freep) Profiler *p = NULL;
	_cleanup_json_ json_object *answer = NULL;
	struct profq_sample s;
	const StoreProc *proc;
	const WindowEntry *e;
	const FrameId *frames;
	ProfilerStats st;
	const Window *w;
	Store *store;
	size_t size, n;
	int64_t start_real;
	char name[32];

	(void)state;
	/* Samples carry the real time, and windows are aligned to wall-clock multiples of their
	 * length: an hour's window, so that no boundary splits the samples (a 10 s one did, one
	 * run in a few on a busy machine). */
	p = profiler(3600 * NSEC_PER_SEC, 3600 * NSEC_PER_SEC, 64u << 20);
	store = profiler_store(p);
	for (int i = 0; i < 10; i++) {
		size = sample_init(&s, (uint32_t)getpid(), false);
		assert_int_equal(profiler_add_sample(p, &s, size), 0);
	}
	for (int i = 0; i < 5; i++) {
		size = sample_init(&s, (uint32_t)getpid() + 1, true);
		assert_int_equal(profiler_add_sample(p, &s, size), 0);
	}
	profiler_stats(p, &st);
	assert_int_equal(st.samples, 15);
	assert_int_equal(st.stored, 15);
	assert_int_equal(st.bad_records, 0);
	/* The raw stack was symbolized once; every repeat came from the stack cache. */
	assert_int_equal(st.stack_hits, 14);

	w = store_window_current(store);
	assert_non_null(w);
	assert_int_equal(w->samples, 15);
	assert_int_equal(w->period_ns, 10 * NSEC_PER_MSEC);
	/* Two threads, one stack: two entries, split user/kernel. */
	assert_int_equal(w->n_entries, 2);
	for (size_t i = 0; i < w->n_entries; i++) {
		e = &w->entries[i];
		if (e->tid == (uint32_t)getpid()) {
			assert_int_equal(e->user, 10);
			assert_int_equal(e->kernel, 0);
		} else {
			assert_int_equal(e->tid, (uint32_t)getpid() + 1);
			assert_int_equal(e->user, 0);
			assert_int_equal(e->kernel, 5);
		}
		assert_int_equal(e->proc, w->entries[0].proc);
		assert_int_equal(e->stack, w->entries[0].stack);
	}
	e = &w->entries[0];
	snprintf(name, sizeof(name), "worker-%u", e->tid % 10);
	assert_string_equal(store_string(store, e->thread), name);
	proc = store_proc(store, e->proc);
	assert_non_null(proc);
	assert_int_equal(proc->pid, getpid());
	assert_int_equal(proc->uid, getuid());
	assert_int_equal(proc->ppid, getppid());
	assert_string_equal(store_string(store, proc->comm), "test-profiler");
	/* The start time, in realtime, is within a second of now - our age. */
	start_real = (int64_t)clock_ns(CLOCK_REALTIME) -
		     (int64_t)(clock_ns(CLOCK_BOOTTIME) - self_start_boot_ns());
	assert_true(llabs(proc->start_ns - start_real) < (long long)NSEC_PER_SEC);

	/* The stack: our three functions, leaf first, in this binary. */
	frames = store_stack(store, e->stack, &n);
	assert_int_equal(n, 3);
	assert_string_equal(store_string(store, store_frame(store, frames[0])->function),
			    "prof_leaf");
	assert_string_equal(store_string(store, store_frame(store, frames[1])->function),
			    "prof_mid");
	assert_string_equal(store_string(store, store_frame(store, frames[2])->function),
			    "prof_top");
	assert_string_equal(store_string(store, store_frame(store, frames[0])->module),
			    "test-profiler");

	/* The query engine sees the same. */
	answer = top(p, (uint32_t)getpid());
	assert_int_equal(json_get_int(answer, "samples"), 15);
	assert_int_equal(json_get_int(row(answer, "prof_leaf"), "self_samples"), 15);
	assert_int_equal(json_get_int(row(answer, "prof_top"), "total_samples"), 15);
	assert_int_equal(json_get_int(row(answer, "prof_mid"), "self_samples"), 0);
}

/* The samples of our pid that a viewer gets from top (the newest incarnation), -1 if denied. */
static int64_t seen(Profiler *p, uint32_t uid, bool privileged)
{
	QueryContext ctx = { .store = profiler_store(p),
			     .now_ns = (int64_t)clock_ns(CLOCK_REALTIME),
			     .viewer = { .uid = uid, .privileged = privileged } };
	_cleanup_json_ json_object *answer = NULL;
	ErrorCode code;
	Request req;

	request_init(&req, COMMAND_TOP);
	req.pid = (uint32_t)getpid();
	assert_int_equal(query_answer(&ctx, &req, &answer), 0);
	if (answer_error_code(answer, &code, NULL) < 0)
		return json_get_int(answer, "samples");
	assert_int_equal(code, ERROR_DENIED);
	return -1;
}

/* All samples of our pid in the store, whichever record they are in. */
static int64_t all_samples(Profiler *p)
{
	const Window *w = store_window_current(profiler_store(p));
	int64_t n = 0;

	for (size_t i = 0; i < w->n_entries; i++) {
		const StoreProc *sp = store_proc(profiler_store(p), w->entries[i].proc);

		if (sp->pid == (uint32_t)getpid())
			n += w->entries[i].user + w->entries[i].kernel;
	}
	return n;
}

static void exec_event(Profiler *p, uint32_t uid, uint64_t time_ns)
{
	struct profq_event e = { .type = PROFQ_EVENT_EXEC,
				 .pid = (uint32_t)getpid(),
				 .time_ns = time_ns,
				 .start_ns = self_start_boot_ns(),
				 .ppid = (uint32_t)getppid(),
				 .uid = uid };

	assert_int_equal(profiler_add_event(p, &e, sizeof(e)), 0);
}

static void samples_as(Profiler *p, uint32_t uid, int n, uint64_t time_ns)
{
	struct profq_sample s;
	size_t size;

	for (int i = 0; i < n; i++) {
		size = sample_init(&s, (uint32_t)getpid(), false);
		s.uid = uid;
		if (time_ns)
			s.time_ns = time_ns;
		assert_int_equal(profiler_add_sample(p, &s, size), 0);
	}
}

/*
 * A root process that works, drops to a user and execs: the user sees the process from the
 * exec on, never the root phase's samples, which stay in a record of their own for privileged
 * viewers. One that execs as the user it always ran as (or was not sampled before) is the
 * user's, whole.
 */
static void test_exec_privacy(void **state)
{
	uint64_t now = clock_ns(CLOCK_BOOTTIME);

	(void)state;
	/* Sampled as root, then exec as the user. */
	{
		_cleanup_(profiler_freep) Profiler *p = NULL;

		p = profiler(3600 * NSEC_PER_SEC, 3600 * NSEC_PER_SEC, 64u << 20);
		samples_as(p, 0, 10, now);
		exec_event(p, 1000, now + 1000);
		samples_as(p, 1000, 7, now + 2000);
		assert_int_equal(seen(p, 1000, false), 7);
		assert_int_equal(seen(p, 0, true), 7);
		assert_int_equal(all_samples(p), 17);
		assert_int_equal(seen(p, 2000, false), -1);
	}
	/* The root phase's samples drained after the exec event (one drain holds both). */
	{
		_cleanup_(profiler_freep) Profiler *p = NULL;

		p = profiler(3600 * NSEC_PER_SEC, 3600 * NSEC_PER_SEC, 64u << 20);
		samples_as(p, 1000, 1, now + 3000);
		exec_event(p, 1000, now + 2000);
		assert_int_equal(seen(p, 1000, false), 1);
		samples_as(p, 0, 5, now + 1000);
		samples_as(p, 1000, 4, now + 4000);
		assert_int_equal(seen(p, 1000, false), 5);
		assert_int_equal(all_samples(p), 10);
	}
	/* The user's own process, exec'ing as the user: theirs, before and after. */
	{
		_cleanup_(profiler_freep) Profiler *p = NULL;

		p = profiler(3600 * NSEC_PER_SEC, 3600 * NSEC_PER_SEC, 64u << 20);
		samples_as(p, 1000, 10, now);
		assert_int_equal(seen(p, 1000, false), 10);
		exec_event(p, 1000, now + 1000);
		samples_as(p, 1000, 10, now + 2000);
		assert_int_equal(seen(p, 1000, false), 20);
	}
	/* Forked by root, exec'd as the user before any sample (a login shell, sudo -u): theirs. */
	{
		_cleanup_(profiler_freep) Profiler *p = NULL;

		p = profiler(3600 * NSEC_PER_SEC, 3600 * NSEC_PER_SEC, 64u << 20);
		exec_event(p, 1000, now);
		samples_as(p, 1000, 10, now + 1000);
		assert_int_equal(seen(p, 1000, false), 10);
	}
}

static void test_thread_names(void **state)
{
	_cleanup_(profiler_freep) Profiler *p = NULL;
	struct profq_sample s;
	const Window *w;
	size_t size;

	(void)state;
	p = profiler(3600 * NSEC_PER_SEC, 3600 * NSEC_PER_SEC, 64u << 20);
	size = sample_init(&s, 4242, false);
	/* Control characters in a thread name are not passed on; no NUL inside the 16 bytes. */
	memcpy(s.comm, "bad\nname\x01\x7fxxxxxxxx", 16);
	assert_int_equal(profiler_add_sample(p, &s, size), 0);
	w = store_window_current(profiler_store(p));
	assert_int_equal(w->n_entries, 1);
	assert_string_equal(store_string(profiler_store(p), w->entries[0].thread),
			    "bad?name??xxxxxx");
}

/* The off-CPU time of a window's entries of kind, summed. */
static uint64_t weight_of(Profiler *p, uint32_t kind, StackId *ret_stack)
{
	const Window *w = store_window_current(profiler_store(p));
	uint64_t sum = 0;

	for (size_t i = 0; w && i < w->n_entries; i++)
		if (w->entries[i].kind == kind) {
			sum += w->entries[i].weight;
			if (ret_stack)
				*ret_stack = w->entries[i].stack;
		}
	return sum;
}

static size_t offcpu_stack(struct profq_sample *s, uint32_t tid, uint32_t seq, uint32_t kind)
{
	size_t size = sample_init(s, tid, true);

	s->flags |= PROFQ_SAMPLE_OFFCPU_STACK;
	s->kind = kind;
	s->seq = seq;
	return size;
}

static size_t offcpu_end(struct profq_sample *s, uint32_t tid, uint32_t seq, uint32_t kind,
			 uint64_t weight)
{
	sample_init(s, tid, true);
	s->flags |= PROFQ_SAMPLE_OFFCPU_END;
	s->kind = kind;
	s->seq = seq;
	s->weight = weight;
	s->ustack_len = 0;
	return PROFQ_SAMPLE_HDR_SIZE;
}

/*
 * Page faults: a record counts its bytes at once at its stack, as KIND_FAULTS, not as a CPU
 * sample; one whose flag and kind disagree, or without a weight, is malformed.
 */
static void test_fault_records(void **state)
{
	_cleanup_(profiler_freep) Profiler *p = NULL;
	struct profq_sample s;
	ProfilerStats st;
	StackId stack = 0;
	const StoreFrame *f;
	const FrameId *frames;
	size_t size, n;

	(void)state;
	p = profiler(3600 * NSEC_PER_SEC, 3600 * NSEC_PER_SEC, 64u << 20);
	size = sample_init(&s, 78, false);
	s.flags |= PROFQ_SAMPLE_FAULT;
	s.kind = PROFQ_KIND_FAULTS;
	s.weight = 64 * 4096;
	assert_int_equal(profiler_add_sample(p, &s, size), 0);
	assert_int_equal(profiler_add_sample(p, &s, size), 0);
	assert_int_equal(weight_of(p, KIND_FAULTS, &stack), 2 * 64 * 4096);
	assert_int_equal(weight_of(p, KIND_CPU, NULL), 0);
	assert_int_equal(store_window_current(profiler_store(p))->samples, 0);
	assert_int_equal(store_window_current(profiler_store(p))->records, 2);
	frames = store_stack(profiler_store(p), stack, &n);
	assert_true(n >= 3);
	f = store_frame(profiler_store(p), frames[0]);
	assert_string_equal(store_string(profiler_store(p), f->function), "prof_leaf");

	/* Malformed: a fault kind without the flag, the flag with a CPU kind, no weight. */
	s.flags &= ~PROFQ_SAMPLE_FAULT;
	assert_int_equal(profiler_add_sample(p, &s, size), 0);
	s.flags |= PROFQ_SAMPLE_FAULT;
	s.kind = PROFQ_KIND_CPU;
	assert_int_equal(profiler_add_sample(p, &s, size), 0);
	s.kind = PROFQ_KIND_FAULTS;
	s.weight = 0;
	assert_int_equal(profiler_add_sample(p, &s, size), 0);
	assert_int_equal(weight_of(p, KIND_FAULTS, NULL), 2 * 64 * 4096);
	profiler_stats(p, &st);
	assert_int_equal(st.faults_stored, 2);
	assert_int_equal(st.bad_records, 3);
	/* The one without the flag was taken for a CPU sample, then refused. */
	assert_int_equal(st.samples, 1);
}

/*
 * Off-CPU: a captured stack waits for its end record, which counts its weight at that stack,
 * in the kind it carries; not as a CPU sample. An end that does not match the held stack
 * (another sequence number) still counts, at the lost-stack marker. A record of an off-CPU
 * flag with a CPU kind is malformed.
 */
static void test_offcpu_pairs(void **state)
{
	_cleanup_(profiler_freep) Profiler *p = NULL;
	struct profq_sample s;
	ProfilerStats st;
	StackId paired = 0, lost = 0;
	const StoreFrame *f;
	const FrameId *frames;
	size_t size, n;

	(void)state;
	p = profiler(3600 * NSEC_PER_SEC, 3600 * NSEC_PER_SEC, 64u << 20);
	size = offcpu_stack(&s, 77, 5, PROFQ_KIND_SLEEPING);
	assert_int_equal(profiler_add_sample(p, &s, size), 0);
	/* Held, not counted yet. */
	assert_int_equal(weight_of(p, KIND_SLEEPING, NULL), 0);
	assert_int_equal(store_window_current(profiler_store(p))->samples, 0);
	size = offcpu_end(&s, 77, 5, PROFQ_KIND_SLEEPING, 123456789);
	assert_int_equal(profiler_add_sample(p, &s, size), 0);
	assert_int_equal(weight_of(p, KIND_SLEEPING, &paired), 123456789);
	/* Its stack is the captured one: prof_leaf's callers, not a marker. */
	frames = store_stack(profiler_store(p), paired, &n);
	assert_true(n >= 3);
	f = store_frame(profiler_store(p), frames[0]);
	assert_string_equal(store_string(profiler_store(p), f->function), "prof_leaf");

	/* The same end again: its stack was used; counted at the marker, and still counted. */
	assert_int_equal(profiler_add_sample(p, &s, size), 0);
	size = offcpu_stack(&s, 77, 6, PROFQ_KIND_BLOCKED);
	assert_int_equal(profiler_add_sample(p, &s, size), 0);
	size = offcpu_end(&s, 77, 9, PROFQ_KIND_BLOCKED, 1000);
	assert_int_equal(profiler_add_sample(p, &s, size), 0);
	assert_int_equal(weight_of(p, KIND_SLEEPING, NULL), 2 * 123456789ull);
	assert_int_equal(weight_of(p, KIND_BLOCKED, &lost), 1000);
	frames = store_stack(profiler_store(p), lost, &n);
	assert_int_equal(n, 1);
	f = store_frame(profiler_store(p), frames[0]);
	assert_string_equal(store_string(profiler_store(p), f->function), "[off-cpu stack lost]");
	profiler_stats(p, &st);
	assert_int_equal(st.offcpu_stored, 1);
	assert_int_equal(st.offcpu_unpaired, 2);
	assert_int_equal(st.samples, 0);

	/* A long interval sent whole: counted at once, its stack marked as missing its user
	 * callers. */
	sample_init(&s, 78, true);
	s.flags |= PROFQ_SAMPLE_OFFCPU_WHOLE;
	s.kind = PROFQ_KIND_RUNNABLE;
	s.weight = 5000000;
	s.ustack_len = 1;
	size = PROFQ_SAMPLE_HDR_SIZE + sizeof(uint64_t);
	assert_int_equal(profiler_add_sample(p, &s, size), 0);
	assert_int_equal(weight_of(p, KIND_RUNNABLE, &lost), 5000000);
	frames = store_stack(profiler_store(p), lost, &n);
	assert_int_equal(n, 2);
	f = store_frame(profiler_store(p), frames[1]);
	assert_string_equal(store_string(profiler_store(p), f->function),
			    "[user callers not read]");

	/* A whole interval of a thread at a place it was captured at: that capture's callers. */
	size = offcpu_stack(&s, 79, 1, PROFQ_KIND_SLEEPING);
	assert_int_equal(profiler_add_sample(p, &s, size), 0);
	sample_init(&s, 79, true);
	s.flags |= PROFQ_SAMPLE_OFFCPU_WHOLE;
	s.kind = PROFQ_KIND_SLEEPING;
	s.weight = 7000000;
	s.ustack_len = 1;
	assert_int_equal(profiler_add_sample(p, &s, PROFQ_SAMPLE_HDR_SIZE + sizeof(uint64_t)), 0);
	profiler_stats(p, &st);
	assert_int_equal(st.offcpu_callers_borrowed, 1);

	/* Malformed: an off-CPU record of the CPU kind. */
	size = offcpu_end(&s, 77, 6, PROFQ_KIND_CPU, 1);
	assert_int_equal(profiler_add_sample(p, &s, size), 0);
	profiler_stats(p, &st);
	assert_int_equal(st.bad_records, 1);
	/* The held stack of seq 6 is let go with the profiler. */
}

/* An off-CPU record (flags: captured or whole) with kernel frames, then sample_init()'s user
 * frames (only the leaf for a whole one). */
static size_t offcpu_with_kernel(struct profq_sample *s, uint32_t tid, uint32_t flags,
				 const uint64_t *kaddrs, uint32_t klen)
{
	uint64_t user[3];

	sample_init(s, tid, true);
	memcpy(user, s->addrs, sizeof(user));
	memcpy(s->addrs, kaddrs, klen * sizeof(uint64_t));
	memcpy(s->addrs + klen, user, sizeof(user));
	s->kstack_len = klen;
	s->flags |= flags;
	s->kind = PROFQ_KIND_SLEEPING;
	s->seq = 1;
	s->weight = 7000000;
	if (flags & PROFQ_SAMPLE_OFFCPU_WHOLE)
		s->ustack_len = 1;
	return PROFQ_SAMPLE_HDR_SIZE + (klen + s->ustack_len) * sizeof(uint64_t);
}

/*
 * Borrowed callers: the kernel reads a switched-out thread's stack from outside without the
 * scheduler's frames (do_nanosleep is one, in .sched.text); read at the switch, the stack has
 * them, and the tracepoint's frames leaf of them. A whole interval at the place of a capture
 * takes that capture's user callers all the same; at another place it does not.
 */
static void test_offcpu_borrow_sched(void **state)
{
	static const char syms[] = "ffffffff81000000 T _stext\n"
				   "ffffffff81000100 t trace_sched_switch\n"
				   "ffffffff81001000 T __sched_text_start\n"
				   "ffffffff81001010 t __schedule\n"
				   "ffffffff81001100 t do_nanosleep\n"
				   "ffffffff81002000 T __sched_text_end\n"
				   "ffffffff81003000 t hrtimer_nanosleep\n"
				   "ffffffff81003100 t do_syscall_64\n"
				   "ffffffff81004000 T _etext\n";
	const uint64_t inside[] = { 0xffffffff81000108, 0xffffffff81001018, 0xffffffff81001108,
				    0xffffffff81003008, 0xffffffff81003108 };
	const uint64_t outside[] = { 0xffffffff81003008, 0xffffffff81003108 };
	_cleanup_tmpdir_ char *dir = tmpdir_new_named("profq-test-profiler");
	_cleanup_(profiler_freep) Profiler *p = NULL;
	_cleanup_free_ char *path = NULL;
	struct profq_sample s;
	ProfilerStats st;
	size_t size;
	FILE *f;

	(void)state;
	assert_non_null(dir);
	assert_true(asprintf(&path, "%s/kallsyms", dir) > 0);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(syms, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	p = profiler(3600 * NSEC_PER_SEC, 3600 * NSEC_PER_SEC, 64u << 20);
	assert_int_equal(symbolizer_set_kallsyms_path(profiler_symbolizer(p), path), 0);

	size = offcpu_with_kernel(&s, 90, PROFQ_SAMPLE_OFFCPU_STACK, inside, 5);
	assert_int_equal(profiler_add_sample(p, &s, size), 0);
	size = offcpu_with_kernel(&s, 90, PROFQ_SAMPLE_OFFCPU_WHOLE, outside, 2);
	assert_int_equal(profiler_add_sample(p, &s, size), 0);
	profiler_stats(p, &st);
	assert_int_equal(st.offcpu_callers_borrowed, 1);
	/* Another place (no hrtimer_nanosleep): its own stack. */
	size = offcpu_with_kernel(&s, 90, PROFQ_SAMPLE_OFFCPU_WHOLE, outside + 1, 1);
	assert_int_equal(profiler_add_sample(p, &s, size), 0);
	profiler_stats(p, &st);
	assert_int_equal(st.offcpu_callers_borrowed, 1);
}

static void test_bad_records(void **state)
{
	_cleanup_(profiler_freep) Profiler *p = NULL;
	struct profq_sample s;
	ProfilerStats st;
	const Window *w;
	size_t size;

	(void)state;
	p = profiler(3600 * NSEC_PER_SEC, 3600 * NSEC_PER_SEC, 64u << 20);
	size = sample_init(&s, 1, false);
	assert_int_equal(profiler_add_sample(p, &s, size), 0);

	/* Shorter than the header. */
	assert_int_equal(profiler_add_sample(p, &s, PROFQ_SAMPLE_HDR_SIZE - 1), 0);
	assert_int_equal(profiler_add_sample(p, &s, 0), 0);
	/* Lengths beyond the maximum depth. */
	s.kstack_len = PROFQ_MAX_FRAMES + 1;
	assert_int_equal(profiler_add_sample(p, &s, sizeof(s)), 0);
	s.kstack_len = 0;
	s.ustack_len = PROFQ_MAX_FRAMES + 1;
	assert_int_equal(profiler_add_sample(p, &s, sizeof(s)), 0);
	/* A record shorter than its lengths claim. */
	s.ustack_len = 3;
	assert_int_equal(profiler_add_sample(p, &s, PROFQ_SAMPLE_HDR_SIZE + 2 * 8), 0);
	s.kstack_len = 2;
	assert_int_equal(profiler_add_sample(p, &s, size), 0);
	/* No process. */
	s.kstack_len = 0;
	s.tgid = 0;
	assert_int_equal(profiler_add_sample(p, &s, size), 0);

	profiler_stats(p, &st);
	assert_int_equal(st.samples, 8);
	assert_int_equal(st.bad_records, 7);
	assert_int_equal(st.stored, 1);
	w = store_window_current(profiler_store(p));
	assert_int_equal(w->samples, 1);
	assert_int_equal(w->n_entries, 1);

	/* Full-depth stacks are fine, and marked as cut off. */
	size = sample_init(&s, 1, false);
	s.ustack_len = PROFQ_MAX_FRAMES;
	for (int i = 3; i < PROFQ_MAX_FRAMES; i++)
		s.addrs[i] = s.addrs[2];
	assert_int_equal(
		profiler_add_sample(p, &s,
				    PROFQ_SAMPLE_HDR_SIZE + PROFQ_MAX_FRAMES * sizeof(uint64_t)),
		0);
	profiler_stats(p, &st);
	assert_int_equal(st.stored, 2);
	assert_int_equal(st.truncated, 1);
}

static void test_tick_windows(void **state)
{
	_cleanup_(profiler_freep) Profiler *p = NULL;
	const uint64_t len = 10 * NSEC_PER_SEC;
	struct profq_sample s;
	int64_t end, now;
	const Window *w;
	ProfilerStats st;
	Store *store;
	size_t size;

	(void)state;
	p = profiler(len, 3600 * NSEC_PER_SEC, 64u << 20);
	store = profiler_store(p);
	now = (int64_t)clock_ns(CLOCK_REALTIME);
	assert_int_equal(profiler_tick(p, now, clock_ns(CLOCK_MONOTONIC)), 0);
	w = store_window_current(store);
	assert_non_null(w);
	/* The first window starts now and ends at the next multiple of the window length. */
	assert_int_equal(w->start_ns, now);
	assert_int_equal(w->end_ns % (int64_t)len, 0);
	assert_true(w->end_ns > now && w->end_ns <= now + (int64_t)len);
	end = w->end_ns;
	size = sample_init(&s, 1, false);
	assert_int_equal(profiler_add_sample(p, &s, size), 0);

	/* Before the end: nothing changes. */
	assert_int_equal(profiler_tick(p, end - 1, clock_ns(CLOCK_MONOTONIC)), 0);
	assert_int_equal(store_window_count(store), 1);
	/* Past the end: closed, and the next one starts where it ended. */
	assert_int_equal(profiler_tick(p, end + 1, clock_ns(CLOCK_MONOTONIC)), 0);
	assert_int_equal(store_window_count(store), 2);
	assert_false(store_window(store, 0)->open);
	assert_int_equal(store_window(store, 0)->samples, 1);
	w = store_window_current(store);
	assert_non_null(w);
	assert_int_equal(w->start_ns, end);
	assert_int_equal(w->end_ns, end + (int64_t)len);
	assert_int_equal(w->samples, 0);
	profiler_stats(p, &st);
	assert_int_equal(st.windows_closed, 1);

	/* Lost and idle counts go to the open window and the totals. */
	profiler_add_counters(p, 3, 4);
	assert_int_equal(store_window_current(store)->lost, 3);
	assert_int_equal(store_window_current(store)->idle, 4);
	profiler_stats(p, &st);
	assert_int_equal(st.lost, 3);
	assert_int_equal(st.idle, 4);

	/* After a long gap the next window starts at the tick, not in the past. */
	now = end + 5 * (int64_t)len + 3;
	assert_int_equal(profiler_tick(p, now, clock_ns(CLOCK_MONOTONIC)), 0);
	w = store_window_current(store);
	assert_int_equal(w->start_ns, now);
	assert_int_equal(w->end_ns, end + 6 * (int64_t)len);
	assert_int_equal(store_window_count(store), 3);

	/* Shutdown closes the open window. */
	assert_int_equal(profiler_close_window(p), 0);
	assert_null(store_window_current(store));
	assert_int_equal(profiler_close_window(p), 0);
	profiler_stats(p, &st);
	assert_int_equal(st.windows_closed, 3);
}

static void test_retention(void **state)
{
	_cleanup_(profiler_freep) Profiler *p = NULL;
	const int64_t len = (int64_t)NSEC_PER_SEC;
	struct profq_sample s;
	ProfilerStats st;
	Store *store;
	int64_t now;
	size_t size;

	(void)state;
	p = profiler((uint64_t)len, 3 * NSEC_PER_SEC, 64u << 20);
	store = profiler_store(p);
	now = (int64_t)clock_ns(CLOCK_REALTIME);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(profiler_tick(p, now + i * len, clock_ns(CLOCK_MONOTONIC)), 0);
		size = sample_init(&s, 1, false);
		assert_int_equal(profiler_add_sample(p, &s, size), 0);
		/* Only windows that ended within the retention are kept. */
		for (size_t k = 0; k < store_window_count(store); k++)
			assert_true(store_window(store, k)->end_ns >
				    now + i * len - 3 * (int64_t)NSEC_PER_SEC);
		assert_true(store_window_count(store) <= 5);
	}
	profiler_stats(p, &st);
	assert_true(st.evicted_retention >= 15);
	assert_int_equal(st.evicted_memory, 0);
	assert_int_equal(store_windows_evicted(store), st.evicted_retention);
	assert_true(store_window_current(store) != NULL);
}

/* Fills window after window (one a second from now) with entries samples of distinct threads. */
static void fill_windows(Profiler *p, int windows, uint32_t entries, int64_t now)
{
	struct profq_sample s;
	size_t size;

	for (int i = 0; i < windows; i++) {
		/* The middle of the 1 s window the tick opens: however slowly a loaded machine
		 * runs the loop, its samples stay in that window. */
		int64_t at = (now + i * (int64_t)NSEC_PER_SEC) / (int64_t)NSEC_PER_SEC *
				     (int64_t)NSEC_PER_SEC +
			     (int64_t)NSEC_PER_SEC / 2;
		uint64_t at_boot = (uint64_t)(at - boot_to_real_offset());

		assert_int_equal(profiler_tick(p, now + i * (int64_t)NSEC_PER_SEC,
					       clock_ns(CLOCK_MONOTONIC)),
				 0);
		for (uint32_t t = 1; t <= entries; t++) {
			size = sample_init(&s, t, false);
			s.time_ns = at_boot;
			assert_int_equal(profiler_add_sample(p, &s, size), 0);
		}
	}
}

static void test_max_memory(void **state)
{
	_cleanup_(profiler_freep) Profiler *probe = NULL, *p = NULL;
	const uint32_t entries = 2000;
	int64_t now = (int64_t)clock_ns(CLOCK_REALTIME);
	size_t base, budget;
	ProfilerStats st;

	(void)state;
	/* What a profiler with one full window costs, measured on a twin. */
	probe = profiler(NSEC_PER_SEC, 3600 * NSEC_PER_SEC, 1ULL << 40);
	fill_windows(probe, 2, entries, now);
	/* Without what the symbolizer gives back first under pressure (libdw's caches, the
	 * address caches): the rest must come from windows. */
	symbolizer_shrink(profiler_symbolizer(probe), SIZE_MAX);
	base = profiler_memory(probe);
	profiler_stats(probe, &st);
	assert_int_equal(st.evicted_memory, 0);

	/* Room for about four windows of 2000 entries (24 bytes each) more. */
	budget = base + 4 * entries * sizeof(WindowEntry);
	p = profiler(NSEC_PER_SEC, 3600 * NSEC_PER_SEC, budget);
	fill_windows(p, 12, entries, now);
	assert_int_equal(
		profiler_tick(p, now + 12 * (int64_t)NSEC_PER_SEC, clock_ns(CLOCK_MONOTONIC)), 0);
	profiler_stats(p, &st);
	assert_true(st.evicted_memory >= 4);
	assert_int_equal(st.evicted_retention, 0);
	assert_true(profiler_memory(p) <= budget);
	assert_true(store_window_count(profiler_store(p)) < 12);
	/* The newest data is what stays. */
	assert_non_null(store_window_current(profiler_store(p)));
	assert_true(store_window(profiler_store(p), 0)->start_ns >=
		    now + 4 * (int64_t)NSEC_PER_SEC);
}

/* Sets the mtime of every file in DIR/segments to t (realtime ns). */
static void touch_all(const char *dir, int64_t t)
{
	struct timespec ts[2] = { { .tv_sec = t / (int64_t)NSEC_PER_SEC,
				    .tv_nsec = t % (int64_t)NSEC_PER_SEC } };
	_cleanup_free_ char *segs = NULL;
	struct dirent *de;
	DIR *d;

	ts[1] = ts[0];
	assert_true(asprintf(&segs, "%s/segments", dir) > 0);
	d = opendir(segs);
	assert_non_null(d);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			assert_int_equal(utimensat(dirfd(d), de->d_name, ts, 0), 0);
	closedir(d);
}

/* Windows evicted for memory stay in the state dir, where queries read them back (and a
 * restart with more memory loads them); a ring longer than a segment does not cut segments
 * short; and the disk budget deletes the oldest segments. */
static void test_max_memory_persisted(void **state)
{
	_cleanup_(profiler_freep) Profiler *probe = NULL, *p = NULL, *again = NULL;
	_cleanup_tmpdir_ char *dir = tmpdir_new_named("test-profiler");
	const uint32_t entries = 2000;
	int64_t now = (int64_t)clock_ns(CLOCK_REALTIME);
	/* Segments span a sixth of the retention: 10 windows. */
	ProfilerOptions o = {
		.frequency = 100,
		.window_ns = NSEC_PER_SEC,
		.retention_ns = 60 * NSEC_PER_SEC,
	};
	const PersistLoadStats *loaded;
	int64_t from, deleted;
	size_t held, base;
	PersistStats ps;
	ProfilerStats st;
	bool enabled;
	int error;

	(void)state;
	assert_non_null(dir);
	probe = profiler(NSEC_PER_SEC, 3600 * NSEC_PER_SEC, 1ULL << 40);
	fill_windows(probe, 2, entries, now);
	symbolizer_shrink(profiler_symbolizer(probe), SIZE_MAX);
	base = profiler_memory(probe);

	/* Room for about 14 windows. */
	o.state_dir = dir;
	o.max_memory = base + 14 * entries * sizeof(WindowEntry);
	assert_int_equal(profiler_new(&o, &p), 0);
	fill_windows(p, 40, entries, now);
	assert_int_equal(
		profiler_tick(p, now + 40 * (int64_t)NSEC_PER_SEC, clock_ns(CLOCK_MONOTONIC)), 0);
	profiler_stats(p, &st);
	assert_true(st.evicted_memory >= 20);
	assert_int_equal(st.evicted_retention, 0);
	/* Closed windows held, the open one aside. */
	held = store_window_count(profiler_store(p)) - 1;
	assert_true(held >= 10);
	(void)profiler_persist_state(p, &ps, &enabled, &error);
	assert_true(enabled);
	assert_int_equal(ps.windows_written, 40);
	/* Segments of 10 windows, not one per eviction, all kept. */
	assert_true(ps.segments_created <= 5);
	assert_int_equal(ps.segments_deleted, 0);
	assert_true(profiler_disk_history(p, &from, &deleted));
	assert_true(from <= now && from > now - (int64_t)NSEC_PER_SEC);
	assert_int_equal(deleted, INT64_MIN);
	p = profiler_free(p);
	/* The windows here lie up to 40 s ahead; a segment is dated by its last write, which
	 * comes after its last window's end: date them so. */
	touch_all(dir, now + 60 * (int64_t)NSEC_PER_SEC);

	o.max_memory = 1ULL << 40;
	assert_int_equal(profiler_new(&o, &again), 0);
	loaded = profiler_persist_state(again, &ps, &enabled, &error);
	/* All of them: nothing was lost to memory pressure. */
	assert_int_equal(loaded->windows, 40);
	assert_false(profiler_disk_history(again, &from, &deleted));
	again = profiler_free(again);

	/* A smaller budget at the restart: the oldest windows stay out as they load. */
	o.max_memory = base + 8 * entries * sizeof(WindowEntry);
	assert_int_equal(profiler_new(&o, &again), 0);
	loaded = profiler_persist_state(again, &ps, &enabled, &error);
	profiler_stats(again, &st);
	assert_true(st.evicted_memory > 0);
	assert_true(profiler_memory(again) <= o.max_memory);
	assert_true(store_window_count(profiler_store(again)) >= 1);
	assert_true(store_window_count(profiler_store(again)) <= loaded->windows);
	assert_true(store_window_count(profiler_store(again)) < held);
	/* The newest stayed. */
	assert_true(store_window(profiler_store(again), 0)->start_ns >=
		    now + (int64_t)(40 - held) * (int64_t)NSEC_PER_SEC);
	/* The rest are on disk for queries. */
	assert_true(profiler_disk_history(again, &from, &deleted));
	again = profiler_free(again);

	/* A disk budget smaller than the segments: the oldest go, all but the one being written. */
	o.max_memory = 1ULL << 40;
	o.max_disk = 1;
	assert_int_equal(profiler_new(&o, &again), 0);
	assert_int_equal(profiler_tick(again, now + 60 * (int64_t)NSEC_PER_SEC,
				       clock_ns(CLOCK_MONOTONIC) + 3600 * NSEC_PER_SEC),
			 0);
	(void)profiler_persist_state(again, &ps, &enabled, &error);
	assert_true(ps.segments_deleted >= 4);
	assert_true(ps.segments <= 1);
}

/* Resident memory outside the profiler's accounting, for test_max_memory_resident. */
static Profiler *resident_of;
static size_t resident_extra;

static int64_t fake_resident(void)
{
	return resident_of ? (int64_t)(profiler_memory(resident_of) + resident_extra) : -1;
}

static void test_max_memory_resident(void **state)
{
	_cleanup_(profiler_freep) Profiler *probe = NULL, *p = NULL;
	const uint32_t entries = 2000;
	const size_t window = entries * sizeof(WindowEntry);
	int64_t now = (int64_t)clock_ns(CLOCK_REALTIME);
	ProfilerOptions o = {
		.frequency = 100,
		.window_ns = NSEC_PER_SEC,
		.retention_ns = 3600 * NSEC_PER_SEC,
		.resident = fake_resident,
	};
	size_t base, held_without;
	ProfilerStats st;

	(void)state;
	/* What the profiler holds besides windows, as in test_max_memory. */
	probe = profiler(NSEC_PER_SEC, 3600 * NSEC_PER_SEC, 1ULL << 40);
	fill_windows(probe, 2, entries, now);
	symbolizer_shrink(profiler_symbolizer(probe), SIZE_MAX);
	base = profiler_memory(probe);

	/* Room for 12 more windows' entries, of which the rest of the process takes 5. */
	o.max_memory = base + 12 * window;
	resident_extra = 5 * window;
	assert_int_equal(profiler_new(&o, &p), 0);
	resident_of = p;
	fill_windows(p, 20, entries, now);
	assert_int_equal(
		profiler_tick(p, now + 20 * (int64_t)NSEC_PER_SEC, clock_ns(CLOCK_MONOTONIC)), 0);
	profiler_stats(p, &st);
	assert_int_equal(st.memory_other, resident_extra);
	assert_int_equal(st.data_budget, o.max_memory - resident_extra);
	assert_true(profiler_memory(p) <= o.max_memory - resident_extra);
	assert_true(st.evicted_memory >= 5);
	held_without = store_window_count(profiler_store(p));
	assert_true(held_without >= 2);

	/* Outside memory beyond half the budget takes half of it, no more. */
	resident_extra = 100 * window;
	assert_int_equal(
		profiler_tick(p, now + 21 * (int64_t)NSEC_PER_SEC, clock_ns(CLOCK_MONOTONIC)), 0);
	profiler_stats(p, &st);
	assert_int_equal(st.data_budget, o.max_memory - o.max_memory / 2);
	assert_true(store_window_count(profiler_store(p)) < held_without);
	assert_true(store_window_count(profiler_store(p)) >= 1);
	resident_of = NULL;
}

/* A data budget that leaves data bytes after the sixteenth the profiler keeps free for what
 * grows between two checks. */
static size_t budget_leaving(size_t data)
{
	return data * 16 / 15 + 16;
}

/*
 * Near the budget, every tick checks it, not only the housekeeping pass a second: memory that
 * grows between passes (a fork storm's records, the allocator) is met within a tick, down to
 * the budget less the sixteenth kept free.
 */
static void test_max_memory_every_tick(void **state)
{
	_cleanup_(profiler_freep) Profiler *probe = NULL, *p = NULL;
	const uint32_t entries = 2000;
	const size_t window = entries * sizeof(WindowEntry);
	int64_t now = (int64_t)clock_ns(CLOCK_REALTIME);
	uint64_t mono = clock_ns(CLOCK_MONOTONIC) + 100 * NSEC_PER_SEC;
	ProfilerOptions o = {
		.frequency = 100,
		.window_ns = NSEC_PER_SEC,
		.retention_ns = 3600 * NSEC_PER_SEC,
		.resident = fake_resident,
	};
	ProfilerStats st;
	size_t used, budget;

	(void)state;
	/* A budget half again what four windows take, measured on a twin. */
	resident_of = NULL;
	probe = profiler(NSEC_PER_SEC, 3600 * NSEC_PER_SEC, 1ULL << 40);
	fill_windows(probe, 4, entries, now);
	o.max_memory = profiler_memory(probe) * 3 / 2;
	assert_int_equal(profiler_new(&o, &p), 0);
	fill_windows(p, 4, entries, now);
	/* A pass (a window closes) with the data a window's entries under its budget less the
	 * reserve (the rest of the process takes the rest): within an eighth of it, nothing
	 * evicted. */
	used = profiler_memory(p);
	resident_of = p;
	budget = budget_leaving(used + window);
	resident_extra = o.max_memory - budget;
	assert_true(resident_extra <= o.max_memory / 2 && window < (used + window) / 8);
	assert_int_equal(profiler_tick(p, now + 4 * (int64_t)NSEC_PER_SEC, mono), 0);
	profiler_stats(p, &st);
	assert_int_equal(st.evicted_memory, 0);
	assert_int_equal(st.data_budget, budget);

	/* The rest of the process grows by two windows: the next tick, a tenth of a second on
	 * and no window closed, frees that much and the reserve (caches, then windows). */
	resident_extra += 2 * window;
	budget = o.max_memory - resident_extra;
	assert_true(profiler_memory(p) > budget - budget / 16);
	assert_int_equal(
		profiler_tick(p, now + 4 * (int64_t)NSEC_PER_SEC, mono + 100 * NSEC_PER_MSEC), 0);
	assert_true(profiler_memory(p) <= budget - budget / 16);
	resident_of = NULL;
}

/* JIT code: an address far from every mapping of this process (also of ASan's shadow). */
#define JIT_BASE 0x600000000000ULL

/* Lines "START 40 jit_fn_I\n" for I in [first, first + n) into our perf map; their bytes. */
static size_t write_jit_map(unsigned first, unsigned n, const char *mode)
{
	char path[64];
	size_t bytes = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/tmp/perf-%d.map", (int)getpid());
	f = fopen(path, mode);
	assert_non_null(f);
	for (unsigned i = first; i < first + n; i++) {
		int r = fprintf(f, "%llx 40 jit_fn_%u\n", JIT_BASE + i * 0x40ULL, i);

		assert_true(r > 0);
		bytes += (size_t)r;
	}
	assert_int_equal(fclose(f), 0);
	return bytes;
}

static void unlink_jit_map(void)
{
	char path[64];

	snprintf(path, sizeof(path), "/tmp/perf-%d.map", (int)getpid());
	unlink(path);
}

/* A sample in JIT function i. */
static void add_jit_sample(Profiler *p, unsigned i)
{
	struct profq_sample s;

	sample_init(&s, 1, false);
	s.ustack_len = 1;
	s.addrs[0] = JIT_BASE + i * 0x40ULL + 8;
	assert_int_equal(profiler_add_sample(p, &s, PROFQ_SAMPLE_HDR_SIZE + sizeof(uint64_t)), 0);
}

static uint64_t perf_map_bytes_read(Profiler *p)
{
	ProcTableStats pt;

	profiler_proc_stats(p, &pt);
	return pt.perfmap_bytes_read;
}

static bool has_row(json_object *answer, const char *function)
{
	json_object *rows = json_object_object_get(answer, "rows");

	for (size_t i = 0; i < json_object_array_length(rows); i++)
		if (streq(strempty(json_get_string(json_object_array_get_idx(rows, i), "function")),
			  function))
			return true;
	return false;
}

/*
 * A JIT process's perf map of 18 MB is read a piece per tick (the loop goes on between
 * pieces), only its newest part (the cap: a sixteenth of --max-memory), and, as it grows by a
 * line, a line at a time: never the whole file again.
 */
static void test_perf_map_incremental(void **state)
{
	_cleanup_(profiler_freep)
		Profiler *p = profiler(NSEC_PER_SEC, 3600 * NSEC_PER_SEC, 64ULL << 20);
	int64_t now = (int64_t)clock_ns(CLOCK_REALTIME);
	const unsigned n = 600000;
	uint64_t read, before;
	size_t size, line;
	ProcTableStats pt;
	char name[32];

	(void)state;
	size = write_jit_map(0, n, "we");
	assert_true(size > 16 << 20);
	assert_int_equal(profiler_tick(p, now, clock_ns(CLOCK_MONOTONIC)), 0);

	/* A sample: one tick's piece, not the file; further samples in the tick read nothing. */
	add_jit_sample(p, n - 1);
	read = perf_map_bytes_read(p);
	assert_true(read > 0 && read <= (2 << 20));
	add_jit_sample(p, n - 1);
	assert_int_equal(perf_map_bytes_read(p), read);

	/* Tick by tick, the rest: the newest 2 MiB (half the 4 MiB cap), the rest refused. */
	for (int i = 0; i < 10; i++) {
		assert_int_equal(profiler_tick(p, now, clock_ns(CLOCK_MONOTONIC)), 0);
		add_jit_sample(p, n - 1);
	}
	profiler_proc_stats(p, &pt);
	assert_true(pt.perfmap_bytes_read <= (2 << 20) + 64);
	assert_true(pt.perfmap_bytes_refused >= size - (2 << 20) - 64);
	assert_true(pt.perfmap_memory > 0 && pt.perfmap_memory < (8 << 20));
	snprintf(name, sizeof(name), "jit_fn_%u", n - 1);
	{
		_cleanup_json_ json_object *t = top(p, (uint32_t)getpid());

		assert_true(has_row(t, name));
		assert_string_equal(json_get_string(row(t, name), "module"), "[jit]");
	}

	/* A line more, for code that runs now: read once the lookups missed a while. */
	before = perf_map_bytes_read(p);
	line = write_jit_map(n, 1, "ae");
	usleep(300 * 1000);
	assert_int_equal(profiler_tick(p, now, clock_ns(CLOCK_MONOTONIC)), 0);
	add_jit_sample(p, n);
	assert_int_equal(perf_map_bytes_read(p) - before, line);
	snprintf(name, sizeof(name), "jit_fn_%u", n);
	{
		_cleanup_json_ json_object *t = top(p, (uint32_t)getpid());

		assert_true(has_row(t, name));
	}
	unlink_jit_map();
}

/*
 * Perf maps count against --max-memory and, like the caches, go before windows: with the
 * budget filled by windows, a perf map read on top is dropped, the windows stay; and it is
 * not read again right away, only to be dropped again.
 */
static void test_perf_map_memory(void **state)
{
	ProfilerOptions o = { .frequency = 100,
			      .window_ns = NSEC_PER_SEC,
			      .retention_ns = 3600 * NSEC_PER_SEC,
			      .max_memory = 8 << 20,
			      .resident = fake_resident };
	_cleanup_(profiler_freep) Profiler *p = NULL;
	int64_t now = (int64_t)clock_ns(CLOCK_REALTIME);
	size_t base, map, budget;
	ProcTableStats pt;
	ProfilerStats st;

	(void)state;
	resident_of = NULL;
	assert_int_equal(profiler_new(&o, &p), 0);
	/* Three closed windows: more than half the budget. */
	fill_windows(p, 3, 45000, now);
	assert_int_equal(
		profiler_tick(p, now + 3 * (int64_t)NSEC_PER_SEC, clock_ns(CLOCK_MONOTONIC)), 0);
	symbolizer_shrink(profiler_symbolizer(p), SIZE_MAX);
	base = profiler_memory(p);
	assert_true(base > o.max_memory / 2 && base < o.max_memory);

	/* The newest 256 KiB of the file (half the cap, a sixteenth of the budget). */
	write_jit_map(0, 400000, "we");
	for (int i = 0; i < 5; i++) {
		assert_int_equal(profiler_tick(p, now + 3 * (int64_t)NSEC_PER_SEC,
					       clock_ns(CLOCK_MONOTONIC)),
				 0);
		add_jit_sample(p, 400000 - 1);
	}
	profiler_proc_stats(p, &pt);
	assert_true(pt.perfmap_bytes_read >= (256 << 10) - 64);
	map = pt.perfmap_memory;
	assert_true(map >= 256 << 10);

	/* What the budget leaves the profiler's data (less its reserve): the windows and half
	 * the map. The rest of the process's resident set comes off it. */
	budget = budget_leaving(base + map / 2);
	assert_true(budget >= o.max_memory / 2 && budget < o.max_memory);
	resident_of = p;
	resident_extra = o.max_memory - budget;

	/* Housekeeping (a window closes): the map goes, not the windows. */
	assert_int_equal(
		profiler_tick(p, now + 4 * (int64_t)NSEC_PER_SEC, clock_ns(CLOCK_MONOTONIC)), 0);
	profiler_stats(p, &st);
	profiler_proc_stats(p, &pt);
	assert_int_equal(pt.perfmap_dropped, 1);
	assert_int_equal(pt.perfmap_memory, 0);
	assert_int_equal(st.evicted_memory, 0);
	assert_true(profiler_memory(p) <= budget - budget / 16);
	/* Not read again right away: it would only be dropped again. */
	add_jit_sample(p, 400000 - 1);
	profiler_proc_stats(p, &pt);
	assert_int_equal(pt.perfmap_memory, 0);
	unlink_jit_map();
	resident_of = NULL;
}

static const StoreProc *record_of(Profiler *p, uint32_t pid, uint64_t start_boot_ns)
{
	Store *store = profiler_store(p);
	ProcId id;

	if (store_proc_find(store, pid, proctable_boot_id(), start_boot_ns, &id) < 0)
		return NULL;
	store_proc_unref(store, id); /* the table and the exited list hold it */
	return store_proc(store, id);
}

/*
 * An exit whose event was lost (ring buffer full) is found on the sweep: a process sampled
 * and then gone from /proc is marked exited, at about the time it was last seen; a live one is
 * left running.
 */
static void test_lost_exit(void **state)
{
	_cleanup_(profiler_freep)
		Profiler *p = profiler(NSEC_PER_SEC, 3600 * NSEC_PER_SEC, 64ULL << 20);
	int64_t now = (int64_t)clock_ns(CLOCK_REALTIME);
	struct profq_sample s;
	const StoreProc *sp;
	ProcTableStats pt;
	uint64_t child_start;
	int64_t seen;
	ProcStat st;
	size_t size;
	pid_t child;

	(void)state;
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		pause();
		_exit(0);
	}
	assert_int_equal(procfs_read_stat(child, &st), 0);
	child_start = st.starttime * (NSEC_PER_SEC / procfs_clock_ticks());
	assert_int_equal(profiler_tick(p, now, clock_ns(CLOCK_MONOTONIC)), 0);

	/* Samples of the child and of us; no exit event will come. */
	size = sample_init(&s, 1, false);
	assert_int_equal(profiler_add_sample(p, &s, size), 0);
	size = sample_init(&s, (uint32_t)child, false);
	s.tgid = (uint32_t)child;
	s.start_ns = child_start;
	seen = (int64_t)clock_ns(CLOCK_REALTIME);
	assert_int_equal(profiler_add_sample(p, &s, size), 0);
	profiler_proc_stats(p, &pt);
	assert_int_equal(pt.running, 2);

	assert_int_equal(kill(child, SIGKILL), 0);
	assert_int_equal(waitpid(child, NULL, 0), child);

	/* The sweep, some seconds on. */
	assert_int_equal(profiler_tick(p, now + (int64_t)NSEC_PER_SEC / 2,
				       clock_ns(CLOCK_MONOTONIC) + 11 * NSEC_PER_SEC),
			 0);
	sp = record_of(p, (uint32_t)child, child_start);
	assert_non_null(sp);
	assert_true(sp->flags & PROC_EXITED);
	/* Last seen at the sample, 11 s before the (pretended) sweep. */
	assert_true(sp->exit_ns >= seen - (int64_t)NSEC_PER_SEC &&
		    sp->exit_ns <= seen + (int64_t)NSEC_PER_SEC);
	sp = record_of(p, (uint32_t)getpid(), self_start_boot_ns());
	assert_non_null(sp);
	assert_false(sp->flags & PROC_EXITED);
	profiler_proc_stats(p, &pt);
	assert_int_equal(pt.exits_unseen, 1);
	assert_int_equal(pt.running, 1);
	assert_int_equal(pt.exited_held, 1);
}

/*
 * An exit event carries the kernel's figures, unless the BPF program could not sum them over
 * every thread (PROFQ_EVENT_PARTIAL): then the record says they are not the kernel's.
 */
static void test_exit_partial(void **state)
{
	_cleanup_(profiler_freep)
		Profiler *p = profiler(NSEC_PER_SEC, 3600 * NSEC_PER_SEC, 64ULL << 20);
	const uint32_t base = 4100000;
	struct profq_event e;
	const StoreProc *sp;

	(void)state;
	for (uint32_t i = 0; i < 2; i++) {
		e = (struct profq_event){ .type = PROFQ_EVENT_EXEC,
					  .pid = base + i,
					  .start_ns = 2000 + i,
					  .time_ns = clock_ns(CLOCK_BOOTTIME) };
		snprintf(e.comm, sizeof(e.comm), "threads");
		assert_int_equal(profiler_add_event(p, &e, sizeof(e)), 0);
		e.type = PROFQ_EVENT_EXIT;
		e.utime_ns = e.rtime_ns = NSEC_PER_SEC;
		e.flags = i == 1 ? PROFQ_EVENT_PARTIAL : 0;
		assert_int_equal(profiler_add_event(p, &e, sizeof(e)), 0);
	}
	sp = record_of(p, base, 2000);
	assert_non_null(sp);
	assert_true((sp->flags & PROC_EXITED) && (sp->flags & PROC_ACCOUNTING));
	assert_int_equal(sp->user_ns, NSEC_PER_SEC);
	sp = record_of(p, base + 1, 2001);
	assert_non_null(sp);
	assert_true(sp->flags & PROC_EXITED);
	assert_false(sp->flags & PROC_ACCOUNTING);
}

/*
 * Exited processes leave the table within a second of their grace (7 s), not at the next full
 * sweep (every ten seconds): a fork storm's table holds seconds of its forks, and less than
 * before, since the sweep came between 0 and 10 s after the grace.
 */
static void test_exited_leave_table(void **state)
{
	_cleanup_(profiler_freep)
		Profiler *p = profiler(NSEC_PER_SEC, 3600 * NSEC_PER_SEC, 64ULL << 20);
	int64_t now = (int64_t)clock_ns(CLOCK_REALTIME);
	uint64_t mono = clock_ns(CLOCK_MONOTONIC);
	const uint32_t storm = 100, sampled = 4000000;
	struct profq_event e;
	struct profq_sample s;
	ProcTableStats pt;
	size_t size;

	(void)state;
	/* The first tick runs the full sweep: the next is ten seconds away. */
	assert_int_equal(profiler_tick(p, now, mono), 0);
	size = sample_init(&s, sampled, false);
	s.tgid = sampled;
	s.start_ns = 1000;
	assert_int_equal(profiler_add_sample(p, &s, size), 0);
	for (uint32_t i = 0; i <= storm; i++) {
		if (i > 0) {
			e = (struct profq_event){ .type = PROFQ_EVENT_EXEC,
						  .pid = sampled + i,
						  .start_ns = 1000 + i,
						  .time_ns = clock_ns(CLOCK_BOOTTIME) };
			snprintf(e.comm, sizeof(e.comm), "true");
			assert_int_equal(profiler_add_event(p, &e, sizeof(e)), 0);
		}
		e = (struct profq_event){ .type = PROFQ_EVENT_EXIT,
					  .pid = sampled + i,
					  .start_ns = 1000 + i,
					  .time_ns = clock_ns(CLOCK_BOOTTIME) };
		assert_int_equal(profiler_add_event(p, &e, sizeof(e)), 0);
	}
	profiler_proc_stats(p, &pt);
	assert_int_equal(pt.processes, storm + 1);

	/* 3 s on: within the grace, all still there (samples may still come). */
	assert_int_equal(profiler_tick(p, now + 3 * (int64_t)NSEC_PER_SEC,
				       clock_ns(CLOCK_MONOTONIC) + 3 * NSEC_PER_SEC),
			 0);
	profiler_proc_stats(p, &pt);
	assert_int_equal(pt.processes, storm + 1);
	assert_int_equal(pt.exited_held, storm + 1);
	/* 8.5 s on (before the next full sweep): all gone; their records stay held. */
	assert_int_equal(profiler_tick(p, now + 8 * (int64_t)NSEC_PER_SEC,
				       clock_ns(CLOCK_MONOTONIC) + 8500 * NSEC_PER_MSEC),
			 0);
	profiler_proc_stats(p, &pt);
	assert_int_equal(pt.processes, 0);
	assert_int_equal(pt.exited_held, storm + 1);
	assert_non_null(record_of(p, sampled, 1000));
}

/*
 * A fork storm's exited records go under memory pressure, before any window: those without
 * samples in a window; an exited process with samples stays queryable.
 */
static void test_fork_storm(void **state)
{
	/* 5.25 MiB: the windows and the storm's records take about 4.1 MB (up to 5 MB under
	 * ASan's allocator), room to spare until the test makes memory short itself; the windows
	 * with the storm's records, once the table has let the exited go (2.85 MB), more than
	 * half of it. */
	ProfilerOptions o = { .frequency = 100,
			      .window_ns = NSEC_PER_SEC,
			      .retention_ns = 3600 * NSEC_PER_SEC,
			      .max_memory = 21 << 18,
			      .resident = fake_resident };
	_cleanup_(profiler_freep) Profiler *p = NULL;
	int64_t now = (int64_t)clock_ns(CLOCK_REALTIME);
	const uint32_t storm = 4000, sampled = 4000000;
	struct profq_event e;
	struct profq_sample s;
	ProcTableStats pt;
	ProfilerStats st;
	size_t size, used;

	(void)state;
	resident_of = NULL;
	assert_int_equal(profiler_new(&o, &p), 0);
	/* Profiles (of us), more than half the budget with the storm's records. */
	fill_windows(p, 1, 20000, now);
	/* One exited process with samples... */
	size = sample_init(&s, sampled, false);
	s.tgid = sampled;
	s.start_ns = 1000;
	assert_int_equal(profiler_add_sample(p, &s, size), 0);
	e = (struct profq_event){ .type = PROFQ_EVENT_EXIT,
				  .pid = sampled,
				  .start_ns = 1000,
				  .time_ns = clock_ns(CLOCK_BOOTTIME) };
	assert_int_equal(profiler_add_event(p, &e, sizeof(e)), 0);
	/* ... and a storm of short ones without (exec, with a command line, and exit). */
	for (uint32_t i = 1; i <= storm; i++) {
		e = (struct profq_event){ .type = PROFQ_EVENT_EXEC,
					  .pid = sampled + i,
					  .start_ns = 1000 + i,
					  .time_ns = clock_ns(CLOCK_BOOTTIME) };
		snprintf(e.comm, sizeof(e.comm), "true");
		e.args_len = (uint32_t)snprintf(e.args, sizeof(e.args),
						"/usr/bin/true --storm-member %u "
						"--padding-to-look-like-a-real-command-line-%u",
						i, i) +
			     1;
		assert_int_equal(profiler_add_event(p, &e, sizeof(e)), 0);
		e.type = PROFQ_EVENT_EXIT;
		e.args_len = 0;
		assert_int_equal(profiler_add_event(p, &e, sizeof(e)), 0);
	}
	/* The window with the samples closes. */
	assert_int_equal(profiler_tick(p, now + (int64_t)NSEC_PER_SEC, clock_ns(CLOCK_MONOTONIC)),
			 0);
	profiler_proc_stats(p, &pt);
	assert_int_equal(pt.exited_held, storm + 1);
	profiler_stats(p, &st);
	assert_int_equal(st.evicted_memory, 0);

	/* A sweep: the exited leave the table, the exited list holds their records alone. */
	assert_int_equal(profiler_tick(p, now + 2 * (int64_t)NSEC_PER_SEC,
				       clock_ns(CLOCK_MONOTONIC) + 12 * NSEC_PER_SEC),
			 0);
	profiler_proc_stats(p, &pt);
	assert_int_equal(pt.exited_held, storm + 1);

	/* Memory short by a little: the storm's records go, the windows and the process with
	 * samples stay. */
	used = profiler_memory(p);
	assert_true(used > o.max_memory / 2 && used < o.max_memory);
	resident_of = p;
	resident_extra = o.max_memory - (used - used / 64);
	assert_int_equal(profiler_tick(p, now + 3 * (int64_t)NSEC_PER_SEC,
				       clock_ns(CLOCK_MONOTONIC) + 13 * NSEC_PER_SEC),
			 0);
	resident_of = NULL;
	profiler_proc_stats(p, &pt);
	profiler_stats(p, &st);
	assert_int_equal(pt.exited_held, 1);
	assert_int_equal(pt.exited_dropped_memory, storm);
	assert_int_equal(st.evicted_memory, 0);
	assert_non_null(record_of(p, sampled, 1000));
	assert_null(record_of(p, sampled + 1, 1001));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_samples),
		cmocka_unit_test(test_exec_privacy),
		cmocka_unit_test(test_thread_names),
		cmocka_unit_test(test_bad_records),
		cmocka_unit_test(test_offcpu_pairs),
		cmocka_unit_test(test_offcpu_borrow_sched),
		cmocka_unit_test(test_fault_records),
		cmocka_unit_test(test_tick_windows),
		cmocka_unit_test(test_retention),
		cmocka_unit_test(test_max_memory),
		cmocka_unit_test(test_max_memory_resident),
		cmocka_unit_test(test_max_memory_every_tick),
		cmocka_unit_test(test_max_memory_persisted),
		cmocka_unit_test(test_perf_map_incremental),
		cmocka_unit_test(test_perf_map_memory),
		cmocka_unit_test(test_lost_exit),
		cmocka_unit_test(test_exit_partial),
		cmocka_unit_test(test_fork_storm),
		cmocka_unit_test(test_exited_leave_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
