/* SPDX-License-Identifier: MIT */
/*
 * /proc helpers: bounded file reads and strict parsers for /proc/PID/{maps,stat,cmdline}. The
 * parsers take a buffer (so they can be fuzzed) and treat it as hostile: every field is checked,
 * a malformed line is an error for that line only where noted. Thread-safe.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct ProcMap {
	uint64_t start;
	uint64_t end;
	uint64_t pgoff;
	uint64_t inode;
	uint32_t dev_major;
	uint32_t dev_minor;
	uint32_t prot; /* PROT_READ | PROT_WRITE | PROT_EXEC */
	char *path; /* NULL for anonymous mappings; "[vdso]" and friends as the kernel names them */
} ProcMap;

/* Reads at most max bytes of a file (NUL-terminated copy). -EFBIG if it is longer. */
int procfs_read_file(const char *path, size_t max, char **ret, size_t *ret_len);
int procfs_read_fd(int fd, size_t max, char **ret, size_t *ret_len);

/* This process's resident set in bytes (/proc/self/statm), or a negative errno. */
int64_t procfs_self_resident(void);

/*
 * Parses the executable mappings (prot includes PROT_EXEC) of a maps file. Malformed lines are
 * skipped and counted in *ret_bad (may be NULL). The array and its paths are owned by the
 * caller: free with procfs_maps_free().
 */
int procfs_parse_maps(const char *buf, size_t len, ProcMap **ret, size_t *ret_n, size_t *ret_bad);
void procfs_maps_free(ProcMap *maps, size_t n);

typedef struct ProcStat {
	char comm[16];
	char state;
	uint32_t ppid;
	uint64_t utime, stime, cutime, cstime; /* clock ticks */
	uint64_t starttime;		       /* clock ticks since boot */
	uint32_t num_threads;
} ProcStat;

/* Parses /proc/PID/stat (the comm may hold spaces and parentheses). */
int procfs_parse_stat(const char *buf, ProcStat *ret);

typedef struct ProcStatus {
	uint32_t uid[4]; /* real, effective, saved, filesystem */
	uint32_t gid[4];
	uint64_t cap_eff; /* effective capabilities */
} ProcStatus;

/* Parses /proc/PID/status (NUL-terminated): the Uid, Gid and CapEff lines, each required. */
int procfs_parse_status(const char *buf, ProcStatus *ret);

/* Turns a cmdline buffer (NUL-separated) into one line: NULs become spaces, control characters
 * become '?', trailing separators are dropped. Works in place on len bytes of buf and then
 * NUL-terminates it, so buf must hold len + 1 bytes. */
void procfs_cmdline_to_string(char *buf, size_t len);

/* Convenience wrappers that read /proc/PID/... */
int procfs_read_stat(pid_t pid, ProcStat *ret);
int procfs_read_status(pid_t pid, ProcStatus *ret);
int procfs_read_cmdline(pid_t pid, char **ret);
int procfs_read_maps(pid_t pid, ProcMap **ret, size_t *ret_n);

/* Clock ticks per second (sysconf(_SC_CLK_TCK)). */
uint64_t procfs_clock_ticks(void);
