/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <xxhash.h>

#include "base/hashindex.h"
#include "base/json-util.h"
#include "query/query-internal.h"

/* A row of a function, or of a module or process (by): key is its StrId or ProcId. */
typedef struct FuncRow {
	FrameId frame;	/* a representative frame: name, module, file (not of a process row) */
	StackId stamp;	/* last stack counted into total, so recursion counts once */
	uint32_t index; /* where it was made in FuncTable.rows (rows_best() may sort them) */
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

static int func_row(FuncTable *t, uint64_t key, FrameId id, FuncRow **ret)
{
	uint64_t hash = key * 0x9E3779B97F4A7C15ULL;
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
	t->rows[t->n] = (FuncRow){ .frame = id, .index = (uint32_t)t->n, .key = key };
	*ret = &t->rows[t->n++];
	return 0;
}

/* How rows are ordered; names are made only for rows a comparison or the answer needs. */
typedef struct RowOrder {
	const Store *store;
	const Viewer *viewer;
	SortKey sort;
	GroupBy by;
	int error; /* -ENOMEM once a name could not be made */
} RowOrder;

static const char *row_name(RowOrder *o, FuncRow *row)
{
	char name[512];

	if (!row->name) {
		if (o->by == GROUP_PROCESS)
			snprintf(name, sizeof(name), "%s",
				 strempty(store_string(
					 o->store, store_proc(o->store, (ProcId)row->key)->comm)));
		else if (o->by == GROUP_MODULE)
			snprintf(name, sizeof(name), "%s",
				 strempty(store_string(o->store, (StrId)row->key)));
		else
			query_frame_name(o->store, store_frame(o->store, row->frame), o->viewer,
					 name, sizeof(name));
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

/* The weight of an entry in the selection (as query_select() counted it), 0 if none. */
static uint64_t entry_selected(const Request *req, const Selection *sel, const Window *w,
			       const WindowEntry *e)
{
	if (!sel->procs[e->proc] || (req->tid && e->tid != req->tid))
		return 0;
	return query_entry_weight(req->event, w, e);
}

/* What a frame adds to: its function's row, or its module's. */
static uint64_t frame_key(const Request *req, const Viewer *viewer, FrameId id, const StoreFrame *f)
{
	return req->by == GROUP_MODULE ? f->module : query_func_key(viewer, id, f);
}

/*
 * Bottom-up, per function (or module): its self samples (it is the leaf) and its total (it is
 * on the stack, once per stack however deep the recursion). frame_rows maps each frame of the
 * selection's stacks to index + 1 of its row, or FRAME_ROW_SKIP.
 */
static int count_frames(const QueryContext *ctx, const Request *req, const Selection *sel,
			FuncTable *t, uint32_t *frame_rows)
{
	const Store *store = ctx->store;
	int r;

	for (StackId s = 1; s < sel->n_stacks; s++) {
		const FrameId *frames;
		bool leaf;
		size_t n;

		if (sel->counts[s] == 0)
			continue;
		frames = store_stack(store, s, &n);
		leaf = true;
		for (size_t i = 0; i < n; i++) {
			uint32_t *fr = &frame_rows[frames[i]];
			FuncRow *row;

			if (*fr == 0) {
				const StoreFrame *f = store_frame(store, frames[i]);

				/* Without inlines, an inlined call is its caller's. */
				if (!query_frame_shown(req, f)) {
					*fr = FRAME_ROW_SKIP;
				} else {
					r = func_row(t, frame_key(req, &ctx->viewer, frames[i], f),
						     frames[i], &row);
					if (r < 0)
						return r;
					/* A row shows where its function is declared when a
					 * frame of it knows (frames named while the daemon
					 * still indexed their DWARF do not). */
					if (f->decl_file &&
					    !store_frame(store, row->frame)->decl_file)
						row->frame = frames[i];
					*fr = (uint32_t)(row - t->rows) + 1;
				}
			}
			if (*fr == FRAME_ROW_SKIP)
				continue;
			row = &t->rows[*fr - 1];
			if (leaf)
				row->self += sel->counts[s];
			leaf = false;
			if (row->stamp != s) {
				row->total += sel->counts[s];
				row->stamp = s;
			}
		}
	}
	return 0;
}

/* Per process: all its samples are its own (self and total alike). */
static int count_processes(const QueryContext *ctx, const Request *req, const Selection *sel,
			   FuncTable *t)
{
	for (size_t i = sel->range.first; i < sel->range.end; i++) {
		const Window *w = store_window(ctx->store, i);

		for (size_t j = 0; j < w->n_entries; j++) {
			uint64_t n = entry_selected(req, sel, w, &w->entries[j]);
			FuncRow *row;
			int r;

			if (n == 0)
				continue;
			r = func_row(t, w->entries[j].proc, 0, &row);
			if (r < 0)
				return r;
			row->self += n;
			row->total += n;
		}
	}
	return 0;
}

/* The samples of one process name in one shown row. */
typedef struct CommTally {
	uint32_t pos; /* the row's place in the answer */
	StrId comm;
	uint64_t self, total;
	uint64_t stamp; /* the last (name, stack) counted into total, + 1 */
} CommTally;

typedef struct CommTable {
	CommTally *tallies;
	size_t n, allocated;
	HashIndex *index;
} CommTable;

static bool comm_eq(uint32_t idx, const void *key, void *userdata)
{
	const CommTally *k = key, *x = &((CommTable *)userdata)->tallies[idx];

	return x->pos == k->pos && x->comm == k->comm;
}

static int comm_tally(CommTable *c, uint32_t pos, StrId comm, CommTally **ret)
{
	CommTally key = { .pos = pos, .comm = comm };
	uint64_t k = ((uint64_t)pos << 32) | comm;
	/* Mixed through every bit: the index takes a hash's low bits, and a multiplication
	 * leaves those to comm's alone (a row's names would all collide). */
	uint64_t hash = XXH3_64bits(&k, sizeof(k));
	uint32_t idx;
	int r;

	if (hash_index_find(c->index, hash, comm_eq, &key, c, &idx) == 0) {
		*ret = &c->tallies[idx];
		return 0;
	}
	r = GREEDY_REALLOC(c->tallies, c->allocated, c->n + 1);
	if (r < 0)
		return r;
	r = hash_index_insert(c->index, hash, (uint32_t)c->n);
	if (r < 0)
		return r;
	c->tallies[c->n] = key;
	*ret = &c->tallies[c->n++];
	return 0;
}

/* The samples of one stack in the processes of one name. */
typedef struct CommStack {
	uint64_t key; /* comm << 32 | stack */
	uint64_t n;
} CommStack;

typedef struct CommStacks {
	CommStack *items;
	size_t n, allocated;
	HashIndex *index;
} CommStacks;

static bool comm_stack_eq(uint32_t idx, const void *key, void *userdata)
{
	return ((CommStacks *)userdata)->items[idx].key == *(const uint64_t *)key;
}

/* The selected entries summed per (process name, stack): the windows repeat the same stacks
 * of the same processes, each is then walked once. */
static int count_comm_stacks(const QueryContext *ctx, const Request *req, const Selection *sel,
			     CommStacks *cs)
{
	const Store *store = ctx->store;

	for (size_t i = sel->range.first; i < sel->range.end; i++) {
		const Window *w = store_window(store, i);

		for (size_t j = 0; j < w->n_entries; j++) {
			const WindowEntry *e = &w->entries[j];
			uint64_t n = entry_selected(req, sel, w, e), key, hash;
			uint32_t idx;
			int r;

			if (n == 0)
				continue;
			key = (uint64_t)store_proc(store, e->proc)->comm << 32 | e->stack;
			hash = XXH3_64bits(&key, sizeof(key));
			if (hash_index_find(cs->index, hash, comm_stack_eq, &key, cs, &idx) == 0) {
				cs->items[idx].n += n;
				continue;
			}
			r = GREEDY_REALLOC(cs->items, cs->allocated, cs->n + 1);
			if (r < 0)
				return r;
			r = hash_index_insert(cs->index, hash, (uint32_t)cs->n);
			if (r < 0)
				return r;
			cs->items[cs->n++] = (CommStack){ .key = key, .n = n };
		}
	}
	return 0;
}

/* The samples of the shown rows per process name: pos_of_row maps a row's index
 * (FuncRow.index) to its place in the answer + 1, 0 for rows not shown. */
static int count_comms(const QueryContext *ctx, const Request *req, const Selection *sel,
		       const uint32_t *frame_rows, const uint32_t *pos_of_row, CommTable *c)
{
	const Store *store = ctx->store;
	CommStacks cs = { 0 };
	int r;

	r = hash_index_new(&cs.index);
	if (r < 0)
		return r;
	r = count_comm_stacks(ctx, req, sel, &cs);
	for (size_t i = 0; r >= 0 && i < cs.n; i++) {
		StrId comm = (StrId)(cs.items[i].key >> 32);
		uint64_t n = cs.items[i].n;
		size_t depth;
		const FrameId *frames = store_stack(store, (StackId)cs.items[i].key, &depth);
		bool leaf = true;

		for (size_t k = 0; r >= 0 && k < depth; k++) {
			uint32_t fr = frame_rows[frames[k]];
			CommTally *tally;

			/* Every frame of a counted stack has its row (or none). */
			if (fr == 0 || fr == FRAME_ROW_SKIP)
				continue;
			if (pos_of_row[fr - 1] == 0) {
				leaf = false;
				continue;
			}
			r = comm_tally(c, pos_of_row[fr - 1] - 1, comm, &tally);
			if (r < 0)
				break;
			if (leaf)
				tally->self += n;
			leaf = false;
			/* Once per stack, however deep the recursion. */
			if (tally->stamp != i + 1) {
				tally->total += n;
				tally->stamp = i + 1;
			}
		}
	}
	free(cs.items);
	hash_index_free(cs.index);
	return r < 0 ? r : 0;
}

/*
 * "comm" and "comms" of the shown function rows (rows[i] in the answer is t->rows[best[i]]): the
 * process name with the most of the row's samples (self, or total when sorted by total or the
 * row has no self samples) and how many names have some.
 */
static int add_comms(const QueryContext *ctx, const Request *req, const Selection *sel,
		     const FuncTable *t, const uint32_t *best, size_t n_best,
		     const uint32_t *frame_rows, json_object *rows)
{
	_cleanup_free_ uint32_t *pos_of_row = calloc(MAX(t->n, (size_t)1), sizeof(uint32_t));
	_cleanup_free_ CommTally **top = calloc(MAX(n_best, (size_t)1), sizeof(CommTally *));
	_cleanup_free_ uint32_t *names = calloc(MAX(n_best, (size_t)1), sizeof(uint32_t));
	CommTable c = { 0 };
	int r;

	if (!pos_of_row || !top || !names)
		return -ENOMEM;
	for (size_t i = 0; i < n_best; i++)
		pos_of_row[t->rows[best[i]].index] = (uint32_t)i + 1;
	r = hash_index_new(&c.index);
	if (r < 0)
		return r;
	r = count_comms(ctx, req, sel, frame_rows, pos_of_row, &c);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < c.n; i++) {
		CommTally *x = &c.tallies[i];
		const FuncRow *row = &t->rows[best[x->pos]];
		bool by_self = req->sort == SORT_SELF && row->self > 0;
		uint64_t mx = by_self ? x->self : x->total, mt;

		if (mx == 0)
			continue;
		names[x->pos]++;
		mt = !top[x->pos] ? 0 : by_self ? top[x->pos]->self : top[x->pos]->total;
		if (mx > mt ||
		    (mx == mt && strcmp(strempty(store_string(ctx->store, x->comm)),
					strempty(store_string(ctx->store, top[x->pos]->comm))) < 0))
			top[x->pos] = x;
	}
	for (size_t i = 0; i < n_best; i++) {
		json_object *o = json_object_array_get_idx(rows, i);

		if (top[i])
			json_add_string(o, "comm", store_string(ctx->store, top[i]->comm));
		else
			json_object_object_add(o, "comm", NULL);
		json_add_int(o, "comms", names[i]);
	}
	r = 0;
out:
	free(c.tallies);
	hash_index_free(c.index);
	return r;
}

static int add_row(const QueryContext *ctx, const Request *req, const Selection *sel,
		   const FuncRow *row, json_object *rows)
{
	const Store *store = ctx->store;
	json_object *o = json_object_new_object();

	if (!o || json_object_array_add(rows, o) < 0) {
		json_object_put(o);
		return -ENOMEM;
	}
	if (req->by == GROUP_PROCESS) {
		const StoreProc *p = store_proc(store, (ProcId)row->key);

		json_add_int(o, "pid", p->pid);
		json_add_string(o, "comm", row->name);
		json_add_int(o, "samples", (int64_t)row->self);
		json_add_double(o, "pct", query_pct(row->self, sel->total), 2);
		query_add_times(o, p);
	} else if (req->by == GROUP_MODULE) {
		json_add_string(o, "module", row->name);
		json_add_int(o, "self_samples", (int64_t)row->self);
		json_add_int(o, "total_samples", (int64_t)row->total);
		json_add_double(o, "self_pct", query_pct(row->self, sel->total), 2);
		json_add_double(o, "total_pct", query_pct(row->total, sel->total), 2);
		json_object_object_add(
			o, "kernel",
			json_object_new_boolean(store_frame(store, row->frame)->flags &
						FRAME_KERNEL));
	} else {
		const StoreFrame *f = store_frame(store, row->frame);

		json_add_string(o, "function", row->name);
		if (query_kernel_collapsed(&ctx->viewer, f))
			json_object_object_add(o, "symbol", NULL);
		else
			json_add_string(o, "symbol", store_string(store, f->symbol ?: f->function));
		query_add_function_samples(o, store, f, row->self, row->total, sel->total);
	}
	return 0;
}

/*
 * The first req->limit rows by req->sort: of functions, with the process name most of each
 * one's samples come from when the selection may hold several processes; of modules; of
 * processes (by their samples).
 */
int query_answer_top(const QueryContext *ctx, const Request *req, const Selection *sel,
		     json_object **ret)
{
	const Store *store = ctx->store;
	/* FrameId -> index + 1 of its row; 0: not looked up yet. */
	_cleanup_free_ uint32_t *frame_rows = NULL, *best = NULL;
	RowOrder order = {
		.store = store, .viewer = &ctx->viewer, .sort = req->sort, .by = req->by
	};
	size_t n_best = 0;
	_cleanup_json_ json_object *answer = NULL;
	json_object *rows;
	FuncTable t = { 0 };
	int r;

	/* Stacks share most of their frames: each frame's row is looked up once. */
	frame_rows = calloc(store_frame_id_limit(store), sizeof(uint32_t));
	if (!frame_rows)
		return -ENOMEM;
	r = hash_index_new(&t.index);
	if (r < 0)
		goto out;
	if (req->by == GROUP_PROCESS)
		r = count_processes(ctx, req, sel, &t);
	else
		r = count_frames(ctx, req, sel, &t, frame_rows);
	if (r < 0)
		goto out;
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
	query_add_selection(ctx, req, sel, answer);
	json_add_string(answer, "sort", sort_key_to_string(req->sort));
	json_add_string(answer, "by",
			req->by == GROUP_NONE ? "function" : group_by_to_string(req->by));
	query_add_frame_options(req, answer);
	json_object_object_add(answer, "rows", rows);
	for (size_t i = 0; i < n_best; i++) {
		r = add_row(ctx, req, sel, &t.rows[best[i]], rows);
		if (r < 0)
			goto out;
	}
	/* Several processes: which one each function's samples are of. */
	if (req->by == GROUP_NONE && (!req->pid || req->children)) {
		r = add_comms(ctx, req, sel, &t, best, n_best, frame_rows, rows);
		if (r < 0)
			goto out;
	}
	json_add_int(answer, "total_rows", (int64_t)t.n);
	*ret = TAKE_PTR(answer);
	r = 0;
out:
	for (size_t i = 0; i < t.n; i++)
		free(t.rows[i].name);
	free(t.rows);
	hash_index_free(t.index);
	return r;
}
