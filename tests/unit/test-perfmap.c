/* SPDX-License-Identifier: MIT */
/*
 * Perf maps (/tmp/perf-PID.map): entries, malformed lines skipped and counted, the last
 * written entry of a start winning, a line still being written left for later; and reading the
 * file of a process: only its user's, incrementally (what it gained since the last read, in
 * bounded pieces), anew when it was replaced or shrank, and no more than a cap of it.
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

/* What perfmap_update() opens files through (no FUSE file system is mounted here). */
static Mounts *mounts;

static int setup(void **state)
{
	(void)state;
	return mounts_new(&mounts);
}

static int teardown(void **state)
{
	(void)state;
	mounts = mounts_free(mounts);
	return 0;
}

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

static PerfMapRead update(PerfMap *m, size_t max_read, size_t cap)
{
	PerfMapRead rd;

	assert_int_equal(perfmap_update(m, mounts, getpid(), getuid(), max_read, cap, &rd), 0);
	return rd;
}

static void test_load(void **state)
{
	_cleanup_(perfmap_freep) PerfMap *m = NULL;
	char path[64];
	PerfMapRead rd;
	pid_t pid = getpid();

	(void)state;
	snprintf(path, sizeof(path), "/tmp/perf-%d.map", (int)pid);
	unlink(path);
	assert_int_equal(perfmap_new(&m), 0);
	assert_int_equal(perfmap_update(m, mounts, pid, getuid(), 1 << 20, 1 << 20, &rd), -ENOENT);

	write_map(path, "1000 10 one\nbroken\n", "we");
	rd = update(m, 1 << 20, 1 << 20);
	assert_int_equal(rd.bytes, strlen("1000 10 one\nbroken\n"));
	assert_int_equal(rd.bad, 1);
	assert_int_equal(rd.entries, 1);
	assert_true(rd.restarted);
	assert_false(rd.more);
	expect_name(m, 0x1001, "one", 1);
	assert_int_equal(perfmap_bad(m), 1);

	/* Another user's file does not speak for the process: the map stays as it was. */
	assert_int_equal(perfmap_update(m, mounts, pid, getuid() + 1, 1 << 20, 1 << 20, &rd),
			 -EPERM);
	expect_name(m, 0x1001, "one", 1);

	/* Unchanged: nothing read. */
	rd = update(m, 1 << 20, 1 << 20);
	assert_int_equal(rd.bytes, 0);
	assert_false(rd.restarted);

	/* It grew: only what was added is read (a line half written waits), and the old
	 * entries stay; the malformed line is not counted again. */
	write_map(path, "2000 10 two\n3000 10 thr", "ae");
	rd = update(m, 1 << 20, 1 << 20);
	assert_int_equal(rd.bytes, strlen("2000 10 two\n3000 10 thr"));
	assert_false(rd.restarted);
	assert_int_equal(rd.bad, 0);
	assert_int_equal(rd.entries, 1);
	expect_name(m, 0x2000, "two", 0);
	expect_name(m, 0x1000, "one", 0);
	assert_null(perfmap_lookup(m, 0x3000, NULL));
	write_map(path, "ee\n", "ae");
	rd = update(m, 1 << 20, 1 << 20);
	assert_int_equal(rd.bytes, strlen("3000 10 three\n"));
	expect_name(m, 0x3000, "three", 0);
	assert_int_equal(perfmap_count(m), 3);

	/* Replaced (a new file, as a restarted JIT writes): read anew, nothing of the old. */
	unlink(path);
	write_map(path, "4000 10 four\n", "we");
	rd = update(m, 1 << 20, 1 << 20);
	assert_true(rd.restarted);
	expect_name(m, 0x4000, "four", 0);
	assert_null(perfmap_lookup(m, 0x1000, NULL));
	assert_int_equal(perfmap_count(m), 1);

	/* Truncated and written again (same file, smaller): read anew. */
	write_map(path, "5000 9 five\n", "we");
	rd = update(m, 1 << 20, 1 << 20);
	assert_true(rd.restarted);
	expect_name(m, 0x5000, "five", 0);
	assert_null(perfmap_lookup(m, 0x4000, NULL));

	/* Not a regular file, or a symbolic link to one: not read. */
	unlink(path);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_true(perfmap_update(m, mounts, pid, getuid(), 1 << 20, 1 << 20, &rd) < 0);
	rmdir(path);
	assert_int_equal(symlink("/etc/hostname", path), 0);
	assert_true(perfmap_update(m, mounts, pid, getuid(), 1 << 20, 1 << 20, &rd) < 0);
	unlink(path);
}

