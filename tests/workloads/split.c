/* SPDX-License-Identifier: MIT */
/*
 * split: a CPU workload with a known split between named functions, for the integration tests
 * and the demo.
 *
 *   split [--seconds S] [--a PCT] [--sys PCT] [--threads N] [--exit-fds N]
 *
 * Each thread repeats rounds of 100 work units of about a millisecond: PCT_A units in work_a()
 * and the rest of the user units in work_b() (main -> run -> outer_a -> work_a, run -> outer_b
 * -> work_b), and SYS units in work_sys(), which reads /dev/zero so the time goes to the kernel.
 * One unit is the same inlined arithmetic loop everywhere, so the CPU split follows the unit
 * counts. Prints its pid
 * first, then runs for S seconds of wall time, then prints two lines of ground truth: the CPU
 * time each function took, measured around every unit with the thread's CPU clock
 * ("work_a S work_b S work_sys S"), and the kernel's accounting of the process's user and system
 * time (getrusage): "user SECONDS sys SECONDS".
 *
 * --exit-fds N: each thread but the main one ends by taking N descriptors of its own (a
 * descriptor table of its own, /dev/null dup'd N times), so its exit, which closes them, lasts
 * past the main thread's join of it: the process's last thread exits while another is still
 * exiting. Then a third line: "exit_fds N close SECONDS", the thread CPU time that closing N
 * such descriptors took in a trial run (the most of any thread).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))
/* Keeps a call from becoming a tail jump, so every caller stays on the stack. */
#define NO_TAIL() __asm__ volatile("" ::: "memory")

static unsigned units_a = 70, units_sys = 0, exit_fds = 0;
static double exit_close; /* the most CPU time a thread's trial close of exit_fds took */
/* CPU seconds measured in each function, summed over threads. */
static double cpu_a, cpu_b, cpu_sys;
static pthread_mutex_t cpu_lock = PTHREAD_MUTEX_INITIALIZER;
static double seconds = 5;
/*
 * One unit is about a millisecond, so a round (100 units) spans a hundred sample periods at
 * 999 Hz: short rounds near the sampling period would alias with it (and with scheduler time
 * slices) and bias the split.
 */
static uint64_t unit_iterations = 1000000;
static volatile uint64_t sink;

static inline __attribute__((always_inline)) void spin(uint64_t n)
{
	uint64_t x = sink;

	for (uint64_t i = 0; i < n; i++)
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
	sink = x;
}

/*
 * GCC 12 sets up no frame in a leaf function, even with -fno-omit-frame-pointer
 * -mno-omit-leaf-frame-pointer, and a frame-pointer walk from such a leaf skips its caller. The
 * hot functions call this after their loop so they are not leaves.
 */
NOINLINE void checkpoint(void)
{
	NO_TAIL();
}

NOINLINE void work_a(unsigned units)
{
	spin(units * unit_iterations);
	checkpoint();
	NO_TAIL();
}

NOINLINE void work_b(unsigned units)
{
	spin(units * unit_iterations);
	checkpoint();
	NO_TAIL();
}

NOINLINE void work_sys(int fd, unsigned units, char *buf, size_t chunk)
{
	/* Calibrated like spin: chunk bytes of /dev/zero take about one unit. */
	for (unsigned i = 0; i < units; i++)
		if (read(fd, buf, chunk) < 0)
			exit(1);
	NO_TAIL();
}

NOINLINE void outer_a(unsigned units)
{
	work_a(units);
	NO_TAIL();
}

NOINLINE void outer_b(unsigned units)
{
	work_b(units);
	NO_TAIL();
}

