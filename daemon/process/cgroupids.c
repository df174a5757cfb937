/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/cgroup.h"
#include "base/log.h"
#include "base/macro.h"
#include "process/cgroupids.h"

typedef struct CgroupEntry {
	uint64_t id;
	char *path;
} CgroupEntry;

struct CgroupIds {
	char *mount;	      /* NULL: no v2 hierarchy */
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
	r = cgroup_v2_mount(&c->mount);
	if (r < 0)
		log_debug_errno(r, "No cgroup v2 hierarchy, cgroup ids are not resolved: %m");
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
	free(c);
	return NULL;
}

static int on_cgroup(void *userdata, uint64_t id, const char *path)
{
	CgroupIds *c = userdata;
	char *copy;
	int r;

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

static const char *lookup(const CgroupIds *c, uint64_t id)
{
	size_t lo = 0, hi = c->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->entries[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < c->n && c->entries[lo].id == id ? c->entries[lo].path : NULL;
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
	const char *path;

	if (!c->mount || id == 0)
		return NULL;
	path = lookup(c, id);
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
