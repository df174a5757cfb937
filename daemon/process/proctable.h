/* SPDX-License-Identifier: MIT */
/*
 * ProcTable: the daemon's view of processes, keyed by incarnation (pid + start time, as the BPF
 * programs read it), so pid reuse never mixes two processes.
 *
 * A Process is created on its first sample or exec/exit event. It holds its store record
 * (ProcId) and, once a sample needs them, its executable mappings with their Binaries, as they
 * were at the sample's time, from the first of (docs/ARCHITECTURE.md, "Process identity"):
 *   1. a complete generation of the MapLog (the sideband's record of the mappings, by time);
 *   2. for a child between fork and exec whose parent the log saw only partly (a parent older
 *      than profqd), the parent's /proc maps (only for samples older than the child's exec;
 *      reloaded at its first sample after it);
 *   3. its own /proc/PID/maps, while /proc still shows this incarnation;
 *   4. whatever part of a generation the MapLog has (a process already gone).
 * Mappings are reloaded when the address space changes (the samples report a new mm: exec) and,
 * at most once a second, when a sampled address is outside every known mapping (dlopen, JIT).
 *
 * Exec events update the command line and name; exit events carry the kernel's accounting
 * (user, sys, waited-for children) and exit status into the store record. Exited processes
 * leave the table shortly after (samples may still be in flight) but their records stay in the
 * store, held by the exited list, until they are older than the retention or the list is full
 * (oldest dropped, counted), or memory runs short (those without samples in any window first).
 * An exit whose event was lost (ring buffer full) is found by the sweep: a process the table
 * believes running that /proc no longer shows (or shows with another start time) is marked
 * exited, at the time it was last seen. Live processes' accounting is read from /proc on
 * request.
 * Not thread-safe.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "base/procfs.h"
#include "process/maplog.h"
#include "profq.h"
#include "store/store.h"
#include "symbolize/symbolizer.h"

typedef struct ProcTable ProcTable;

typedef struct Mapping {
	ProcMap map;
	Binary *binary; /* NULL for anonymous memory */
} Mapping;

typedef struct Process {
	uint32_t pid;
	uint64_t start_boot_ns; /* CLOCK_BOOTTIME */
	uint64_t mm_id;		/* 0 until a sample tells */
	ProcId id;		/* store record, referenced */
	uint32_t generation;	/* changes whenever addresses may change meaning (exec) or
				 * name (a perf map read again) */
	char comm[16];
	bool kthread;
	bool approx_start; /* adopted from /proc: start known to the clock tick only */
	bool maps_loaded;
	bool maps_from_log;    /* the mappings came from the sideband log */
	bool maps_from_parent; /* the parent's, for a child seen between fork and exec */
	bool exited;
	Mapping *maps; /* sorted by start */
	size_t n_maps;
	int maps_error; /* last error loading the maps, 0 if none */
	uint64_t maps_read_ns;
	uint64_t python_checked_ns;  /* maps_read_ns when Python last looked for an interpreter */
	uint64_t last_seen_ns;	     /* CLOCK_MONOTONIC */
	struct PerfMap *perfmap;     /* JIT symbols from /tmp/perf-PID.map, NULL until needed */
	uint64_t perfmap_read_ns;    /* CLOCK_MONOTONIC of the last look at the file, 0 never */
	uint64_t perfmap_dropped_ns; /* ... when memory pressure took the map, 0 never */
	bool perfmap_missed;	     /* a JIT address it did not name since it was read */
	bool perfmap_more;	     /* the last read stopped short of the file's end */
	uint64_t exec_ns;	     /* CLOCK_BOOTTIME of the last exec event, 0 if none */
	/* Samples of this image so far, for who may see them after an exec: any, the uid of the
	 * first, and whether any came under another uid or while private. */
	bool sampled;
	bool sampled_hidden;
	uint32_t sampled_uid;
	/* When an exec handed the process to an owner who must not see what ran before it, the
	 * samples from before split_ns go to this record of their own (referenced; 0: none). */
	ProcId pre_exec_id;
	uint64_t split_ns;  /* CLOCK_BOOTTIME */
	char exec_comm[16]; /* the name before the last exec */
	uint64_t hash;
	/* Memory: the newest record of the current second (realtime), not stored yet: at most a
	 * point per second of the clock is, the second's last. */
	bool mem_pending;
	struct profq_mem mem_last;
	int64_t mem_last_real_ns;  /* its time in CLOCK_REALTIME, converted when it came */
	int64_t mem_stored_second; /* of the newest point stored */
} Process;

