/* SPDX-License-Identifier: MIT */
#include <xxhash.h>

#include "base/hashindex.h"
#include "base/macro.h"
#include "process/maplog.h"

#define GENERATIONS 4		  /* per pid: enough for fork, exec, and a pid reused */
#define MAPS_PER_GENERATION 8192  /* a JVM maps a few thousand */
#define MAPS_TOTAL (256u * 1024u) /* all pids together */

typedef struct Generation {
	uint64_t start_ns, end_ns; /* [start, end); end UINT64_MAX while current */
	uint32_t forked_from;	   /* fork: the parent, whose mappings may be unknown to us */
	bool complete;		   /* every mapping since its start was seen (exec, or fork of a
				    * complete one), not just those after profqd started */
	ProcMap *maps;
	size_t n, allocated;
} Generation;

typedef struct PidLog {
	uint32_t pid;
	unsigned n_gens;
	Generation gens[GENERATIONS]; /* oldest first */
} PidLog;

struct MapLog {
	PidLog **logs;
	size_t n, allocated;
	HashIndex *index;
	size_t total_maps;
	size_t path_bytes;
	uint64_t dropped;
};

static uint64_t pid_hash(uint32_t pid)
{
	return XXH3_64bits(&pid, sizeof(pid));
}

static bool pid_eq(uint32_t idx, const void *key, void *userdata)
{
	return ((MapLog *)userdata)->logs[idx]->pid == *(const uint32_t *)key;
}

int maplog_new(MapLog **ret)
{
	MapLog *l = calloc(1, sizeof(*l));
	int r;

	if (!l)
		return -ENOMEM;
	r = hash_index_new(&l->index);
	if (r < 0) {
		free(l);
		return r;
	}
	*ret = l;
	return 0;
}

static void generation_clear(MapLog *l, Generation *g)
{
	for (size_t i = 0; i < g->n; i++)
		l->path_bytes -= g->maps[i].path ? strlen(g->maps[i].path) + 1 : 0;
	l->total_maps -= g->n;
	procfs_maps_free(g->maps, g->n);
	*g = (Generation){ 0 };
}

static void pidlog_free(MapLog *l, PidLog *p)
{
	for (unsigned i = 0; i < p->n_gens; i++)
		generation_clear(l, &p->gens[i]);
	free(p);
}

MapLog *maplog_free(MapLog *l)
{
	if (!l)
		return NULL;
	for (size_t i = 0; i < l->n; i++)
		pidlog_free(l, l->logs[i]);
	free(l->logs);
	hash_index_free(l->index);
	free(l);
	return NULL;
}

static PidLog *find(MapLog *l, uint32_t pid)
{
	uint32_t idx;

	if (hash_index_find(l->index, pid_hash(pid), pid_eq, &pid, l, &idx) < 0)
		return NULL;
	return l->logs[idx];
}

static PidLog *find_or_add(MapLog *l, uint32_t pid)
{
	PidLog *p = find(l, pid);

	if (p)
		return p;
	if (GREEDY_REALLOC(l->logs, l->allocated, l->n + 1) < 0)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->pid = pid;
	if (hash_index_insert(l->index, pid_hash(pid), (uint32_t)l->n) < 0) {
		free(p);
		return NULL;
	}
	l->logs[l->n++] = p;
	return p;
}

static Generation *current(PidLog *p)
{
	if (p->n_gens == 0 || p->gens[p->n_gens - 1].end_ns != UINT64_MAX)
		return NULL;
	return &p->gens[p->n_gens - 1];
}

/* Ends the current generation (if any) at t and starts a new, empty one. */
static Generation *start_generation(MapLog *l, PidLog *p, uint64_t t)
{
	Generation *g = current(p);

	if (g)
		g->end_ns = t;
	if (p->n_gens == GENERATIONS) {
		generation_clear(l, &p->gens[0]);
		memmove(&p->gens[0], &p->gens[1], (GENERATIONS - 1) * sizeof(Generation));
		p->n_gens--;
	}
	g = &p->gens[p->n_gens++];
	*g = (Generation){ .start_ns = t, .end_ns = UINT64_MAX };
	return g;
}

static int add_map(MapLog *l, Generation *g, const ProcMap *m)
{
	ProcMap copy = *m;

	if (g->n >= MAPS_PER_GENERATION || l->total_maps >= MAPS_TOTAL) {
		l->dropped++;
		return -ENOSPC;
	}
	if (m->path) {
		copy.path = strdup(m->path);
		if (!copy.path)
			return -ENOMEM;
	}
	if (GREEDY_REALLOC(g->maps, g->allocated, g->n + 1) < 0) {
		free(copy.path);
		return -ENOMEM;
	}
	/* A new mapping over an old range replaces it (munmap leaves no record). */
	for (size_t i = 0; i < g->n; i++)
		if (g->maps[i].start < copy.end && copy.start < g->maps[i].end) {
			l->path_bytes -= g->maps[i].path ? strlen(g->maps[i].path) + 1 : 0;
			free(g->maps[i].path);
			g->maps[i] = g->maps[--g->n];
			l->total_maps--;
			i--;
		}
	g->maps[g->n++] = copy;
	l->total_maps++;
	l->path_bytes += copy.path ? strlen(copy.path) + 1 : 0;
	return 0;
}

