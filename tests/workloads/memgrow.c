/* SPDX-License-Identifier: MIT */
/*
 * memgrow: a memory workload with known sizes, for the memory tests.
 *
 *   memgrow [BIG_MIB [SMALL_MIB [STEP_MS [HOLD_MS]]]]     (defaults 96 32 20 1500)
 *
 * Prints its pid, waits HOLD_MS ms, then touches BIG_MIB MiB in grow_big() and SMALL_MIB MiB
 * in grow_small(), one MiB (every page written) every STEP_MS ms, holds them HOLD_MS ms, frees
 * the big part (munmap), holds HOLD_MS ms more and prints the kernel's high-water mark of its
 * resident set as /proc/self/status shows it: "VmHWM KIB". A process the OOM killer ends prints
 * nothing after its pid. grow_big() and grow_small() are built apart (-fno-ipa-icf): a page
 * fault profile (profq --event faults) splits the memory between them, 3:1 by default.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024 * 1024)
#define NOINLINE __attribute__((noinline))

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0)
		;
}

static char *map(size_t mib)
{
	void *p = mmap(NULL, mib * MIB + 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		       0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	return p;
}

/* One MiB at a time, every page written, so that each one is resident. */
static NOINLINE void touch(char *p, size_t mib, long step_ms)
{
	for (size_t i = 0; i < mib; i++) {
		memset(p + i * MIB, (int)i + 1, MIB);
		if (step_ms > 0)
			sleep_ms(step_ms);
	}
	__asm__ volatile("" ::: "memory");
}

static NOINLINE void grow_big(char *p, size_t mib, long step_ms)
{
	touch(p, mib, step_ms);
	__asm__ volatile("" ::: "memory");
}

static NOINLINE void grow_small(char *p, size_t mib, long step_ms)
{
	touch(p, mib, step_ms);
	__asm__ volatile("" ::: "memory");
}

static long vm_hwm_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

int main(int argc, char **argv)
{
	size_t big = argc > 1 ? strtoul(argv[1], NULL, 10) : 96;
	size_t small = argc > 2 ? strtoul(argv[2], NULL, 10) : 32;
	long step_ms = argc > 3 ? strtol(argv[3], NULL, 10) : 20;
	long hold_ms = argc > 4 ? strtol(argv[4], NULL, 10) : 1500;
	char *a, *b;

	printf("%d\n", (int)getpid());
	fflush(stdout);
	sleep_ms(hold_ms);
	a = map(big);
	b = map(small);
	grow_big(a, big, step_ms);
	grow_small(b, small, step_ms);
	sleep_ms(hold_ms);
	munmap(a, big * MIB + 1);
	sleep_ms(hold_ms);
	printf("VmHWM %ld\n", vm_hwm_kib());
	fflush(stdout);
	munmap(b, small * MIB + 1);
	return 0;
}
