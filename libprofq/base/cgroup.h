/* SPDX-License-Identifier: MIT */
/*
 * A process's cgroup and the labels its path carries: the systemd unit and slice, the container
 * id. cgroup_parse_proc() reads the contents of /proc/PID/cgroup (hostile: every length bounded,
 * every line checked); cgroup_labels() derives the labels from a path, by name only (no file
 * is read). Thread-safe.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* What is read of /proc/PID/cgroup at most (one line per v1 hierarchy, and the v2 one). */
#define CGROUP_FILE_MAX 65536
/* Longest path kept: longer ones are refused (-ENAMETOOLONG). */
#define CGROUP_PATH_MAX 4096
/* Longest unit or slice name kept (systemd's own limit is 255 bytes). */
#define CGROUP_NAME_MAX 256
/* A container id: 64 hex digits. */
#define CGROUP_CONTAINER_ID_LEN 64

/*
 * The cgroup path of a process from its /proc/PID/cgroup (len bytes, need not be terminated):
 * the unified (v2) hierarchy's line "0::PATH", else the line of the v1 hierarchy that systemd
 * keeps ("N:name=systemd:PATH"), as on hybrid hosts. A " (deleted)" suffix (the cgroup was
 * removed) is dropped. A malloc'd copy in *ret. -ENOENT without either line, -EINVAL for a
 * malformed one (a path that is not absolute, a NUL byte), -ENAMETOOLONG past CGROUP_PATH_MAX.
 */
int cgroup_parse_proc(const char *buf, size_t len, char **ret);

/* Reads /proc/PID/cgroup and parses it as above. */
int cgroup_read_pid(pid_t pid, char **ret);

/*
 * Where cgroup v2 is mounted, from the contents of /proc/self/mountinfo (len bytes): the mount
 * point of the first "cgroup2" file system, as a malloc'd copy in *ret. -ENOENT without one,
 * -EINVAL for a mount point with escapes (a space in it) or not absolute.
 */
int cgroup_parse_mountinfo(const char *buf, size_t len, char **ret);
/* Reads /proc/self/mountinfo and parses it as above. */
int cgroup_v2_mount(char **ret);

/* Directories cgroup_walk() visits at most, and how deep. */
#define CGROUP_WALK_MAX_DIRS 65536
#define CGROUP_WALK_MAX_DEPTH 32

/*
 * Visits every cgroup of the v2 hierarchy mounted at mount, the root first: its id (the
 * inode of its directory, as bpf_get_current_cgroup_id() gives it) and its path as
 * /proc/PID/cgroup writes it ("/" for the root). Bounded by CGROUP_WALK_MAX_DIRS, and
 * CGROUP_WALK_MAX_DEPTH levels (deeper ones are left out); symbolic links are not followed.
 * A negative return of visit stops the walk and is returned. 0, or -errno if the mount
 * cannot be opened.
 */
int cgroup_walk(const char *mount, int (*visit)(void *userdata, uint64_t id, const char *path),
		void *userdata);

typedef struct CgroupLabels {
	/* The innermost "*.service" or "*.scope" component ("nginx.service", "session-3.scope",
	 * "user@1000.service"); "" without one. */
	char unit[CGROUP_NAME_MAX];
	/* The innermost "*.slice" component above the unit (or anywhere without one); "". */
	char slice[CGROUP_NAME_MAX];
	/* The container's id, 64 lower-case hex digits, where the path names one: docker
	 * ("docker-ID.scope", "/docker/ID"), containerd and CRI-O ("cri-containerd-ID.scope",
	 * "crio-ID.scope"), podman ("libpod-ID.scope", "/libpod_parent/libpod-ID"), kubepods
	 * ("/kubepods/.../podUID/ID"); the innermost one. "" without one. */
	char container[CGROUP_CONTAINER_ID_LEN + 1];
} CgroupLabels;

/* The labels of a cgroup path (NUL-terminated; any string: unknown shapes give no labels). */
void cgroup_labels(const char *path, CgroupLabels *ret);
