/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/cgroup.h"
#include "base/log.h"
#include "base/macro.h"
#include "process/cgroupids.h"

typedef struct CgroupEntry {
	uint64_t id;
	char *path;
} CgroupEntry;

/* open_by_handle_at()'s handle type for kernfs (cgroup v2): the 64-bit id. */
#define FILEID_KERNFS 0xfe

struct CgroupIds {
	char *mount; /* NULL: no v2 hierarchy */
	int mount_fd;
	bool no_handles;      /* open_by_handle_at() refused (no CAP_DAC_READ_SEARCH): walks only */
	CgroupEntry *entries; /* sorted by id */
	size_t n, allocated;
	uint64_t last_walk_ns;
	bool walked;
	CgroupIdsStats stats;
};

static void entries_clear(CgroupIds *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->entries[i].path);
	c->n = 0;
	c->stats.memory = 0;
}

int cgroup_ids_new(CgroupIds **ret)
{
	CgroupIds *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	c->mount_fd = -1;
	r = cgroup_v2_mount(&c->mount);
	if (r < 0)
		log_debug_errno(r, "No cgroup v2 hierarchy, cgroup ids are not resolved: %m");
	else
		c->mount_fd = open(c->mount, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	*ret = c;
	return 0;
}

CgroupIds *cgroup_ids_free(CgroupIds *c)
{
	if (!c)
		return NULL;
	entries_clear(c);
	free(c->entries);
	free(c->mount);
	if (c->mount_fd >= 0)
		close(c->mount_fd);
	free(c);
	return NULL;
}

static int on_cgroup(void *userdata, uint64_t id, const char *path)
{
	CgroupIds *c = userdata;
	char *copy;
	int r;

	/* Delegated subtrees let users make cgroups: the table is bounded. */
	if (c->stats.memory + strlen(path) + 1 + sizeof(CgroupEntry) > CGROUP_IDS_MAX_MEMORY)
		return -ENOBUFS;
	r = GREEDY_REALLOC(c->entries, c->allocated, c->n + 1);
	if (r < 0)
		return r;
	copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	c->entries[c->n++] = (CgroupEntry){ .id = id, .path = copy };
	c->stats.memory += strlen(path) + 1 + sizeof(CgroupEntry);
	return 0;
}

static int cmp_entry(const void *a, const void *b)
{
	const CgroupEntry *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/* Where id is, or would go, in the sorted table. */
static size_t position(const CgroupIds *c, uint64_t id)
{
	size_t lo = 0, hi = c->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->entries[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static const char *lookup(const CgroupIds *c, uint64_t id)
{
	size_t i = position(c, id);

	return i < c->n && c->entries[i].id == id ? c->entries[i].path : NULL;
}

/* Adds one resolved id to the table, in order; a full table starts over. */
static const char *remember(CgroupIds *c, uint64_t id, const char *path)
{
	CgroupEntry e;
	size_t i;

	if (c->stats.memory + strlen(path) + 1 + sizeof(CgroupEntry) > CGROUP_IDS_MAX_MEMORY)
		entries_clear(c);
	i = position(c, id);
	if (on_cgroup(c, id, path) < 0)
		return NULL;
	/* on_cgroup() appended it: move it into place. */
	e = c->entries[c->n - 1];
	memmove(c->entries + i + 1, c->entries + i, (c->n - 1 - i) * sizeof(CgroupEntry));
	c->entries[i] = e;
	return c->entries[i].path;
}

/*
 * The path of id by the kernel's own lookup: open_by_handle_at() with a kernfs handle opens the
 * cgroup's directory, whose /proc/self/fd link names it. -ESTALE (or -ENOENT) when the cgroup
 * is gone, -EPERM without CAP_DAC_READ_SEARCH.
 */
static int by_handle(CgroupIds *c, uint64_t id, const char **ret)
{
	union {
		struct file_handle fh;
		char buf[sizeof(struct file_handle) + sizeof(uint64_t)];
	} h = { .fh = { .handle_bytes = sizeof(uint64_t), .handle_type = FILEID_KERNFS } };
	_cleanup_close_ int fd = -1;
	char link[64], target[CGROUP_PATH_MAX + 512];
	size_t mlen = strlen(c->mount);
	ssize_t n;

	memcpy(h.fh.f_handle, &id, sizeof(id));
	fd = open_by_handle_at(c->mount_fd, &h.fh, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return negative_errno();
	target[n] = '\0';
	/* Below the mount, as /proc/PID/cgroup writes it. */
	if ((size_t)n < mlen || memcmp(target, c->mount, mlen) != 0 ||
	    (target[mlen] != '\0' && target[mlen] != '/'))
		return -EXDEV;
	*ret = remember(c, id, target[mlen] ? target + mlen : "/");
	return *ret ? 0 : -ENOMEM;
}

static void walk(CgroupIds *c, uint64_t now_ns)
{
	int r;

	c->walked = true;
	c->last_walk_ns = now_ns;
	c->stats.walks++;
	entries_clear(c);
	r = cgroup_walk(c->mount, on_cgroup, c);
	if (r < 0)
		log_debug_errno(r, "Failed to walk the cgroups at '%s': %m", c->mount);
	qsort(c->entries, c->n, sizeof(CgroupEntry), cmp_entry);
	c->stats.known = c->n;
}

const char *cgroup_ids_path(CgroupIds *c, uint64_t id, uint64_t now_ns)
{
	const char *path = NULL;
	int r;

	if (!c->mount || c->mount_fd < 0 || id == 0)
		return NULL;
	path = lookup(c, id);
	if (!path && !c->no_handles) {
		r = by_handle(c, id, &path);
		if (r >= 0) {
			c->stats.by_handle++;
			return path;
		}
		if (r == -ESTALE || r == -ENOENT) {
			c->stats.misses++;
			return NULL; /* removed: a walk cannot find it either */
		}
		log_debug_errno(r, "Cgroups are not opened by their ids, they are walked: %m");
		c->no_handles = true;
	}
	if (!path && (!c->walked || now_ns - c->last_walk_ns >= CGROUP_IDS_WALK_INTERVAL_NS)) {
		walk(c, now_ns);
		path = lookup(c, id);
	}
	if (!path)
		c->stats.misses++;
	return path;
}

void cgroup_ids_stats(const CgroupIds *c, CgroupIdsStats *ret)
{
	*ret = c->stats;
}
