/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "base/macro.h"
#include "store/store.h"

static StrId str(Store *s, const char *v)
{
	StrId id = 0;

	assert_int_equal(store_intern_string(s, v, &id), 0);
	assert_int_not_equal(id, 0);
	return id;
}

static FrameId frame(Store *s, const char *fn, const char *mod, uint64_t address)
{
	StoreFrame f = { .address = address };
	FrameId id = 0;

	f.function = fn ? str(s, fn) : 0;
	f.module = mod ? str(s, mod) : 0;
	assert_int_equal(store_intern_frame(s, &f, &id), 0);
	assert_int_not_equal(id, 0);
	/* The frame holds its own references on its strings. */
	store_string_unref(s, f.function);
	store_string_unref(s, f.module);
	return id;
}

static void test_strings(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	StrId a, a2, b, ab, empty, c, ids[1000];
	char buf[32];
	size_t m0, m1;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	assert_null(store_string(s, 0));
	assert_null(store_string(s, 12345));

	a = str(s, "alpha");
	a2 = str(s, "alpha");
	b = str(s, "beta");
	ab = str(s, "alphabet");
	empty = str(s, "");
	assert_int_equal(a, a2);
	assert_int_not_equal(a, b);
	assert_int_not_equal(a, ab);
	assert_int_not_equal(empty, a);
	assert_string_equal(store_string(s, a), "alpha");
	assert_string_equal(store_string(s, b), "beta");
	assert_string_equal(store_string(s, ab), "alphabet");
	assert_string_equal(store_string(s, empty), "");

	/* Two references on "alpha": the first unref keeps it. */
	store_string_unref(s, a);
	assert_string_equal(store_string(s, a), "alpha");
	store_string_unref(s, a);
	assert_null(store_string(s, a));
	/* Its id is reused by the next new string; interning "alpha" again gives a fresh entry. */
	c = str(s, "gamma");
	assert_int_equal(c, a);
	assert_string_equal(store_string(s, c), "gamma");
	a = str(s, "alpha");
	assert_int_not_equal(a, c);
	assert_string_equal(store_string(s, a), "alpha");
	/* ref/unref of id 0 are no-ops. */
	store_string_ref(s, 0);
	store_string_unref(s, 0);

	/* Many distinct strings get distinct ids, all readable back; memory follows. */
	m0 = store_memory(s);
	for (int i = 0; i < 1000; i++) {
		snprintf(buf, sizeof(buf), "string-%d", i);
		ids[i] = str(s, buf);
		for (int j = 0; j < i; j += 97)
			assert_int_not_equal(ids[i], ids[j]);
	}
	m1 = store_memory(s);
	assert_true(m1 >= m0 + 1000 * sizeof("string-0"));
	for (int i = 0; i < 1000; i++) {
		snprintf(buf, sizeof(buf), "string-%d", i);
		assert_string_equal(store_string(s, ids[i]), buf);
		assert_int_equal(str(s, buf), ids[i]);
		store_string_unref(s, ids[i]);
	}
	for (int i = 0; i < 1000; i++)
		store_string_unref(s, ids[i]);
	/* 10890 bytes of text go; the list of free ids grows by 4 KiB. */
	assert_true(store_memory(s) + 5000 < m1);
	for (int i = 0; i < 1000; i++)
		assert_null(store_string(s, ids[i]));
}

static void test_string_memory(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	char big[4001];
	size_t m0, m1, m2;
	StrId id;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	/* Warm the tables up so the figures below only move by the string. */
	store_string_unref(s, str(s, "warm"));
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	m0 = store_memory(s);
	id = str(s, big);
	m1 = store_memory(s);
	assert_true(m1 >= m0 + 4000);
	store_string_unref(s, id);
	m2 = store_memory(s);
	assert_true(m2 <= m1 - 4000);
	assert_true(m2 - m0 < 64); /* at most a free-list slot more */
}

