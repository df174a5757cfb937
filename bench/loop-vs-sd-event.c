/* SPDX-License-Identifier: MIT */
/*
 * profq-bench-loop: the cost of one wakeup through profqd's own epoll loop
 * (daemon/service/loop.c) against systemd's sd-event, for the event-loop decision in
 * docs/ARCHITECTURE.md.
 *
 *   profq-bench-loop [--runs N] [--wakeups N] [--hz N] [--idle N] [--only CASE]
 *
 * Three ways to be woken, each through both loops:
 *   timer   a periodic timerfd at --hz (default 1000) as an I/O source, --wakeups (default 2000)
 *           wakeups: process CPU time (CLOCK_PROCESS_CPUTIME_ID, user + system: the kernel's
 *           wakeup included) per wakeup, which is what profqd's 10 Hz drain timer costs;
 *   sdtime  sd-event's own timer source instead of a timerfd (accuracy 1 µs, re-armed in the
 *           callback), as an sd-event profqd would write it;
 *   ping    an eventfd that the callback makes ready again, 200000 dispatches: the loop's own
 *           cost per event with no sleeping, what a busy client's events cost.
 * --idle N (default 16) more sources sit in each loop, never ready, as idle clients do.
 * Prints the median over --runs (default 7) of each figure, in ns; the loops alternate run by
 * run so that drift on a noisy machine hits both alike. --only runs one case (profq-timer,
 * sd-timer, sd-time, profq-ping, sd-ping), e.g. under `strace -c` to count its system calls.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <systemd/sd-event.h>
#include <time.h>
#include <unistd.h>

#include "base/macro.h"
#include "service/loop.h"

#define MAX_RUNS 64
#define PING_EVENTS 200000

static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

typedef struct Bench {
	unsigned wakeups, hz, idle;
	int idle_fds[2 * 256];
	/* per run */
	unsigned count, target;
	uint64_t period_us;
	Loop *loop;
	sd_event *event;
} Bench;

static int periodic_timerfd(unsigned hz)
{
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	struct itimerspec its = { 0 };

	if (fd < 0)
		return -errno;
	its.it_interval.tv_nsec = 1000000000l / hz;
	its.it_value = its.it_interval;
	if (timerfd_settime(fd, 0, &its, NULL) < 0) {
		close(fd);
		return -errno;
	}
	return fd;
}

/* The callbacks do what profqd's do with a timerfd or an eventfd: read it. */
static bool tick(Bench *b, int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return false;
	b->count++;
	return b->count >= b->target;
}

static int on_profq_timer(LoopSource *src, int fd, uint32_t events, void *userdata)
{
	Bench *b = userdata;

	(void)src;
	(void)events;
	if (tick(b, fd))
		loop_exit(b->loop);
	return 0;
}

static int on_profq_ping(LoopSource *src, int fd, uint32_t events, void *userdata)
{
	Bench *b = userdata;
	uint64_t one = 1;

	(void)src;
	(void)events;
	if (tick(b, fd))
		loop_exit(b->loop);
	else if (write(fd, &one, sizeof(one)) != sizeof(one))
		return -errno;
	return 0;
}

static int on_idle_profq(LoopSource *src, int fd, uint32_t events, void *userdata)
{
	(void)src;
	(void)fd;
	(void)events;
	(void)userdata;
	return -EIO; /* never ready */
}

static int on_sd_timer(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	Bench *b = userdata;

	(void)s;
	(void)revents;
	if (tick(b, fd))
		return sd_event_exit(b->event, 0);
	return 0;
}

static int on_sd_ping(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	Bench *b = userdata;
	uint64_t one = 1;

	(void)s;
	(void)revents;
	if (tick(b, fd))
		return sd_event_exit(b->event, 0);
	if (write(fd, &one, sizeof(one)) != sizeof(one))
		return -errno;
	return 0;
}

static int on_sd_time(sd_event_source *s, uint64_t usec, void *userdata)
{
	Bench *b = userdata;
	int r;

	if (++b->count >= b->target)
		return sd_event_exit(b->event, 0);
	r = sd_event_source_set_time(s, usec + b->period_us);
	if (r >= 0)
		r = sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
	return r;
}

static int on_idle_sd(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	(void)s;
	(void)fd;
	(void)revents;
	(void)userdata;
	return -EIO;
}

typedef enum Kind {
	KIND_TIMER,
	KIND_PING,
	KIND_SDTIME
} Kind;

/* CPU ns per event (timer kinds) or per dispatch (ping). */
static int run_profq(Bench *b, Kind kind, double *ret)
{
	int fd = kind == KIND_PING ? eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC)
				   : periodic_timerfd(b->hz);
	uint64_t t0;
	int r;

	if (fd < 0)
		return -errno;
	r = loop_new(&b->loop);
	for (unsigned i = 0; r >= 0 && i < b->idle; i++)
		r = loop_add(b->loop, b->idle_fds[2 * i], EPOLLIN, on_idle_profq, b, NULL);
	if (r >= 0)
		r = loop_add(b->loop, fd, EPOLLIN,
			     kind == KIND_PING ? on_profq_ping : on_profq_timer, b, NULL);
	b->count = 0;
	b->target = kind == KIND_PING ? PING_EVENTS : b->wakeups;
	t0 = cpu_ns();
	if (r >= 0)
		r = loop_run(b->loop);
	*ret = (double)(cpu_ns() - t0) / b->target;
	b->loop = loop_free(b->loop);
	close(fd);
	return r;
}

