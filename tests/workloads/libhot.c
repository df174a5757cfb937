/* SPDX-License-Identifier: MIT */
/*
 * libhot: most of the time inside a Debian library built without frame pointers (libc's qsort
 * calling back into our comparator, and memcpy), below callers of ours:
 *
 *   main -> run -> sort_batch -> qsort (libc) -> ... -> compare
 *              \-> copy_batch -> memcpy (libc)
 *
 *   libhot [--seconds S]
 *
 * Built without frame pointers too. Prints its pid, runs S seconds.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))
#define NO_TAIL() __asm__ volatile("" ::: "memory")
#define N 20000
#define COPY (4u << 20)

static uint32_t data[N];
static char *src, *dst;

NOINLINE int compare(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

NOINLINE void sort_batch(uint32_t seed)
{
	for (size_t i = 0; i < N; i++) {
		seed = seed * 1103515245u + 12345u;
		data[i] = seed;
	}
	qsort(data, N, sizeof(data[0]), compare);
	NO_TAIL();
}

NOINLINE void copy_batch(void)
{
	for (int i = 0; i < 8; i++)
		memcpy(dst, src, COPY);
	NO_TAIL();
}

NOINLINE void run(double seconds)
{
	struct timespec ts;
	double end, t;
	uint32_t seed = 1;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	end = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + seconds;
	do {
		sort_batch(seed++);
		copy_batch();
		clock_gettime(CLOCK_MONOTONIC, &ts);
		t = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	} while (t < end);
	NO_TAIL();
}

int main(int argc, char *argv[])
{
	static const struct option options[] = {
		{ "seconds", required_argument, NULL, 's' },
		{},
	};
	double seconds = 5;
	int c;

	while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
		if (c != 's') {
			fprintf(stderr, "usage: libhot [--seconds S]\n");
			return 2;
		}
		seconds = atof(optarg);
	}
	src = malloc(COPY);
	dst = malloc(COPY);
	if (!src || !dst || seconds <= 0)
		return 1;
	memset(src, 1, COPY);
	memset(dst, 2, COPY);
	printf("%d\n", (int)getpid());
	fflush(stdout);
	run(seconds);
	NO_TAIL();
	return 0;
}
