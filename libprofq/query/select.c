/* SPDX-License-Identifier: MIT */
#include <fnmatch.h>
#include <inttypes.h>

#include "base/hashindex.h"
#include "base/macro.h"
#include "query/select.h"

int64_t window_effective_end(const Window *w, int64_t now_ns)
{
	return w->open ? MIN(w->end_ns, now_ns) : w->end_ns;
}

void query_range_between(const Store *store, int64_t now_ns, int64_t since_ns, int64_t until_ns,
			 Range *ret)
{
	size_t n = store_window_count(store);
	Range r = { .first = n, .end = 0 };

	for (size_t i = 0; i < n; i++) {
		const Window *w = store_window(store, i);
		int64_t end = window_effective_end(w, now_ns);

		if (w->start_ns >= until_ns || end <= since_ns)
			continue;
		if (r.first > i)
			r.start_ns = w->start_ns;
		r.first = MIN(r.first, i);
		r.end = i + 1;
		r.end_ns = MAX(end, w->start_ns);
		r.lost += w->lost;
		if (end > w->start_ns)
			r.elapsed_ns += (uint64_t)(end - w->start_ns);
	}
	if (r.first > r.end)
		r.first = r.end = 0;
	*ret = r;
}

/* Whole windows: a window in range counts with all its samples. */
static void range_compute(const QueryContext *ctx, const Request *req, Range *ret)
{
	int64_t since_ns = req->has_since ? ctx->now_ns - (int64_t)req->since_ns : INT64_MIN;
	int64_t until_ns = req->has_until ? ctx->now_ns - (int64_t)req->until_ns : INT64_MAX;

	query_range_between(ctx->store, ctx->now_ns, since_ns, until_ns, ret);
}

uint64_t query_range_alive_ns(const Store *store, const Range *range, const StoreProc *p,
			      int64_t now_ns)
{
	int64_t death = p->flags & PROC_EXITED ? p->exit_ns : INT64_MAX;
	uint64_t ns = 0;

	for (size_t i = range->first; i < range->end; i++) {
		const Window *w = store_window(store, i);
		int64_t from = MAX(w->start_ns, p->start_ns);
		int64_t to = MIN(window_effective_end(w, now_ns), death);

		if (to > from)
			ns += (uint64_t)(to - from);
	}
	return ns;
}

bool query_proc_visible(const Viewer *viewer, const StoreProc *p)
{
	if (!p)
		return false;
	if (viewer->privileged)
		return true;
	return p->uid == viewer->uid && !(p->flags & (PROC_PRIVATE | PROC_KTHREAD));
}

static bool proc_visible(const QueryContext *ctx, const StoreProc *p)
{
	return query_proc_visible(&ctx->viewer, p);
}

/* A unit glob: as given, and without a '.' also as NAME.service (as systemctl takes names). */
static bool unit_matches(const char *pattern, const char *unit)
{
	char with_type[REQUEST_UNIT_MAX + 16];

	if (!unit)
		return false;
	if (fnmatch(pattern, unit, 0) == 0)
		return true;
	if (strchr(pattern, '.'))
		return false;
	snprintf(with_type, sizeof(with_type), "%s.service", pattern);
	return fnmatch(with_type, unit, 0) == 0;
}

/* The cgroup path, or one below it. */
static bool cgroup_matches(const char *want, const char *path)
{
	size_t n = strlen(want);

	/* "/a/" names the same cgroup as "/a". */
	while (n > 1 && want[n - 1] == '/')
		n--;
	if (!path || strncmp(path, want, n) != 0)
		return false;
	return n == 1 || path[n] == '\0' || path[n] == '/';
}

bool query_proc_matches(const Store *store, const RequestMatch *m, const StoreProc *p)
{
	const char *container = store_string(store, p->container);

	if (m->unit[0] && !unit_matches(m->unit, store_string(store, p->unit)))
		return false;
	if (m->cgroup[0] && !cgroup_matches(m->cgroup, store_string(store, p->cgroup)))
		return false;
	if (m->container[0] &&
	    (!container || strncmp(container, m->container, strlen(m->container)) != 0))
		return false;
	if (m->comm[0] && fnmatch(m->comm, strempty(store_string(store, p->comm)), 0) != 0)
		return false;
	return true;
}

