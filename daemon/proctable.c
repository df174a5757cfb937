/* SPDX-License-Identifier: MIT */
#include <time.h>
#include <xxhash.h>

#include "hashindex.h"
#include "macro.h"
#include "proctable.h"

#define MAPS_RETRY_NS NSEC_PER_SEC

struct ProcTable {
	Store *store;
	Symbolizer *sym;
	Process **procs;
	size_t n, allocated;
	HashIndex *index;
	ProcTableStats stats;
};

int proctable_new(Store *store, Symbolizer *sym, ProcTable **ret)
{
	_cleanup_(proctable_freep) ProcTable *t = calloc(1, sizeof(ProcTable));
	int r;

	if (!t)
		return -ENOMEM;
	t->store = store;
	t->sym = sym;
	r = hash_index_new(&t->index);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(t);
	return 0;
}

static void maps_clear(ProcTable *t, Process *p)
{
	for (size_t i = 0; i < p->n_maps; i++) {
		free(p->maps[i].map.path);
		binary_unref(t->sym, p->maps[i].binary);
	}
	free(p->maps);
	p->maps = NULL;
	p->n_maps = 0;
}

static void process_free(ProcTable *t, Process *p)
{
	maps_clear(t, p);
	store_proc_unref(t->store, p->id);
	free(p);
}

ProcTable *proctable_free(ProcTable *t)
{
	if (!t)
		return NULL;
	for (size_t i = 0; i < t->n; i++)
		process_free(t, t->procs[i]);
	free(t->procs);
	hash_index_free(t->index);
	free(t);
	return NULL;
}

static int maps_load(ProcTable *t, Process *p, uint64_t now_ns)
{
	ProcMap *raw = NULL;
	Mapping *maps;
	size_t n = 0;
	int r;

	p->maps_read_ns = now_ns;
	t->stats.maps_reads++;
	r = procfs_read_maps((pid_t)p->pid, &raw, &n);
	if (r < 0) {
		t->stats.maps_errors++;
		p->maps_error = r;
		return r;
	}
	maps = calloc(MAX(n, (size_t)1), sizeof(Mapping));
	if (!maps) {
		procfs_maps_free(raw, n);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		maps[i].map = raw[i];
		/* Anonymous or unreadable: frames show [anon] / module+offset. */
		if (symbolizer_binary(t->sym, (pid_t)p->pid, &raw[i], &maps[i].binary) < 0)
			maps[i].binary = NULL;
	}
	free(raw); /* the paths moved into maps */
	maps_clear(t, p);
	p->maps = maps;
	p->n_maps = n;
	p->maps_error = 0;
	return 0;
}

typedef struct ProcKey {
	uint32_t pid;
	uint64_t start;
} ProcKey;

static uint64_t proc_hash(uint32_t pid, uint64_t start)
{
	const uint64_t v[2] = { pid, start };

	return XXH3_64bits(v, sizeof(v));
}

static bool proc_eq(uint32_t idx, const void *key, void *userdata)
{
	const Process *p = ((const ProcTable *)userdata)->procs[idx];
	const ProcKey *k = key;

	return p->pid == k->pid && p->start_boot_ns == k->start;
}

static int64_t realtime_of_boottime(uint64_t boot_ns)
{
	struct timespec rt, bt;

	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_BOOTTIME, &bt);
	return (int64_t)boot_ns + ((int64_t)rt.tv_sec - (int64_t)bt.tv_sec) * (int64_t)NSEC_PER_SEC +
	       ((int64_t)rt.tv_nsec - (int64_t)bt.tv_nsec);
}

/* Fills the store record from /proc when it still shows this incarnation, else the sample. */
static int process_describe(ProcTable *t, Process *p, const struct profq_sample *s)
{
	_cleanup_free_ char *cmdline = NULL;
	StoreProc sp = { .pid = s->tgid, .uid = s->uid };
	char comm[PROFQ_COMM_LEN + 1];
	ProcStat st;
	bool same = false;
	int r;

	sp.start_ns = realtime_of_boottime(s->start_ns);
	if (s->mm_id == 0)
		sp.flags |= PROC_KTHREAD;
	/* /proc shows start time in clock ticks, truncated from the boot-time nanoseconds. */
	if (procfs_read_stat((pid_t)s->tgid, &st) >= 0 &&
	    st.starttime == s->start_ns / (NSEC_PER_SEC / procfs_clock_ticks())) {
		same = true;
		sp.ppid = st.ppid;
		if (s->mm_id != 0)
			(void)procfs_read_cmdline((pid_t)s->tgid, &cmdline);
	}
	memcpy(comm, s->pcomm, PROFQ_COMM_LEN);
	comm[PROFQ_COMM_LEN] = '\0';
	procfs_cmdline_to_string(comm, strnlen(comm, PROFQ_COMM_LEN));
	memcpy(p->comm, s->pcomm, sizeof(p->comm));
	r = store_intern_string(t->store, comm, &sp.comm);
	if (r < 0)
		return r;
	if (cmdline && *cmdline) {
		r = store_intern_string(t->store, cmdline, &sp.cmdline);
		if (r < 0) {
			store_string_unref(t->store, sp.comm);
			return r;
		}
	}
	r = store_proc_add(t->store, &sp, &p->id);
	store_string_unref(t->store, sp.comm);
	store_string_unref(t->store, sp.cmdline);
	return r < 0 ? r : same;
}