static void test_frames(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	StoreFrame f = { .line = 12, .flags = FRAME_INLINED, .address = 0x401000 };
	StoreFrame g;
	const StoreFrame *p;
	StrId fn, mod, file;
	FrameId a, a2, b, c, d, e;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	fn = str(s, "compute");
	mod = str(s, "prog");
	file = str(s, "prog.c");
	f.function = fn;
	f.module = mod;
	f.file = file;

	assert_int_equal(store_intern_frame(s, &f, &a), 0);
	assert_int_equal(store_intern_frame(s, &f, &a2), 0);
	assert_int_equal(a, a2);
	g = f;
	g.address++;
	assert_int_equal(store_intern_frame(s, &g, &b), 0);
	g = f;
	g.flags = 0;
	assert_int_equal(store_intern_frame(s, &g, &c), 0);
	g = f;
	g.line = 13;
	assert_int_equal(store_intern_frame(s, &g, &d), 0);
	/* Same everything but the source file (or module, or function). */
	g = f;
	g.file = str(s, "other.c");
	assert_int_equal(store_intern_frame(s, &g, &e), 0);
	assert_int_not_equal(a, e);
	store_frame_unref(s, e);
	store_string_unref(s, g.file);
	g = f;
	g.module = g.function;
	assert_int_equal(store_intern_frame(s, &g, &e), 0);
	assert_int_not_equal(a, e);
	store_frame_unref(s, e);
	g = f;
	g.function = g.module;
	assert_int_equal(store_intern_frame(s, &g, &e), 0);
	assert_int_not_equal(a, e);
	store_frame_unref(s, e);
	assert_int_not_equal(a, b);
	assert_int_not_equal(a, c);
	assert_int_not_equal(a, d);
	assert_int_not_equal(b, c);

	p = store_frame(s, a);
	assert_non_null(p);
	assert_int_equal(p->function, fn);
	assert_int_equal(p->module, mod);
	assert_int_equal(p->file, file);
	assert_int_equal(p->line, 12);
	assert_int_equal(p->flags, FRAME_INLINED);
	assert_true(p->address == 0x401000);
	assert_null(store_frame(s, 0));
	assert_null(store_frame(s, 999));

	/* Drop the caller's string references: the frames keep the strings. */
	store_string_unref(s, fn);
	store_string_unref(s, mod);
	store_string_unref(s, file);
	assert_string_equal(store_string(s, fn), "compute");
	store_frame_unref(s, b);
	store_frame_unref(s, c);
	store_frame_unref(s, d);
	assert_null(store_frame(s, b));
	assert_string_equal(store_string(s, store_frame(s, a)->file), "prog.c");
	/* Frame a has two references. */
	store_frame_unref(s, a);
	assert_non_null(store_frame(s, a));
	store_frame_unref(s, a);
	assert_null(store_frame(s, a));
	/* ... and with the last frame go the strings. */
	assert_null(store_string(s, fn));
	assert_null(store_string(s, mod));
	assert_null(store_string(s, file));
}

