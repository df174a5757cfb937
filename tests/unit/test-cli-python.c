/* SPDX-License-Identifier: MIT */
/*
 * The commands on a CPython process, end to end: the store of python-fixture.h written to a
 * state directory, read back by `profq --state-dir` (the offline answers, the same as the
 * daemon's) and printed by top, tree, lines, diff, folded and pprof, with and without
 * --no-python. Also a second process whose Python frames name an absolute .py file (its line
 * text shown), "<string>", "<frozen ...>" and a relative file (no text, no error).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "base/json-util.h"
#include "base/macro.h"
#include "cli.h"
#include "profile.pb-c.h"
#include "store/persist.h"
#include "store/store.h"
#include "python-fixture.h"
#include "tmpdir.h"

#define T0 (1700000000LL * (int64_t)NSEC_PER_SEC)
#define SEC ((int64_t)NSEC_PER_SEC)
#define PERIOD (10 * NSEC_PER_MSEC)
#define SRC_PID 201
#define ARGS_MAX 16

static char *state_dir, *src_dir;

/* pid 201: leaf Python frames in a file that exists, and in names that are not files. */
static void add_sources(Store *s)
{
	static const struct {
		const char *file; /* NULL: the .py file in src_dir */
		uint32_t line, samples;
	} leaves[] = {
		{ NULL, 3, 50 },
		{ "<string>", 1, 20 },
		{ "<frozen importlib._bootstrap>", 241, 20 },
		{ "app/rel.py", 2, 10 },
	};
	_cleanup_free_ char *py = NULL;
	StoreProc p = { .pid = SRC_PID, .ppid = 1, .uid = PY_UID, .start_ns = T0 - 60 * SEC };
	FrameId eval = py_fixture_frame(s, PYF_EVAL1, true);
	FrameId main_c = py_fixture_frame(s, PYF_MAIN_C, true);
	ProcId proc;

	assert_true(asprintf(&py, "%s/job.py", src_dir) > 0);
	p.comm = py_fixture_str(s, "python3");
	assert_int_equal(store_proc_add(s, &p, &proc), 0);
	assert_int_equal(store_window_open(s, T0 + 10 * SEC, T0 + 20 * SEC, PERIOD), 0);
	for (size_t i = 0; i < ARRAY_SIZE(leaves); i++) {
		StoreFrame f = { .line = leaves[i].line, .decl_line = 1, .flags = FRAME_PYTHON };
		FrameId frames[3];
		StackId stack;

		f.function = py_fixture_str(s, "run");
		f.module = py_fixture_str(s, "[python]");
		f.file = f.decl_file = py_fixture_str(s, leaves[i].file ? leaves[i].file : py);
		assert_int_equal(store_intern_frame(s, &f, &frames[0]), 0);
		frames[1] = eval;
		frames[2] = main_c;
		assert_int_equal(store_intern_stack(s, frames, 3, &stack), 0);
		assert_int_equal(
			store_window_add(s, proc, SRC_PID, 0, stack, false, leaves[i].samples), 0);
	}
	assert_int_equal(store_window_close(s), 0);
}

