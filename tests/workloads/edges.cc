// SPDX-License-Identifier: MIT
/*
 * edges: hot paths that unwinding must cross without frame pointers (profqd(8), --stack-copy),
 * built without them, in two halves of the run:
 *
 *   main -> run -> signals -> kill (libc) ... [kernel delivers] ... __restore_rt (libc's signal
 *                  trampoline) -> on_signal -> spin_in_handler
 *   main -> run -> exceptions -> thrower -> __cxa_throw (libstdc++) -> _Unwind_RaiseException
 *                  (libgcc_s) -> ... the search for a handler, and the catch in exceptions
 *
 *   edges [--seconds S]
 *
 * Prints its pid, runs S seconds of CPU time, half in each.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))
#define NO_TAIL() __asm__ volatile("" ::: "memory")

static volatile unsigned long sink;

/* CPU time: the halves get equal CPU time, hence equal samples, however busy the machine. */
static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

extern "C" NOINLINE void spin_in_handler(void)
{
	for (unsigned long i = 0; i < 200000; i++)
		sink = sink + i;
	NO_TAIL();
}

extern "C" NOINLINE void on_signal(int sig)
{
	(void)sig;
	spin_in_handler();
	NO_TAIL();
}

extern "C" NOINLINE void signals(double end)
{
	while (now() < end)
		kill(getpid(), SIGUSR1);
	NO_TAIL();
}

extern "C" NOINLINE void thrower(int depth)
{
	if (depth == 0)
		throw depth;
	thrower(depth - 1);
	NO_TAIL();
}

extern "C" NOINLINE void exceptions(double end)
{
	while (now() < end) {
		try {
			thrower(8);
		} catch (int) {
			sink = sink + 1;
		}
	}
	NO_TAIL();
}

extern "C" NOINLINE void run(double seconds)
{
	double start = now();

	signals(start + seconds / 2);
	exceptions(start + seconds);
	NO_TAIL();
}

int main(int argc, char *argv[])
{
	static const struct option options[] = {
		{ "seconds", required_argument, NULL, 's' },
		{},
	};
	struct sigaction sa = {};
	double seconds = 4;
	int c;

	while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
		if (c != 's') {
			fprintf(stderr, "usage: %s [--seconds S]\n", argv[0]);
			return 2;
		}
		seconds = atof(optarg);
	}
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL) < 0)
		return 1;
	printf("%d\n", (int)getpid());
	fflush(stdout);
	run(seconds);
	return 0;
}