static void test_stacks(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	FrameId f1, f2, f3, big[STORE_STACK_MAX + 1];
	StackId a, a2, b, c, d, e;
	const FrameId *fr;
	size_t n;
	StrId leaf;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	f1 = frame(s, "leaf", "prog", 0x10);
	f2 = frame(s, "mid", "prog", 0x20);
	f3 = frame(s, "main", "prog", 0x30);
	leaf = store_frame(s, f1)->function;

	assert_int_equal(store_intern_stack(s, (FrameId[]){ f1, f2, f3 }, 3, &a), 0);
	assert_int_equal(store_intern_stack(s, (FrameId[]){ f1, f2, f3 }, 3, &a2), 0);
	assert_int_equal(a, a2);
	assert_int_equal(store_intern_stack(s, (FrameId[]){ f1, f2 }, 2, &b), 0);
	assert_int_equal(store_intern_stack(s, (FrameId[]){ f2, f1, f3 }, 3, &c), 0);
	assert_int_equal(store_intern_stack(s, (FrameId[]){ f1 }, 1, &d), 0);
	assert_int_not_equal(a, b);
	assert_int_not_equal(a, c);
	assert_int_not_equal(b, d);
	assert_true(store_stack_id_limit(s) > MAX(MAX(a, b), MAX(c, d)));
	assert_true(store_frame_id_limit(s) > MAX(MAX(f1, f2), f3));

	fr = store_stack(s, a, &n);
	assert_non_null(fr);
	assert_int_equal(n, 3);
	assert_int_equal(fr[0], f1);
	assert_int_equal(fr[1], f2);
	assert_int_equal(fr[2], f3);
	n = 99;
	assert_null(store_stack(s, 0, &n));
	assert_int_equal(n, 0);

	assert_int_equal(store_intern_stack(s, (FrameId[]){ f1 }, 0, &e), -EINVAL);
	for (size_t i = 0; i < ARRAY_SIZE(big); i++)
		big[i] = i % 2 ? f1 : f2;
	assert_int_equal(store_intern_stack(s, big, STORE_STACK_MAX + 1, &e), -EINVAL);
	assert_int_equal(store_intern_stack(s, big, STORE_STACK_MAX, &e), 0);
	store_stack_unref(s, e);
	assert_null(store_stack(s, e, &n));

	/* The stacks hold the frames: drop the caller's frame references. */
	store_frame_unref(s, f1);
	store_frame_unref(s, f2);
	store_frame_unref(s, f3);
	assert_non_null(store_frame(s, f1));
	store_stack_unref(s, b);
	store_stack_unref(s, c);
	store_stack_unref(s, d);
	assert_non_null(store_frame(s, f1)); /* still in a */
	store_stack_unref(s, a);
	assert_non_null(store_stack(s, a, &n)); /* a had two references */
	store_stack_unref(s, a);
	assert_null(store_stack(s, a, &n));
	/* Cascade: stack -> frames -> strings. */
	assert_null(store_frame(s, f1));
	assert_null(store_frame(s, f2));
	assert_null(store_frame(s, f3));
	assert_null(store_string(s, leaf));
}

static void test_procs(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	StoreProc p = { .pid = 42, .ppid = 1, .uid = 1000, .start_ns = 5, .start_boot_ns = 5 };
	const StoreProc *q;
	ProcId a, b;
	StrId comm2;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	p.comm = str(s, "worker");
	p.cmdline = str(s, "worker --fast");
	assert_int_equal(store_proc_add(s, &p, &a), 0);
	/* The same incarnation again is refused; pid reuse is a new incarnation, a new record. */
	assert_int_equal(store_proc_add(s, &p, &b), -EEXIST);
	p.start_ns = 6;
	p.start_boot_ns = 6;
	assert_int_equal(store_proc_add(s, &p, &b), 0);
	assert_int_not_equal(a, b);
	assert_int_equal(store_proc_count(s), 2);
	assert_true(store_proc_id_limit(s) > MAX(a, b));
	store_string_unref(s, p.comm);
	store_string_unref(s, p.cmdline);

	q = store_proc(s, a);
	assert_non_null(q);
	assert_int_equal(q->pid, 42);
	assert_int_equal(q->uid, 1000);
	assert_int_equal(q->start_ns, 5);
	assert_string_equal(store_string(s, q->comm), "worker");
	assert_string_equal(store_string(s, q->cmdline), "worker --fast");

	/* exec changes the comm: the old name goes once nobody holds it. */
	comm2 = str(s, "worker2");
	store_proc_set_comm(s, b, comm2);
	store_string_unref(s, comm2);
	assert_string_equal(store_string(s, store_proc(s, b)->comm), "worker2");
	assert_string_equal(store_string(s, store_proc(s, a)->comm), "worker");
	store_proc_mut(s, a)->flags |= PROC_EXITED;
	assert_int_equal(store_proc(s, a)->flags, PROC_EXITED);

	store_proc_ref(s, a);
	store_proc_unref(s, a);
	assert_non_null(store_proc(s, a));
	store_proc_unref(s, a);
	assert_null(store_proc(s, a));
	assert_int_equal(store_proc_count(s), 1);
	assert_non_null(store_string(s, p.cmdline)); /* b still holds it */
	store_proc_unref(s, b);
	assert_int_equal(store_proc_count(s), 0);
	assert_null(store_string(s, p.cmdline));
	assert_null(store_string(s, comm2));
	assert_null(store_proc(s, 0));
}

/* Memory points hold their process, are sorted by (process, time) at close, count in the
 * memory, and go with their window; a copy imported holds its own references. */
