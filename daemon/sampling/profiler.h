/* SPDX-License-Identifier: MIT */
/*
 * Profiler: turns samples into windowed profiles. For each sample it finds the process
 * incarnation (ProcTable), unwinds a copied user stack (unwind.h) when the sample carries one,
 * maps the raw stack to an interned symbolized stack (StackCache, else Symbolizer), and counts
 * it in the open window of the Store. Exec/exit events keep the process records current;
 * sideband records feed the MapLog that symbolizes processes already gone. profiler_tick()
 * closes windows at their boundaries (aligned to multiples of the window length in wall-clock
 * time), evicts the oldest windows beyond retention or the memory budget (those stay on disk),
 * deletes segments beyond retention or the disk budget, and trims caches (perf maps
 * included).
 * Knows nothing of BPF or sockets: tests feed it samples directly. Not thread-safe.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "process/proctable.h"
#include "process/sideband.h"
#include "profq.h"
#include "python/python.h"
#include "store/persist.h"
#include "store/store.h"
#include "symbolize/symbolizer.h"
#include "unwind/unwind.h"

typedef struct Profiler Profiler;

typedef struct ProfilerOptions {
	uint32_t frequency; /* Hz: one sample stands for 1/frequency s of CPU */
	uint64_t window_ns;
	uint64_t retention_ns;
	uint64_t max_memory; /* bytes, all of the profiler's memory */
	/* The process's resident bytes (negative: unknown). With it, max_memory bounds the
	 * whole process: what the profiler does not account (code, BPF maps, allocator slack,
	 * files libdw maps) comes off the budget, up to half of it. NULL: the profiler's own. */
	int64_t (*resident)(void);
	const char *state_dir;	/* windows persist here; NULL: in memory only */
	uint64_t max_disk;	/* bytes the state dir's segments may take; 0: no limit */
	bool unwind;		/* samples carry stack copies: compile binaries' unwind tables */
	const char *debug_dirs; /* extra roots for separate debug files; NULL */
	/* Where the Python processes and threads to walk go (the BPF maps); NULL: no Python
	 * frames. Needs unwind (the Python frames take the place of native ones). */
	const PyMapOps *python;
	/* CPU time a DWARF compile unit is indexed for at a time as samples come (the rest in
	 * profiler_work()); 0: to the end, whatever it takes. */
	uint64_t dwarf_slice_ns;
	/* Read DWARF in a worker process with these options (dwarfworker.h); NULL: here. */
	const DwarfWorkerOptions *dwarf_worker;
} ProfilerOptions;

typedef struct ProfilerStats {
	uint64_t samples;     /* samples received */
	uint64_t stored;      /* ... counted into a window */
	uint64_t bad_records; /* malformed records (dropped, counted as lost) */
	uint64_t failed;      /* samples that could not be stored (out of memory) */
	uint64_t lost;	      /* lost before reaching us (ring buffer full), reported */
	uint64_t idle;	      /* idle samples, reported */
	uint64_t truncated;   /* stacks cut at the depth limit */
	uint64_t stack_hits;  /* raw stacks found in the stack cache */
	uint64_t held;	      /* samples held until the DWARF worker answered for them */
	uint64_t held_lost;   /* ... lost: their process exec'd meanwhile (counted as lost) */
	uint64_t windows_closed;
	uint64_t evicted_retention;
	uint64_t evicted_memory;
	uint64_t memory_other;	 /* resident bytes outside the profiler's accounting, last seen */
	uint64_t data_budget;	 /* what max_memory leaves the profiler's own data, last seen */
	uint64_t persist_errors; /* windows that could not be written (kept in memory) */
	uint64_t unwind[_UNWIND_END_MAX]; /* user stacks unwound from copies, by how they end */
	uint64_t unwind_fp_frames;	  /* frames followed by frame pointer, for lack of CFI */
	uint64_t python_unmatched; /* stacks with Python frames no evaluation frame stood for */
	uint64_t mem_records;	   /* memory records received (PROFQ_EVENT_MEM) */
	uint64_t mem_points;	   /* ... stored as points (at most one a second per process) */
	uint64_t mem_unknown;	   /* ... of processes gone before we could name them */
	uint64_t offcpu_stored;	   /* off-CPU intervals counted into a window */
	uint64_t offcpu_unpaired;  /* ends without their stack (lost, or replaced) */
	uint64_t offcpu_replaced;  /* held stacks replaced before their end came */
	uint64_t offcpu_expired;   /* held stacks let go: the thread exited, or too old */
	/* whole intervals given the callers of the thread's last capture at the same place */
	uint64_t offcpu_callers_borrowed;
	uint64_t faults_stored; /* page fault samples counted into a window */
} ProfilerStats;