typedef struct ProcTableStats {
	uint64_t processes;	 /* in the table now */
	uint64_t running;	 /* ... not known to have exited */
	uint64_t created;	 /* incarnations seen */
	uint64_t exited;	 /* exit events */
	uint64_t exited_held;	 /* exited processes kept queryable now */
	uint64_t exited_dropped; /* ... dropped: the list was full, or under memory pressure */
	uint64_t exited_dropped_memory; /* ... of which under memory pressure (no samples held) */
	uint64_t exits_unseen;	    /* exits found by /proc (the exit event lost), time estimated */
	uint64_t maps_reads;	    /* /proc/PID/maps reads */
	uint64_t maps_from_log;	    /* mappings taken from the sideband log */
	uint64_t maps_from_parent;  /* ... from the parent, for a child between fork and exec */
	uint64_t maps_errors;	    /* mappings that could not be had */
	uint64_t dropped;	    /* processes dropped from the table */
	uint64_t perfmap_loads;	    /* perf maps read (JIT symbols), again when grown */
	uint64_t perfmap_bad_lines; /* malformed lines skipped in them, each counted once */
	uint64_t exec_splits;	    /* execs whose earlier image was kept from the new owner */
	uint64_t perfmap_bytes_read;	/* of perf map files, all reads */
	uint64_t perfmap_bytes_refused; /* left unread for the per-process cap */
	uint64_t perfmap_dropped;	/* maps dropped under memory pressure */
	uint64_t perfmap_memory;	/* bytes the perf maps hold now */
	uint64_t cgroup_reads;		/* /proc/PID/cgroup reads (first sight, exec) */
	uint64_t cgroup_errors;		/* ... that gave no path (gone, reused, malformed) */
	uint64_t cgroup_from_id;	/* cgroups named by the kernel's id instead (gone) */
	uint64_t cgroup_walks;		/* of the v2 hierarchy, for ids the kernel would not open */
} ProcTableStats;

/* Exited processes kept queryable at most (bounded, oldest dropped first). */
#define PROCTABLE_EXITED_MAX 16384
/* An exited process stays in the table this long after it was last seen (its exit event, or a
 * sample handled after it): samples taken just before the exit may still be in the ring buffer
 * or the queue, and a sample held for its binary's DWARF (at most 5 s, profiler.c) handled
 * again finds the process as it was (its owner, its split at an exec). Dropped at 2 s, some
 * samples of short processes went missing under load. */
#define PROCTABLE_EXIT_GRACE_NS (7 * NSEC_PER_SEC)

int proctable_new(Store *store, Symbolizer *sym, MapLog *maplog, ProcTable **ret);
ProcTable *proctable_free(ProcTable *t);

/* The Process of a sample's incarnation, created on first sight. now_ns: CLOCK_MONOTONIC. */
int proctable_get(ProcTable *t, const struct profq_sample *s, uint64_t now_ns, Process **ret);
/* Whether the process of sample s has exec'd since the sample was taken (its record holds
 * another address space): read late, the sample would take it back. Changes nothing. */
bool proctable_exec_since(ProcTable *t, const struct profq_sample *s);
/* The store record sample s of p counts in: p->id, or the record of the image before an exec
 * that changed who may see the process (profqd(8), ACCESS CONTROL). */
ProcId proctable_record_of(const Process *p, const struct profq_sample *s);

/* Reads newer sideband records into the MapLog when a lookup there finds nothing. */
void proctable_set_maplog_refresh(ProcTable *t, void (*refresh)(void *userdata), void *userdata);

/* Keeps an exited process's record (e.g. loaded from disk) queryable like the others. */
void proctable_hold_exited(ProcTable *t, ProcId id, int64_t exit_ns);

/* The Process of incarnation (pid, start_boot_ns); with adopt_it, adopted from /proc when the
 * table lacks it. -ENOENT when it is not there (gone). */