static int setup(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_free_ char *py = NULL;
	PersistWriter *w = NULL;
	FILE *f;

	(void)state;
	state_dir = tmpdir_new_named("test-cli-python");
	src_dir = tmpdir_new_named("test-cli-python-src");
	assert_non_null(state_dir);
	assert_non_null(src_dir);
	assert_true(asprintf(&py, "%s/job.py", src_dir) > 0);
	f = fopen(py, "w");
	assert_non_null(f);
	fputs("def run():\n    total = 0\n    total += sum(i * i for i in range(10))\n", f);
	assert_int_equal(fclose(f), 0);

	assert_int_equal(store_new(&s), 0);
	assert_int_equal(persist_writer_new(s, state_dir, 3600 * NSEC_PER_SEC, &w), 0);
	py_fixture_build(s, T0, PERIOD, true);
	add_sources(s);
	for (size_t i = 0; i < store_window_count(s); i++)
		assert_int_equal(persist_write_window(w, store_window(s, i)), 0);
	persist_writer_free(w);
	setenv("COLUMNS", "200", 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tmpdir_freep(&state_dir);
	tmpdir_freep(&src_dir);
	return 0;
}

/* Runs a command (the NULL-terminated arguments after its name) offline; its stdout in *out
 * (caller frees), its exit code returned. */
static int run(char **out, int (*cmd)(CliContext *, int, char **), const char *name, ...)
{
	char *argv[ARGS_MAX] = { (char *)name };
	CliContext ctx = { .socket_path = "/nonexistent", .state_dir = state_dir };
	FILE *tmp = tmpfile();
	int argc = 1, saved, r;
	va_list ap;
	long len;

	va_start(ap, name);
	while (argc < ARGS_MAX - 1 && (argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	assert_non_null(tmp);
	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fileno(tmp), STDOUT_FILENO) >= 0);
	optind = 1;
	r = cmd(&ctx, argc, argv);
	fflush(stdout);
	assert_true(dup2(saved, STDOUT_FILENO) >= 0);
	close(saved);
	len = ftell(tmp);
	assert_true(len >= 0);
	*out = calloc(1, (size_t)len + 1);
	assert_non_null(*out);
	rewind(tmp);
	assert_int_equal(fread(*out, 1, (size_t)len, tmp), (size_t)len);
	fclose(tmp);
	return r;
}

/* The line of text that contains what, or fails. */
static void expect_line_with(const char *text, const char *what, const char *also)
{
	for (const char *l = text; *l;) {
		const char *end = strchrnul(l, '\n');
		_cleanup_free_ char *line = strndup(l, (size_t)(end - l));

		if (strstr(line, what) && (!also || strstr(line, also)))
			return;
		l = *end ? end + 1 : end;
	}
	fail_msg("no line with '%s' and '%s' in:\n%s", what, also ? also : "", text);
}

static void test_top(void **state)
{
	_cleanup_free_ char *py = NULL, *native = NULL, *json = NULL, *wide = NULL;
	_cleanup_json_ json_object *a = NULL;

	(void)state;
	assert_int_equal(run(&py, cmd_top, "top", "--pid", "200", "--once", NULL), EXIT_OK);
	/* the CPU time of the samples (10 ms each), the module column, then the function */
	expect_line_with(py,
			 "  30.00   70.00    300.0ms    700.0ms       30       70  [python]    "
			 "Worker.parse  worker.py:10",
			 NULL);
	expect_line_with(py, "SELF-TIME TOTAL-TIME", NULL);
	expect_line_with(py, "  40.00   40.00 ", "python3.11  long_richcompare");
	/* the same names in two files: the file tells them apart */
	expect_line_with(py, "<module>  run.py:1", NULL);
	expect_line_with(py, "<module>  worker.py:1", NULL);
	expect_line_with(py, "[python]    main  run.py:3", NULL);
	expect_line_with(py, "python3.11  main", NULL);
	assert_null(strstr(py, "_PyEval_EvalFrameDefault"));

	/* not on a terminal, no COLUMNS: nothing cut */
	unsetenv("COLUMNS");
	assert_int_equal(run(&wide, cmd_top, "top", "--pid", "200", "--once", NULL), EXIT_OK);
	setenv("COLUMNS", "200", 1);
	expect_line_with(wide, "[python]    Worker.parse  worker.py:10", NULL);

	assert_int_equal(run(&native, cmd_top, "top", "--pid", "200", "--once", "--no-python",
			     NULL),
			 EXIT_OK);
	expect_line_with(native, "  40.00 ", "_PyEval_EvalFrameDefault");
	assert_null(strstr(native, "Worker.parse"));
	assert_null(strstr(native, "[python]"));

	assert_int_equal(run(&json, cmd_top, "top", "--pid", "200", "--json", NULL), EXIT_OK);
	a = json_tokener_parse(json);
	assert_non_null(a);
	assert_true(json_get_bool(a, "python"));
	assert_true(json_get_bool(a, "inline"));
}

static void test_tree(void **state)
{
	_cleanup_free_ char *py = NULL, *native = NULL;

	(void)state;
	assert_int_equal(run(&py, cmd_tree, "tree", "--pid", "200", "--min-pct", "0", NULL),
			 EXIT_OK);
	expect_line_with(
		py, "  70.00   30.00   700.0ms          Worker.parse [python] worker.py:10", NULL);
	expect_line_with(py, "  20.00    0.00   200.0ms        <module> [python] run.py:1", NULL);
	expect_line_with(py, "  20.00    0.00   200.0ms            <module> [python] worker.py:1",
			 NULL);
	expect_line_with(py, "main [python3.11]", NULL);
	assert_null(strstr(py, "_PyEval_EvalFrameDefault"));
	assert_int_equal(run(&native, cmd_tree, "tree", "--pid", "200", "--min-pct", "0",
			     "--no-python", NULL),
			 EXIT_OK);
	expect_line_with(native, "_PyEval_EvalFrameDefault [python3.11]", " 100.00   40.00  ");
	assert_null(strstr(native, "[python]"));
}

static void test_lines(void **state)
{
	_cleanup_free_ char *parse = NULL, *src = NULL, *json = NULL, *missing = NULL;
	_cleanup_json_ json_object *a = NULL;
	json_object *rows;

	(void)state;
	/* a Python function by its qualified name: file:line of the .py file */
	assert_int_equal(run(&parse, cmd_lines, "lines", "--pid", "200", "--function",
			     "Worker.parse", NULL),
			 EXIT_OK);
	expect_line_with(parse, "Function Worker.parse: 70 samples", NULL);
	/* FUNC%, SELF%, TOTAL%: line 12 only calls (no self samples), 14 computes. */
	expect_line_with(parse, "worker.py:12", "  57.14    0.00   40.00 ");
	expect_line_with(parse, "worker.py:14", "  42.86   30.00   30.00 ");
	/* TIME: the CPU time of TOTAL's samples (10 ms each) */
	expect_line_with(parse, "worker.py:12", "  40.00   400.0ms       40 ");
	assert_int_equal(run(&missing, cmd_lines, "lines", "--pid", "200", "--function",
			     "Worker.parse", "--no-python", NULL),
			 EXIT_NOT_FOUND);

	/* the text of an absolute .py file's line; none for the names that are not files */
	assert_int_equal(run(&src, cmd_lines, "lines", "--pid", "201", NULL), EXIT_OK);
	expect_line_with(src, "job.py:3", "total += sum(i * i for i in range(10))");
	expect_line_with(src, "  50.00   500.0ms       50  ", "job.py:3");
	expect_line_with(src, "<string>:1", "run");
	expect_line_with(src, "<frozen importlib._bootstrap>:241", "run");
	expect_line_with(src, "rel.py:2", "run");
	assert_int_equal(run(&json, cmd_lines, "lines", "--pid", "201", "--json", NULL), EXIT_OK);
	a = json_tokener_parse(json);
	assert_non_null(a);
	assert_true(json_object_object_get_ex(a, "rows", &rows));
	assert_int_equal(json_object_array_length(rows), 4);
	for (size_t i = 0; i < 4; i++) {
		json_object *r = json_object_array_get_idx(rows, i);

		assert_true(json_get_bool(r, "python"));
		assert_true((json_get_string(r, "text") != NULL) ==
			    (json_get_string(r, "file")[0] == '/'));
	}
	assert_string_equal(json_get_string(json_object_array_get_idx(rows, 0), "text"),
			    "    total += sum(i * i for i in range(10))");
}

static void test_diff(void **state)
{
	_cleanup_free_ char *py = NULL, *native = NULL, *text = NULL;
	_cleanup_json_ json_object *a = NULL, *b = NULL;
	size_t modules = 0, mains = 0, pythons = 0;
	json_object *rows;

	(void)state;
	assert_int_equal(run(&py, cmd_diff, "diff", "--pid", "200", "--base", "all", "--json", "-n",
			     "100", NULL),
			 EXIT_OK);
	a = json_tokener_parse(py);
	assert_non_null(a);
	assert_true(json_object_object_get_ex(a, "rows", &rows));
	/* every row of top, <module> of each file and both mains apart, nothing moved */
	assert_int_equal(json_object_array_length(rows), 12);
	for (size_t i = 0; i < json_object_array_length(rows); i++) {
		json_object *r = json_object_array_get_idx(rows, i);
		const char *fn = json_get_string(r, "function");

		modules += streq(fn, "<module>");
		mains += streq(fn, "main");
		pythons += json_get_bool(r, "python");
		/* a Python function's .py file; not for the others, nor for [python] */
		assert_true((json_get_bool(r, "python") && !streq(fn, "[python]")) ==
			    (json_get_string(r, "file") != NULL));
		assert_true(json_get_double(r, "delta_self_pct") == 0);
		assert_false(streq(fn, "_PyEval_EvalFrameDefault"));
	}
	assert_int_equal(modules, 2);
	assert_int_equal(mains, 2);
	assert_int_equal(pythons, 5);

	assert_int_equal(run(&text, cmd_diff, "diff", "--pid", "200", "--base", "all", "-n", "100",
			     NULL),
			 EXIT_OK);
	expect_line_with(text, "   0.00    0.00    +0.00  <module> [python] run.py:1", NULL);
	expect_line_with(text, "   0.00    0.00    +0.00  <module> [python] worker.py:1", NULL);
	expect_line_with(text, "  30.00   30.00    +0.00  Worker.parse [python] worker.py:10",
			 NULL);

	assert_int_equal(run(&native, cmd_diff, "diff", "--pid", "200", "--base", "all", "--json",
			     "--no-python", NULL),
			 EXIT_OK);
	b = json_tokener_parse(native);
	assert_non_null(b);
	assert_true(json_object_object_get_ex(b, "rows", &rows));
	assert_int_equal(json_object_array_length(rows), 8);
	assert_null(strstr(native, "\"python\":true"));
	assert_null(strstr(native, "\"python\": true"));
	assert_non_null(strstr(native, "_PyEval_EvalFrameDefault"));
}

static void test_folded(void **state)
{
	_cleanup_free_ char *py = NULL, *native = NULL;

	(void)state;
	assert_int_equal(run(&py, cmd_folded, "folded", "--pid", "200", NULL), EXIT_OK);
	assert_string_equal(
		py, "__libc_start_main;main;PyEval_EvalCode;<module>;builtin_exec;<module>;"
		    "PyObject_Malloc 20\n"
		    "__libc_start_main;main;PyEval_EvalCode;[python] 10\n"
		    "__libc_start_main;main;PyEval_EvalCode;main;Worker.parse 30\n"
		    "__libc_start_main;main;PyEval_EvalCode;main;Worker.parse;list_contains;"
		    "long_richcompare 40\n");
	assert_int_equal(run(&native, cmd_folded, "folded", "--pid", "200", "--no-python", NULL),
			 EXIT_OK);
	assert_string_equal(native,
			    "__libc_start_main;main;PyEval_EvalCode;_PyEval_EvalFrameDefault 40\n"
			    "__libc_start_main;main;PyEval_EvalCode;_PyEval_EvalFrameDefault;"
			    "builtin_exec;_PyEval_EvalFrameDefault;PyObject_Malloc 20\n"
			    "__libc_start_main;main;PyEval_EvalCode;_PyEval_EvalFrameDefault;"
			    "list_contains;long_richcompare 40\n");
}

/* The gunzipped profile of a pprof file. */
static Perftools__Profiles__Profile *read_pprof(const char *path)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint8_t in[1 << 16], out[1 << 18];
	z_stream z = { 0 };
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, in, sizeof(in));
	assert_true(n > 0 && (size_t)n < sizeof(in));
	assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
	z.next_in = in;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = sizeof(out);
	assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
	inflateEnd(&z);
	return perftools__profiles__profile__unpack(NULL, sizeof(out) - z.avail_out, out);
}

