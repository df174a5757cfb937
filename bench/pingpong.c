/* SPDX-License-Identifier: MIT */
/*
 * pingpong: context-switch storms for bench/offcpu-cost.sh.
 *
 *   pingpong pipe SECONDS      two threads pass a byte back and forth over two pipes: every
 *                              pass is a wait and a wake-up (100k+ switches a second)
 *   pingpong sleepers SECONDS N  N threads each sleeping 150 ms in a loop: rare waits, each
 *                              one captured with its stack
 *
 * Prints the round trips (pipe) or wake-ups (sleepers) it made.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int ab[2], ba[2];
static volatile int stop;
static unsigned long count;

static void *echo(void *arg)
{
	char c;

	(void)arg;
	while (read(ab[0], &c, 1) == 1 && write(ba[1], &c, 1) == 1)
		;
	return NULL;
}

static void *sleeper(void *arg)
{
	struct timespec ts = { 0, 150 * 1000 * 1000 };

	(void)arg;
	while (!stop) {
		nanosleep(&ts, NULL);
		__atomic_add_fetch(&count, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	double seconds = argc > 2 ? atof(argv[2]) : 10;
	time_t end = time(NULL) + (time_t)seconds;
	pthread_t t;

	if (argc > 1 && strcmp(argv[1], "sleepers") == 0) {
		int n = argc > 3 ? atoi(argv[3]) : 100;

		for (int i = 0; i < n && i < 10000; i++)
			if (pthread_create(&t, NULL, sleeper, NULL) != 0)
				return 1;
		sleep((unsigned)seconds);
		stop = 1;
		printf("%lu\n", count);
		return 0;
	}
	if (pipe(ab) < 0 || pipe(ba) < 0 || pthread_create(&t, NULL, echo, NULL) != 0)
		return 1;
	while (time(NULL) < end) {
		char c = 1;

		for (int i = 0; i < 1000; i++)
			if (write(ab[1], &c, 1) != 1 || read(ba[0], &c, 1) != 1)
				return 1;
		count += 1000;
	}
	printf("%lu\n", count);
	return 0;
}
