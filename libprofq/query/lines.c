/* SPDX-License-Identifier: MIT */
#include <inttypes.h>

#include "base/hashindex.h"
#include "base/json-util.h"
#include "query/query-internal.h"

/* A source line of a function; frames without a line are one row per function. */
typedef struct LineRow {
	FrameId frame; /* a representative frame: function, module, file, line */
	StrId file;
	uint32_t line;
	uint64_t func;	 /* query_func_key() */
	uint64_t self;	 /* samples executing on the line */
	uint64_t callee; /* with a function: samples in what the line called */
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

static int line_row(LineTable *t, const Viewer *viewer, FrameId id, const StoreFrame *f,
		    LineRow **ret)
{
	/* A kernel frame the viewer may not tell apart has no line either. */
	bool hidden = query_kernel_collapsed(viewer, f);
	LineKey key = { .file = hidden ? 0 : f->file,
			.line = !hidden && f->file ? f->line : 0,
			.func = query_func_key(viewer, id, f) };
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
	t->rows[t->n] =
		(LineRow){ .frame = id, .file = key.file, .line = key.line, .func = key.func };
	*ret = &t->rows[t->n++];
	return 0;
}

/* By total (self without a function: callees count only with one), then by name and place. */
static int cmp_line(const void *a, const void *b)
{
	const LineRow *x = a, *y = b;
	uint64_t tx = x->self + x->callee, ty = y->self + y->callee;
	int c;

	if (tx != ty)
		return tx > ty ? -1 : 1;
	c = strcmp(x->name, y->name);
	if (c != 0)
		return c;
	if (x->file != y->file)
		return x->file < y->file ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

/*
 * Without a function, each sample counts on the line its leaf frame was executing. With one,
 * each sample with the function on its stack counts once, on the line of the function's
 * innermost frame: as its self samples when the line was executing, as callee samples when it
 * was calling (line_profiler's view: a line's total includes what it calls). Inlined code has
 * frames (and lines) of its own.
 */
int query_answer_lines(const QueryContext *ctx, const Request *req, const Selection *sel,
		       json_object **ret)
{
	const Store *store = ctx->store;
	const char *function = req->function[0] ? req->function : NULL;
	_cleanup_free_ uint8_t *match = NULL;
	_cleanup_json_ json_object *answer = NULL;
	json_object *rows;
	uint64_t in_function = 0;
	LineTable t = { 0 };
	int r;

	/* Per frame: 0 not yet known, 1 the function, 2 another. */
	match = function ? calloc(store_frame_id_limit(store), 1) : NULL;
	if (function && !match)
		return -ENOMEM;

	r = hash_index_new(&t.index);
	if (r < 0)
		goto out;
	for (StackId s = 1; s < sel->n_stacks; s++) {
		const StoreFrame *f = NULL;
		const FrameId *frames;
		size_t n, i, depth = 0;
		LineRow *row;

		if (sel->counts[s] == 0)
			continue;
		frames = store_stack(store, s, &n);
		for (i = 0; i < n; i++) {
			f = store_frame(store, frames[i]);
			/* Without inlines, the line is the call site in the function it is in. */
			if (!query_frame_shown(req, f))
				continue;
			if (!function)
				break;
			if (match[frames[i]] == 0)
				match[frames[i]] = !query_kernel_collapsed(&ctx->viewer, f) &&
								   query_frame_is_function(store, f,
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
		/* A sample in a callee is the line's, but not its own. */
		if (depth > 0)
			row->callee += sel->counts[s];
		else
			row->self += sel->counts[s];
		in_function += sel->counts[s];
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
	query_add_selection(ctx, req, sel, answer);
	query_add_frame_options(req, answer);
	json_add_string(answer, "function", function);
	if (function) {
		json_add_int(answer, "function_samples", (int64_t)in_function);
		json_add_double(answer, "function_pct", query_pct(in_function, sel->total), 2);
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
		json_add_double(o, "self_pct", query_pct(row->self, sel->total), 2);
		if (function) {
			uint64_t total = row->self + row->callee;

			json_add_int(o, "callee_samples", (int64_t)row->callee);
			json_add_int(o, "total_samples", (int64_t)total);
			json_add_double(o, "total_pct", query_pct(total, sel->total), 2);
			json_add_double(o, "function_pct", query_pct(total, in_function), 2);
		}
		json_object_object_add(o, "kernel",
				       json_object_new_boolean(f->flags & FRAME_KERNEL));
		json_object_object_add(o, "inlined",
				       json_object_new_boolean(f->flags & FRAME_INLINED));
		json_object_object_add(o, "python",
				       json_object_new_boolean(f->flags & FRAME_PYTHON));
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
