/* SPDX-License-Identifier: MIT */
/*
 * Sideband: the kernel's own log of process events, read the way `perf record -a` reads it: one
 * PERF_COUNT_SW_DUMMY event per online CPU, system-wide, asking for PERF_RECORD_MMAP2
 * (executable mappings with path, device, inode, offset), PERF_RECORD_COMM (exec) and
 * PERF_RECORD_FORK/EXIT, each stamped with CLOCK_BOOTTIME like the BPF samples. The kernel writes
 * these synchronously, so profqd learns the mappings of a process that lives for milliseconds
 * without racing /proc/PID/maps. Drained on the owner's timer (no wakeups); records the kernel
 * had to drop are counted.
 *
 * Reading the rings and handling the records are separate steps, so that one thread may copy
 * records out of the rings (sideband_read()) while another parses and handles copies of them
 * (sideband_feed(), sideband_flush()); sideband_drain() does both. Not thread-safe otherwise:
 * one thread reads at a time, one other thread feeds and flushes, and only that one calls the
 * rest.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct Sideband Sideband;

typedef enum SidebandType {
	SIDEBAND_MMAP, /* an executable mapping */
	SIDEBAND_EXEC, /* the process exec'd: its mappings start over */
	SIDEBAND_FORK, /* a new process (not a thread) */
	SIDEBAND_EXIT, /* a process's main thread exited */
	_SIDEBAND_TYPE_MAX,
	_SIDEBAND_TYPE_INVALID = -EINVAL,
} SidebandType;

typedef struct SidebandEvent {
	SidebandType type;
	uint32_t pid;	  /* process (tgid) */
	uint32_t ppid;	  /* FORK: the parent */
	uint64_t time_ns; /* CLOCK_BOOTTIME */
	/* MMAP: */
	uint64_t start, len, pgoff, inode;
	uint32_t dev_major, dev_minor;
	uint32_t prot;
	const char *path; /* valid during the callback */
} SidebandEvent;

typedef void (*sideband_handler_t)(void *userdata, const SidebandEvent *ev);

/* pages_per_cpu: data pages of each CPU's ring, a power of two. */
int sideband_new(unsigned pages_per_cpu, sideband_handler_t handler, void *userdata,
		 Sideband **ret);
Sideband *sideband_free(Sideband *s);

/* Reads every pending record of every CPU and handles them, sorted by time; returns the number
 * handled. */
int sideband_drain(Sideband *s);

/* Gets each raw record (header included); valid during the call. A negative return stops the
 * reading of that CPU's ring (the records read so far are consumed). */
typedef int (*sideband_record_fn)(void *userdata, const void *rec, size_t size);
/* Hands every record of every CPU's ring to fn, CPU by CPU; they are consumed from the rings. */
int sideband_read(Sideband *s, sideband_record_fn fn, void *userdata);
/* Parses a raw record (counted as bad or lost as the case may be) and keeps it for the flush. */
int sideband_feed(Sideband *s, const void *rec, size_t size);
/* Hands the records fed since the last flush to the handler, sorted by time (equal times in the
 * order fed). The handler must not feed or flush. Returns the number handled. */
int sideband_flush(Sideband *s);
/* Records the kernel dropped because a ring was full. */
uint64_t sideband_lost(const Sideband *s);
/* Records that did not parse (counted, skipped). */
uint64_t sideband_bad(const Sideband *s);

/*
 * Parses one record (header included, size bytes) as written with the sample_id layout
 * PERF_SAMPLE_TID | PERF_SAMPLE_TIME. Returns 1 and *ret for a record of interest, 0 for one
 * to ignore (threads, other types), -EBADMSG for a malformed one; *ret_lost adds LOST records.
 * Pure: for tests and fuzzing. ret->path points into rec.
 */
int sideband_parse_record(const void *rec, size_t size, SidebandEvent *ret, uint64_t *ret_lost);

static inline void sideband_freep(Sideband **s)
{
	sideband_free(*s);
}
