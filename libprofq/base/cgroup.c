/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/cgroup.h"
#include "base/macro.h"
#include "base/procfs.h"

#define DELETED_SUFFIX " (deleted)"

/* Whether line (n bytes, no newline) is the hierarchy wanted: 2 the v2 one, 1 name=systemd, 0
 * neither; *ret_path its path. -EINVAL for a line without the two colons. */
static int classify_line(const char *line, size_t n, const char **ret_path, size_t *ret_len)
{
	const char *c1 = memchr(line, ':', n), *c2;
	size_t rest;

	if (!c1)
		return -EINVAL;
	rest = n - (size_t)(c1 + 1 - line);
	c2 = memchr(c1 + 1, ':', rest);
	if (!c2)
		return -EINVAL;
	*ret_path = c2 + 1;
	*ret_len = n - (size_t)(c2 + 1 - line);
	if (c1 - line == 1 && line[0] == '0' && c2 == c1 + 1)
		return 2;
	if ((size_t)(c2 - c1 - 1) == strlen("name=systemd") &&
	    memcmp(c1 + 1, "name=systemd", strlen("name=systemd")) == 0)
		return 1;
	return 0;
}

int cgroup_parse_proc(const char *buf, size_t len, char **ret)
{
	const char *best = NULL, *p = buf, *end = buf + MIN(len, (size_t)CGROUP_FILE_MAX);
	size_t best_len = 0;
	int best_rank = 0;
	char *copy;

	/* One line per step: the loop ends within the (bounded) buffer. */
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		const char *path;
		size_t plen;
		int rank;

		if (n > 0) {
			rank = classify_line(p, n, &path, &plen);
			if (rank < 0)
				return rank;
			if (rank > best_rank) {
				best_rank = rank;
				best = path;
				best_len = plen;
			}
		}
		p += n + 1;
	}
	if (!best)
		return -ENOENT;
	if (best_len > strlen(DELETED_SUFFIX) &&
	    memcmp(best + best_len - strlen(DELETED_SUFFIX), DELETED_SUFFIX,
		   strlen(DELETED_SUFFIX)) == 0)
		best_len -= strlen(DELETED_SUFFIX);
	if (best_len == 0 || best[0] != '/' || memchr(best, '\0', best_len))
		return -EINVAL;
	if (best_len >= CGROUP_PATH_MAX)
		return -ENAMETOOLONG;
	copy = strndup(best, best_len);
	if (!copy)
		return -ENOMEM;
	*ret = copy;
	return 0;
}

int cgroup_read_pid(pid_t pid, char **ret)
{
	_cleanup_free_ char *buf = NULL;
	char path[64];
	size_t len;
	int r;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	r = procfs_read_file(path, CGROUP_FILE_MAX, &buf, &len);
	if (r < 0)
		return r;
	return cgroup_parse_proc(buf, len, ret);
}

int cgroup_parse_mountinfo(const char *buf, size_t len, char **ret)
{
	const char *p = buf, *end = buf + len;

	/* One line per step: the loop ends within the buffer. */
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		const char *f = p, *lend = p + n, *sep, *point = NULL;
		size_t point_len = 0;
		char *copy;

		p += n + 1;
		/* "ID PARENT MAJ:MIN ROOT POINT OPTIONS [TAGS...] - FSTYPE SOURCE OPTIONS" */
		for (int field = 0; field < 5 && f < lend; field++) {
			const char *sp = memchr(f, ' ', (size_t)(lend - f));

			if (!sp)
				break;
			if (field == 4) {
				point = f;
				point_len = (size_t)(sp - f);
			}
			f = sp + 1;
		}
		sep = point ? memmem(point, (size_t)(lend - point), " - ", 3) : NULL;
		if (!sep || (size_t)(lend - sep) < 3 + 8 || memcmp(sep + 3, "cgroup2 ", 8) != 0)
			continue;
		if (point_len == 0 || point[0] != '/' || memchr(point, '\\', point_len) ||
		    memchr(point, '\0', point_len))
			return -EINVAL;
		if (point_len >= CGROUP_PATH_MAX)
			return -ENAMETOOLONG;
		copy = strndup(point, point_len);
		if (!copy)
			return -ENOMEM;
		*ret = copy;
		return 0;
	}
	return -ENOENT;
}

int cgroup_v2_mount(char **ret)
{
	_cleanup_free_ char *buf = NULL;
	size_t len;
	int r;

	r = procfs_read_file("/proc/self/mountinfo", 4u << 20, &buf, &len);
	if (r < 0)
		return r;
	return cgroup_parse_mountinfo(buf, len, ret);
}

static void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

typedef struct Walk {
	int (*visit)(void *userdata, uint64_t id, const char *path);
	void *userdata;
	size_t dirs;
	char path[CGROUP_PATH_MAX];
} Walk;

