/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/mman.h>
#include <cmocka.h>

#include "base/macro.h"
#include "base/procfs.h"

/* Parses text from an exact-size heap copy (no NUL after it), so ASan sees any overread. */
static int parse_maps(const char *text, ProcMap **ret, size_t *ret_n, size_t *ret_bad)
{
	size_t len = strlen(text);
	_cleanup_free_ char *copy = malloc(MAX(len, (size_t)1));

	assert_non_null(copy);
	memcpy(copy, text, len);
	return procfs_parse_maps(copy, len, ret, ret_n, ret_bad);
}

static void test_maps(void **state)
{
	static const char text[] =
		"55d0c0a00000-55d0c0a01000 r--p 00000000 fe:01 1234567                    "
		"/usr/bin/prog\n"
		"55d0c0a01000-55d0c0a05000 r-xp 00001000 fe:01 1234567                    "
		"/usr/bin/prog\n"
		"7f1e2a600000-7f1e2a628000 r-xp 00028000 103:02 98765 /opt/my app/lib foo.so\n"
		"7f1e2a700000-7f1e2a701000 rwxp 00000000 00:00 0 \n"
		"7f1e2a800000-7f1e2a900000 r-xp 00002000 08:11 555 /tmp/gone (deleted)\n"
		"7ffd1b5f0000-7ffd1b5f2000 r-xp 00000000 00:00 0                          [vdso]\n"
		"7ffd1b5e0000-7ffd1b5f0000 rw-p 00000000 00:00 0                          [stack]\n"
		"ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  "
		"[vsyscall]";
	ProcMap *maps = NULL;
	size_t n = 0, bad = 99;

	(void)state;
	assert_int_equal(parse_maps(text, &maps, &n, &bad), 0);
	assert_int_equal(bad, 0);
	/* Only executable mappings; the order of the file is kept. */
	assert_int_equal(n, 6);
	assert_true(maps[0].start == 0x55d0c0a01000ULL);
	assert_true(maps[0].end == 0x55d0c0a05000ULL);
	assert_true(maps[0].pgoff == 0x1000);
	assert_int_equal(maps[0].dev_major, 0xfe);
	assert_int_equal(maps[0].dev_minor, 1);
	assert_int_equal(maps[0].inode, 1234567);
	assert_int_equal(maps[0].prot, PROT_READ | PROT_EXEC);
	assert_string_equal(maps[0].path, "/usr/bin/prog");

	/* Device numbers are hex; the path keeps its spaces. */
	assert_int_equal(maps[1].dev_major, 0x103);
	assert_int_equal(maps[1].dev_minor, 2);
	assert_true(maps[1].pgoff == 0x28000);
	assert_string_equal(maps[1].path, "/opt/my app/lib foo.so");

	/* Anonymous executable memory: no path, even with a trailing blank. */
	assert_null(maps[2].path);
	assert_int_equal(maps[2].inode, 0);
	assert_int_equal(maps[2].prot, PROT_READ | PROT_WRITE | PROT_EXEC);

	assert_string_equal(maps[3].path, "/tmp/gone (deleted)");
	assert_int_equal(maps[3].dev_major, 8);
	assert_int_equal(maps[3].dev_minor, 0x11);
	assert_string_equal(maps[4].path, "[vdso]");
	/* The last line has no newline; 16 hex digits are fine. */
	assert_true(maps[5].start == 0xffffffffff600000ULL);
	assert_int_equal(maps[5].prot, PROT_EXEC);
	assert_string_equal(maps[5].path, "[vsyscall]");
	procfs_maps_free(maps, n);
}

