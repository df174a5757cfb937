/* SPDX-License-Identifier: MIT */
/* The stacks answer as a Profile: a real answer of the query engine parses whole; malformed
 * answers (they may come from a hostile state dir or another version) are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "base/json-util.h"
#include "base/macro.h"
#include "profile-fixture.h"
#include "export/profile.h"
#include "query/query.h"

#define SEC NSEC_PER_SEC
#define T0 (1700000000 * SEC)

static StrId str(Store *s, const char *v)
{
	StrId id;

	assert_int_equal(store_intern_string(s, v, &id), 0);
	return id;
}

static FrameId frame(Store *s, const char *fn, const char *file, uint32_t line, uint32_t flags)
{
	StoreFrame f = { .flags = flags, .line = line, .address = line };
	FrameId id;

	f.function = str(s, fn);
	f.module = str(s, flags & FRAME_KERNEL ? "[kernel.kallsyms]" : "prog");
	f.file = file ? str(s, file) : 0;
	assert_int_equal(store_intern_frame(s, &f, &id), 0);
	return id;
}

/* main:10 -> work:20 -> hot:5 (inlined) 60; main:11 -> kfunc (kernel) 40. */
static json_object *answer_of_store(void)
{
	_cleanup_(store_freep) Store *s = NULL;
	FrameId main10, main11, work, hot, kfunc, a[3];
	StoreProc p = { .pid = 100, .ppid = 1, .start_ns = T0 - SEC, .start_boot_ns = 1 };
	QueryContext ctx = { .now_ns = T0 + 20 * SEC, .viewer.privileged = true };
	json_object *answer = NULL;
	StackId st;
	ProcId id;
	Request req;

	assert_int_equal(store_new(&s), 0);
	main10 = frame(s, "main", "prog.c", 10, 0);
	main11 = frame(s, "main", "prog.c", 11, 0);
	work = frame(s, "work", "prog.c", 20, 0);
	hot = frame(s, "hot", "prog.h", 5, FRAME_INLINED);
	kfunc = frame(s, "kfunc", NULL, 0, FRAME_KERNEL);
	p.comm = str(s, "prog");
	assert_int_equal(store_proc_add(s, &p, &id), 0);
	assert_int_equal(store_window_open(s, T0, T0 + 10 * SEC, 10101010), 0);
	a[0] = hot, a[1] = work, a[2] = main10;
	assert_int_equal(store_intern_stack(s, a, 3, &st), 0);
	assert_int_equal(store_window_add(s, id, 100, 0, st, false, 60), 0);
	a[0] = kfunc, a[1] = main11;
	assert_int_equal(store_intern_stack(s, a, 2, &st), 0);
	assert_int_equal(store_window_add(s, id, 100, 0, st, true, 40), 0);
	assert_int_equal(store_window_close(s), 0);

	ctx.store = s;
	request_init(&req, COMMAND_STACKS);
	req.pid = 100;
	assert_int_equal(query_answer(&ctx, &req, &answer), 0);
	assert_non_null(answer);
	return answer;
}

static void test_real_answer(void **state)
{
	_cleanup_json_ json_object *answer = answer_of_store();
	_cleanup_(profile_freep) Profile *p = NULL;
	char *error = NULL;
	const ProfileStack *s;

	(void)state;
	assert_int_equal(profile_from_json(answer, &p, &error), 0);
	assert_null(error);
	assert_int_equal(p->pid, 100);
	assert_string_equal(p->comm, "prog");
	assert_int_equal(p->samples, 100);
	assert_int_equal(p->truncated_samples, 0);
	assert_int_equal(p->period_ns, 10101010);
	assert_int_equal(p->start_ns, T0);
	assert_int_equal(p->end_ns, T0 + 10 * SEC);
	assert_int_equal(p->n_frames, 5);
	assert_int_equal(p->n_stacks, 2);
	s = &p->stacks[0];
	assert_int_equal(s->samples, 60);
	assert_int_equal(s->n_frames, 3);
	assert_string_equal(p->frames[s->frames[0]].function, "hot");
	assert_true(p->frames[s->frames[0]].inlined);
	assert_string_equal(p->frames[s->frames[0]].file, "prog.h");
	assert_int_equal(p->frames[s->frames[0]].line, 5);
	assert_string_equal(p->frames[s->frames[2]].function, "main");
	assert_string_equal(p->frames[s->frames[2]].module, "prog");
	s = &p->stacks[1];
	assert_int_equal(s->samples, 40);
	assert_true(p->frames[s->frames[0]].kernel);
	assert_null(p->frames[s->frames[0]].file);
	assert_int_equal(p->frames[s->frames[0]].line, 0);
	/* no Python here: no frame is, none has a start line */
	for (size_t i = 0; i < p->n_frames; i++)
		assert_true(!p->frames[i].python && p->frames[i].start_line == 0);
}

