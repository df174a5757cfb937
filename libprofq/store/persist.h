/* SPDX-License-Identifier: MIT */
/*
 * Persist: a Store's closed windows to and from segment files (segment.h) in a state directory
 * (profqd(8), PERSISTENCE).
 *
 * Writer: each window is written when it closes, with every string, frame, stack and process it
 * uses that the current segment does not yet hold, and every process record that changed since
 * (exits, accounting), then fdatasync()ed: a window counts as closed only once it is on disk, so
 * kill -9 loses at most the open one. A segment covers a bounded span of time and is never
 * appended to after a restart or a failed write (a torn tail stays torn, the reader skips it);
 * segments whose windows all fell out of retention are deleted. On a write error (disk full)
 * the writer keeps the store untouched, reports the error and starts a new segment on the next
 * window. The writer holds references on what the current segment has written, so store ids it
 * maps cannot be reused under it.
 *
 * Loader: reads the segments in order into a Store; a corrupt or truncated tail ends that
 * segment only (counted), a segment of another format version is skipped (counted).
 *
 * Not thread-safe.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "store/segment.h"
#include "store/store.h"

typedef struct PersistWriter PersistWriter;

typedef struct PersistStats {
	uint64_t windows_written;
	uint64_t bytes_written;
	uint64_t segments_created;
	uint64_t segments_deleted;
	uint64_t write_errors;
	int last_error;	     /* negative errno of the last failed write, 0 after a good one */
	uint64_t disk_bytes; /* bytes in the segment files now */
	uint64_t segments;   /* segment files now */
} PersistStats;

/*
 * Lock: one daemon writes a state directory. persist_lock() creates DIR (0750) if needed and
 * takes an exclusive flock() on DIR/lock, held as long as *ret_fd is open (the caller closes
 * it; the kernel drops it when the process dies). -EBUSY if another process holds it. Readers
 * (persist_load(), the offline CLI) take no lock: segments are append-only and a torn tail is
 * skipped, so reading a directory a daemon writes is safe.
 */
#define PERSIST_LOCK_FILE "lock"
int persist_lock(const char *dir, int *ret_fd);

/* Segment files live in DIR/segments/. Creates the directories (0750) if needed. */
int persist_writer_new(Store *store, const char *dir, uint64_t segment_span_ns,
		       PersistWriter **ret);
PersistWriter *persist_writer_free(PersistWriter *w);

/* Writes closed window win of the writer's store. 0, or a negative errno (also in stats). */
int persist_write_window(PersistWriter *w, const Window *win);
/* Ends the current segment: the next window starts a new one, and what the writer held for
 * this one (strings, frames, stacks) is released to the store now. Under memory pressure. */
void persist_rotate(PersistWriter *w);
/* Does the current segment hold the window that ended at end_ns (or one before it)? Evicting
 * such a window frees little while the writer holds what it uses: rotate first. */
bool persist_segment_holds(const PersistWriter *w, int64_t end_ns);
/* Deletes segments (not the current one) whose windows all ended before not_before_ns. */
void persist_expire(PersistWriter *w, int64_t not_before_ns);
/*
 * Deletes the oldest segments (not the current one) while the segment files hold more than
 * max_bytes. Returns the end of the newest window deleted (from the file's time when it was
 * not written by this writer), INT64_MIN when none was.
 */
int64_t persist_expire_bytes(PersistWriter *w, uint64_t max_bytes);
void persist_stats(const PersistWriter *w, PersistStats *ret);

typedef struct PersistLoadStats {
	uint64_t segments;	   /* segment files read */
	uint64_t windows;	   /* windows loaded */
	uint64_t windows_skipped;  /* out of retention or out of order */
	uint64_t corrupt_segments; /* segments with a corrupt or truncated tail (tail skipped) */
	uint64_t bad_segments;	   /* unreadable, bad header, or another format version */
	uint64_t bytes;		   /* bytes read */
} PersistLoadStats;

typedef struct PersistLoadCallbacks {
	/* Every process record loaded (the last state of each). */
	void (*proc)(void *userdata, ProcId id, const StoreProc *p);
	/* A segment that could not be read whole: error, and how much of it was good. */
	void (*problem)(void *userdata, const char *path, int error, size_t good_bytes,
			size_t size);
	/* Besides problem(): a segment of another format version, and which. */
	void (*version)(void *userdata, const char *path, uint32_t version);
	/* After each segment read (oldest first): the caller may evict windows already. */
	void (*segment_done)(void *userdata);
	/* Whether the store's record id is newer than any on disk (loading history into a live
	 * store): such records are not replaced by the loaded ones. NULL: every one is. */
	bool (*keep_record)(void *userdata, ProcId id);
	void *userdata;
} PersistLoadCallbacks;

/*
 * Loads the segments of DIR/segments into store, windows ending before not_before_ns left
 * out. -ENOENT if DIR has no segments directory; other errors only for the directory itself
 * or memory; problems with single segments are counted and reported through the callbacks.
 */
int persist_load(Store *store, const char *dir, int64_t not_before_ns,
		 const PersistLoadCallbacks *cb, PersistLoadStats *ret);
/*
 * The same, windows starting at or after not_after_ns left out too. Every segment from
 * not_before_ns on is still read, so that the process records get their newest state; the
 * windows outside the range cost no memory (their definitions go with their segment).
 */
int persist_load_range(Store *store, const char *dir, int64_t not_before_ns, int64_t not_after_ns,
		       const PersistLoadCallbacks *cb, PersistLoadStats *ret);

/* Loads one segment from a buffer (tests, fuzzing). */
int persist_load_buffer(Store *store, const uint8_t *buf, size_t len, int64_t not_before_ns,
			const PersistLoadCallbacks *cb, PersistLoadStats *stats,
			SegmentParseResult *ret);

static inline void persist_writer_freep(PersistWriter **w)
{
	persist_writer_free(*w);
}
