/* SPDX-License-Identifier: MIT */
/*
 * The selection step that query_answer() makes before every answer, in the scope the command
 * needs, so that all answers pick the same processes and samples for the same request and fail
 * the same way: the windows in range, then the processes (one incarnation of the pid, its
 * descendants with children, or every process with samples), then the viewer's access to them,
 * then (for the answers over stacks) the samples per stack, and not_found when there are none.
 *
 * Internal to libprofq/query. A Selection owns its arrays (selection_done() frees them) and
 * holds ids into the store: valid while the store is not written.
 */
#pragma once

#include <json-c/json.h>
#include <stdint.h>

#include "protocol/protocol.h"
#include "query/query.h"
#include "store/store.h"

/* The windows of the store that overlap the request's range. */
typedef struct Range {
	size_t first, end;   /* window indices [first, end); first == end: none */
	uint64_t elapsed_ns; /* wall time the windows in range cover */
	/* What the windows span, realtime: the first one's start, the last one's end (the open
	 * window ends now); 0 without windows. */
	int64_t start_ns, end_ns;
	uint64_t lost; /* samples the windows lost (the daemon busy): of any process */
} Range;

/* The windows that overlap [since_ns, until_ns) (realtime), as of now_ns. */
void query_range_between(const Store *store, int64_t now_ns, int64_t since_ns, int64_t until_ns,
			 Range *ret);

/* The wall time of the range's windows that p was alive for (from its start to its exit, or
 * on): what its CPU time in the range is a share of. */
uint64_t query_range_alive_ns(const Store *store, const Range *range, const StoreProc *p,
			      int64_t now_ns);

typedef enum SelectScope {
	/* Any known incarnation of the pid, sampled or not, over every window (time). */
	SELECT_KNOWN,
	/* Among the processes with samples in the request's range (ps). */
	SELECT_SAMPLED,
	/* As SELECT_SAMPLED, and the samples of the selection (of req->tid when given) per stack;
	 * a selection without samples is not_found (top, tree, lines, stacks). */
	SELECT_STACKS,
	/* Among the processes with memory points in the request's range (mem). */
	SELECT_MEM,
} SelectScope;

typedef struct Selection {
	Range range;	/* SELECT_KNOWN: every window, elapsed_ns 0 */
	uint8_t *procs; /* ProcId -> 1 when selected (store_proc_id_limit() entries) */
	ProcId proc;	/* the incarnation of req->pid; 0 without a pid */
	/* With req->match: the processes that match and are selected, and those that match but
	 * the viewer may not see (left out). 0 without. */
	size_t matched, hidden;
	/* SELECT_STACKS only (else NULL and 0): */
	/* StackId -> samples (EVENT_CPU), bytes (EVENT_FAULTS), else nanoseconds */
	uint64_t *counts;
	size_t n_stacks;	 /* entries in counts: store_stack_id_limit() */
	uint64_t total;		 /* their sum, > 0 */
	uint64_t mean_period_ns; /* of those samples, weighted by their number in each window */
} Selection;

/*
 * Selects what req covers, for a validated Request (time, tree, lines and stacks carry a pid).
 * With a pid: the incarnation started at req->start_ns (within a second), else the newest; in
 * SELECT_SAMPLED and SELECT_STACKS only among those with samples in range, except that with
 * req->children the root needs none of its own (a shell waiting for its children); with
 * req->children also its descendants the viewer may see (with samples in range, if scoped so).
 * Without a pid: every process with samples in range that the viewer may see (of req->uid
 * with req->has_uid); with req->match only those that match it (in SELECT_KNOWN any known one
 * that matches), and not_found (or denied, when every one that matches is hidden) without any.
 *
 * Returns 0 and fills *ret, or 0 and sets *ret_error to the answer to give instead (not_found,
 * denied), or -ENOMEM. *ret is written only when *ret_error is NULL.
 */
int query_select(const QueryContext *ctx, const Request *req, SelectScope scope, Selection *ret,
		 json_object **ret_error);
void selection_done(Selection *s);

/* Whether process p matches every field of m that is given (protocol.h). */
bool query_proc_matches(const Store *store, const RequestMatch *m, const StoreProc *p);

typedef struct StackCount {
	StackId stack;
	uint64_t count;
} StackCount;

/* The span of the selected processes' lives, realtime: from the first start to the last exit,
 * INT64_MAX while one runs. */
void selection_life(const Store *store, const Selection *s, int64_t *ret_start, int64_t *ret_end);

/* The stacks of a SELECT_STACKS selection with their samples, hottest first, then by id. */
int selection_stacks_by_count(const Selection *s, StackCount **ret, size_t *ret_n);

typedef struct CommStackCount {
	StrId comm; /* of the process */
	StackId stack;
	uint64_t count;
} CommStackCount;

/* The stacks of a SELECT_STACKS selection per name (comm) of the process that ran them, with
 * their samples, hottest first (then by comm and stack): what answers grouped by comm walk. */
int selection_stacks_by_comm(const QueryContext *ctx, const Request *req, const Selection *s,
			     CommStackCount **ret, size_t *ret_n);

/* Whether entries of kind count in a profile of event. */
bool query_event_has(Event event, uint32_t kind);
/* What an entry weighs in a profile of event: CPU samples for EVENT_CPU; bytes for
 * EVENT_FAULTS; nanoseconds for the others (CPU samples x the window's period); 0 for entries
 * of other kinds. */
uint64_t query_entry_weight(Event event, const Window *w, const WindowEntry *e);

/* The end of a window for a query made at now_ns: the open window ends now. */
int64_t window_effective_end(const Window *w, int64_t now_ns);
