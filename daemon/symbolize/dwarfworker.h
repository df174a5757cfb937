/* SPDX-License-Identifier: MIT */
/*
 * DwarfWorker: libdw and libelf, for the DwarfInfos of one symbolizer, in a child process
 * (service/sandbox.h) where whatever a binary's owner put in it costs nothing but the child:
 * a crash, a SIGBUS of a file truncated under the mapping, an endless loop, or a memory bomb
 * (the child's heap is bounded) kills or times out the child, never profqd, and never holds
 * its loop. The child opens each binary's DWARF (from the descriptor profqd opened and checked;
 * separate debug files found as dwarfinfo.h says) and indexes a CU when asked for one of its
 * addresses; the index comes back in one message (a memfd), checked against the bounds a CU
 * indexed here would have, and is kept by the DwarfInfo, whose lookups need no libdw.
 *
 * One request is in flight at a time, the others queued (one per DwarfInfo, openings first). A
 * lookup that asks waits for its answer up to a bound (and the waits of a tick are bounded in
 * all), then is answered without DWARF (-EINPROGRESS) until the answer comes
 * (dwarf_worker_poll(), called by lookups and by the owner's tick). A request not answered
 * within the time limit, or a child that died on one, costs the binary it was for its DWARF;
 * the next request starts another child.
 *
 * The child runs as an unprivileged uid with CAP_DAC_READ_SEARCH only (it reads what profqd
 * reads, and can write nothing of root's), where profqd may give up the rest (see sandbox.h).
 * Not thread-safe.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "symbolize/dwarfinfo.h"

typedef struct DwarfWorkerOptions {
	uint64_t timeout_ns;	 /* a request not answered by then stops the child */
	uint64_t wait_ns;	 /* how long lookups may wait for answers per tick, in all */
	uint64_t lookup_wait_ns; /* ... and one lookup at most (its request may be queued) */
	uint64_t max_data;	 /* the child's heap (RLIMIT_DATA) */
} DwarfWorkerOptions;

typedef struct DwarfWorkerStats {
	uint64_t requests; /* sent to a child */
	uint64_t answered; /* requests over: answered, or failed */
	uint64_t children; /* started */
	uint64_t timeouts; /* requests not answered in time: the child stopped */
	uint64_t died;	   /* children that ended while working on a request */
	uint64_t refused;  /* answers that failed their checks */
	uint64_t queued;   /* requests waiting now */
	uint64_t rss;	   /* the child's resident bytes now (0: no child) */
} DwarfWorkerStats;

/* counters (borrowed, must outlive w) gets what the child's openings cost. */
int dwarf_worker_new(const DwarfWorkerOptions *o, DwarfCounters *counters, DwarfWorker **ret);
/* Stops the child. The DwarfInfos registered must be freed first. */
DwarfWorker *dwarf_worker_free(DwarfWorker *w);
/* Starts the child now rather than at the first request (a fork costs more the larger the
 * process has grown, and the first lookups should not wait for it). */
int dwarf_worker_start(DwarfWorker *w);
/* Takes the answers that came, stops a child past its time limit, and sends what is queued. */
void dwarf_worker_poll(DwarfWorker *w);
/* dwarf_worker_poll(), and a new slice of waiting time for lookups. */
void dwarf_worker_tick(DwarfWorker *w);
void dwarf_worker_stats(const DwarfWorker *w, DwarfWorkerStats *ret);
/* DwarfWorkerStats.answered, cheaply. */
uint64_t dwarf_worker_answered(const DwarfWorker *w);

/* For dwarfinfo.c: a DwarfInfo's requests go by the id registering gives it. */
int dwarf_worker_register(DwarfWorker *w, DwarfInfo *d, uint64_t *ret_id);
void dwarf_worker_unregister(DwarfWorker *w, uint64_t id);
/* Queues a request for what dwarf_info_request_info() of id's DwarfInfo says when it is sent. */
int dwarf_worker_ask(DwarfWorker *w, uint64_t id);
/* Waits for the answer to id's request (in flight or queued: the ones before it are answered
 * meanwhile), up to lookup_wait_ns and within what is left of the tick's waiting time. */
void dwarf_worker_wait(DwarfWorker *w, uint64_t id);
