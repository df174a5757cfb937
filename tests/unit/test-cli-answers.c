/* SPDX-License-Identifier: MIT */
/*
 * What the plain and JSON answers say about themselves, end to end: a crafted store written to
 * a state directory and read back by `profq --state-dir`. The range each answer covers, the
 * samples lost in it, ps's %CPU over each process's life and its --sort, --user and row limit,
 * --range life, the time an export's profile spans, and top's columns, --by and --color.
 *
 * The store, in UTC: W0 [T0, T0 + 10 s) lost 5 samples, W1 [T0 + 10 s, T0 + 20 s) lost none.
 * pid 100 (uid 1000) runs throughout, 200 samples; pid 200 "gzip" (uid 1000) lives from
 * T0 + 12 s to T0 + 15 s with 150 samples (1.5 s of CPU in its 3 s: 50 %); pids 1001..1022
 * (uid 2000) one sample each in W1, started from T0 - 30 s a second apart.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/json-util.h"
#include "base/macro.h"
#include "cli.h"
#include "store/persist.h"
#include "store/store.h"
#include "tmpdir.h"
#include "store-fixture.h"

#define T0 (1700000000LL * (int64_t)NSEC_PER_SEC) /* 2023-11-14 22:13:20 UTC */
#define SEC ((int64_t)NSEC_PER_SEC)
#define PERIOD (10 * NSEC_PER_MSEC)
#define ARGS_MAX 16
#define N_SMALL 22

static char *state_dir;

static StackId stack(Store *s, const char *function)
{
	StoreFrame f = { .function = str(s, function), .module = str(s, "prog"), .address = 1 };
	FrameId frame;
	StackId id;

	assert_int_equal(store_intern_frame(s, &f, &frame), 0);
	assert_int_equal(store_intern_stack(s, &frame, 1, &id), 0);
	return id;
}

static int setup(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	PersistWriter *w = NULL;
	ProcId prog, gzip;
	StoreProc *p;
	StackId main_st, deflate;

	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	setenv("COLUMNS", "200", 1);
	state_dir = tmpdir_new_named("test-cli-answers");
	assert_non_null(state_dir);
	assert_int_equal(store_new(&s), 0);
	assert_int_equal(persist_writer_new(s, state_dir, 3600 * NSEC_PER_SEC, &w), 0);
	main_st = stack(s, "main");
	deflate = stack(s, "deflate");
	prog = proc(s, 100, 1000, T0 - 100 * SEC, "prog");
	gzip = proc(s, 200, 1000, T0 + 12 * SEC, "gzip");
	p = store_proc_mut(s, gzip);
	p->flags |= PROC_EXITED;
	p->exit_ns = T0 + 15 * SEC;

	assert_int_equal(store_window_open(s, T0, T0 + 10 * SEC, PERIOD), 0);
	assert_int_equal(store_window_add(s, prog, 100, 0, main_st, false, 100), 0);
	store_window_current(s)->lost = 5;
	assert_int_equal(store_window_close(s), 0);
	assert_int_equal(store_window_open(s, T0 + 10 * SEC, T0 + 20 * SEC, PERIOD), 0);
	assert_int_equal(store_window_add(s, prog, 100, 0, main_st, false, 100), 0);
	assert_int_equal(store_window_add(s, gzip, 200, 0, deflate, false, 150), 0);
	for (uint32_t i = 0; i < N_SMALL; i++) {
		ProcId small = proc(s, 1001 + i, 2000, T0 - 30 * SEC + (int64_t)i * SEC, "small");

		assert_int_equal(store_window_add(s, small, 1001 + i, 0, main_st, false, 1), 0);
	}
	assert_int_equal(store_window_close(s), 0);
	for (size_t i = 0; i < store_window_count(s); i++)
		assert_int_equal(persist_write_window(w, store_window(s, i)), 0);
	persist_writer_free(w);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tmpdir_freep(&state_dir);
	return 0;
}

/* The contents of f from its start, NUL-terminated (caller frees). */
static char *slurp(FILE *f)
{
	long len;
	char *buf;

	fflush(f);
	len = ftell(f);
	assert_true(len >= 0);
	buf = calloc(1, (size_t)len + 1);
	assert_non_null(buf);
	rewind(f);
	assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	return buf;
}

