/* SPDX-License-Identifier: MIT */
/*
 * The benchmark workload: one busy thread that keeps its CPU at 100% with a deep call chain
 * that frame-pointer unwinding can follow (built with -fno-omit-frame-pointer, no inlining, no
 * sibling calls). Every level picks one of three functions from a counter, so the program has
 * a few hundred distinct stacks, like a real program and unlike a single hot loop. The leaf
 * spins in user code, and every --kernel-every'th leaf reads from /dev/zero instead, so part of
 * the samples land in the kernel with a kernel stack on top of the user stack.
 *
 *   burn [--depth N] [--kernel-every K] [--seconds S]
 *
 * Runs until killed (or for S seconds); prints nothing.
 */
#include <fcntl.h>
#include <getopt.h>
#include <time.h>

#include "macro.h"

#define LEAF_SPIN 20000
#define READ_BYTES (256 * 1024)

static int zero_fd = -1;
static unsigned kernel_every = 2;
static volatile uint64_t sink;
static char buf[READ_BYTES];

typedef void (*step_fn)(unsigned depth, uint64_t path);
static void step_a(unsigned depth, uint64_t path);
static void step_b(unsigned depth, uint64_t path);
static void step_c(unsigned depth, uint64_t path);
static step_fn const steps[3] = { step_a, step_b, step_c };

static __attribute__((noinline)) void leaf_spin(uint64_t path)
{
	uint64_t x = path | 1;

	for (unsigned i = 0; i < LEAF_SPIN; i++)
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
	sink += x;
}

static __attribute__((noinline)) void leaf_read(void)
{
	if (read(zero_fd, buf, sizeof(buf)) < 0)
		sink++;
}

static __attribute__((noinline)) void leaf(uint64_t path)
{
	if (kernel_every > 0 && path % kernel_every == 0)
		leaf_read();
	else
		leaf_spin(path);
}

/* Only the lowest levels vary, so the number of distinct stacks stays bounded (3^4). */
static inline void next(unsigned depth, uint64_t path)
{
	if (depth == 0)
		leaf(path);
	else
		steps[depth < 4 ? (path >> (2 * depth)) % 3 : 0](depth - 1, path);
	sink++; /* work after the call: keeps the frame and its return address */
}

static __attribute__((noinline)) void step_a(unsigned depth, uint64_t path)
{
	next(depth, path);
}

static __attribute__((noinline)) void step_b(unsigned depth, uint64_t path)
{
	next(depth, path + 1);
}

static __attribute__((noinline)) void step_c(unsigned depth, uint64_t path)
{
	next(depth, path + 2);
}

static uint64_t now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec;
}

int main(int argc, char *argv[])
{
	static const struct option options[] = {
		{ "depth", required_argument, NULL, 'd' },
		{ "kernel-every", required_argument, NULL, 'k' },
		{ "seconds", required_argument, NULL, 's' },
		{},
	};
	unsigned depth = 40;
	uint64_t seconds = 0, end;
	int c;

	while ((c = getopt_long(argc, argv, "d:k:s:", options, NULL)) >= 0) {
		switch (c) {
		case 'd':
			depth = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'k':
			kernel_every = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 's':
			seconds = strtoull(optarg, NULL, 10);
			break;
		default:
			fprintf(stderr, "usage: %s [--depth N] [--kernel-every K] [--seconds S]\n",
				argv[0]);
			return 2;
		}
	}
	zero_fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
	if (zero_fd < 0) {
		fprintf(stderr, "Failed to open '/dev/zero': %m\n");
		return 1;
	}
	end = seconds ? now_s() + seconds : UINT64_MAX;
	for (uint64_t path = 0; now_s() < end; path++)
		steps[0](depth, path * 7);
	return 0;
}