void maplog_event(MapLog *l, const SidebandEvent *ev)
{
	PidLog *p, *parent;
	Generation *g, *pg;

	switch (ev->type) {
	case SIDEBAND_MMAP: {
		ProcMap m = { .start = ev->start,
			      .end = ev->start + ev->len,
			      .pgoff = ev->pgoff,
			      .inode = ev->inode,
			      .dev_major = ev->dev_major,
			      .dev_minor = ev->dev_minor,
			      .prot = ev->prot,
			      .path = (char *)ev->path };

		/* perf names anonymous executable memory (JIT code) "//anon": not a file. */
		if (m.path && strncmp(m.path, "//anon", 6) == 0)
			m.path = NULL;

		p = find_or_add(l, ev->pid);
		if (!p)
			return;
		/* A process older than profqd: its log starts at its first recorded mmap. */
		g = current(p) ?: start_generation(l, p, 0);
		(void)add_map(l, g, &m);
		return;
	}
	case SIDEBAND_EXEC:
		p = find_or_add(l, ev->pid);
		if (p)
			start_generation(l, p, ev->time_ns)->complete = true;
		return;
	case SIDEBAND_FORK:
		p = find_or_add(l, ev->pid);
		if (!p)
			return;
		g = start_generation(l, p, ev->time_ns);
		g->forked_from = ev->ppid;
		/* The child starts with its parent's address space. */
		parent = find(l, ev->ppid);
		pg = parent ? current(parent) : NULL;
		g->complete = pg && pg->complete;
		for (size_t i = 0; pg && i < pg->n; i++)
			if (add_map(l, g, &pg->maps[i]) < 0)
				break;
		return;
	case SIDEBAND_EXIT:
		p = find(l, ev->pid);
		g = p ? current(p) : NULL;
		if (g)
			g->end_ns = ev->time_ns;
		return;
	default:
		return;
	}
}

static int map_cmp(const void *a, const void *b)
{
	const ProcMap *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

size_t maplog_count(MapLog *l, uint32_t pid, uint64_t time_ns)
{
	PidLog *p = find(l, pid);

	for (unsigned i = 0; p && i < p->n_gens; i++)
		if (p->gens[i].start_ns <= time_ns && time_ns < p->gens[i].end_ns)
			return p->gens[i].n;
	return 0;
}

int maplog_lookup(MapLog *l, uint32_t pid, uint64_t time_ns, ProcMap **ret, size_t *ret_n,
		  uint32_t *ret_parent, bool *ret_complete)
{
	PidLog *p = find(l, pid);
	const Generation *g = NULL;
	ProcMap *maps;

	if (!p)
		return -ENOENT;
	for (unsigned i = 0; i < p->n_gens; i++)
		if (p->gens[i].start_ns <= time_ns && time_ns < p->gens[i].end_ns)
			g = &p->gens[i];
	if (!g)
		return -ENOENT;
	if (ret_parent)
		*ret_parent = g->forked_from;
	if (g->n == 0)
		return g->forked_from ? -ENODATA : -ENOENT;
	maps = calloc(g->n, sizeof(ProcMap));
	if (!maps)
		return -ENOMEM;
	for (size_t i = 0; i < g->n; i++) {
		maps[i] = g->maps[i];
		maps[i].path = NULL;
		if (g->maps[i].path && !(maps[i].path = strdup(g->maps[i].path))) {
			procfs_maps_free(maps, i);
			return -ENOMEM;
		}
	}
	qsort(maps, g->n, sizeof(ProcMap), map_cmp);
	if (ret_complete)
		*ret_complete = g->complete;
	*ret = maps;
	*ret_n = g->n;
	return 0;
}

void maplog_expire(MapLog *l, uint64_t now_ns, uint64_t keep_ns)
{
	size_t keep = 0;
	bool changed = false;

	for (size_t i = 0; i < l->n; i++) {
		PidLog *p = l->logs[i];
		unsigned drop = 0;

		while (drop < p->n_gens && p->gens[drop].end_ns != UINT64_MAX &&
		       p->gens[drop].end_ns + keep_ns < now_ns)
			generation_clear(l, &p->gens[drop++]);
		if (drop > 0) {
			memmove(&p->gens[0], &p->gens[drop],
				(p->n_gens - drop) * sizeof(Generation));
			p->n_gens -= drop;
		}
		if (p->n_gens == 0) {
			free(p);
			changed = true;
			continue;
		}
		l->logs[keep++] = p;
	}
	if (keep != l->n)
		changed = true;
	l->n = keep;
	if (!changed)
		return;
	hash_index_clear(l->index);
	for (size_t i = 0; i < l->n; i++)
		(void)hash_index_insert(l->index, pid_hash(l->logs[i]->pid), (uint32_t)i);
}

size_t maplog_memory(const MapLog *l)
{
	return sizeof(*l) + l->allocated * sizeof(PidLog *) + l->n * sizeof(PidLog) +
	       l->total_maps * sizeof(ProcMap) + l->path_bytes + hash_index_memory(l->index);
}

void maplog_stats(const MapLog *l, MapLogStats *ret)
{
	*ret = (MapLogStats){ .pids = l->n, .mappings = l->total_maps, .dropped = l->dropped };
}