static void test_maps_malformed(void **state)
{
	static const char text[] =
		"1000-2000 r-xp 00000000 08:01 10 /ok/one\n"
		/* 17 hex digits */
		"10000000000000000-10000000000001000 r-xp 00000000 00:00 0 /seventeen\n"
		"3000-2000 r-xp 00000000 08:01 10 /backwards\n"
		"3000-4000 r-xp 00000000 08:01 /no-inode\n"
		"3000-4000 r-x\n"
		"3000 r-xp 00000000 08:01 10 /no-end\n"
		"3000-4000 r-xp 0000zz00 08:01 10 /bad-offset\n"
		"3000-4000 r-xp 00000000 08-01 10 /bad-dev\n"
		"3000-4000 r-xp 00000000 123456789:01 10 /huge-major\n"
		"g000-4000 r-xp 00000000 08:01 10 /not-hex\n"
		"-4000 r-xp 00000000 08:01 10 /no-start\n"
		"garbage\n"
		"\n"
		"5000-6000 r-xp 00000000 08:01 11 /ok/two\n"
		"3000-4000 r-xp 00000000 08:01 99999999999999999999999 /inode-overflow\n"
		"7000-8000 r-xp 00000000 08:01 12";
	ProcMap *maps = NULL;
	size_t n = 0, bad = 0;

	(void)state;
	assert_int_equal(parse_maps(text, &maps, &n, &bad), 0);
	assert_int_equal(n, 3);
	assert_string_equal(maps[0].path, "/ok/one");
	assert_string_equal(maps[1].path, "/ok/two");
	/* The last line has an inode and no path: a file-less mapping at the end of the input. */
	assert_true(maps[2].start == 0x7000);
	assert_int_equal(maps[2].inode, 12);
	assert_null(maps[2].path);
	/* Every malformed line counts; the blank line is not a line. */
	assert_int_equal(bad, 12);
	procfs_maps_free(maps, n);

	/* ret_bad may be NULL; empty input is no mappings. */
	assert_int_equal(parse_maps("", &maps, &n, NULL), 0);
	assert_int_equal(n, 0);
	procfs_maps_free(maps, n);
	assert_int_equal(parse_maps("7f00-7f01 r-xp", &maps, &n, &bad), 0);
	assert_int_equal(n, 0);
	assert_int_equal(bad, 1);
	procfs_maps_free(maps, n);
}

/* The real maps of this process hold our own code. */
static void test_maps_self(void **state)
{
	uint64_t here = (uint64_t)(uintptr_t)&test_maps_self;
	ProcMap *maps = NULL;
	size_t n = 0;
	bool found = false;

	(void)state;
	assert_int_equal(procfs_read_maps(getpid(), &maps, &n), 0);
	assert_true(n >= 2);
	for (size_t i = 0; i < n; i++) {
		assert_true(maps[i].prot & PROT_EXEC);
		if (here >= maps[i].start && here < maps[i].end) {
			assert_non_null(maps[i].path);
			assert_non_null(strstr(maps[i].path, "test-procfs"));
			found = true;
		}
	}
	assert_true(found);
	procfs_maps_free(maps, n);
	assert_int_equal(procfs_read_maps(0x7ffffff, &maps, &n), -ENOENT);
}

static void test_stat(void **state)
{
	/* comm with spaces and ')' characters, as a process can name itself. */
	static const char line[] =
		"4711 (we) ird) name) S 1234 4711 4711 0 -1 4194560 1024 0 0 0 "
		"150 25 7 3 20 0 5 0 987654 12345678 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 "
		"0 17 3 0 0 0 0 0\n";
	ProcStat st;

	(void)state;
	assert_int_equal(procfs_parse_stat(line, &st), 0);
	assert_string_equal(st.comm, "we) ird) name");
	assert_int_equal(st.state, 'S');
	assert_int_equal(st.ppid, 1234);
	assert_int_equal(st.utime, 150);
	assert_int_equal(st.stime, 25);
	assert_int_equal(st.cutime, 7);
	assert_int_equal(st.cstime, 3);
	assert_int_equal(st.num_threads, 5);
	assert_int_equal(st.starttime, 987654);

	/* A comm of 15 characters fits; a longer one (impossible from the kernel) is cut. */
	assert_int_equal(
		procfs_parse_stat("1 (abcdefghijklmnopqrst) R 0 1 1 0 -1 0 0 0 0 0 1 2 3 4 "
				  "20 0 1 0 99",
				  &st),
		0);
	assert_string_equal(st.comm, "abcdefghijklmno");
	assert_int_equal(st.starttime, 99);
	/* An empty comm and a comm that is just ")". */
	assert_int_equal(procfs_parse_stat("1 () R 0 1 1 0 -1 0 0 0 0 0 1 2 3 4 20 0 1 0 5", &st),
			 0);
	assert_string_equal(st.comm, "");
	assert_int_equal(procfs_parse_stat("1 ()) R 9 1 1 0 -1 0 0 0 0 0 1 2 3 4 20 0 1 0 5", &st),
			 0);
	assert_string_equal(st.comm, ")");
	assert_int_equal(st.ppid, 9);
}

