/* SPDX-License-Identifier: MIT */
/*
 * Mounts: which devices hold files profqd must not read, by the mount table of each process's
 * mount namespace (/proc/PID/mountinfo). A file on a FUSE file system is served by a daemon a
 * user may run (fusermount3 is setuid, and user namespaces allow FUSE mounts): reading it,
 * even stat()ing its path, waits for that daemon, which may never answer, and profqd's main
 * loop would wait with it. Such files are refused before they are touched.
 *
 * Devices are global, mount tables per namespace: a table is read per namespace (by the inode
 * of /proc/PID/ns/mnt), kept, and read again (at most once a second per namespace) when a
 * device it does not list turns up; then profqd's own namespace's (a container's overlay
 * layers lie on a file system only the host mounts). A device with major 0 (tmpfs, btrfs,
 * FUSE...) that neither lists (a btrfs subvolume inside a mounted one; a file mapped through a
 * descriptor passed from another namespace) is FUSE if the FUSE control file system
 * (/sys/fs/fuse/connections) lists it, and refused when that file system is not mounted. A
 * real block device (major != 0) that no table lists is allowed. Not thread-safe.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

typedef struct Mounts Mounts;

typedef struct MountsStats {
	uint64_t tables_read; /* mount tables read */
	uint64_t refused;     /* files refused: FUSE, or a device nothing tells of */
	size_t namespaces;    /* tables kept */
} MountsStats;

/* Tables kept; the least recently used go beyond. */
#define MOUNTS_MAX_NAMESPACES 64
/* Bytes of one mountinfo read; a longer one is cut (its mounts past the cut are unknown). */
#define MOUNTS_MAX_TABLE (4u << 20)

int mounts_new(Mounts **ret);
Mounts *mounts_free(Mounts *m);

/*
 * Whether the file on device major:minor that process pid maps may be read: 0, or -EREMOTE
 * when it is on a FUSE file system or on an anonymous device nothing tells of (see above).
 * now_ns (CLOCK_MONOTONIC) paces the re-reads. A process gone (no /proc entry): -EREMOTE for
 * anonymous devices, whose mount cannot be checked any more.
 */
int mounts_check(Mounts *m, pid_t pid, uint32_t major, uint32_t minor, uint64_t now_ns);

/*
 * Opens name in the directory dir (relative, '/'-separated) of process pid's root directory,
 * with open flags (O_CLOEXEC and O_NOFOLLOW added), without touching a FUSE file system: each
 * directory on the way is opened O_PATH and checked by its device (mounts_check()) before
 * anything is looked up in it, no symbolic link is followed, nothing resolves outside the
 * process's root, and the file must be in its directory's file system (not a mount point).
 * The fd, or -EREMOTE (refused, counted), -ELOOP (a link on the way), -EXDEV, -errno.
 */
int mounts_open_in_root(Mounts *m, pid_t pid, const char *dir, const char *name, int flags,
			uint64_t now_ns);
/* The same, calling each_dir(userdata, dirfd) with each directory on the way (its root first),
 * an O_PATH descriptor checked as above and valid during the call only. */
int mounts_open_in_root_dirs(Mounts *m, pid_t pid, const char *dir, const char *name, int flags,
			     uint64_t now_ns, void (*each_dir)(void *userdata, int dirfd),
			     void *userdata);

/*
 * Parses a mountinfo text (len bytes): calls add(userdata, major, minor, fuse) for each mount,
 * fuse when its type is fuse, fuse.* or fuseblk. Malformed lines are skipped. Exposed for the
 * tests and the fuzzer.
 */
void mounts_parse(const char *text, size_t len,
		  void (*add)(void *userdata, uint32_t major, uint32_t minor, bool fuse),
		  void *userdata);

/*
 * stat() of path (absolute) in profqd's own mount namespace, without leaving the root's mount:
 * a path that crosses into another mount is -EXDEV before that mount's file system is asked
 * anything (a FUSE file system mounted on the way included), one through a symbolic link
 * -ELOOP. For the common case, cheaply: a few microseconds.
 */
int mounts_stat_in_root_mount(Mounts *m, const char *path, struct stat *ret);

void mounts_stats(const Mounts *m, MountsStats *ret);
size_t mounts_memory(const Mounts *m);

static inline void mounts_freep(Mounts **m)
{
	mounts_free(*m);
}
