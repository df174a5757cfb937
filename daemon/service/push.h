/* SPDX-License-Identifier: MIT */
/*
 * Pusher: one push target (profqd --push URL, profqd(8) PUSHING TO A BACKEND). Every upload
 * (a gzipped pprof profile and the query string of Pyroscope's ingest API) is first written
 * to the target's spool directory, one file per window, then sent by a thread of the target's
 * own with libcurl, oldest first: POST URL/ingest?QUERY, the profile as the multipart field
 * "profile". An upload answered for good is marked so in its file, which goes once all are.
 *
 * An upload leaves the spool when the backend accepts it (2xx) or refuses it for good (a 4xx
 * other than 408 and 429: counted, logged once per target). Anything else (no connection,
 * timeouts, 5xx, 408, 429) is retried after an exponential backoff with jitter, and nothing
 * behind it is sent meanwhile, so uploads arrive in order. The spool is bounded in bytes; the
 * oldest windows are dropped (their uploads counted) to make room. Uploads spooled by an
 * earlier run (one killed with kill -9 included) are found at start and sent first.
 *
 * pusher_batch_*() and pusher_stats() are called from one thread (profqd's loop); they never
 * wait for the network: the sending thread holds the target's lock only between transfers.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define PUSH_ERROR_MAX 256 /* CURL_ERROR_SIZE */

typedef struct PushOptions {
	const char *url;	 /* http:// or https://, without a query; "/ingest" is appended */
	const char *spool_dir;	 /* created if missing; the target's alone */
	const char *credentials; /* "user:password" (basic auth) or a token (bearer); NULL */
	uint64_t max_spool;	 /* bytes of spooled uploads */
	uint64_t connect_timeout_ns;
	uint64_t timeout_ns;	 /* a whole transfer */
	uint64_t backoff_min_ns; /* the first retry's delay; doubled per failure ... */
	uint64_t backoff_max_ns; /* ... up to this */
} PushOptions;

typedef struct PushStats {
	uint64_t sent;			 /* uploads the backend accepted */
	uint64_t sent_bytes;		 /* their bodies' bytes */
	uint64_t queued;		 /* uploads in the spool, the one in flight included */
	uint64_t queued_bytes;		 /* their files' bytes */
	uint64_t dropped;		 /* dropped from a full spool (or unreadable there) */
	uint64_t rejected;		 /* refused by the backend for good (4xx) */
	uint64_t failures;		 /* attempts that will be retried */
	int64_t last_success_ns;	 /* realtime; 0: never */
	int64_t last_error_ns;		 /* realtime; 0: never */
	char last_error[PUSH_ERROR_MAX]; /* "" without one */
} PushStats;

typedef struct Pusher Pusher;

/* Creates the spool directory, reads what it holds and starts the sending thread. Logs its
 * failures. */
int pusher_new(const PushOptions *o, Pusher **ret);
/* Stops the thread (a transfer in flight is aborted within a second); the spool stays. */
Pusher *pusher_free(Pusher *p);
/*
 * Spools the uploads of one window, as one batch: begin, add each upload (query without '?':
 * name=...&from=..., and the gzipped pprof body), commit. The batch is queued at commit; a
 * batch without uploads leaves nothing. Failures are counted (as dropped) and logged once by
 * the Pusher; the return values only say what happened. Never waits for a transfer.
 */
void pusher_batch_begin(Pusher *p);
int pusher_batch_add(Pusher *p, const char *query, const void *body, size_t len);
int pusher_batch_commit(Pusher *p);
void pusher_stats(Pusher *p, PushStats *ret);
const char *pusher_url(const Pusher *p);

static inline void pusher_freep(Pusher **p)
{
	pusher_free(*p);
}
