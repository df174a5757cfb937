/* SPDX-License-Identifier: MIT */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "base/json-util.h"
#include "base/macro.h"
#include "query/query.h"
#include "query/select.h"

#include "python-fixture.h"
#include "store-fixture.h"

#define T0 (1700000000LL * (int64_t)NSEC_PER_SEC)
#define SEC ((int64_t)NSEC_PER_SEC)
#define PERIOD (10 * NSEC_PER_MSEC)

/* ---- building a store by hand ---- */

/* The caller's references are kept: the store is freed as a whole at the end. */
static FrameId frame(Store *s, const char *fn, const char *mod, uint32_t flags, uint64_t addr)
{
	StoreFrame f = { .flags = flags, .address = addr };
	FrameId id;

	f.function = fn ? str(s, fn) : 0;
	f.module = mod ? str(s, mod) : 0;
	assert_int_equal(store_intern_frame(s, &f, &id), 0);
	return id;
}

static StackId stack(Store *s, size_t n, const FrameId *frames)
{
	StackId id;

	assert_int_equal(store_intern_stack(s, frames, n, &id), 0);
	return id;
}

#define STACK(s, ...) stack(s, ARRAY_SIZE(((FrameId[]){ __VA_ARGS__ })), (FrameId[]){ __VA_ARGS__ })

static void add(Store *s, ProcId p, uint32_t tid, StackId st, bool kernel, uint32_t count)
{
	assert_int_equal(store_window_add(s, p, tid, 0, st, kernel, count), 0);
}

/* ---- asking ---- */

static json_object *ask(const Store *s, int64_t now, uint32_t uid, bool privileged,
			const Request *req)
{
	QueryContext ctx = { .store = s,
			     .now_ns = now,
			     .viewer = { .uid = uid, .privileged = privileged } };
	json_object *answer = NULL;

	assert_int_equal(query_answer(&ctx, req, &answer), 0);
	assert_non_null(answer);
	return answer;
}

static Request top_req(uint32_t pid)
{
	Request req;

	request_init(&req, COMMAND_TOP);
	req.pid = pid;
	return req;
}

static void expect_error(json_object *answer, ErrorCode expected)
{
	ErrorCode code;

	if (answer_error_code(answer, &code, NULL) < 0)
		fail_msg("expected an error answer, got %s", json_object_to_json_string(answer));
	assert_int_equal(code, expected);
	json_object_put(answer);
}

static void expect_ok(json_object *answer)
{
	if (answer_error_code(answer, NULL, NULL) == 0)
		fail_msg("unexpected error answer %s", json_object_to_json_string(answer));
}

static json_object *rows_of(json_object *answer)
{
	json_object *rows;

	assert_true(json_object_object_get_ex(answer, "rows", &rows));
	assert_true(json_object_is_type(rows, json_type_array));
	return rows;
}

static json_object *row_named(json_object *answer, const char *key, const char *name)
{
	json_object *rows = rows_of(answer);

	for (size_t i = 0; i < json_object_array_length(rows); i++) {
		json_object *r = json_object_array_get_idx(rows, i);
		const char *v = json_get_string(r, key);

		if (v && streq(v, name))
			return r;
	}
	fail_msg("no row with %s '%s' in %s", key, name, json_object_to_json_string(answer));
	return NULL;
}

static json_object *top_row(json_object *answer, const char *function)
{
	return row_named(answer, "function", function);
}

static void expect_top_row(json_object *answer, const char *function, int64_t self, int64_t total,
			   double self_pct, double total_pct)
{
	json_object *r = top_row(answer, function);

	assert_int_equal(json_get_int(r, "self_samples"), self);
	assert_int_equal(json_get_int(r, "total_samples"), total);
	assert_true(fabs(json_get_double(r, "self_pct") - self_pct) < 0.006);
	assert_true(fabs(json_get_double(r, "total_pct") - total_pct) < 0.006);
}

static const char *row_function(json_object *answer, size_t i)
{
	json_object *rows = rows_of(answer);

	assert_true(i < json_object_array_length(rows));
	return json_get_string(json_object_array_get_idx(rows, i), "function");
}

/*
 * The split workload: main -> a -> leaf1 (70 samples), main -> b -> leaf2 (30 samples), for
 * pid 100, all in one closed window [T0, T0 + 10 s).
 */
typedef struct Split {
	FrameId main, a, b, leaf1, leaf2;
	StackId s1, s2;
	ProcId p;
} Split;

static void split_build(Store *s, Split *x)
{
	StoreFrame f = { .line = 42, .address = 0x1400 };

	x->main = frame(s, "main", "prog", 0, 0x1000);
	x->a = frame(s, "a", "prog", 0, 0x1100);
	x->b = frame(s, "b", "prog", 0, 0x1200);
	f.function = str(s, "leaf1");
	f.module = str(s, "prog");
	f.file = str(s, "prog.c");
	/* Declared at line 40, sampled at line 42. */
	f.decl_file = str(s, "prog.c");
	f.decl_line = 40;
	assert_int_equal(store_intern_frame(s, &f, &x->leaf1), 0);
	x->leaf2 = frame(s, "leaf2", "prog", 0, 0x1300);
	x->s1 = STACK(s, x->leaf1, x->a, x->main);
	x->s2 = STACK(s, x->leaf2, x->b, x->main);
	x->p = proc(s, 100, 1000, T0 - 100 * SEC, "prog");
}

static void test_top_split(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_json_ json_object *ans = NULL, *total = NULL, *lim = NULL;
	json_object *r;
	Request req;
	Split x;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	split_build(s, &x);
	assert_int_equal(store_window_open(s, T0, T0 + 10 * SEC, PERIOD), 0);
	add(s, x.p, 100, x.s1, false, 40);
	add(s, x.p, 100, x.s2, false, 30);
	add(s, x.p, 101, x.s1, true, 30);
	assert_int_equal(store_window_close(s), 0);

	req = top_req(100);
	ans = ask(s, T0 + 20 * SEC, 1000, false, &req);
	expect_ok(ans);
	assert_int_equal(json_get_int(ans, "pid"), 100);
	assert_string_equal(json_get_string(ans, "comm"), "prog");
	assert_int_equal(json_get_int(ans, "samples"), 100);
	assert_int_equal(json_object_array_length(rows_of(ans)), 5);
	expect_top_row(ans, "leaf1", 70, 70, 70.0, 70.0);
	expect_top_row(ans, "leaf2", 30, 30, 30.0, 30.0);
	expect_top_row(ans, "main", 0, 100, 0.0, 100.0);
	expect_top_row(ans, "a", 0, 70, 0.0, 70.0);
	expect_top_row(ans, "b", 0, 30, 0.0, 30.0);
	r = top_row(ans, "leaf1");
	assert_string_equal(json_get_string(r, "module"), "prog");
	/* A row is a function: where it is declared. */
	assert_string_equal(json_get_string(r, "file"), "prog.c");
	assert_int_equal(json_get_int(r, "line"), 40);
	r = top_row(ans, "main");
	assert_null(json_get_string(r, "file"));
	/* Sorted by self, then total. */
	assert_string_equal(row_function(ans, 0), "leaf1");
	assert_string_equal(row_function(ans, 1), "leaf2");
	assert_string_equal(row_function(ans, 2), "main");
	assert_string_equal(row_function(ans, 3), "a");
	assert_string_equal(row_function(ans, 4), "b");

	req.sort = SORT_TOTAL;
	total = ask(s, T0 + 20 * SEC, 1000, false, &req);
	assert_string_equal(json_get_string(total, "sort"), "total");
	assert_string_equal(row_function(total, 0), "main");
	assert_string_equal(row_function(total, 1), "leaf1"); /* 70 total, 70 self beats a */
	assert_string_equal(row_function(total, 2), "a");
	assert_string_equal(row_function(total, 3), "leaf2");
	assert_string_equal(row_function(total, 4), "b");

	req.limit = 2;
	lim = ask(s, T0 + 20 * SEC, 1000, false, &req);
	assert_int_equal(json_object_array_length(rows_of(lim)), 2);
	assert_string_equal(row_function(lim, 1), "leaf1");
	/* The percentages stay those of all samples, not of the rows shown. */
	assert_int_equal(json_get_int(lim, "samples"), 100);
}

/*
 * A function sampled first through a frame named from the symbol table alone (the daemon was
 * still indexing its DWARF) and then through one with its declaration: one row, which shows
 * where the function is declared.
 */
static void test_top_row_with_file(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_json_ json_object *ans = NULL;
	StoreFrame f = { .address = 0x1400, .decl_line = 7 };
	FrameId bare, full, main_f;
	json_object *r;
	Request req;
	ProcId p;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	main_f = frame(s, "main", "prog", 0, 0x1000);
	bare = frame(s, "work", "prog", 0, 0x1400);
	f.function = str(s, "work");
	f.module = str(s, "prog");
	f.file = f.decl_file = str(s, "work.c");
	assert_int_equal(store_intern_frame(s, &f, &full), 0);
	p = proc(s, 100, 1000, T0 - 100 * SEC, "prog");
	assert_int_equal(store_window_open(s, T0, T0 + 10 * SEC, PERIOD), 0);
	add(s, p, 100, STACK(s, bare, main_f), false, 5);
	add(s, p, 100, STACK(s, full, main_f), false, 15);
	assert_int_equal(store_window_close(s), 0);

	req = top_req(100);
	ans = ask(s, T0 + 20 * SEC, 1000, false, &req);
	expect_ok(ans);
	assert_int_equal(json_object_array_length(rows_of(ans)), 2);
	expect_top_row(ans, "work", 20, 20, 100.0, 100.0);
	r = top_row(ans, "work");
	assert_string_equal(json_get_string(r, "file"), "work.c");
	assert_int_equal(json_get_int(r, "line"), 7);
}

/*
 * top by process and by module, and the process name of each function of a system-wide top:
 * memcpy (libc.so.6) <- work <- main (prog) for pid 100 "prog" (30) and pid 200 "other" (25);
 * work <- main for pid 100 (20); a kernel frame <- memcpy <- main for pid 300 "prog" (10).
 */
static void test_top_by(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_json_ json_object *procs = NULL, *mods = NULL, *fns = NULL, *fns_total = NULL,
				   *one = NULL;
	FrameId main_f, work, memcpy_f, kern;
	StackId a, b, c;
	ProcId p1, p2, p3;
	json_object *r;
	Request req;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	main_f = frame(s, "main", "prog", 0, 0x1000);
	work = frame(s, "work", "prog", 0, 0x1100);
	memcpy_f = frame(s, "memcpy", "libc.so.6", 0, 0x2000);
	kern = frame(s, "copy_page", "[kernel.kallsyms]", FRAME_KERNEL, 0xffffffff81000000ULL);
	a = STACK(s, memcpy_f, work, main_f);
	b = STACK(s, work, main_f);
	c = STACK(s, kern, memcpy_f, main_f);
	p1 = proc(s, 100, 1000, T0 - 100 * SEC, "prog");
	p2 = proc(s, 200, 1000, T0 - 100 * SEC, "other");
	p3 = proc(s, 300, 1000, T0 - 100 * SEC, "prog");
	assert_int_equal(store_window_open(s, T0, T0 + 10 * SEC, PERIOD), 0);
	add(s, p1, 100, a, false, 30);
	add(s, p2, 200, a, false, 25);
	add(s, p1, 100, b, false, 20);
	add(s, p3, 300, c, true, 10);
	assert_int_equal(store_window_close(s), 0);

	req = top_req(0);
	req.by = GROUP_PROCESS;
	procs = ask(s, T0 + 20 * SEC, 0, true, &req);
	expect_ok(procs);
	assert_string_equal(json_get_string(procs, "by"), "process");
	assert_int_equal(json_object_array_length(rows_of(procs)), 3);
	r = json_object_array_get_idx(rows_of(procs), 0);
	assert_int_equal(json_get_int(r, "pid"), 100);
	assert_string_equal(json_get_string(r, "comm"), "prog");
	assert_int_equal(json_get_int(r, "samples"), 50);
	assert_true(fabs(json_get_double(r, "pct") - 100.0 * 50 / 85) < 0.006);
	r = json_object_array_get_idx(rows_of(procs), 1);
	assert_int_equal(json_get_int(r, "pid"), 200);
	assert_int_equal(json_get_int(r, "samples"), 25);
	r = json_object_array_get_idx(rows_of(procs), 2);
	assert_int_equal(json_get_int(r, "pid"), 300);
	assert_int_equal(json_get_int(r, "samples"), 10);

	req.by = GROUP_MODULE;
	mods = ask(s, T0 + 20 * SEC, 0, true, &req);
	expect_ok(mods);
	assert_string_equal(json_get_string(mods, "by"), "module");
	assert_int_equal(json_object_array_length(rows_of(mods)), 3);
	r = json_object_array_get_idx(rows_of(mods), 0);
	assert_string_equal(json_get_string(r, "module"), "libc.so.6");
	assert_int_equal(json_get_int(r, "self_samples"), 55);
	assert_int_equal(json_get_int(r, "total_samples"), 65);
	r = row_named(mods, "module", "prog");
	assert_int_equal(json_get_int(r, "self_samples"), 20);
	/* Once per stack, though main and work are both of prog. */
	assert_int_equal(json_get_int(r, "total_samples"), 85);
	r = row_named(mods, "module", "[kernel.kallsyms]");
	assert_int_equal(json_get_int(r, "self_samples"), 10);
	assert_true(json_get_bool(r, "kernel"));

	req.by = GROUP_NONE;
	fns = ask(s, T0 + 20 * SEC, 0, true, &req);
	expect_ok(fns);
	assert_string_equal(json_get_string(fns, "by"), "function");
	r = top_row(fns, "memcpy");
	assert_string_equal(json_get_string(r, "comm"), "prog"); /* 30 of its 55 */
	assert_int_equal(json_get_int(r, "comms"), 2);
	r = top_row(fns, "work"); /* self only in prog */
	assert_string_equal(json_get_string(r, "comm"), "prog");
	assert_int_equal(json_get_int(r, "comms"), 1);
	r = top_row(fns, "main"); /* no self: by total, prog 60 and other 25 */
	assert_string_equal(json_get_string(r, "comm"), "prog");
	assert_int_equal(json_get_int(r, "comms"), 2);
	r = top_row(fns, "copy_page");
	assert_string_equal(json_get_string(r, "comm"), "prog");
	assert_int_equal(json_get_int(r, "comms"), 1);

	/* By total, the samples of other that pass through work count too. */
	req.sort = SORT_TOTAL;
	fns_total = ask(s, T0 + 20 * SEC, 0, true, &req);
	r = top_row(fns_total, "work");
	assert_int_equal(json_get_int(r, "comms"), 2);
	assert_string_equal(json_get_string(r, "comm"), "prog"); /* 50 of 75 */

	/* One process: no process names in the rows. */
	req = top_req(200);
	one = ask(s, T0 + 20 * SEC, 0, true, &req);
	r = top_row(one, "memcpy");
	assert_false(json_object_object_get_ex(r, "comm", NULL));
}

/*
 * --event faults: the fault entries' bytes, with percentages of their total; CPU samples do not
 * count there, and fault entries do not count in a CPU profile.
 */
static void test_top_faults(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_json_ json_object *ans = NULL, *cpu = NULL;
	Request req;
	Split x;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	split_build(s, &x);
	assert_int_equal(store_window_open(s, T0, T0 + 10 * SEC, PERIOD), 0);
	add(s, x.p, 100, x.s1, false, 10);
	assert_int_equal(store_window_add_weight(s, x.p, 100, 0, x.s1, KIND_FAULTS, 3 << 20), 0);
	assert_int_equal(store_window_add_weight(s, x.p, 100, 0, x.s1, KIND_FAULTS, 3 << 20), 0);
	assert_int_equal(store_window_add_weight(s, x.p, 101, 0, x.s2, KIND_FAULTS, 2 << 20), 0);
	assert_int_equal(store_window_close(s), 0);

	req = top_req(100);
	req.event = EVENT_FAULTS;
	ans = ask(s, T0 + 20 * SEC, 1000, false, &req);
	expect_ok(ans);
	assert_string_equal(json_get_string(ans, "event"), "faults");
	assert_string_equal(json_get_string(ans, "unit"), "bytes");
	assert_int_equal(json_get_int(ans, "samples"), 8 << 20);
	expect_top_row(ans, "leaf1", 6 << 20, 6 << 20, 75.0, 75.0);
	expect_top_row(ans, "leaf2", 2 << 20, 2 << 20, 25.0, 25.0);
	expect_top_row(ans, "main", 0, 8 << 20, 0.0, 100.0);

	req.event = EVENT_CPU;
	cpu = ask(s, T0 + 20 * SEC, 1000, false, &req);
	assert_int_equal(json_get_int(cpu, "samples"), 10);
	expect_top_row(cpu, "leaf1", 10, 10, 100.0, 100.0);
	assert_int_equal(event_from_string("faults"), EVENT_FAULTS);
	assert_string_equal(event_to_string(EVENT_FAULTS), "faults");
}

/* True when row i comes before row i + 1: by the sort key's count, the other count, name. */
static bool top_rows_ordered(json_object *answer, bool by_total)
{
	json_object *rows = rows_of(answer);

	for (size_t i = 0; i + 1 < json_object_array_length(rows); i++) {
		json_object *x = json_object_array_get_idx(rows, i);
		json_object *y = json_object_array_get_idx(rows, i + 1);
		int64_t x1 = json_get_int(x, by_total ? "total_samples" : "self_samples");
		int64_t y1 = json_get_int(y, by_total ? "total_samples" : "self_samples");
		int64_t x2 = json_get_int(x, by_total ? "self_samples" : "total_samples");
		int64_t y2 = json_get_int(y, by_total ? "self_samples" : "total_samples");

		if (x1 != y1   ? x1 < y1
		    : x2 != y2 ? x2 < y2
			       : strcmp(json_get_string(x, "function"),
					json_get_string(y, "function")) > 0)
			return false;
	}
	return true;
}

/*
 * The rows shown are the first of the whole order, whatever the limit: many functions with
 * equal counts (ties go by name), made in an order that is not the answer's. Both ways to the
 * answer: a selection of the few rows asked for, a sort of all when many are.
 */
