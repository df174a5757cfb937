/* SPDX-License-Identifier: MIT */
#include <inttypes.h>

#include "base/hashindex.h"
#include "base/json-util.h"
#include "query/query-internal.h"

typedef struct PsRow {
	uint64_t key; /* proc, or proc << 32 | tid in threads mode */
	ProcId proc;
	uint32_t tid;		     /* threads mode */
	StrId thread;		     /* threads mode: the latest thread name */
	uint64_t user, kernel;	     /* samples */
	uint64_t user_ns, kernel_ns; /* samples x period */
	uint64_t off_ns;	     /* off-CPU time, all states */
	uint64_t alive_ns;	     /* of the range, while the process was alive */
} PsRow;

static bool ps_row_eq(uint32_t idx, const void *key, void *userdata)
{
	return ((const PsRow *)userdata)[idx].key == *(const uint64_t *)key;
}

/* Descending by a / alive_a (a share of the time alive); no time alive is 0 %, as add_pcts()
 * shows it. */
static int cmp_share(uint64_t a, uint64_t alive_a, uint64_t b, uint64_t alive_b)
{
	long double x = alive_a ? (long double)a / alive_a : 0;
	long double y = alive_b ? (long double)b / alive_b : 0;

	if (x != y)
		return x > y ? -1 : 1;
	return 0;
}

typedef struct PsOrder {
	const Store *store;
	SortKey key;
} PsOrder;

/* By the request's key, then by CPU time, then by process and thread. */
static int cmp_ps(const void *a, const void *b, void *userdata)
{
	const PsRow *x = a, *y = b;
	const PsOrder *o = userdata;
	const Store *store = o->store;
	SortKey key = o->key;
	uint64_t cx = x->user_ns + x->kernel_ns, cy = y->user_ns + y->kernel_ns;
	int64_t sx, sy;
	int c = 0;

	switch (key) {
	case SORT_CPU:
		c = cmp_share(cx, x->alive_ns, cy, y->alive_ns);
		break;
	case SORT_USER:
		c = cmp_share(x->user_ns, x->alive_ns, y->user_ns, y->alive_ns);
		break;
	case SORT_SYS:
		c = cmp_share(x->kernel_ns, x->alive_ns, y->kernel_ns, y->alive_ns);
		break;
	case SORT_SAMPLES:
		if (x->user + x->kernel != y->user + y->kernel)
			c = x->user + x->kernel > y->user + y->kernel ? -1 : 1;
		break;
	case SORT_OFF_CPU:
		if (x->off_ns != y->off_ns)
			c = x->off_ns > y->off_ns ? -1 : 1;
		break;
	case SORT_START:
		sx = store_proc(store, x->proc)->start_ns;
		sy = store_proc(store, y->proc)->start_ns;
		if (sx != sy)
			c = sx > sy ? -1 : 1;
		break;
	default:
		break;
	}
	if (c != 0)
		return c;
	if (cx != cy)
		return cx > cy ? -1 : 1;
	if (x->proc != y->proc)
		return x->proc < y->proc ? -1 : 1;
	return x->tid < y->tid ? -1 : x->tid > y->tid;
}

/* Shares of the time the process was alive in the range (alive_ns): a process that lived for
 * 3 s of a 10 min range and used 1.5 s of CPU is at 50 %, as time(1) would say. */
static void add_pcts(json_object *o, const PsRow *row, uint64_t alive_ns)
{
	double el = (double)alive_ns;

	json_add_double(o, "user_pct", el > 0 ? 100.0 * (double)row->user_ns / el : 0, 2);
	json_add_double(o, "sys_pct", el > 0 ? 100.0 * (double)row->kernel_ns / el : 0, 2);
	json_add_double(o, "cpu_pct",
			el > 0 ? 100.0 * (double)(row->user_ns + row->kernel_ns) / el : 0, 2);
	json_add_int(o, "samples", (int64_t)(row->user + row->kernel));
	json_add_int(o, "user_samples", (int64_t)row->user);
	json_add_int(o, "sys_samples", (int64_t)row->kernel);
	json_add_double(o, "off_cpu_s", (double)row->off_ns / NSEC_PER_SEC, 3);
}

