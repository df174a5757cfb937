/* SPDX-License-Identifier: MIT */
/*
 * Internal to libprofq/query: one answer per file (top.c, tree.c, lines.c, stacks.c, ps.c,
 * time.c), each given the selection of select.h that query_answer() made for it, and what the
 * answers have in common (query.c).
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "protocol/protocol.h"
#include "query/query.h"
#include "query/select.h"
#include "store/store.h"

/* The answers, each from the selection its command makes (query.c's table); same contract as
 * query_answer() past the selection. */
int query_answer_top(const QueryContext *ctx, const Request *req, const Selection *sel,
		     json_object **ret);
int query_answer_tree(const QueryContext *ctx, const Request *req, const Selection *sel,
		      json_object **ret);
int query_answer_lines(const QueryContext *ctx, const Request *req, const Selection *sel,
		       json_object **ret);
int query_answer_stacks(const QueryContext *ctx, const Request *req, const Selection *sel,
			json_object **ret);
int query_answer_ps(const QueryContext *ctx, const Request *req, const Selection *sel,
		    json_object **ret);
int query_answer_time(const QueryContext *ctx, const Request *req, const Selection *sel,
		      json_object **ret);
int query_answer_mem(const QueryContext *ctx, const Request *req, const Selection *sel,
		     json_object **ret);

/* What the memory points of one process in some windows tell (mem.c). */
typedef struct QueryMemSummary {
	size_t points;
	uint64_t first_rss, last_rss,
		max_rss; /* bytes: the oldest point, the newest, the largest */
	int64_t first_ns, last_ns, max_ns;
	uint64_t peak;	 /* the kernel's peak of the whole life up to the newest point */
	int64_t peak_ns; /* when it was reached */
	bool peak_old;	 /* ... before profqd followed the process (time unknown) */
	bool oom;	 /* the OOM killer chose the process */
	int64_t oom_ns;
} QueryMemSummary;

void query_mem_add(QueryMemSummary *m, const MemPoint *pt);
/* The points of proc in windows [first, end). */
void query_mem_summary(const Store *store, size_t first, size_t end, ProcId proc,
		       QueryMemSummary *ret);

/* In a frame -> row map: the frame has no row of its own (an inline folded away). */
#define FRAME_ROW_SKIP UINT32_MAX

/*
 * Whether the answers show frame f: the one rule of top, tree, lines and stacks. Without inlines
 * (no_inline) an inlined frame is folded into its caller. A Python function's frame stands in
 * for the frame of the interpreter's evaluation function that ran it, which is hidden; with
 * no_python the Python frames are hidden and the evaluation frames are native frames again.
 */
static inline bool query_frame_shown(const Request *req, const StoreFrame *f)
{
	if (req->no_inline && (f->flags & FRAME_INLINED))
		return false;
	if (f->flags & FRAME_PYTHON)
		return !req->no_python;
	if (f->flags & FRAME_PYTHON_EVAL)
		return req->no_python;
	return true;
}

/* "inline" and "python" of an answer: which frames query_frame_shown() let through. */
void query_add_frame_options(const Request *req, json_object *answer);

/* Unprivileged viewers without kernel names see every kernel frame as this one. */
bool query_kernel_collapsed(const Viewer *viewer, const StoreFrame *f);

/* What rows of functions (top, tree, lines) aggregate by: function and module (for a Python
 * function, its .py file: every module's code is "<module>"); unresolved frames by their own
 * location; kernel frames the viewer may not tell apart into one row. */
uint64_t query_func_key(const Viewer *viewer, FrameId id, const StoreFrame *f);

/* Whether f is the function a request names (req->function): by name, or by raw symbol. */
bool query_frame_is_function(const Store *store, const StoreFrame *f, const char *function);

static inline double query_pct(uint64_t part, uint64_t whole)
{
	return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

/* "pid" (null without one), "comm", "tid" when asked, "samples", "period_ns" (of a selection
 * with stacks), "event", "unit": whose samples an answer is, and what they count. */
void query_add_selection(const QueryContext *ctx, const Request *req, const Selection *s,
			 json_object *answer);

/* "unit", "slice", "cgroup", "container" of a process (null where unknown or none). */
void query_add_labels(json_object *o, const Store *store, const StoreProc *p);

/* "start_time", "exit_time", "exited" of a process. */
/* A CLOCK_REALTIME time in ns as seconds with milliseconds, cut (not rounded) to the
 * millisecond; null for 0. */
void query_add_timestamp(json_object *o, const char *key, int64_t ns);
void query_add_times(json_object *o, const StoreProc *p);

/* A function's place and samples, as top rows and tree nodes give them: "module", "file" and
 * "line" of its declaration, samples and shares of samples, "kernel", "inlined", "python". */
void query_add_function_samples(json_object *o, const Store *store, const StoreFrame *f,
				uint64_t self, uint64_t total, uint64_t samples);
