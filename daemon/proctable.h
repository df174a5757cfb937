/* SPDX-License-Identifier: MIT */
/*
 * ProcTable: the daemon's live view of the processes it has sampled, keyed by incarnation
 * (pid + start time, as read by the BPF program), so pid reuse never mixes two processes. Each
 * Process holds its store record (ProcId) and its executable mappings with their Binaries,
 * read from /proc/PID/maps when the process is first sampled, again when its address space
 * changes (exec: the BPF program reports a new mm) and, at most once a second, when a sampled
 * address falls outside every known mapping (dlopen, JIT).
 * Processes not sampled for a while that are gone from /proc are dropped by proctable_sweep().
 * Not thread-safe.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "profq.h"
#include "procfs.h"
#include "store.h"
#include "symbolizer.h"

typedef struct ProcTable ProcTable;

typedef struct Mapping {
	ProcMap map;
	Binary *binary; /* NULL for anonymous memory */
} Mapping;

typedef struct Process {
	uint32_t pid;
	uint64_t start_boot_ns; /* CLOCK_BOOTTIME */
	uint64_t mm_id;
	ProcId id;	     /* store record, referenced */
	uint32_t generation; /* changes whenever addresses may change meaning (exec) */
	char comm[16];
	Mapping *maps; /* sorted by start */
	size_t n_maps;
	int maps_error; /* last error reading /proc/PID/maps, 0 if none */
	uint64_t maps_read_ns;
	uint64_t last_seen_ns;
	uint64_t hash;
} Process;

typedef struct ProcTableStats {
	uint64_t processes;   /* in the table now */
	uint64_t created;     /* incarnations seen */
	uint64_t maps_reads;  /* /proc/PID/maps reads */
	uint64_t maps_errors; /* ... that failed (process gone, permission) */
	uint64_t dropped;     /* processes dropped from the table */
} ProcTableStats;

int proctable_new(Store *store, Symbolizer *sym, ProcTable **ret);
ProcTable *proctable_free(ProcTable *t);

/* The Process of a sample's incarnation, created on first sight. now_ns: CLOCK_MONOTONIC. */
int proctable_get(ProcTable *t, const struct profq_sample *s, uint64_t now_ns, Process **ret);

/* The mapping that holds addr, re-reading the maps (rate-limited) on a miss; NULL if none. */
const Mapping *proctable_find_mapping(ProcTable *t, Process *p, uint64_t addr, uint64_t now_ns);

/* Drops processes not sampled for idle_ns that no longer exist. */
void proctable_sweep(ProcTable *t, uint64_t now_ns, uint64_t idle_ns);

size_t proctable_memory(const ProcTable *t);
void proctable_stats(const ProcTable *t, ProcTableStats *ret);

static inline void proctable_freep(ProcTable **t)
{
	proctable_free(*t);
}
