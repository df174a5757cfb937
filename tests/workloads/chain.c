/* SPDX-License-Identifier: MIT */
/*
 * chain: a CPU workload built without frame pointers (-O2 -fomit-frame-pointer), for the
 * unwinder's tests. Two call chains five deep below main, with a known split of the time:
 *
 *   main -> level1 -> level2 -> level3 -> level4 -> leaf_a   (PCT_A %)
 *                                        level4 -> leaf_b   (rest)
 *
 *   chain [--seconds S] [--a PCT]
 *
 * Prints its pid, runs S seconds of wall time.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))
#define NO_TAIL() __asm__ volatile("" ::: "memory")

/* About a millisecond: a round of 100 units spans a hundred sample periods (no aliasing). */
#define UNIT 1000000ULL

static volatile uint64_t sink;
static unsigned pct_a = 60;

static inline __attribute__((always_inline)) void spin(uint64_t n)
{
	uint64_t x = sink;

	for (uint64_t i = 0; i < n; i++)
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
	sink = x;
}

/* Leaves use the stack (an array) so their frames are real, not register-only. */
NOINLINE void leaf_a(unsigned units)
{
	volatile uint64_t pad[8] = { units };

	spin(units * UNIT + pad[0] * 0);
	NO_TAIL();
}

NOINLINE void leaf_b(unsigned units)
{
	volatile uint64_t pad[16] = { units };

	spin(units * UNIT + pad[0] * 0);
	NO_TAIL();
}

NOINLINE void level4(unsigned a, unsigned b)
{
	leaf_a(a);
	leaf_b(b);
	NO_TAIL();
}

NOINLINE void level3(unsigned a, unsigned b)
{
	level4(a, b);
	NO_TAIL();
}

NOINLINE void level2(unsigned a, unsigned b)
{
	level3(a, b);
	NO_TAIL();
}

NOINLINE void level1(unsigned a, unsigned b)
{
	level2(a, b);
	NO_TAIL();
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char *argv[])
{
	static const struct option options[] = {
		{ "seconds", required_argument, NULL, 's' },
		{ "a", required_argument, NULL, 'a' },
		{},
	};
	double seconds = 5, end;
	int c;

	while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
		switch (c) {
		case 's':
			seconds = atof(optarg);
			break;
		case 'a':
			pct_a = (unsigned)atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: chain [--seconds S] [--a PCT]\n");
			return 2;
		}
	}
	if (pct_a > 100 || seconds <= 0) {
		fprintf(stderr, "chain: bad arguments\n");
		return 2;
	}
	printf("%d\n", (int)getpid());
	fflush(stdout);
	end = now() + seconds;
	while (now() < end)
		level1(pct_a, 100 - pct_a);
	NO_TAIL();
	return 0;
}
