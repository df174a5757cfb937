/* SPDX-License-Identifier: MIT */
/*
 * Clocks. The BPF programs stamp events with CLOCK_BOOTTIME; windows and process times are
 * stored in realtime (ns since the epoch) so they mean the same after a reboot; timers use
 * CLOCK_MONOTONIC. Header only; thread-safe.
 */
#pragma once

#include <stdint.h>
#include <time.h>

static inline uint64_t clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static inline uint64_t now_mono_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

static inline int64_t now_real_ns(void)
{
	return (int64_t)clock_ns(CLOCK_REALTIME);
}

/* realtime - boottime now: add it to a CLOCK_BOOTTIME stamp to get realtime. */
static inline int64_t boot_to_real_offset(void)
{
	int64_t best = 0, best_gap = INT64_MAX;

	/* The boot clock read between two realtime reads, three times: the tightest bracket
	 * wins, so that a preemption between two reads (milliseconds on a busy machine) does not
	 * move the offset. */
	for (int i = 0; i < 3; i++) {
		int64_t before = now_real_ns();
		int64_t boot = (int64_t)clock_ns(CLOCK_BOOTTIME);
		int64_t after = now_real_ns();

		if (after - before < best_gap) {
			best_gap = after - before;
			best = before + (after - before) / 2 - boot;
		}
	}
	return best;
}
