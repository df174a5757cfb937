/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include "base/json-util.h"
#include "base/log.h"
#include "base/macro.h"
#include "service/server.h"

typedef struct Client Client;

struct Client {
	Server *server;
	int fd;
	LoopSource *src;
	Peer peer;
	char *in;
	size_t in_len, in_allocated;
	char *out;
	size_t out_len, out_pos;
	bool closing;	   /* close once the output is flushed */
	uint64_t deferred; /* the id of its request being answered later (server_defer); 0: none */
	uint64_t last_progress_ns;
	uint64_t request_start_ns; /* first byte of the pending request; 0: none pending */
	Client *prev, *next;
};

struct Server {
	Loop *loop;
	int fd;
	LoopSource *src;
	char *path;
	ServerOptions opts;
	server_handler_t handler;
	void *userdata;
	Client *clients;
	Client *answering; /* whose request the handler is answering now */
	uint64_t last_deferred;
	ServerStats stats;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

static void client_free(Client *c)
{
	Server *s = c->server;

	loop_remove(s->loop, c->src);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c->in);
	free(c->out);
	free(c);
	s->stats.clients--;
}

/*
 * Writes what is pending. Returns 1 when all is written (the client reads again), 0 when the
 * rest waits for EPOLLOUT, or -ECONNRESET when the client is gone (freed: hung up, or closing).
 */
static int client_flush(Client *c)
{
	int r;

	while (c->out_pos < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_pos, c->out_len - c->out_pos,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				/* Stop reading until the client takes its answer. */
				r = loop_modify(c->server->loop, c->src, EPOLLOUT);
				if (r < 0)
					break;
				return 0;
			}
			break;
		}
		c->out_pos += (size_t)n;
		c->last_progress_ns = now_ns();
	}
	if (c->out_pos < c->out_len || c->closing) {
		client_free(c);
		return -ECONNRESET;
	}
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_pos = 0;
	if (loop_modify(c->server->loop, c->src, EPOLLIN) < 0) {
		client_free(c);
		return -ECONNRESET;
	}
	return 1;
}

/*
 * Queues the answer as one line. A document that lost a member to a failed allocation since
 * failures_before (json-util.h), or that cannot be printed, is never sent: the client gets
 * JSON_OUT_OF_MEMORY instead of a partial answer.
 */
static int client_queue(Client *c, json_object *answer, uint64_t failures_before)
{
	static const char too_large[] =
		"{\"error\":\"The answer is too large: ask for less (limit, "
		"range, pid)\",\"code\":\"bad_request\"}";
	const char *text = NULL;
	size_t len;

	if (answer && json_alloc_failures() == failures_before)
		text = json_object_to_json_string_ext(answer, JSON_C_TO_STRING_PLAIN);
	if (!text)
		text = JSON_OUT_OF_MEMORY;
	len = strlen(text);
	if (c->server->opts.max_answer && len > c->server->opts.max_answer) {
		c->server->stats.oversize_answers++;
		text = too_large;
		len = sizeof(too_large) - 1;
	}

	c->out = malloc(len + 1);
	if (!c->out)
		return -ENOMEM;
	memcpy(c->out, text, len);
	c->out[len] = '\n';
	c->out_len = len + 1;
	c->out_pos = 0;
	return 0;
}

static int client_answer_line(Client *c, const char *line, size_t len)
{
	Server *s = c->server;
	_cleanup_json_ json_object *answer = NULL;
	_cleanup_free_ char *error = NULL;
	uint64_t failures = json_alloc_failures();
	Request req;
	int r;

	s->stats.requests++;
	r = request_parse(line, len, &req, &error);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		s->stats.bad_requests++;
		answer = error_answer_new(ERROR_BAD_REQUEST, "%s", error ? error : "Bad request");
	} else {
		s->answering = c;
		r = s->handler(s->userdata, &c->peer, &req, &answer);
		s->answering = NULL;
		if (r == -EINPROGRESS && c->deferred) {
			/* Answered later by server_complete(): nothing to queue now. */
			json_object_put(TAKE_PTR(answer));
			return 0;
		}
		c->deferred = 0;
		if (r < 0 || !answer) {
			json_object_put(answer);
			answer = error_answer_new(ERROR_UNAVAILABLE, "Failed to answer: %s",
						  strerror(r < 0 ? -r : EIO));
		}
	}
	return client_queue(c, answer, failures);
}