static double now(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Bytes of /dev/zero read in the time of one unit of spin. */
static size_t calibrate_sys(int fd, char *buf, size_t max)
{
	double t0, spin_t, read_t;
	size_t chunk = 65536;

	t0 = now(CLOCK_THREAD_CPUTIME_ID);
	spin(10 * unit_iterations);
	spin_t = (now(CLOCK_THREAD_CPUTIME_ID) - t0) / 10;
	t0 = now(CLOCK_THREAD_CPUTIME_ID);
	for (int i = 0; i < 50; i++)
		if (read(fd, buf, chunk) < 0)
			exit(1);
	read_t = (now(CLOCK_THREAD_CPUTIME_ID) - t0) / 50;
	if (read_t <= 0)
		return chunk;
	chunk = (size_t)((double)chunk * spin_t / read_t);
	chunk = chunk < 4096 ? 4096 : chunk > max ? max : chunk;
	return chunk;
}

/* --exit-fds: the thread's own descriptor table, with exit_fds descriptors left for its exit. */
static void take_fds(void)
{
	double t0, took;
	int fd;

	if (unshare(CLONE_FILES) < 0)
		exit(1);
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		exit(1);
	for (int trial = 0; trial < 2; trial++) {
		for (unsigned i = 0; i < exit_fds; i++)
			if (dup2(fd, fd + 1 + (int)i) < 0)
				exit(1);
		if (trial == 1)
			break; /* left for the exit */
		t0 = now(CLOCK_THREAD_CPUTIME_ID);
		for (unsigned i = 0; i < exit_fds; i++)
			close(fd + 1 + (int)i);
		took = now(CLOCK_THREAD_CPUTIME_ID) - t0;
		pthread_mutex_lock(&cpu_lock);
		exit_close = took > exit_close ? took : exit_close;
		pthread_mutex_unlock(&cpu_lock);
	}
}

NOINLINE void *run(void *arg)
{
	unsigned units_b = 100 - units_a - units_sys;
	double end = now(CLOCK_MONOTONIC) + seconds;
	size_t max = 16u << 20, chunk = 0;
	double t0, a = 0, b = 0, sys = 0;
	char *buf = NULL;
	int fd = -1;

	(void)arg;
	if (units_sys) {
		fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
		buf = malloc(max);
		if (fd < 0 || !buf)
			exit(1);
		chunk = calibrate_sys(fd, buf, max);
	}
	/* A unit at a time, so a run ends within a millisecond of its time (short-lived
	 * processes of tens of milliseconds), however long a round is; each unit's CPU time is
	 * measured, so the truth does not rest on units costing the same. */
	for (;;) {
		for (unsigned i = 0; i < units_a; i++) {
			if (now(CLOCK_MONOTONIC) >= end)
				goto done;
			t0 = now(CLOCK_THREAD_CPUTIME_ID);
			outer_a(1);
			a += now(CLOCK_THREAD_CPUTIME_ID) - t0;
		}
		for (unsigned i = 0; i < units_b; i++) {
			if (now(CLOCK_MONOTONIC) >= end)
				goto done;
			t0 = now(CLOCK_THREAD_CPUTIME_ID);
			outer_b(1);
			b += now(CLOCK_THREAD_CPUTIME_ID) - t0;
		}
		for (unsigned i = 0; i < units_sys; i++) {
			if (now(CLOCK_MONOTONIC) >= end)
				goto done;
			t0 = now(CLOCK_THREAD_CPUTIME_ID);
			work_sys(fd, 1, buf, chunk);
			sys += now(CLOCK_THREAD_CPUTIME_ID) - t0;
		}
	}
done:
	pthread_mutex_lock(&cpu_lock);
	cpu_a += a;
	cpu_b += b;
	cpu_sys += sys;
	pthread_mutex_unlock(&cpu_lock);
	free(buf);
	if (fd >= 0)
		close(fd);
	if (exit_fds && gettid() != getpid())
		take_fds();
	return NULL;
}

int main(int argc, char *argv[])
{
	static const struct option options[] = {
		{ "seconds", required_argument, NULL, 's' },
		{ "a", required_argument, NULL, 'a' },
		{ "sys", required_argument, NULL, 'y' },
		{ "threads", required_argument, NULL, 't' },
		{ "exit-fds", required_argument, NULL, 'f' },
		{},
	};
	unsigned threads = 1;
	pthread_t tids[64];
	int c;

	while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
		switch (c) {
		case 's':
			seconds = atof(optarg);
			break;
		case 'a':
			units_a = (unsigned)atoi(optarg);
			break;
		case 'y':
			units_sys = (unsigned)atoi(optarg);
			break;
		case 't':
			threads = (unsigned)atoi(optarg);
			break;
		case 'f':
			exit_fds = (unsigned)atoi(optarg);
			break;
		default:
			fprintf(stderr,
				"usage: split [--seconds S] [--a PCT] [--sys PCT] [--threads N] "
				"[--exit-fds N]\n");
			return 2;
		}
	}
	if (units_a + units_sys > 100 || threads < 1 || threads > 64 || seconds <= 0) {
		fprintf(stderr, "split: bad arguments\n");
		return 2;
	}
	if (exit_fds) {
		struct rlimit nofile;

		/* Room for them: the soft limit raised to the hard one, and N within it. */
		if (getrlimit(RLIMIT_NOFILE, &nofile) < 0)
			return 1;
		nofile.rlim_cur = nofile.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &nofile) < 0)
			return 1;
		if (nofile.rlim_max < 64 + 16) {
			fprintf(stderr, "split: RLIMIT_NOFILE too low for --exit-fds\n");
			return 2;
		}
		if (exit_fds > nofile.rlim_max - 64)
			exit_fds = (unsigned)(nofile.rlim_max - 64);
	}
	printf("%d\n", (int)getpid());
	fflush(stdout);
	for (unsigned i = 1; i < threads; i++)
		if (pthread_create(&tids[i], NULL, run, NULL) != 0)
			return 1;
	run(NULL);
	for (unsigned i = 1; i < threads; i++)
		pthread_join(tids[i], NULL);
	struct rusage ru;
	printf("work_a %.4f work_b %.4f work_sys %.4f\n", cpu_a, cpu_b, cpu_sys);
	getrusage(RUSAGE_SELF, &ru);
	printf("user %.3f sys %.3f\n", (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
	if (exit_fds)
		printf("exit_fds %u close %.6f\n", exit_fds, exit_close);
	NO_TAIL();
	return 0;
}
