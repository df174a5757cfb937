/* SPDX-License-Identifier: MIT */
/*
 * Server: the query socket (profqd(8), ACCESS CONTROL). A Unix stream socket, mode 0666; each
 * client sends one JSON request per line and gets one JSON answer per line, in order. Requests are
 * validated here (protocol.h) before the handler sees them; the handler authorises them with the
 * peer credentials (SO_PEERCRED). Bounded everywhere: request size, number of clients (in all and
 * per uid), idle time. A client that does not read its answers stalls only itself. Nothing a client
 * does blocks the loop. Not thread-safe.
 */
#pragma once

#include <json-c/json.h>
#include <sys/socket.h>

#include "protocol/protocol.h"
#include "service/access.h"
#include "service/loop.h"

typedef struct Server Server;

/* Answers a valid request; *ret is the answer or an error answer. Negative errno: no answer
 * (the client gets an "unavailable" error). -EINPROGRESS after server_defer(): answered later
 * with server_complete(). */
typedef int (*server_handler_t)(void *userdata, const Peer *peer, const Request *req,
				json_object **ret);

typedef struct ServerOptions {
	const char *path;
	unsigned max_clients;	     /* in all, but root: see SERVER_ROOT_RESERVE */
	unsigned max_per_uid;	     /* per peer uid (root is exempt) */
	uint64_t idle_timeout_ns;    /* a client with no progress for this long is dropped */
	uint64_t request_timeout_ns; /* a request must arrive complete within this, once begun */
	size_t max_answer;	     /* larger answers are replaced by an error (query cost) */
} ServerOptions;

/* Root may connect even when max_clients others are: this many more, so that nobody can lock
 * the administrator out. */
#define SERVER_ROOT_RESERVE 16

typedef struct ServerStats {
	uint64_t clients;  /* connected now */
	uint64_t accepted; /* in all */
	uint64_t refused;  /* over a connection cap */
	uint64_t requests;
	uint64_t bad_requests;
	uint64_t timeouts;	   /* idle or slow clients dropped */
	uint64_t oversize_answers; /* answers refused as larger than max_answer */
} ServerStats;

int server_new(Loop *loop, const ServerOptions *opts, server_handler_t handler, void *userdata,
	       Server **ret);
/* Closes every client and the socket, and removes the socket file. */
Server *server_free(Server *s);

/* Drops clients idle for longer than the timeout. now_ns: CLOCK_MONOTONIC. */
void server_tick(Server *s, uint64_t now_ns);
void server_stats(const Server *s, ServerStats *ret);

/*
 * Called from the handler: the request it is answering will be answered later. Returns the
 * id to give server_complete() (never 0), and the handler then returns -EINPROGRESS. The
 * client's later requests wait (answers stay in order), and it is not timed out meanwhile:
 * whoever answers keeps time. 0 outside a handler.
 */
uint64_t server_defer(Server *s);
/*
 * Answers deferred request id (the answer is serialized now; the caller keeps its reference).
 * -ENOENT when that client has gone meanwhile (nothing to do); 0 otherwise, also when the
 * client turned out to be gone while writing to it.
 */
int server_complete(Server *s, uint64_t id, json_object *answer);

static inline void server_freep(Server **s)
{
	server_free(*s);
}