/* Whether an entry of kind counts for event. */
bool query_event_has(Event event, uint32_t kind)
{
	switch (event) {
	case EVENT_CPU:
		return kind == KIND_CPU;
	case EVENT_OFF_CPU:
		return kind_off_cpu(kind);
	case EVENT_WALL:
		return kind == KIND_CPU || kind_off_cpu(kind);
	case EVENT_FAULTS:
		return kind == KIND_FAULTS;
	default:
		return false;
	}
}

uint64_t query_entry_weight(Event event, const Window *w, const WindowEntry *e)
{
	if (!query_event_has(event, e->kind))
		return 0;
	if (e->kind != KIND_CPU)
		return e->weight;
	if (event == EVENT_CPU)
		return (uint64_t)e->user + e->kernel;
	return ((uint64_t)e->user + e->kernel) * w->period_ns;
}

/* The processes with entries of the request's event (mem: memory points) in range, as a map
 * indexed by ProcId. */
static uint8_t *procs_in_range(const QueryContext *ctx, const Request *req, const Range *range,
			       bool mem)
{
	uint8_t *in = calloc(store_proc_id_limit(ctx->store), 1);

	if (!in)
		return NULL;
	for (size_t i = range->first; i < range->end; i++) {
		const Window *w = store_window(ctx->store, i);

		if (mem)
			for (size_t j = 0; j < w->n_mem; j++)
				in[w->mem[j].proc] = 1;
		else
			for (size_t j = 0; j < w->n_entries; j++)
				if (query_event_has(req->event, w->entries[j].kind))
					in[w->entries[j].proc] = 1;
	}
	return in;
}

typedef struct ProcRef {
	uint32_t pid;
	int64_t start_ns;
	ProcId id;
} ProcRef;

static int procref_cmp(const void *a, const void *b)
{
	const ProcRef *x = a, *y = b;

	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	if (x->start_ns != y->start_ns)
		return x->start_ns < y->start_ns ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* The process a parent pid meant for child c: the newest incarnation started before c. */
static ProcId parent_of(const Store *store, const ProcRef *refs, size_t n, ProcId c)
{
	const StoreProc *p = store_proc(store, c);
	size_t lo = 0, hi = n;

	if (!p || p->ppid == 0 || p->ppid == p->pid)
		return 0;
	/* First ref past (ppid, start). */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (refs[mid].pid < p->ppid ||
		    (refs[mid].pid == p->ppid && refs[mid].start_ns <= p->start_ns))
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0 || refs[lo - 1].pid != p->ppid)
		return 0;
	return refs[lo - 1].id;
}

/* Marks in sel every process descended from root (root excluded) that passes filter. */
static int mark_descendants(const QueryContext *ctx, ProcId root, const uint8_t *filter,
			    uint8_t *sel)
{
	const Store *store = ctx->store;
	size_t limit = store_proc_id_limit(store), n = 0;
	_cleanup_free_ ProcRef *refs = calloc(limit, sizeof(ProcRef));
	/* 0 unknown, 1 descendant, 2 not. */
	_cleanup_free_ uint8_t *state = calloc(limit, 1);
	_cleanup_free_ ProcId *chain = calloc(limit, sizeof(ProcId));

	if (!refs || !state || !chain)
		return -ENOMEM;
	for (ProcId id = 1; id < limit; id++) {
		const StoreProc *p = store_proc(store, id);

		if (p)
			refs[n++] = (ProcRef){ .pid = p->pid, .start_ns = p->start_ns, .id = id };
	}
	qsort(refs, n, sizeof(ProcRef), procref_cmp);
	state[root] = 1;
	for (size_t i = 0; i < n; i++) {
		size_t depth = 0;
		ProcId cur = refs[i].id;
		uint8_t verdict = 2;

		/* Walk up until an answer; the chain learns it. Pid cycles cannot loop: each step
		 * goes to an older start, and the depth is bounded by the table anyway. */
		while (cur && state[cur] == 0 && depth < limit) {
			chain[depth++] = cur;
			cur = parent_of(store, refs, n, cur);
		}
		if (cur && state[cur] == 1)
			verdict = 1;
		for (size_t j = 0; j < depth; j++)
			state[chain[j]] = verdict;
	}
	for (ProcId id = 1; id < limit; id++)
		if (id != root && state[id] == 1 && (!filter || filter[id]) &&
		    proc_visible(ctx, store_proc(store, id)))
			sel[id] = 1;
	return 0;
}

