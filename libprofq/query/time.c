/* SPDX-License-Identifier: MIT */
#include <inttypes.h>

#include "base/json-util.h"
#include "query/query-internal.h"

static void add_cpu(json_object *o, uint64_t user_ns, uint64_t sys_ns, uint64_t real_ns,
		    bool with_pct)
{
	json_add_double(o, "user_s", (double)user_ns / NSEC_PER_SEC, 3);
	json_add_double(o, "sys_s", (double)sys_ns / NSEC_PER_SEC, 3);
	if (with_pct)
		json_add_double(o, "cpu_pct",
				real_ns ? 100.0 * (double)(user_ns + sys_ns) / (double)real_ns : 0,
				1);
}

/* Off-CPU time by state: runnable, sleeping, blocked (KIND_RUNNABLE..KIND_BLOCKED). */
typedef struct OffCpu {
	uint64_t ns[3];
	uint64_t records;
} OffCpu;

static void off_cpu_add(OffCpu *o, const WindowEntry *e)
{
	o->ns[e->kind - KIND_RUNNABLE] += e->weight;
	o->records += e->records;
}

static void add_off_cpu(json_object *o, const OffCpu *off)
{
	json_add_double(o, "off_cpu_s",
			(double)(off->ns[0] + off->ns[1] + off->ns[2]) / NSEC_PER_SEC, 3);
	json_add_double(o, "runnable_s", (double)off->ns[0] / NSEC_PER_SEC, 3);
	json_add_double(o, "sleeping_s", (double)off->ns[1] / NSEC_PER_SEC, 3);
	json_add_double(o, "blocked_s", (double)off->ns[2] / NSEC_PER_SEC, 3);
}

/* One entry of the process, for its threads' figures. */
typedef struct ThreadPart {
	uint32_t tid;
	uint32_t order; /* windows go oldest first */
	StrId thread;
	const WindowEntry *e;
	uint64_t period_ns;
} ThreadPart;

static int cmp_part(const void *a, const void *b)
{
	const ThreadPart *x = a, *y = b;

	if (x->tid != y->tid)
		return x->tid < y->tid ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* The process's threads: their sampled CPU time and their off-CPU time by state. */
static int add_threads(const Store *store, const Selection *sel, json_object *answer)
{
	_cleanup_free_ ThreadPart *parts = NULL;
	json_object *threads = json_object_new_array();
	size_t n = 0, allocated = 0;

	if (!threads)
		return -ENOMEM;
	json_object_object_add(answer, "threads", threads);
	for (size_t i = sel->range.first; i < sel->range.end; i++) {
		const Window *w = store_window(store, i);

		for (size_t j = 0; j < w->n_entries; j++) {
			const WindowEntry *e = &w->entries[j];

			if (e->proc != sel->proc)
				continue;
			if (GREEDY_REALLOC(parts, allocated, n + 1) < 0)
				return -ENOMEM;
			parts[n] = (ThreadPart){ .tid = e->tid,
						 .order = (uint32_t)n,
						 .thread = e->thread,
						 .e = e,
						 .period_ns = w->period_ns };
			n++;
		}
	}
	if (n > 1)
		qsort(parts, n, sizeof(*parts), cmp_part);
	for (size_t i = 0; i < n;) {
		uint64_t user = 0, sys = 0;
		OffCpu off = { 0 };
		StrId name = parts[i].thread;
		uint32_t tid = parts[i].tid;
		json_object *o;

		for (; i < n && parts[i].tid == tid; i++) {
			const WindowEntry *e = parts[i].e;

			name = parts[i].thread; /* the latest */
			if (e->kind == KIND_CPU) {
				user += e->user * parts[i].period_ns;
				sys += e->kernel * parts[i].period_ns;
			} else if (kind_off_cpu(e->kind)) {
				off_cpu_add(&off, e);
			}
		}
		o = json_object_new_object();
		if (!o)
			return -ENOMEM;
		json_add_int(o, "tid", tid);
		json_add_string(o, "comm", store_string(store, name));
		json_add_double(o, "sampled_user_s", (double)user / NSEC_PER_SEC, 3);
		json_add_double(o, "sampled_sys_s", (double)sys / NSEC_PER_SEC, 3);
		add_off_cpu(o, &off);
		json_object_array_add(threads, o);
	}
	return 0;
}

/* What time(1) says of one process over its whole life, from the kernel's accounting when the
 * store has it, else from the samples; also the samples, and the descendants' accounting. */
int query_answer_time(const QueryContext *ctx, const Request *req, const Selection *sel,
		      json_object **ret)
{
	const Store *store = ctx->store;
	_cleanup_json_ json_object *answer = NULL;
	json_object *o;
	uint64_t user_ns, sys_ns, real_ns, s_user = 0, s_sys = 0, samples = 0;
	uint64_t own_user = 0, own_sys = 0, d_user = 0, d_sys = 0;
	size_t descendants = 0;
	ProcId proc = sel->proc;
	const StoreProc *p = store_proc(store, proc);
	OffCpu off = { 0 };
	int r;

	for (size_t i = sel->range.first; i < sel->range.end; i++) {
		const Window *w = store_window(store, i);

		for (size_t j = 0; j < w->n_entries; j++) {
			const WindowEntry *e = &w->entries[j];

			if (!sel->procs[e->proc])
				continue;
			if (kind_off_cpu(e->kind) && e->proc == proc)
				off_cpu_add(&off, e);
			if (e->kind != KIND_CPU)
				continue;
			s_user += e->user * w->period_ns;
			s_sys += e->kernel * w->period_ns;
			samples += (uint64_t)e->user + e->kernel;
			if (e->proc == proc) {
				own_user += e->user * w->period_ns;
				own_sys += e->kernel * w->period_ns;
			}
		}
	}
	for (ProcId id = 1; id < store_proc_id_limit(store); id++) {
		const StoreProc *d = store_proc(store, id);

		if (id == proc || !sel->procs[id] || !d)
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
		/* Only this process's share of the samples, not its descendants'. */
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
	query_add_times(answer, p);
	if (p->flags & PROC_EXITED)
		json_add_int(answer, "exit_code", p->exit_code);
	else
		json_object_object_add(answer, "exit_code", NULL);
	json_add_double(answer, "real_s", (double)real_ns / NSEC_PER_SEC, 3);
	add_cpu(answer, user_ns, sys_ns, real_ns, true);
	json_add_string(answer, "accounting", p->flags & PROC_ACCOUNTING ? "kernel" : "sampled");
	/* Where the rest of its threads' time went: switched out, by their state then. */
	o = json_object_new_object();
	if (!o)
		return -ENOMEM;
	add_off_cpu(o, &off);
	json_add_int(o, "records", (int64_t)off.records);
	json_object_object_add(answer, "off_cpu", o);
	r = add_threads(store, sel, answer);
	if (r < 0)
		return r;

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
