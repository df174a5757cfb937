/* SPDX-License-Identifier: MIT */
/*
 * waits: one thread with a known split of its wall time between computing, sleeping and
 * blocking, for the off-CPU integration tests.
 *
 *   waits [--seconds S] [--compute MS] [--sleep MS] [--block MS]
 *
 * Repeats rounds of: compute() spinning for MS of its thread's CPU time, nap() sleeping MS in
 * nanosleep(), wait_pipe() blocking in read() on a pipe until a helper writes to it MS later
 * (main -> run -> compute | nap | wait_pipe). The helper is a child process, so that the
 * workload is one thread: its real time is its CPU time and its time switched out. Prints its
 * pid first, then runs for S seconds of wall time, then prints its truth: the wall time of
 * each function measured around every call with the monotonic clock, and the thread's CPU
 * time in each
 * ("wall compute S nap S wait_pipe S", "cpu compute S nap S wait_pipe S"), its tid
 * ("tid T"), and the kernel's accounting of the process (getrusage, without the helper's) and
 * the wall time since it started: "user S sys S real S".
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))
#define NO_TAIL() __asm__ volatile("" ::: "memory")

static double seconds = 6, compute_ms = 100, sleep_ms = 100, block_ms = 100;
static int pipe_fd[2], kick_fd[2];
static volatile uint64_t sink;

static double now(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
	struct timespec ts = { .tv_sec = (time_t)s, .tv_nsec = (long)((s - (time_t)s) * 1e9) };

	while (nanosleep(&ts, &ts) != 0)
		;
}

NOINLINE void compute(double ms)
{
	double end = now(CLOCK_THREAD_CPUTIME_ID) + ms / 1e3;
	uint64_t x = sink;

	while (now(CLOCK_THREAD_CPUTIME_ID) < end)
		for (int i = 0; i < 10000; i++)
			x = x * 6364136223846793005ULL + 1442695040888963407ULL;
	sink = x;
	NO_TAIL();
}

NOINLINE void nap(double ms)
{
	sleep_s(ms / 1e3);
	NO_TAIL();
}

NOINLINE void wait_pipe(void)
{
	char c = 1;

	/* The helper writes block_ms after it is asked to. */
	if (write(kick_fd[1], &c, 1) != 1 || read(pipe_fd[0], &c, 1) != 1)
		exit(1);
	NO_TAIL();
}

static void helper(void)
{
	char c;

	close(kick_fd[1]);
	close(pipe_fd[0]);
	/* Until the workload exits (end of file). */
	while (read(kick_fd[0], &c, 1) == 1) {
		sleep_s(block_ms / 1e3);
		if (write(pipe_fd[1], &c, 1) != 1)
			_exit(1);
	}
	_exit(0);
}

typedef struct Split {
	double wall[3], cpu[3];
} Split;

NOINLINE void run(Split *s)
{
	double end = now(CLOCK_MONOTONIC) + seconds;

	while (now(CLOCK_MONOTONIC) < end) {
		for (int f = 0; f < 3; f++) {
			double w = now(CLOCK_MONOTONIC), c = now(CLOCK_THREAD_CPUTIME_ID);

			if (f == 0)
				compute(compute_ms);
			else if (f == 1)
				nap(sleep_ms);
			else
				wait_pipe();
			s->wall[f] += now(CLOCK_MONOTONIC) - w;
			s->cpu[f] += now(CLOCK_THREAD_CPUTIME_ID) - c;
		}
	}
	NO_TAIL();
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "seconds", required_argument, NULL, 's' },
		{ "compute", required_argument, NULL, 'c' },
		{ "sleep", required_argument, NULL, 'n' },
		{ "block", required_argument, NULL, 'b' },
		{},
	};
	double start = now(CLOCK_MONOTONIC);
	struct rusage ru;
	Split s = { 0 };
	pid_t child;
	int c;

	while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
		double v = atof(optarg);

		if (v < 0 || v > 3600)
			return 2;
		if (c == 's')
			seconds = v;
		else if (c == 'c')
			compute_ms = v;
		else if (c == 'n')
			sleep_ms = v;
		else if (c == 'b')
			block_ms = v;
		else
			return 2;
	}
	if (pipe(pipe_fd) < 0 || pipe(kick_fd) < 0)
		return 1;
	child = fork();
	if (child < 0)
		return 1;
	if (child == 0)
		helper();
	close(kick_fd[0]);
	close(pipe_fd[1]);
	printf("%d\n", (int)getpid());
	fflush(stdout);
	run(&s);
	printf("wall compute %.6f nap %.6f wait_pipe %.6f\n", s.wall[0], s.wall[1], s.wall[2]);
	printf("cpu compute %.6f nap %.6f wait_pipe %.6f\n", s.cpu[0], s.cpu[1], s.cpu[2]);
	printf("tid %ld\n", (long)syscall(SYS_gettid));
	close(kick_fd[1]);
	waitpid(child, NULL, 0);
	getrusage(RUSAGE_SELF, &ru);
	printf("user %.6f sys %.6f real %.6f\n", ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
	       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6, now(CLOCK_MONOTONIC) - start);
	return 0;
}
