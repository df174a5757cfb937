/* SPDX-License-Identifier: MIT */
#include <inttypes.h>

#include <xxhash.h>

#include "base/hashindex.h"
#include "base/json-util.h"
#include "query/query-internal.h"

/* The answer stays inside the server's answer cap (16 MiB): the coldest stacks past this many
 * frame references, or past this estimate of the JSON's size, are counted, not listed. */
#define STACKS_MAX_REFS (1u << 20)
#define STACKS_MAX_BYTES (12u << 20)
#define STACKS_MAX 100000
/* Stacks are merged (shown_add()) before they are listed: the merging stops, hottest stacks
 * first, past this many distinct stacks or frame references (about 16 MiB), and what is left
 * counts as truncated, as the stacks past the caps above do. */
#define SHOWN_MAX (4 * STACKS_MAX)
#define SHOWN_MAX_KEYS (4 * STACKS_MAX_REFS)

/* What the viewer sees of a kernel frame is "[kernel]" only: one shared frame. */
static bool frame_hidden_kernel(const Viewer *viewer, const StoreFrame *f)
{
	return (f->flags & FRAME_KERNEL) && !viewer->privileged &&
	       (!viewer->kernel_names || !f->function);
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
	json_object_object_add(o, "python", json_object_new_boolean(f->flags & FRAME_PYTHON));
	/* A Python function's first line, for pprof's start_line. */
	if ((f->flags & FRAME_PYTHON) && f->decl_file && f->decl_line)
		json_add_int(o, "start_line", f->decl_line);
	return o;
}

/* A stack as the answer shows it: the keys of its frames, leaf first (Shown.keys). Stacks of
 * the store that differ only in frames the answer hides are one. */
typedef struct ShownStack {
	size_t start, n;
	uint64_t count;
	bool fallback; /* every frame hidden: the outermost one stands for the stack */
} ShownStack;

/* A frame's key: its FrameId, or this for the one "[kernel]" frame of the unprivileged. */
#define SHOWN_KERNEL (UINT32_MAX - 1)

typedef struct Shown {
	ShownStack *stacks;
	size_t n, allocated;
	FrameId *keys;
	size_t n_keys, allocated_keys;
	HashIndex *index;
	FrameId kernel_frame; /* the first frame shown as "[kernel]" */
} Shown;

static void shown_done(Shown *s)
{
	free(s->stacks);
	free(s->keys);
	hash_index_free(s->index);
}

typedef struct ShownKey {
	const FrameId *keys;
	size_t n;
	bool fallback;
} ShownKey;

static bool shown_eq(uint32_t idx, const void *key, void *userdata)
{
	const Shown *s = userdata;
	const ShownStack *st = &s->stacks[idx];
	const ShownKey *k = key;

	return st->n == k->n && st->fallback == k->fallback &&
	       memcmp(s->keys + st->start, k->keys, k->n * sizeof(FrameId)) == 0;
}

/* Per frame: 0 not yet looked at, then one of these. */
enum {
	STATE_SHOWN = 1,
	STATE_HIDDEN,
	STATE_KERNEL
};

