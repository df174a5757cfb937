/* SPDX-License-Identifier: MIT */
/*
 * PerfMap: symbols of JIT code from a process's perf map, /tmp/perf-PID.map, as written by node
 * --perf-basic-prof, python -X perf and Java agents: one "START SIZE NAME" line per function,
 * START and SIZE in hex. The file is hostile: it is read only if it is a regular file owned by
 * the process's user, up to a size cap; malformed lines are skipped and counted. A last line
 * without its newline is being written: it is left for a later read.
 * Later lines win over earlier ones for the same start (JIT code is moved and its memory
 * reused). Not thread-safe.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct PerfMap PerfMap;

#define PERFMAP_MAX_FILE (64u << 20)

/* Parses a perf map's text. */
int perfmap_parse(const char *buf, size_t len, PerfMap **ret, size_t *ret_bad);

/*
 * Reads the perf map of process pid (as seen from its own root: /proc/PID/root/tmp/perf-NSPID.map)
 * if it belongs to uid. -ENOENT if there is none, -EPERM if it belongs to someone else,
 * -EFBIG beyond the cap. *ret_size is the file size read, to notice growth.
 */
int perfmap_load(pid_t pid, uid_t uid, PerfMap **ret, uint64_t *ret_size);
/* The file's current size (0 if none), to decide on a reload. */
uint64_t perfmap_file_size(pid_t pid);

/* The function holding addr: its name (valid while m lives), or NULL. */
const char *perfmap_lookup(const PerfMap *m, uint64_t addr, uint64_t *ret_offset);
size_t perfmap_count(const PerfMap *m);
size_t perfmap_bad(const PerfMap *m);
size_t perfmap_memory(const PerfMap *m);
PerfMap *perfmap_free(PerfMap *m);

static inline void perfmap_freep(PerfMap **m)
{
	perfmap_free(*m);
}