/* A large map: n lines "START 40 fn_I\n", START = 0x100000 + I * 0x40. */
static size_t write_big(const char *path, unsigned first, unsigned n, const char *mode)
{
	FILE *f = fopen(path, mode);
	size_t bytes = 0;

	assert_non_null(f);
	for (unsigned i = first; i < first + n; i++) {
		int r = fprintf(f, "%x 40 fn_%u\n", 0x100000 + i * 0x40, i);

		assert_true(r > 0);
		bytes += (size_t)r;
	}
	assert_int_equal(fclose(f), 0);
	return bytes;
}

static void expect_fn(const PerfMap *m, unsigned i, bool present)
{
	char name[32];

	snprintf(name, sizeof(name), "fn_%u", i);
	if (present)
		expect_name(m, 0x100000 + i * 0x40 + 3, name, 3);
	else
		assert_null(perfmap_lookup(m, 0x100000 + i * 0x40 + 3, NULL));
}

/*
 * A map read in bounded pieces (each call reads at most max_read, and says there is more),
 * that grows a line at a time (each call reads the line, not the file), and that outgrows the
 * cap (its newest part is held, what was left unread counted).
 */
static void test_incremental(void **state)
{
	_cleanup_(perfmap_freep) PerfMap *m = NULL;
	const unsigned n = 200000;
	char path[64];
	size_t size, total = 0, calls = 0, tail;
	PerfMapRead rd;

	(void)state;
	snprintf(path, sizeof(path), "/tmp/perf-%d.map", (int)getpid());
	size = write_big(path, 0, n, "we");
	assert_true(size > 3u << 20);
	assert_int_equal(perfmap_new(&m), 0);
	do {
		rd = update(m, 256 << 10, 64 << 20);
		assert_true(rd.bytes <= 256 << 10);
		assert_int_equal(rd.refused, 0);
		total += rd.bytes;
		calls++;
	} while (rd.more);
	/* Pieces end inside a line, read again with the next one: a line per piece at most. */
	assert_true(total >= size && total < size + calls * 32);
	assert_true(calls >= size / (256 << 10));
	assert_int_equal(perfmap_count(m), n);
	assert_int_equal(perfmap_bad(m), 0);
	expect_fn(m, 0, true);
	expect_fn(m, n / 2, true);
	expect_fn(m, n - 1, true);

	/* A line at a time: each read is the line. */
	for (unsigned i = n; i < n + 100; i++) {
		size_t line = write_big(path, i, 1, "ae");

		rd = update(m, 256 << 10, 64 << 20);
		assert_int_equal(rd.bytes, line);
		assert_false(rd.restarted);
		expect_fn(m, i, true);
	}
	expect_fn(m, 0, true);
	assert_int_equal(perfmap_count(m), n + 100);

	/* A cap below the file's size: its newest half cap is read, the rest refused. */
	perfmap_free(m);
	assert_int_equal(perfmap_new(&m), 0);
	size = write_big(path, 0, n, "we");
	total = 0;
	do {
		rd = update(m, 4 << 20, 1 << 20);
		total += rd.bytes;
		if (rd.restarted)
			assert_int_equal(rd.refused, size - (1 << 19));
	} while (rd.more);
	assert_true(total <= (1 << 19) + 1);
	expect_fn(m, 0, false);
	expect_fn(m, n - 1, true);
	assert_true(perfmap_count(m) > (1 << 19) / 24);
	assert_true(perfmap_bad(m) == 0); /* the line cut by the start is skipped, not malformed */

	/* Growing: a line is a line's read, until past the cap: read anew from half the cap
	 * before the end, refusing only what was not refused before. */
	tail = write_big(path, n, 1, "ae");
	rd = update(m, 4 << 20, 1 << 20);
	assert_false(rd.restarted);
	assert_int_equal(rd.bytes, tail);
	expect_fn(m, n, true);
	tail += write_big(path, n + 1, 40000, "ae");
	assert_true(tail > (1 << 19));
	rd = update(m, 4 << 20, 1 << 20);
	assert_true(rd.restarted);
	assert_int_equal(rd.refused, tail);
	assert_false(rd.more);
	assert_true(rd.bytes <= (1 << 19) + 1);
	expect_fn(m, n + 40000 - 1, true);
	expect_fn(m, n - 1, false);
	assert_true(perfmap_memory(m) < 4u << 20);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_incremental),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
