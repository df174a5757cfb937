/* SPDX-License-Identifier: MIT */
#include <inttypes.h>

#include "base/json-util.h"
#include "query/query-internal.h"

#define KERNEL_FRAME_NAME "[kernel]"

bool query_kernel_collapsed(const Viewer *viewer, const StoreFrame *f)
{
	return (f->flags & FRAME_KERNEL) && !viewer->privileged && !viewer->kernel_names;
}

int query_frame_name(const Store *store, const StoreFrame *f, const Viewer *viewer, char *buf,
		     size_t len)
{
	const char *fn = store_string(store, f->function);
	const char *mod = store_string(store, f->module);

	if (query_kernel_collapsed(viewer, f))
		return snprintf(buf, len, "%s", KERNEL_FRAME_NAME);
	if (fn)
		return snprintf(buf, len, "%s", fn);
	/* An unresolved kernel frame's address is the kernel's layout: not for the unprivileged. */
	if ((f->flags & FRAME_KERNEL) && !viewer->privileged)
		return snprintf(buf, len, "%s", KERNEL_FRAME_NAME);
	return snprintf(buf, len, "%s+0x%" PRIx64, mod ? mod : "[unknown]", f->address);
}

uint64_t query_func_key(const Viewer *viewer, FrameId id, const StoreFrame *f)
{
	if (query_kernel_collapsed(viewer, f) ||
	    ((f->flags & FRAME_KERNEL) && !f->function && !viewer->privileged))
		return 1ULL << 62;
	/* A .py file is never a module's name (an ELF file or "[python]"): no key of a native
	 * function is a Python function's. */
	if (f->function && (f->flags & FRAME_PYTHON) && f->decl_file)
		return (uint64_t)f->decl_file << 32 | f->function;
	if (f->function)
		return (uint64_t)f->module << 32 | f->function;
	return 1ULL << 63 | id;
}

bool query_frame_is_function(const Store *store, const StoreFrame *f, const char *function)
{
	const char *fn = store_string(store, f->function);
	const char *sym = store_string(store, f->symbol);

	return (fn && streq(fn, function)) || (sym && streq(sym, function));
}

void query_add_frame_options(const Request *req, json_object *answer)
{
	json_object_object_add(answer, "inline", json_object_new_boolean(!req->no_inline));
	json_object_object_add(answer, "python", json_object_new_boolean(!req->no_python));
}

void query_add_selection(const QueryContext *ctx, const Request *req, const Selection *s,
			 json_object *answer)
{
	if (s->proc) {
		const StoreProc *p = store_proc(ctx->store, s->proc);

		json_add_int(answer, "pid", p->pid);
		json_add_string(answer, "comm", store_string(ctx->store, p->comm));
	} else {
		json_object_object_add(answer, "pid", NULL);
	}
	if (req->tid)
		json_add_int(answer, "tid", req->tid);
	json_add_int(answer, "samples", (int64_t)s->total);
	/* What one sample stands for (samples x period_ns = CPU time); 1 when counts are times. */
	if (s->mean_period_ns)
		json_add_int(answer, "period_ns", (int64_t)s->mean_period_ns);
	json_add_string(answer, "event", event_to_string(req->event));
	/* What the counts are: samples of the period, bytes faulted in, or nanoseconds. */
	json_add_string(answer, "unit",
			req->event == EVENT_CPU	     ? "samples"
			: req->event == EVENT_FAULTS ? "bytes"
						     : "nanoseconds");
}

void query_add_labels(json_object *o, const Store *store, const StoreProc *p)
{
	json_add_string(o, "unit", store_string(store, p->unit));
	json_add_string(o, "slice", store_string(store, p->slice));
	json_add_string(o, "cgroup", store_string(store, p->cgroup));
	json_add_string(o, "container", store_string(store, p->container));
}

void query_add_timestamp(json_object *o, const char *key, int64_t ns)
{
	/* Cut to the millisecond, not rounded: 14:05:07.9996 is a time of second 7, and a
	 * reader taking the whole seconds must find it there (points are one a second). */
	if (ns)
		json_add_double(o, key, (double)(ns / (int64_t)NSEC_PER_MSEC) / 1000.0, 3);
	else
		json_object_object_add(o, key, NULL);
}

void query_add_times(json_object *o, const StoreProc *p)
{
	query_add_timestamp(o, "start_time", p->start_ns);
	query_add_timestamp(o, "exit_time", p->flags & PROC_EXITED ? p->exit_ns : 0);
	json_object_object_add(o, "exited", json_object_new_boolean(p->flags & PROC_EXITED));
}