static void test_top_order_limit(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	const uint32_t limits[] = { 1, 3, 7, 20, 255, 256, 257, 301, 302, 303 };
	const size_t n_rows = 302;
	FrameId main_f, mid;
	Request req;
	ProcId p;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	main_f = frame(s, "main", "prog", 0, 0x1000);
	mid = frame(s, "mid", "prog", 0, 0x1100);
	p = proc(s, 100, 1000, T0 - 100 * SEC, "prog");
	assert_int_equal(store_window_open(s, T0, T0 + 10 * SEC, PERIOD), 0);
	for (int i = 299; i >= 0; i--) {
		char name[16];
		FrameId leaf;

		snprintf(name, sizeof(name), "f%03d", (i * 17) % 300);
		leaf = frame(s, name, "prog", 0, 0x2000 + 0x10 * (uint64_t)i);
		/* Counts 1..5, so 60 functions share each; every third one is also a caller. */
		add(s, p, 100, STACK(s, leaf, main_f), false, 1 + (uint32_t)(i * 7) % 5);
		if (i % 3 == 0)
			add(s, p, 100, STACK(s, mid, leaf, main_f), false, 1);
	}
	assert_int_equal(store_window_close(s), 0);

	for (int by_total = 0; by_total <= 1; by_total++) {
		_cleanup_json_ json_object *all = NULL;

		req = top_req(100);
		req.sort = by_total ? SORT_TOTAL : SORT_SELF;
		req.limit = REQUEST_LIMIT_MAX;
		all = ask(s, T0 + 20 * SEC, 1000, false, &req);
		expect_ok(all);
		/* 300 leaves, main and mid. */
		assert_int_equal(json_object_array_length(rows_of(all)), n_rows);
		assert_true(top_rows_ordered(all, by_total));
		for (size_t l = 0; l < ARRAY_SIZE(limits); l++) {
			_cleanup_json_ json_object *some = NULL;

			req.limit = limits[l];
			some = ask(s, T0 + 20 * SEC, 1000, false, &req);
			assert_int_equal(json_object_array_length(rows_of(some)),
					 MIN(limits[l], n_rows));
			assert_true(top_rows_ordered(some, by_total));
			for (size_t i = 0; i < MIN(limits[l], n_rows); i++)
				assert_string_equal(row_function(some, i), row_function(all, i));
		}
	}
}

static void test_top_recursion_and_tid(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_json_ json_object *ans = NULL, *t = NULL;
	Request req;
	Split x;
	StackId rec;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	split_build(s, &x);
	/* main -> a -> a -> a -> leaf1: a is on the stack three times, counted once. */
	rec = STACK(s, x.leaf1, x.a, x.a, x.a, x.main);
	assert_int_equal(store_window_open(s, T0, T0 + 10 * SEC, PERIOD), 0);
	add(s, x.p, 100, rec, false, 10);
	add(s, x.p, 100, x.s1, false, 30);
	add(s, x.p, 7, x.s2, false, 60);
	assert_int_equal(store_window_close(s), 0);

	req = top_req(100);
	req.tid = 100;
	ans = ask(s, T0 + 20 * SEC, 0, true, &req);
	expect_ok(ans);
	assert_int_equal(json_get_int(ans, "samples"), 40);
	assert_int_equal(json_get_int(ans, "tid"), 100);
	expect_top_row(ans, "a", 0, 40, 0.0, 100.0);
	expect_top_row(ans, "leaf1", 40, 40, 100.0, 100.0);
	expect_top_row(ans, "main", 0, 40, 0.0, 100.0);

	req.tid = 7;
	t = ask(s, T0 + 20 * SEC, 0, true, &req);
	assert_int_equal(json_get_int(t, "samples"), 60);
	expect_top_row(t, "leaf2", 60, 60, 100.0, 100.0);

	req.tid = 999;
	expect_error(ask(s, T0 + 20 * SEC, 0, true, &req), ERROR_NOT_FOUND);
}

/* Three windows, the last one open; now is T0 + 25 s. */
static void ranges_build(Store *s, Split *x)
{
	split_build(s, x);
	assert_int_equal(store_window_open(s, T0, T0 + 10 * SEC, PERIOD), 0);
	add(s, x->p, 100, x->s1, false, 70);
	add(s, x->p, 100, x->s2, false, 30);
	assert_int_equal(store_window_close(s), 0);
	assert_int_equal(store_window_open(s, T0 + 10 * SEC, T0 + 20 * SEC, PERIOD), 0);
	add(s, x->p, 100, x->s1, false, 5);
	assert_int_equal(store_window_close(s), 0);
	assert_int_equal(store_window_open(s, T0 + 20 * SEC, T0 + 30 * SEC, PERIOD), 0);
	add(s, x->p, 100, x->s2, true, 3);
}

static int64_t top_samples(const Store *s, const Request *req)
{
	_cleanup_json_ json_object *ans = ask(s, T0 + 25 * SEC, 1000, false, req);

	expect_ok(ans);
	return json_get_int(ans, "samples");
}

static void test_top_ranges(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	Request req = top_req(100);
	Split x;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	ranges_build(s, &x);

	assert_int_equal(top_samples(s, &req), 108);
	req.has_since = true;
	req.since_ns = 10 * SEC; /* from T0 + 15 s: the second and the open window */
	assert_int_equal(top_samples(s, &req), 8);
	req.since_ns = 5 * SEC; /* from T0 + 20 s: the second window ends there, excluded */
	assert_int_equal(top_samples(s, &req), 3);
	req.has_since = false;
	req.has_until = true;
	req.until_ns = 10 * SEC; /* up to T0 + 15 s */
	assert_int_equal(top_samples(s, &req), 105);
	req.has_since = true;
	req.since_ns = 25 * SEC; /* [T0, T0 + 9 s]: the first window only */
	req.until_ns = 16 * SEC;
	assert_int_equal(top_samples(s, &req), 100);
	/* A range before all data: not found. */
	req.since_ns = 100 * SEC;
	req.until_ns = 50 * SEC;
	expect_error(ask(s, T0 + 25 * SEC, 1000, false, &req), ERROR_NOT_FOUND);
	/* now decides: seen from much later, "the last 10 s" holds nothing. */
	req.has_until = false;
	req.since_ns = 10 * SEC;
	expect_error(ask(s, T0 + 3600 * SEC, 1000, false, &req), ERROR_NOT_FOUND);
	/* ... and the open window only counts up to now. */
	req.since_ns = 1 * SEC;
	assert_int_equal(top_samples(s, &req), 3);
}

static void test_top_incarnations(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_json_ json_object *ans = NULL, *old = NULL;
	ProcId p_old, p_new;
	Request req;
	Split x;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	split_build(s, &x);
	/* pid 200 ran twice: the old process in the first window, the new one in the second. */
	p_old = proc(s, 200, 1000, T0 - 100 * SEC, "old");
	p_new = proc(s, 200, 1000, T0 + 11 * SEC, "new");
	assert_int_equal(store_window_open(s, T0, T0 + 10 * SEC, PERIOD), 0);
	add(s, p_old, 200, x.s1, false, 5);
	assert_int_equal(store_window_close(s), 0);
	assert_int_equal(store_window_open(s, T0 + 10 * SEC, T0 + 20 * SEC, PERIOD), 0);
	add(s, p_new, 200, x.s2, false, 7);
	assert_int_equal(store_window_close(s), 0);

	req = top_req(200);
	ans = ask(s, T0 + 20 * SEC, 1000, false, &req);
	assert_string_equal(json_get_string(ans, "comm"), "new");
	assert_int_equal(json_get_int(ans, "samples"), 7);
	expect_top_row(ans, "leaf2", 7, 7, 100.0, 100.0);
	/* The range holds only the old one: that is the newest with samples there. */
	req.has_until = true;
	req.until_ns = 15 * SEC;
	old = ask(s, T0 + 20 * SEC, 1000, false, &req);
	assert_string_equal(json_get_string(old, "comm"), "old");
	assert_int_equal(json_get_int(old, "samples"), 5);

	req = top_req(4242);
	expect_error(ask(s, T0 + 20 * SEC, 1000, false, &req), ERROR_NOT_FOUND);
}

/*
 * A pid with two incarnations a viewer may and may not see (an exec that changed the owner
 * leaves two a nanosecond apart; a reused pid may be another user's): the viewer gets its own,
 * the newest or by --start, and never the other's; only the other's: denied.
 */
static void test_access_incarnations(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_json_ json_object *newest = NULL, *by_start = NULL, *root = NULL;
	ProcId mine, theirs;
	Split x;
	Request req;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	split_build(s, &x);
	mine = proc(s, 400, 1000, T0 - 5 * SEC, "mine");
	theirs = proc(s, 400, 2000, T0 - 5 * SEC + 1, "theirs");
	assert_int_equal(store_window_open(s, T0, T0 + 10 * SEC, PERIOD), 0);
	add(s, mine, 400, x.s1, false, 30);
	add(s, theirs, 400, x.s2, false, 40);
	assert_int_equal(store_window_close(s), 0);

	req = top_req(400);
	newest = ask(s, T0 + 20 * SEC, 1000, false, &req);
	assert_int_equal(json_get_int(newest, "samples"), 30);
	req.start_ns = T0 - 5 * SEC + 1;
	by_start = ask(s, T0 + 20 * SEC, 1000, false, &req);
	assert_int_equal(json_get_int(by_start, "samples"), 30);
	/* The privileged viewer gets the newest, by --start the nearest. */
	req.start_ns = 0;
	root = ask(s, T0 + 20 * SEC, 0, true, &req);
	assert_int_equal(json_get_int(root, "samples"), 40);
	/* Someone with neither. */
	expect_error(ask(s, T0 + 20 * SEC, 3000, false, &req), ERROR_DENIED);
}

/*
 * Someone else's process that has no samples in the range (pid 1, idle) is denied as time
 * denies it, for every command over a range: whether it ran is not the viewer's to learn.
 * The viewer's own idle process is not found.
 */
static void test_access_idle(void **state)
{
	static const Command commands[] = { COMMAND_TOP,    COMMAND_TREE, COMMAND_LINES,
					    COMMAND_STACKS, COMMAND_PS,	  COMMAND_TIME };
	_cleanup_(store_freep) Store *s = NULL;
	Request req;
	Split x;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	split_build(s, &x);
	proc(s, 1, 0, T0 - 100 * SEC, "init");
	proc(s, 500, 1000, T0 - 100 * SEC, "idle");
	assert_int_equal(store_window_open(s, T0, T0 + 10 * SEC, PERIOD), 0);
	add(s, x.p, 100, x.s1, false, 70);
	assert_int_equal(store_window_close(s), 0);

	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		request_init(&req, commands[i]);
		req.pid = 1;
		expect_error(ask(s, T0 + 20 * SEC, 1000, false, &req), ERROR_DENIED);
		if (commands[i] == COMMAND_TIME)
			continue;
		req.pid = 500;
		expect_error(ask(s, T0 + 20 * SEC, 1000, false, &req), ERROR_NOT_FOUND);
		req.pid = 1;
		expect_error(ask(s, T0 + 20 * SEC, 0, true, &req), ERROR_NOT_FOUND);
	}
}

static void test_access(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_json_ json_object *mine = NULL, *all = NULL, *theirs = NULL, *ps = NULL;
	_cleanup_json_ json_object *ps_all = NULL, *ps_none = NULL;
	Request req;
	ProcId other;
	Split x;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	split_build(s, &x);
	other = proc(s, 300, 2000, T0 - 5 * SEC, "theirs");
	assert_int_equal(store_window_open(s, T0, T0 + 10 * SEC, PERIOD), 0);
	add(s, x.p, 100, x.s1, false, 70);
	add(s, other, 300, x.s2, false, 50);
	assert_int_equal(store_window_close(s), 0);

	/* Someone else's pid. */
	req = top_req(300);
	expect_error(ask(s, T0 + 20 * SEC, 1000, false, &req), ERROR_DENIED);
	theirs = ask(s, T0 + 20 * SEC, 1000, true, &req);
	assert_int_equal(json_get_int(theirs, "samples"), 50);
	request_init(&req, COMMAND_PS);
	req.pid = 300;
	expect_error(ask(s, T0 + 20 * SEC, 1000, false, &req), ERROR_DENIED);

	/* System-wide: only the viewer's own processes count. */
	req = top_req(0);
	mine = ask(s, T0 + 20 * SEC, 1000, false, &req);
	assert_int_equal(json_get_int(mine, "samples"), 70);
	expect_top_row(mine, "leaf1", 70, 70, 100.0, 100.0);
	all = ask(s, T0 + 20 * SEC, 1000, true, &req);
	assert_int_equal(json_get_int(all, "samples"), 120);
	expect_top_row(all, "leaf2", 50, 50, 50.0 / 1.2, 50.0 / 1.2);
	/* A viewer with no processes: nothing to show. */
	expect_error(ask(s, T0 + 20 * SEC, 5000, false, &req), ERROR_NOT_FOUND);

	request_init(&req, COMMAND_PS);
	ps = ask(s, T0 + 20 * SEC, 2000, false, &req);
	assert_int_equal(json_object_array_length(rows_of(ps)), 1);
	assert_int_equal(json_get_int(row_named(ps, "comm", "theirs"), "pid"), 300);
	ps_all = ask(s, T0 + 20 * SEC, 2000, true, &req);
	assert_int_equal(json_object_array_length(rows_of(ps_all)), 2);
	ps_none = ask(s, T0 + 20 * SEC, 5000, false, &req);
	assert_int_equal(json_object_array_length(rows_of(ps_none)), 0);
}

/* The rule itself (profqd(8), ACCESS CONTROL): privileged viewers see all; the others their own
 * processes that they could read /proc/PID/maps of when sampled. */
static void test_visibility_rule(void **state)
{
	Viewer user = { .uid = 1000 }, other = { .uid = 2000 }, root = { .privileged = true };
	StoreProc p = { .pid = 10, .uid = 1000 };

	(void)state;
	assert_true(query_proc_visible(&user, &p));
	assert_false(query_proc_visible(&other, &p));
	assert_true(query_proc_visible(&root, &p));
	/* Root's process: nobody unprivileged. */
	p.uid = 0;
	assert_false(query_proc_visible(&user, &p));
	assert_true(query_proc_visible(&root, &p));
	/* Setuid, not dumpable, or its uid changed: not even its real owner. */
	p = (StoreProc){ .pid = 10, .uid = 1000, .flags = PROC_PRIVATE };
	assert_false(query_proc_visible(&user, &p));
	assert_true(query_proc_visible(&root, &p));
	/* Exited and accounted: the same verdict as while it ran. */
	p.flags |= PROC_EXITED | PROC_ACCOUNTING;
	assert_false(query_proc_visible(&user, &p));
	p.flags &= ~PROC_PRIVATE;
	assert_true(query_proc_visible(&user, &p));
	/* Kernel threads have no maps to read. */
	p.flags = PROC_KTHREAD;
	assert_false(query_proc_visible(&user, &p));
	assert_true(query_proc_visible(&root, &p));
	assert_false(query_proc_visible(&user, NULL));
}

/* A private process of the viewer's own uid is denied by pid and left out of ps and top. */
static void test_private_proc(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_json_ json_object *ps = NULL, *top = NULL;
	FrameId a, b;
	ProcId mine, suid;
	Request req;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	a = frame(s, "work", "prog", 0, 0x1000);
	b = frame(s, "secret", "passwd", 0, 0x2000);
	mine = proc(s, 800, 1000, T0, "prog");
	suid = proc(s, 801, 1000, T0, "passwd");
	store_proc_mut(s, suid)->flags |= PROC_PRIVATE;
	assert_int_equal(store_window_open(s, T0, T0 + 10 * SEC, PERIOD), 0);
	add(s, mine, 800, STACK(s, a), false, 10);
	add(s, suid, 801, STACK(s, b), false, 30);
	assert_int_equal(store_window_close(s), 0);

	req = top_req(801);
	expect_error(ask(s, T0 + 20 * SEC, 1000, false, &req), ERROR_DENIED);
	request_init(&req, COMMAND_TIME);
	req.pid = 801;
	expect_error(ask(s, T0 + 20 * SEC, 1000, false, &req), ERROR_DENIED);
	req = top_req(0);
	top = ask(s, T0 + 20 * SEC, 1000, false, &req);
	assert_int_equal(json_get_int(top, "samples"), 10);
	assert_null(strstr(json_object_to_json_string(top), "secret"));
	request_init(&req, COMMAND_PS);
	ps = ask(s, T0 + 20 * SEC, 1000, false, &req);
	assert_int_equal(json_object_array_length(rows_of(ps)), 1);
	assert_int_equal(json_get_int(row_named(ps, "comm", "prog"), "pid"), 800);
}

