/* SPDX-License-Identifier: MIT */
/*
 * The query engine: answers a validated Request from a Store with the JSON documents of SPEC
 * §11. Used by profqd for socket clients and by profq for offline queries of a state dir, so
 * both give the same answers. Reads the store only; not thread-safe against a writer.
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
 * Answers ps and top. *ret is the answer or an error answer ({"error", "code"}): not_found when
 * the range holds no samples for the selection, denied when the viewer may not see the pid.
 * Returns 0, or -ENOMEM (no answer), or -EOPNOTSUPP for commands the engine does not answer.
 */
int query_answer(const QueryContext *ctx, const Request *req, json_object **ret);

/*
 * Whether the viewer may see the process (SPEC §10): privileged viewers see all; the others the
 * processes whose real uid is theirs and that their owner could read /proc/PID/maps of when
 * sampled (not PROC_PRIVATE). Kernel threads belong to root. NULL: no.
 */
bool query_proc_visible(const Viewer *viewer, const StoreProc *p);

/* Displays a frame's function as the viewer may see it: its name, or "module+0xaddr" when
 * unresolved; for unprivileged viewers a kernel frame is its name or "[kernel]", never an
 * address. */
int query_frame_name(const Store *store, const StoreFrame *f, const Viewer *viewer, char *buf,
		     size_t len);