static void test_window_mem(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	StoreProc p = { .pid = 7, .start_ns = 5, .start_boot_ns = 5 };
	MemPoint m = { .time_ns = 300, .anon = 4096 };
	Window copy;
	size_t before;
	ProcId a, b;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	assert_int_equal(store_proc_add(s, &p, &a), 0);
	p.pid = 8;
	assert_int_equal(store_proc_add(s, &p, &b), 0);
	assert_int_equal(store_window_add_mem(s, &m), -ENOENT);
	assert_int_equal(store_window_open(s, 100, 1000, 10), 0);
	before = store_memory(s);
	m.proc = 99;
	assert_int_equal(store_window_add_mem(s, &m), -EINVAL);
	m.proc = b;
	assert_int_equal(store_window_add_mem(s, &m), 0);
	m.proc = a;
	assert_int_equal(store_window_add_mem(s, &m), 0);
	m.time_ns = 200;
	assert_int_equal(store_window_add_mem(s, &m), 0);
	store_proc_unref(s, a);
	store_proc_unref(s, b);
	assert_non_null(store_proc(s, a));
	assert_int_equal(store_window_close(s), 0);
	assert_true(store_memory(s) >= before + 3 * sizeof(MemPoint));
	assert_int_equal(store_window(s, 0)->n_mem, 3);
	assert_int_equal(store_window(s, 0)->mem[0].proc, MIN(a, b));
	if (a < b)
		assert_int_equal(store_window(s, 0)->mem[0].time_ns, 200);
	copy = *store_window(s, 0);
	copy.start_ns = 1000;
	copy.end_ns = 2000;
	copy.entries = NULL;
	copy.n_entries = 0;
	assert_int_equal(store_window_import(s, &copy), 0);
	assert_int_equal(store_window_evict(s), 0);
	assert_non_null(store_proc(s, a));
	assert_int_equal(store_window_evict(s), 0);
	assert_null(store_proc(s, a));
	assert_null(store_proc(s, b));
}

static void test_window_basics(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	const Window *w;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	assert_null(store_window_current(s));
	assert_int_equal(store_window_add(s, 1, 1, 0, 1, false, 1), -ENOENT);
	assert_int_equal(store_window_close(s), -ENOENT);
	assert_int_equal(store_window_evict(s), -ENOENT);
	assert_int_equal(store_window_open(s, 100, 100, 10), -EINVAL);
	assert_int_equal(store_window_open(s, 100, 50, 10), -EINVAL);
	assert_int_equal(store_window_count(s), 0);

	assert_int_equal(store_window_open(s, 100, 200, 10), 0);
	assert_int_equal(store_window_open(s, 200, 300, 10), -EBUSY);
	assert_non_null(store_window_current(s));
	/* The open window is never evicted. */
	assert_int_equal(store_window_evict(s), -ENOENT);
	assert_int_equal(store_window_count(s), 1);
	w = store_window(s, 0);
	assert_true(w->open);
	assert_int_equal(w->start_ns, 100);
	assert_int_equal(w->end_ns, 200);
	assert_int_equal(w->period_ns, 10);
	assert_null(store_window(s, 1));

	assert_int_equal(store_window_close(s), 0);
	assert_false(store_window(s, 0)->open);
	assert_null(store_window_current(s));
	assert_int_equal(store_window_add(s, 1, 1, 0, 1, false, 1), -ENOENT);
	assert_int_equal(store_window_open(s, 200, 300, 10), 0);
	assert_int_equal(store_window_count(s), 2);
	assert_true(store_window(s, 1)->open);
	/* Evict takes the oldest (closed) one only. */
	assert_int_equal(store_window_evict(s), 0);
	assert_int_equal(store_window_count(s), 1);
	assert_int_equal(store_window(s, 0)->start_ns, 200);
	assert_int_equal(store_window_evict(s), -ENOENT);
	assert_int_equal(store_windows_evicted(s), 1);
}

/* History read back from disk goes before the windows held, in time order; overlaps are
 * refused wherever they are. */
