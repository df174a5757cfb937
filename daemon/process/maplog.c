/* SPDX-License-Identifier: MIT */
#include <xxhash.h>

#include "base/hashindex.h"
#include "base/macro.h"
#include "process/maplog.h"

#define GENERATIONS 4		  /* per pid: enough for fork, exec, and a pid reused */
#define MAPS_PER_GENERATION 8192  /* a JVM maps a few thousand */
#define MAPS_TOTAL (256u * 1024u) /* all pids together */

/*
 * Under a fork storm the log holds the last seconds of every process on the host, so what a
 * process costs here is what the storm costs: a fork shares its parent's mappings until
 * either maps something (most children exec at once and never copy), and a path is held once
 * however many processes map it.
 */

/* An interned path: paths[slot], found by hash, freed at its last reference. */
typedef struct Path {
	uint32_t refs;
	uint32_t slot;
	uint64_t hash;
	char s[];
} Path;

/* Mappings shared by a parent and the children it forked, copied at the first change. */
typedef struct MapSet {
	uint32_t refs;
	size_t n, allocated;
	ProcMap maps[]; /* path points into a Path, referenced */
} MapSet;

typedef struct Generation {
	uint64_t start_ns, end_ns; /* [start, end); end UINT64_MAX while current */
	uint32_t forked_from;	   /* fork: the parent, whose mappings may be unknown to us */
	bool complete;		   /* every mapping since its start was seen (exec, or fork of a
				    * complete one), not just those after profqd started */
	MapSet *set;		   /* NULL: none */
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
	size_t total_maps; /* in sets, each counted once however many share it */
	size_t set_bytes;  /* the sets' allocations */
	Path **paths;	   /* slots, NULL where free */
	size_t n_paths, allocated_paths;
	uint32_t *free_slots;
	size_t n_free, allocated_free;
	HashIndex *path_index;
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

static bool path_eq(uint32_t idx, const void *key, void *userdata)
{
	return strcmp(((MapLog *)userdata)->paths[idx]->s, key) == 0;
}

int maplog_new(MapLog **ret)
{
	_cleanup_(maplog_freep) MapLog *l = calloc(1, sizeof(*l));
	int r;

	if (!l)
		return -ENOMEM;
	r = hash_index_new(&l->index);
	if (r < 0)
		return r;
	r = hash_index_new(&l->path_index);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(l);
	return 0;
}

/* The interned copy of s, referenced: NULL if out of memory. */
static char *path_ref(MapLog *l, const char *s)
{
	size_t len = strlen(s);
	uint64_t hash = XXH3_64bits(s, len);
	uint32_t slot;
	Path *p;

	if (hash_index_find(l->path_index, hash, path_eq, s, l, &slot) == 0) {
		l->paths[slot]->refs++;
		return l->paths[slot]->s;
	}
	if (l->n_free == 0 && GREEDY_REALLOC(l->paths, l->allocated_paths, l->n_paths + 1) < 0)
		return NULL;
	/* Room for the slot's return to the free list, so that path_unref() cannot fail. */
	if (GREEDY_REALLOC(l->free_slots, l->allocated_free, l->n_paths + 1) < 0)
		return NULL;
	p = malloc(sizeof(Path) + len + 1);
	if (!p)
		return NULL;
	slot = l->n_free > 0 ? l->free_slots[--l->n_free] : (uint32_t)l->n_paths++;
	if (hash_index_insert(l->path_index, hash, slot) < 0) {
		l->free_slots[l->n_free++] = slot;
		free(p);
		return NULL;
	}
	*p = (Path){ .refs = 1, .slot = slot, .hash = hash };
	memcpy(p->s, s, len + 1);
	l->paths[slot] = p;
	l->path_bytes += sizeof(Path) + len + 1;
	return p->s;
}

static void path_unref(MapLog *l, char *s)
{
	Path *p;

	if (!s)
		return;
	p = (Path *)(s - offsetof(Path, s));
	if (--p->refs > 0)
		return;
	(void)hash_index_remove(l->path_index, p->hash, p->slot);
	l->paths[p->slot] = NULL;
	l->free_slots[l->n_free++] = p->slot;
	l->path_bytes -= sizeof(Path) + strlen(p->s) + 1;
	free(p);
}

static size_t set_size(size_t allocated)
{
	return sizeof(MapSet) + allocated * sizeof(ProcMap);
}

static void set_unref(MapLog *l, MapSet *set)
{
	if (!set || --set->refs > 0)
		return;
	for (size_t i = 0; i < set->n; i++)
		path_unref(l, set->maps[i].path);
	l->total_maps -= set->n;
	l->set_bytes -= set_size(set->allocated);
	free(set);
}

/*
 * g's own set with room for one more mapping: a shared set is copied first (its paths
 * referenced once more), a full one grown. NULL if out of memory.
 */
static MapSet *set_for_change(MapLog *l, Generation *g)
{
	MapSet *old = g->set, *set;
	size_t n = old ? old->n : 0, allocated;

	if (old && old->refs == 1 && old->n < old->allocated)
		return old;
	allocated = MAX((size_t)4, n + n / 2 + 1);
	if (old && old->refs == 1) {
		set = realloc(old, set_size(allocated));
		if (!set)
			return NULL;
		l->set_bytes += set_size(allocated) - set_size(set->allocated);
		set->allocated = allocated;
		return g->set = set;
	}
	set = malloc(set_size(allocated));
	if (!set)
		return NULL;
	*set = (MapSet){ .refs = 1, .n = n, .allocated = allocated };
	for (size_t i = 0; i < n; i++) {
		set->maps[i] = old->maps[i];
		if (set->maps[i].path)
			((Path *)(set->maps[i].path - offsetof(Path, s)))->refs++;
	}
	l->total_maps += n;
	l->set_bytes += set_size(allocated);
	if (old)
		old->refs--; /* others still hold it */
	return g->set = set;
}

static void generation_clear(MapLog *l, Generation *g)
{
	set_unref(l, g->set);
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
	free(l->paths);
	free(l->free_slots);
	hash_index_free(l->path_index);
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

static size_t generation_count(const Generation *g)
{
	return g->set ? g->set->n : 0;
}

static int add_map(MapLog *l, Generation *g, const ProcMap *m)
{
	ProcMap copy = *m;
	MapSet *set;
	/* A shared set is copied first: its mappings count again. */
	size_t copied = g->set && g->set->refs > 1 ? g->set->n : 0;

	if (generation_count(g) >= MAPS_PER_GENERATION || l->total_maps + copied >= MAPS_TOTAL) {
		l->dropped++;
		return -ENOSPC;
	}
	set = set_for_change(l, g);
	if (!set)
		return -ENOMEM;
	if (m->path && !(copy.path = path_ref(l, m->path)))
		return -ENOMEM;
	/* A new mapping over an old range replaces it (munmap leaves no record). */
	for (size_t i = 0; i < set->n; i++)
		if (set->maps[i].start < copy.end && copy.start < set->maps[i].end) {
			path_unref(l, set->maps[i].path);
			set->maps[i] = set->maps[--set->n];
			l->total_maps--;
			i--;
		}
	set->maps[set->n++] = copy;
	l->total_maps++;
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
		/* The child starts with its parent's address space: the same set, until either
		 * changes it. */
		parent = find(l, ev->ppid);
		pg = parent ? current(parent) : NULL;
		g->complete = pg && pg->complete;
		if (pg && pg->set) {
			g->set = pg->set;
			g->set->refs++;
		}
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
			return generation_count(&p->gens[i]);
	return 0;
}

int maplog_lookup(MapLog *l, uint32_t pid, uint64_t time_ns, ProcMap **ret, size_t *ret_n,
		  uint32_t *ret_parent, bool *ret_complete)
{
	PidLog *p = find(l, pid);
	const Generation *g = NULL;
	ProcMap *maps;
	size_t n;

	if (!p)
		return -ENOENT;
	for (unsigned i = 0; i < p->n_gens; i++)
		if (p->gens[i].start_ns <= time_ns && time_ns < p->gens[i].end_ns)
			g = &p->gens[i];
	if (!g)
		return -ENOENT;
	if (ret_parent)
		*ret_parent = g->forked_from;
	n = generation_count(g);
	if (n == 0)
		return g->forked_from ? -ENODATA : -ENOENT;
	maps = calloc(n, sizeof(ProcMap));
	if (!maps)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		maps[i] = g->set->maps[i];
		maps[i].path = NULL;
		if (g->set->maps[i].path && !(maps[i].path = strdup(g->set->maps[i].path))) {
			procfs_maps_free(maps, i);
			return -ENOMEM;
		}
	}
	qsort(maps, n, sizeof(ProcMap), map_cmp);
	if (ret_complete)
		*ret_complete = g->complete;
	*ret = maps;
	*ret_n = n;
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
	/* After a storm, give back what its pids took: the index sized for those left, the
	 * array shrunk once three quarters are free. */
	hash_index_clear_for(l->index, l->n);
	for (size_t i = 0; i < l->n; i++)
		(void)hash_index_insert(l->index, pid_hash(l->logs[i]->pid), (uint32_t)i);
	if (l->n < l->allocated / 4) {
		PidLog **logs = realloc(l->logs, MAX(l->n * 2, (size_t)16) * sizeof(PidLog *));

		if (logs) {
			l->logs = logs;
			l->allocated = MAX(l->n * 2, (size_t)16);
		}
	}
}

size_t maplog_memory(const MapLog *l)
{
	return sizeof(*l) + l->allocated * sizeof(PidLog *) + l->n * sizeof(PidLog) + l->set_bytes +
	       l->allocated_paths * sizeof(Path *) + l->allocated_free * sizeof(uint32_t) +
	       l->path_bytes + hash_index_memory(l->index) + hash_index_memory(l->path_index);
}

void maplog_stats(const MapLog *l, MapLogStats *ret)
{
	*ret = (MapLogStats){ .pids = l->n, .mappings = l->total_maps, .dropped = l->dropped };
}
