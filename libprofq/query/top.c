/* SPDX-License-Identifier: MIT */
#include <inttypes.h>

#include "base/hashindex.h"
#include "base/json-util.h"
#include "query/query-internal.h"

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

static int func_row(FuncTable *t, const Viewer *viewer, FrameId id, const StoreFrame *f,
		    FuncRow **ret)
{
	uint64_t key = query_func_key(viewer, id, f), hash = key * 0x9E3779B97F4A7C15ULL;
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

/*
 * Bottom-up, per function: its self samples (it is the leaf) and its total (it is on the stack,
 * once per stack however deep the recursion), the first req->limit rows by req->sort.
 */
int query_answer_top(const QueryContext *ctx, const Request *req, const Selection *sel,
		     json_object **ret)
{
	const Store *store = ctx->store;
	/* FrameId -> index + 1 of its row; 0: not looked up yet. */
	_cleanup_free_ uint32_t *frame_rows = NULL, *best = NULL;
	RowOrder order = { .store = store, .viewer = &ctx->viewer, .sort = req->sort };
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
				row->self += sel->counts[s];
			leaf = false;
			if (row->stamp != s) {
				row->total += sel->counts[s];
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
	query_add_selection(ctx, req, sel, answer);
	json_add_string(answer, "sort", sort_key_to_string(req->sort));
	query_add_frame_options(req, answer);
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
		if (query_kernel_collapsed(&ctx->viewer, f))
			json_object_object_add(o, "symbol", NULL);
		else
			json_add_string(o, "symbol", store_string(store, f->symbol ?: f->function));
		query_add_function_samples(o, store, f, row->self, row->total, sel->total);
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