static void test_unresolved(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_json_ json_object *root = NULL, *user = NULL;
	FrameId u, k, kr, anon, main_f;
	Viewer viewer = { .uid = 1000 }, root_viewer = { .privileged = true };
	StoreFrame f = { 0 };
	const char *text;
	Request req;
	ProcId p;
	char buf[128];

	(void)state;
	assert_int_equal(store_new(&s), 0);
	u = frame(s, NULL, "libfoo.so", 0, 0x1234);
	k = frame(s, NULL, "[kernel.kallsyms]", FRAME_KERNEL, 0xffffffff81234567ULL);
	kr = frame(s, "do_syscall_64", "[kernel.kallsyms]", FRAME_KERNEL, 0xffffffff81000000ULL);
	anon = frame(s, NULL, NULL, 0, 0x7f0000001000ULL);
	main_f = frame(s, "main", "prog", 0, 0x1000);
	p = proc(s, 400, 1000, T0, "prog");
	assert_int_equal(store_window_open(s, T0, T0 + 10 * SEC, PERIOD), 0);
	add(s, p, 400, STACK(s, k, kr, u, anon, main_f), true, 4);
	assert_int_equal(store_window_close(s), 0);

	req = top_req(400);
	root = ask(s, T0 + 20 * SEC, 0, true, &req);
	expect_top_row(root, "[kernel.kallsyms]+0xffffffff81234567", 4, 4, 100.0, 100.0);
	expect_top_row(root, "libfoo.so+0x1234", 0, 4, 0.0, 100.0);
	expect_top_row(root, "[unknown]+0x7f0000001000", 0, 4, 0.0, 100.0);
	assert_true(json_object_get_boolean(
		json_object_object_get(top_row(root, "do_syscall_64"), "kernel")));
	assert_false(
		json_object_get_boolean(json_object_object_get(top_row(root, "main"), "kernel")));

	/* Unprivileged, perf_event_paranoid > 1: the kernel is one "[kernel]" frame, never an
	 * address or a name; user addresses are shown. */
	user = ask(s, T0 + 20 * SEC, 1000, false, &req);
	expect_top_row(user, "[kernel]", 4, 4, 100.0, 100.0);
	assert_null(json_object_object_get(top_row(user, "[kernel]"), "symbol"));
	expect_top_row(user, "libfoo.so+0x1234", 0, 4, 0.0, 100.0);
	text = json_object_to_json_string(user);
	assert_null(strstr(text, "ffffffff"));
	assert_null(strstr(text, "81234567"));
	assert_null(strstr(text, "do_syscall"));

	f = *store_frame(s, k);
	assert_int_equal(query_frame_name(s, &f, &viewer, buf, sizeof(buf)), strlen("[kernel]"));
	assert_string_equal(buf, "[kernel]");
	query_frame_name(s, &f, &root_viewer, buf, sizeof(buf));
	assert_string_equal(buf, "[kernel.kallsyms]+0xffffffff81234567");
	query_frame_name(s, store_frame(s, kr), &viewer, buf, sizeof(buf));
	assert_string_equal(buf, "[kernel]");
	/* perf_event_paranoid <= 1: kernel functions by name, an unresolved one still without
	 * its address. */
	viewer.kernel_names = true;
	query_frame_name(s, store_frame(s, kr), &viewer, buf, sizeof(buf));
	assert_string_equal(buf, "do_syscall_64");
	query_frame_name(s, &f, &viewer, buf, sizeof(buf));
	assert_string_equal(buf, "[kernel]");
	{
		QueryContext ctx = { .store = s, .now_ns = T0 + 20 * SEC, .viewer = viewer };
		_cleanup_json_ json_object *named = NULL;

		assert_int_equal(query_answer(&ctx, &req, &named), 0);
		expect_top_row(named, "[kernel]", 4, 4, 100.0, 100.0);
		expect_top_row(named, "do_syscall_64", 0, 4, 0.0, 100.0);
		assert_null(strstr(json_object_to_json_string(named), "ffffffff"));
	}
	/* Truncated to the buffer, still terminated. */
	query_frame_name(s, store_frame(s, u), &viewer, buf, 8);
	assert_string_equal(buf, "libfoo.");
}

static void test_ps(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_json_ json_object *ans = NULL, *w0 = NULL, *lim = NULL, *open = NULL;
	json_object *r;
	ProcId p1, p2;
	Request req;
	Split x;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	split_build(s, &x);
	p1 = x.p;
	p2 = proc(s, 101, 1000, T0, "busy");
	/*
	 * W0 (100 Hz): pid 100 100 user + 20 kernel samples, pid 101 300 user.
	 * W1 (1000 Hz, so a sample is 1 ms): pid 100 100 user.
	 */
	assert_int_equal(store_window_open(s, T0, T0 + 10 * SEC, PERIOD), 0);
	add(s, p1, 100, x.s1, false, 100);
	add(s, p1, 100, x.s1, true, 20);
	add(s, p2, 101, x.s2, false, 300);
	assert_int_equal(store_window_close(s), 0);
	assert_int_equal(store_window_open(s, T0 + 10 * SEC, T0 + 20 * SEC, NSEC_PER_MSEC), 0);
	add(s, p1, 102, x.s2, false, 100);
	assert_int_equal(store_window_close(s), 0);
	/* W2 is open and half elapsed at now = T0 + 25 s: pid 101, 250 samples in 5 s. */
	assert_int_equal(store_window_open(s, T0 + 20 * SEC, T0 + 30 * SEC, PERIOD), 0);
	add(s, p2, 101, x.s2, false, 250);

	request_init(&req, COMMAND_PS);
	req.has_until = true;
	req.until_ns = 5 * SEC; /* up to T0 + 20 s: W0 and W1, 20 s elapsed */
	ans = ask(s, T0 + 25 * SEC, 0, true, &req);
	assert_true(fabs(json_get_double(ans, "elapsed_s") - 20.0) < 1e-9);
	assert_int_equal(json_object_array_length(rows_of(ans)), 2);
	/* pid 100: 1 + 0.1 s user, 0.2 s sys over 20 s; pid 101: 3 s = 15 %, so first. */
	r = json_object_array_get_idx(rows_of(ans), 0);
	assert_int_equal(json_get_int(r, "pid"), 101);
	assert_true(fabs(json_get_double(r, "cpu_pct") - 15.0) < 0.006);
	r = json_object_array_get_idx(rows_of(ans), 1);
	assert_int_equal(json_get_int(r, "pid"), 100);
	assert_string_equal(json_get_string(r, "comm"), "prog");
	assert_int_equal(json_get_int(r, "samples"), 220);
	assert_int_equal(json_get_int(r, "user_samples"), 200);
	assert_int_equal(json_get_int(r, "sys_samples"), 20);
	assert_true(fabs(json_get_double(r, "user_pct") - 5.5) < 0.006);
	assert_true(fabs(json_get_double(r, "sys_pct") - 1.0) < 0.006);
	assert_true(fabs(json_get_double(r, "cpu_pct") - 6.5) < 0.006);
	assert_int_equal(json_get_int(r, "uid"), 1000);

	req.until_ns = 15 * SEC; /* up to T0 + 10 s: W0 only, 10 s */
	w0 = ask(s, T0 + 25 * SEC, 0, true, &req);
	r = row_named(w0, "comm", "prog");
	assert_true(fabs(json_get_double(r, "user_pct") - 10.0) < 0.006);
	assert_true(fabs(json_get_double(r, "sys_pct") - 2.0) < 0.006);
	r = row_named(w0, "comm", "busy");
	assert_true(fabs(json_get_double(r, "cpu_pct") - 30.0) < 0.006);

	req.has_until = false;
	req.limit = 1;
	lim = ask(s, T0 + 25 * SEC, 0, true, &req);
	assert_int_equal(json_object_array_length(rows_of(lim)), 1);
	assert_int_equal(json_get_int(json_object_array_get_idx(rows_of(lim), 0), "pid"), 101);

	/* The open window counts up to now: 250 samples x 10 ms over 5 s = 50 %. */
	req.limit = REQUEST_LIMIT_DEFAULT;
	req.has_since = true;
	req.since_ns = 2 * SEC;
	open = ask(s, T0 + 25 * SEC, 0, true, &req);
	assert_true(fabs(json_get_double(open, "elapsed_s") - 5.0) < 1e-9);
	r = row_named(open, "comm", "busy");
	assert_true(fabs(json_get_double(r, "cpu_pct") - 50.0) < 0.006);
	assert_int_equal(json_object_array_length(rows_of(open)), 1);
}

static ProcId proc_full(Store *s, const StoreProc *tmpl, const char *comm, const char *cmdline)
{
	StoreProc p = *tmpl;
	ProcId id;

	p.comm = str(s, comm);
	p.cmdline = cmdline ? str(s, cmdline) : 0;
	assert_int_equal(store_proc_add(s, &p, &id), 0);
	return id;
}

static double num(json_object *o, const char *path)
{
	_cleanup_free_ char *copy = strdup(path);
	char *p = copy, *key;

	assert_non_null(copy);
	while ((key = strsep(&p, ".")) && p)
		assert_true(json_object_object_get_ex(o, key, &o));
	if (!json_object_object_get_ex(o, key, &o))
		fail_msg("no %s", path);
	return json_object_get_double(o);
}

static void expect_num(json_object *o, const char *path, double want, double tolerance)
{
	double got = num(o, path);

	if (fabs(got - want) > tolerance)
		fail_msg("%s is %f, expected %f in %s", path, got, want,
			 json_object_to_json_string(o));
}

static void mem_point(Store *s, ProcId p, int64_t t, uint64_t anon, uint64_t peak, int64_t peak_ns,
		      uint32_t flags)
{
	MemPoint m = { .proc = p,
		       .flags = flags,
		       .time_ns = t,
		       .anon = anon,
		       .file = 4096,
		       .peak = peak,
		       .peak_ns = peak_ns };

	assert_int_equal(store_window_add_mem(s, &m), 0);
}

/* mem: a process's points in time order with the kernel's peak, the largest point when the
 * peak lies before the range, the OOM kill; the ranking by peak and by growth; who may see. */
static void test_mem(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	json_object *a, *pts, *rows;
	ProcId p, q;
	Request req;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	p = proc(s, 10, 1000, T0, "grower");
	q = proc(s, 11, 2000, T0, "killed");
	assert_int_equal(store_window_open(s, T0, T0 + 10 * SEC, 10000000), 0);
	/* Out of order within the window: answers sort by time. */
	mem_point(s, p, T0 + 3 * SEC, 300 << 20, 310 << 20, T0 + 2 * SEC, 0);
	mem_point(s, p, T0 + 1 * SEC, 100 << 20, 100 << 20, T0 + 1 * SEC, 0);
	mem_point(s, q, T0 + 2 * SEC, 50 << 20, 60 << 20, T0 + 1 * SEC, MEM_OOM_KILL);
	assert_int_equal(store_window_close(s), 0);
	assert_int_equal(store_window_open(s, T0 + 10 * SEC, T0 + 20 * SEC, 10000000), 0);
	mem_point(s, p, T0 + 12 * SEC, 20 << 20, 310 << 20, T0 + 2 * SEC, MEM_EXIT);
	assert_int_equal(store_window_close(s), 0);

	request_init(&req, COMMAND_MEM);
	req.pid = 10;
	a = ask(s, T0 + 20 * SEC, 0, true, &req);
	assert_int_equal(json_get_int(a, "peak_rss_bytes"), 310 << 20);
	assert_true(json_object_get_boolean(json_object_object_get(a, "peak_exact")));
	assert_float_equal(json_get_double(a, "peak_time"), (double)(T0 + 2 * SEC) / SEC, 0.001);
	assert_false(json_object_get_boolean(json_object_object_get(a, "oom_killed")));
	pts = json_object_object_get(a, "points");
	assert_int_equal(json_object_array_length(pts), 3);
	assert_int_equal(json_get_int(json_object_array_get_idx(pts, 0), "rss_bytes"),
			 (100 << 20) + 4096);
	assert_int_equal(json_get_int(json_object_array_get_idx(pts, 0), "anon_bytes"), 100 << 20);
	assert_true(json_object_get_boolean(
		json_object_object_get(json_object_array_get_idx(pts, 2), "exit")));
	assert_int_equal(json_get_int(a, "growth_bytes"), (20 << 20) - (100 << 20));
	json_object_put(a);

	/* The peak was before the range: the largest point in it, not exact. */
	req.has_since = true;
	req.since_ns = 9 * SEC;
	a = ask(s, T0 + 20 * SEC, 0, true, &req);
	assert_int_equal(json_get_int(a, "peak_rss_bytes"), (20 << 20) + 4096);
	assert_false(json_object_get_boolean(json_object_object_get(a, "peak_exact")));
	json_object_put(a);

	/* The OOM kill. */
	req.pid = 11;
	req.has_since = false;
	a = ask(s, T0 + 20 * SEC, 0, true, &req);
	assert_true(json_object_get_boolean(json_object_object_get(a, "oom_killed")));
	assert_float_equal(json_get_double(a, "oom_time"), (double)(T0 + 2 * SEC) / SEC, 0.001);
	json_object_put(a);
	/* Not the viewer's. */
	expect_error(ask(s, T0 + 20 * SEC, 1000, false, &req), ERROR_DENIED);

	/* Ranking: by peak, by growth; the unprivileged viewer sees its own only. */
	request_init(&req, COMMAND_MEM);
	a = ask(s, T0 + 20 * SEC, 0, true, &req);
	rows = json_object_object_get(a, "rows");
	assert_int_equal(json_object_array_length(rows), 2);
	assert_int_equal(json_get_int(json_object_array_get_idx(rows, 0), "pid"), 10);
	json_object_put(a);
	req.sort = SORT_GROWTH;
	a = ask(s, T0 + 20 * SEC, 0, true, &req);
	rows = json_object_object_get(a, "rows");
	assert_int_equal(json_get_int(json_object_array_get_idx(rows, 0), "pid"), 11);
	json_object_put(a);
	a = ask(s, T0 + 20 * SEC, 1000, false, &req);
	rows = json_object_object_get(a, "rows");
	assert_int_equal(json_object_array_length(rows), 1);
	assert_int_equal(json_get_int(json_object_array_get_idx(rows, 0), "pid"), 10);
	json_object_put(a);

	/* time: the peak as time(1)'s %M. */
	request_init(&req, COMMAND_TIME);
	req.pid = 10;
	a = ask(s, T0 + 20 * SEC, 0, true, &req);
	assert_int_equal(json_get_int(a, "peak_rss_bytes"), 310 << 20);
	json_object_put(a);
}

/* A point's time is cut to the millisecond, not rounded: 0.9997 s into a second is in it. */
static void test_mem_time_cut(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	char want[32];
	json_object *a, *pt;
	Request req;
	ProcId p;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	p = proc(s, 10, 1000, T0, "grower");
	assert_int_equal(store_window_open(s, T0, T0 + 10 * SEC, 10000000), 0);
	mem_point(s, p, T0 + 4 * SEC - 300000, 1 << 20, 1 << 20, T0 + 4 * SEC - 300000, 0);
	assert_int_equal(store_window_close(s), 0);
	request_init(&req, COMMAND_MEM);
	req.pid = 10;
	a = ask(s, T0 + 20 * SEC, 0, true, &req);
	pt = json_object_array_get_idx(json_object_object_get(a, "points"), 0);
	snprintf(want, sizeof(want), "%lld.999", (long long)((T0 + 3 * SEC) / SEC));
	assert_string_equal(json_object_to_json_string(json_object_object_get(pt, "time")), want);
	assert_string_equal(json_object_to_json_string(json_object_object_get(a, "peak_time")),
			    want);
	json_object_put(a);
}

static void test_time(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_json_ json_object *done = NULL, *live = NULL;
	StoreProc tmpl = { .pid = 500, .ppid = 1, .uid = 1000 };
	ProcId job, running;
	Request req;
	Split x;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	split_build(s, &x);
	/* An exited job with the kernel's accounting: 30 s user, 5 s sys in 90 s. */
	tmpl.start_ns = T0 - 100 * SEC;
	tmpl.exit_ns = T0 - 10 * SEC;
	tmpl.flags = PROC_EXITED | PROC_ACCOUNTING;
	tmpl.user_ns = 30 * NSEC_PER_SEC;
	tmpl.sys_ns = 5 * NSEC_PER_SEC;
	tmpl.child_user_ns = 2 * NSEC_PER_SEC;
	tmpl.child_sys_ns = 1 * NSEC_PER_SEC;
	tmpl.exit_code = 256; /* exit(1) */
	job = proc_full(s, &tmpl, "job", "job --fast");
	/* A live process without accounting: the samples stand in. */
	tmpl = (StoreProc){ .pid = 501, .ppid = 1, .uid = 1000, .start_ns = T0 - 20 * SEC };
	running = proc_full(s, &tmpl, "svc", NULL);
	assert_int_equal(store_window_open(s, T0 - 60 * SEC, T0 - 50 * SEC, PERIOD), 0);
	add(s, job, 500, x.s1, false, 100);
	add(s, job, 500, x.s1, true, 50);
	assert_int_equal(store_window_close(s), 0);
	assert_int_equal(store_window_open(s, T0 - 10 * SEC, T0, PERIOD), 0);
	add(s, running, 501, x.s2, false, 300);
	add(s, running, 501, x.s2, true, 100);
	assert_int_equal(store_window_close(s), 0);

	request_init(&req, COMMAND_TIME);
	req.pid = 500;
	done = ask(s, T0, 1000, false, &req);
	expect_ok(done);
	assert_int_equal(json_get_int(done, "pid"), 500);
	assert_string_equal(json_get_string(done, "comm"), "job");
	assert_string_equal(json_get_string(done, "cmdline"), "job --fast");
	assert_true(json_object_get_boolean(json_object_object_get(done, "exited")));
	assert_int_equal(json_get_int(done, "exit_code"), 256);
	assert_string_equal(json_get_string(done, "accounting"), "kernel");
	/* time(1): real from start to exit, user and sys from the kernel, cpu% of real. */
	expect_num(done, "real_s", 90.0, 1e-6);
	expect_num(done, "user_s", 30.0, 1e-6);
	expect_num(done, "sys_s", 5.0, 1e-6);
	expect_num(done, "cpu_pct", 100.0 * 35 / 90, 0.051);
	expect_num(done, "children.user_s", 2.0, 1e-6);
	expect_num(done, "children.sys_s", 1.0, 1e-6);
	expect_num(done, "with_children.user_s", 32.0, 1e-6);
	expect_num(done, "with_children.sys_s", 6.0, 1e-6);
	/* The sampled estimate beside it: 100 + 50 samples of 10 ms. */
	expect_num(done, "sampled.user_s", 1.0, 1e-6);
	expect_num(done, "sampled.sys_s", 0.5, 1e-6);
	expect_num(done, "sampled.samples", 150, 0);

	req.pid = 501;
	live = ask(s, T0 + 5 * SEC, 1000, false, &req);
	expect_num(live, "real_s", 25.0, 1e-6);
	assert_string_equal(json_get_string(live, "accounting"), "sampled");
	expect_num(live, "user_s", 3.0, 1e-6);
	expect_num(live, "sys_s", 1.0, 1e-6);
	expect_num(live, "cpu_pct", 16.0, 0.051);
	assert_false(json_object_get_boolean(json_object_object_get(live, "exited")));
	assert_null(json_object_object_get(live, "exit_code"));

	req.pid = 502;
	expect_error(ask(s, T0, 0, true, &req), ERROR_NOT_FOUND);
	req.pid = 500;
	expect_error(ask(s, T0, 2000, false, &req), ERROR_DENIED);
}