static void test_pprof(void **state)
{
	_cleanup_free_ char *path = NULL;

	(void)state;
	assert_true(asprintf(&path, "%s/py.pb.gz", src_dir) > 0);
	for (int no_python = 0; no_python < 2; no_python++) {
		_cleanup_free_ char *out = NULL;
		Perftools__Profiles__Profile *pb;
		size_t parse = 0, eval = 0, python = 0;

		assert_int_equal(run(&out, cmd_pprof, "pprof", "--pid", "200", "-o", path,
				     no_python ? "--no-python" : NULL, NULL),
				 EXIT_OK);
		pb = read_pprof(path);
		assert_non_null(pb);
		for (size_t i = 0; i < pb->n_function; i++) {
			const Perftools__Profiles__Function *f = pb->function[i];
			const char *name = pb->string_table[f->name];

			if (streq(name, "Worker.parse")) {
				assert_string_equal(pb->string_table[f->filename], PY_WORKER);
				assert_int_equal(f->start_line, 10);
				parse++;
			}
			eval += streq(name, "_PyEval_EvalFrameDefault");
		}
		/* Python functions (a .py file, or not named) in the [python] mapping */
		for (size_t i = 0; i < pb->n_location; i++) {
			const Perftools__Profiles__Location *l = pb->location[i];
			const Perftools__Profiles__Function *f =
				pb->function[l->line[0]->function_id - 1];
			const char *file = pb->string_table[f->filename];
			const char *map =
				pb->string_table[pb->mapping[l->mapping_id - 1]->filename];
			bool py = strstr(file, ".py") ||
				  streq(pb->string_table[f->name], "[python]");

			python += py;
			if (py)
				assert_string_equal(map, "[python]");
			else
				assert_string_not_equal(map, "[python]");
		}
		perftools__profiles__profile__free_unpacked(pb, NULL);
		assert_int_equal(parse, !no_python);
		assert_int_equal(eval, no_python);
		/* Worker.parse at two lines, main, two <module>s, [python] */
		assert_int_equal(python, no_python ? 0 : 6);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_top),    cmocka_unit_test(test_tree),
		cmocka_unit_test(test_lines),  cmocka_unit_test(test_diff),
		cmocka_unit_test(test_folded), cmocka_unit_test(test_pprof),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
