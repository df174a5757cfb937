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

	for (size_t i = sel->range.first; i < sel->range.end; i++) {
		const Window *w = store_window(store, i);

		for (size_t j = 0; j < w->n_entries; j++) {
			const WindowEntry *e = &w->entries[j];

			if (!sel->procs[e->proc])
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