/* The processes that match req->match (with samples in range, unless in_range is NULL): those
 * the viewer may see into sel; how many it may not see, and how many it may, returned. */
static void select_matching(const QueryContext *ctx, const Request *req, const uint8_t *in_range,
			    uint8_t *sel, size_t *ret_hidden, size_t *ret_n)
{
	size_t limit = store_proc_id_limit(ctx->store), hidden = 0, n = 0;

	for (ProcId id = 1; id < limit; id++) {
		const StoreProc *p = store_proc(ctx->store, id);

		if (!p || (in_range && !in_range[id]) || (req->has_uid && p->uid != req->uid) ||
		    !query_proc_matches(ctx->store, &req->match, p))
			continue;
		if (!proc_visible(ctx, p)) {
			hidden++;
			continue;
		}
		sel[id] = 1;
		n++;
	}
	*ret_hidden = hidden;
	*ret_n = n;
}

/* What no process matched says: denied when every one that did is hidden. */
static json_object *match_error(const Request *req, const uint8_t *in_range, size_t hidden)
{
	if (hidden > 0)
		return error_answer_new(
			ERROR_DENIED, "Permission denied for the %zu processes that match", hidden);
	return error_answer_new(
		ERROR_NOT_FOUND, "No process that matches%s%s%s%s%s%s%s%s%s%s%s%s%s",
		req->match.unit[0] ? " unit '" : "", req->match.unit, req->match.unit[0] ? "'" : "",
		req->match.cgroup[0] ? " cgroup '" : "", req->match.cgroup,
		req->match.cgroup[0] ? "'" : "", req->match.container[0] ? " container '" : "",
		req->match.container, req->match.container[0] ? "'" : "",
		req->match.comm[0] ? " comm '" : "", req->match.comm, req->match.comm[0] ? "'" : "",
		in_range ? " has samples in range" : " is known");
}

/* The processes of the selection; in_range NULL: any known one. */
static int select_procs(const QueryContext *ctx, const Request *req, const uint8_t *in_range,
			const char *what, Selection *s, json_object **ret_error)
{
	size_t limit = store_proc_id_limit(ctx->store);
	_cleanup_free_ uint8_t *sel = calloc(limit, 1);
	int64_t best_delta = INT64_MAX;
	bool hidden = false, known = false;
	ProcId best = 0;
	int r;

	if (!sel)
		return -ENOMEM;
	if (request_has_match(req)) {
		select_matching(ctx, req, in_range, sel, &s->hidden, &s->matched);
		if (s->matched == 0) {
			*ret_error = match_error(req, in_range, s->hidden);
			return *ret_error ? 0 : -ENOMEM;
		}
		s->procs = TAKE_PTR(sel);
		return 0;
	}
	if (!req->pid) {
		for (ProcId id = 1; id < limit; id++) {
			const StoreProc *p = store_proc(ctx->store, id);

			if (in_range && in_range[id] && proc_visible(ctx, p) &&
			    (!req->has_uid || p->uid == req->uid))
				sel[id] = 1;
		}
		s->procs = TAKE_PTR(sel);
		return 0;
	}
	for (ProcId id = 1; id < limit; id++) {
		const StoreProc *p = store_proc(ctx->store, id);
		int64_t delta;

		if (!p || p->pid != req->pid)
			continue;
		/* The viewer's choice is among the incarnations it may see (an exec that changed
		 * the owner leaves two, a nanosecond apart; a reused pid another user's). Whether
		 * a hidden one has samples is not the viewer's to learn: denied either way. */
		if (!proc_visible(ctx, p)) {
			hidden = true;
			continue;
		}
		known = true;
		/* With children, the root need not have samples itself (a shell waiting for
		 * them), only some of its descendants. */
		if (in_range && !in_range[id] && !req->children)
			continue;
		if (req->start_ns) {
			delta = p->start_ns > req->start_ns ? p->start_ns - req->start_ns
							    : req->start_ns - p->start_ns;
			if (delta > (int64_t)NSEC_PER_SEC || delta >= best_delta)
				continue;
			best_delta = delta;
			best = id;
		} else if (!best || p->start_ns > store_proc(ctx->store, best)->start_ns) {
			best = id;
		}
	}
	if (!best && hidden && !known) {
		*ret_error = error_answer_new(ERROR_DENIED, "Permission denied for pid %" PRIu32,
					      req->pid);
		return *ret_error ? 0 : -ENOMEM;
	}
	if (!best) {
		if (req->start_ns)
			*ret_error = error_answer_new(ERROR_NOT_FOUND,
						      "No process %" PRIu32
						      " started at that time%s%s%s",
						      req->pid, in_range ? " has " : "",
						      in_range ? what : "",
						      in_range ? " in range" : "");
		else if (in_range)
			*ret_error = error_answer_new(ERROR_NOT_FOUND,
						      "No %s for pid %" PRIu32 " in range", what,
						      req->pid);
		else
			*ret_error = error_answer_new(ERROR_NOT_FOUND,
						      "No process %" PRIu32 " is known", req->pid);
		return *ret_error ? 0 : -ENOMEM;
	}
	sel[best] = 1;
	if (req->children) {
		r = mark_descendants(ctx, best, in_range, sel);
		if (r < 0)
			return r;
	}
	s->proc = best;
	s->procs = TAKE_PTR(sel);
	return 0;
}