/* --start picks an incarnation of a reused pid, within a second of its start time. */
static void test_start_time(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_json_ json_object *old = NULL, *newest = NULL;
	ProcId p_old, p_new;
	Request req;
	Split x;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	split_build(s, &x);
	p_old = proc(s, 600, 1000, T0 - 100 * SEC, "first");
	p_new = proc(s, 600, 1000, T0 - 50 * SEC, "second");
	assert_int_equal(store_window_open(s, T0 - 100 * SEC, T0 - 90 * SEC, PERIOD), 0);
	add(s, p_old, 600, x.s1, false, 11);
	assert_int_equal(store_window_close(s), 0);
	assert_int_equal(store_window_open(s, T0 - 50 * SEC, T0 - 40 * SEC, PERIOD), 0);
	add(s, p_new, 600, x.s2, false, 22);
	assert_int_equal(store_window_close(s), 0);

	req = top_req(600);
	newest = ask(s, T0, 1000, false, &req);
	assert_string_equal(json_get_string(newest, "comm"), "second");
	req.start_ns = T0 - 100 * SEC + 600 * (int64_t)NSEC_PER_MSEC;
	old = ask(s, T0, 1000, false, &req);
	assert_string_equal(json_get_string(old, "comm"), "first");
	assert_int_equal(json_get_int(old, "samples"), 11);
	/* Nothing started within a second of that. */
	req.start_ns = T0 - 70 * SEC;
	expect_error(ask(s, T0, 1000, false, &req), ERROR_NOT_FOUND);
	request_init(&req, COMMAND_TIME);
	req.pid = 600;
	req.start_ns = T0 - 102 * SEC;
	expect_error(ask(s, T0, 1000, false, &req), ERROR_NOT_FOUND);
}

/*
 * --children: a parent, its child and grandchild count; an unrelated process does not, nor an
 * older process whose parent pid happens to match but that started before the parent did.
 */
static void test_children(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_json_ json_object *alone = NULL, *family = NULL, *t = NULL, *ps = NULL;
	StoreProc tmpl = { .uid = 1000 };
	ProcId parent, child, grandchild, other, stale, foreign;
	Request req;
	Split x;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	split_build(s, &x);
	tmpl = (StoreProc){ .pid = 700, .ppid = 1, .uid = 1000, .start_ns = T0 - 50 * SEC };
	parent = proc_full(s, &tmpl, "make", NULL);
	tmpl = (StoreProc){ .pid = 701, .ppid = 700, .uid = 1000, .start_ns = T0 - 40 * SEC };
	tmpl.flags = PROC_EXITED | PROC_ACCOUNTING;
	tmpl.exit_ns = T0 - 30 * SEC;
	tmpl.user_ns = 4 * NSEC_PER_SEC;
	tmpl.sys_ns = 1 * NSEC_PER_SEC;
	child = proc_full(s, &tmpl, "cc", NULL);
	tmpl = (StoreProc){ .pid = 702, .ppid = 701, .uid = 1000, .start_ns = T0 - 35 * SEC };
	grandchild = proc_full(s, &tmpl, "as", NULL);
	tmpl = (StoreProc){ .pid = 703, .ppid = 1, .uid = 1000, .start_ns = T0 - 35 * SEC };
	other = proc_full(s, &tmpl, "other", NULL);
	tmpl = (StoreProc){ .pid = 704, .ppid = 700, .uid = 1000, .start_ns = T0 - 500 * SEC };
	stale = proc_full(s, &tmpl, "stale", NULL);
	/* Someone else's child is not shown to the parent's owner. */
	tmpl = (StoreProc){ .pid = 705, .ppid = 700, .uid = 2000, .start_ns = T0 - 20 * SEC };
	foreign = proc_full(s, &tmpl, "setuid", NULL);
	assert_int_equal(store_window_open(s, T0 - 60 * SEC, T0, PERIOD), 0);
	add(s, parent, 700, x.s1, false, 1);
	add(s, child, 701, x.s1, false, 10);
	add(s, grandchild, 702, x.s2, false, 100);
	add(s, other, 703, x.s2, false, 1000);
	add(s, stale, 704, x.s2, false, 10000);
	add(s, foreign, 705, x.s2, false, 5);
	assert_int_equal(store_window_close(s), 0);

	req = top_req(700);
	alone = ask(s, T0, 1000, false, &req);
	assert_int_equal(json_get_int(alone, "samples"), 1);
	req.children = true;
	family = ask(s, T0, 1000, false, &req);
	assert_int_equal(json_get_int(family, "samples"), 111);
	assert_int_equal(json_get_int(family, "pid"), 700);

	request_init(&req, COMMAND_TIME);
	req.pid = 700;
	req.children = true;
	t = ask(s, T0, 1000, false, &req);
	expect_num(t, "descendants.count", 2, 0);
	/* Only the child has the kernel's accounting; the grandchild has none to add. */
	expect_num(t, "descendants.user_s", 4.0, 1e-6);
	expect_num(t, "descendants.sys_s", 1.0, 1e-6);
	expect_num(t, "sampled.samples", 111, 0);

	request_init(&req, COMMAND_PS);
	req.pid = 700;
	req.children = true;
	ps = ask(s, T0, 1000, false, &req);
	assert_int_equal(json_object_array_length(rows_of(ps)), 3);
	assert_int_equal(json_get_int(json_object_array_get_idx(rows_of(ps), 0), "pid"), 702);
	(void)row_named(ps, "comm", "make");
	(void)row_named(ps, "comm", "cc");
}

static void test_threads(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_json_ json_object *ans = NULL;
	json_object *r;
	StrId t1, t2, t2b;
	Request req;
	ProcId p;
	Split x;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	split_build(s, &x);
	p = x.p;
	t1 = str(s, "main");
	t2 = str(s, "worker");
	t2b = str(s, "worker-renamed");
	assert_int_equal(store_window_open(s, T0, T0 + 10 * SEC, PERIOD), 0);
	assert_int_equal(store_window_add(s, p, 100, t1, x.s1, false, 10), 0);
	assert_int_equal(store_window_add(s, p, 101, t2, x.s2, false, 30), 0);
	assert_int_equal(store_window_add(s, p, 101, t2, x.s2, true, 20), 0);
	assert_int_equal(store_window_close(s), 0);
	assert_int_equal(store_window_open(s, T0 + 10 * SEC, T0 + 20 * SEC, PERIOD), 0);
	assert_int_equal(store_window_add(s, p, 101, t2b, x.s1, false, 50), 0);
	assert_int_equal(store_window_close(s), 0);

	request_init(&req, COMMAND_PS);
	req.pid = 100;
	req.threads = true;
	ans = ask(s, T0 + 20 * SEC, 1000, false, &req);
	assert_int_equal(json_get_int(ans, "pid"), 100);
	assert_int_equal(json_object_array_length(rows_of(ans)), 2);
	/* Busiest first; a thread keeps its latest name. */
	r = json_object_array_get_idx(rows_of(ans), 0);
	assert_int_equal(json_get_int(r, "tid"), 101);
	assert_string_equal(json_get_string(r, "comm"), "worker-renamed");
	assert_int_equal(json_get_int(r, "samples"), 100);
	assert_int_equal(json_get_int(r, "sys_samples"), 20);
	expect_num(r, "cpu_pct", 100.0 * 1.0 / 20, 0.006);
	r = json_object_array_get_idx(rows_of(ans), 1);
	assert_int_equal(json_get_int(r, "tid"), 100);
	assert_string_equal(json_get_string(r, "comm"), "main");
	assert_int_equal(json_get_int(r, "samples"), 10);
}

/* ---- lines and tree ---- */

/* A frame at a source line; the function is declared at decl_line of the same file. */
static FrameId frame_at(Store *s, const char *fn, const char *file, uint32_t line,
			uint32_t decl_line, uint32_t flags)
{
	StoreFrame f = { .flags = flags, .line = line, .decl_line = decl_line, .address = line };
	FrameId id;

	f.function = str(s, fn);
	f.module = str(s, flags & FRAME_KERNEL ? "[kernel.kallsyms]" : "prog");
	if (file) {
		f.file = str(s, file);
		f.decl_file = f.file;
	}
	assert_int_equal(store_intern_frame(s, &f, &id), 0);
	return id;
}

/*
 * pid 100, one closed window, 120 samples:
 *   50  main:10 -> work:20 -> hot:5 (inlined into work at line 20)
 *   30  main:10 -> work:21
 *   20  main:11 -> work:22 -> kfunc (kernel, no line; "[kernel]" to the unprivileged owner)
 *   10  main:12 -> rec:31 -> rec:30 -> leaf:40
 *   10  start_thread:50 -> spinner:60
 */
static void code_build(Store *s, Split *x)
{
	FrameId main10 = frame_at(s, "main", "prog.c", 10, 9, 0);
	FrameId main11 = frame_at(s, "main", "prog.c", 11, 9, 0);
	FrameId main12 = frame_at(s, "main", "prog.c", 12, 9, 0);
	FrameId work20 = frame_at(s, "work", "prog.c", 20, 19, 0);
	FrameId work21 = frame_at(s, "work", "prog.c", 21, 19, 0);
	FrameId work22 = frame_at(s, "work", "prog.c", 22, 19, 0);
	FrameId hot5 = frame_at(s, "hot", "prog.h", 5, 3, FRAME_INLINED);
	FrameId kfunc = frame_at(s, "kfunc", NULL, 0, 0, FRAME_KERNEL);
	FrameId rec31 = frame_at(s, "rec", "prog.c", 31, 29, 0);
	FrameId rec30 = frame_at(s, "rec", "prog.c", 30, 29, 0);
	FrameId leaf40 = frame_at(s, "leaf", "prog.c", 40, 39, 0);
	FrameId st50 = frame_at(s, "start_thread", "prog.c", 50, 49, 0);
	FrameId sp60 = frame_at(s, "spinner", "prog.c", 60, 59, 0);

	x->p = proc(s, 100, 1000, T0 - 100 * SEC, "prog");
	assert_int_equal(store_window_open(s, T0, T0 + 10 * SEC, PERIOD), 0);
	add(s, x->p, 100, STACK(s, hot5, work20, main10), false, 50);
	add(s, x->p, 100, STACK(s, work21, main10), false, 30);
	add(s, x->p, 100, STACK(s, kfunc, work22, main11), true, 20);
	add(s, x->p, 100, STACK(s, leaf40, rec30, rec31, main12), false, 10);
	add(s, x->p, 101, STACK(s, sp60, st50), false, 10);
	assert_int_equal(store_window_close(s), 0);
}

static Request code_req(Command c)
{
	Request req;

	request_init(&req, c);
	req.pid = 100;
	return req;
}

/* A store over [T0, T0 + 30 s): W0 and W1 closed, W2 open; pid 100 runs throughout, pid 200
 * lives from T0 + 12 s to T0 + 15 s, in W1, and W0 and W1 lost samples. */
static void lost_build(Store *s, Split *x, ProcId *ret_short)
{
	StoreProc *sp;

	split_build(s, x);
	*ret_short = proc(s, 200, 1000, T0 + 12 * SEC, "gzip");
	sp = store_proc_mut(s, *ret_short);
	sp->flags |= PROC_EXITED;
	sp->exit_ns = T0 + 15 * SEC;
	assert_int_equal(store_window_open(s, T0, T0 + 10 * SEC, PERIOD), 0);
	add(s, x->p, 100, x->s1, false, 100);
	store_window_current(s)->lost = 5;
	assert_int_equal(store_window_close(s), 0);
	assert_int_equal(store_window_open(s, T0 + 10 * SEC, T0 + 20 * SEC, PERIOD), 0);
	add(s, x->p, 100, x->s1, false, 100);
	/* 150 samples x 10 ms = 1.5 s of CPU in the 3 s it lived. */
	add(s, *ret_short, 200, x->s2, false, 120);
	add(s, *ret_short, 200, x->s2, true, 30);
	store_window_current(s)->lost = 7;
	assert_int_equal(store_window_close(s), 0);
	assert_int_equal(store_window_open(s, T0 + 20 * SEC, T0 + 30 * SEC, PERIOD), 0);
	add(s, x->p, 100, x->s1, false, 50);
}

static void expect_range(json_object *answer, double since_s, double until_s, int64_t lost)
{
	json_object *range;

	expect_ok(answer);
	assert_true(json_object_object_get_ex(answer, "range", &range));
	assert_true(fabs(json_get_double(range, "since_s") - since_s) < 1e-3);
	assert_true(fabs(json_get_double(range, "until_s") - until_s) < 1e-3);
	assert_int_equal(json_get_int(answer, "lost"), lost);
}

/* Every answer says what time it covers and how many samples its windows lost. */
static void test_range_lost(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	double t0 = (double)T0 / NSEC_PER_SEC;
	Command commands[] = { COMMAND_PS, COMMAND_TOP, COMMAND_TREE, COMMAND_LINES,
			       COMMAND_STACKS };
	ProcId gzip;
	Request req;
	Split x;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	lost_build(s, &x, &gzip);
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		_cleanup_json_ json_object *all = NULL, *recent = NULL, *old = NULL;

		request_init(&req, commands[i]);
		req.pid = 100;
		/* Everything: W0 to now in the open W2. */
		all = ask(s, T0 + 25 * SEC, 0, true, &req);
		expect_range(all, t0, t0 + 25, 12);
		/* The last 8 s: W1 and W2, whole windows. */
		req.has_since = true;
		req.since_ns = 8 * SEC;
		recent = ask(s, T0 + 25 * SEC, 0, true, &req);
		expect_range(recent, t0 + 10, t0 + 25, 7);
		/* Up to 16 s ago: W0 alone. */
		req.has_since = false;
		req.has_until = true;
		req.until_ns = 16 * SEC;
		old = ask(s, T0 + 25 * SEC, 0, true, &req);
		expect_range(old, t0, t0 + 10, 5);
	}
	{
		_cleanup_json_ json_object *gz = NULL;

		/* W0 lost its 5 before gzip started: only W1's 7 may be its. */
		request_init(&req, COMMAND_TOP);
		req.pid = 200;
		gz = ask(s, T0 + 25 * SEC, 0, true, &req);
		expect_range(gz, t0, t0 + 25, 7);
	}
	{
		_cleanup_json_ json_object *t = NULL, *running = NULL;

		/* time: the process's life, and what the windows of its life lost. */
		request_init(&req, COMMAND_TIME);
		req.pid = 200;
		t = ask(s, T0 + 25 * SEC, 0, true, &req);
		expect_range(t, t0 + 12, t0 + 15, 7);
		req.pid = 100;
		running = ask(s, T0 + 25 * SEC, 0, true, &req);
		expect_range(running, (double)(T0 - 100 * SEC) / NSEC_PER_SEC, t0 + 25, 12);
	}
}

/* The pids of a ps answer, in order, into pids[n]; the number of rows. */
static size_t ps_pids(json_object *answer, int64_t *pids, size_t n)
{
	size_t k = json_object_array_length(rows_of(answer));

	for (size_t i = 0; i < k && i < n; i++)
		pids[i] = json_get_int(json_object_array_get_idx(rows_of(answer), i), "pid");
	return k;
}

/* ps --sort: each key orders the rows its way; --user keeps one user's; the limit counts. */
static void test_ps_sort(void **state)
{
	static const struct {
		SortKey key;
		int64_t pids[3];
	} cases[] = {
		/* CPU time: 3 s, 2.5 s, 1.5 s. */
		{ SORT_TIME, { 300, 100, 200 } },
		/* %CPU of their time alive: 75, 50, 10. */
		{ SORT_CPU, { 300, 200, 100 } },
		{ SORT_USER, { 200, 100, 300 } },
		{ SORT_SYS, { 300, 200, 100 } },
		{ SORT_SAMPLES, { 300, 100, 200 } },
		/* Newest first. */
		{ SORT_START, { 300, 200, 100 } },
	};
	_cleanup_(store_freep) Store *s = NULL;
	ProcId gzip, sha;
	Request req;
	int64_t pids[3];
	Split x;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	lost_build(s, &x, &gzip);
	/* Another user's, in the open window from T0 + 21 s: 3 s of sys in its 4 s. */
	sha = proc(s, 300, 2000, T0 + 21 * SEC, "sha256sum");
	add(s, sha, 300, x.s2, true, 300);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		_cleanup_json_ json_object *ans = NULL;

		request_init(&req, COMMAND_PS);
		req.sort = cases[i].key;
		ans = ask(s, T0 + 25 * SEC, 0, true, &req);
		assert_int_equal(ps_pids(ans, pids, 3), 3);
		for (size_t j = 0; j < 3; j++)
			if (pids[j] != cases[i].pids[j])
				fail_msg("sort %s: row %zu is pid %lld, want %lld",
					 sort_key_to_string(cases[i].key), j, (long long)pids[j],
					 (long long)cases[i].pids[j]);
		assert_string_equal(json_get_string(ans, "sort"), sort_key_to_string(cases[i].key));
	}
	{
		_cleanup_json_ json_object *mine = NULL, *one = NULL;

		request_init(&req, COMMAND_PS);
		req.has_uid = true;
		req.uid = 2000;
		mine = ask(s, T0 + 25 * SEC, 0, true, &req);
		assert_int_equal(ps_pids(mine, pids, 3), 1);
		assert_int_equal(pids[0], 300);
		assert_true(fabs(json_get_double(json_object_array_get_idx(rows_of(mine), 0),
						 "sys_pct") -
				 75.0) < 0.006);
		/* The limit leaves rows out, and the answer says how many there were. */
		request_init(&req, COMMAND_PS);
		req.limit = 1;
		one = ask(s, T0 + 25 * SEC, 0, true, &req);
		assert_int_equal(ps_pids(one, pids, 3), 1);
		assert_int_equal(json_get_int(one, "total_rows"), 3);
	}
}

/* The exports' profile spans the process's life in the range, not the whole range. */
static void test_stacks_life(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_json_ json_object *gz = NULL, *running = NULL;
	ProcId gzip;
	Request req;
	Split x;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	lost_build(s, &x, &gzip);
	request_init(&req, COMMAND_STACKS);
	req.pid = 200;
	gz = ask(s, T0 + 25 * SEC, 0, true, &req);
	expect_ok(gz);
	assert_int_equal(json_get_int(gz, "start_ns"), T0 + 12 * SEC);
	assert_int_equal(json_get_int(gz, "end_ns"), T0 + 15 * SEC);
	/* Started before the range and running: the range. */
	req.pid = 100;
	running = ask(s, T0 + 25 * SEC, 0, true, &req);
	assert_int_equal(json_get_int(running, "start_ns"), T0);
	assert_int_equal(json_get_int(running, "end_ns"), T0 + 25 * SEC);
}