static void test_window_import_order(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	Window w = { .period_ns = 10 };
	static const int64_t starts[] = { 300, 100, 200, 0 };

	(void)state;
	assert_int_equal(store_new(&s), 0);
	assert_int_equal(store_window_open(s, 400, 500, 10), 0);
	for (size_t i = 0; i < ARRAY_SIZE(starts); i++) {
		w.start_ns = starts[i];
		w.end_ns = starts[i] + 100;
		assert_int_equal(store_window_import(s, &w), 0);
	}
	assert_int_equal(store_window_count(s), 5);
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(store_window(s, i)->start_ns, (int64_t)i * 100);
	assert_true(store_window(s, 4)->open);
	/* Overlapping a closed window before, after, or the open one. */
	w.start_ns = 150;
	w.end_ns = 250;
	assert_int_equal(store_window_import(s, &w), -EINVAL);
	w.start_ns = -50;
	w.end_ns = 50;
	assert_int_equal(store_window_import(s, &w), -EINVAL);
	w.start_ns = 390;
	w.end_ns = 410;
	assert_int_equal(store_window_import(s, &w), -EINVAL);
	w.start_ns = 380;
	w.end_ns = 390;
	assert_int_equal(store_window_import(s, &w), -EINVAL);
	assert_int_equal(store_window_count(s), 5);
	/* The oldest is evicted first. */
	assert_int_equal(store_window_evict(s), 0);
	assert_int_equal(store_window(s, 0)->start_ns, 100);
}

typedef struct Fixture {
	ProcId p1, p2;
	StackId s1, s2;
	StrId t1, t2;
} Fixture;

static void fixture_build(Store *s, Fixture *fx, int variant)
{
	StoreProc p = { .pid = 10, .uid = 1, .start_boot_ns = (uint64_t)variant + 1 };
	FrameId f1, f2, f3;
	char name[32];

	snprintf(name, sizeof(name), "fn-%d", variant);
	f1 = frame(s, name, "mod", 1);
	f2 = frame(s, "main", "mod", 2);
	f3 = frame(s, "kfunc", "[kernel.kallsyms]", 3);
	assert_int_equal(store_intern_stack(s, (FrameId[]){ f1, f2 }, 2, &fx->s1), 0);
	assert_int_equal(store_intern_stack(s, (FrameId[]){ f3, f1, f2 }, 3, &fx->s2), 0);
	store_frame_unref(s, f1);
	store_frame_unref(s, f2);
	store_frame_unref(s, f3);
	p.comm = str(s, "one");
	assert_int_equal(store_proc_add(s, &p, &fx->p1), 0);
	store_string_unref(s, p.comm);
	p.pid = 20;
	p.comm = str(s, "two");
	assert_int_equal(store_proc_add(s, &p, &fx->p2), 0);
	store_string_unref(s, p.comm);
	fx->t1 = str(s, "thread-a");
	fx->t2 = str(s, "thread-b");
}

static void fixture_unref(Store *s, const Fixture *fx)
{
	store_stack_unref(s, fx->s1);
	store_stack_unref(s, fx->s2);
	store_proc_unref(s, fx->p1);
	store_proc_unref(s, fx->p2);
	store_string_unref(s, fx->t1);
	store_string_unref(s, fx->t2);
}