/*
 * Answers the complete lines in the input, one at a time: the next only once the previous
 * answer is written. 0 or a negative errno; -ECONNRESET means the client is gone.
 */
static int client_pump(Client *c)
{
	for (;;) {
		char *nl;
		int r;

		/* Answers go in order: the next request waits for the deferred one. */
		if (c->deferred)
			return 0;
		nl = memchr(c->in, '\n', c->in_len);
		if (!nl) {
			_cleanup_json_ json_object *answer = NULL;
			uint64_t failures = json_alloc_failures();

			if (c->in_len <= PROTOCOL_MAX_REQUEST)
				return 0;
			/* No newline within the limit: refuse and hang up. */
			c->server->stats.bad_requests++;
			answer = error_answer_new(ERROR_BAD_REQUEST,
						  "Request is larger than %u bytes",
						  PROTOCOL_MAX_REQUEST);
			if (client_queue(c, answer, failures) < 0)
				return -ENOMEM;
			c->closing = true;
			return client_flush(c);
		}
		r = client_answer_line(c, c->in, (size_t)(nl - c->in));
		if (r < 0)
			return r;
		c->in_len -= (size_t)(nl + 1 - c->in);
		memmove(c->in, nl + 1, c->in_len);
		/* What is left is the start of the next request. */
		c->request_start_ns = c->in_len > 0 ? now_ns() : 0;
		if (c->deferred)
			return 0;
		r = client_flush(c);
		if (r <= 0)
			return r;
	}
}

static int client_read(Client *c)
{
	const size_t max = PROTOCOL_MAX_REQUEST + 1;
	ssize_t n;

	/* A client waiting for a deferred answer that sent a full buffer more: it waits until
	 * the answer is written (client_flush() watches for input again). */
	if (c->deferred && c->in_len >= max)
		return loop_modify(c->server->loop, c->src, 0);
	if (GREEDY_REALLOC(c->in, c->in_allocated, MIN(c->in_len + 4096, max)) < 0)
		return -ENOMEM;
	n = recv(c->fd, c->in + c->in_len, MIN(c->in_allocated, max) - c->in_len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0) {
		client_free(c);
		return -ECONNRESET;
	}
	if (c->in_len == 0)
		c->request_start_ns = now_ns();
	c->in_len += (size_t)n;
	c->last_progress_ns = now_ns();
	return client_pump(c);
}

static int on_client(LoopSource *src, int fd, uint32_t events, void *userdata)
{
	Client *c = userdata;
	int r;

	(void)src;
	(void)fd;
	if (events & EPOLLOUT) {
		r = client_flush(c);
		if (r == 1)
			r = client_pump(c);
	} else {
		r = client_read(c);
	}
	if (r == -ENOMEM) {
		/* Shed this client rather than the daemon. */
		log_warning("Dropping a client: out of memory");
		client_free(c);
	}
	return 0;
}

static unsigned clients_of_uid(const Server *s, uid_t uid)
{
	unsigned n = 0;

	for (const Client *c = s->clients; c; c = c->next)
		if (c->peer.cred.uid == uid)
			n++;
	return n;
}

/* Whether one more client of this uid fits under the caps. */
static bool client_fits(const Server *s, uid_t uid)
{
	if (uid == 0)
		return s->stats.clients < (uint64_t)s->opts.max_clients + SERVER_ROOT_RESERVE;
	return s->stats.clients < s->opts.max_clients &&
	       clients_of_uid(s, uid) < s->opts.max_per_uid;
}

static int on_accept(LoopSource *src, int fd, uint32_t events, void *userdata)
{
	Server *s = userdata;

	(void)src;
	(void)events;
	for (;;) {
		Peer peer;
		Client *c;
		int cfd, r;

		cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
				return 0;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				log_warning_errno(negative_errno(),
						  "Failed to accept a client: %m");
				return 0;
			}
			return log_error_errno(negative_errno(), "Failed to accept a client: %m");
		}
		if (peer_from_socket(cfd, &peer) < 0) {
			close(cfd);
			continue;
		}
		if (!client_fits(s, peer.cred.uid)) {
			static const char msg[] =
				"{\"error\":\"Too many clients\",\"code\":\"unavailable\"}\n";
			s->stats.refused++;
			(void)!send(cfd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			close(cfd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(cfd);
			continue;
		}
		*c = (Client){ .server = s, .fd = cfd, .peer = peer, .last_progress_ns = now_ns() };
		r = loop_add(s->loop, cfd, EPOLLIN, on_client, c, &c->src);
		if (r < 0) {
			close(cfd);
			free(c);
			continue;
		}
		c->next = s->clients;
		if (s->clients)
			s->clients->prev = c;
		s->clients = c;
		s->stats.clients++;
		s->stats.accepted++;
	}
}