/* Adds a stack of the store, with its samples, to the stacks as shown. */
static int shown_add(const QueryContext *ctx, const Request *req, Shown *s, uint8_t *state,
		     StackId stack, uint64_t count)
{
	size_t n, start = s->n_keys;
	const FrameId *ids = store_stack(ctx->store, stack, &n);
	ShownKey key;
	uint64_t hash;
	uint32_t idx;
	int r;

	if (n == 0)
		return 0; /* no stack is empty: nothing to show, its samples are not listed */
	r = GREEDY_REALLOC(s->keys, s->allocated_keys, s->n_keys + n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		uint8_t *st = &state[ids[i]];

		if (*st == 0) {
			const StoreFrame *f = store_frame(ctx->store, ids[i]);

			*st = !query_frame_shown(req, f)	     ? STATE_HIDDEN
			      : frame_hidden_kernel(&ctx->viewer, f) ? STATE_KERNEL
								     : STATE_SHOWN;
			if (*st == STATE_KERNEL && !s->kernel_frame)
				s->kernel_frame = ids[i];
		}
		if (*st == STATE_HIDDEN)
			continue;
		/* recursion repeats a frame, and stays; only "[kernel]" runs merge */
		if (*st == STATE_KERNEL) {
			if (s->n_keys > start && s->keys[s->n_keys - 1] == SHOWN_KERNEL)
				continue;
			s->keys[s->n_keys++] = SHOWN_KERNEL;
		} else {
			s->keys[s->n_keys++] = ids[i];
		}
	}
	key = (ShownKey){ .keys = s->keys + start, .n = s->n_keys - start };
	/* A stack cut short within hidden frames (inlined code, without inlines) has no frame
	 * left: its outermost one stands for it. */
	if (key.n == 0) {
		s->keys[s->n_keys++] = ids[n - 1];
		key.n = 1;
		key.fallback = true;
	}
	hash = XXH3_64bits_withSeed(key.keys, key.n * sizeof(FrameId), key.fallback);
	if (hash_index_find(s->index, hash, shown_eq, &key, s, &idx) == 0) {
		s->stacks[idx].count += count;
		s->n_keys = start;
		return 0;
	}
	r = GREEDY_REALLOC(s->stacks, s->allocated, s->n + 1);
	if (r < 0)
		return r;
	r = hash_index_insert(s->index, hash, (uint32_t)s->n);
	if (r < 0)
		return r;
	s->stacks[s->n++] = (ShownStack){
		.start = start, .n = key.n, .count = count, .fallback = key.fallback
	};
	return 0;
}

/* Hottest first, then in the order the store's stacks came (hottest first, then by id). */
static int cmp_shown(const void *a, const void *b)
{
	const ShownStack *x = a, *y = b;

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* Appends frame id to the answer's "frames" (as the one "[kernel]" frame, or as a stack's
 * stand-in, not inlined into anything the answer shows): *out is its index + 1. */
static int frame_out_add(const QueryContext *ctx, FrameId id, bool fallback, json_object *frames,
			 uint32_t *n_out, size_t *bytes, uint32_t *out)
{
	json_object *fo = stack_frame_json(ctx, store_frame(ctx->store, id), bytes);

	if (!fo || json_object_array_add(frames, fo) < 0) {
		json_object_put(fo);
		return -ENOMEM;
	}
	if (fallback)
		json_object_object_add(fo, "inlined", json_object_new_boolean(false));
	*out = ++*n_out;
	return 0;
}

/*
 * Every distinct stack of the selection with its samples, hottest first, over a table of the
 * frames they use ("frames": [{function, module, file, line, kernel, inlined, python,
 * start_line of a Python function}], "stacks": [{"frames": [indexes, leaf first], "samples"}]).
 * Frames are the store's (one per function, line and inline level), named as the viewer may
 * see them; an unprivileged viewer's kernel frames are one "[kernel]" frame, consecutive ones
 * merged. Frames query_frame_shown() hides are left out, and stacks that differ only in them
 * are one.
 */
/* The time a profile covers: the windows in range, within the lives of the selected processes,
 * so that a profile's duration is not the whole retained range of a process that lived for part
 * of it. */
static void profile_span(const QueryContext *ctx, const Selection *sel, int64_t *ret_start,
			 int64_t *ret_end)
{
	int64_t start, end;

	selection_life(ctx->store, sel, &start, &end);
	*ret_start = MAX(start, sel->range.start_ns);
	*ret_end = MIN(end, sel->range.end_ns);
	if (*ret_end < *ret_start) /* an exit record older than a sample: trust the windows */
		*ret_start = sel->range.start_ns, *ret_end = sel->range.end_ns;
}

