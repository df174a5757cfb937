/* SPDX-License-Identifier: MIT */
/*
 * contend: two threads taking turns on one mutex, for the off-CPU integration tests.
 *
 *   contend [--seconds S]
 *
 * Each thread repeats: take_lock() (pthread_mutex_lock), hold() spinning 5 ms of its CPU time
 * with the lock held, unlock, then 1 ms of work without it. Prints its pid first, then runs for
 * S seconds, then prints the wall time both threads spent in take_lock(), measured around every
 * call with the monotonic clock: "waited S".
 */
#include <getopt.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))
#define NO_TAIL() __asm__ volatile("" ::: "memory")

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static double seconds = 3, end_s;
static volatile uint64_t sink;

static double now(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void spin(double ms)
{
	double end = now(CLOCK_THREAD_CPUTIME_ID) + ms / 1e3;
	uint64_t x = sink;

	while (now(CLOCK_THREAD_CPUTIME_ID) < end)
		for (int i = 0; i < 10000; i++)
			x = x * 6364136223846793005ULL + 1442695040888963407ULL;
	sink = x;
}

NOINLINE void take_lock(void)
{
	pthread_mutex_lock(&lock);
	NO_TAIL();
}

NOINLINE void hold(void)
{
	spin(5);
	NO_TAIL();
}

static void *worker(void *arg)
{
	double *waited = arg;

	while (now(CLOCK_MONOTONIC) < end_s) {
		double t = now(CLOCK_MONOTONIC);

		take_lock();
		*waited += now(CLOCK_MONOTONIC) - t;
		hold();
		pthread_mutex_unlock(&lock);
		spin(1);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option options[] = { { "seconds", required_argument, NULL, 's' }, {} };
	double waited[2] = { 0 };
	pthread_t t[2];
	int c;

	while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
		if (c != 's')
			return 2;
		seconds = atof(optarg);
		if (!(seconds > 0 && seconds <= 3600))
			return 2;
	}
	printf("%d\n", (int)getpid());
	fflush(stdout);
	end_s = now(CLOCK_MONOTONIC) + seconds;
	for (int i = 0; i < 2; i++)
		if (pthread_create(&t[i], NULL, worker, &waited[i]) != 0)
			return 1;
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	printf("waited %.6f\n", waited[0] + waited[1]);
	return 0;
}