/* Rows per process, or per thread of the selected process(es) in threads mode. */
static int ps_rows(const QueryContext *ctx, const Request *req, const Selection *sel, PsRow **ret,
		   size_t *ret_n)
{
	const Store *store = ctx->store;
	_cleanup_free_ PsRow *rows = NULL;
	HashIndex *index = NULL;
	size_t n = 0, allocated = 0;
	int r = 0;

	r = hash_index_new(&index);
	if (r < 0)
		return r;
	for (size_t i = sel->range.first; i < sel->range.end && r >= 0; i++) {
		const Window *w = store_window(store, i);

		for (size_t j = 0; j < w->n_entries; j++) {
			const WindowEntry *e = &w->entries[j];
			uint64_t key = req->threads ? (uint64_t)e->proc << 32 | e->tid : e->proc;
			uint64_t hash = key * 0x9E3779B97F4A7C15ULL;
			PsRow *row;
			uint32_t idx;

			if (!sel->procs[e->proc])
				continue;
			if (hash_index_find(index, hash, ps_row_eq, &key, rows, &idx) < 0) {
				r = GREEDY_REALLOC(rows, allocated, n + 1);
				if (r >= 0)
					r = hash_index_insert(index, hash, (uint32_t)n);
				if (r < 0)
					break;
				idx = (uint32_t)n;
				rows[n++] = (PsRow){ .key = key,
						     .proc = e->proc,
						     .tid = req->threads ? e->tid : 0 };
			}
			row = &rows[idx];
			/* Windows go oldest first: the last name seen is the latest. */
			row->thread = e->thread;
			if (e->kind != KIND_CPU) {
				if (kind_off_cpu(e->kind))
					row->off_ns += e->weight;
				continue;
			}
			row->user += e->user;
			row->kernel += e->kernel;
			row->user_ns += e->user * w->period_ns;
			row->kernel_ns += e->kernel * w->period_ns;
		}
	}
	hash_index_free(index);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		rows[i].alive_ns = query_range_alive_ns(
			store, &sel->range, store_proc(store, rows[i].proc), ctx->now_ns);
	if (n > 1) {
		PsOrder order = { .store = store, .key = req->sort };

		qsort_r(rows, n, sizeof(PsRow), cmp_ps, &order);
	}
	*ret = TAKE_PTR(rows);
	*ret_n = n;
	return 0;
}

typedef struct PsGroup {
	StrId name; /* 0: the processes without one (no unit, no container) */
	size_t processes;
	uint64_t user, kernel, user_ns, kernel_ns;
	int64_t newest_start;
} PsGroup;

static StrId group_name(const StoreProc *p, GroupBy by)
{
	switch (by) {
	case GROUP_UNIT:
		return p->unit;
	case GROUP_COMM:
		return p->comm;
	case GROUP_CONTAINER:
		return p->container;
	default:
		return 0;
	}
}

typedef struct GroupOrder {
	const Store *store;
	SortKey key;
} GroupOrder;

/* By the request's key (the shares are of one elapsed time: CPU time decides them), then by CPU
 * time, then by name. */
static int cmp_group(const void *a, const void *b, void *userdata)
{
	const PsGroup *x = a, *y = b;
	const GroupOrder *o = userdata;
	uint64_t cx = x->user_ns + x->kernel_ns, cy = y->user_ns + y->kernel_ns;
	uint64_t kx = cx, ky = cy;

	switch (o->key) {
	case SORT_USER:
		kx = x->user_ns, ky = y->user_ns;
		break;
	case SORT_SYS:
		kx = x->kernel_ns, ky = y->kernel_ns;
		break;
	case SORT_SAMPLES:
		kx = x->user + x->kernel, ky = y->user + y->kernel;
		break;
	case SORT_START:
		if (x->newest_start != y->newest_start)
			return x->newest_start > y->newest_start ? -1 : 1;
		break;
	default:
		break;
	}
	if (kx != ky)
		return kx > ky ? -1 : 1;
	if (cx != cy)
		return cx > cy ? -1 : 1;
	return strcmp(strempty(store_string(o->store, x->name)),
		      strempty(store_string(o->store, y->name)));
}

/* The process rows folded into one per group of req->by, ranked. */
static int ps_groups(const QueryContext *ctx, const Request *req, const PsRow *rows, size_t n,
		     PsGroup **ret, size_t *ret_n)
{
	const Store *store = ctx->store;
	_cleanup_free_ uint32_t *slot = calloc(store_string_id_limit(store) + 1, sizeof(uint32_t));
	_cleanup_free_ PsGroup *groups = calloc(MAX(n, (size_t)1), sizeof(PsGroup));
	size_t ng = 0;

	if (!slot || !groups)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const StoreProc *p = store_proc(store, rows[i].proc);
		StrId name = group_name(p, req->by);
		PsGroup *g;

		if (!slot[name]) {
			groups[ng] = (PsGroup){ .name = name, .newest_start = INT64_MIN };
			slot[name] = (uint32_t)++ng;
		}
		g = &groups[slot[name] - 1];
		g->processes++;
		g->user += rows[i].user;
		g->kernel += rows[i].kernel;
		g->user_ns += rows[i].user_ns;
		g->kernel_ns += rows[i].kernel_ns;
		g->newest_start = MAX(g->newest_start, p->start_ns);
	}
	if (ng > 1) {
		GroupOrder order = { .store = store, .key = req->sort };

		qsort_r(groups, ng, sizeof(PsGroup), cmp_group, &order);
	}
	*ret = TAKE_PTR(groups);
	*ret_n = ng;
	return 0;
}

