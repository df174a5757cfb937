/* SPDX-License-Identifier: MIT */
#include <inttypes.h>

#include "base/hashindex.h"
#include "base/json-util.h"
#include "query/query.h"

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

bool query_proc_visible(const Viewer *viewer, const StoreProc *p)
{
	if (!p)
		return false;
	if (viewer->privileged)
		return true;
	return p->uid == viewer->uid && !(p->flags & (PROC_PRIVATE | PROC_KTHREAD));
}

static bool proc_visible(const QueryContext *ctx, const StoreProc *p)
{
	return query_proc_visible(&ctx->viewer, p);
}

/* Processes with samples in the range, as a map indexed by ProcId. */
static uint8_t *procs_in_range(const QueryContext *ctx, const Range *range)
{
	uint8_t *in = calloc(store_proc_id_limit(ctx->store), 1);

	if (!in)
		return NULL;
	for (size_t i = range->first; i < range->end; i++) {
		const Window *w = store_window(ctx->store, i);

		for (size_t j = 0; j < w->n_entries; j++)
			in[w->entries[j].proc] = 1;
	}
	return in;
}

typedef struct ProcRef {
	uint32_t pid;
	int64_t start_ns;
	ProcId id;
} ProcRef;

static int procref_cmp(const void *a, const void *b)
{
	const ProcRef *x = a, *y = b;

	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	if (x->start_ns != y->start_ns)
		return x->start_ns < y->start_ns ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* The process a parent pid meant for child c: the newest incarnation started before c. */
static ProcId parent_of(const Store *store, const ProcRef *refs, size_t n, ProcId c)
{
	const StoreProc *p = store_proc(store, c);
	size_t lo = 0, hi = n;

	if (!p || p->ppid == 0 || p->ppid == p->pid)
		return 0;
	/* First ref past (ppid, start). */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (refs[mid].pid < p->ppid ||
		    (refs[mid].pid == p->ppid && refs[mid].start_ns <= p->start_ns))
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0 || refs[lo - 1].pid != p->ppid)
		return 0;
	return refs[lo - 1].id;
}

/* Marks in sel every process descended from root (root excluded) that passes filter. */
static int mark_descendants(const QueryContext *ctx, ProcId root, const uint8_t *filter, uint8_t *sel)
{
	const Store *store = ctx->store;
	size_t limit = store_proc_id_limit(store), n = 0;
	_cleanup_free_ ProcRef *refs = calloc(limit, sizeof(ProcRef));
	/* 0 unknown, 1 descendant, 2 not. */
	_cleanup_free_ uint8_t *state = calloc(limit, 1);
	_cleanup_free_ ProcId *chain = calloc(limit, sizeof(ProcId));

	if (!refs || !state || !chain)
		return -ENOMEM;
	for (ProcId id = 1; id < limit; id++) {
		const StoreProc *p = store_proc(store, id);

		if (p)
			refs[n++] = (ProcRef){ .pid = p->pid, .start_ns = p->start_ns, .id = id };
	}
	qsort(refs, n, sizeof(ProcRef), procref_cmp);
	state[root] = 1;
	for (size_t i = 0; i < n; i++) {
		size_t depth = 0;
		ProcId cur = refs[i].id;
		uint8_t verdict = 2;

		/* Walk up until an answer; the chain learns it. Pid cycles cannot loop: each step
		 * goes to an older start, and the depth is bounded by the table anyway. */
		while (cur && state[cur] == 0 && depth < limit) {
			chain[depth++] = cur;
			cur = parent_of(store, refs, n, cur);
		}
		if (cur && state[cur] == 1)
			verdict = 1;
		for (size_t j = 0; j < depth; j++)
			state[chain[j]] = verdict;
	}
	for (ProcId id = 1; id < limit; id++)
		if (id != root && state[id] == 1 && (!filter || filter[id]) &&
		    proc_visible(ctx, store_proc(store, id)))
			sel[id] = 1;
	return 0;
}

/*
 * Selects the processes a request covers, as a map indexed by ProcId. With a pid: one
 * incarnation of it (the one started at req->start_ns, else the newest), among those with
 * samples in range when in_range is given, plus its descendants with req->children. Without:
 * every visible process in in_range. On failure *ret_error holds the answer.
 */
static int select_procs(const QueryContext *ctx, const Request *req, const uint8_t *in_range,
			uint8_t **ret_sel, ProcId *ret_proc, json_object **ret_error)
{
	size_t limit = store_proc_id_limit(ctx->store);
	_cleanup_free_ uint8_t *sel = calloc(limit, 1);
	int64_t best_delta = INT64_MAX;
	ProcId best = 0;
	int r;

	if (!sel)
		return -ENOMEM;
	*ret_proc = 0;
	*ret_error = NULL;
	if (!req->pid) {
		for (ProcId id = 1; id < limit; id++)
			if (in_range && in_range[id] && proc_visible(ctx, store_proc(ctx->store, id)))
				sel[id] = 1;
		*ret_sel = TAKE_PTR(sel);
		return 0;
	}
	for (ProcId id = 1; id < limit; id++) {
		const StoreProc *p = store_proc(ctx->store, id);
		int64_t delta;

		/* With children, the root need not have samples itself (a shell waiting for
		 * them), only some of its descendants. */
		if (!p || p->pid != req->pid || (in_range && !in_range[id] && !req->children))
			continue;
		if (req->start_ns) {
			delta = p->start_ns > req->start_ns ? p->start_ns - req->start_ns
							    : req->start_ns - p->start_ns;
			if (delta > (int64_t)NSEC_PER_SEC || delta >= best_delta)
				continue;
			best_delta = delta;
			best = id;
		} else if (!best || p->start_ns > store_proc(ctx->store, best)->start_ns) {
			best = id;
		}
	}
	if (!best) {
		if (req->start_ns)
			*ret_error = error_answer_new(
				ERROR_NOT_FOUND, "No process %" PRIu32 " started at that time%s",
				req->pid, in_range ? " has samples in range" : "");
		else if (in_range)
			*ret_error = error_answer_new(ERROR_NOT_FOUND,
						      "No samples for pid %" PRIu32 " in range",
						      req->pid);
		else
			*ret_error = error_answer_new(ERROR_NOT_FOUND,
						      "No process %" PRIu32 " is known", req->pid);
		return *ret_error ? 0 : -ENOMEM;
	}
	if (!proc_visible(ctx, store_proc(ctx->store, best))) {
		*ret_error = error_answer_new(ERROR_DENIED, "Permission denied for pid %" PRIu32,
					      req->pid);
		return *ret_error ? 0 : -ENOMEM;
	}
	sel[best] = 1;
	if (req->children) {
		r = mark_descendants(ctx, best, in_range, sel);
		if (r < 0)
			return r;
	}
	*ret_proc = best;
	*ret_sel = TAKE_PTR(sel);
	return 0;
}

