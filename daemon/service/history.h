/* SPDX-License-Identifier: MIT */
/*
 * History: answers the queries whose range reaches back past the oldest window in memory.
 *
 * Windows evicted to stay within --max-memory stay in the state dir until --retention or
 * --max-disk ends them. Reading them back takes time (an hour of segments: a few hundred
 * milliseconds) and memory the daemon's budget does not have, so each such query runs in a
 * forked worker: it starts from a copy-on-write view of the store as of the request, loads the
 * older windows from disk into it (records of processes in memory are kept as they are, being
 * newer), answers with the same query engine and writes the answer to a pipe. The loop relays it
 * to the client when the worker is done; sampling and other clients go on meanwhile.
 *
 * Bounded: at most HISTORY_MAX_WORKERS at a time (more get an "unavailable" answer), each with
 * a time limit (killed after it) and a memory limit for what it loads (the oldest windows are
 * left out beyond it, and the answer says from when it covers the range), answers of at most
 * max_answer bytes. A worker that fails or dies gives its client an "unavailable" answer. Not
 * thread-safe.
 */
#pragma once

#include <json-c/json.h>
#include <stdint.h>

#include "query/query.h"
#include "service/loop.h"

#define HISTORY_MAX_WORKERS 2

typedef struct History History;

typedef struct HistoryOptions {
	const char *state_dir;
	size_t max_memory;   /* bytes a worker may add to the store reading disk */
	uint64_t timeout_ns; /* a worker is killed after this long */
	size_t max_answer;   /* bytes of JSON */
} HistoryOptions;

typedef struct HistoryStats {
	uint64_t queries;  /* workers started */
	uint64_t failed;   /* ... that gave no answer (died, killed, bad output) */
	uint64_t timeouts; /* ... killed for taking too long */
	uint64_t busy;	   /* queries refused: HISTORY_MAX_WORKERS were running */
	uint64_t running;  /* now */
} HistoryStats;

/*
 * Called from the loop once a worker is done: answer is its answer, or an error answer when it
 * failed; borrowed for the call. token is the caller's, from history_start().
 */
typedef void (*history_done_t)(void *userdata, uint64_t token, json_object *answer);

int history_new(Loop *loop, const HistoryOptions *opts, history_done_t done, void *userdata,
		History **ret);
/* Kills and reaps the workers still running; their done() is not called. */
History *history_free(History *h);

/*
 * Answers req in a worker over ctx's store plus the windows on disk that end at or after
 * not_before_ns. deleted_ns: the end of the newest window the disk budget deleted (INT64_MIN:
 * none); a range reaching before it is said to be incomplete. 0 when started (done() follows),
 * -EBUSY when HISTORY_MAX_WORKERS run already, or another negative errno.
 */
int history_start(History *h, const QueryContext *ctx, const Request *req, int64_t not_before_ns,
		  int64_t deleted_ns, uint64_t token);

/* Kills the workers over their time limit. now_ns: CLOCK_MONOTONIC. */
void history_tick(History *h, uint64_t now_ns);
void history_stats(const History *h, HistoryStats *ret);

static inline void history_freep(History **h)
{
	history_free(*h);
}
