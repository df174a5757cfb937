/* SPDX-License-Identifier: MIT */
/*
 * profq-bench-memreader: what a read of a process's memory costs through profqd's memory
 * reader (python/memreader.h: a child process, a round trip over a socket pair) against a
 * pread on /proc/PID/mem in the process itself, for docs/PERFORMANCE.md.
 *
 *   profq-bench-memreader [READS] [BYTES]
 *
 * Reads BYTES (8) of its own memory READS (20000) times each way, alternating the two three
 * times; prints per read the wall time and this process's CPU time (the reader's child's own
 * CPU time is not in it).
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "base/macro.h"
#include "python/memreader.h"

static double clock_s(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	long reads = argc > 1 ? atol(argv[1]) : 20000;
	size_t bytes = argc > 2 ? (size_t)atol(argv[2]) : 8;
	_cleanup_free_ uint8_t *src = calloc(1, MAX(bytes, (size_t)1));
	_cleanup_free_ uint8_t *dst = calloc(1, MAX(bytes, (size_t)1));
	int fd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
	MemReader *m = NULL;

	if (fd < 0 || !src || !dst || reads <= 0 || bytes > MEM_READER_MAX ||
	    mem_reader_new(NSEC_PER_SEC, &m) < 0)
		return 1;
	printf("round  pread_wall_us  pread_cpu_us  reader_wall_us  reader_cpu_us\n");
	for (int round = 1; round <= 3; round++) {
		double w0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID), w1,
		       c1;

		for (long i = 0; i < reads; i++)
			if (pread(fd, dst, bytes, (off_t)(uintptr_t)src) != (ssize_t)bytes)
				return 1;
		w1 = clock_s(CLOCK_MONOTONIC);
		c1 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
		for (long i = 0; i < reads; i++)
			if (mem_reader_read(m, fd, 0, (uint64_t)(uintptr_t)src, dst, bytes) < 0)
				return 1;
		printf("%5d  %13.2f  %12.2f  %14.2f  %13.2f\n", round, (w1 - w0) / reads * 1e6,
		       (c1 - c0) / reads * 1e6, (clock_s(CLOCK_MONOTONIC) - w1) / reads * 1e6,
		       (clock_s(CLOCK_PROCESS_CPUTIME_ID) - c1) / reads * 1e6);
	}
	mem_reader_free(m);
	close(fd);
	return 0;
}