/*
 * With opts->state_dir, loads the windows the directory holds within the retention and
 * writes every window it closes there. A directory that cannot be used leaves the profiler
 * in memory only (see profiler_persist_state()). The directory is locked (persist_lock()) for
 * the profiler's lifetime: -EBUSY, logged, if another daemon holds it.
 */
int profiler_new(const ProfilerOptions *opts, Profiler **ret);
Profiler *profiler_free(Profiler *p);

/* Handles one ring-buffer record (size as received). */
int profiler_add_sample(Profiler *p, const struct profq_sample *s, size_t size);
/* Handles the samples held for their DWARF now, as they are named now (at stop, before the
 * last window is closed: the sampler and its maps must still be there). */
void profiler_release_held(Profiler *p);
/* Work left behind by samples (a DWARF compile unit indexed a slice at a time, see
 * ProfilerOptions.dwarf_slice_ns): does one slice; whether more is left. */
bool profiler_work(Profiler *p);
bool profiler_has_work(const Profiler *p);
/* Handles one exec/exit event record (size as received). */
int profiler_add_event(Profiler *p, const struct profq_event *e, size_t size);
/* Feeds a sideband record (mappings, exec, fork, exit) to the mapping log. */
void profiler_sideband_event(Profiler *p, const SidebandEvent *ev);
/* Called to read newer sideband records when a process's mappings are missing from the log. */
void profiler_set_sideband_refresh(Profiler *p, void (*refresh)(void *userdata), void *userdata);
/* Reads live processes' kernel accounting from /proc: those of pid, or all with 0. */
void profiler_refresh(Profiler *p, uint32_t pid);
/* Process pid (start_ns) exec'd at exec_ns (CLOCK_BOOTTIME): told as soon as the exec is read
 * from the kernel, ahead of the samples queued before its event, so that a Python interpreter
 * is followed from its first samples (python_exec()). */
void profiler_exec_seen(Profiler *p, uint32_t pid, uint64_t start_ns, uint64_t exec_ns);
/* A Python frame of a sample of pid, as soon as the sample is read (python_code_seen()). */
void profiler_python_code_seen(Profiler *p, uint32_t pid, uint64_t start_ns,
			       const struct profq_py_frame *f);
/* Between samples, every few milliseconds: what profiler_exec_seen() looks at again. */
void profiler_poll(Profiler *p);

/* Adds lost and idle samples (counter deltas) to the open window and the totals. */
void profiler_add_counters(Profiler *p, uint64_t lost, uint64_t idle);

/*
 * Housekeeping: closes the window when now (realtime) passes its end and opens the next,
 * evicts old windows, trims caches. mono_ns: CLOCK_MONOTONIC, for the process table.
 */
int profiler_tick(Profiler *p, int64_t now_ns, uint64_t mono_ns);
/* Closes the open window (at shutdown). */
int profiler_close_window(Profiler *p);

/* Persistence: NULL stats when disabled; *ret_error is the reason it is off (0 if on). */
const PersistLoadStats *profiler_persist_state(const Profiler *p, PersistStats *ret_stats,
					       bool *ret_enabled, int *ret_error);

Store *profiler_store(Profiler *p);
/*
 * Windows evicted for memory stay in the state dir until --retention or --max-disk ends them.
 * True when some are there, older than the oldest window in memory: *ret_from_ns is the start
 * of the oldest of them, *ret_deleted_ns the end of the newest window --max-disk has deleted
 * (INT64_MIN: none), so history before it is gone.
 */
bool profiler_disk_history(const Profiler *p, int64_t *ret_from_ns, int64_t *ret_deleted_ns);
Symbolizer *profiler_symbolizer(Profiler *p);
size_t profiler_memory(const Profiler *p);

/* profiler_memory() by part. */
typedef struct ProfilerMemory {
	size_t store;	   /* windows and their strings, stacks, frames */
	size_t symbolizer; /* symbol tables, CFI, DWARF indexes, address caches */
	size_t processes;  /* the process table */
	size_t perf_maps;  /* ... of which the JIT processes' perf maps */
	size_t stacks;	   /* the raw-stack cache */
	size_t maplog;	   /* mapping history */
	size_t python;	   /* interpreters followed, code objects read */
} ProfilerMemory;
void profiler_memory_parts(const Profiler *p, ProfilerMemory *ret);
void profiler_stats(const Profiler *p, ProfilerStats *ret);
void profiler_proc_stats(const Profiler *p, ProcTableStats *ret);
/* false when Python frames are off. */
bool profiler_python_stats(const Profiler *p, PythonStats *ret);

static inline void profiler_freep(Profiler **p)
{
	profiler_free(*p);
}
