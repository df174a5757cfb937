/* SPDX-License-Identifier: MIT */
#include <inttypes.h>

#include "hashindex.h"
#include "json-util.h"
#include "query.h"

/* The windows of the store that overlap the request's range. */
typedef struct Range {
	int64_t since_ns, until_ns;
	size_t first, end;   /* window indices [first, end) */
	uint64_t elapsed_ns; /* wall time the windows in range cover */
} Range;

static int64_t window_effective_end(const Window *w, int64_t now_ns)
{
	return w->open ? MIN(w->end_ns, now_ns) : w->end_ns;
}

static void range_compute(const QueryContext *ctx, const Request *req, Range *ret)
{
	size_t n = store_window_count(ctx->store);
	Range r = { .since_ns = INT64_MIN, .until_ns = INT64_MAX, .first = n, .end = 0 };

	if (req->has_since)
		r.since_ns = ctx->now_ns - (int64_t)req->since_ns;
	if (req->has_until)
		r.until_ns = ctx->now_ns - (int64_t)req->until_ns;
	for (size_t i = 0; i < n; i++) {
		const Window *w = store_window(ctx->store, i);
		int64_t end = window_effective_end(w, ctx->now_ns);

		if (w->start_ns >= r.until_ns || end <= r.since_ns)
			continue;
		r.first = MIN(r.first, i);
		r.end = i + 1;
		if (end > w->start_ns)
			r.elapsed_ns += (uint64_t)(end - w->start_ns);
	}
	if (r.first > r.end)
		r.first = r.end = 0;
	*ret = r;
}

static bool proc_visible(const QueryContext *ctx, const StoreProc *p)
{
	return ctx->viewer.privileged || p->uid == ctx->viewer.uid;
}

/*
 * Selects the processes a request covers, as a map indexed by ProcId. With a pid: the newest
 * incarnation of that pid with samples in range. On failure *ret_error holds the answer.
 */
static int select_procs(const QueryContext *ctx, const Request *req, const Range *range,
			uint8_t **ret_sel, ProcId *ret_proc, json_object **ret_error)
{
	size_t limit = store_proc_id_limit(ctx->store);
	_cleanup_free_ uint8_t *sel = calloc(limit, 1);
	ProcId best = 0;

	if (!sel)
		return -ENOMEM;
	*ret_proc = 0;
	*ret_error = NULL;
	for (size_t i = range->first; i < range->end; i++) {
		const Window *w = store_window(ctx->store, i);

		for (size_t j = 0; j < w->n_entries; j++) {
			ProcId id = w->entries[j].proc;
			const StoreProc *p;

			if (sel[id])
				continue;
			p = store_proc(ctx->store, id);
			if (req->pid) {
				if (p->pid != req->pid)
					continue;
				if (!best || p->start_ns > store_proc(ctx->store, best)->start_ns)
					best = id;
			} else if (proc_visible(ctx, p)) {
				sel[id] = 1;
			}
		}
	}
	if (req->pid) {
		if (!best) {
			*ret_error = error_answer_new(ERROR_NOT_FOUND,
						      "No samples for pid %" PRIu32 " in range",
						      req->pid);
			return *ret_error ? 0 : -ENOMEM;
		}
		if (!proc_visible(ctx, store_proc(ctx->store, best))) {
			*ret_error = error_answer_new(
				ERROR_DENIED, "Permission denied for pid %" PRIu32, req->pid);
			return *ret_error ? 0 : -ENOMEM;
		}
		sel[best] = 1;
		*ret_proc = best;
	}
	*ret_sel = TAKE_PTR(sel);
	return 0;
}

int query_frame_name(const Store *store, const StoreFrame *f, bool show_kernel_addresses, char *buf,
		     size_t len)
{
	const char *fn = store_string(store, f->function);
	const char *mod = store_string(store, f->module);

	if (fn)
		return snprintf(buf, len, "%s", fn);
	if ((f->flags & FRAME_KERNEL) && !show_kernel_addresses)
		return snprintf(buf, len, "%s", strempty(mod));
	return snprintf(buf, len, "%s+0x%" PRIx64, mod ? mod : "[unknown]", f->address);
}