static void test_window_entries(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	const WindowEntry *e;
	const Window *w;
	Fixture fx;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	fixture_build(s, &fx, 0);
	assert_int_equal(store_window_open(s, 0, 1000, 10), 0);
	/* Added out of order; the same key several times, in both modes. */
	assert_int_equal(store_window_add(s, fx.p2, 21, fx.t2, fx.s1, false, 4), 0);
	assert_int_equal(store_window_add(s, fx.p1, 12, fx.t1, fx.s2, true, 1), 0);
	assert_int_equal(store_window_add(s, fx.p1, 11, fx.t1, fx.s2, true, 2), 0);
	assert_int_equal(store_window_add(s, fx.p1, 11, fx.t1, fx.s1, false, 3), 0);
	assert_int_equal(store_window_add(s, fx.p1, 11, fx.t1, fx.s2, false, 5), 0);
	assert_int_equal(store_window_add(s, fx.p1, 11, fx.t1, fx.s1, false, 1), 0);
	assert_int_equal(store_window_add(s, fx.p1, 11, fx.t1, fx.s2, true, 1), 0);
	assert_int_equal(store_window_add(s, fx.p2, 21, fx.t2, fx.s1, true, 6), 0);
	w = store_window_current(s);
	assert_non_null(w);
	assert_int_equal(w->n_entries, 4);
	assert_int_equal(w->samples, 4 + 1 + 2 + 3 + 5 + 1 + 1 + 6);

	/* The window holds its own references: drop the caller's. */
	fixture_unref(s, &fx);
	assert_non_null(store_proc(s, fx.p1));
	assert_string_equal(store_string(s, fx.t1), "thread-a");
	assert_int_equal(store_proc_count(s), 2);

	assert_int_equal(store_window_close(s), 0);
	w = store_window(s, 0);
	assert_false(w->open);
	assert_int_equal(w->n_entries, 4);
	assert_int_equal(w->samples, 23);
	/* Sorted by (proc, tid, stack); counts summed per key, user and kernel apart. */
	for (size_t i = 1; i < w->n_entries; i++) {
		const WindowEntry *x = &w->entries[i - 1], *y = &w->entries[i];

		assert_true(x->proc < y->proc || (x->proc == y->proc && x->tid < y->tid) ||
			    (x->proc == y->proc && x->tid == y->tid && x->stack < y->stack));
	}
	for (size_t i = 0; i < w->n_entries; i++) {
		e = &w->entries[i];
		if (e->proc == fx.p1 && e->tid == 11 && e->stack == fx.s1) {
			assert_int_equal(e->user, 4);
			assert_int_equal(e->kernel, 0);
			assert_int_equal(e->thread, fx.t1);
		} else if (e->proc == fx.p1 && e->tid == 11 && e->stack == fx.s2) {
			assert_int_equal(e->user, 5);
			assert_int_equal(e->kernel, 3);
		} else if (e->proc == fx.p1 && e->tid == 12) {
			assert_int_equal(e->stack, fx.s2);
			assert_int_equal(e->user, 0);
			assert_int_equal(e->kernel, 1);
		} else {
			assert_int_equal(e->proc, fx.p2);
			assert_int_equal(e->tid, 21);
			assert_int_equal(e->stack, fx.s1);
			assert_int_equal(e->user, 4);
			assert_int_equal(e->kernel, 6);
			assert_int_equal(e->thread, fx.t2);
		}
	}

	/* Eviction releases everything the window held. */
	assert_int_equal(store_window_evict(s), 0);
	assert_int_equal(store_proc_count(s), 0);
	assert_null(store_proc(s, fx.p1));
	assert_null(store_string(s, fx.t1));
	assert_null(store_stack(s, fx.s1, &(size_t){ 0 }));
}

/* The same entry key with a different thread name is a different entry. */
static void test_window_thread_names(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	const Window *w;
	Fixture fx;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	fixture_build(s, &fx, 0);
	assert_int_equal(store_window_open(s, 0, 1000, 10), 0);
	assert_int_equal(store_window_add(s, fx.p1, 11, fx.t1, fx.s1, false, 1), 0);
	assert_int_equal(store_window_add(s, fx.p1, 11, fx.t2, fx.s1, false, 2), 0);
	assert_int_equal(store_window_close(s), 0);
	w = store_window(s, 0);
	assert_int_equal(w->n_entries, 2);
	assert_int_equal(w->entries[0].user + w->entries[1].user, 3);
	assert_int_not_equal(w->entries[0].thread, w->entries[1].thread);
	fixture_unref(s, &fx);
	assert_int_equal(store_window_evict(s), 0);
	assert_int_equal(store_proc_count(s), 0);
}

/* Entries of another kind are entries of their own: CPU samples and off-CPU weight of the same
 * thread and stack stay apart, weights add up, records are counted. */