/* Sums the selected entries of the range per stack into s->counts, and their time. */
static void count_stacks(const QueryContext *ctx, const Request *req, Selection *s)
{
	/* Windows of a daemon restarted with another --frequency have another period: the mean
	 * is weighted so that samples x mean period stays their CPU time. Other events count
	 * nanoseconds: a period of 1. */
	long double ns = 0;

	for (size_t i = s->range.first; i < s->range.end; i++) {
		const Window *w = store_window(ctx->store, i);

		for (size_t j = 0; j < w->n_entries; j++) {
			const WindowEntry *e = &w->entries[j];
			uint64_t n = query_entry_weight(req->event, w, e);

			if (n == 0 || !s->procs[e->proc] || (req->tid && e->tid != req->tid))
				continue;
			s->counts[e->stack] += n;
			s->total += n;
			ns += (long double)n * (req->event == EVENT_CPU ? w->period_ns : 1);
		}
	}
	if (s->total > 0)
		s->mean_period_ns = (uint64_t)(ns / s->total + 0.5L);
}

int query_select(const QueryContext *ctx, const Request *req, SelectScope scope, Selection *ret,
		 json_object **ret_error)
{
	_cleanup_(selection_done) Selection s = { 0 };
	_cleanup_free_ uint8_t *in_range = NULL;
	int r;

	*ret_error = NULL;
	if (scope == SELECT_KNOWN) {
		/* time reports on a process's whole life, whatever the range. */
		s.range = (Range){ .first = 0, .end = store_window_count(ctx->store) };
	} else {
		range_compute(ctx, req, &s.range);
		in_range = procs_in_range(ctx, req, &s.range, scope == SELECT_MEM);
		if (!in_range)
			return -ENOMEM;
	}
	r = select_procs(ctx, req, in_range, scope == SELECT_MEM ? "memory points" : "samples", &s,
			 ret_error);
	if (r < 0 || *ret_error)
		return r;
	if (scope == SELECT_STACKS) {
		s.n_stacks = store_stack_id_limit(ctx->store);
		s.counts = calloc(s.n_stacks, sizeof(uint64_t));
		if (!s.counts)
			return -ENOMEM;
		count_stacks(ctx, req, &s);
		if (s.total == 0) {
			if (req->tid)
				*ret_error = error_answer_new(ERROR_NOT_FOUND,
							      "No samples for thread %" PRIu32
							      " in range",
							      req->tid);
			else
				*ret_error = error_answer_new(ERROR_NOT_FOUND,
							      "No samples in range");
			return *ret_error ? 0 : -ENOMEM;
		}
	}
	*ret = s;
	s = (Selection){ 0 };
	return 0;
}

