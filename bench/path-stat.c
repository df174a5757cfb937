/* SPDX-License-Identifier: MIT */
/*
 * What profqd's identity check of a mapped binary by path costs (daemon/symbolize/mounts.c,
 * mounts_stat_in_root_mount()): openat2(O_PATH, RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS) from the
 * root's descriptor, fstat() and close(), which never asks a file system mounted on the way,
 * against the plain stat() it replaced. For docs/PERFORMANCE.md:
 *
 *   cc -O2 -o /tmp/path-stat bench/path-stat.c && /tmp/path-stat [PATH] [N]
 *
 * PATH (default: this machine's libc) must lie on the root's mount; N calls (200000) each way,
 * alternating the two three times; prints microseconds per call.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "/usr/lib/x86_64-linux-gnu/libc.so.6";
	long n = argc > 2 ? atol(argv[2]) : 200000;
	struct open_how how = { .flags = O_PATH | O_CLOEXEC,
				.resolve = RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS |
					   RESOLVE_NO_MAGICLINKS };
	int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	struct stat st;

	if (root < 0 || path[0] != '/' || n <= 0 || stat(path, &st) < 0) {
		fprintf(stderr, "usage: %s [ABSOLUTE-PATH] [N]\n", argv[0]);
		return 1;
	}
	printf("round  stat_us  openat2_fstat_close_us\n");
	for (int round = 1; round <= 3; round++) {
		double t0 = now_s(), t1, t2;

		for (long i = 0; i < n; i++)
			(void)stat(path, &st);
		t1 = now_s();
		for (long i = 0; i < n; i++) {
			int fd = (int)syscall(SYS_openat2, root, path + 1, &how, sizeof(how));

			if (fd < 0 || fstat(fd, &st) < 0) {
				perror("openat2 (is the path on the root's mount?)");
				return 1;
			}
			close(fd);
		}
		t2 = now_s();
		printf("%5d  %7.2f  %22.2f\n", round, (t1 - t0) / (double)n * 1e6,
		       (t2 - t1) / (double)n * 1e6);
	}
	return 0;
}
