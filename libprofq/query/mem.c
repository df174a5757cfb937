/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <limits.h>

#include "base/json-util.h"
#include "query/query-internal.h"

void query_mem_summary(const Store *store, size_t first, size_t end, ProcId proc,
		       QueryMemSummary *ret)
{
	QueryMemSummary m = { 0 };

	for (size_t i = first; i < end; i++) {
		const Window *w = store_window(store, i);

		for (size_t j = 0; j < w->n_mem; j++)
			if (w->mem[j].proc == proc)
				query_mem_add(&m, &w->mem[j]);
	}
	*ret = m;
}

void query_mem_add(QueryMemSummary *m, const MemPoint *pt)
{
	uint64_t rss = pt->anon + pt->file + pt->shmem;

	if (m->points == 0 || pt->time_ns < m->first_ns) {
		m->first_ns = pt->time_ns;
		m->first_rss = rss;
	}
	if (m->points == 0 || pt->time_ns >= m->last_ns) {
		m->last_ns = pt->time_ns;
		m->last_rss = rss;
		/* The newest point knows the peak of the whole life up to it. */
		m->peak = pt->peak;
		m->peak_ns = pt->peak_ns;
		m->peak_old = pt->flags & MEM_PEAK_OLD;
	}
	if (m->points == 0 || rss > m->max_rss) {
		m->max_rss = rss;
		m->max_ns = pt->time_ns;
	}
	if (pt->flags & MEM_OOM_KILL) {
		m->oom = true;
		m->oom_ns = pt->time_ns;
	}
	m->points++;
}

/* The peak to show for a range starting at since_ns: the kernel's (exact) when it was reached in
 * the range, else the largest point in range. */
static void peak_of(const QueryMemSummary *m, int64_t since_ns, uint64_t *ret_peak, int64_t *ret_ns,
		    bool *ret_exact)
{
	if (m->peak >= m->max_rss && (m->peak_ns >= since_ns || since_ns == INT64_MIN)) {
		*ret_peak = m->peak;
		*ret_ns = m->peak_old ? 0 : m->peak_ns;
		*ret_exact = true;
	} else {
		*ret_peak = m->max_rss;
		*ret_ns = m->max_ns;
		*ret_exact = false;
	}
}

static void add_peak(json_object *o, const QueryMemSummary *m, int64_t since_ns)
{
	uint64_t peak;
	int64_t peak_ns;
	bool exact;

	peak_of(m, since_ns, &peak, &peak_ns, &exact);
	json_add_int(o, "peak_rss_bytes", (int64_t)peak);
	query_add_timestamp(o, "peak_time", peak_ns);
	json_object_object_add(o, "peak_exact", json_object_new_boolean(exact));
	json_add_int(o, "rss_bytes", (int64_t)m->last_rss);
	json_add_int(o, "growth_bytes", (int64_t)m->last_rss - (int64_t)m->first_rss);
	json_object_object_add(o, "oom_killed", json_object_new_boolean(m->oom));
	if (m->oom)
		query_add_timestamp(o, "oom_time", m->oom_ns);
	else
		json_object_object_add(o, "oom_time", NULL);
}

static int point_cmp(const void *a, const void *b)
{
	const MemPoint *x = a, *y = b;

	return x->time_ns < y->time_ns ? -1 : x->time_ns > y->time_ns;
}

static json_object *point_json(const MemPoint *pt)
{
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	query_add_timestamp(o, "time", pt->time_ns);
	json_add_int(o, "rss_bytes", (int64_t)(pt->anon + pt->file + pt->shmem));
	json_add_int(o, "anon_bytes", (int64_t)pt->anon);
	json_add_int(o, "file_bytes", (int64_t)pt->file);
	json_add_int(o, "shmem_bytes", (int64_t)pt->shmem);
	if (pt->flags & MEM_EXIT)
		json_object_object_add(o, "exit", json_object_new_boolean(true));
	if (pt->flags & MEM_OOM_KILL)
		json_object_object_add(o, "oom_kill", json_object_new_boolean(true));
	return o;
}

