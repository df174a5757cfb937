/* SPDX-License-Identifier: MIT */
/*
 * PerfMap: symbols of JIT code from a process's perf map, /tmp/perf-PID.map, as written by node
 * --perf-basic-prof, python -X perf and Java agents: one "START SIZE NAME" line per function,
 * START and SIZE in hex. The file is hostile: it is read only if it is a regular file owned by
 * the process's user; malformed lines are skipped and counted. A last line without its newline
 * is being written: it is left for a later read.
 * Later lines win over earlier ones for the same start (JIT code is moved and its memory
 * reused).
 *
 * The file only grows while the JIT runs, and can grow large (tens of MiB for a long-running
 * node): perfmap_update() reads it incrementally, from where the last read stopped, at most
 * max_read bytes per call (the caller's loop is never stalled: it calls again for the rest),
 * and keeps only the newest `cap` bytes of it. Not thread-safe.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "symbolize/mounts.h"

typedef struct PerfMap PerfMap;

/* The most of one file a PerfMap holds, whatever the caller asks. */
#define PERFMAP_MAX_FILE (64u << 20)

/* An empty map, to be filled by perfmap_update(). */
int perfmap_new(PerfMap **ret);
/* Parses a perf map's text (all of it, at once). */
int perfmap_parse(const char *buf, size_t len, PerfMap **ret, size_t *ret_bad);

typedef struct PerfMapRead {
	uint64_t bytes;	  /* of the file read by this call */
	uint64_t refused; /* of the file left unread for the cap, newly (counted once) */
	uint64_t bad;	  /* malformed lines newly found (each line counted once per file) */
	uint64_t entries; /* lines that became entries */
	bool restarted;	  /* the map was emptied and read anew (replaced, shrunk, past the cap) */
	bool more;	  /* the file holds more than was read: call again */
} PerfMapRead;

/*
 * Brings m up to date with the perf map of process pid (as seen from its own root:
 * /proc/PID/root/tmp/perf-NSPID.map) if it belongs to uid. A file that only grew (same inode,
 * not smaller) is read from where the last read stopped; a file replaced or shrunk is read
 * anew (the map emptied first). At most max_read bytes are read per call (ret->more if there
 * is more). A file larger than cap (at most PERFMAP_MAX_FILE) is read from cap/2 bytes before
 * its end (its newest entries: code compiled last), and so is one that grows until what the
 * map would hold passes cap: the map never holds more than cap bytes of text, and a file that
 * grows a line at a time is read anew only once per cap/2 bytes of growth.
 * The file is opened with mounts_open_in_root(): never on a FUSE file system (-EREMOTE), never
 * through a symbolic link (-ELOOP), never a mount point.
 * -ENOENT if there is no file, -EPERM if it belongs to someone else; m is unchanged then.
 */
int perfmap_update(PerfMap *m, Mounts *mounts, pid_t pid, uid_t uid, size_t max_read, size_t cap,
		   PerfMapRead *ret);

/* The function holding addr: its name (valid until m next changes), or NULL. */
const char *perfmap_lookup(const PerfMap *m, uint64_t addr, uint64_t *ret_offset);
size_t perfmap_count(const PerfMap *m);
/* Malformed lines in what the map holds now. */
size_t perfmap_bad(const PerfMap *m);
/* Heap bytes held (allocated, not just used). */
size_t perfmap_memory(const PerfMap *m);
PerfMap *perfmap_free(PerfMap *m);

static inline void perfmap_freep(PerfMap **m)
{
	perfmap_free(*m);
}
