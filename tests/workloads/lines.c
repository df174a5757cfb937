/* SPDX-License-Identifier: MIT */
/*
 * lines: two hot source lines in one function with a known CPU split, for `profq lines`.
 *
 *   lines [--seconds S] [--a PCT]
 *
 * hot() runs the same multiply-add chain on two lines of its own, LINE_A for PCT units of a
 * round and LINE_B for the rest (main -> hot). Prints its pid first, then runs for S seconds,
 * then one line of ground truth: each line's number and the CPU seconds measured around it
 * with the thread's CPU clock: "line_a N S line_b N S".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))

static volatile uint64_t sink;
static uint64_t unit_iterations = 1000000;
static unsigned line_a, line_b;

static double now(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Each loop on one line, so all its instructions carry that line. hot() calls now(), so it is
 * not a leaf and a frame-pointer walk from it finds main. */
NOINLINE void hot(unsigned units_a, unsigned units_b, double *a, double *b)
{
	uint64_t x, n;
	double t0;

	t0 = now(CLOCK_THREAD_CPUTIME_ID);
	x = sink;
	n = units_a * unit_iterations;
	line_a = __LINE__ + 2;
	/* clang-format off */
	for (uint64_t i = 0; i < n; i++) x = x * 6364136223846793005ULL + 1442695040888963407ULL;
	/* clang-format on */
	sink = x;
	*a += now(CLOCK_THREAD_CPUTIME_ID) - t0;

	t0 = now(CLOCK_THREAD_CPUTIME_ID);
	x = sink;
	n = units_b * unit_iterations;
	line_b = __LINE__ + 2;
	/* clang-format off */
	for (uint64_t i = 0; i < n; i++) x = x * 6364136223846793005ULL + 1442695040888963407ULL;
	/* clang-format on */
	sink = x;
	*b += now(CLOCK_THREAD_CPUTIME_ID) - t0;
}

int main(int argc, char *argv[])
{
	double seconds = 4, a = 0, b = 0, end;
	unsigned units_a = 70;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--seconds") == 0) {
			seconds = atof(argv[i + 1]);
		} else if (strcmp(argv[i], "--a") == 0) {
			units_a = (unsigned)atoi(argv[i + 1]);
		} else {
			fprintf(stderr, "usage: lines [--seconds S] [--a PCT]\n");
			return 2;
		}
	}
	if (units_a > 100 || !(seconds > 0)) {
		fprintf(stderr, "lines: bad arguments\n");
		return 2;
	}
	printf("%d\n", (int)getpid());
	fflush(stdout);
	/* Rounds of 100 units (about 0.1 s), so the split holds for any run of a few rounds. */
	end = now(CLOCK_MONOTONIC) + seconds;
	while (now(CLOCK_MONOTONIC) < end)
		hot(units_a, 100 - units_a, &a, &b);
	printf("line_a %u %.4f line_b %u %.4f\n", line_a, a, line_b, b);
	return 0;
}