void selection_done(Selection *s)
{
	s->procs = mfree(s->procs);
	s->counts = mfree(s->counts);
}

void selection_life(const Store *store, const Selection *s, int64_t *ret_start, int64_t *ret_end)
{
	int64_t start = INT64_MAX, end = INT64_MIN;

	for (ProcId id = 1; id < store_proc_id_limit(store); id++) {
		const StoreProc *p = store_proc(store, id);

		if (!s->procs[id] || !p)
			continue;
		start = MIN(start, p->start_ns);
		end = MAX(end, p->flags & PROC_EXITED ? p->exit_ns : INT64_MAX);
	}
	*ret_start = start;
	*ret_end = end;
}

static int cmp_stack_count(const void *a, const void *b)
{
	const StackCount *x = a, *y = b;

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return x->stack < y->stack ? -1 : x->stack > y->stack;
}

typedef struct CommStacks {
	CommStackCount *rows;
	size_t n, allocated;
} CommStacks;

static bool comm_stack_eq(uint32_t idx, const void *key, void *userdata)
{
	const CommStackCount *a = &((CommStacks *)userdata)->rows[idx], *b = key;

	return a->comm == b->comm && a->stack == b->stack;
}

static int cmp_comm_stack_count(const void *a, const void *b)
{
	const CommStackCount *x = a, *y = b;

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	if (x->comm != y->comm)
		return x->comm < y->comm ? -1 : 1;
	return x->stack < y->stack ? -1 : x->stack > y->stack;
}

int selection_stacks_by_comm(const QueryContext *ctx, const Request *req, const Selection *s,
			     CommStackCount **ret, size_t *ret_n)
{
	_cleanup_(hash_index_freep) HashIndex *index = NULL;
	CommStacks cs = { 0 };
	int r;

	r = hash_index_new(&index);
	if (r < 0)
		return r;
	/* The entries count_stacks() summed, keyed by comm too. */
	for (size_t i = s->range.first; i < s->range.end; i++) {
		const Window *w = store_window(ctx->store, i);

		for (size_t j = 0; j < w->n_entries; j++) {
			const WindowEntry *e = &w->entries[j];
			uint64_t n = query_entry_weight(req->event, w, e);
			const StoreProc *proc;
			CommStackCount key;
			uint64_t hash;
			uint32_t idx;

			if (n == 0 || !s->procs[e->proc] || (req->tid && e->tid != req->tid))
				continue;
			proc = store_proc(ctx->store, e->proc);
			key = (CommStackCount){ .comm = proc ? proc->comm : 0, .stack = e->stack };
			hash = ((uint64_t)key.comm << 32 | key.stack) * 0x9E3779B97F4A7C15ULL;
			if (hash_index_find(index, hash, comm_stack_eq, &key, &cs, &idx) == 0) {
				cs.rows[idx].count += n;
				continue;
			}
			r = GREEDY_REALLOC(cs.rows, cs.allocated, cs.n + 1);
			if (r >= 0)
				r = hash_index_insert(index, hash, (uint32_t)cs.n);
			if (r < 0) {
				free(cs.rows);
				return r;
			}
			key.count = n;
			cs.rows[cs.n++] = key;
		}
	}
	if (cs.n > 0)
		qsort(cs.rows, cs.n, sizeof(CommStackCount), cmp_comm_stack_count);
	*ret = cs.rows;
	*ret_n = cs.n;
	return 0;
}

int selection_stacks_by_count(const Selection *s, StackCount **ret, size_t *ret_n)
{
	StackCount *stacks;
	size_t n = 0;

	for (StackId id = 1; id < s->n_stacks; id++)
		n += s->counts[id] > 0;
	stacks = calloc(MAX(n, (size_t)1), sizeof(StackCount));
	if (!stacks)
		return -ENOMEM;
	n = 0;
	for (StackId id = 1; id < s->n_stacks; id++)
		if (s->counts[id] > 0)
			stacks[n++] = (StackCount){ .stack = id, .count = s->counts[id] };
	qsort(stacks, n, sizeof(StackCount), cmp_stack_count);
	*ret = stacks;
	*ret_n = n;
	return 0;
}
