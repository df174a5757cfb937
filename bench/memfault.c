/* SPDX-License-Identifier: MIT */
/*
 * memfault: the workloads of bench/mem-cost.sh.
 *
 *   memfault fault MIB_PER_S SECONDS   maps 64 MiB, writes a byte per page, unmaps, again,
 *                                      paced to MIB_PER_S; prints the rate reached (MiB/s)
 *   memfault statm ROUNDS              reads /proc/PID/statm of every process ROUNDS times;
 *                                      prints the processes and the ns per read
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (64UL << 20)

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fault(double rate, double seconds)
{
	long page = sysconf(_SC_PAGESIZE);
	double t0 = now_s(), done = 0;

	while (now_s() - t0 < seconds) {
		char *p = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			       0);
		double ahead;

		if (p == MAP_FAILED)
			return 1;
		for (size_t off = 0; off < CHUNK; off += (size_t)page)
			p[off] = 1;
		munmap(p, CHUNK);
		done += (double)CHUNK / (1 << 20);
		ahead = done / rate - (now_s() - t0);
		if (ahead > 0)
			usleep((useconds_t)(ahead * 1e6));
	}
	printf("%.0f\n", done / (now_s() - t0));
	return 0;
}

static int statm(int rounds)
{
	char path[64], buf[256];
	long reads = 0, procs = 0;
	double t0 = now_s();

	for (int i = 0; i < rounds; i++) {
		DIR *d = opendir("/proc");
		struct dirent *e;

		if (!d)
			return 1;
		procs = 0;
		while ((e = readdir(d))) {
			int fd;

			if (e->d_name[0] < '1' || e->d_name[0] > '9')
				continue;
			snprintf(path, sizeof(path), "/proc/%s/statm", e->d_name);
			fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				continue;
			if (read(fd, buf, sizeof(buf)) > 0)
				reads++;
			close(fd);
			procs++;
		}
		closedir(d);
	}
	printf("%ld %.0f\n", procs, (now_s() - t0) * 1e9 / (double)(reads ? reads : 1));
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "fault"))
		return fault(atof(argv[2]), atof(argv[3]));
	if (argc == 3 && !strcmp(argv[1], "statm"))
		return statm(atoi(argv[2]));
	fprintf(stderr, "usage: memfault fault MIB_PER_S SECONDS | statm ROUNDS\n");
	return 2;
}
