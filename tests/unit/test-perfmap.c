/* SPDX-License-Identifier: MIT */
/*
 * Perf maps (/tmp/perf-PID.map): entries, malformed lines skipped and counted, the last
 * written entry of a start winning, a line still being written left for later; and reading the
 * file of a process: only its user's, its size for noticing growth.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "base/macro.h"
#include "symbolize/perfmap.h"

static PerfMap *parse(const char *text, size_t *ret_bad)
{
	PerfMap *m = NULL;

	assert_int_equal(perfmap_parse(text, strlen(text), &m, ret_bad), 0);
	assert_non_null(m);
	return m;
}

static void expect_name(const PerfMap *m, uint64_t addr, const char *name, uint64_t offset)
{
	uint64_t off = 99;
	const char *got = perfmap_lookup(m, addr, &off);

	if (!got || !streq(got, name))
		fail_msg("0x%" PRIx64 ": '%s', expected '%s'", addr, got ? got : "(none)", name);
	assert_true(off == offset);
}

static void test_parse(void **state)
{
	static const char text[] = "1000 10 LazyCompile:*hot /app/a.js:1\n" /* node */
				   "0x2000 0x20 py::f:/app/b.py\n"	    /* python -X perf */
				   "\n" /* empty: not malformed */
				   "3000 10 first\n"
				   "3000 8 second\n" /* the same start later: JIT memory reused */
				   "4000 10 ctl\x01name\n"
				   "garbage\n"
				   "5000 zz bad_size\n"
				   "6000 0 zero_size\n"
				   "7000 10\n"
				   "ffffffffffffffff 10 wraps\n"
				   "12345678901234567 10 seventeen_digits\n"
				   "8000 10 \n"
				   "9000 10 not_yet_finish"; /* no newline: still being written */
	_cleanup_(perfmap_freep) PerfMap *m = NULL;
	size_t bad = 0;

	(void)state;
	m = parse(text, &bad);
	/* garbage, bad_size, zero_size, two missing names, wraps, seventeen_digits. */
	assert_int_equal(bad, 7);
	assert_int_equal(perfmap_bad(m), 7);
	assert_int_equal(perfmap_count(m), 4);
	expect_name(m, 0x1000, "LazyCompile:*hot /app/a.js:1", 0);
	expect_name(m, 0x100f, "LazyCompile:*hot /app/a.js:1", 0xf);
	assert_null(perfmap_lookup(m, 0x1010, NULL));
	assert_null(perfmap_lookup(m, 0xfff, NULL));
	expect_name(m, 0x201f, "py::f:/app/b.py", 0x1f);
	expect_name(m, 0x3007, "second", 7);
	assert_null(perfmap_lookup(m, 0x3008, NULL)); /* second's size, not first's */
	expect_name(m, 0x4000, "ctl?name", 0);	      /* names are shown: no control characters */
	assert_null(perfmap_lookup(m, 0x9000, NULL));
	assert_true(perfmap_memory(m) > 0);

	/* Once the line is finished it is an entry like the others. */
	perfmap_free(m);
	{
		_cleanup_free_ char *more = NULL;

		assert_true(asprintf(&more, "%sed\n", text) > 0);
		m = parse(more, &bad);
	}
	assert_int_equal(bad, 7);
	expect_name(m, 0x900f, "not_yet_finished", 0xf);

	/* Nothing at all, and no newline at all. */
	perfmap_free(m);
	m = parse("", &bad);
	assert_int_equal(perfmap_count(m), 0);
	assert_int_equal(bad, 0);
	perfmap_free(m);
	m = parse("1000 10 x", &bad);
	assert_int_equal(perfmap_count(m), 0);
	assert_int_equal(bad, 0);
}

/* /tmp/perf-PID.map of this very process, with text in it. */
static void write_map(const char *path, const char *text, const char *mode)
{
	FILE *f = fopen(path, mode);

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void test_load(void **state)
{
	_cleanup_(perfmap_freep) PerfMap *m = NULL;
	char path[64];
	uint64_t size = 0;
	pid_t pid = getpid();

	(void)state;
	snprintf(path, sizeof(path), "/tmp/perf-%d.map", (int)pid);
	unlink(path);
	assert_int_equal(perfmap_load(pid, getuid(), &m, &size), -ENOENT);
	assert_int_equal(perfmap_file_size(pid), 0);

	write_map(path, "1000 10 one\nbroken\n", "we");
	assert_int_equal(perfmap_load(pid, getuid(), &m, &size), 0);
	assert_int_equal(size, strlen("1000 10 one\nbroken\n"));
	assert_int_equal(perfmap_file_size(pid), size);
	expect_name(m, 0x1001, "one", 1);
	assert_int_equal(perfmap_bad(m), 1);
	perfmap_free(m);
	m = NULL;

	/* Another user's file does not speak for the process. */
	assert_int_equal(perfmap_load(pid, getuid() + 1, &m, &size), -EPERM);
	assert_null(m);

	/* It grew: the size says so, and a new read has the new entry. */
	write_map(path, "2000 10 two\n", "ae");
	assert_true(perfmap_file_size(pid) > size);
	assert_int_equal(perfmap_load(pid, getuid(), &m, &size), 0);
	expect_name(m, 0x2000, "two", 0);
	expect_name(m, 0x1000, "one", 0);
	assert_int_equal(perfmap_bad(m), 1);
	perfmap_free(m);
	m = NULL;

	/* Not a regular file, or a symbolic link to one: not read. */
	unlink(path);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_true(perfmap_load(pid, getuid(), &m, &size) < 0);
	assert_int_equal(perfmap_file_size(pid), 0);
	rmdir(path);
	assert_int_equal(symlink("/etc/hostname", path), 0);
	assert_true(perfmap_load(pid, getuid(), &m, &size) < 0);
	assert_null(m);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