/* Visits the directory open at fd, whose path is w->path (len bytes), and those below it. */
static int walk_dir(Walk *w, int fd, size_t len, unsigned depth)
{
	_cleanup_(closedirp) DIR *d = NULL;
	struct dirent *de;
	struct stat st;
	int r;

	if (fstat(fd, &st) < 0) {
		close(fd);
		return 0;
	}
	w->dirs++;
	r = w->visit(w->userdata, (uint64_t)st.st_ino, len ? w->path : "/");
	if (r < 0 || depth >= CGROUP_WALK_MAX_DEPTH) {
		close(fd);
		return MIN(r, 0);
	}
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return 0;
	}
	while (w->dirs < CGROUP_WALK_MAX_DIRS && (de = readdir(d))) {
		size_t n = strlen(de->d_name);
		int sub;

		if (de->d_type != DT_DIR || streq(de->d_name, ".") || streq(de->d_name, "..") ||
		    len + 1 + n >= sizeof(w->path))
			continue;
		sub = openat(dirfd(d), de->d_name,
			     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
		if (sub < 0)
			continue;
		w->path[len] = '/';
		memcpy(w->path + len + 1, de->d_name, n + 1);
		r = walk_dir(w, sub, len + 1 + n, depth + 1);
		w->path[len] = '\0';
		if (r < 0)
			return r;
	}
	return 0;
}

int cgroup_walk(const char *mount, int (*visit)(void *userdata, uint64_t id, const char *path),
		void *userdata)
{
	_cleanup_free_ Walk *w = calloc(1, sizeof(Walk));
	int fd;

	if (!w)
		return -ENOMEM;
	w->visit = visit;
	w->userdata = userdata;
	fd = open(mount, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	return walk_dir(w, fd, 0, 0);
}

static bool has_suffix(const char *s, size_t n, const char *suffix)
{
	size_t k = strlen(suffix);

	return n > k && memcmp(s + n - k, suffix, k) == 0;
}

static bool has_prefix(const char *s, size_t n, const char *prefix)
{
	size_t k = strlen(prefix);

	return n >= k && memcmp(s, prefix, k) == 0;
}

static bool is_hex_id(const char *s, size_t n)
{
	if (n != CGROUP_CONTAINER_ID_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* The container id a component names, given the component above it: true and *ret_id. */
static bool container_of(const char *c, size_t n, const char *parent, size_t pn,
			 const char **ret_id)
{
	static const char *const prefixes[] = { "docker-", "cri-containerd-", "crio-", "libpod-",
						"containerd-" };

	if (has_suffix(c, n, ".scope")) {
		n -= strlen(".scope");
		for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++) {
			size_t k = strlen(prefixes[i]);

			if (has_prefix(c, n, prefixes[i]) && is_hex_id(c + k, n - k)) {
				*ret_id = c + k;
				return true;
			}
		}
		return false;
	}
	/* cgroupfs drivers: /docker/ID, /libpod_parent/libpod-ID, /kubepods/.../podUID/ID. */
	if (has_prefix(c, n, "libpod-") && is_hex_id(c + 7, n - 7)) {
		*ret_id = c + 7;
		return true;
	}
	if (!is_hex_id(c, n) || !parent)
		return false;
	if ((pn == 6 && memcmp(parent, "docker", 6) == 0) ||
	    (pn == 10 && memcmp(parent, "containerd", 10) == 0) || has_prefix(parent, pn, "pod")) {
		*ret_id = c;
		return true;
	}
	return false;
}

static void set_name(char *dst, size_t size, const char *s, size_t n)
{
	if (n >= size)
		return; /* a name systemd would not make: no label */
	memcpy(dst, s, n);
	dst[n] = '\0';
}

void cgroup_labels(const char *path, CgroupLabels *ret)
{
	size_t len = strnlen(path, CGROUP_PATH_MAX);
	const char *p = path, *end = path + len, *parent = NULL;
	const char *slice = NULL, *unit_slice = NULL;
	size_t pn = 0, slice_n = 0, unit_slice_n = 0;
	CgroupLabels l = { 0 };

	while (p < end) {
		const char *slash = memchr(p, '/', (size_t)(end - p));
		size_t n = slash ? (size_t)(slash - p) : (size_t)(end - p);
		const char *id;

		if (n > 0) {
			if (has_suffix(p, n, ".slice")) {
				slice = p;
				slice_n = n;
			} else if (has_suffix(p, n, ".service") || has_suffix(p, n, ".scope")) {
				set_name(l.unit, sizeof(l.unit), p, n);
				unit_slice = slice;
				unit_slice_n = slice_n;
			}
			if (container_of(p, n, parent, pn, &id))
				set_name(l.container, sizeof(l.container), id,
					 CGROUP_CONTAINER_ID_LEN);
			parent = p;
			pn = n;
		}
		p += n + 1;
	}
	if (l.unit[0] && unit_slice)
		set_name(l.slice, sizeof(l.slice), unit_slice, unit_slice_n);
	else if (!l.unit[0] && slice)
		set_name(l.slice, sizeof(l.slice), slice, slice_n);
	*ret = l;
}