/* The Python fixture's answer: Python functions with their first line. */
static void test_python_answer(void **state)
{
	_cleanup_(profile_freep) Profile *p = fixture_profile_of(fixture_python_answer);

	(void)state;
	assert_int_equal(p->n_frames, 9);
	assert_true(p->frames[2].python);
	assert_string_equal(p->frames[2].function, "Worker.parse");
	assert_string_equal(p->frames[2].module, "[python]");
	assert_int_equal(p->frames[2].line, 12);
	assert_int_equal(p->frames[2].start_line, 10);
	assert_false(p->frames[0].python); /* "python": false */
	assert_false(p->frames[1].python); /* absent */
	assert_true(p->frames[8].python);
	assert_null(p->frames[8].file);
	assert_int_equal(p->frames[8].start_line, 0);
}

/* Applies a change to a real answer; the result must be refused with a message. */
static void expect_refused(const char *what, void (*change)(json_object *answer))
{
	_cleanup_json_ json_object *answer = answer_of_store();
	Profile *p = NULL;
	char *error = NULL;

	change(answer);
	if (profile_from_json(answer, &p, &error) != -EBADMSG)
		fail_msg("%s: accepted", what);
	assert_null(p);
	assert_non_null(error);
	free(error);
}

static json_object *stack0(json_object *answer)
{
	return json_object_array_get_idx(json_object_object_get(answer, "stacks"), 0);
}

static void index_out_of_range(json_object *a)
{
	json_object_array_put_idx(json_object_object_get(stack0(a), "frames"), 0,
				  json_object_new_int64(5));
}

static void index_negative(json_object *a)
{
	json_object_array_put_idx(json_object_object_get(stack0(a), "frames"), 0,
				  json_object_new_int64(-1));
}

static void index_string(json_object *a)
{
	json_object_array_put_idx(json_object_object_get(stack0(a), "frames"), 1,
				  json_object_new_string("1"));
}

static void sum_mismatch(json_object *a)
{
	json_object_object_add(stack0(a), "samples", json_object_new_int64(61));
}

static void zero_samples(json_object *a)
{
	json_object_object_add(stack0(a), "samples", json_object_new_int64(0));
}

static void empty_stack(json_object *a)
{
	json_object_object_add(stack0(a), "frames", json_object_new_array());
}

static void no_frames(json_object *a)
{
	json_object_object_del(a, "frames");
}

static void frame_not_object(json_object *a)
{
	json_object_array_put_idx(json_object_object_get(a, "frames"), 0, json_object_new_int(3));
}

static void function_missing(json_object *a)
{
	json_object_object_del(json_object_array_get_idx(json_object_object_get(a, "frames"), 1),
			       "function");
}

static void line_negative(json_object *a)
{
	json_object_object_add(json_object_array_get_idx(json_object_object_get(a, "frames"), 1),
			       "line", json_object_new_int64(-3));
}

static void start_line_string(json_object *a)
{
	json_object_object_add(json_object_array_get_idx(json_object_object_get(a, "frames"), 1),
			       "start_line", json_object_new_string("10"));
}

static void start_line_huge(json_object *a)
{
	json_object_object_add(json_object_array_get_idx(json_object_object_get(a, "frames"), 1),
			       "start_line", json_object_new_int64(1LL << 32));
}

static void pid_huge(json_object *a)
{
	json_object_object_add(a, "pid", json_object_new_int64(1LL << 40));
}

static void range_backwards(json_object *a)
{
	json_object_object_add(a, "end_ns", json_object_new_int64(T0 - 1));
}

static void period_missing(json_object *a)
{
	json_object_object_del(a, "period_ns");
}

static void test_malformed(void **state)
{
	(void)state;
	expect_refused("a frame index past the table", index_out_of_range);
	expect_refused("a negative frame index", index_negative);
	expect_refused("a frame index as a string", index_string);
	expect_refused("stacks summing to more than the samples", sum_mismatch);
	expect_refused("a stack of no samples", zero_samples);
	expect_refused("a stack of no frames", empty_stack);
	expect_refused("no frame table", no_frames);
	expect_refused("a frame that is not an object", frame_not_object);
	expect_refused("a frame without a function", function_missing);
	expect_refused("a negative line", line_negative);
	expect_refused("a start line as a string", start_line_string);
	expect_refused("a start line past 32 bits", start_line_huge);
	expect_refused("a pid past 32 bits", pid_huge);
	expect_refused("a range that ends before it starts", range_backwards);
	expect_refused("no period", period_missing);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_answer),
		cmocka_unit_test(test_python_answer),
		cmocka_unit_test(test_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