void query_add_function_samples(json_object *o, const Store *store, const StoreFrame *f,
				uint64_t self, uint64_t total, uint64_t samples)
{
	json_add_string(o, "module", store_string(store, f->module));
	/* Where the function is: its declaration. */
	json_add_string(o, "file", store_string(store, f->decl_file));
	if (f->decl_file && f->decl_line)
		json_add_int(o, "line", f->decl_line);
	else
		json_object_object_add(o, "line", NULL);
	json_add_int(o, "self_samples", (int64_t)self);
	json_add_int(o, "total_samples", (int64_t)total);
	json_add_double(o, "self_pct", query_pct(self, samples), 2);
	json_add_double(o, "total_pct", query_pct(total, samples), 2);
	json_object_object_add(o, "kernel", json_object_new_boolean(f->flags & FRAME_KERNEL));
	json_object_object_add(o, "inlined", json_object_new_boolean(f->flags & FRAME_INLINED));
	json_object_object_add(o, "python", json_object_new_boolean(f->flags & FRAME_PYTHON));
}

typedef int (*AnswerFunction)(const QueryContext *ctx, const Request *req, const Selection *sel,
			      json_object **ret);

static const struct {
	SelectScope scope;
	AnswerFunction answer;
} answers[_COMMAND_MAX] = {
	[COMMAND_PS] = { SELECT_SAMPLED, query_answer_ps },
	[COMMAND_TOP] = { SELECT_STACKS, query_answer_top },
	[COMMAND_TIME] = { SELECT_KNOWN, query_answer_time },
	[COMMAND_LINES] = { SELECT_STACKS, query_answer_lines },
	[COMMAND_TREE] = { SELECT_STACKS, query_answer_tree },
	[COMMAND_STACKS] = { SELECT_STACKS, query_answer_stacks },
	[COMMAND_MEM] = { SELECT_MEM, query_answer_mem },
};

/* The samples lost in the windows of range while a process of a pid's selection lived: lost
 * samples are of no known process, but not of one that did not exist yet or any more. */
static uint64_t selection_lost(const QueryContext *ctx, const Selection *sel, const Range *range)
{
	int64_t start, end;
	uint64_t lost = 0;

	if (!sel->proc)
		return range->lost;
	selection_life(ctx->store, sel, &start, &end);
	for (size_t i = range->first; i < range->end; i++) {
		const Window *w = store_window(ctx->store, i);

		if (w->start_ns < end && window_effective_end(w, ctx->now_ns) > start)
			lost += w->lost;
	}
	return lost;
}

/*
 * "range": the time the answer covers, realtime seconds: "since_s" and "until_s" of the windows
 * in range (null without any: ranges select whole windows), for time the process's life; and
 * "lost": the samples those windows lost while the daemon was busy (while the pid's processes
 * lived, with one): a figure of the answer may be low by up to as many.
 */
static int add_range(const QueryContext *ctx, const Request *req, const Selection *sel,
		     json_object *answer)
{
	const StoreProc *p = store_proc(ctx->store, sel->proc);
	json_object *o = json_object_new_object();
	Range range = sel->range;
	int64_t since = range.start_ns, until = range.end_ns;

	if (!o)
		return -ENOMEM;
	if (req->command == COMMAND_TIME && p) {
		until = p->flags & PROC_EXITED ? p->exit_ns : ctx->now_ns;
		query_range_between(ctx->store, ctx->now_ns, p->start_ns,
				    MAX(until, p->start_ns + 1), &range);
		since = p->start_ns;
	} else if (req->command == COMMAND_TIME) {
		/* A group's: from the first start to the last exit (or now). */
		selection_life(ctx->store, sel, &since, &until);
		until = MIN(until, ctx->now_ns);
		query_range_between(ctx->store, ctx->now_ns, since, MAX(until, since + 1), &range);
	}
	query_add_timestamp(o, "since_s", since);
	query_add_timestamp(o, "until_s", until);
	json_object_object_add(answer, "range", o);
	/* Lost samples take nothing from memory points (records lost: profq status). */
	if (req->command != COMMAND_MEM)
		json_add_int(answer, "lost", (int64_t)selection_lost(ctx, sel, &range));
	return 0;
}

int query_answer(const QueryContext *ctx, const Request *req, json_object **ret)
{
	_cleanup_(selection_done) Selection sel = { 0 };
	int r;

	if (req->command < 0 || req->command >= _COMMAND_MAX || !answers[req->command].answer)
		return -EOPNOTSUPP;
	r = query_select(ctx, req, answers[req->command].scope, &sel, ret);
	if (r < 0 || *ret)
		return r;
	r = answers[req->command].answer(ctx, req, &sel, ret);
	if (r < 0 || answer_error_code(*ret, NULL, NULL) == 0)
		return r;
	r = add_range(ctx, req, &sel, *ret);
	if (r >= 0 && request_has_match(req)) {
		/* How many processes the answer sums, and how many that match it left out. */
		r = json_add_int(*ret, "processes", (int64_t)sel.matched);
		if (r >= 0)
			r = json_add_int(*ret, "hidden", (int64_t)sel.hidden);
	}
	if (r < 0) {
		json_object_put(*ret);
		*ret = NULL;
	}
	return r;
}