/* ps: %CPU is of the time the process was alive in the range, not of the whole range. */
static void test_ps_alive(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_json_ json_object *ans = NULL;
	json_object *r;
	ProcId gzip;
	Request req;
	Split x;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	lost_build(s, &x, &gzip);
	request_init(&req, COMMAND_PS);
	ans = ask(s, T0 + 25 * SEC, 0, true, &req);
	assert_true(fabs(json_get_double(ans, "elapsed_s") - 25.0) < 1e-9);
	r = row_named(ans, "comm", "gzip");
	assert_true(fabs(json_get_double(r, "alive_s") - 3.0) < 1e-9);
	assert_true(fabs(json_get_double(r, "cpu_pct") - 50.0) < 0.006);
	assert_true(fabs(json_get_double(r, "user_pct") - 40.0) < 0.006);
	assert_true(fabs(json_get_double(r, "sys_pct") - 10.0) < 0.006);
	/* Alive throughout: 250 samples x 10 ms over the 25 s. */
	r = row_named(ans, "comm", "prog");
	assert_true(fabs(json_get_double(r, "alive_s") - 25.0) < 1e-9);
	assert_true(fabs(json_get_double(r, "cpu_pct") - 10.0) < 0.006);
}

/* Row i of a lines answer is file:line of function with the samples. */
static void expect_line(json_object *answer, size_t i, const char *file, int64_t line,
			const char *function, int64_t self, double self_pct)
{
	json_object *rows = rows_of(answer), *r;

	if (i >= json_object_array_length(rows))
		fail_msg("no row %zu in %s", i, json_object_to_json_string(answer));
	r = json_object_array_get_idx(rows, i);
	if (file)
		assert_string_equal(json_get_string(r, "file"), file);
	else
		assert_null(json_get_string(r, "file"));
	assert_int_equal(json_get_int(r, "line"), line);
	assert_string_equal(json_get_string(r, "function"), function);
	assert_int_equal(json_get_int(r, "self_samples"), self);
	assert_true(fabs(json_get_double(r, "self_pct") - self_pct) < 0.006);
	/* The daemon never reads source files: the text is the CLI's to add. */
	assert_true(json_object_object_get_ex(r, "text", &r) && r == NULL);
}

static void test_lines(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_json_ json_object *ans = NULL, *noinl = NULL, *lim = NULL, *t = NULL;
	json_object *r;
	Request req;
	Split x;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	code_build(s, &x);

	/* Each sample on its leaf's line; the inlined hot on its own line, in its own file. */
	req = code_req(COMMAND_LINES);
	ans = ask(s, T0 + 20 * SEC, 1000, false, &req);
	expect_ok(ans);
	assert_int_equal(json_get_int(ans, "pid"), 100);
	assert_int_equal(json_get_int(ans, "samples"), 120);
	assert_null(json_get_string(ans, "function"));
	assert_int_equal(json_object_array_length(rows_of(ans)), 5);
	expect_line(ans, 0, "prog.h", 5, "hot", 50, 100.0 * 50 / 120);
	expect_line(ans, 1, "prog.c", 21, "work", 30, 25.0);
	/* A frame without a line is one row for its function. */
	expect_line(ans, 2, NULL, 0, "[kernel]", 20, 100.0 * 20 / 120);
	r = json_object_array_get_idx(rows_of(ans), 2);
	assert_true(json_object_object_get_ex(r, "line", &r) && r == NULL);
	/* Ties by function name. */
	expect_line(ans, 3, "prog.c", 40, "leaf", 10, 100.0 * 10 / 120);
	expect_line(ans, 4, "prog.c", 60, "spinner", 10, 100.0 * 10 / 120);
	r = json_object_array_get_idx(rows_of(ans), 0);
	assert_true(json_object_get_boolean(json_object_object_get(r, "inlined")));
	assert_string_equal(json_get_string(r, "module"), "prog");

	/* Without inlines, hot's samples are on the line of work that it was inlined at. */
	req.no_inline = true;
	noinl = ask(s, T0 + 20 * SEC, 1000, false, &req);
	expect_line(noinl, 0, "prog.c", 20, "work", 50, 100.0 * 50 / 120);
	expect_line(noinl, 1, "prog.c", 21, "work", 30, 25.0);

	req = code_req(COMMAND_LINES);
	req.limit = 2;
	lim = ask(s, T0 + 20 * SEC, 1000, false, &req);
	assert_int_equal(json_object_array_length(rows_of(lim)), 2);
	assert_int_equal(json_get_int(lim, "samples"), 120);

	req = code_req(COMMAND_LINES);
	req.tid = 101;
	t = ask(s, T0 + 20 * SEC, 1000, false, &req);
	assert_int_equal(json_get_int(t, "samples"), 10);
	expect_line(t, 0, "prog.c", 60, "spinner", 10, 100.0);
}

/* Row i of a lines answer with a function: self samples on the line, callee samples in what it
 * called, their sum the line's total; shares of the answer's samples. */
static void expect_fline(json_object *answer, size_t i, const char *file, int64_t line,
			 const char *function, int64_t self, int64_t callee, double function_pct)
{
	double samples = (double)json_get_int(answer, "samples");
	json_object *r;

	expect_line(answer, i, file, line, function, self, 100.0 * (double)self / samples);
	r = json_object_array_get_idx(rows_of(answer), i);
	assert_int_equal(json_get_int(r, "callee_samples"), callee);
	assert_int_equal(json_get_int(r, "total_samples"), self + callee);
	assert_true(fabs(json_get_double(r, "total_pct") -
			 100.0 * (double)(self + callee) / samples) < 0.006);
	assert_true(fabs(json_get_double(r, "function_pct") - function_pct) < 0.006);
}

static void test_lines_function(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_json_ json_object *work = NULL, *hot = NULL, *rec = NULL, *main = NULL;
	Request req;
	Split x;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	code_build(s, &x);

	/* Every sample in work counts on work's line: executing (21) or calling (20, 22). */
	req = code_req(COMMAND_LINES);
	strcpy(req.function, "work");
	work = ask(s, T0 + 20 * SEC, 1000, false, &req);
	expect_ok(work);
	assert_string_equal(json_get_string(work, "function"), "work");
	assert_int_equal(json_get_int(work, "samples"), 120);
	assert_int_equal(json_get_int(work, "function_samples"), 100);
	assert_true(fabs(json_get_double(work, "function_pct") - 100.0 * 100 / 120) < 0.006);
	assert_int_equal(json_object_array_length(rows_of(work)), 3);
	/* Sorted by total; a line whose samples are all in callees has no self samples. */
	expect_fline(work, 0, "prog.c", 20, "work", 0, 50, 50.0); /* in the inlined hot */
	expect_fline(work, 1, "prog.c", 21, "work", 30, 0, 30.0);
	expect_fline(work, 2, "prog.c", 22, "work", 0, 20, 20.0);

	/* An inlined function has lines of its own. */
	strcpy(req.function, "hot");
	hot = ask(s, T0 + 20 * SEC, 1000, false, &req);
	assert_int_equal(json_get_int(hot, "function_samples"), 50);
	assert_int_equal(json_object_array_length(rows_of(hot)), 1);
	expect_fline(hot, 0, "prog.h", 5, "hot", 50, 0, 100.0);

	/* Recursion: the innermost call counts, once. */
	strcpy(req.function, "rec");
	rec = ask(s, T0 + 20 * SEC, 1000, false, &req);
	assert_int_equal(json_get_int(rec, "function_samples"), 10);
	assert_int_equal(json_object_array_length(rows_of(rec)), 1);
	expect_fline(rec, 0, "prog.c", 30, "rec", 0, 10, 100.0);

	strcpy(req.function, "main");
	main = ask(s, T0 + 20 * SEC, 1000, false, &req);
	assert_int_equal(json_get_int(main, "function_samples"), 110);
	expect_fline(main, 0, "prog.c", 10, "main", 0, 80, 100.0 * 80 / 110);
	expect_fline(main, 1, "prog.c", 11, "main", 0, 20, 100.0 * 20 / 110);
	expect_fline(main, 2, "prog.c", 12, "main", 0, 10, 100.0 * 10 / 110);

	strcpy(req.function, "nosuch");
	expect_error(ask(s, T0 + 20 * SEC, 1000, false, &req), ERROR_NOT_FOUND);
	/* Someone else's process stays someone else's. */
	strcpy(req.function, "work");
	expect_error(ask(s, T0 + 20 * SEC, 2000, false, &req), ERROR_DENIED);
}

/* The node of a tree answer at a path of child indices (-1 ends it). */
static json_object *node_at(json_object *answer, const int *path)
{
	json_object *level = rows_of(answer), *n = NULL;

	for (; *path >= 0; path++) {
		if ((size_t)*path >= json_object_array_length(level))
			fail_msg("no child %d in %s", *path, json_object_to_json_string(answer));
		n = json_object_array_get_idx(level, (size_t)*path);
		assert_true(json_object_object_get_ex(n, "children", &level));
	}
	return n;
}

#define NODE(a, ...) node_at(a, (const int[]){ __VA_ARGS__, -1 })

static void expect_node(json_object *n, const char *function, int64_t self, int64_t total,
			uint64_t samples, size_t children)
{
	json_object *c;

	assert_string_equal(json_get_string(n, "function"), function);
	assert_int_equal(json_get_int(n, "self_samples"), self);
	assert_int_equal(json_get_int(n, "total_samples"), total);
	assert_true(fabs(json_get_double(n, "self_pct") - 100.0 * (double)self / (double)samples) <
		    0.006);
	assert_true(fabs(json_get_double(n, "total_pct") -
			 100.0 * (double)total / (double)samples) < 0.006);
	assert_true(json_object_object_get_ex(n, "children", &c));
	assert_int_equal(json_object_array_length(c), children);
}

static void test_tree(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_json_ json_object *ans = NULL, *pruned = NULL, *noinl = NULL, *t = NULL;
	json_object *n;
	Request req;
	Split x;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	code_build(s, &x);

	req = code_req(COMMAND_TREE);
	ans = ask(s, T0 + 20 * SEC, 1000, false, &req);
	expect_ok(ans);
	assert_int_equal(json_get_int(ans, "samples"), 120);
	assert_int_equal(json_get_int(ans, "nodes"), 9);
	assert_int_equal(json_get_int(ans, "nodes_shown"), 9);
	assert_int_equal(json_get_int(ans, "truncated_samples"), 0);
	/* Two roots, hottest first. */
	assert_int_equal(json_object_array_length(rows_of(ans)), 2);
	expect_node(NODE(ans, 0), "main", 0, 110, 120, 2);
	/* The lines of a function are one node; its file:line is its declaration. */
	n = NODE(ans, 0, 0);
	expect_node(n, "work", 30, 100, 120, 2);
	assert_string_equal(json_get_string(n, "file"), "prog.c");
	assert_int_equal(json_get_int(n, "line"), 19);
	expect_node(NODE(ans, 0, 0, 0), "hot", 50, 50, 120, 0);
	assert_true(json_object_get_boolean(json_object_object_get(NODE(ans, 0, 0, 0), "inlined")));
	n = NODE(ans, 0, 0, 1);
	expect_node(n, "[kernel]", 20, 20, 120, 0);
	assert_true(json_object_get_boolean(json_object_object_get(n, "kernel")));
	assert_null(json_get_string(n, "file"));
	/* Recursion nests. */
	expect_node(NODE(ans, 0, 1), "rec", 0, 10, 120, 1);
	expect_node(NODE(ans, 0, 1, 0), "rec", 0, 10, 120, 1);
	expect_node(NODE(ans, 0, 1, 0, 0), "leaf", 10, 10, 120, 0);
	expect_node(NODE(ans, 1), "start_thread", 0, 10, 120, 1);
	expect_node(NODE(ans, 1, 0), "spinner", 10, 10, 120, 0);

	/* Below 10%: rec (8.33%) and start_thread go, with everything under them. */
	req.min_pct = 10;
	pruned = ask(s, T0 + 20 * SEC, 1000, false, &req);
	assert_int_equal(json_get_int(pruned, "nodes"), 9);
	assert_int_equal(json_get_int(pruned, "nodes_shown"), 4);
	assert_int_equal(json_object_array_length(rows_of(pruned)), 1);
	expect_node(NODE(pruned, 0), "main", 0, 110, 120, 1);
	expect_node(NODE(pruned, 0, 0), "work", 30, 100, 120, 2);

	/* Without inlines, hot's samples are work's own. */
	req = code_req(COMMAND_TREE);
	req.no_inline = true;
	noinl = ask(s, T0 + 20 * SEC, 1000, false, &req);
	assert_int_equal(json_get_int(noinl, "nodes"), 8);
	expect_node(NODE(noinl, 0, 0), "work", 80, 100, 120, 1);
	expect_node(NODE(noinl, 0, 0, 0), "[kernel]", 20, 20, 120, 0);

	req = code_req(COMMAND_TREE);
	req.tid = 101;
	t = ask(s, T0 + 20 * SEC, 1000, false, &req);
	assert_int_equal(json_get_int(t, "samples"), 10);
	expect_node(NODE(t, 0), "start_thread", 0, 10, 10, 1);
	req.tid = 999;
	expect_error(ask(s, T0 + 20 * SEC, 1000, false, &req), ERROR_NOT_FOUND);
}

/* 100 stacks of 1024 distinct frames need 102400 nodes: the coldest do not fit. */
static void test_tree_cap(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_json_ json_object *ans = NULL;
	FrameId *frames = calloc(STORE_STACK_MAX, sizeof(FrameId));
	Request req;
	ProcId p;

	(void)state;
	assert_non_null(frames);
	assert_int_equal(store_new(&s), 0);
	p = proc(s, 100, 0, T0 - SEC, "deep");
	assert_int_equal(store_window_open(s, T0, T0 + 10 * SEC, PERIOD), 0);
	for (int k = 0; k < 100; k++) {
		for (int i = 0; i < STORE_STACK_MAX; i++) {
			char name[32];

			snprintf(name, sizeof(name), "f%d_%d", k, i);
			frames[i] = frame(s, name, "deep", 0, (uint64_t)i);
		}
		/* Stack k: 1000 - k samples, so stack 0 is the hottest. */
		add(s, p, 100, stack(s, STORE_STACK_MAX, frames), false, 1000 - (uint32_t)k);
	}
	assert_int_equal(store_window_close(s), 0);
	free(frames);

	request_init(&req, COMMAND_TREE);
	req.pid = 100;
	req.min_pct = 1.05; /* the two hottest stacks: 1000 and 999 of 95050 samples */
	ans = ask(s, T0 + 20 * SEC, 0, true, &req);
	expect_ok(ans);
	assert_int_equal(json_get_int(ans, "nodes"), 100000);
	/* The 97 hottest fit (99328 nodes), the 98th in part; 903 + 902 + 901 samples lose
	 * their deepest frames. */
	assert_int_equal(json_get_int(ans, "truncated_samples"), 903 + 902 + 901);
	assert_int_equal(json_get_int(ans, "samples"), 95050);
	assert_int_equal(json_get_int(ans, "nodes_shown"), 2 * STORE_STACK_MAX);
	assert_int_equal(json_object_array_length(rows_of(ans)), 2);
	assert_string_equal(json_get_string(NODE(ans, 0), "function"), "f0_1023");
	assert_string_equal(json_get_string(NODE(ans, 1), "function"), "f1_1023");
}

/* ---- stacks ---- */

/* Frame name of stack i, position j (leaf first), of a stacks answer. */
static const char *stack_frame(json_object *answer, size_t i, size_t j, json_object **ret_frame)
{
	json_object *stacks, *frames, *idx, *f;

	assert_true(json_object_object_get_ex(answer, "stacks", &stacks));
	assert_true(json_object_object_get_ex(answer, "frames", &frames));
	assert_true(i < json_object_array_length(stacks));
	assert_true(
		json_object_object_get_ex(json_object_array_get_idx(stacks, i), "frames", &idx));
	assert_true(j < json_object_array_length(idx));
	f = json_object_array_get_idx(
		frames, (size_t)json_object_get_int64(json_object_array_get_idx(idx, j)));
	assert_non_null(f);
	if (ret_frame)
		*ret_frame = f;
	return json_get_string(f, "function");
}

static size_t stack_depth(json_object *answer, size_t i)
{
	json_object *stacks, *idx;

	assert_true(json_object_object_get_ex(answer, "stacks", &stacks));
	assert_true(
		json_object_object_get_ex(json_object_array_get_idx(stacks, i), "frames", &idx));
	return json_object_array_length(idx);
}

static int64_t stack_samples(json_object *answer, size_t i)
{
	json_object *stacks;

	assert_true(json_object_object_get_ex(answer, "stacks", &stacks));
	return json_get_int(json_object_array_get_idx(stacks, i), "samples");
}

static void test_stacks(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_json_ json_object *ans = NULL, *user = NULL, *noinl = NULL;
	json_object *frames, *stacks, *f;
	static const int64_t want[] = { 50, 30, 20, 10, 10 };
	Request req;
	Split x;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	code_build(s, &x);

	req = code_req(COMMAND_STACKS);
	ans = ask(s, T0 + 20 * SEC, 0, true, &req);
	expect_ok(ans);
	assert_int_equal(json_get_int(ans, "pid"), 100);
	assert_int_equal(json_get_int(ans, "samples"), 120);
	assert_int_equal(json_get_int(ans, "truncated_samples"), 0);
	assert_int_equal(json_get_int(ans, "period_ns"), PERIOD);
	assert_int_equal(json_get_int(ans, "start_ns"), T0);
	assert_int_equal(json_get_int(ans, "end_ns"), T0 + 10 * SEC);
	assert_true(json_object_object_get_ex(ans, "stacks", &stacks));
	assert_true(json_object_object_get_ex(ans, "frames", &frames));
	/* Every stack, hottest first; every frame once (13 frames in code_build). */
	assert_int_equal(json_object_array_length(stacks), 5);
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(stack_samples(ans, i), want[i]);
	assert_int_equal(json_object_array_length(frames), 13);
	/* Leaf first, with the line executing and the inline flag. */
	assert_int_equal(stack_depth(ans, 0), 3);
	assert_string_equal(stack_frame(ans, 0, 0, &f), "hot");
	assert_true(json_object_get_boolean(json_object_object_get(f, "inlined")));
	assert_string_equal(json_get_string(f, "file"), "prog.h");
	assert_int_equal(json_get_int(f, "line"), 5);
	assert_string_equal(stack_frame(ans, 0, 1, NULL), "work");
	assert_string_equal(stack_frame(ans, 0, 2, &f), "main");
	assert_int_equal(json_get_int(f, "line"), 10);
	/* main:10 is one frame, shared by the two hottest stacks. */
	assert_int_equal(
		json_object_get_int64(json_object_array_get_idx(
			json_object_object_get(json_object_array_get_idx(stacks, 0), "frames"), 2)),
		json_object_get_int64(json_object_array_get_idx(
			json_object_object_get(json_object_array_get_idx(stacks, 1), "frames"),
			1)));
	assert_string_equal(stack_frame(ans, 2, 0, &f), "kfunc");
	assert_true(json_object_get_boolean(json_object_object_get(f, "kernel")));

	/* The owner, unprivileged: the kernel frame is "[kernel]", nothing more. */
	user = ask(s, T0 + 20 * SEC, 1000, false, &req);
	expect_ok(user);
	assert_int_equal(json_get_int(user, "samples"), 120);
	assert_string_equal(stack_frame(user, 2, 0, &f), "[kernel]");
	assert_null(json_get_string(f, "file"));
	assert_false(strstr(json_object_to_json_string(user), "kfunc"));
	/* Someone else: denied, no data. */
	expect_error(ask(s, T0 + 20 * SEC, 2000, false, &req), ERROR_DENIED);
	/* Out of range: nothing found. */
	req.has_since = true;
	req.since_ns = 5 * SEC;
	expect_error(ask(s, T0 + 20 * SEC, 0, true, &req), ERROR_NOT_FOUND);

	/* Without inlines: hot's samples are work's. */
	req = code_req(COMMAND_STACKS);
	req.no_inline = true;
	noinl = ask(s, T0 + 20 * SEC, 0, true, &req);
	expect_ok(noinl);
	assert_int_equal(stack_depth(noinl, 0), 2);
	assert_string_equal(stack_frame(noinl, 0, 0, NULL), "work");
	assert_false(strstr(json_object_to_json_string(noinl), "\"hot\""));
}

