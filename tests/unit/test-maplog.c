/* SPDX-License-Identifier: MIT */
/* The mapping log: generations by fork, exec and exit; what a fork storm costs it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "base/macro.h"
#include "process/maplog.h"

static void mmap_event(MapLog *l, uint32_t pid, uint64_t t, uint64_t start, const char *path)
{
	SidebandEvent ev = { .type = SIDEBAND_MMAP,
			     .pid = pid,
			     .time_ns = t,
			     .start = start,
			     .len = 0x1000,
			     .inode = start >> 12,
			     .dev_major = 8,
			     .prot = PROT_READ | PROT_EXEC,
			     .path = path };

	maplog_event(l, &ev);
}

static void event(MapLog *l, SidebandType type, uint32_t pid, uint32_t ppid, uint64_t t)
{
	SidebandEvent ev = { .type = type, .pid = pid, .ppid = ppid, .time_ns = t };

	maplog_event(l, &ev);
}

/* The mappings of pid at t, as "start:path" joined by spaces (sorted by address). */
static char *lookup(MapLog *l, uint32_t pid, uint64_t t)
{
	static char buf[4096];
	ProcMap *maps = NULL;
	size_t n = 0, len = 0;

	buf[0] = '\0';
	if (maplog_lookup(l, pid, t, &maps, &n, NULL, NULL) < 0)
		return buf;
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%" PRIx64 ":%s",
					i ? " " : "", maps[i].start, maps[i].path ?: "-");
	procfs_maps_free(maps, n);
	return buf;
}

static uint64_t mappings(MapLog *l)
{
	MapLogStats st;

	maplog_stats(l, &st);
	return st.mappings;
}

/* A process exec'd at 10 with three mappings: pid 100. */
static MapLog *parent_log(void)
{
	MapLog *l = NULL;

	assert_int_equal(maplog_new(&l), 0);
	event(l, SIDEBAND_EXEC, 100, 0, 10);
	mmap_event(l, 100, 11, 0x1000, "/usr/bin/dash");
	mmap_event(l, 100, 12, 0x5000, "/usr/lib/libc.so.6");
	mmap_event(l, 100, 13, 0x9000, "/usr/lib/ld.so");
	return l;
}

/* A child sees its parent's mappings from the fork on, and each side's later changes stay its
 * own: the parent's mmap after the fork is not the child's, nor the child's the parent's. */
static void test_fork_then_change(void **state)
{
	_cleanup_(maplog_freep) MapLog *l = parent_log();
	bool complete = false;
	uint32_t parent = 0;
	ProcMap *maps = NULL;
	size_t n = 0;

	(void)state;
	event(l, SIDEBAND_FORK, 200, 100, 20);
	event(l, SIDEBAND_FORK, 201, 100, 21);
	assert_string_equal(lookup(l, 200, 25),
			    "1000:/usr/bin/dash 5000:/usr/lib/libc.so.6 9000:/usr/lib/ld.so");
	assert_int_equal(maplog_lookup(l, 201, 25, &maps, &n, &parent, &complete), 0);
	procfs_maps_free(maps, n);
	assert_int_equal(n, 3);
	assert_int_equal(parent, 100);
	assert_true(complete);
	/* Nothing copied for the children. */
	assert_int_equal(mappings(l), 3);

	mmap_event(l, 100, 30, 0xd000, "/usr/lib/libm.so.6");
	mmap_event(l, 200, 31, 0x5000, "/tmp/over-libc");
	assert_string_equal(lookup(l, 100, 35), "1000:/usr/bin/dash 5000:/usr/lib/libc.so.6 "
						"9000:/usr/lib/ld.so d000:/usr/lib/libm.so.6");
	assert_string_equal(lookup(l, 200, 35),
			    "1000:/usr/bin/dash 5000:/tmp/over-libc 9000:/usr/lib/ld.so");
	assert_string_equal(lookup(l, 201, 35),
			    "1000:/usr/bin/dash 5000:/usr/lib/libc.so.6 9000:/usr/lib/ld.so");
	assert_int_equal(maplog_count(l, 201, 35), 3);
	/* 201 still holds the set as of the fork; 100 and 200 each have their own copy. */
	assert_int_equal(mappings(l), 3 + 4 + 3);

	/* An exec replaces the child's image; the fork generation stays for late samples. */
	event(l, SIDEBAND_EXEC, 201, 0, 40);
	mmap_event(l, 201, 41, 0x2000, "/usr/bin/true");
	assert_string_equal(lookup(l, 201, 45), "2000:/usr/bin/true");
	assert_string_equal(lookup(l, 201, 25),
			    "1000:/usr/bin/dash 5000:/usr/lib/libc.so.6 9000:/usr/lib/ld.so");
}

