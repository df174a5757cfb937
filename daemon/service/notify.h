/* SPDX-License-Identifier: MIT */
/*
 * Notify: tells the service manager how profqd is doing, with sd_notify(3): READY=1 once
 * sampling runs and the query socket is bound, STATUS= lines with the sampling rate, WATCHDOG=1
 * keep-alives from the main loop when the unit sets WatchdogSec=, STOPPING=1 at shutdown.
 *
 * Without a service manager ($NOTIFY_SOCKET unset) every call is a no-op. A message that cannot
 * be sent is logged once and never stops the daemon: sampling matters more than the manager's
 * view of it. Owns only itself. Not thread-safe: call from the main loop.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef struct Notifier Notifier;

/* What a STATUS= line says. Counters are cumulative; the notifier turns them into rates. */
typedef struct NotifyStats {
	unsigned cpus;
	unsigned frequency_hz;
	uint64_t samples; /* taken since start */
	uint64_t lost;	  /* lost since start, for any reason */
	uint64_t processes;
	uint64_t memory_bytes;
	uint64_t max_memory_bytes;
} NotifyStats;

/* Fills *ret; called only when a message is due. */
typedef void (*NotifyStatsFn)(void *userdata, NotifyStats *ret);

/* A STATUS= line is sent this often from notifier_tick(). */
#define NOTIFY_STATUS_INTERVAL_NS (5 * 1000000000ULL)

/* Reads $NOTIFY_SOCKET and $WATCHDOG_USEC/$WATCHDOG_PID (sd_watchdog_enabled(3)). */
int notifier_new(Notifier **ret);
Notifier *notifier_free(Notifier *n);

/* READY=1 with a first STATUS= line. */
void notifier_ready(Notifier *n, uint64_t now_mono_ns, NotifyStatsFn stats, void *userdata);
/*
 * From every tick of the main loop: WATCHDOG=1 when a quarter of the watchdog interval has
 * passed since the last one (so one slow tick does not cost a restart), STATUS= when
 * NOTIFY_STATUS_INTERVAL_NS has. Cheap when nothing is due.
 */
void notifier_tick(Notifier *n, uint64_t now_mono_ns, NotifyStatsFn stats, void *userdata);
void notifier_stopping(Notifier *n);

static inline void notifier_freep(Notifier **n)
{
	notifier_free(*n);
}