int query_answer_stacks(const QueryContext *ctx, const Request *req, const Selection *sel,
			json_object **ret)
{
	const Store *store = ctx->store;
	int64_t start, end;
	size_t n_counted, refs = 0, bytes = 0;
	_cleanup_free_ StackCount *order = NULL;
	_cleanup_free_ uint8_t *state = NULL;
	/* FrameId -> index + 1 in "frames"; 0: not yet. */
	_cleanup_free_ uint32_t *frame_out = NULL;
	/* FrameId -> index + 1 of the frame standing for a stack all hidden. */
	_cleanup_free_ uint32_t *fallback_out = NULL;
	_cleanup_(shown_done) Shown shown = { 0 };
	_cleanup_json_ json_object *answer = NULL;
	json_object *frames, *stacks;
	uint32_t kernel_out = 0, n_out = 0;
	uint64_t listed = 0;
	int r;

	r = selection_stacks_by_count(sel, &order, &n_counted);
	if (r < 0)
		return r;
	state = calloc(store_frame_id_limit(store), 1);
	frame_out = calloc(store_frame_id_limit(store), sizeof(uint32_t));
	if (!state || !frame_out || hash_index_new(&shown.index) < 0)
		return -ENOMEM;
	for (size_t k = 0; k < n_counted && shown.n < SHOWN_MAX && shown.n_keys < SHOWN_MAX_KEYS;
	     k++) {
		r = shown_add(ctx, req, &shown, state, order[k].stack, order[k].count);
		if (r < 0)
			return r;
	}
	if (shown.n > 1)
		qsort(shown.stacks, shown.n, sizeof(ShownStack), cmp_shown);

	answer = json_object_new_object();
	frames = json_object_new_array();
	stacks = json_object_new_array();
	if (!answer || !frames || !stacks) {
		json_object_put(frames);
		json_object_put(stacks);
		return -ENOMEM;
	}
	json_object_object_add(answer, "frames", frames);
	json_object_object_add(answer, "stacks", stacks);

	for (size_t k = 0;
	     k < shown.n && k < STACKS_MAX && refs < STACKS_MAX_REFS && bytes < STACKS_MAX_BYTES;
	     k++) {
		const ShownStack *st = &shown.stacks[k];
		json_object *o, *a;

		o = json_object_new_object();
		a = json_object_new_array_ext((int)st->n);
		if (!o || !a || json_object_array_add(stacks, o) < 0) {
			json_object_put(o);
			json_object_put(a);
			return -ENOMEM;
		}
		json_object_object_add(o, "frames", a);
		json_add_int(o, "samples", (int64_t)st->count);
		for (size_t i = 0; i < st->n; i++) {
			FrameId id = shown.keys[st->start + i];
			uint32_t *out = id == SHOWN_KERNEL ? &kernel_out
					: st->fallback	   ? NULL
							   : &frame_out[id];

			if (st->fallback) {
				if (!fallback_out) {
					fallback_out = calloc(store_frame_id_limit(store),
							      sizeof(uint32_t));
					if (!fallback_out)
						return -ENOMEM;
				}
				out = &fallback_out[id];
			}
			if (*out == 0) {
				r = frame_out_add(ctx, id == SHOWN_KERNEL ? shown.kernel_frame : id,
						  st->fallback, frames, &n_out, &bytes, out);
				if (r < 0)
					return r;
			}
			json_object_array_add(a, json_object_new_int64(*out - 1));
		}
		refs += st->n;
		bytes += 8 * st->n + 32;
		listed += st->count;
	}
	query_add_selection(ctx, req, sel, answer);
	query_add_frame_options(req, answer);
	json_add_int(answer, "truncated_samples", (int64_t)(sel->total - listed));
	profile_span(ctx, sel, &start, &end);
	json_add_int(answer, "start_ns", start);
	json_add_int(answer, "end_ns", end);
	*ret = TAKE_PTR(answer);
	return 0;
}