static int run_sd(Bench *b, Kind kind, double *ret)
{
	int fd = kind == KIND_PING    ? eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC)
		 : kind == KIND_TIMER ? periodic_timerfd(b->hz)
				      : -1;
	uint64_t t0, now;
	int r;

	if (kind != KIND_SDTIME && fd < 0)
		return -errno;
	r = sd_event_new(&b->event);
	for (unsigned i = 0; r >= 0 && i < b->idle; i++)
		r = sd_event_add_io(b->event, NULL, b->idle_fds[2 * i], EPOLLIN, on_idle_sd, b);
	b->period_us = 1000000 / b->hz;
	if (r >= 0 && kind == KIND_SDTIME) {
		r = sd_event_now(b->event, CLOCK_MONOTONIC, &now);
		if (r >= 0)
			r = sd_event_add_time(b->event, NULL, CLOCK_MONOTONIC, now + b->period_us,
					      1, on_sd_time, b);
	} else if (r >= 0)
		r = sd_event_add_io(b->event, NULL, fd, EPOLLIN,
				    kind == KIND_PING ? on_sd_ping : on_sd_timer, b);
	b->count = 0;
	b->target = kind == KIND_PING ? PING_EVENTS : b->wakeups;
	t0 = cpu_ns();
	if (r >= 0)
		r = sd_event_loop(b->event);
	*ret = (double)(cpu_ns() - t0) / b->target;
	b->event = sd_event_unref(b->event);
	if (fd >= 0)
		close(fd);
	return r;
}

int main(int argc, char **argv)
{
	static const struct option options[] = { { "runs", required_argument, NULL, 'r' },
						 { "wakeups", required_argument, NULL, 'w' },
						 { "hz", required_argument, NULL, 'z' },
						 { "idle", required_argument, NULL, 'i' },
						 { "only", required_argument, NULL, 'o' },
						 {} };
	static Bench b = { .wakeups = 2000, .hz = 1000, .idle = 16 };
	static double pt[MAX_RUNS], st[MAX_RUNS], sdt[MAX_RUNS], pp[MAX_RUNS], sp[MAX_RUNS];
	static const char *const cases[] = { "profq-timer", "sd-timer", "sd-time", "profq-ping",
					     "sd-ping" };
	unsigned runs = 7, only = 0; /* bit per case; 0: all */
	uint64_t wall0;
	int opt, r = 0;

	while ((opt = getopt_long(argc, argv, "", options, NULL)) >= 0) {
		switch (opt) {
		case 'r':
			runs = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'w':
			b.wakeups = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'z':
			b.hz = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'i':
			b.idle = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'o':
			for (unsigned k = 0; k < ARRAY_SIZE(cases); k++)
				if (streq(optarg, cases[k]))
					only |= 1u << k;
			if (!only)
				return 2;
			break;
		default:
			return 2;
		}
	}
	if (optind != argc || runs == 0 || runs > MAX_RUNS || b.wakeups == 0 || b.hz == 0 ||
	    b.hz > 1000000 || b.idle > 256) {
		fprintf(stderr, "usage: %s [--runs N<=%d] [--wakeups N] [--hz N] [--idle N<=256]\n",
			argv[0], MAX_RUNS);
		return 2;
	}
	for (unsigned i = 0; i < b.idle; i++)
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, &b.idle_fds[2 * i]) < 0) {
			fprintf(stderr, "Failed to create a socket pair: %m\n");
			return 1;
		}
	wall0 = mono_ns();
	for (unsigned run = 0; run < runs && r >= 0; run++) {
		if (!only || only & 1u << 0)
			r = run_profq(&b, KIND_TIMER, &pt[run]);
		if (r >= 0 && (!only || only & 1u << 1))
			r = run_sd(&b, KIND_TIMER, &st[run]);
		if (r >= 0 && (!only || only & 1u << 2))
			r = run_sd(&b, KIND_SDTIME, &sdt[run]);
		if (r >= 0 && (!only || only & 1u << 3))
			r = run_profq(&b, KIND_PING, &pp[run]);
		if (r >= 0 && (!only || only & 1u << 4))
			r = run_sd(&b, KIND_PING, &sp[run]);
	}
	if (r < 0) {
		fprintf(stderr, "Failed to run the loops: %s\n", strerror(-r));
		return 1;
	}
	printf("runs %u wakeups %u hz %u idle %u wall_s %.1f\n", runs, b.wakeups, b.hz, b.idle,
	       (double)(mono_ns() - wall0) / 1e9);
	printf("timer  profq_loop %.0f sd_event_io %.0f sd_event_time %.0f (CPU ns per wakeup)\n",
	       median(pt, runs), median(st, runs), median(sdt, runs));
	printf("ping   profq_loop %.0f sd_event_io %.0f (CPU ns per dispatch)\n", median(pp, runs),
	       median(sp, runs));
	return 0;
}