/* After exec: the command line is the new image's. */
static void process_refresh_cmdline(ProcTable *t, Process *p)
{
	_cleanup_free_ char *cmdline = NULL;
	StoreProc *sp = store_proc_mut(t->store, p->id);
	StrId id;

	if (!sp || procfs_read_cmdline((pid_t)p->pid, &cmdline) < 0 || !*cmdline)
		return;
	if (store_intern_string(t->store, cmdline, &id) < 0)
		return;
	store_string_unref(t->store, sp->cmdline);
	sp->cmdline = id; /* the reference moves into the record */
}

int proctable_get(ProcTable *t, const struct profq_sample *s, uint64_t now_ns, Process **ret)
{
	ProcKey k = { .pid = s->tgid, .start = s->start_ns };
	uint64_t hash = proc_hash(k.pid, k.start);
	Process *p;
	uint32_t idx;
	int r;

	if (hash_index_find(t->index, hash, proc_eq, &k, t, &idx) == 0) {
		p = t->procs[idx];
		p->last_seen_ns = now_ns;
		if (p->mm_id != s->mm_id) {
			/* exec: a new image; old addresses mean something else now. */
			p->mm_id = s->mm_id;
			p->generation++;
			maps_clear(t, p);
			if (s->mm_id != 0) {
				(void)maps_load(t, p, now_ns);
				process_refresh_cmdline(t, p);
			}
		}
		if (memcmp(p->comm, s->pcomm, sizeof(p->comm)) != 0) {
			char comm[PROFQ_COMM_LEN + 1];
			StrId id;

			memcpy(p->comm, s->pcomm, sizeof(p->comm));
			memcpy(comm, s->pcomm, PROFQ_COMM_LEN);
			comm[PROFQ_COMM_LEN] = '\0';
			procfs_cmdline_to_string(comm, strnlen(comm, PROFQ_COMM_LEN));
			if (store_intern_string(t->store, comm, &id) >= 0) {
				store_proc_set_comm(t->store, p->id, id);
				store_string_unref(t->store, id);
			}
		}
		*ret = p;
		return 0;
	}

	r = GREEDY_REALLOC(t->procs, t->allocated, t->n + 1);
	if (r < 0)
		return r;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->pid = s->tgid;
	p->start_boot_ns = s->start_ns;
	p->mm_id = s->mm_id;
	p->hash = hash;
	p->last_seen_ns = now_ns;
	r = process_describe(t, p, s);
	if (r < 0) {
		free(p);
		return r;
	}
	/* Maps only when /proc still shows this incarnation (not a reused pid). */
	if (r > 0 && s->mm_id != 0)
		(void)maps_load(t, p, now_ns);
	else
		p->maps_error = -ESRCH;
	r = hash_index_insert(t->index, hash, (uint32_t)t->n);
	if (r < 0) {
		process_free(t, p);
		return r;
	}
	t->procs[t->n++] = p;
	t->stats.created++;
	*ret = p;
	return 0;
}

static const Mapping *find_mapping(const Process *p, uint64_t addr)
{
	size_t lo = 0, hi = p->n_maps;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (p->maps[mid].map.start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0 || addr >= p->maps[lo - 1].map.end)
		return NULL;
	return &p->maps[lo - 1];
}

const Mapping *proctable_find_mapping(ProcTable *t, Process *p, uint64_t addr, uint64_t now_ns)
{
	const Mapping *m = find_mapping(p, addr);

	if (m || p->mm_id == 0 || p->maps_error == -ESRCH)
		return m;
	if (now_ns - p->maps_read_ns < MAPS_RETRY_NS)
		return NULL;
	if (maps_load(t, p, now_ns) < 0)
		return NULL;
	return find_mapping(p, addr);
}

static bool process_gone(const Process *p)
{
	ProcStat st;

	if (procfs_read_stat((pid_t)p->pid, &st) < 0)
		return true;
	return st.starttime != p->start_boot_ns / (NSEC_PER_SEC / procfs_clock_ticks());
}

void proctable_sweep(ProcTable *t, uint64_t now_ns, uint64_t idle_ns)
{
	size_t keep = 0;
	bool changed = false;

	for (size_t i = 0; i < t->n; i++) {
		Process *p = t->procs[i];

		if (now_ns - p->last_seen_ns > idle_ns && process_gone(p)) {
			process_free(t, p);
			t->stats.dropped++;
			changed = true;
			continue;
		}
		t->procs[keep++] = p;
	}
	t->n = keep;
	if (!changed)
		return;
	hash_index_clear(t->index);
	for (size_t i = 0; i < t->n; i++)
		/* Re-inserting fewer entries than before: the table never grows here. */
		(void)hash_index_insert(t->index, t->procs[i]->hash, (uint32_t)i);
}

size_t proctable_memory(const ProcTable *t)
{
	size_t m = sizeof(*t) + t->allocated * sizeof(Process *) + hash_index_memory(t->index);

	for (size_t i = 0; i < t->n; i++) {
		const Process *p = t->procs[i];

		m += sizeof(*p) + p->n_maps * sizeof(Mapping);
		for (size_t j = 0; j < p->n_maps; j++)
			m += p->maps[j].map.path ? strlen(p->maps[j].map.path) + 1 : 0;
	}
	return m;
}

void proctable_stats(const ProcTable *t, ProcTableStats *ret)
{
	*ret = t->stats;
	ret->processes = t->n;
}
