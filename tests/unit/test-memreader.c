/* SPDX-License-Identifier: MIT */
/*
 * The memory reader's child process: reads what pread on /proc/PID/mem gives (all or nothing),
 * as an unprivileged uid with the descriptor its parent opened; reads larger than one message in
 * pieces; a child killed by someone else replaced at the next read. Waiting reads (a FUSE page)
 * and the time limit are test_fuse.py's.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/macro.h"
#include "python/memreader.h"

#define TIMEOUT_NS (5 * NSEC_PER_SEC)

static int self_mem(void)
{
	int fd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	return fd;
}

/* The reader's child: the only child of this process's main thread. */
static pid_t reader_child(void)
{
	char path[64];
	pid_t child = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)getpid());
	f = fopen(path, "re");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%d", &child), 1);
	fclose(f);
	return child;
}

static void test_reads(void **state)
{
	_cleanup_free_ uint8_t *big = malloc(3 * MEM_READER_MAX + 17), *got = NULL;
	_cleanup_close_ int fd = self_mem();
	uint64_t word = 0x0123456789abcdefULL, out = 0;
	MemReader *m = NULL;
	MemReaderStats st;
	void *hole;

	(void)state;
	if (geteuid() != 0)
		skip(); /* the child gives up root's uid */
	assert_non_null(big);
	got = malloc(3 * MEM_READER_MAX + 17);
	assert_non_null(got);
	for (size_t i = 0; i < 3 * MEM_READER_MAX + 17; i++)
		big[i] = (uint8_t)(i * 7);
	assert_int_equal(mem_reader_new(TIMEOUT_NS, &m), 0);

	assert_int_equal(mem_reader_read(m, fd, 0, (uint64_t)(uintptr_t)&word, &out, sizeof(out)),
			 0);
	assert_true(out == word);
	/* In pieces of MEM_READER_MAX. */
	assert_int_equal(mem_reader_read(m, fd, 0, (uint64_t)(uintptr_t)big, got,
					 3 * MEM_READER_MAX + 17),
			 0);
	assert_memory_equal(got, big, 3 * MEM_READER_MAX + 17);
	/* Nothing mapped there: an error, not a partial read. */
	hole = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(hole != MAP_FAILED);
	assert_int_equal(munmap(hole, 4096), 0);
	assert_true(mem_reader_read(m, fd, 0, (uint64_t)(uintptr_t)hole, &out, sizeof(out)) < 0);
	/* A range that runs off the end of the address space. */
	assert_int_equal(mem_reader_read(m, fd, 0, UINT64_MAX - 3, &out, sizeof(out)), -EFAULT);
	/* No descriptor, or one that is no process's memory. */
	assert_int_equal(mem_reader_read(m, -1, 0, 0x1000, &out, sizeof(out)), -EBADF);
	assert_true(mem_reader_read(m, STDIN_FILENO, 0, 0x1000, &out, sizeof(out)) < 0);

	mem_reader_stats(m, &st);
	assert_int_equal(st.children, 1);
	assert_int_equal(st.timeouts, 0);
	assert_true(st.reads >= 5);
	mem_reader_free(m);
}

/* The child reads as an unprivileged uid, filtered: it holds no other descriptor of ours either. */
static void test_child_unprivileged(void **state)
{
	_cleanup_close_ int fd = self_mem();
	char path[64], status[4096] = { 0 };
	MemReader *m = NULL;
	uint64_t out;
	FILE *f;

	(void)state;
	if (geteuid() != 0)
		skip();
	assert_int_equal(mem_reader_new(TIMEOUT_NS, &m), 0);
	assert_int_equal(mem_reader_read(m, fd, 0, (uint64_t)(uintptr_t)&out, &out, sizeof(out)),
			 0);
	snprintf(path, sizeof(path), "/proc/%d/status", (int)reader_child());
	f = fopen(path, "re");
	assert_non_null(f);
	assert_true(fread(status, 1, sizeof(status) - 1, f) > 0);
	fclose(f);
	assert_non_null(strstr(status, "\nUid:\t65534\t65534\t65534\t65534\n"));
	assert_non_null(strstr(status, "\nCapEff:\t0000000000000000\n"));
	assert_non_null(strstr(status, "\nNoNewPrivs:\t1\n"));
	/* The system call filter (tests/unit/test-sandbox.c tries it). */
	assert_non_null(strstr(status, "\nSeccomp:\t2\n"));
	mem_reader_free(m);
}

/* A child killed from outside: that read fails, the next one starts another child. */
static void test_child_killed(void **state)
{
	_cleanup_close_ int fd = self_mem();
	uint64_t word = 42, out = 0;
	MemReader *m = NULL;
	MemReaderStats st;
	pid_t child;
	int r;

	(void)state;
	if (geteuid() != 0)
		skip();
	assert_int_equal(mem_reader_new(TIMEOUT_NS, &m), 0);
	assert_int_equal(mem_reader_read(m, fd, 0, (uint64_t)(uintptr_t)&word, &out, sizeof(out)),
			 0);
	child = reader_child();
	assert_int_equal(kill(child, SIGKILL), 0);
	assert_int_equal(waitpid(child, NULL, 0), child);
	r = mem_reader_read(m, fd, 0, (uint64_t)(uintptr_t)&word, &out, sizeof(out));
	if (r < 0)
		assert_int_equal(mem_reader_read(m, fd, 0, (uint64_t)(uintptr_t)&word, &out,
						 sizeof(out)),
				 0);
	assert_true(out == 42);
	mem_reader_stats(m, &st);
	assert_int_equal(st.children, 2);
	mem_reader_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reads),
		cmocka_unit_test(test_child_unprivileged),
		cmocka_unit_test(test_child_killed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