/* One process: its points in range, oldest first, and its peak. */
static int answer_process(const QueryContext *ctx, const Selection *sel, int64_t since_ns,
			  json_object **ret)
{
	const Store *store = ctx->store;
	const StoreProc *p = store_proc(store, sel->proc);
	_cleanup_json_ json_object *answer = json_object_new_object();
	_cleanup_free_ MemPoint *points = NULL;
	QueryMemSummary m = { 0 };
	size_t n = 0, allocated = 0;
	json_object *arr;

	if (!answer)
		return -ENOMEM;
	for (size_t i = sel->range.first; i < sel->range.end; i++) {
		const Window *w = store_window(store, i);

		for (size_t j = 0; j < w->n_mem; j++) {
			if (w->mem[j].proc != sel->proc)
				continue;
			if (GREEDY_REALLOC(points, allocated, n + 1) < 0)
				return -ENOMEM;
			points[n++] = w->mem[j];
			query_mem_add(&m, &w->mem[j]);
		}
	}
	if (n > 1)
		qsort(points, n, sizeof(MemPoint), point_cmp);
	json_add_int(answer, "pid", p->pid);
	json_add_string(answer, "comm", store_string(store, p->comm));
	json_add_string(answer, "cmdline", store_string(store, p->cmdline));
	query_add_times(answer, p);
	if (p->flags & PROC_EXITED)
		json_add_int(answer, "exit_code", p->exit_code);
	else
		json_object_object_add(answer, "exit_code", NULL);
	add_peak(answer, &m, since_ns);
	arr = json_object_new_array_ext((int)MIN(n, (size_t)INT_MAX));
	if (!arr)
		return -ENOMEM;
	json_object_object_add(answer, "points", arr);
	for (size_t i = 0; i < n; i++) {
		json_object *o = point_json(&points[i]);

		if (!o)
			return -ENOMEM;
		json_object_array_add(arr, o);
	}
	*ret = TAKE_PTR(answer);
	return 0;
}

typedef struct MemRow {
	ProcId proc;
	QueryMemSummary m;
	uint64_t peak;
	int64_t peak_ns;
	bool exact;
} MemRow;

static SortKey row_sort;

static int row_cmp(const void *a, const void *b)
{
	const MemRow *x = a, *y = b;
	int64_t gx = (int64_t)x->m.last_rss - (int64_t)x->m.first_rss;
	int64_t gy = (int64_t)y->m.last_rss - (int64_t)y->m.first_rss;

	if (row_sort == SORT_GROWTH && gx != gy)
		return gx > gy ? -1 : 1;
	if (x->peak != y->peak)
		return x->peak > y->peak ? -1 : 1;
	return x->proc < y->proc ? -1 : x->proc > y->proc;
}

/* Every selected process with points in range, by peak or growth. */
static int answer_ranking(const QueryContext *ctx, const Request *req, const Selection *sel,
			  int64_t since_ns, json_object **ret)
{
	const Store *store = ctx->store;
	size_t limit = store_proc_id_limit(store), n = 0;
	_cleanup_json_ json_object *answer = json_object_new_object();
	_cleanup_free_ QueryMemSummary *sums = calloc(MAX(limit, (size_t)1), sizeof(*sums));
	_cleanup_free_ MemRow *rows = NULL;
	json_object *arr;

	if (!answer || !sums)
		return -ENOMEM;
	for (size_t i = sel->range.first; i < sel->range.end; i++) {
		const Window *w = store_window(store, i);

		for (size_t j = 0; j < w->n_mem; j++)
			if (w->mem[j].proc < limit && sel->procs[w->mem[j].proc])
				query_mem_add(&sums[w->mem[j].proc], &w->mem[j]);
	}
	for (ProcId id = 1; id < limit; id++)
		n += sums[id].points > 0;
	rows = calloc(MAX(n, (size_t)1), sizeof(MemRow));
	if (!rows)
		return -ENOMEM;
	n = 0;
	for (ProcId id = 1; id < limit; id++) {
		MemRow *r = &rows[n];

		if (!sums[id].points)
			continue;
		r->proc = id;
		r->m = sums[id];
		peak_of(&r->m, since_ns, &r->peak, &r->peak_ns, &r->exact);
		n++;
	}
	row_sort = req->sort;
	qsort(rows, n, sizeof(MemRow), row_cmp);
	arr = json_object_new_array();
	if (!arr)
		return -ENOMEM;
	json_object_object_add(answer, "rows", arr);
	json_add_string(answer, "sort", sort_key_to_string(req->sort));
	json_add_int(answer, "total_rows", (int64_t)n);
	json_object_object_add(answer, "pid", NULL);
	for (size_t i = 0; i < n && i < req->limit; i++) {
		const StoreProc *p = store_proc(store, rows[i].proc);
		json_object *o = json_object_new_object();

		if (!o)
			return -ENOMEM;
		json_object_array_add(arr, o);
		json_add_int(o, "pid", p->pid);
		json_add_string(o, "comm", store_string(store, p->comm));
		json_add_string(o, "cmdline", store_string(store, p->cmdline));
		query_add_times(o, p);
		add_peak(o, &rows[i].m, since_ns);
		json_add_int(o, "points", (int64_t)rows[i].m.points);
	}
	*ret = TAKE_PTR(answer);
	return 0;
}

int query_answer_mem(const QueryContext *ctx, const Request *req, const Selection *sel,
		     json_object **ret)
{
	/* Ranges are whole windows. */
	int64_t since_ns = req->has_since ? sel->range.start_ns : INT64_MIN;

	if (sel->proc)
		return answer_process(ctx, sel, since_ns, ret);
	return answer_ranking(ctx, req, sel, since_ns, ret);
}
