/* SPDX-License-Identifier: MIT */
#include <inttypes.h>

#include "base/json-util.h"
#include "query/query-internal.h"

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

/*
 * Every distinct stack of the selection with its samples, hottest first, over a table of the
 * frames they use ("frames": [{function, module, file, line, kernel, inlined, python,
 * start_line of a Python function}], "stacks":
 * [{"frames": [indexes, leaf first], "samples"}]). Frames are the store's (one per function,
 * line and inline level), named as the viewer may see them; an unprivileged viewer's kernel
 * frames are one "[kernel]" frame, consecutive ones merged.
 */
int query_answer_stacks(const QueryContext *ctx, const Request *req, const Selection *sel,
			json_object **ret)
{
	const Store *store = ctx->store;
	size_t n_counted, refs = 0, bytes = 0;
	_cleanup_free_ StackCount *order = NULL;
	/* FrameId -> index + 1 in "frames"; 0: not yet; FRAME_ROW_SKIP: left out (not shown). */
	_cleanup_free_ uint32_t *frame_out = NULL;
	/* FrameId -> index + 1 of the frame standing for a stack all inlined (--no-inline). */
	_cleanup_free_ uint32_t *fallback_out = NULL;
	_cleanup_json_ json_object *answer = NULL;
	json_object *frames, *stacks;
	uint32_t kernel_out = 0, n_out = 0;
	uint64_t listed = 0;
	int r;

	r = selection_stacks_by_count(sel, &order, &n_counted);
	if (r < 0)
		return r;
	frame_out = calloc(store_frame_id_limit(store), sizeof(uint32_t));
	answer = json_object_new_object();
	frames = json_object_new_array();
	stacks = json_object_new_array();
	if (!frame_out || !answer || !frames || !stacks) {
		json_object_put(frames);
		json_object_put(stacks);
		return -ENOMEM;
	}
	json_object_object_add(answer, "frames", frames);
	json_object_object_add(answer, "stacks", stacks);

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

				if (!query_frame_shown(req, f)) {
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
				fallback_out = calloc(store_frame_id_limit(store),
						      sizeof(uint32_t));
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
				json_object_object_add(fo, "inlined",
						       json_object_new_boolean(false));
				*out = ++n_out;
			}
			json_object_array_add(a, json_object_new_int64(*out - 1));
		}
		refs += n;
		bytes += 8 * n + 32;
		listed += order[k].count;
	}
	query_add_selection(ctx, req, sel, answer);
	query_add_frame_options(req, answer);
	json_add_int(answer, "truncated_samples", (int64_t)(sel->total - listed));
	json_add_int(answer, "period_ns", (int64_t)sel->mean_period_ns);
	json_add_int(answer, "start_ns", store_window(store, sel->range.first)->start_ns);
	json_add_int(answer, "end_ns",
		     window_effective_end(store_window(store, sel->range.end - 1), ctx->now_ns));
	*ret = TAKE_PTR(answer);
	return 0;
}
