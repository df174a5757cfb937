/* SPDX-License-Identifier: MIT */
/*
 * MapLog: the executable mappings of recent processes as the sideband reported them, so a
 * process that is gone before its samples are drained (a short-lived one) is still symbolized.
 * Per pid, a few generations: fork starts one with a copy of the parent's mappings, exec starts
 * an empty one, mmap adds to the current one, exit ends it. Ended generations are kept for a
 * while (maplog_expire) for samples still in flight. Bounded in entries. Not thread-safe.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/procfs.h"
#include "process/sideband.h"

typedef struct MapLog MapLog;

typedef struct MapLogStats {
	uint64_t pids;	   /* pids with a log now */
	uint64_t mappings; /* mappings held now */
	uint64_t dropped;  /* mappings dropped at the caps */
} MapLogStats;

int maplog_new(MapLog **ret);
MapLog *maplog_free(MapLog *l);

void maplog_event(MapLog *l, const SidebandEvent *ev);

/*
 * The mappings of pid at time_ns (CLOCK_BOOTTIME): those of the generation that was current
 * then. A copy the caller frees with procfs_maps_free(), sorted by address. *ret_complete
 * (may be NULL) says whether the log saw the generation from its start (exec or fork): else
 * it holds only the mappings made since profqd started. *ret_parent (may be NULL) is the
 * parent when pid was then a child between fork and exec (running its parent's image), else
 * 0. -ENOENT if none; -ENODATA for such a child with no mappings logged at all.
 */
int maplog_lookup(MapLog *l, uint32_t pid, uint64_t time_ns, ProcMap **ret, size_t *ret_n,
		  uint32_t *ret_parent, bool *ret_complete);

/* How many mappings the generation current at time_ns holds (0 if none). */
size_t maplog_count(MapLog *l, uint32_t pid, uint64_t time_ns);

/* Drops generations that ended before now_ns - keep_ns. */
void maplog_expire(MapLog *l, uint64_t now_ns, uint64_t keep_ns);

size_t maplog_memory(const MapLog *l);
void maplog_stats(const MapLog *l, MapLogStats *ret);

static inline void maplog_freep(MapLog **l)
{
	maplog_free(*l);
}