static void test_window_kinds(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	const Window *w;
	Fixture fx;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	fixture_build(s, &fx, 0);
	assert_int_equal(store_window_open(s, 0, 1000, 10), 0);
	assert_int_equal(store_window_add(s, fx.p1, 11, fx.t1, fx.s1, false, 3), 0);
	assert_int_equal(store_window_add_weight(s, fx.p1, 11, fx.t1, fx.s1, KIND_SLEEPING, 500),
			 0);
	assert_int_equal(store_window_add_weight(s, fx.p1, 11, fx.t1, fx.s1, KIND_SLEEPING, 700),
			 0);
	assert_int_equal(store_window_add_weight(s, fx.p1, 11, fx.t1, fx.s1, KIND_BLOCKED, 9), 0);
	assert_int_equal(store_window_add_weight(s, fx.p1, 11, fx.t1, fx.s1, KIND_CPU, 9), -EINVAL);
	assert_int_equal(store_window_add_weight(s, fx.p1, 11, fx.t1, fx.s1, _KIND_MAX, 9),
			 -EINVAL);
	assert_int_equal(store_window_close(s), 0);
	w = store_window(s, 0);
	assert_int_equal(w->n_entries, 3);
	assert_int_equal(w->samples, 3);
	assert_int_equal(w->records, 3);
	/* Sorted by kind after the rest of the key. */
	assert_int_equal(w->entries[0].kind, KIND_CPU);
	assert_int_equal(w->entries[0].user, 3);
	assert_int_equal(w->entries[1].kind, KIND_SLEEPING);
	assert_int_equal(w->entries[1].weight, 1200);
	assert_int_equal(w->entries[1].records, 2);
	assert_int_equal(w->entries[2].kind, KIND_BLOCKED);
	assert_int_equal(w->entries[2].weight, 9);
	fixture_unref(s, &fx);
	assert_int_equal(store_window_evict(s), 0);
	assert_int_equal(store_proc_count(s), 0);
}

/* Several windows sharing stacks and processes; memory returns when they go. */
static void test_window_eviction_memory(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	size_t empty, peak, after, after2;
	Fixture fx[4];

	(void)state;
	assert_int_equal(store_new(&s), 0);
	empty = store_memory(s);
	for (int round = 0; round < 2; round++) {
		for (int wi = 0; wi < 4; wi++) {
			fixture_build(s, &fx[wi], wi);
			assert_int_equal(store_window_open(s, wi * 1000, (wi + 1) * 1000, 10), 0);
			for (uint32_t tid = 1; tid <= 200; tid++) {
				assert_int_equal(store_window_add(s, fx[wi].p1, tid, fx[wi].t1,
								  fx[wi].s1, false, tid),
						 0);
				assert_int_equal(store_window_add(s, fx[wi].p2, tid, fx[wi].t2,
								  fx[wi].s2, true, 1),
						 0);
			}
			assert_int_equal(store_window_close(s), 0);
			fixture_unref(s, &fx[wi]);
		}
		assert_int_equal(store_window_count(s), 4);
		assert_int_equal(store_proc_count(s), 8);
		peak = store_memory(s);
		/* 400 entries of at least 24 bytes in each of the 4 windows. */
		assert_true(peak >= empty + 4 * 400 * sizeof(WindowEntry));
		for (int wi = 0; wi < 4; wi++) {
			size_t before = store_memory(s);

			assert_int_equal(store_window_evict(s), 0);
			/* The entries go (the free-id lists may grow a little). */
			assert_true(store_memory(s) + 400 * sizeof(WindowEntry) - 256 <= before);
		}
		assert_int_equal(store_window_evict(s), -ENOENT);
		assert_int_equal(store_window_count(s), 0);
		assert_int_equal(store_proc_count(s), 0);
		for (int wi = 0; wi < 4; wi++) {
			assert_null(store_proc(s, fx[wi].p1));
			assert_null(store_stack(s, fx[wi].s2, &(size_t){ 0 }));
			assert_null(store_string(s, fx[wi].t1));
		}
		after = store_memory(s);
		/*
		 * What is left is capacity kept for reuse (id tables, free-id lists, and the
		 * open window's index sized for 400 entries): well below the peak.
		 */
		assert_true(after - empty < (peak - empty) / 2);
		if (round == 0)
			after2 = after;
	}
	/* The second round reused the ids and capacity: nothing grew. */
	assert_int_equal(store_memory(s), after2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_window_kinds),
		cmocka_unit_test(test_string_memory),
		cmocka_unit_test(test_frames),
		cmocka_unit_test(test_stacks),
		cmocka_unit_test(test_procs),
		cmocka_unit_test(test_window_mem),
		cmocka_unit_test(test_window_basics),
		cmocka_unit_test(test_window_import_order),
		cmocka_unit_test(test_window_entries),
		cmocka_unit_test(test_window_thread_names),
		cmocka_unit_test(test_window_eviction_memory),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