/* Runs a command offline (the NULL-terminated arguments after its name): its stdout in *out,
 * its stderr in *err (callers free), its exit code returned. */
static int run(char **out, char **err, int (*cmd)(CliContext *, int, char **), const char *name,
	       ...)
{
	char *argv[ARGS_MAX] = { (char *)name };
	CliContext ctx = { .socket_path = "/nonexistent", .state_dir = state_dir };
	FILE *o = tmpfile(), *e = tmpfile();
	int argc = 1, saved_out, saved_err, r;
	va_list ap;

	va_start(ap, name);
	while (argc < ARGS_MAX - 1 && (argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	assert_non_null(o);
	assert_non_null(e);
	fflush(stdout);
	fflush(stderr);
	saved_out = dup(STDOUT_FILENO);
	saved_err = dup(STDERR_FILENO);
	assert_true(saved_out >= 0 && saved_err >= 0);
	assert_true(dup2(fileno(o), STDOUT_FILENO) >= 0);
	assert_true(dup2(fileno(e), STDERR_FILENO) >= 0);
	optind = 1;
	r = cmd(&ctx, argc, argv);
	fflush(stdout);
	fflush(stderr);
	assert_true(dup2(saved_out, STDOUT_FILENO) >= 0);
	assert_true(dup2(saved_err, STDERR_FILENO) >= 0);
	close(saved_out);
	close(saved_err);
	*out = slurp(o);
	*err = slurp(e);
	return r;
}

/* The line of text that starts with what (NULL: none), or fails. */
static const char *line_starting(const char *text, const char *what)
{
	for (const char *l = text; *l;) {
		const char *end = strchrnul(l, '\n');

		if (strncmp(l, what, strlen(what)) == 0)
			return l;
		l = *end ? end + 1 : end;
	}
	fail_msg("no line starting with '%s' in:\n%s", what, text);
	return NULL;
}

static size_t count_lines(const char *text)
{
	size_t n = 0;

	for (const char *c = text; *c; c++)
		n += *c == '\n';
	return n;
}

static json_object *parse_json(const char *text)
{
	json_object *a = json_tokener_parse(text);

	if (!a)
		fail_msg("not JSON: %s", text);
	return a;
}

static json_object *ps_row(json_object *answer, int64_t pid)
{
	json_object *rows;

	assert_true(json_object_object_get_ex(answer, "rows", &rows));
	for (size_t i = 0; i < json_object_array_length(rows); i++)
		if (json_get_int(json_object_array_get_idx(rows, i), "pid") == pid)
			return json_object_array_get_idx(rows, i);
	fail_msg("no pid %lld in %s", (long long)pid, json_object_to_json_string(answer));
	return NULL;
}

/* Plain ps: the range it covers first, a warning of the lost samples, %CPU of each process's
 * life, 20 rows and what was left out. */
static void test_ps_plain(void **state)
{
	_cleanup_free_ char *out = NULL, *err = NULL, *all = NULL, *all_err = NULL;
	const char *gz;

	(void)state;
	assert_int_equal(run(&out, &err, cmd_ps, "ps", NULL), EXIT_OK);
	if (!startswith(out, "Range: all retained (2023-11-14 22:13:20-2023-11-14 22:13:40)\n"))
		fail_msg("not the range first:\n%s", out);
	assert_non_null(strstr(err, "warning: 5 samples were lost in the range"));
	gz = line_starting(out, "     200 ");
	/* 1.5 s of CPU in the 3 s gzip lived, not in the 20 s of the range. */
	assert_non_null(strstr(gz, "  50.00  "));
	assert_non_null(strstr(gz, "gzip"));
	/* A header, 20 rows and a note of the 24. */
	assert_int_equal(count_lines(out), 1 + 1 + 20 + 1);
	line_starting(out, "(20 of 24 rows, by time; -n 0 shows all)");

	assert_int_equal(run(&all, &all_err, cmd_ps, "ps", "-n", "0", NULL), EXIT_OK);
	assert_int_equal(count_lines(all), 1 + 1 + 24);
}

static void test_ps_options(void **state)
{
	_cleanup_free_ char *start = NULL, *user = NULL, *cpu = NULL, *since = NULL, *e1 = NULL,
			    *e2 = NULL, *e3 = NULL, *e4 = NULL, *bad = NULL, *e5 = NULL;
	_cleanup_json_ json_object *a = NULL, *u = NULL, *c = NULL;
	char at[32];

	(void)state;
	/* Newest first: gzip, then the last small process. */
	assert_int_equal(run(&start, &e1, cmd_ps, "ps", "--sort", "start", "--json", NULL),
			 EXIT_OK);
	a = parse_json(start);
	assert_int_equal(
		json_get_int(json_object_array_get_idx(json_object_object_get(a, "rows"), 0),
			     "pid"),
		200);
	assert_int_equal(
		json_get_int(json_object_array_get_idx(json_object_object_get(a, "rows"), 1),
			     "pid"),
		1022);
	/* %CPU puts the short busy gzip first, CPU time the long-running prog. */
	assert_int_equal(run(&cpu, &e2, cmd_ps, "ps", "--sort", "cpu", "--json", NULL), EXIT_OK);
	c = parse_json(cpu);
	assert_int_equal(
		json_get_int(json_object_array_get_idx(json_object_object_get(c, "rows"), 0),
			     "pid"),
		200);
	assert_true(fabs(json_get_double(ps_row(c, 200), "alive_s") - 3.0) < 1e-9);
	assert_int_equal(run(&user, &e3, cmd_ps, "ps", "--user", "2000", "-n", "0", "--json", NULL),
			 EXIT_OK);
	u = parse_json(user);
	assert_int_equal(json_object_array_length(json_object_object_get(u, "rows")), N_SMALL);
	assert_int_equal(json_get_int(u, "total_rows"), N_SMALL);
	assert_int_equal(run(&bad, &e5, cmd_ps, "ps", "--sort", "self", NULL), EXIT_USAGE);

	/* From a point in time: W1 alone, which lost nothing. */
	snprintf(at, sizeof(at), "@%lld", (long long)(T0 / SEC + 10));
	assert_int_equal(run(&since, &e4, cmd_ps, "ps", "--since", at, NULL), EXIT_OK);
	line_starting(since, "Range: since @1700000010 (2023-11-14 22:13:30-2023-11-14 22:13:40)");
	assert_null(strstr(e4, "lost"));
}

/* --range life: the process's own windows; time's range is its life. */
static void test_life(void **state)
{
	_cleanup_free_ char *top = NULL, *e1 = NULL, *t = NULL, *e2 = NULL, *folded = NULL,
			    *e3 = NULL, *nopid = NULL, *e4 = NULL;
	_cleanup_json_ json_object *a = NULL, *f = NULL;
	json_object *range;

	(void)state;
	assert_int_equal(run(&top, &e1, cmd_top, "top", "--pid", "200", "--range", "life", "--json",
			     NULL),
			 EXIT_OK);
	a = parse_json(top);
	assert_true(json_object_object_get_ex(a, "range", &range));
	assert_true(fabs(json_get_double(range, "since_s") - 1700000010.0) < 1e-3);
	assert_int_equal(json_get_int(a, "lost"), 0);
	assert_int_equal(json_get_int(a, "samples"), 150);

	assert_int_equal(run(&t, &e2, cmd_time, "time", "--pid", "200", NULL), EXIT_OK);
	line_starting(t, "Range: the process's life (2023-11-14 22:13:32-2023-11-14 22:13:35)");

	/* The profile of the exports spans the 3 s of its life. */
	assert_int_equal(run(&folded, &e3, cmd_folded, "folded", "--pid", "200", "--json", NULL),
			 EXIT_OK);
	f = parse_json(folded);
	assert_int_equal(json_get_int(f, "start_ns"), T0 + 12 * SEC);
	assert_int_equal(json_get_int(f, "end_ns"), T0 + 15 * SEC);

	assert_int_equal(run(&nopid, &e4, cmd_top, "top", "--range", "life", "--once", NULL),
			 EXIT_USAGE);
}

static json_object *side(json_object *diff, const char *name)
{
	json_object *o;

	assert_true(json_object_object_get_ex(diff, name, &o));
	return o;
}

/* diff: RANGEs of times and of a process's life, without computing durations by hand. */
static void test_diff_ranges(void **state)
{
	_cleanup_free_ char *times = NULL, *e1 = NULL, *life = NULL, *e2 = NULL, *bad = NULL,
			    *e3 = NULL;
	_cleanup_json_ json_object *t = NULL, *l = NULL;

	(void)state;
	/* W0 against W1, by time: pid 100 has 100 samples in each. */
	assert_int_equal(run(&times, &e1, cmd_diff, "diff", "--pid", "100", "--base",
			     "@1700000002..@1700000008", "--with", "@1700000012", "--json", NULL),
			 EXIT_OK);
	t = parse_json(times);
	assert_int_equal(json_get_int(side(t, "base"), "samples"), 100);
	assert_int_equal(json_get_int(side(t, "with"), "samples"), 100);
	/* Each process over its own life: gzip against prog. */
	assert_int_equal(run(&life, &e2, cmd_diff, "diff", "--pid", "200", "--base-pid", "100",
			     "--base", "life", "--with", "life", "--json", NULL),
			 EXIT_OK);
	l = parse_json(life);
	assert_int_equal(json_get_int(side(l, "base"), "samples"), 200);
	assert_int_equal(json_get_int(side(l, "with"), "samples"), 150);
	assert_string_equal(json_get_string(side(l, "with"), "range"), "life");
	assert_int_equal(run(&bad, &e3, cmd_diff, "diff", "--pid", "200", "--base", "lifetime",
			     NULL),
			 EXIT_USAGE);
}

/* System-wide top: each function's process name (main: prog's 200 samples and one of each of the
 * 22 "small"), CPU times of 10 ms a sample; --by process and --by module; --color. */
static void test_top_plain(void **state)
{
	_cleanup_free_ char *fn = NULL, *procs = NULL, *mods = NULL, *bad = NULL, *color = NULL,
			    *never = NULL, *e1 = NULL, *e2 = NULL, *e3 = NULL, *e4 = NULL,
			    *e5 = NULL, *e6 = NULL;

	(void)state;
	assert_int_equal(run(&fn, &e1, cmd_top, "top", "--once", NULL), EXIT_OK);
	line_starting(fn,
		      "  SELF%  TOTAL%  SELF-TIME TOTAL-TIME     SELF    TOTAL  COMM     MODULE");
	line_starting(fn, "  59.68   59.68      2.22s      2.22s      222      222  prog +1  prog  "
			  "  main");
	line_starting(fn, "  40.32   40.32      1.50s      1.50s      150      150  gzip     prog  "
			  "  deflate");
	assert_null(strstr(fn, "\033["));

	assert_int_equal(run(&procs, &e2, cmd_top, "top", "--by", "process", "--once", NULL),
			 EXIT_OK);
	line_starting(procs, " SHARE%      TIME   SAMPLES      PID  COMM");
	line_starting(procs, "  53.76     2.00s       200      100  prog");
	line_starting(procs, "  40.32     1.50s       150      200  gzip");
	line_starting(procs, "   0.27    10.0ms         1     1001  small");

	assert_int_equal(run(&mods, &e3, cmd_top, "top", "--by", "module", "--once", NULL),
			 EXIT_OK);
	line_starting(mods, " 100.00  100.00      3.72s      3.72s      372      372  prog");

	assert_int_equal(run(&bad, &e4, cmd_top, "top", "--by", "thread", NULL), EXIT_USAGE);
	assert_non_null(strstr(e4, "--by: 'thread' is not function, process or module"));

	/* Forced on: bold column names, hot shares red (5% and more), green from 0.5%. */
	assert_int_equal(run(&color, &e5, cmd_top, "top", "--by", "process", "--once", "--color",
			     "always", NULL),
			 EXIT_OK);
	line_starting(color, "\033[1m SHARE%");
	line_starting(color, "\033[31m  53.76\033[0m     2.00s");
	line_starting(color, "   0.27    10.0ms         1     1001  small");
	assert_int_equal(run(&never, &e6, cmd_top, "top", "--once", "--color", "never", NULL),
			 EXIT_OK);
	assert_null(strstr(never, "\033["));
	assert_int_equal(cli_set_color("auto"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ps_plain),  cmocka_unit_test(test_ps_options),
		cmocka_unit_test(test_life),	  cmocka_unit_test(test_diff_ranges),
		cmocka_unit_test(test_top_plain),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