/* ps --by: CPU use per group, as shares of the range's elapsed time (200 % is two CPUs). */
static int answer_groups(const QueryContext *ctx, const Request *req, const Selection *sel,
			 const PsRow *rows, size_t n, json_object *answer, json_object *arr)
{
	const char *key = group_by_to_string(req->by);
	_cleanup_free_ PsGroup *groups = NULL;
	double el = (double)sel->range.elapsed_ns;
	size_t ng;
	int r;

	r = ps_groups(ctx, req, rows, n, &groups, &ng);
	if (r < 0)
		return r;
	json_add_string(answer, "by", key);
	json_add_int(answer, "total_rows", (int64_t)ng);
	for (size_t i = 0; i < ng && i < req->limit; i++) {
		const PsGroup *g = &groups[i];
		json_object *o = json_object_new_object();

		if (!o)
			return -ENOMEM;
		json_add_string(o, key, store_string(ctx->store, g->name));
		json_add_int(o, "processes", (int64_t)g->processes);
		json_add_double(o, "cpu_s", (double)(g->user_ns + g->kernel_ns) / NSEC_PER_SEC, 3);
		json_add_double(o, "user_pct", el > 0 ? 100.0 * (double)g->user_ns / el : 0, 2);
		json_add_double(o, "sys_pct", el > 0 ? 100.0 * (double)g->kernel_ns / el : 0, 2);
		json_add_double(o, "cpu_pct",
				el > 0 ? 100.0 * (double)(g->user_ns + g->kernel_ns) / el : 0, 2);
		json_add_int(o, "samples", (int64_t)(g->user + g->kernel));
		json_add_int(o, "user_samples", (int64_t)g->user);
		json_add_int(o, "sys_samples", (int64_t)g->kernel);
		json_object_array_add(arr, o);
	}
	return 0;
}

/* CPU use per process (or per thread of the pid): samples x period, and its share of the wall
 * time the windows in range cover while the process was alive. */
int query_answer_ps(const QueryContext *ctx, const Request *req, const Selection *sel,
		    json_object **ret)
{
	const Store *store = ctx->store;
	_cleanup_free_ PsRow *rows = NULL;
	_cleanup_json_ json_object *answer = NULL;
	json_object *arr;
	size_t n;
	int r;

	r = ps_rows(ctx, req, sel, &rows, &n);
	if (r < 0)
		return r;

	answer = json_object_new_object();
	arr = json_object_new_array();
	if (!answer || !arr) {
		json_object_put(arr);
		return -ENOMEM;
	}
	json_object_object_add(answer, "rows", arr);
	json_add_double(answer, "elapsed_s", (double)sel->range.elapsed_ns / NSEC_PER_SEC, 3);
	json_add_string(answer, "sort", sort_key_to_string(req->sort));
	if (req->by != GROUP_NONE) {
		r = answer_groups(ctx, req, sel, rows, n, answer, arr);
		if (r < 0)
			return r;
		*ret = TAKE_PTR(answer);
		return 0;
	}
	/* How many rows there are in all: the limit may leave some out. */
	json_add_int(answer, "total_rows", (int64_t)n);
	if (req->threads)
		json_add_int(answer, "pid", req->pid);
	for (size_t i = 0; i < n && i < req->limit; i++) {
		const StoreProc *p = store_proc(store, rows[i].proc);
		json_object *o = json_object_new_object();

		if (!o)
			return -ENOMEM;
		json_add_int(o, "pid", p->pid);
		if (req->threads) {
			json_add_int(o, "tid", rows[i].tid);
			json_add_string(o, "comm", store_string(store, rows[i].thread));
		} else {
			json_add_string(o, "comm", store_string(store, p->comm));
		}
		json_add_double(o, "alive_s", (double)rows[i].alive_ns / NSEC_PER_SEC, 3);
		add_pcts(o, &rows[i], rows[i].alive_ns);
		if (!req->threads) {
			json_add_int(o, "ppid", p->ppid);
			json_add_int(o, "uid", p->uid);
			json_add_string(o, "cmdline", store_string(store, p->cmdline));
			query_add_labels(o, store, p);
			query_add_times(o, p);
		}
		json_object_array_add(arr, o);
	}
	*ret = TAKE_PTR(answer);
	return 0;
}