/* ---- top ---- */

typedef struct FuncRow {
	FrameId frame; /* a representative frame: name, module, file */
	StackId stamp; /* last stack counted into total, so recursion counts once */
	uint64_t key;
	uint64_t self;
	uint64_t total;
	char *name;
} FuncRow;

typedef struct FuncTable {
	FuncRow *rows;
	size_t n, allocated;
	HashIndex *index;
} FuncTable;

static bool func_eq(uint32_t idx, const void *key, void *userdata)
{
	return ((FuncTable *)userdata)->rows[idx].key == *(const uint64_t *)key;
}

/* Rows aggregate by function and module; unresolved frames by their own location. */
static uint64_t func_key(FrameId id, const StoreFrame *f)
{
	if (f->function)
		return (uint64_t)f->module << 32 | f->function;
	return 1ULL << 63 | id;
}

static int func_row(FuncTable *t, FrameId id, const StoreFrame *f, FuncRow **ret)
{
	uint64_t key = func_key(id, f), hash = key * 0x9E3779B97F4A7C15ULL;
	uint32_t idx;
	int r;

	if (hash_index_find(t->index, hash, func_eq, &key, t, &idx) == 0) {
		*ret = &t->rows[idx];
		return 0;
	}
	r = GREEDY_REALLOC(t->rows, t->allocated, t->n + 1);
	if (r < 0)
		return r;
	r = hash_index_insert(t->index, hash, (uint32_t)t->n);
	if (r < 0)
		return r;
	t->rows[t->n] = (FuncRow){ .frame = id, .key = key };
	*ret = &t->rows[t->n++];
	return 0;
}

