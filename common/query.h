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

#include "protocol.h"
#include "store.h"

typedef struct Viewer {
	uint32_t uid;
	bool privileged; /* sees every process and kernel addresses */
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

/* Displays a frame's function: its name, or "module+0xaddr" when unresolved. */
int query_frame_name(const Store *store, const StoreFrame *f, bool show_kernel_addresses, char *buf,
		     size_t len);