int proctable_find(ProcTable *t, uint32_t pid, uint64_t start_boot_ns, bool adopt_it,
		   Process **ret);

/* Applies an exec or exit event. */
int proctable_event(ProcTable *t, const struct profq_event *e, uint64_t now_ns);

/*
 * The mapping that holds addr, loading the maps first if needed and re-reading them
 * (rate-limited) on a miss; NULL if none. time_ns: the sample's CLOCK_BOOTTIME stamp.
 */
const Mapping *proctable_find_mapping(ProcTable *t, Process *p, uint64_t addr, uint64_t time_ns,
				      uint64_t now_ns);

/* Reads the kernel's accounting of live processes from /proc into their records: those of pid,
 * or of every live process in the table with pid 0. A live pid not in the table is adopted
 * from /proc (its start time to the clock tick until a sample gives the exact one). */
void proctable_refresh(ProcTable *t, uint32_t pid);

/*
 * Marks exited the processes not seen (sampled, exec or exit event) for idle_ns that /proc no
 * longer shows as that incarnation: their exit event was lost. The exit time is when the
 * process was last seen (realtime now_real_ns less the idle time); there is no exit status
 * or final accounting. Drops exited processes from the table after a grace period for samples
 * in flight; releases exited records older than keep_ns.
 */
void proctable_sweep(ProcTable *t, uint64_t now_ns, uint64_t idle_ns, int64_t now_real_ns,
		     uint64_t keep_ns);

/*
 * The JIT function at addr from p's perf map (read on first need, again when a lookup missed
 * and the file has grown, at most every 250 ms); NULL if none. Valid until the next call.
 * Perf maps are read incrementally (perfmap_update()): what the file gained since the last
 * read, within a budget of bytes per tick shared by all processes (a read that stops short
 * goes on with the process's next sample, on a later tick), and at most the newest
 * proctable_set_perfmap_cap() bytes of each file.
 */
const char *proctable_jit_symbol(ProcTable *t, Process *p, uint64_t addr, uint64_t now_ns);
/*
 * Reads p's perf map again if a lookup missed and the file has grown (at most once a second),
 * changing p->generation if it did. For every sample before its stack is looked up in a cache
 * of symbolized stacks: a stack seen before never reaches proctable_jit_symbol() again.
 */
void proctable_jit_refresh(ProcTable *t, Process *p, uint64_t now_ns);

/*
 * The part of proctable_sweep() that costs no system call: drops the exited processes past
 * their grace from the table (their records stay, see proctable_drop_unsampled_exited()). Run
 * every second, so that a fork storm holds seconds of processes, not the sweep's ten.
 */
void proctable_drop_exited(ProcTable *t, uint64_t now_ns);

/*
 * Under memory pressure: releases the exited records that no window holds samples of (a fork
 * storm's), so that they do not crowd out the profiles. Returns how many.
 */
size_t proctable_drop_unsampled_exited(ProcTable *t);

/* Each process's perf map holds at most this many bytes of its file (the newest). */
void proctable_set_perfmap_cap(ProcTable *t, size_t cap);
/* Once per drain of the ring buffer: a new budget of perf map bytes to read. */
void proctable_tick(ProcTable *t);
/*
 * Under memory pressure: frees perf maps, those of exited processes first, then the largest,
 * until want bytes are freed or none are left. A live process's map is not read again for a
 * while (30 s). Returns the bytes freed. now_ns: CLOCK_MONOTONIC.
 */
size_t proctable_drop_perfmaps(ProcTable *t, size_t want, uint64_t now_ns);

/* This boot's identity: a hash of /proc/sys/kernel/random/boot_id (0 if unreadable). */
uint64_t proctable_boot_id(void);

/* Kernel CPU accounting as wait4() and /proc report it: user and system scaled so they add up
 * to the precise runtime (the kernel's cputime_adjust()). */
void proctable_cputime_adjust(uint64_t rtime, uint64_t utime, uint64_t stime, uint64_t *ret_user,
			      uint64_t *ret_sys);

size_t proctable_memory(const ProcTable *t);
void proctable_stats(const ProcTable *t, ProcTableStats *ret);

static inline void proctable_freep(ProcTable **t)
{
	proctable_free(*t);
}
