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

typedef struct GroupTime {
	uint64_t real_ns, user_ns, sys_ns; /* summed over the processes */
	uint64_t s_user, s_sys, samples;   /* sampled, all of them */
	size_t n, kernel;		   /* processes, of which with the kernel's accounting */
} GroupTime;

/* One process of a group: its life, its CPU time as time(1) would give it, its samples. */
static json_object *group_row(const QueryContext *ctx, const StoreProc *p, uint64_t s_user,
			      uint64_t s_sys, GroupTime *g)
{
	int64_t end = p->flags & PROC_EXITED ? p->exit_ns : ctx->now_ns;
	uint64_t real_ns = (uint64_t)MAX(end - p->start_ns, (int64_t)0);
	bool kernel = p->flags & PROC_ACCOUNTING;
	uint64_t user_ns = kernel ? p->user_ns : s_user, sys_ns = kernel ? p->sys_ns : s_sys;
	json_object *o = json_object_new_object();

	g->n++;
	g->kernel += kernel;
	g->real_ns += real_ns;
	g->user_ns += user_ns;
	g->sys_ns += sys_ns;
	if (!o)
		return NULL;
	json_add_int(o, "pid", p->pid);
	json_add_int(o, "ppid", p->ppid);
	json_add_string(o, "comm", store_string(ctx->store, p->comm));
	json_add_string(o, "unit", store_string(ctx->store, p->unit));
	query_add_times(o, p);
	json_add_double(o, "real_s", (double)real_ns / NSEC_PER_SEC, 3);
	add_cpu(o, user_ns, sys_ns, real_ns, true);
	json_add_string(o, "accounting", kernel ? "kernel" : "sampled");
	return o;
}

static int cmp_start(const void *a, const void *b, void *userdata)
{
	const StoreProc *x = store_proc(userdata, *(const ProcId *)a);
	const StoreProc *y = store_proc(userdata, *(const ProcId *)b);

	if (x->start_ns != y->start_ns)
		return x->start_ns < y->start_ns ? -1 : 1;
	return *(const ProcId *)a < *(const ProcId *)b ? -1 : 1;
}

/* time for every process a request's labels select: the sums of real (their lives), user and
 * sys, each process's own figures from the kernel's accounting when the store has it, else
 * from its samples; and one row per process, oldest first (req->limit of them). */
static int time_of_group(const QueryContext *ctx, const Request *req, const Selection *sel,
			 json_object **ret)
{
	const Store *store = ctx->store;
	size_t limit = store_proc_id_limit(store), n = 0;
	_cleanup_free_ uint64_t *s_user = calloc(limit, sizeof(uint64_t));
	_cleanup_free_ uint64_t *s_sys = calloc(limit, sizeof(uint64_t));
	_cleanup_free_ ProcId *ids = calloc(limit, sizeof(ProcId));
	_cleanup_json_ json_object *answer = json_object_new_object();
	json_object *rows = json_object_new_array(), *o;
	GroupTime g = { 0 };
	int64_t start, end;

	if (!s_user || !s_sys || !ids || !answer || !rows) {
		json_object_put(rows);
		return -ENOMEM;
	}
	json_object_object_add(answer, "rows", rows);
	for (size_t i = sel->range.first; i < sel->range.end; i++) {
		const Window *w = store_window(store, i);

		for (size_t j = 0; j < w->n_entries; j++) {
			const WindowEntry *e = &w->entries[j];

			if (!sel->procs[e->proc] || e->kind != KIND_CPU)
				continue;
			s_user[e->proc] += e->user * w->period_ns;
			s_sys[e->proc] += e->kernel * w->period_ns;
			g.s_user += e->user * w->period_ns;
			g.s_sys += e->kernel * w->period_ns;
			g.samples += (uint64_t)e->user + e->kernel;
		}
	}
	for (ProcId id = 1; id < limit; id++)
		if (sel->procs[id] && store_proc(store, id))
			ids[n++] = id;
	qsort_r(ids, n, sizeof(ProcId), cmp_start, (void *)store);
	for (size_t i = 0; i < n; i++) {
		o = group_row(ctx, store_proc(store, ids[i]), s_user[ids[i]], s_sys[ids[i]], &g);
		if (!o)
			return -ENOMEM;
		if (i < req->limit)
			json_object_array_add(rows, o);
		else
			json_object_put(o);
	}
	selection_life(store, sel, &start, &end);
	json_object_object_add(answer, "pid", NULL);
	json_add_int(answer, "total_rows", (int64_t)n);
	json_add_double(answer, "real_s", (double)g.real_ns / NSEC_PER_SEC, 3);
	/* The wall time the group spans: from its first start to its last exit, or now. */
	json_add_double(answer, "span_s",
			(double)MAX(MIN(end, ctx->now_ns) - start, (int64_t)0) / NSEC_PER_SEC, 3);
	add_cpu(answer, g.user_ns, g.sys_ns, g.real_ns, true);
	json_add_string(answer, "accounting",
			g.kernel == g.n ? "kernel"
			: g.kernel	? "mixed"
					: "sampled");
	o = json_object_new_object();
	if (!o)
		return -ENOMEM;
	add_cpu(o, g.s_user, g.s_sys, g.real_ns, false);
	json_add_int(o, "samples", (int64_t)g.samples);
	json_object_object_add(answer, "sampled", o);
	*ret = TAKE_PTR(answer);
	return 0;
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
	QueryMemSummary mem;
	ProcId proc = sel->proc;
	const StoreProc *p = store_proc(store, proc);
	OffCpu off = { 0 };
	int r;

	if (!p)
		return time_of_group(ctx, req, sel, ret);

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
	/* time(1)'s %M: the kernel's high-water mark of the resident set, when it was followed. */
	query_mem_summary(store, sel->range.first, sel->range.end, proc, &mem);
	if (mem.points > 0)
		json_add_int(answer, "peak_rss_bytes", (int64_t)MAX(mem.peak, mem.max_rss));
	else
		json_object_object_add(answer, "peak_rss_bytes", NULL);
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