static int cmp_self(const void *a, const void *b)
{
	const FuncRow *x = a, *y = b;

	if (x->self != y->self)
		return x->self > y->self ? -1 : 1;
	if (x->total != y->total)
		return x->total > y->total ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int cmp_total(const void *a, const void *b)
{
	const FuncRow *x = a, *y = b;

	if (x->total != y->total)
		return x->total > y->total ? -1 : 1;
	if (x->self != y->self)
		return x->self > y->self ? -1 : 1;
	return strcmp(x->name, y->name);
}

static double pct(uint64_t part, uint64_t whole)
{
	return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

/* Sums the selected entries of the range per stack into counts[StackId]. */
static uint64_t count_stacks(const QueryContext *ctx, const Request *req, const Range *range,
			     const uint8_t *sel, uint64_t *counts)
{
	uint64_t total = 0;

	for (size_t i = range->first; i < range->end; i++) {
		const Window *w = store_window(ctx->store, i);

		for (size_t j = 0; j < w->n_entries; j++) {
			const WindowEntry *e = &w->entries[j];
			uint64_t n = (uint64_t)e->user + e->kernel;

			if (!sel[e->proc] || (req->tid && e->tid != req->tid))
				continue;
			counts[e->stack] += n;
			total += n;
		}
	}
	return total;
}

static int answer_top(const QueryContext *ctx, const Request *req, json_object **ret)
{
	const Store *store = ctx->store;
	size_t n_stacks = store_stack_id_limit(store);
	_cleanup_free_ uint64_t *counts = NULL;
	_cleanup_free_ uint8_t *sel = NULL;
	_cleanup_json_ json_object *answer = NULL;
	json_object *rows, *error = NULL;
	FuncTable t = { 0 };
	uint64_t total;
	ProcId proc;
	Range range;
	int r;

	range_compute(ctx, req, &range);
	r = select_procs(ctx, req, &range, &sel, &proc, &error);
	if (r < 0 || error) {
		*ret = error;
		return r;
	}
	counts = calloc(n_stacks, sizeof(uint64_t));
	if (!counts)
		return -ENOMEM;
	total = count_stacks(ctx, req, &range, sel, counts);
	if (total == 0) {
		if (req->tid)
			*ret = error_answer_new(ERROR_NOT_FOUND,
						"No samples for thread %" PRIu32 " in range",
						req->tid);
		else
			*ret = error_answer_new(ERROR_NOT_FOUND, "No samples in range");
		return *ret ? 0 : -ENOMEM;
	}

	r = hash_index_new(&t.index);
	if (r < 0)
		goto out;
	for (StackId s = 1; s < n_stacks; s++) {
		const FrameId *frames;
		size_t n;

		if (counts[s] == 0)
			continue;
		frames = store_stack(store, s, &n);
		for (size_t i = 0; i < n; i++) {
			const StoreFrame *f = store_frame(store, frames[i]);
			FuncRow *row;

			if (f->flags & FRAME_TRUNCATED)
				continue;
			r = func_row(&t, frames[i], f, &row);
			if (r < 0)
				goto out;
			if (i == 0)
				row->self += counts[s];
			if (row->stamp != s) {
				row->total += counts[s];
				row->stamp = s;
			}
		}
	}
	for (size_t i = 0; i < t.n; i++) {
		char name[512];

		query_frame_name(store, store_frame(store, t.rows[i].frame), ctx->viewer.privileged,
				 name, sizeof(name));
		t.rows[i].name = strdup(name);
		if (!t.rows[i].name) {
			r = -ENOMEM;
			goto out;
		}
	}
	qsort(t.rows, t.n, sizeof(FuncRow), req->sort == SORT_TOTAL ? cmp_total : cmp_self);

	answer = json_object_new_object();
	rows = json_object_new_array();
	if (!answer || !rows) {
		json_object_put(rows);
		r = -ENOMEM;
		goto out;
	}
	if (proc) {
		const StoreProc *p = store_proc(store, proc);

		json_add_int(answer, "pid", p->pid);
		json_add_string(answer, "comm", store_string(store, p->comm));
	} else {
		json_object_object_add(answer, "pid", NULL);
	}
	if (req->tid)
		json_add_int(answer, "tid", req->tid);
	json_add_int(answer, "samples", (int64_t)total);
	json_add_string(answer, "sort", sort_key_to_string(req->sort));
	json_object_object_add(answer, "rows", rows);
	for (size_t i = 0; i < t.n && i < req->limit; i++) {
		const FuncRow *row = &t.rows[i];
		const StoreFrame *f = store_frame(store, row->frame);
		json_object *o = json_object_new_object();

		if (!o) {
			r = -ENOMEM;
			goto out;
		}
		json_add_string(o, "function", row->name);
		json_add_string(o, "module", store_string(store, f->module));
		json_add_string(o, "file", store_string(store, f->file));
		if (f->file && f->line)
			json_add_int(o, "line", f->line);
		else
			json_object_object_add(o, "line", NULL);
		json_add_int(o, "self_samples", (int64_t)row->self);
		json_add_int(o, "total_samples", (int64_t)row->total);
		json_add_double(o, "self_pct", pct(row->self, total), 2);
		json_add_double(o, "total_pct", pct(row->total, total), 2);
		json_object_object_add(o, "kernel", json_object_new_boolean(f->flags & FRAME_KERNEL));
		json_object_array_add(rows, o);
	}
	*ret = TAKE_PTR(answer);
	r = 0;
out:
	for (size_t i = 0; i < t.n; i++)
		free(t.rows[i].name);
	free(t.rows);
	hash_index_free(t.index);
	return r;
}

/* ---- ps ---- */

typedef struct PsRow {
	ProcId proc;
	uint64_t user, kernel;	     /* samples */
	uint64_t user_ns, kernel_ns; /* samples x period */
} PsRow;

static int cmp_ps(const void *a, const void *b)
{
	const PsRow *x = a, *y = b;
	uint64_t cx = x->user_ns + x->kernel_ns, cy = y->user_ns + y->kernel_ns;

	if (cx != cy)
		return cx > cy ? -1 : 1;
	return x->proc < y->proc ? -1 : x->proc > y->proc;
}

static int answer_ps(const QueryContext *ctx, const Request *req, json_object **ret)
{
	const Store *store = ctx->store;
	size_t limit = store_proc_id_limit(store), n = 0;
	_cleanup_free_ PsRow *rows = NULL;
	_cleanup_free_ uint8_t *sel = NULL;
	_cleanup_json_ json_object *answer = NULL;
	json_object *arr, *error = NULL;
	ProcId proc;
	Range range;
	int r;

	range_compute(ctx, req, &range);
	r = select_procs(ctx, req, &range, &sel, &proc, &error);
	if (r < 0 || error) {
		*ret = error;
		return r;
	}
	rows = calloc(limit, sizeof(PsRow));
	if (!rows)
		return -ENOMEM;
	for (size_t i = range.first; i < range.end; i++) {
		const Window *w = store_window(store, i);

		for (size_t j = 0; j < w->n_entries; j++) {
			const WindowEntry *e = &w->entries[j];
			PsRow *row = &rows[e->proc];

			if (!sel[e->proc])
				continue;
			row->proc = e->proc;
			row->user += e->user;
			row->kernel += e->kernel;
			row->user_ns += e->user * w->period_ns;
			row->kernel_ns += e->kernel * w->period_ns;
		}
	}
	/* Compact to the processes with samples. */
	for (size_t i = 0; i < limit; i++)
		if (rows[i].proc)
			rows[n++] = rows[i];
	qsort(rows, n, sizeof(PsRow), cmp_ps);

	answer = json_object_new_object();
	arr = json_object_new_array();
	if (!answer || !arr) {
		json_object_put(arr);
		return -ENOMEM;
	}
	json_object_object_add(answer, "rows", arr);
	json_add_double(answer, "elapsed_s", (double)range.elapsed_ns / NSEC_PER_SEC, 3);
	for (size_t i = 0; i < n && i < req->limit; i++) {
		const StoreProc *p = store_proc(store, rows[i].proc);
		double el = (double)range.elapsed_ns;
		json_object *o = json_object_new_object();

		if (!o)
			return -ENOMEM;
		json_add_int(o, "pid", p->pid);
		json_add_string(o, "comm", store_string(store, p->comm));
		json_add_double(o, "user_pct", el > 0 ? 100.0 * (double)rows[i].user_ns / el : 0, 2);
		json_add_double(o, "sys_pct", el > 0 ? 100.0 * (double)rows[i].kernel_ns / el : 0, 2);
		json_add_double(
			o, "cpu_pct",
			el > 0 ? 100.0 * (double)(rows[i].user_ns + rows[i].kernel_ns) / el : 0, 2);
		json_add_int(o, "samples", (int64_t)(rows[i].user + rows[i].kernel));
		json_add_int(o, "user_samples", (int64_t)rows[i].user);
		json_add_int(o, "sys_samples", (int64_t)rows[i].kernel);
		json_add_int(o, "ppid", p->ppid);
		json_add_int(o, "uid", p->uid);
		json_add_string(o, "cmdline", store_string(store, p->cmdline));
		json_object_object_add(o, "exited", json_object_new_boolean(p->flags & PROC_EXITED));
		json_object_array_add(arr, o);
	}
	*ret = TAKE_PTR(answer);
	return 0;
}

int query_answer(const QueryContext *ctx, const Request *req, json_object **ret)
{
	switch (req->command) {
	case COMMAND_TOP:
		return answer_top(ctx, req, ret);
	case COMMAND_PS:
		return answer_ps(ctx, req, ret);
	default:
		return -EOPNOTSUPP;
	}
}