/* Is something already listening at path? */
static bool socket_in_use(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return false;
	strncpy(sa.sun_path, path, sizeof(sa.sun_path) - 1);
	return connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
}

int server_new(Loop *loop, const ServerOptions *opts, server_handler_t handler, void *userdata,
	       Server **ret)
{
	_cleanup_(server_freep) Server *s = NULL;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int r;

	if (strlen(opts->path) >= sizeof(sa.sun_path))
		return log_error_errno(-ENAMETOOLONG, "Failed to use socket '%s': path too long",
				       opts->path);
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->fd = -1;
	s->loop = loop;
	s->opts = *opts;
	s->handler = handler;
	s->userdata = userdata;

	if (lstat(opts->path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return log_error_errno(-EEXIST,
					       "Failed to create socket '%s': a file that is not a "
					       "socket is in the way",
					       opts->path);
		if (socket_in_use(opts->path))
			return log_error_errno(-EADDRINUSE,
					       "Failed to create socket '%s': another profqd is "
					       "listening on it",
					       opts->path);
		(void)unlink(opts->path);
	}
	s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->fd < 0)
		return log_error_errno(negative_errno(), "Failed to create a socket: %m");
	memcpy(sa.sun_path, opts->path, strlen(opts->path));
	if (bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return log_error_errno(negative_errno(), "Failed to bind socket '%s': %m",
				       opts->path);
	s->path = strdup(opts->path);
	if (!s->path)
		return -ENOMEM;
	/* Everyone may connect; each request is authorised by the peer's credentials. */
	if (chmod(opts->path, 0666) < 0)
		return log_error_errno(negative_errno(), "Failed to chmod socket '%s': %m",
				       opts->path);
	if (listen(s->fd, 128) < 0)
		return log_error_errno(negative_errno(), "Failed to listen on socket '%s': %m",
				       opts->path);
	r = loop_add(loop, s->fd, EPOLLIN, on_accept, s, &s->src);
	if (r < 0)
		return log_error_errno(r, "Failed to watch socket '%s': %m", opts->path);
	*ret = TAKE_PTR(s);
	return 0;
}

Server *server_free(Server *s)
{
	if (!s)
		return NULL;
	while (s->clients)
		client_free(s->clients);
	loop_remove(s->loop, s->src);
	if (s->fd >= 0)
		close(s->fd);
	if (s->path)
		(void)unlink(s->path);
	free(s->path);
	free(s);
	return NULL;
}

void server_tick(Server *s, uint64_t now)
{
	Client *c = s->clients, *next;

	for (; c; c = next) {
		next = c->next;
		/* Waiting for a deferred answer is not idling: its answerer keeps time. */
		if (c->deferred)
			continue;
		/* Idle, or feeding a request so slowly that it never completes. */
		if (now - c->last_progress_ns > s->opts.idle_timeout_ns ||
		    (s->opts.request_timeout_ns && c->request_start_ns &&
		     now - c->request_start_ns > s->opts.request_timeout_ns)) {
			s->stats.timeouts++;
			client_free(c);
		}
	}
}

uint64_t server_defer(Server *s)
{
	if (!s->answering)
		return 0;
	s->answering->deferred = ++s->last_deferred;
	return s->last_deferred;
}

int server_complete(Server *s, uint64_t id, json_object *answer)
{
	Client *c = s->clients;
	int r;

	while (c && c->deferred != id)
		c = c->next;
	if (!c || id == 0)
		return -ENOENT;
	c->deferred = 0;
	c->last_progress_ns = now_ns();
	r = client_queue(c, answer, json_alloc_failures());
	if (r < 0) {
		client_free(c);
		return r;
	}
	/* Then whatever the client sent meanwhile. */
	r = client_flush(c);
	if (r == 1)
		r = client_pump(c);
	if (r == -ENOMEM)
		client_free(c);
	return r == -ECONNRESET ? 0 : MIN(r, 0);
}

void server_stats(const Server *s, ServerStats *ret)
{
	*ret = s->stats;
}