static void test_stat_bad(void **state)
{
	static const char *const bad[] = {
		"",
		"4711",
		"4711 (x",
		"4711 x) S 1",
		"4711 )x( S 1 2 3",
		"4711 (x) S",
		"4711 (x) S ",
		"4711 (x) 5 1 1 1 0 -1 0 0 0 0 0 1 2 3 4 20 0 1 0 5",
		"4711 (x)S 1 1 1 0 -1 0 0 0 0 0 1 2 3 4 20 0 1 0 5",
		/* truncated before starttime (field 22) */
		"4711 (x) S 1 1 1 0 -1 0 0 0 0 0 1 2 3 4 20 0 1 0",
		"4711 (x) S 1 1 1 0 -1 0 0 0 0 0 1 2 3 4 20 0 1 0 ",
		"4711 (x) S 1 1 1 0 -1 0 0 0 0 0 1 2",
		"4711 (x) S 1  1 1 0 -1 0 0 0 0 0 1 2 3 4 20 0 1 0 5",
		"4711 (x) S 1 1 1 0 -1 0 0 0 0 0 x 2 3 4 20 0 1 0 5",
		"4711 (x) S 1 1 1 0 -1 0 0 0 0 0 1 2 3 4 20 0 1 0 99999999999999999999999",
		/* ppid and num_threads must fit 32 bits */
		"4711 (x) S 4294967296 1 1 0 -1 0 0 0 0 0 1 2 3 4 20 0 1 0 5",
		"4711 (x) S 1 1 1 0 -1 0 0 0 0 0 1 2 3 4 20 0 4294967296 0 5",
	};
	ProcStat st;

	(void)state;
	memset(&st, 0x77, sizeof(st));
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (procfs_parse_stat(bad[i], &st) != -EINVAL)
			fail_msg("accepted '%s'", bad[i]);
	assert_int_equal(st.ppid, 0x77777777); /* untouched */
}

static void test_stat_self(void **state)
{
	_cleanup_free_ char *buf = NULL;
	ProcStat st;
	char *p;

	(void)state;
	assert_int_equal(procfs_read_stat(getpid(), &st), 0);
	assert_int_equal(st.ppid, getppid());
	assert_true(st.num_threads >= 1);
	assert_int_equal(st.state, 'R');
	assert_int_equal(procfs_read_file("/proc/self/comm", 64, &buf, NULL), 0);
	p = strchr(buf, '\n');
	if (p)
		*p = '\0';
	assert_string_equal(st.comm, buf);
	assert_true(procfs_clock_ticks() >= 1);
	assert_int_equal(procfs_clock_ticks(), (uint64_t)sysconf(_SC_CLK_TCK));
	assert_int_equal(procfs_read_stat(0x7ffffff, &st), -ENOENT);
}

static void test_cmdline(void **state)
{
	char a[] = "prog\0--flag\0value with space\0";
	char b[] = "x\tb\x1f\x7f\0\0\0";
	char c[] = "\0\0";
	char d[8] = "abc";
	_cleanup_free_ char *own = NULL, *exact = NULL;

	(void)state;
	procfs_cmdline_to_string(a, sizeof(a) - 1);
	assert_string_equal(a, "prog --flag value with space");
	procfs_cmdline_to_string(b, sizeof(b) - 1);
	assert_string_equal(b, "x?b??");
	procfs_cmdline_to_string(c, sizeof(c) - 1);
	assert_string_equal(c, "");
	/* A cmdline cut off without a final NUL keeps every byte; the NUL goes at buf[len]. */
	procfs_cmdline_to_string(d, 3);
	assert_string_equal(d, "abc");
	exact = malloc(4); /* len + 1, nothing more: ASan sees any write past it */
	assert_non_null(exact);
	memcpy(exact, "a\0b", 3);
	procfs_cmdline_to_string(exact, 3);
	assert_string_equal(exact, "a b");
	/* Our own command line starts with our path. */
	assert_int_equal(procfs_read_cmdline(getpid(), &own), 0);
	assert_non_null(strstr(own, "test-procfs"));
	assert_null(strchr(own, '\n'));
}

