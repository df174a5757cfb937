/* SPDX-License-Identifier: MIT */
/*
 * CgroupIds: cgroup v2 ids (as the BPF programs read them with bpf_get_current_cgroup_id())
 * to paths, for a process whose /proc entry is gone by the time profqd reads it. The kernel
 * opens a cgroup by its id (open_by_handle_at() with a kernfs handle, which needs
 * CAP_DAC_READ_SEARCH): one call per new id, and a cgroup already removed is known to be gone.
 * Without the capability the paths come from walks of the v2 hierarchy (base/cgroup.h:
 * cgroup_walk()), each replacing the table, at most one per CGROUP_IDS_WALK_INTERVAL_NS: a
 * cgroup made and removed between two walks is never known. The table holds at most
 * CGROUP_IDS_MAX_MEMORY. Owned by the main thread; not thread-safe.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* A walk of 302 cgroups takes 4-10 ms on a 2-CPU VM (docs/PERFORMANCE.md): one a second. */
#define CGROUP_IDS_WALK_INTERVAL_NS (1000 * 1000 * 1000ULL)
#define CGROUP_IDS_MAX_MEMORY (4u << 20)

typedef struct CgroupIds CgroupIds;

typedef struct CgroupIdsStats {
	uint64_t by_handle; /* ids the kernel opened */
	uint64_t walks;	    /* of the hierarchy */
	uint64_t known;	    /* cgroups the last walk found */
	uint64_t misses;    /* ids not found (removed, or no v2 hierarchy) */
	size_t memory;	    /* bytes the table holds */
} CgroupIdsStats;

/* Finds the v2 mount now; without one every lookup misses. */
int cgroup_ids_new(CgroupIds **ret);
CgroupIds *cgroup_ids_free(CgroupIds *c);

/* The path of cgroup id, walking the hierarchy again on a miss (rate-limited); NULL when
 * unknown. now_ns: CLOCK_MONOTONIC. The string stays valid until the next call. */
const char *cgroup_ids_path(CgroupIds *c, uint64_t id, uint64_t now_ns);

void cgroup_ids_stats(const CgroupIds *c, CgroupIdsStats *ret);

static inline void cgroup_ids_freep(CgroupIds **c)
{
	if (*c)
		cgroup_ids_free(*c);
}