/* Recursion keeps its depth; an unprivileged viewer's kernel frames merge into one; a stack
 * all inlined stands as its outermost frame under --no-inline, listed once, and stacks that
 * are the same without inlines are one; the period is
 * weighted by the samples of windows sampled at different frequencies. */
static void test_stacks_shapes(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_json_ json_object *ans = NULL, *user = NULL, *noinl = NULL;
	FrameId fib5, fib3, main9, k1, k2, in1, in2, in3;
	json_object *f;
	ProcId p;
	Request req;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	fib5 = frame_at(s, "fib", "prog.c", 5, 2, 0);
	fib3 = frame_at(s, "fib", "prog.c", 3, 2, 0);
	main9 = frame_at(s, "main", "prog.c", 9, 8, 0);
	k1 = frame_at(s, "k1", NULL, 0, 0, FRAME_KERNEL);
	k2 = frame_at(s, "k2", NULL, 0, 0, FRAME_KERNEL);
	in1 = frame_at(s, "in1", "prog.h", 1, 1, FRAME_INLINED);
	in2 = frame_at(s, "in2", "prog.h", 2, 2, FRAME_INLINED);
	in3 = frame_at(s, "in3", "prog.h", 3, 3, FRAME_INLINED);
	p = proc(s, 100, 1000, T0 - 100 * SEC, "prog");
	assert_int_equal(store_window_open(s, T0, T0 + 10 * SEC, PERIOD), 0);
	add(s, p, 100, STACK(s, fib3, fib5, fib5, fib5, fib5, main9), false, 40);
	add(s, p, 100, STACK(s, k1, k2, fib5, main9), true, 20);
	assert_int_equal(store_window_close(s), 0);
	/* restarted at twice the frequency */
	assert_int_equal(store_window_open(s, T0 + 10 * SEC, T0 + 20 * SEC, PERIOD / 2), 0);
	add(s, p, 100, STACK(s, in1, in3), false, 30);
	add(s, p, 100, STACK(s, in2, in3), false, 10);
	assert_int_equal(store_window_close(s), 0);

	req = code_req(COMMAND_STACKS);
	ans = ask(s, T0 + 30 * SEC, 0, true, &req);
	expect_ok(ans);
	assert_int_equal(json_get_int(ans, "samples"), 100);
	/* (60 x P + 40 x P/2) / 100 */
	assert_int_equal(json_get_int(ans, "period_ns"),
			 (60 * (int64_t)PERIOD + 20 * PERIOD) / 100);
	assert_int_equal(stack_samples(ans, 0), 40);
	assert_int_equal(stack_depth(ans, 0), 6);
	for (size_t i = 1; i < 5; i++)
		assert_string_equal(stack_frame(ans, 0, i, NULL), "fib");
	assert_int_equal(stack_depth(ans, 2), 4); /* privileged: both kernel frames */

	user = ask(s, T0 + 30 * SEC, 1000, false, &req);
	expect_ok(user);
	assert_int_equal(stack_depth(user, 0), 6);
	assert_int_equal(stack_depth(user, 2), 3);
	assert_string_equal(stack_frame(user, 2, 0, NULL), "[kernel]");
	assert_string_equal(stack_frame(user, 2, 1, NULL), "fib");

	/* The two stacks all inlined into in3 are one stack of in3 (40 samples, after the
	 * 40 of fib's by the order of the store's stacks). */
	req.no_inline = true;
	noinl = ask(s, T0 + 30 * SEC, 0, true, &req);
	expect_ok(noinl);
	assert_int_equal(json_object_array_length(json_object_object_get(noinl, "stacks")), 3);
	assert_int_equal(stack_samples(noinl, 0), 40);
	assert_int_equal(stack_depth(noinl, 0), 6);
	assert_int_equal(stack_samples(noinl, 1), 40);
	assert_int_equal(stack_depth(noinl, 1), 1);
	assert_string_equal(stack_frame(noinl, 1, 0, &f), "in3");
	assert_false(json_object_get_boolean(json_object_object_get(f, "inlined")));
	assert_int_equal(stack_samples(noinl, 2), 20);
	assert_int_equal(json_get_int(noinl, "truncated_samples"), 0);
	/* fib:3, fib:5, main:9, k1, k2 and in3 once */
	assert_int_equal(json_object_array_length(json_object_object_get(noinl, "frames")), 6);
}

/* More stacks than an answer lists: the coldest are counted as truncated. */
static void test_stacks_cap(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_json_ json_object *ans = NULL;
	json_object *stacks;
	FrameId deep[STORE_STACK_MAX];
	size_t n = 1100; /* 1100 stacks x 1024 frames > 2^20 references */
	ProcId p;
	Request req;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	p = proc(s, 100, 1000, T0 - 100 * SEC, "prog");
	for (size_t i = 0; i < STORE_STACK_MAX; i++)
		deep[i] = frame(s, "f", "prog", 0, 0x1000 + i);
	assert_int_equal(store_window_open(s, T0, T0 + 10 * SEC, PERIOD), 0);
	for (size_t i = 0; i < n; i++) {
		deep[0] = frame(s, "leaf", "prog", 0, 0x100000 + i);
		add(s, p, 100, stack(s, STORE_STACK_MAX, deep), false, (uint32_t)(i + 1));
	}
	assert_int_equal(store_window_close(s), 0);

	req = code_req(COMMAND_STACKS);
	ans = ask(s, T0 + 20 * SEC, 0, true, &req);
	expect_ok(ans);
	assert_true(json_object_object_get_ex(ans, "stacks", &stacks));
	/* 2^20 / 1024 = 1024 stacks, the hottest: 1100 down to 77. */
	assert_int_equal(json_object_array_length(stacks), 1024);
	assert_int_equal(stack_samples(ans, 0), 1100);
	assert_int_equal(stack_samples(ans, 1023), 77);
	assert_int_equal(json_get_int(ans, "truncated_samples"), 76 * 77 / 2);
	assert_int_equal(json_get_int(ans, "samples"), 1100 * 1101 / 2);
}

/* A stack of 1023 frames with 1000000 samples, the same with an inlined leaf with 1, and
 * fillers stacks of 1023 frames with 2, 3, ... samples. */
static Store *merge_store(size_t fillers)
{
	Store *s = NULL;
	FrameId deep[STORE_STACK_MAX];
	const size_t depth = STORE_STACK_MAX - 1;
	ProcId p;

	assert_int_equal(store_new(&s), 0);
	p = proc(s, 100, 1000, T0 - 100 * SEC, "prog");
	for (size_t i = 0; i < depth; i++)
		deep[i + 1] = frame(s, "f", "prog", 0, 0x1000 + i);
	deep[0] = frame(s, "in", "prog", FRAME_INLINED, 0x999);
	assert_int_equal(store_window_open(s, T0, T0 + 10 * SEC, PERIOD), 0);
	add(s, p, 100, stack(s, depth, deep + 1), false, 1000000);
	add(s, p, 100, stack(s, depth + 1, deep), false, 1);
	for (size_t i = 0; i < fillers; i++) {
		FrameId leaf = deep[1];

		deep[1] = frame(s, "leaf", "prog", 0, 0x100000 + i);
		add(s, p, 100, stack(s, depth, deep + 1), false, (uint32_t)(i + 2));
		deep[1] = leaf;
	}
	assert_int_equal(store_window_close(s), 0);
	return s;
}

/* Stacks that are one without inlines merge, hottest first, up to 2^22 frame references:
 * a cold stack past them is not merged into the hot one, it counts as truncated. */
static void test_stacks_merge_cap(void **state)
{
	_cleanup_(store_freep) Store *few = merge_store(0), *many = merge_store(4100);
	_cleanup_json_ json_object *merged = NULL, *ans = NULL;
	Request req = code_req(COMMAND_STACKS);

	(void)state;
	req.no_inline = true;
	merged = ask(few, T0 + 20 * SEC, 0, true, &req);
	assert_int_equal(stack_samples(merged, 0), 1000001);
	assert_int_equal(stack_depth(merged, 0), STORE_STACK_MAX - 1);
	assert_int_equal(json_get_int(merged, "truncated_samples"), 0);

	/* 4101 x 1023 references > 2^22: the merging stops before the coldest stack */
	ans = ask(many, T0 + 20 * SEC, 0, true, &req);
	expect_ok(ans);
	assert_int_equal(stack_samples(ans, 0), 1000000);
	assert_int_equal(json_get_int(ans, "samples"), 1000000 + 4101 * 4102 / 2);
	assert_true(json_get_int(ans, "truncated_samples") > 1);
}

/* Long names (C++): the answer's size, not its references, bounds it. */
static void test_stacks_cap_bytes(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_json_ json_object *ans = NULL;
	_cleanup_free_ char *name = malloc(4001);
	json_object *stacks;
	size_t n = 2000, listed;
	ProcId p;
	Request req;

	(void)state;
	assert_non_null(name);
	assert_int_equal(store_new(&s), 0);
	p = proc(s, 100, 1000, T0 - 100 * SEC, "prog");
	assert_int_equal(store_window_open(s, T0, T0 + 10 * SEC, PERIOD), 0);
	for (size_t i = 0; i < n; i++) {
		/* Quotes and control characters: escaped, they take up to 6 bytes each. */
		memset(name, i % 2 ? '"' : '\x01', 4000);
		snprintf(name, 16, "f%zu", i);
		name[strlen(name)] = 'x';
		name[4000] = '\0';
		add(s, p, 100, STACK(s, frame(s, name, "prog", 0, i)), false, (uint32_t)(i + 1));
	}
	assert_int_equal(store_window_close(s), 0);

	req = code_req(COMMAND_STACKS);
	ans = ask(s, T0 + 20 * SEC, 0, true, &req);
	expect_ok(ans);
	assert_true(json_object_object_get_ex(ans, "stacks", &stacks));
	listed = json_object_array_length(stacks);
	assert_true(listed > 100 && listed < n);
	assert_true(json_get_int(ans, "truncated_samples") > 0);
	assert_true(strlen(json_object_to_json_string_ext(ans, JSON_C_TO_STRING_PLAIN)) <
		    (16u << 20));
}

static void test_status_unsupported(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	QueryContext ctx = { .now_ns = T0 };
	json_object *answer = NULL;
	Request req;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	ctx.store = s;
	request_init(&req, COMMAND_STATUS);
	assert_int_equal(query_answer(&ctx, &req, &answer), -EOPNOTSUPP);
	assert_null(answer);
	/* An empty store: nothing in range. */
	req = top_req(0);
	expect_error(ask(s, T0, 0, true, &req), ERROR_NOT_FOUND);
	req = top_req(1);
	expect_error(ask(s, T0, 0, true, &req), ERROR_NOT_FOUND);
}

/*
 * For the selection step: a parent (pid 700) without samples of its own; a child (701) sampled
 * in the first window only; a child (702) sampled in the second, on two threads; someone else's
 * child (703). The windows have different periods, as after a restart with another --frequency.
 */
typedef struct Family {
	ProcId parent, early, late, foreign;
	StackId s1, s2;
} Family;

#define FAMILY_NOW (T0 + 20 * SEC)

static void family_build(Store *s, Family *f)
{
	StoreProc tmpl;
	Split x;

	split_build(s, &x);
	f->s1 = x.s1;
	f->s2 = x.s2;
	tmpl = (StoreProc){ .pid = 700, .ppid = 1, .uid = 1000, .start_ns = T0 - 50 * SEC };
	f->parent = proc_full(s, &tmpl, "sh", NULL);
	tmpl = (StoreProc){ .pid = 701, .ppid = 700, .uid = 1000, .start_ns = T0 - 40 * SEC };
	f->early = proc_full(s, &tmpl, "early", NULL);
	tmpl = (StoreProc){ .pid = 702, .ppid = 700, .uid = 1000, .start_ns = T0 - 30 * SEC };
	f->late = proc_full(s, &tmpl, "late", NULL);
	tmpl = (StoreProc){ .pid = 703, .ppid = 700, .uid = 2000, .start_ns = T0 - 20 * SEC };
	f->foreign = proc_full(s, &tmpl, "foreign", NULL);
	assert_int_equal(store_window_open(s, T0, T0 + 10 * SEC, PERIOD), 0);
	add(s, f->early, 701, f->s1, false, 30);
	assert_int_equal(store_window_close(s), 0);
	assert_int_equal(store_window_open(s, T0 + 10 * SEC, T0 + 20 * SEC, 2 * PERIOD), 0);
	add(s, f->late, 702, f->s2, true, 10);
	add(s, f->late, 7020, f->s1, false, 5);
	add(s, f->foreign, 703, f->s2, false, 4);
	assert_int_equal(store_window_close(s), 0);
}

static Request family_req(uint32_t pid, bool children, uint32_t tid, int64_t since_s)
{
	Request req = top_req(pid);

	req.children = children;
	req.tid = tid;
	req.has_since = since_s > 0;
	req.since_ns = (uint64_t)since_s * NSEC_PER_SEC;
	return req;
}