/* A fork storm: each child forks from a parent with many mappings, execs a small program and
 * exits. The log holds each child's own image and shares the rest: far below a copy per fork.
 * Once expired, every byte goes. */
static void test_storm_memory(void **state)
{
	_cleanup_(maplog_freep) MapLog *l = NULL;
	size_t empty, before, after;
	char path[64];

	(void)state;
	assert_int_equal(maplog_new(&l), 0);
	empty = maplog_memory(l);
	event(l, SIDEBAND_EXEC, 100, 0, 1);
	for (unsigned i = 0; i < 40; i++) {
		snprintf(path, sizeof(path), "/usr/lib/x86_64-linux-gnu/libparent%u.so", i);
		mmap_event(l, 100, 2, 0x100000 + (uint64_t)i * 0x10000, path);
	}
	before = maplog_memory(l);
	for (uint32_t pid = 1000; pid < 11000; pid++) {
		uint64_t t = 10 + (uint64_t)pid * 10;

		event(l, SIDEBAND_FORK, pid, 100, t);
		event(l, SIDEBAND_EXEC, pid, 0, t + 1);
		mmap_event(l, pid, t + 2, 0x400000, "/usr/bin/true");
		mmap_event(l, pid, t + 3, 0x7f0000000000, "/usr/lib/x86_64-linux-gnu/libc.so.6");
		event(l, SIDEBAND_EXIT, pid, 0, t + 4);
	}
	after = maplog_memory(l);
	assert_int_equal(mappings(l), 40 + 10000 * 2);
	assert_string_equal(
		lookup(l, 10999, 10 + 10999 * 10 + 3),
		"400000:/usr/bin/true 7f0000000000:/usr/lib/x86_64-linux-gnu/libc.so.6");
	assert_int_equal(maplog_count(l, 10999, 10 + 10999 * 10), 40);
	/* Per child: its pid's log and its own two mappings, the paths once for all. A copy of
	 * the parent's 40 mappings each would be over 2 KiB a child. */
	print_message("%zu bytes for 10,000 children\n", after - before);
	assert_true((after - before) / 10000 < sizeof(ProcMap) * 2 + 512);

	maplog_expire(l, UINT64_MAX / 2, 0);
	event(l, SIDEBAND_EXIT, 100, 0, 200000);
	maplog_expire(l, UINT64_MAX / 2, 0);
	assert_int_equal(mappings(l), 0);
	/* The tables' own arrays may stay as large as they grew; the mappings and paths are
	 * gone. */
	assert_true(maplog_memory(l) < empty + 200 * 1024);
}

/* Expiry keeps generations that ended within keep_ns, for samples still in flight. */
static void test_expire(void **state)
{
	_cleanup_(maplog_freep) MapLog *l = parent_log();

	(void)state;
	event(l, SIDEBAND_FORK, 200, 100, 20);
	event(l, SIDEBAND_EXIT, 200, 0, 30);
	maplog_expire(l, 35, 10);
	assert_int_equal(maplog_count(l, 200, 25), 3);
	maplog_expire(l, 41, 10);
	assert_int_equal(maplog_count(l, 200, 25), 0);
	assert_int_equal(maplog_count(l, 100, 25), 3);
	assert_int_equal(mappings(l), 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fork_then_change),
		cmocka_unit_test(test_storm_memory),
		cmocka_unit_test(test_expire),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