static void test_read_file(void **state)
{
	char path[] = "/tmp/profq-test-procfs-XXXXXX";
	_cleanup_free_ char *buf = NULL, *big = NULL;
	_cleanup_close_ int fd = -1;
	size_t len = 0, n = 200000;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	big = malloc(n);
	assert_non_null(big);
	for (size_t i = 0; i < n; i++)
		big[i] = (char)('a' + i % 26);
	assert_int_equal(write(fd, big, n), (ssize_t)n);

	/* Exactly at the cap is fine, one byte over is -EFBIG. */
	assert_int_equal(procfs_read_file(path, n, &buf, &len), 0);
	assert_int_equal(len, n);
	assert_memory_equal(buf, big, n);
	assert_int_equal(buf[n], '\0');
	free(buf);
	buf = NULL;
	assert_int_equal(procfs_read_file(path, n - 1, &buf, &len), -EFBIG);
	assert_null(buf);
	assert_int_equal(procfs_read_file(path, 100, &buf, &len), -EFBIG);
	assert_int_equal(procfs_read_file(path, 0, &buf, &len), -EFBIG);
	unlink(path);
	assert_int_equal(procfs_read_file(path, n, &buf, &len), -ENOENT);

	/* /proc files report size 0 but have content. */
	assert_int_equal(procfs_read_file("/proc/self/status", 1u << 20, &buf, NULL), 0);
	assert_non_null(strstr(buf, "Pid:"));
	free(buf);
	buf = NULL;
	/* An empty file is an empty string. */
	assert_int_equal(procfs_read_file("/dev/null", 10, &buf, &len), 0);
	assert_int_equal(len, 0);
	assert_string_equal(buf, "");
	free(buf);
	buf = NULL;
	assert_int_equal(procfs_read_file("/proc/self/status", 8, &buf, NULL), -EFBIG);
	/* A directory cannot be read. */
	assert_int_equal(procfs_read_file("/proc/self", 10, &buf, NULL), -EISDIR);
}

static void test_status(void **state)
{
	static const char good[] = "Name:\tpasswd\nUmask:\t0022\nState:\tS (sleeping)\n"
				   "Uid:\t1000\t0\t0\t0\nGid:\t100\t100\t100\t100\n"
				   "Groups:\t4 24 27\nCapInh:\t0000000000000000\n"
				   "CapEff:\t0000000000080000\nCapBnd:\t000001ffffffffff\n";
	ProcStatus st = { 0 };

	(void)state;
	assert_int_equal(procfs_parse_status(good, &st), 0);
	assert_int_equal(st.uid[0], 1000);
	assert_int_equal(st.uid[1], 0);
	assert_int_equal(st.uid[3], 0);
	assert_int_equal(st.gid[2], 100);
	assert_int_equal(st.cap_eff, 1ULL << 19);
	/* Each of the three lines is required, well-formed and once. */
	assert_int_equal(procfs_parse_status("Uid:\t1\t1\t1\t1\nGid:\t1\t1\t1\t1\n", &st), -EINVAL);
	assert_int_equal(procfs_parse_status("Uid:\t1\t1\t1\nGid:\t1\t1\t1\t1\n"
					     "CapEff:\t0\n",
					     &st),
			 -EINVAL);
	assert_int_equal(procfs_parse_status("Uid:\t1\t1\t1\t99999999999\nGid:\t1\t1\t1\t1\n"
					     "CapEff:\t0\n",
					     &st),
			 -EINVAL);
	assert_int_equal(procfs_parse_status("Uid:\t1\t1\t1\t1\nGid:\t1\t1\t1\t1\n"
					     "CapEff:\t00000000000000000\n",
					     &st),
			 -EINVAL);
	assert_int_equal(procfs_parse_status("Uid:\t1\t1\t1\t1\nUid:\t0\t0\t0\t0\n"
					     "Gid:\t1\t1\t1\t1\nCapEff:\t0\n",
					     &st),
			 -EINVAL);
	assert_int_equal(procfs_parse_status("", &st), -EINVAL);
	/* The live one. */
	assert_int_equal(procfs_read_status(getpid(), &st), 0);
	assert_int_equal(st.uid[0], getuid());
	assert_int_equal(st.gid[1], getegid());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status),	       cmocka_unit_test(test_maps),
		cmocka_unit_test(test_maps_malformed), cmocka_unit_test(test_maps_self),
		cmocka_unit_test(test_stat),	       cmocka_unit_test(test_stat_bad),
		cmocka_unit_test(test_stat_self),      cmocka_unit_test(test_cmdline),
		cmocka_unit_test(test_read_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
