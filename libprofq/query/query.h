/* SPDX-License-Identifier: MIT */
/*
 * The query engine: answers a validated Request (request_parse()) from a Store with the JSON
 * answers of ps, top, time, tree, lines and stacks (the one request behind the folded, flame and
 * pprof exports) that docs/profq.1 describes. Used by profqd for socket clients and by profq for
 * offline queries of a state dir, so both give the same answers.
 *
 * Every answer starts from the same selection: the windows in the request's range, the
 * processes it names, of those the ones the viewer may see, and their samples.
 *
 * Reads the store only and keeps no reference to it; an answer is the caller's to free
 * (json_object_put()). Not thread-safe against a writer of the store.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "protocol/protocol.h"
#include "store/store.h"

typedef struct Viewer {
	uint32_t uid;
	bool privileged;   /* sees every process and kernel addresses */
	bool kernel_names; /* unprivileged: kernel frames by name (else one "[kernel]" frame) */
} Viewer;

typedef struct QueryContext {
	const Store *store;
	int64_t now_ns; /* realtime; ranges are relative to it */
	Viewer viewer;
} QueryContext;

/*
 * Answers req as the viewer of ctx may see it. *ret is the answer, or an error answer
 * ({"error", "code"}): not_found when no process matches, or for top, tree, lines and stacks when
 * the selection has no samples in range (lines with a function: none in it); denied when the
 * viewer may not see the pid's process. Returns 0, or -ENOMEM (no answer), or -EOPNOTSUPP for
 * commands the engine does not answer (status: its callers answer it).
 */
int query_answer(const QueryContext *ctx, const Request *req, json_object **ret);

/*
 * Whether the viewer may see the process (docs/profqd.8, ACCESS CONTROL): privileged viewers see
 * all; the others the processes whose real uid is theirs and that their owner could read
 * /proc/PID/maps of when sampled (not PROC_PRIVATE). Kernel threads belong to root. NULL: no.
 */
bool query_proc_visible(const Viewer *viewer, const StoreProc *p);

/* Writes a frame's function into buf as the viewer may see it: its name, or "module+0xaddr"
 * when unresolved; for unprivileged viewers a kernel frame is its name or "[kernel]", never an
 * address. Returns what snprintf() does. */
int query_frame_name(const Store *store, const StoreFrame *f, const Viewer *viewer, char *buf,
		     size_t len);