static void expect_selected(const Store *s, const Selection *sel, const ProcId *want, size_t n)
{
	size_t got = 0;

	for (ProcId id = 1; id < store_proc_id_limit(s); id++)
		got += sel->procs[id];
	assert_int_equal(got, n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(sel->procs[want[i]], 1);
}

/* Select req as uid 1000 (or as root): ok, or the error code it answers instead. */
static void select_as(const Store *s, const Request *req, bool privileged, SelectScope scope,
		      Selection *ret, json_object **ret_error)
{
	QueryContext ctx = { .store = s,
			     .now_ns = FAMILY_NOW,
			     .viewer = { .uid = 1000, .privileged = privileged } };

	assert_int_equal(query_select(&ctx, req, scope, ret, ret_error), 0);
}

static void test_select(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_(selection_done) Selection all = { 0 }, recent = { 0 }, known = { 0 };
	_cleanup_(selection_done) Selection thread = { 0 }, root = { 0 };
	_cleanup_free_ StackCount *order = NULL;
	Selection untouched = { .proc = 4242 };
	json_object *error = NULL;
	const char *message;
	ErrorCode code;
	Request req;
	size_t n;
	Family f;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	family_build(s, &f);

	/* The root needs no samples of its own; the other user's child is left out. */
	req = family_req(700, true, 0, 0);
	select_as(s, &req, false, SELECT_STACKS, &all, &error);
	assert_null(error);
	assert_int_equal(all.proc, f.parent);
	expect_selected(s, &all, (ProcId[]){ f.parent, f.early, f.late }, 3);
	assert_int_equal(all.range.first, 0);
	assert_int_equal(all.range.end, 2);
	assert_int_equal(all.range.elapsed_ns, 20 * SEC);
	assert_int_equal(all.total, 45);
	assert_int_equal(all.counts[f.s1], 35);
	assert_int_equal(all.counts[f.s2], 10);
	/* 30 samples of 10 ms and 15 of 20 ms: 600 ms in 45 samples. */
	assert_int_equal(all.mean_period_ns, (600 * NSEC_PER_MSEC + 22) / 45);
	assert_int_equal(selection_stacks_by_count(&all, &order, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(order[0].stack, f.s1);
	assert_int_equal(order[0].count, 35);
	assert_int_equal(order[1].stack, f.s2);

	/* The last 10 s: only the second window, and the child sampled there. */
	req = family_req(700, true, 0, 10);
	select_as(s, &req, false, SELECT_SAMPLED, &recent, &error);
	assert_null(error);
	assert_int_equal(recent.range.first, 1);
	assert_int_equal(recent.range.end, 2);
	assert_int_equal(recent.range.elapsed_ns, 10 * SEC);
	expect_selected(s, &recent, (ProcId[]){ f.parent, f.late }, 2);
	assert_null(recent.counts);
	/* time's scope: the whole family over every window, whatever the range. */
	select_as(s, &req, false, SELECT_KNOWN, &known, &error);
	assert_null(error);
	assert_int_equal(known.range.first, 0);
	assert_int_equal(known.range.end, 2);
	expect_selected(s, &known, (ProcId[]){ f.parent, f.early, f.late }, 3);

	/* One thread: its samples alone, at its window's period. */
	req = family_req(702, false, 7020, 0);
	select_as(s, &req, false, SELECT_STACKS, &thread, &error);
	assert_null(error);
	assert_int_equal(thread.total, 5);
	assert_int_equal(thread.counts[f.s1], 5);
	assert_int_equal(thread.counts[f.s2], 0);
	assert_int_equal(thread.mean_period_ns, 2 * PERIOD);

	/* Root sees the other user's child too. */
	req = family_req(700, true, 0, 0);
	select_as(s, &req, true, SELECT_STACKS, &root, &error);
	assert_null(error);
	expect_selected(s, &root, (ProcId[]){ f.parent, f.early, f.late, f.foreign }, 4);
	assert_int_equal(root.total, 49);

	/* What is answered instead leaves *ret alone. */
	req = family_req(702, false, 9999, 0);
	select_as(s, &req, false, SELECT_STACKS, &untouched, &error);
	assert_int_equal(answer_error_code(error, &code, &message), 0);
	assert_int_equal(code, ERROR_NOT_FOUND);
	assert_string_equal(message, "No samples for thread 9999 in range");
	json_object_put(error);
	assert_int_equal(untouched.proc, 4242);
	assert_null(untouched.procs);
	req = family_req(703, false, 0, 0);
	select_as(s, &req, false, SELECT_SAMPLED, &untouched, &error);
	assert_int_equal(answer_error_code(error, &code, &message), 0);
	assert_int_equal(code, ERROR_DENIED);
	json_object_put(error);
	assert_int_equal(untouched.proc, 4242);
}

/* Every answer over stacks selects the same samples, and answers the same when there are none
 * or the viewer may not see them; ps and time differ only by their scope. */
static void test_select_every_answer(void **state)
{
	static const Command commands[] = { COMMAND_TOP, COMMAND_TREE, COMMAND_LINES,
					    COMMAND_STACKS };
	static const struct {
		uint32_t pid;
		bool children;
		uint32_t tid;
		int64_t since_s;
		int64_t samples;
		ErrorCode code; /* when samples is 0 */
		const char *message;
	} cases[] = {
		{ 700, true, 0, 0, 45, 0, NULL },
		{ 700, true, 0, 10, 15, 0, NULL },
		{ 702, false, 7020, 0, 5, 0, NULL },
		{ 701, false, 0, 0, 30, 0, NULL },
		{ 701, false, 0, 10, 0, ERROR_NOT_FOUND, "No samples for pid 701 in range" },
		{ 700, false, 0, 0, 0, ERROR_NOT_FOUND, "No samples for pid 700 in range" },
		{ 702, false, 9999, 0, 0, ERROR_NOT_FOUND, "No samples for thread 9999 in range" },
		{ 703, false, 0, 0, 0, ERROR_DENIED, "Permission denied for pid 703" },
		{ 4242, false, 0, 0, 0, ERROR_NOT_FOUND, "No samples for pid 4242 in range" },
	};
	_cleanup_(store_freep) Store *s = NULL;
	Family f;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	family_build(s, &f);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		for (size_t c = 0; c < ARRAY_SIZE(commands); c++) {
			Request req = family_req(cases[i].pid, cases[i].children, cases[i].tid,
						 cases[i].since_s);
			_cleanup_json_ json_object *ans = NULL;
			const char *message;
			ErrorCode code;

			req.command = commands[c];
			ans = ask(s, FAMILY_NOW, 1000, false, &req);
			if (cases[i].samples) {
				expect_ok(ans);
				assert_int_equal(json_get_int(ans, "samples"), cases[i].samples);
				continue;
			}
			assert_int_equal(answer_error_code(ans, &code, &message), 0);
			assert_int_equal(code, cases[i].code);
			assert_string_equal(message, cases[i].message);
		}

	/* ps: the same processes, but no samples is an empty list, not an error. */
	{
		Request req = family_req(700, true, 0, 10);
		_cleanup_json_ json_object *ps = NULL, *t = NULL;

		req.command = COMMAND_PS;
		ps = ask(s, FAMILY_NOW, 1000, false, &req);
		assert_int_equal(json_object_array_length(rows_of(ps)), 1);
		assert_int_equal(json_get_int(row_named(ps, "comm", "late"), "samples"), 15);
		req = family_req(703, false, 0, 0);
		req.command = COMMAND_PS;
		expect_error(ask(s, FAMILY_NOW, 1000, false, &req), ERROR_DENIED);
		/* time: a process with no samples in range still has its life to tell. */
		req = family_req(701, false, 0, 10);
		req.command = COMMAND_TIME;
		t = ask(s, FAMILY_NOW, 1000, false, &req);
		expect_num(t, "sampled.samples", 30, 0);
		req = family_req(4242, false, 0, 0);
		req.command = COMMAND_TIME;
		expect_error(ask(s, FAMILY_NOW, 1000, false, &req), ERROR_NOT_FOUND);
	}
}

/* ---- Python frames (python-fixture.h) ---- */

static Request py_req(Command c, bool no_python)
{
	Request req;

	request_init(&req, c);
	req.pid = PY_PID;
	req.limit = REQUEST_LIMIT_MAX;
	req.min_pct = 0;
	req.no_python = no_python;
	return req;
}

static json_object *py_ask(const Store *s, const Request *req)
{
	json_object *answer = ask(s, T0 + 20 * SEC, PY_UID, false, req);

	expect_ok(answer);
	assert_true(json_object_get_boolean(json_object_object_get(answer, "python")) ==
		    !req->no_python);
	return answer;
}

static bool is_python(json_object *o)
{
	json_object *v;

	assert_true(json_object_object_get_ex(o, "python", &v));
	assert_true(json_object_is_type(v, json_type_boolean));
	return json_object_get_boolean(v);
}

/* The row of a function declared in file (top: "file" is the declaration's). */
static json_object *row_in_file(json_object *answer, const char *function, const char *file)
{
	json_object *rows = rows_of(answer);

	for (size_t i = 0; i < json_object_array_length(rows); i++) {
		json_object *r = json_object_array_get_idx(rows, i);

		if (streq_ptr(json_get_string(r, "function"), function) &&
		    streq_ptr(json_get_string(r, "file"), file))
			return r;
	}
	fail_msg("no row %s of %s in %s", function, file ? file : "(none)",
		 json_object_to_json_string(answer));
	return NULL;
}

static void expect_py_row(json_object *answer, const char *function, const char *file, int64_t self,
			  int64_t total, bool python)
{
	json_object *r = row_in_file(answer, function, file);

	assert_int_equal(json_get_int(r, "self_samples"), self);
	assert_int_equal(json_get_int(r, "total_samples"), total);
	assert_true(fabs(json_get_double(r, "self_pct") - (double)self) < 0.006); /* of 100 */
	assert_true(fabs(json_get_double(r, "total_pct") - (double)total) < 0.006);
	assert_true(is_python(r) == python);
	assert_string_equal(json_get_string(r, "module"), python ? "[python]" : PY_INTERP);
}

/* Self samples and shares over every row: all the samples, once. */
static void expect_self_sums(json_object *answer, int64_t samples)
{
	json_object *rows = rows_of(answer);
	int64_t self = 0;
	double pct = 0;

	for (size_t i = 0; i < json_object_array_length(rows); i++) {
		self += json_get_int(json_object_array_get_idx(rows, i), "self_samples");
		pct += json_get_double(json_object_array_get_idx(rows, i), "self_pct");
	}
	assert_int_equal(self, samples);
	assert_true(fabs(pct - 100.0) < 0.006 * (double)json_object_array_length(rows));
}

static bool has_row(json_object *answer, const char *function)
{
	json_object *rows = rows_of(answer);

	for (size_t i = 0; i < json_object_array_length(rows); i++)
		if (streq_ptr(json_get_string(json_object_array_get_idx(rows, i), "function"),
			      function))
			return true;
	return false;
}

/* ---- processes by their labels ---- */

/* A unit's processes: two workers of nginx.service (one restarted: three records), root's, and
 * one of user 1000 in the same unit; a process of another unit and one without a cgroup. */
static void labels_store(Store *s, ProcId ids[6])
{
	static const char *const cgroups[] = {
		"/system.slice/nginx.service",
		"/system.slice/nginx.service",
		"/system.slice/nginx.service",
		"/system.slice/nginx.service",
		"/system.slice/"
		"docker-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope",
		NULL,
	};
	static const char *const comms[] = { "nginx", "nginx", "nginx", "nginx", "redis", "bash" };
	StackId st = STACK(s, frame(s, "main", "prog", 0, 0x10));

	assert_int_equal(store_window_open(s, T0, T0 + 10 * SEC, PERIOD), 0);
	for (int i = 0; i < 6; i++) {
		ids[i] = proc(s, 200 + (uint32_t)i, i == 3 ? 1000 : 0, T0 + i * SEC, comms[i]);
		assert_int_equal(store_proc_set_cgroup(s, ids[i], cgroups[i]), 0);
		add(s, ids[i], 200 + (uint32_t)i, st, false, 10 * (uint32_t)(i + 1));
	}
	/* The restarted worker's first incarnation exited. */
	store_proc_mut(s, ids[1])->flags |= PROC_EXITED | PROC_ACCOUNTING;
	store_proc_mut(s, ids[1])->exit_ns = T0 + 3 * SEC;
	store_proc_mut(s, ids[1])->user_ns = 2 * NSEC_PER_SEC;
	store_proc_mut(s, ids[1])->sys_ns = NSEC_PER_SEC / 2;
	assert_int_equal(store_window_close(s), 0);
}

static Request match_req(Command c, const char *unit, const char *cgroup, const char *container,
			 const char *comm)
{
	Request req;

	request_init(&req, c);
	snprintf(req.match.unit, sizeof(req.match.unit), "%s", strempty(unit));
	snprintf(req.match.cgroup, sizeof(req.match.cgroup), "%s", strempty(cgroup));
	snprintf(req.match.container, sizeof(req.match.container), "%s", strempty(container));
	snprintf(req.match.comm, sizeof(req.match.comm), "%s", strempty(comm));
	req.limit = REQUEST_LIMIT_MAX;
	return req;
}

static void test_labels(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	json_object *a, *r;
	ProcId ids[6];
	Request req;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	labels_store(s, ids);
	assert_string_equal(store_string(s, store_proc(s, ids[4])->container),
			    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	assert_string_equal(store_string(s, store_proc(s, ids[0])->slice), "system.slice");
	assert_int_equal(store_proc(s, ids[5])->unit, 0);

	/* ps --unit: root sees the unit's four records, with their labels. */
	req = match_req(COMMAND_PS, "nginx.service", NULL, NULL, NULL);
	a = ask(s, T0 + 20 * SEC, 0, true, &req);
	expect_ok(a);
	assert_int_equal(json_object_array_length(rows_of(a)), 4);
	assert_int_equal(json_get_int(a, "processes"), 4);
	assert_int_equal(json_get_int(a, "hidden"), 0);
	r = json_object_array_get_idx(rows_of(a), 0);
	assert_string_equal(json_get_string(r, "unit"), "nginx.service");
	assert_string_equal(json_get_string(r, "cgroup"), "/system.slice/nginx.service");
	assert_null(json_object_object_get(r, "container"));
	json_object_put(a);
	/* systemctl's shorthand, globs, the slice as a cgroup prefix, a container id's start. */
	req = match_req(COMMAND_PS, "nginx", NULL, NULL, NULL);
	a = ask(s, T0 + 20 * SEC, 0, true, &req);
	assert_int_equal(json_get_int(a, "processes"), 4);
	json_object_put(a);
	req = match_req(COMMAND_PS, "ng*x.*", NULL, NULL, NULL);
	a = ask(s, T0 + 20 * SEC, 0, true, &req);
	assert_int_equal(json_get_int(a, "processes"), 4);
	json_object_put(a);
	req = match_req(COMMAND_PS, NULL, "/system.slice/", NULL, NULL);
	a = ask(s, T0 + 20 * SEC, 0, true, &req);
	assert_int_equal(json_get_int(a, "processes"), 5);
	json_object_put(a);
	req = match_req(COMMAND_PS, NULL, "/system.sli", NULL, NULL);
	expect_error(ask(s, T0 + 20 * SEC, 0, true, &req), ERROR_NOT_FOUND);
	req = match_req(COMMAND_PS, NULL, "/", NULL, NULL);
	a = ask(s, T0 + 20 * SEC, 0, true, &req);
	assert_int_equal(json_get_int(a, "processes"), 5); /* not the one without a cgroup */
	json_object_put(a);
	req = match_req(COMMAND_PS, NULL, NULL, "0123", NULL);
	a = ask(s, T0 + 20 * SEC, 0, true, &req);
	assert_int_equal(json_get_int(a, "processes"), 1);
	json_object_put(a);
	req = match_req(COMMAND_PS, NULL, NULL, "1123", NULL);
	expect_error(ask(s, T0 + 20 * SEC, 0, true, &req), ERROR_NOT_FOUND);
	/* All fields given must match. */
	req = match_req(COMMAND_PS, "nginx", NULL, NULL, "redis");
	expect_error(ask(s, T0 + 20 * SEC, 0, true, &req), ERROR_NOT_FOUND);
	req = match_req(COMMAND_PS, NULL, NULL, NULL, "[nr]*");
	a = ask(s, T0 + 20 * SEC, 0, true, &req);
	assert_int_equal(json_get_int(a, "processes"), 5);
	json_object_put(a);

	/* top sums the unit's samples: 10 + 20 + 30 + 40. */
	req = match_req(COMMAND_TOP, "nginx.service", NULL, NULL, NULL);
	a = ask(s, T0 + 20 * SEC, 0, true, &req);
	assert_int_equal(json_get_int(a, "samples"), 100);
	assert_null(json_object_object_get(a, "pid"));
	json_object_put(a);
	/* User 1000 sees its own process only, and that three are hidden. */
	a = ask(s, T0 + 20 * SEC, 1000, false, &req);
	expect_ok(a);
	assert_int_equal(json_get_int(a, "samples"), 40);
	assert_int_equal(json_get_int(a, "processes"), 1);
	assert_int_equal(json_get_int(a, "hidden"), 3);
	json_object_put(a);
	/* Of a unit with none of its processes: denied, not an empty answer. */
	req = match_req(COMMAND_TOP, "docker-*", NULL, NULL, NULL);
	expect_error(ask(s, T0 + 20 * SEC, 1000, false, &req), ERROR_DENIED);
}

static void test_labels_time(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	json_object *a, *o;
	ProcId ids[6];
	Request req;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	labels_store(s, ids);
	req = match_req(COMMAND_TIME, "nginx", NULL, NULL, NULL);
	a = ask(s, T0 + 20 * SEC, 0, true, &req);
	expect_ok(a);
	assert_int_equal(json_get_int(a, "processes"), 4);
	assert_int_equal(json_get_int(a, "total_rows"), 4);
	/* Real: 2 s for the exited one, and 20, 18, 17 s to now for the others. */
	assert_true(fabs(json_get_double(a, "real_s") - (20 + 2 + 18 + 17)) < 0.001);
	/* User: the kernel's 2 s for the exited one, samples x 10 ms for the others. */
	assert_true(fabs(json_get_double(a, "user_s") - (0.1 + 2 + 0.3 + 0.4)) < 0.001);
	assert_true(fabs(json_get_double(a, "sys_s") - 0.5) < 0.001);
	assert_string_equal(json_get_string(a, "accounting"), "mixed");
	/* From the first start (T0) to now: two are still running. */
	assert_true(fabs(json_get_double(a, "span_s") - 20) < 0.001);
	assert_true(json_object_object_get_ex(a, "sampled", &o));
	assert_int_equal(json_get_int(o, "samples"), 100);
	/* Rows oldest first. */
	assert_int_equal(json_get_int(json_object_array_get_idx(rows_of(a), 0), "pid"), 200);
	json_object_put(a);
	req.limit = 2;
	a = ask(s, T0 + 20 * SEC, 0, true, &req);
	assert_int_equal(json_object_array_length(rows_of(a)), 2);
	assert_int_equal(json_get_int(a, "total_rows"), 4);
	json_object_put(a);
}

static void test_ps_by(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	json_object *a, *r;
	ProcId ids[6];
	Request req;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	labels_store(s, ids);
	request_init(&req, COMMAND_PS);
	req.by = GROUP_UNIT;
	a = ask(s, T0 + 20 * SEC, 0, true, &req);
	expect_ok(a);
	/* nginx.service (100 samples), the docker scope (50), none (60): by CPU time. */
	assert_int_equal(json_get_int(a, "total_rows"), 3);
	r = json_object_array_get_idx(rows_of(a), 0);
	assert_string_equal(json_get_string(r, "unit"), "nginx.service");
	assert_int_equal(json_get_int(r, "processes"), 4);
	assert_int_equal(json_get_int(r, "samples"), 100);
	/* 1 s of CPU in the 10 s window: 10 %. */
	assert_true(fabs(json_get_double(r, "cpu_pct") - 10) < 0.01);
	r = json_object_array_get_idx(rows_of(a), 1);
	assert_null(json_object_object_get(r, "unit"));
	assert_int_equal(json_get_int(r, "samples"), 60);
	json_object_put(a);
	req.by = GROUP_COMM;
	req.sort = SORT_SAMPLES;
	a = ask(s, T0 + 20 * SEC, 1000, false, &req);
	/* User 1000: its one nginx process. */
	assert_int_equal(json_get_int(a, "total_rows"), 1);
	assert_int_equal(json_get_int(json_object_array_get_idx(rows_of(a), 0), "processes"), 1);
	json_object_put(a);
	req.by = GROUP_CONTAINER;
	a = ask(s, T0 + 20 * SEC, 0, true, &req);
	assert_int_equal(json_get_int(a, "total_rows"), 2);
	json_object_put(a);
}

static void test_python_top(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_json_ json_object *py = NULL, *native = NULL;
	Request req;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	py_fixture_build(s, T0, PERIOD, true);

	/* Python functions replace the evaluation function; same-named functions stay apart:
	 * main in run.py and the interpreter's main, <module> of each file. */
	req = py_req(COMMAND_TOP, false);
	py = py_ask(s, &req);
	assert_int_equal(json_get_int(py, "samples"), 100);
	assert_int_equal(json_object_array_length(rows_of(py)), 12);
	expect_py_row(py, "long_richcompare", "Objects/longobject.c", 40, 40, false);
	expect_py_row(py, "Worker.parse", PY_WORKER, 30, 70, true);
	assert_int_equal(json_get_int(row_in_file(py, "Worker.parse", PY_WORKER), "line"), 10);
	expect_py_row(py, "PyObject_Malloc", "Objects/obmalloc.c", 20, 20, false);
	expect_py_row(py, "[python]", NULL, 10, 10, true);
	expect_py_row(py, "list_contains", "Objects/listobject.c", 0, 40, false);
	expect_py_row(py, "main", PY_RUN, 0, 70, true);
	expect_py_row(py, "main", "Programs/python.c", 0, 100, false);
	expect_py_row(py, "<module>", PY_RUN, 0, 20, true);
	expect_py_row(py, "<module>", PY_WORKER, 0, 20, true);
	expect_py_row(py, "builtin_exec", "Python/bltinmodule.c", 0, 20, false);
	expect_py_row(py, "PyEval_EvalCode", "Python/ceval.c", 0, 100, false);
	assert_false(has_row(py, "_PyEval_EvalFrameDefault"));
	expect_self_sums(py, 100);
	/* Hottest first: long_richcompare, Worker.parse, PyObject_Malloc, [python]. */
	assert_string_equal(row_function(py, 1), "Worker.parse");
	assert_string_equal(row_function(py, 3), "[python]");

	/* Without Python: the interpreter's frames, each call of it once per stack. */
	req = py_req(COMMAND_TOP, true);
	native = py_ask(s, &req);
	assert_int_equal(json_object_array_length(rows_of(native)), 8);
	expect_py_row(native, "_PyEval_EvalFrameDefault", "Python/ceval.c", 40, 100, false);
	expect_py_row(native, "long_richcompare", "Objects/longobject.c", 40, 40, false);
	expect_py_row(native, "main", "Programs/python.c", 0, 100, false);
	assert_false(has_row(native, "Worker.parse"));
	assert_false(has_row(native, "[python]"));
	assert_null(strstr(json_object_to_json_string(native), "\"python\":true"));
	expect_self_sums(native, 100);
}

/* Self samples over a tree's nodes, and their shares. */
static void tree_self_sums(json_object *nodes, int64_t *self, double *pct, size_t *n)
{
	for (size_t i = 0; i < json_object_array_length(nodes); i++) {
		json_object *node = json_object_array_get_idx(nodes, i), *children;

		*self += json_get_int(node, "self_samples");
		*pct += json_get_double(node, "self_pct");
		(*n)++;
		if (json_object_object_get_ex(node, "children", &children))
			tree_self_sums(children, self, pct, n);
	}
}

static void expect_tree_self_sums(json_object *answer, int64_t samples)
{
	int64_t self = 0;
	double pct = 0;
	size_t n = 0;

	tree_self_sums(rows_of(answer), &self, &pct, &n);
	assert_int_equal(self, samples);
	assert_true(fabs(pct - 100.0) < 0.006 * (double)n);
}

static void test_python_tree(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_json_ json_object *py = NULL, *native = NULL;
	json_object *n;
	Request req;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	py_fixture_build(s, T0, PERIOD, true);

	req = py_req(COMMAND_TREE, false);
	py = py_ask(s, &req);
	assert_int_equal(json_get_int(py, "nodes"), 12);
	expect_node(NODE(py, 0), "__libc_start_main", 0, 100, 100, 1);
	expect_node(NODE(py, 0, 0), "main", 0, 100, 100, 1);
	assert_false(is_python(NODE(py, 0, 0)));
	expect_node(NODE(py, 0, 0, 0), "PyEval_EvalCode", 0, 100, 100, 3);
	/* The Python functions are the callees of what called the evaluation function. */
	n = NODE(py, 0, 0, 0, 0);
	expect_node(n, "main", 0, 70, 100, 1);
	assert_true(is_python(n));
	assert_string_equal(json_get_string(n, "file"), PY_RUN);
	assert_int_equal(json_get_int(n, "line"), 3);
	expect_node(NODE(py, 0, 0, 0, 0, 0), "Worker.parse", 30, 70, 100, 1);
	expect_node(NODE(py, 0, 0, 0, 0, 0, 0), "list_contains", 0, 40, 100, 1);
	assert_false(is_python(NODE(py, 0, 0, 0, 0, 0, 0)));
	expect_node(NODE(py, 0, 0, 0, 0, 0, 0, 0), "long_richcompare", 40, 40, 100, 0);
	/* Python, C, Python again: exec() of another module. */
	n = NODE(py, 0, 0, 0, 1);
	expect_node(n, "<module>", 0, 20, 100, 1);
	assert_string_equal(json_get_string(n, "file"), PY_RUN);
	expect_node(NODE(py, 0, 0, 0, 1, 0), "builtin_exec", 0, 20, 100, 1);
	n = NODE(py, 0, 0, 0, 1, 0, 0);
	expect_node(n, "<module>", 0, 20, 100, 1);
	assert_string_equal(json_get_string(n, "file"), PY_WORKER);
	expect_node(NODE(py, 0, 0, 0, 1, 0, 0, 0), "PyObject_Malloc", 20, 20, 100, 0);
	n = NODE(py, 0, 0, 0, 2);
	expect_node(n, "[python]", 10, 10, 100, 0);
	assert_true(is_python(n));
	assert_string_equal(json_get_string(n, "module"), "[python]");
	assert_null(strstr(json_object_to_json_string(py), "_PyEval_EvalFrameDefault"));
	expect_tree_self_sums(py, 100);

	req = py_req(COMMAND_TREE, true);
	native = py_ask(s, &req);
	assert_int_equal(json_get_int(native, "nodes"), 9);
	n = NODE(native, 0, 0, 0, 0);
	expect_node(n, "_PyEval_EvalFrameDefault", 40, 100, 100, 2);
	assert_false(is_python(n));
	expect_node(NODE(native, 0, 0, 0, 0, 0), "list_contains", 0, 40, 100, 1);
	expect_node(NODE(native, 0, 0, 0, 0, 1), "builtin_exec", 0, 20, 100, 1);
	expect_node(NODE(native, 0, 0, 0, 0, 1, 0), "_PyEval_EvalFrameDefault", 0, 20, 100, 1);
	assert_null(strstr(json_object_to_json_string(native), "[python]"));
	expect_tree_self_sums(native, 100);
}

static void test_python_lines(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_json_ json_object *py = NULL, *parse = NULL, *mod = NULL, *native = NULL,
				   *eval = NULL;
	Request req;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	py_fixture_build(s, T0, PERIOD, true);

	/* Each sample on its leaf's line: a Python line where Python code was the leaf. */
	req = py_req(COMMAND_LINES, false);
	py = py_ask(s, &req);
	assert_int_equal(json_object_array_length(rows_of(py)), 4);
	expect_line(py, 0, "Objects/longobject.c", 3000, "long_richcompare", 40, 40.0);
	expect_line(py, 1, PY_WORKER, 14, "Worker.parse", 30, 30.0);
	assert_true(is_python(json_object_array_get_idx(rows_of(py), 1)));
	assert_string_equal(json_get_string(json_object_array_get_idx(rows_of(py), 1), "module"),
			    "[python]");
	expect_line(py, 2, "Objects/obmalloc.c", 700, "PyObject_Malloc", 20, 20.0);
	expect_line(py, 3, NULL, 0, "[python]", 10, 10.0);
	assert_true(is_python(json_object_array_get_idx(rows_of(py), 3)));
	assert_false(is_python(json_object_array_get_idx(rows_of(py), 0)));
	expect_self_sums(py, 100);

	/* A Python function by its qualified name: its lines, executing or calling. */
	strcpy(req.function, "Worker.parse");
	parse = py_ask(s, &req);
	assert_int_equal(json_get_int(parse, "function_samples"), 70);
	assert_int_equal(json_object_array_length(rows_of(parse)), 2);
	expect_fline(parse, 0, PY_WORKER, 12, "Worker.parse", 0, 40, 100.0 * 40 / 70);
	expect_fline(parse, 1, PY_WORKER, 14, "Worker.parse", 30, 0, 100.0 * 30 / 70);
	/* The innermost <module>: worker.py's, under exec() from run.py's. */
	strcpy(req.function, "<module>");
	mod = py_ask(s, &req);
	assert_int_equal(json_get_int(mod, "function_samples"), 20);
	assert_int_equal(json_object_array_length(rows_of(mod)), 1);
	expect_fline(mod, 0, PY_WORKER, 30, "<module>", 0, 20, 100.0);
	/* The evaluation function is not there to name. */
	strcpy(req.function, "_PyEval_EvalFrameDefault");
	expect_error(ask(s, T0 + 20 * SEC, PY_UID, false, &req), ERROR_NOT_FOUND);

	/* Without Python: the evaluation function's lines, and no Python function. */
	req = py_req(COMMAND_LINES, true);
	native = py_ask(s, &req);
	assert_int_equal(json_object_array_length(rows_of(native)), 3);
	expect_line(native, 0, "Python/ceval.c", 1200, "_PyEval_EvalFrameDefault", 40, 40.0);
	expect_line(native, 1, "Objects/longobject.c", 3000, "long_richcompare", 40, 40.0);
	expect_line(native, 2, "Objects/obmalloc.c", 700, "PyObject_Malloc", 20, 20.0);
	expect_self_sums(native, 100);
	strcpy(req.function, "Worker.parse");
	expect_error(ask(s, T0 + 20 * SEC, PY_UID, false, &req), ERROR_NOT_FOUND);
	strcpy(req.function, "_PyEval_EvalFrameDefault");
	eval = py_ask(s, &req);
	assert_int_equal(json_get_int(eval, "function_samples"), 100);
	/* The innermost call: ceval.c:1300 under exec(), 1200 everywhere else. */
	expect_fline(eval, 0, "Python/ceval.c", 1200, "_PyEval_EvalFrameDefault", 40, 40, 80.0);
	expect_fline(eval, 1, "Python/ceval.c", 1300, "_PyEval_EvalFrameDefault", 0, 20, 20.0);
}

/* The functions of stack i of a stacks answer, leaf first, joined by ';'. */
static void stack_names(json_object *answer, size_t i, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t j = 0; j < stack_depth(answer, i); j++)
		used += (size_t)snprintf(buf + used, len - MIN(used, len), "%s%s", j ? ";" : "",
					 stack_frame(answer, i, j, NULL));
	assert_true(used < len);
}

static void test_python_stacks(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_json_ json_object *py = NULL, *native = NULL;
	json_object *f;
	char names[512];
	Request req;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	py_fixture_build(s, T0, PERIOD, true);

	req = py_req(COMMAND_STACKS, false);
	py = py_ask(s, &req);
	assert_int_equal(stack_samples(py, 0), 40);
	stack_names(py, 0, names, sizeof(names));
	assert_string_equal(names, "long_richcompare;list_contains;Worker.parse;main;"
				   "PyEval_EvalCode;main;__libc_start_main");
	assert_string_equal(stack_frame(py, 0, 2, &f), "Worker.parse");
	assert_true(is_python(f));
	assert_string_equal(json_get_string(f, "module"), "[python]");
	assert_string_equal(json_get_string(f, "file"), PY_WORKER);
	assert_int_equal(json_get_int(f, "line"), 12);
	assert_int_equal(json_get_int(f, "start_line"), 10);
	assert_false(json_object_get_boolean(json_object_object_get(f, "inlined")));
	stack_frame(py, 0, 1, &f);
	assert_false(is_python(f));
	assert_false(json_object_object_get_ex(f, "start_line", NULL));
	stack_names(py, 1, names, sizeof(names));
	assert_string_equal(names, "Worker.parse;main;PyEval_EvalCode;main;__libc_start_main");
	stack_names(py, 2, names, sizeof(names));
	assert_string_equal(names, "PyObject_Malloc;<module>;builtin_exec;<module>;"
				   "PyEval_EvalCode;main;__libc_start_main");
	stack_names(py, 3, names, sizeof(names));
	assert_string_equal(names, "[python];PyEval_EvalCode;main;__libc_start_main");
	assert_string_equal(stack_frame(py, 3, 0, &f), "[python]");
	assert_true(is_python(f));
	assert_null(json_get_string(f, "file"));
	assert_false(json_object_object_get_ex(f, "start_line", NULL));
	assert_null(strstr(json_object_to_json_string(py), "_PyEval_EvalFrameDefault"));

	req = py_req(COMMAND_STACKS, true);
	native = py_ask(s, &req);
	stack_names(native, 0, names, sizeof(names));
	assert_string_equal(names, "long_richcompare;list_contains;_PyEval_EvalFrameDefault;"
				   "PyEval_EvalCode;main;__libc_start_main");
	stack_names(native, 2, names, sizeof(names));
	assert_string_equal(names, "PyObject_Malloc;_PyEval_EvalFrameDefault;builtin_exec;"
				   "_PyEval_EvalFrameDefault;PyEval_EvalCode;main;"
				   "__libc_start_main");
	assert_null(strstr(json_object_to_json_string(native), "\"python\":true"));
}

/* Stacks that differ only in the line of the evaluation function are one with Python frames
 * shown, two without. */
static void test_python_stacks_merge(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_json_ json_object *py = NULL, *native = NULL;
	FrameId eval2, parse14, main_py, evalcode, main_c, libc;
	Request req;
	ProcId p;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	p = py_fixture_build(s, T0, PERIOD, true);
	eval2 = py_fixture_frame(s, PYF_EVAL2, true);
	parse14 = py_fixture_frame(s, PYF_PARSE14, true);
	main_py = py_fixture_frame(s, PYF_MAIN_PY, true);
	evalcode = py_fixture_frame(s, PYF_EVALCODE, true);
	main_c = py_fixture_frame(s, PYF_MAIN_C, true);
	libc = py_fixture_frame(s, PYF_LIBC, true);
	assert_int_equal(store_window_open(s, T0 + 10 * SEC, T0 + 20 * SEC, PERIOD), 0);
	add(s, p, PY_PID, STACK(s, parse14, main_py, eval2, evalcode, main_c, libc), false, 25);
	assert_int_equal(store_window_close(s), 0);

	req = py_req(COMMAND_STACKS, false);
	py = py_ask(s, &req);
	assert_int_equal(json_get_int(py, "samples"), 125);
	assert_int_equal(json_object_array_length(json_object_object_get(py, "stacks")), 4);
	/* Worker.parse:14's 30 and 25 samples, now the hottest */
	assert_int_equal(stack_samples(py, 0), 55);
	assert_string_equal(stack_frame(py, 0, 0, NULL), "Worker.parse");
	assert_int_equal(stack_samples(py, 1), 40);
	assert_int_equal(json_get_int(py, "truncated_samples"), 0);

	req = py_req(COMMAND_STACKS, true);
	native = py_ask(s, &req);
	assert_int_equal(json_object_array_length(json_object_object_get(native, "stacks")), 4);
	/* _PyEval_EvalFrameDefault:1200 of Worker.parse:14 and of [python], then :1300 */
	assert_int_equal(stack_samples(native, 0), 40);
	assert_int_equal(stack_samples(native, 1), 40);
	assert_int_equal(stack_samples(native, 2), 25);
	assert_int_equal(stack_depth(native, 2), 4);
	assert_int_equal(stack_samples(native, 3), 20);
}

/* Fails with where two texts part (cmocka cuts long strings short). */
static void expect_same_text(const char *a, const char *b)
{
	size_t i = 0;

	while (a[i] && a[i] == b[i])
		i++;
	if (a[i] != b[i])
		fail_msg("texts part at byte %zu: ...%.120s\n  vs ...%.120s", i,
			 a + (i > 60 ? i - 60 : 0), b + (i > 60 ? i - 60 : 0));
}

/* Without Python, every answer is the one the same process gets without Python frames stored
 * at all: byte for byte. */
static void test_python_off_is_native(void **state)
{
	static const Command commands[] = { COMMAND_TOP, COMMAND_TREE, COMMAND_LINES,
					    COMMAND_STACKS };
	_cleanup_(store_freep) Store *s = NULL, *plain = NULL;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	assert_int_equal(store_new(&plain), 0);
	py_fixture_build(s, T0, PERIOD, true);
	py_fixture_build(plain, T0, PERIOD, false);
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		for (int no_inline = 0; no_inline < 2; no_inline++) {
			_cleanup_json_ json_object *a = NULL, *b = NULL, *c = NULL;
			Request req = py_req(commands[i], true);

			req.no_inline = no_inline;
			a = py_ask(s, &req);
			b = py_ask(plain, &req);
			expect_same_text(json_object_to_json_string(a),
					 json_object_to_json_string(b));
			/* and the plain process looks the same with Python frames shown */
			req.no_python = false;
			c = py_ask(plain, &req);
			assert_int_equal(json_get_int(c, "samples"), 100);
			assert_true(strlen(json_object_to_json_string(b)) ==
				    strlen(json_object_to_json_string(c)) + 1); /* false, true */
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_top_split),
		cmocka_unit_test(test_top_row_with_file),
		cmocka_unit_test(test_top_by),
		cmocka_unit_test(test_top_faults),
		cmocka_unit_test(test_stacks),
		cmocka_unit_test(test_stacks_shapes),
		cmocka_unit_test(test_stacks_cap),
		cmocka_unit_test(test_stacks_merge_cap),
		cmocka_unit_test(test_stacks_cap_bytes),
		cmocka_unit_test(test_top_order_limit),
		cmocka_unit_test(test_top_recursion_and_tid),
		cmocka_unit_test(test_top_ranges),
		cmocka_unit_test(test_top_incarnations),
		cmocka_unit_test(test_access),
		cmocka_unit_test(test_access_idle),
		cmocka_unit_test(test_access_incarnations),
		cmocka_unit_test(test_unresolved),
		cmocka_unit_test(test_visibility_rule),
		cmocka_unit_test(test_private_proc),
		cmocka_unit_test(test_ps),
		cmocka_unit_test(test_ps_alive),
		cmocka_unit_test(test_range_lost),
		cmocka_unit_test(test_stacks_life),
		cmocka_unit_test(test_ps_sort),
		cmocka_unit_test(test_time),
		cmocka_unit_test(test_labels),
		cmocka_unit_test(test_labels_time),
		cmocka_unit_test(test_ps_by),
		cmocka_unit_test(test_mem),
		cmocka_unit_test(test_mem_time_cut),
		cmocka_unit_test(test_start_time),
		cmocka_unit_test(test_children),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_status_unsupported),
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_lines_function),
		cmocka_unit_test(test_tree),
		cmocka_unit_test(test_tree_cap),
		cmocka_unit_test(test_select),
		cmocka_unit_test(test_select_every_answer),
		cmocka_unit_test(test_python_top),
		cmocka_unit_test(test_python_tree),
		cmocka_unit_test(test_python_lines),
		cmocka_unit_test(test_python_stacks),
		cmocka_unit_test(test_python_stacks_merge),
		cmocka_unit_test(test_python_off_is_native),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