/* Selection for a query over samples in a range: selects among processes with samples there. */
static int select_in_range(const QueryContext *ctx, const Request *req, const Range *range,
			   uint8_t **ret_sel, ProcId *ret_proc, json_object **ret_error)
{
	_cleanup_free_ uint8_t *in = procs_in_range(ctx, range);

	if (!in)
		return -ENOMEM;
	return select_procs(ctx, req, in, ret_sel, ret_proc, ret_error);
}

/* Unprivileged viewers without kernel names see every kernel frame as this one. */
#define KERNEL_FRAME_NAME "[kernel]"

static bool kernel_collapsed(const Viewer *viewer, const StoreFrame *f)
{
	return (f->flags & FRAME_KERNEL) && !viewer->privileged && !viewer->kernel_names;
}

int query_frame_name(const Store *store, const StoreFrame *f, const Viewer *viewer, char *buf,
		     size_t len)
{
	const char *fn = store_string(store, f->function);
	const char *mod = store_string(store, f->module);

	if (kernel_collapsed(viewer, f))
		return snprintf(buf, len, "%s", KERNEL_FRAME_NAME);
	if (fn)
		return snprintf(buf, len, "%s", fn);
	if ((f->flags & FRAME_KERNEL) && !viewer->privileged)
		return snprintf(buf, len, "%s", KERNEL_FRAME_NAME);
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

/* Rows aggregate by function and module; unresolved frames by their own location; kernel
 * frames the viewer may not tell apart into one row. */
static uint64_t func_key(const Viewer *viewer, FrameId id, const StoreFrame *f)
{
	if (kernel_collapsed(viewer, f) ||
	    ((f->flags & FRAME_KERNEL) && !f->function && !viewer->privileged))
		return 1ULL << 62;
	if (f->function)
		return (uint64_t)f->module << 32 | f->function;
	return 1ULL << 63 | id;
}

static int func_row(FuncTable *t, const Viewer *viewer, FrameId id, const StoreFrame *f, FuncRow **ret)
{
	uint64_t key = func_key(viewer, id, f), hash = key * 0x9E3779B97F4A7C15ULL;
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

/* How rows are ordered; names are made only for rows a comparison or the answer needs. */
typedef struct RowOrder {
	const Store *store;
	const Viewer *viewer;
	SortKey sort;
	int error; /* -ENOMEM once a name could not be made */
} RowOrder;

static const char *row_name(RowOrder *o, FuncRow *row)
{
	char name[512];

	if (!row->name) {
		query_frame_name(o->store, store_frame(o->store, row->frame), o->viewer, name,
				 sizeof(name));
		row->name = strdup(name);
		if (!row->name) {
			o->error = -ENOMEM;
			return "";
		}
	}
	return row->name;
}

/* < 0 when x comes first: by self (or total) samples, then the other count, then by name. */
static int row_cmp(RowOrder *o, FuncRow *x, FuncRow *y)
{
	uint64_t x1 = o->sort == SORT_TOTAL ? x->total : x->self;
	uint64_t y1 = o->sort == SORT_TOTAL ? y->total : y->self;
	uint64_t x2 = o->sort == SORT_TOTAL ? x->self : x->total;
	uint64_t y2 = o->sort == SORT_TOTAL ? y->self : y->total;

	if (x1 != y1)
		return x1 > y1 ? -1 : 1;
	if (x2 != y2)
		return x2 > y2 ? -1 : 1;
	return strcmp(row_name(o, x), row_name(o, y));
}

static int row_qsort_cmp(const void *a, const void *b, void *userdata)
{
	/* Every row has its name by then: the comparison changes nothing. */
	return row_cmp(userdata, (FuncRow *)a, (FuncRow *)b);
}

/* Up to this many rows asked for, they are selected; more, all rows are sorted. */
#define ROWS_SELECT_MAX 256

/*
 * The first `limit` rows in order, as indices into t->rows (*ret_n of them). For the usual few,
 * a selection rather than a sort of every row: a ring holds tens of thousands of functions,
 * and only the rows shown and those tied with them need their names made.
 */
static int rows_best(FuncTable *t, RowOrder *o, size_t limit, uint32_t **ret, size_t *ret_n)
{
	size_t k = MIN(limit, t->n), n = 0;
	uint32_t *best = malloc(MAX(k, (size_t)1) * sizeof(uint32_t));

	if (!best)
		return -ENOMEM;
	if (k > ROWS_SELECT_MAX) {
		for (size_t i = 0; i < t->n; i++)
			(void)row_name(o, &t->rows[i]);
		if (o->error < 0) {
			free(best);
			return o->error;
		}
		qsort_r(t->rows, t->n, sizeof(FuncRow), row_qsort_cmp, o);
		for (n = 0; n < k; n++)
			best[n] = (uint32_t)n;
	}
	for (size_t i = 0; k > 0 && k <= ROWS_SELECT_MAX && i < t->n; i++) {
		size_t pos = n;

		if (n == k && row_cmp(o, &t->rows[i], &t->rows[best[k - 1]]) >= 0)
			continue;
		while (pos > 0 && row_cmp(o, &t->rows[i], &t->rows[best[pos - 1]]) < 0)
			pos--;
		if (n < k)
			n++;
		memmove(best + pos + 1, best + pos, (n - 1 - pos) * sizeof(uint32_t));
		best[pos] = (uint32_t)i;
	}
	for (size_t i = 0; i < n; i++)
		(void)row_name(o, &t->rows[best[i]]);
	if (o->error < 0) {
		free(best);
		return o->error;
	}
	*ret = best;
	*ret_n = n;
	return 0;
}

/* In a frame -> row map: the frame has no row of its own (an inline folded away). */
#define FRAME_ROW_SKIP UINT32_MAX

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
	/* FrameId -> index + 1 of its row; 0: not looked up yet. */
	_cleanup_free_ uint32_t *frame_rows = NULL, *best = NULL;
	RowOrder order = { .store = store, .viewer = &ctx->viewer, .sort = req->sort };
	size_t n_best = 0;
	_cleanup_json_ json_object *answer = NULL;
	json_object *rows, *error = NULL;
	FuncTable t = { 0 };
	uint64_t total;
	ProcId proc;
	Range range;
	int r;

	range_compute(ctx, req, &range);
	r = select_in_range(ctx, req, &range, &sel, &proc, &error);
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

	/* Stacks share most of their frames: each frame's row is looked up once. */
	frame_rows = calloc(store_frame_id_limit(store), sizeof(uint32_t));
	if (!frame_rows)
		return -ENOMEM;
	r = hash_index_new(&t.index);
	if (r < 0)
		goto out;
	for (StackId s = 1; s < n_stacks; s++) {
		const FrameId *frames;
		bool leaf;
		size_t n;

		if (counts[s] == 0)
			continue;
		frames = store_stack(store, s, &n);
		leaf = true;
		for (size_t i = 0; i < n; i++) {
			uint32_t *fr = &frame_rows[frames[i]];
			FuncRow *row;

			if (*fr == 0) {
				const StoreFrame *f = store_frame(store, frames[i]);

				/* Without inlines, a call inlined into its caller is the caller's. */
				if (req->no_inline && (f->flags & FRAME_INLINED)) {
					*fr = FRAME_ROW_SKIP;
				} else {
					r = func_row(&t, &ctx->viewer, frames[i], f, &row);
					if (r < 0)
						goto out;
					*fr = (uint32_t)(row - t.rows) + 1;
				}
			}
			if (*fr == FRAME_ROW_SKIP)
				continue;
			row = &t.rows[*fr - 1];
			if (leaf)
				row->self += counts[s];
			leaf = false;
			if (row->stamp != s) {
				row->total += counts[s];
				row->stamp = s;
			}
		}
	}
	r = rows_best(&t, &order, req->limit, &best, &n_best);
	if (r < 0)
		goto out;

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
	json_object_object_add(answer, "inline", json_object_new_boolean(!req->no_inline));
	json_object_object_add(answer, "rows", rows);
	for (size_t i = 0; i < n_best; i++) {
		const FuncRow *row = &t.rows[best[i]];
		const StoreFrame *f = store_frame(store, row->frame);
		json_object *o = json_object_new_object();

		if (!o) {
			r = -ENOMEM;
			goto out;
		}
		json_add_string(o, "function", row->name);
		if (kernel_collapsed(&ctx->viewer, f))
			json_object_object_add(o, "symbol", NULL);
		else
			json_add_string(o, "symbol", store_string(store, f->symbol ?: f->function));
		json_add_string(o, "module", store_string(store, f->module));
		/* Where the function is: its declaration. */
		json_add_string(o, "file", store_string(store, f->decl_file));
		if (f->decl_file && f->decl_line)
			json_add_int(o, "line", f->decl_line);
		else
			json_object_object_add(o, "line", NULL);
		json_add_int(o, "self_samples", (int64_t)row->self);
		json_add_int(o, "total_samples", (int64_t)row->total);
		json_add_double(o, "self_pct", pct(row->self, total), 2);
		json_add_double(o, "total_pct", pct(row->total, total), 2);
		json_object_object_add(o, "kernel", json_object_new_boolean(f->flags & FRAME_KERNEL));
		json_object_object_add(o, "inlined",
				       json_object_new_boolean(f->flags & FRAME_INLINED));
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

/* ---- lines ---- */

/* A source line of a function; frames without a line are one row per function. */
typedef struct LineRow {
	FrameId frame; /* a representative frame: function, module, file, line */
	StrId file;
	uint32_t line;
	uint64_t func; /* func_key() */
	uint64_t self;
	uint64_t callee; /* with a function: the part spent in what the line called */
	char *name;
} LineRow;

typedef struct LineTable {
	LineRow *rows;
	size_t n, allocated;
	HashIndex *index;
} LineTable;

typedef struct LineKey {
	StrId file;
	uint32_t line;
	uint64_t func;
} LineKey;

static bool line_eq(uint32_t idx, const void *key, void *userdata)
{
	const LineRow *row = &((LineTable *)userdata)->rows[idx];
	const LineKey *k = key;

	return row->file == k->file && row->line == k->line && row->func == k->func;
}

static int line_row(LineTable *t, const Viewer *viewer, FrameId id, const StoreFrame *f, LineRow **ret)
{
	/* A kernel frame the viewer may not tell apart has no line either. */
	bool hidden = kernel_collapsed(viewer, f);
	LineKey key = { .file = hidden ? 0 : f->file,
			.line = !hidden && f->file ? f->line : 0,
			.func = func_key(viewer, id, f) };
	uint64_t hash = (key.func * 0x9E3779B97F4A7C15ULL ^ ((uint64_t)key.file << 32 | key.line)) *
			0xC2B2AE3D27D4EB4FULL;
	uint32_t idx;
	int r;

	if (hash_index_find(t->index, hash, line_eq, &key, t, &idx) == 0) {
		*ret = &t->rows[idx];
		return 0;
	}
	r = GREEDY_REALLOC(t->rows, t->allocated, t->n + 1);
	if (r < 0)
		return r;
	r = hash_index_insert(t->index, hash, (uint32_t)t->n);
	if (r < 0)
		return r;
	t->rows[t->n] = (LineRow){ .frame = id, .file = key.file, .line = key.line, .func = key.func };
	*ret = &t->rows[t->n++];
	return 0;
}

static int cmp_line(const void *a, const void *b)
{
	const LineRow *x = a, *y = b;
	int c;

	if (x->self != y->self)
		return x->self > y->self ? -1 : 1;
	c = strcmp(x->name, y->name);
	if (c != 0)
		return c;
	if (x->file != y->file)
		return x->file < y->file ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

/* Whether frame id is the function the request names (by name, or by raw symbol). */
static bool frame_is_function(const Store *store, const StoreFrame *f, const char *function)
{
	const char *fn = store_string(store, f->function);
	const char *sym = store_string(store, f->symbol);

	return (fn && streq(fn, function)) || (sym && streq(sym, function));
}

static int answer_not_found(const Request *req, json_object **ret)
{
	if (req->tid)
		*ret = error_answer_new(ERROR_NOT_FOUND,
					"No samples for thread %" PRIu32 " in range", req->tid);
	else
		*ret = error_answer_new(ERROR_NOT_FOUND, "No samples in range");
	return *ret ? 0 : -ENOMEM;
}

static void add_proc_fields(const QueryContext *ctx, const Request *req, ProcId proc,
			    uint64_t total, json_object *answer)
{
	const StoreProc *p = store_proc(ctx->store, proc);

	json_add_int(answer, "pid", p->pid);
	json_add_string(answer, "comm", store_string(ctx->store, p->comm));
	if (req->tid)
		json_add_int(answer, "tid", req->tid);
	json_add_int(answer, "samples", (int64_t)total);
	json_object_object_add(answer, "inline", json_object_new_boolean(!req->no_inline));
}

/*
 * Without a function, each sample counts on the line its leaf frame was executing. With one,
 * each sample with the function on its stack counts once, on the line of the function's
 * innermost frame: the line executing in it, or the call it was making (line_profiler's view:
 * a line's time includes what it calls). Inlined code has frames (and lines) of its own.
 */
static int answer_lines(const QueryContext *ctx, const Request *req, json_object **ret)
{
	const Store *store = ctx->store;
	size_t n_stacks = store_stack_id_limit(store);
	const char *function = req->function[0] ? req->function : NULL;
	_cleanup_free_ uint64_t *counts = NULL;
	_cleanup_free_ uint8_t *sel = NULL, *match = NULL;
	_cleanup_json_ json_object *answer = NULL;
	json_object *rows, *error = NULL;
	uint64_t total, in_function = 0;
	LineTable t = { 0 };
	ProcId proc;
	Range range;
	int r;

	range_compute(ctx, req, &range);
	r = select_in_range(ctx, req, &range, &sel, &proc, &error);
	if (r < 0 || error) {
		*ret = error;
		return r;
	}
	counts = calloc(n_stacks, sizeof(uint64_t));
	/* Per frame: 0 not yet known, 1 the function, 2 another. */
	match = function ? calloc(store_frame_id_limit(store), 1) : NULL;
	if (!counts || (function && !match))
		return -ENOMEM;
	total = count_stacks(ctx, req, &range, sel, counts);
	if (total == 0)
		return answer_not_found(req, ret);

	r = hash_index_new(&t.index);
	if (r < 0)
		goto out;
	for (StackId s = 1; s < n_stacks; s++) {
		const StoreFrame *f = NULL;
		const FrameId *frames;
		size_t n, i, depth = 0;
		LineRow *row;

		if (counts[s] == 0)
			continue;
		frames = store_stack(store, s, &n);
		for (i = 0; i < n; i++) {
			f = store_frame(store, frames[i]);
			/* Without inlines, the line is the call site in the function it is in. */
			if (req->no_inline && (f->flags & FRAME_INLINED))
				continue;
			if (!function)
				break;
			if (match[frames[i]] == 0)
				match[frames[i]] = !kernel_collapsed(&ctx->viewer, f) &&
								   frame_is_function(store, f,
										     function)
							   ? 1
							   : 2;
			if (match[frames[i]] == 1)
				break;
			depth++;
		}
		if (i == n)
			continue; /* not in the function (or only inlined frames) */
		r = line_row(&t, &ctx->viewer, frames[i], f, &row);
		if (r < 0)
			goto out;
		row->self += counts[s];
		if (depth > 0)
			row->callee += counts[s];
		in_function += counts[s];
	}
	if (function && in_function == 0) {
		*ret = error_answer_new(ERROR_NOT_FOUND, "No samples in function '%.256s' in range",
					function);
		r = *ret ? 0 : -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < t.n; i++) {
		char name[512];

		query_frame_name(store, store_frame(store, t.rows[i].frame), &ctx->viewer, name,
				 sizeof(name));
		t.rows[i].name = strdup(name);
		if (!t.rows[i].name) {
			r = -ENOMEM;
			goto out;
		}
	}
	if (t.n > 1)
		qsort(t.rows, t.n, sizeof(LineRow), cmp_line);

	answer = json_object_new_object();
	rows = json_object_new_array();
	if (!answer || !rows) {
		json_object_put(rows);
		r = -ENOMEM;
		goto out;
	}
	add_proc_fields(ctx, req, proc, total, answer);
	json_add_string(answer, "function", function);
	if (function) {
		json_add_int(answer, "function_samples", (int64_t)in_function);
		json_add_double(answer, "function_pct", pct(in_function, total), 2);
	}
	json_object_object_add(answer, "rows", rows);
	for (size_t i = 0; i < t.n && i < req->limit; i++) {
		const LineRow *row = &t.rows[i];
		const StoreFrame *f = store_frame(store, row->frame);
		json_object *o = json_object_new_object();

		if (!o) {
			r = -ENOMEM;
			goto out;
		}
		json_add_string(o, "file", store_string(store, row->file));
		if (row->file && row->line)
			json_add_int(o, "line", row->line);
		else
			json_object_object_add(o, "line", NULL);
		json_add_string(o, "function", row->name);
		json_add_string(o, "module", store_string(store, f->module));
		json_add_int(o, "self_samples", (int64_t)row->self);
		json_add_double(o, "self_pct", pct(row->self, total), 2);
		if (function) {
			json_add_int(o, "callee_samples", (int64_t)row->callee);
			json_add_double(o, "function_pct", pct(row->self, in_function), 2);
		}
		json_object_object_add(o, "kernel", json_object_new_boolean(f->flags & FRAME_KERNEL));
		json_object_object_add(o, "inlined",
				       json_object_new_boolean(f->flags & FRAME_INLINED));
		/* The source text is the reader's to add: the daemon never opens source files. */
		json_object_object_add(o, "text", NULL);
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

/* ---- tree ---- */

/* The most nodes a tree query builds: the hottest stacks get theirs first. */
#define TREE_NODES_MAX 100000u

typedef struct TreeNode {
	uint32_t parent; /* node 0 is the root above every outermost frame */
	FrameId frame;	 /* a representative frame of the function */
	uint64_t key;	 /* func_key() */
	uint64_t self, total;
	uint32_t first_child, n_children; /* into Tree.order */
} TreeNode;

typedef struct Tree {
	const Store *store;
	TreeNode *nodes;
	size_t n, allocated;
	HashIndex *index;
	uint32_t *order; /* node ids grouped by parent, each group by total, descending */
	uint64_t samples, truncated;
	double min_pct;
	const Viewer *viewer;
} Tree;

typedef struct TreeKey {
	uint32_t parent;
	uint64_t key;
} TreeKey;

typedef struct StackCount {
	StackId stack;
	uint64_t count;
} StackCount;

static bool tree_eq(uint32_t idx, const void *key, void *userdata)
{
	const TreeNode *node = &((Tree *)userdata)->nodes[idx];
	const TreeKey *k = key;

	return node->parent == k->parent && node->key == k->key;
}

/* The child of parent for a frame: 0 and *ret, or -E2BIG when the tree is full. */
static int tree_child(Tree *t, uint32_t parent, FrameId id, const StoreFrame *f, uint32_t *ret)
{
	TreeKey key = { .parent = parent, .key = func_key(t->viewer, id, f) };
	uint64_t hash = (key.key * 0x9E3779B97F4A7C15ULL ^ parent) * 0xC2B2AE3D27D4EB4FULL;
	uint32_t idx;
	int r;

	if (hash_index_find(t->index, hash, tree_eq, &key, t, &idx) == 0) {
		*ret = idx;
		return 0;
	}
	if (t->n > TREE_NODES_MAX) /* node 0, the root, is not one of them */
		return -E2BIG;
	r = GREEDY_REALLOC(t->nodes, t->allocated, t->n + 1);
	if (r < 0)
		return r;
	r = hash_index_insert(t->index, hash, (uint32_t)t->n);
	if (r < 0)
		return r;
	t->nodes[t->n] = (TreeNode){ .parent = parent, .frame = id, .key = key.key };
	*ret = (uint32_t)t->n++;
	return 0;
}

static int cmp_stack_count(const void *a, const void *b)
{
	const StackCount *x = a, *y = b;

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return x->stack < y->stack ? -1 : x->stack > y->stack;
}

static const char *node_function(const Tree *t, uint32_t id)
{
	return strempty(store_string(t->store, store_frame(t->store, t->nodes[id].frame)->function));
}

static int cmp_tree_order(const void *a, const void *b, void *userdata)
{
	const Tree *t = userdata;
	const TreeNode *x = &t->nodes[*(const uint32_t *)a], *y = &t->nodes[*(const uint32_t *)b];
	int c;

	if (x->parent != y->parent)
		return x->parent < y->parent ? -1 : 1;
	if (x->total != y->total)
		return x->total > y->total ? -1 : 1;
	c = strcmp(node_function(t, *(const uint32_t *)a), node_function(t, *(const uint32_t *)b));
	if (c != 0)
		return c;
	return x->key < y->key ? -1 : x->key > y->key;
}

/* Adds the stacks, hottest first, root (outermost frame) down. */
static int tree_build(Tree *t, const Request *req, const uint64_t *counts, size_t n_stacks)
{
	_cleanup_free_ StackCount *stacks = NULL;
	size_t n = 0;
	int r;

	for (StackId s = 1; s < n_stacks; s++)
		n += counts[s] > 0;
	stacks = calloc(MAX(n, (size_t)1), sizeof(StackCount));
	if (!stacks)
		return -ENOMEM;
	n = 0;
	for (StackId s = 1; s < n_stacks; s++)
		if (counts[s] > 0)
			stacks[n++] = (StackCount){ .stack = s, .count = counts[s] };
	qsort(stacks, n, sizeof(StackCount), cmp_stack_count);

	r = GREEDY_REALLOC(t->nodes, t->allocated, 1);
	if (r < 0)
		return r;
	t->nodes[0] = (TreeNode){ 0 };
	t->n = 1;
	for (size_t k = 0; k < n; k++) {
		size_t depth;
		const FrameId *frames = store_stack(t->store, stacks[k].stack, &depth);
		uint64_t c = stacks[k].count;
		uint32_t cur = 0;
		bool full = false;

		t->nodes[0].total += c;
		for (size_t i = depth; i-- > 0;) {
			const StoreFrame *f = store_frame(t->store, frames[i]);
			uint32_t child;

			if (req->no_inline && (f->flags & FRAME_INLINED))
				continue;
			r = tree_child(t, cur, frames[i], f, &child);
			if (r == -E2BIG) {
				/* Past the cap: the prefix keeps its totals, the rest is counted. */
				t->truncated += c;
				full = true;
				break;
			}
			if (r < 0)
				return r;
			cur = child;
			t->nodes[cur].total += c;
		}
		if (!full)
			t->nodes[cur].self += c;
	}

	/* Children by parent, hottest first. */
	t->order = calloc(t->n, sizeof(uint32_t));
	if (!t->order)
		return -ENOMEM;
	for (uint32_t i = 1; i < t->n; i++)
		t->order[i - 1] = i;
	qsort_r(t->order, t->n - 1, sizeof(uint32_t), cmp_tree_order, t);
	for (size_t i = t->n - 1; i-- > 0;) {
		TreeNode *p = &t->nodes[t->nodes[t->order[i]].parent];

		p->first_child = (uint32_t)i;
		p->n_children++;
	}
	return 0;
}

static bool tree_shown(const Tree *t, uint32_t id)
{
	return pct(t->nodes[id].total, t->samples) >= t->min_pct;
}

/* The children of node id that are shown, as a JSON array. Recursion depth is the stack's. */
static int tree_children_json(const Tree *t, uint32_t id, size_t *shown, json_object **ret)
{
	const TreeNode *node = &t->nodes[id];
	_cleanup_json_ json_object *arr = json_object_new_array();

	if (!arr)
		return -ENOMEM;
	for (uint32_t k = 0; k < node->n_children; k++) {
		uint32_t c = t->order[node->first_child + k];
		const TreeNode *child = &t->nodes[c];
		const StoreFrame *f = store_frame(t->store, child->frame);
		json_object *o, *children;
		char name[512];
		int r;

		/* Siblings go hottest first: the rest are smaller still. */
		if (!tree_shown(t, c))
			break;
		o = json_object_new_object();
		if (!o)
			return -ENOMEM;
		json_object_array_add(arr, o);
		(*shown)++;
		query_frame_name(t->store, f, t->viewer, name, sizeof(name));
		json_add_string(o, "function", name);
		json_add_string(o, "module", store_string(t->store, f->module));
		json_add_string(o, "file", store_string(t->store, f->decl_file));
		if (f->decl_file && f->decl_line)
			json_add_int(o, "line", f->decl_line);
		else
			json_object_object_add(o, "line", NULL);
		json_add_int(o, "self_samples", (int64_t)child->self);
		json_add_int(o, "total_samples", (int64_t)child->total);
		json_add_double(o, "self_pct", pct(child->self, t->samples), 2);
		json_add_double(o, "total_pct", pct(child->total, t->samples), 2);
		json_object_object_add(o, "kernel", json_object_new_boolean(f->flags & FRAME_KERNEL));
		json_object_object_add(o, "inlined",
				       json_object_new_boolean(f->flags & FRAME_INLINED));
		r = tree_children_json(t, c, shown, &children);
		if (r < 0)
			return r;
		json_object_object_add(o, "children", children);
	}
	*ret = TAKE_PTR(arr);
	return 0;
}

/*
 * Top-down: the outermost frame of each stack is a root; a node's children are the functions
 * it called, its total the samples with that call path, its self those that ended in it.
 * Recursion nests. Nodes under min_pct of the samples are left out with their subtrees.
 */
static int answer_tree(const QueryContext *ctx, const Request *req, json_object **ret)
{
	const Store *store = ctx->store;
	size_t n_stacks = store_stack_id_limit(store), shown = 0;
	_cleanup_free_ uint64_t *counts = NULL;
	_cleanup_free_ uint8_t *sel = NULL;
	_cleanup_json_ json_object *answer = NULL;
	json_object *rows, *error = NULL;
	Tree t = { .store = store, .min_pct = req->min_pct, .viewer = &ctx->viewer };
	ProcId proc;
	Range range;
	int r;

	range_compute(ctx, req, &range);
	r = select_in_range(ctx, req, &range, &sel, &proc, &error);
	if (r < 0 || error) {
		*ret = error;
		return r;
	}
	counts = calloc(n_stacks, sizeof(uint64_t));
	if (!counts)
		return -ENOMEM;
	t.samples = count_stacks(ctx, req, &range, sel, counts);
	if (t.samples == 0)
		return answer_not_found(req, ret);

	r = hash_index_new(&t.index);
	if (r >= 0)
		r = tree_build(&t, req, counts, n_stacks);
	if (r >= 0)
		r = tree_children_json(&t, 0, &shown, &rows);
	if (r < 0)
		goto out;
	answer = json_object_new_object();
	if (!answer) {
		json_object_put(rows);
		r = -ENOMEM;
		goto out;
	}
	add_proc_fields(ctx, req, proc, t.samples, answer);
	json_add_double(answer, "min_pct", req->min_pct, 2);
	json_add_int(answer, "nodes", (int64_t)(t.n - 1));
	json_add_int(answer, "nodes_shown", (int64_t)shown);
	json_add_int(answer, "truncated_samples", (int64_t)t.truncated);
	json_object_object_add(answer, "rows", rows);
	*ret = TAKE_PTR(answer);
	r = 0;
out:
	free(t.nodes);
	free(t.order);
	hash_index_free(t.index);
	return r;
}

/* ---- ps ---- */

typedef struct PsRow {
	uint64_t key; /* proc, or proc << 32 | tid in threads mode */
	ProcId proc;
	uint32_t tid;		     /* threads mode */
	StrId thread;		     /* threads mode: the latest thread name */
	uint64_t user, kernel;	     /* samples */
	uint64_t user_ns, kernel_ns; /* samples x period */
} PsRow;

static bool ps_row_eq(uint32_t idx, const void *key, void *userdata)
{
	return ((const PsRow *)userdata)[idx].key == *(const uint64_t *)key;
}

static int cmp_ps(const void *a, const void *b)
{
	const PsRow *x = a, *y = b;
	uint64_t cx = x->user_ns + x->kernel_ns, cy = y->user_ns + y->kernel_ns;

	if (cx != cy)
		return cx > cy ? -1 : 1;
	if (x->proc != y->proc)
		return x->proc < y->proc ? -1 : 1;
	return x->tid < y->tid ? -1 : x->tid > y->tid;
}

static void add_pcts(json_object *o, const PsRow *row, uint64_t elapsed_ns)
{
	double el = (double)elapsed_ns;

	json_add_double(o, "user_pct", el > 0 ? 100.0 * (double)row->user_ns / el : 0, 2);
	json_add_double(o, "sys_pct", el > 0 ? 100.0 * (double)row->kernel_ns / el : 0, 2);
	json_add_double(o, "cpu_pct",
			el > 0 ? 100.0 * (double)(row->user_ns + row->kernel_ns) / el : 0, 2);
	json_add_int(o, "samples", (int64_t)(row->user + row->kernel));
	json_add_int(o, "user_samples", (int64_t)row->user);
	json_add_int(o, "sys_samples", (int64_t)row->kernel);
}

static void add_times(json_object *o, const StoreProc *p)
{
	json_add_double(o, "start_time", (double)p->start_ns / NSEC_PER_SEC, 3);
	if (p->flags & PROC_EXITED)
		json_add_double(o, "exit_time", (double)p->exit_ns / NSEC_PER_SEC, 3);
	else
		json_object_object_add(o, "exit_time", NULL);
	json_object_object_add(o, "exited", json_object_new_boolean(p->flags & PROC_EXITED));
}

/* Rows per process, or per thread of the selected process(es) in threads mode. */
static int ps_rows(const QueryContext *ctx, const Request *req, const Range *range,
		   const uint8_t *sel, PsRow **ret, size_t *ret_n)
{
	const Store *store = ctx->store;
	_cleanup_free_ PsRow *rows = NULL;
	HashIndex *index = NULL;
	size_t n = 0, allocated = 0;
	int r = 0;

	r = hash_index_new(&index);
	if (r < 0)
		return r;
	for (size_t i = range->first; i < range->end && r >= 0; i++) {
		const Window *w = store_window(store, i);

		for (size_t j = 0; j < w->n_entries; j++) {
			const WindowEntry *e = &w->entries[j];
			uint64_t key = req->threads ? (uint64_t)e->proc << 32 | e->tid : e->proc;
			uint64_t hash = key * 0x9E3779B97F4A7C15ULL;
			PsRow *row;
			uint32_t idx;

			if (!sel[e->proc])
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
			row->user += e->user;
			row->kernel += e->kernel;
			row->user_ns += e->user * w->period_ns;
			row->kernel_ns += e->kernel * w->period_ns;
		}
	}
	hash_index_free(index);
	if (r < 0)
		return r;
	if (n > 1)
		qsort(rows, n, sizeof(PsRow), cmp_ps);
	*ret = TAKE_PTR(rows);
	*ret_n = n;
	return 0;
}

static int answer_ps(const QueryContext *ctx, const Request *req, json_object **ret)
{
	const Store *store = ctx->store;
	_cleanup_free_ PsRow *rows = NULL;
	_cleanup_free_ uint8_t *sel = NULL;
	_cleanup_json_ json_object *answer = NULL;
	json_object *arr, *error = NULL;
	ProcId proc;
	Range range;
	size_t n;
	int r;

	range_compute(ctx, req, &range);
	r = select_in_range(ctx, req, &range, &sel, &proc, &error);
	if (r < 0 || error) {
		*ret = error;
		return r;
	}
	r = ps_rows(ctx, req, &range, sel, &rows, &n);
	if (r < 0)
		return r;

	answer = json_object_new_object();
	arr = json_object_new_array();
	if (!answer || !arr) {
		json_object_put(arr);
		return -ENOMEM;
	}
	json_object_object_add(answer, "rows", arr);
	json_add_double(answer, "elapsed_s", (double)range.elapsed_ns / NSEC_PER_SEC, 3);
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
		add_pcts(o, &rows[i], range.elapsed_ns);
		if (!req->threads) {
			json_add_int(o, "ppid", p->ppid);
			json_add_int(o, "uid", p->uid);
			json_add_string(o, "cmdline", store_string(store, p->cmdline));
			add_times(o, p);
		}
		json_object_array_add(arr, o);
	}
	*ret = TAKE_PTR(answer);
	return 0;
}

/* ---- time ---- */

static void add_cpu(json_object *o, uint64_t user_ns, uint64_t sys_ns, uint64_t real_ns, bool with_pct)
{
	json_add_double(o, "user_s", (double)user_ns / NSEC_PER_SEC, 3);
	json_add_double(o, "sys_s", (double)sys_ns / NSEC_PER_SEC, 3);
	if (with_pct)
		json_add_double(o, "cpu_pct",
				real_ns ? 100.0 * (double)(user_ns + sys_ns) / (double)real_ns : 0,
				1);
}

static int answer_time(const QueryContext *ctx, const Request *req, json_object **ret)
{
	const Store *store = ctx->store;
	_cleanup_json_ json_object *answer = NULL;
	_cleanup_free_ uint8_t *sel = NULL;
	json_object *o, *error = NULL;
	uint64_t user_ns, sys_ns, real_ns, s_user = 0, s_sys = 0, samples = 0;
	uint64_t d_user = 0, d_sys = 0;
	size_t descendants = 0;
	const StoreProc *p;
	ProcId proc;
	int r;

	/* Any known incarnation, sampled or not. */
	r = select_procs(ctx, req, NULL, &sel, &proc, &error);
	if (r < 0 || error) {
		*ret = error;
		return r;
	}
	p = store_proc(store, proc);
	for (size_t i = 0; i < store_window_count(store); i++) {
		const Window *w = store_window(store, i);

		for (size_t j = 0; j < w->n_entries; j++) {
			const WindowEntry *e = &w->entries[j];

			if (!sel[e->proc])
				continue;
			s_user += e->user * w->period_ns;
			s_sys += e->kernel * w->period_ns;
			samples += (uint64_t)e->user + e->kernel;
		}
	}
	for (ProcId id = 1; id < store_proc_id_limit(store); id++) {
		const StoreProc *d = store_proc(store, id);

		if (id == proc || !sel[id] || !d)
			continue;
		descendants++;
		if (d->flags & PROC_ACCOUNTING) {
			d_user += d->user_ns;
			d_sys += d->sys_ns;
		}
	}

	real_ns = (uint64_t)MAX((p->flags & PROC_EXITED ? p->exit_ns : ctx->now_ns) - p->start_ns,
				(int64_t)0);
	/* The kernel's accounting when there is one (exit record, /proc); else the samples. */
	if (p->flags & PROC_ACCOUNTING) {
		user_ns = p->user_ns;
		sys_ns = p->sys_ns;
	} else {
		/* Only this process's share of the samples. */
		uint64_t own_user = 0, own_sys = 0;

		for (size_t i = 0; i < store_window_count(store); i++) {
			const Window *w = store_window(store, i);

			for (size_t j = 0; j < w->n_entries; j++)
				if (w->entries[j].proc == proc) {
					own_user += w->entries[j].user * w->period_ns;
					own_sys += w->entries[j].kernel * w->period_ns;
				}
		}
		user_ns = own_user;
		sys_ns = own_sys;
	}

	answer = json_object_new_object();
	if (!answer)
		return -ENOMEM;
	json_add_int(answer, "pid", p->pid);
	json_add_string(answer, "comm", store_string(store, p->comm));
	json_add_string(answer, "cmdline", store_string(store, p->cmdline));
	json_add_int(answer, "ppid", p->ppid);
	add_times(answer, p);
	if (p->flags & PROC_EXITED)
		json_add_int(answer, "exit_code", p->exit_code);
	else
		json_object_object_add(answer, "exit_code", NULL);
	json_add_double(answer, "real_s", (double)real_ns / NSEC_PER_SEC, 3);
	add_cpu(answer, user_ns, sys_ns, real_ns, true);
	json_add_string(answer, "accounting", p->flags & PROC_ACCOUNTING ? "kernel" : "sampled");

	o = json_object_new_object();
	if (!o)
		return -ENOMEM;
	add_cpu(o, p->child_user_ns, p->child_sys_ns, real_ns, false);
	json_object_object_add(answer, "children", o);
	/* What time(1) prints: wait4() counts the waited-for children in. */
	o = json_object_new_object();
	if (!o)
		return -ENOMEM;
	add_cpu(o, user_ns + p->child_user_ns, sys_ns + p->child_sys_ns, real_ns, true);
	json_object_object_add(answer, "with_children", o);

	o = json_object_new_object();
	if (!o)
		return -ENOMEM;
	add_cpu(o, s_user, s_sys, real_ns, false);
	json_add_int(o, "samples", (int64_t)samples);
	json_object_object_add(answer, "sampled", o);
	if (req->children) {
		o = json_object_new_object();
		if (!o)
			return -ENOMEM;
		json_add_int(o, "count", (int64_t)descendants);
		add_cpu(o, d_user, d_sys, real_ns, false);
		json_object_object_add(answer, "descendants", o);
	}
	*ret = TAKE_PTR(answer);
	return 0;
}

/* ---- stacks (the exports: folded, flame, pprof) ---- */

/* The answer stays inside the server's answer cap (16 MiB): the coldest stacks past this many
 * frame references, or past this estimate of the JSON's size, are counted, not listed. */
#define STACKS_MAX_REFS (1u << 20)
#define STACKS_MAX_BYTES (12u << 20)
#define STACKS_MAX 100000

/* What the viewer sees of a kernel frame is "[kernel]" only: one shared frame. */
static bool frame_hidden_kernel(const Viewer *viewer, const StoreFrame *f)
{
	return (f->flags & FRAME_KERNEL) && !viewer->privileged &&
	       (!viewer->kernel_names || !f->function);
}

/* The period of the selection's samples, weighted by their number in each window (windows of
 * a daemon restarted with another --frequency differ), so that samples x period is their CPU
 * time; total > 0. */
static uint64_t mean_period_ns(const QueryContext *ctx, const Request *req, const Range *range,
			       const uint8_t *sel, uint64_t total)
{
	long double ns = 0;

	for (size_t i = range->first; i < range->end; i++) {
		const Window *w = store_window(ctx->store, i);

		for (size_t j = 0; j < w->n_entries; j++) {
			const WindowEntry *e = &w->entries[j];

			if (sel[e->proc] && (!req->tid || e->tid == req->tid))
				ns += ((long double)e->user + e->kernel) * w->period_ns;
		}
	}
	return (uint64_t)(ns / total + 0.5L);
}

/* Adds to *bytes about what the frame takes in the answer (its strings JSON-escaped at most
 * 6 times their length, then the keys). */
static json_object *stack_frame_json(const QueryContext *ctx, const StoreFrame *f, size_t *bytes)
{
	const Store *store = ctx->store;
	json_object *o = json_object_new_object();
	bool hidden = frame_hidden_kernel(&ctx->viewer, f);
	char name[1024];

	if (!o)
		return NULL;
	query_frame_name(store, f, &ctx->viewer, name, sizeof(name));
	*bytes += 6 * (strlen(name) + strlen(strempty(store_string(store, f->module))) +
		       (hidden ? 0 : strlen(strempty(store_string(store, f->file))))) +
		  100;
	json_add_string(o, "function", name);
	json_add_string(o, "module", store_string(store, f->module));
	json_add_string(o, "file", hidden ? NULL : store_string(store, f->file));
	if (!hidden && f->file && f->line)
		json_add_int(o, "line", f->line);
	else
		json_object_object_add(o, "line", NULL);
	json_object_object_add(o, "kernel", json_object_new_boolean(f->flags & FRAME_KERNEL));
	json_object_object_add(o, "inlined",
			       json_object_new_boolean(!hidden && (f->flags & FRAME_INLINED)));
	return o;
}

/*
 * Every distinct stack of the selection with its samples, hottest first, over a table of the
 * frames they use ("frames": [{function, module, file, line, kernel, inlined}], "stacks":
 * [{"frames": [indexes, leaf first], "samples"}]). Frames are the store's (one per function,
 * line and inline level), named as the viewer may see them; an unprivileged viewer's kernel
 * frames are one "[kernel]" frame, consecutive ones merged.
 */
static int answer_stacks(const QueryContext *ctx, const Request *req, json_object **ret)
{
	const Store *store = ctx->store;
	size_t n_stacks = store_stack_id_limit(store), n_counted = 0, refs = 0, bytes = 0;
	_cleanup_free_ uint64_t *counts = NULL;
	_cleanup_free_ uint8_t *sel = NULL;
	_cleanup_free_ StackCount *order = NULL;
	/* FrameId -> index + 1 in "frames"; 0: not yet; FRAME_ROW_SKIP: left out (inlined). */
	_cleanup_free_ uint32_t *frame_out = NULL;
	/* FrameId -> index + 1 of the frame standing for a stack all inlined (--no-inline). */
	_cleanup_free_ uint32_t *fallback_out = NULL;
	_cleanup_json_ json_object *answer = NULL;
	json_object *frames, *stacks, *error = NULL;
	uint32_t kernel_out = 0, n_out = 0;
	uint64_t total, listed = 0, period;
	ProcId proc;
	Range range;
	int r;

	range_compute(ctx, req, &range);
	r = select_in_range(ctx, req, &range, &sel, &proc, &error);
	if (r < 0 || error) {
		*ret = error;
		return r;
	}
	counts = calloc(n_stacks, sizeof(uint64_t));
	if (!counts)
		return -ENOMEM;
	total = count_stacks(ctx, req, &range, sel, counts);
	if (total == 0)
		return answer_not_found(req, ret);
	for (StackId s = 1; s < n_stacks; s++)
		n_counted += counts[s] > 0;
	order = malloc(n_counted * sizeof(StackCount));
	frame_out = calloc(store_frame_id_limit(store), sizeof(uint32_t));
	answer = json_object_new_object();
	frames = json_object_new_array();
	stacks = json_object_new_array();
	if (!order || !frame_out || !answer || !frames || !stacks) {
		json_object_put(frames);
		json_object_put(stacks);
		return -ENOMEM;
	}
	json_object_object_add(answer, "frames", frames);
	json_object_object_add(answer, "stacks", stacks);
	n_counted = 0;
	for (StackId s = 1; s < n_stacks; s++)
		if (counts[s] > 0)
			order[n_counted++] = (StackCount){ s, counts[s] };
	qsort(order, n_counted, sizeof(StackCount), cmp_stack_count);

	for (size_t k = 0;
	     k < n_counted && k < STACKS_MAX && refs < STACKS_MAX_REFS && bytes < STACKS_MAX_BYTES;
	     k++) {
		json_object *o, *a;
		const FrameId *ids;
		uint32_t last = 0;
		size_t n;

		ids = store_stack(store, order[k].stack, &n);
		o = json_object_new_object();
		a = json_object_new_array_ext((int)n);
		if (!o || !a || json_object_array_add(stacks, o) < 0) {
			json_object_put(o);
			json_object_put(a);
			return -ENOMEM;
		}
		json_object_object_add(o, "frames", a);
		json_add_int(o, "samples", (int64_t)order[k].count);
		for (size_t i = 0; i < n; i++) {
			uint32_t *out = &frame_out[ids[i]];

			if (*out == 0) {
				const StoreFrame *f = store_frame(store, ids[i]);
				json_object *fo;

				if (req->no_inline && (f->flags & FRAME_INLINED)) {
					*out = FRAME_ROW_SKIP;
				} else if (frame_hidden_kernel(&ctx->viewer, f) && kernel_out) {
					*out = kernel_out;
				} else {
					fo = stack_frame_json(ctx, f, &bytes);
					if (!fo || json_object_array_add(frames, fo) < 0) {
						json_object_put(fo);
						return -ENOMEM;
					}
					*out = ++n_out;
					if (frame_hidden_kernel(&ctx->viewer, f))
						kernel_out = *out;
				}
			}
			/* recursion repeats a frame, and stays; only "[kernel]" runs merge */
			if (*out == FRAME_ROW_SKIP || (*out == last && last == kernel_out))
				continue;
			last = *out;
			json_object_array_add(a, json_object_new_int64(*out - 1));
		}
		/* Without inlines, a stack cut short within inlined code has no frame left: its
		 * outermost one stands for it, as a frame of its own (not inlined into anything
		 * the answer shows), listed once however many stacks end so. */
		if (last == 0) {
			uint32_t *out;

			if (!fallback_out) {
				fallback_out = calloc(store_frame_id_limit(store), sizeof(uint32_t));
				if (!fallback_out)
					return -ENOMEM;
			}
			out = &fallback_out[ids[n - 1]];
			if (*out == 0) {
				json_object *fo = stack_frame_json(
					ctx, store_frame(store, ids[n - 1]), &bytes);

				if (!fo || json_object_array_add(frames, fo) < 0) {
					json_object_put(fo);
					return -ENOMEM;
				}
				json_object_object_add(fo, "inlined", json_object_new_boolean(false));
				*out = ++n_out;
			}
			json_object_array_add(a, json_object_new_int64(*out - 1));
		}
		refs += n;
		bytes += 8 * n + 32;
		listed += order[k].count;
	}
	period = mean_period_ns(ctx, req, &range, sel, total);

	add_proc_fields(ctx, req, proc, total, answer);
	json_add_int(answer, "truncated_samples", (int64_t)(total - listed));
	json_add_int(answer, "period_ns", (int64_t)period);
	json_add_int(answer, "start_ns", store_window(store, range.first)->start_ns);
	json_add_int(answer, "end_ns",
		     window_effective_end(store_window(store, range.end - 1), ctx->now_ns));
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
	case COMMAND_TIME:
		return answer_time(ctx, req, ret);
	case COMMAND_LINES:
		return answer_lines(ctx, req, ret);
	case COMMAND_TREE:
		return answer_tree(ctx, req, ret);
	case COMMAND_STACKS:
		return answer_stacks(ctx, req, ret);
	default:
		return -EOPNOTSUPP;
	}
}
