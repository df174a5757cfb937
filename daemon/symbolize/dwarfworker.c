/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <limits.h>
#include <linux/capability.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "base/macro.h"
#include "base/timeutil.h"
#include "service/sandbox.h"
#include "symbolize/dwarfworker.h"

/* A debug search path or a binary's path, in a request. */
#define REQUEST_STRING_MAX 16384u
/* A CU body: what a CU at dwarfinfo.c's bounds takes, with room to spare. */
#define BODY_MAX (512ull << 20)
/* DwarfInfos the child keeps open; the least recently used goes past this. */
#define CHILD_OPEN_MAX 32u
/* The child lets libdw go for a binary not asked about for this long. */
#define CHILD_IDLE_NS (10 * NSEC_PER_SEC)

enum {
	REQ_ASK,    /* open (if not yet), and the CU of vaddr unless open_only */
	REQ_FORGET, /* the DwarfInfo is gone */
};

typedef struct WireRequest {
	uint32_t kind, open_only;
	uint64_t id, vaddr;
	uint32_t path_len, debug_path_len; /* the strings follow, no NUL */
	uint32_t has_expect, pad;
	uint64_t expect_dev, expect_ino;
} WireRequest;

typedef struct WireAnswer {
	uint64_t id;
	int32_t open_result, result;
	int64_t dw_delta;
	uint64_t body_len;		       /* in the memfd that comes with it */
	uint32_t debug_file_len, has_debug_st; /* the path follows, no NUL */
	struct stat debug_st;
	/* What the child's openings cost for this request. */
	uint64_t opens, open_ns, refused, faults;
} WireAnswer;

#define REQUEST_MAX (sizeof(WireRequest) + 2 * REQUEST_STRING_MAX)
#define ANSWER_MAX (sizeof(WireAnswer) + PATH_MAX)

typedef struct Client {
	uint64_t id;
	DwarfInfo *d;
} Client;

struct DwarfWorker {
	DwarfWorkerOptions o;
	DwarfCounters *counters;
	Sandbox child;
	Client *clients; /* by id, ascending */
	size_t n_clients, allocated_clients;
	uint64_t next_id;
	uint64_t *queue; /* ids: first the openings (and a request sent again), then the CUs */
	size_t n_queue, allocated_queue;
	size_t n_first;	    /* the openings at the front */
	uint64_t in_flight; /* 0: none */
	uint64_t retried;   /* the last request sent again after its child was killed */
	uint64_t sent_ns;
	uint64_t wait_left_ns;
	uint8_t *buf;
	DwarfWorkerStats stats;
};

/* ---- the child ---- */

typedef struct Open {
	uint64_t id, used;
	DwarfInfo *d; /* NULL: opening failed */
	int result;
} Open;

typedef struct Child {
	Open open[CHILD_OPEN_MAX];
	size_t n_open;
	DwarfCounters counters;
} Child;

static void child_forget(Child *c, size_t i)
{
	dwarf_info_free(c->open[i].d);
	c->open[i] = c->open[--c->n_open];
}

/* The binary of request q, opened (from fd) if it is not. */
static Open *child_open(Child *c, const WireRequest *q, const char *path, const char *debug_path,
			int fd)
{
	struct stat expect = { .st_dev = q->expect_dev, .st_ino = q->expect_ino };
	size_t oldest = 0;
	Open *o;

	for (size_t i = 0; i < c->n_open; i++) {
		if (c->open[i].id == q->id)
			return &c->open[i];
		if (c->open[i].used < c->open[oldest].used)
			oldest = i;
	}
	if (c->n_open == CHILD_OPEN_MAX)
		child_forget(c, oldest);
	o = &c->open[c->n_open++];
	*o = (Open){ .id = q->id };
	o->result = dwarf_info_open_expecting(fd, path, debug_path, q->has_expect ? &expect : NULL,
					      &c->counters, &o->d);
	return o;
}

/* The answer's body in a memfd: its descriptor, or -1. */
static int body_fd(const void *body, size_t len)
{
	int fd = memfd_create("profq-dwarf", MFD_CLOEXEC);
	size_t off = 0;

	if (fd < 0)
		return -1;
	while (off < len) {
		ssize_t n = write(fd, (const uint8_t *)body + off, len - off);

		if (n <= 0) {
			close(fd);
			return -1;
		}
		off += (size_t)n;
	}
	return fd;
}

static void child_answer(int sock, Child *c, const WireRequest *q, const char *path,
			 const char *debug_path, int fd, uint8_t *buf)
{
	DwarfCounters before = c->counters;
	WireAnswer a = { .id = q->id, .result = -ENOENT };
	_cleanup_free_ void *body = NULL;
	_cleanup_close_ int bfd = -1;
	size_t len = 0, off = sizeof(a);
	Open *o = child_open(c, q, path, debug_path, fd);
	const char *dbg;

	o->used = now_mono_ns();
	a.open_result = o->result;
	if (o->d) {
		a.dw_delta = dwarf_info_dw_delta(o->d);
		if (!q->open_only)
			a.result = dwarf_info_export_cu(o->d, q->vaddr, &body, &len);
		dbg = dwarf_info_debug_file(o->d);
		if (dbg && dwarf_info_debug_stat(o->d, &a.debug_st) == 0) {
			a.debug_file_len = (uint32_t)strnlen(dbg, PATH_MAX);
			a.has_debug_st = 1;
			memcpy(buf + off, dbg, a.debug_file_len);
			off += a.debug_file_len;
		}
	}
	if (body) {
		bfd = body_fd(body, len);
		if (bfd < 0)
			a.result = -ENOMEM;
		else
			a.body_len = len;
	}
	a.opens = c->counters.opens - before.opens;
	a.open_ns = c->counters.open_ns - before.open_ns;
	a.refused = c->counters.refused - before.refused;
	a.faults = c->counters.faults - before.faults;
	memcpy(buf, &a, sizeof(a));
	if (sandbox_send(sock, buf, off, bfd, 0) < 0)
		_exit(0);
}

/*
 * The child: answers each request until its end of the pair closes. libdw's state for a binary
 * not asked about for a while is let go (its CU indexes went to the owner as they were built).
 */
static void child_main(int sock, void *userdata)
{
	uint8_t *buf = userdata;
	Child c = { 0 };

	for (;;) {
		struct pollfd p = { .fd = sock, .events = POLLIN };
		WireRequest q;
		_cleanup_close_ int fd = -1;
		ssize_t n;
		int ready = poll(&p, 1, 1000);

		if (ready == 0) {
			for (size_t i = 0; i < c.n_open; i++)
				if (c.open[i].d)
					(void)dwarf_info_release(c.open[i].d, CHILD_IDLE_NS);
			continue;
		}
		n = sandbox_recv(sock, buf, REQUEST_MAX, 0, &fd);
		if (n <= 0)
			return;
		if ((size_t)n < sizeof(q))
			continue;
		memcpy(&q, buf, sizeof(q));
		if (q.kind == REQ_FORGET) {
			for (size_t i = 0; i < c.n_open; i++)
				if (c.open[i].id == q.id) {
					child_forget(&c, i);
					break;
				}
			continue;
		}
		if (q.kind != REQ_ASK || fd < 0 || q.path_len > REQUEST_STRING_MAX ||
		    q.debug_path_len > REQUEST_STRING_MAX ||
		    (size_t)n != sizeof(q) + q.path_len + q.debug_path_len)
			return;
		{
			_cleanup_free_ char *path = strndup((char *)buf + sizeof(q), q.path_len);
			_cleanup_free_ char *debug_path = strndup(
				(char *)buf + sizeof(q) + q.path_len, q.debug_path_len);

			if (!path || !debug_path)
				return;
			child_answer(sock, &c, &q, path, debug_path, fd, buf);
		}
	}
}

/* ---- the owner's side ---- */

int dwarf_worker_new(const DwarfWorkerOptions *o, DwarfCounters *counters, DwarfWorker **ret)
{
	DwarfWorker *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	/* Requests go out from this buffer and answers come in to it; the child has its copy. */
	w->buf = malloc(MAX(REQUEST_MAX, ANSWER_MAX));
	if (!w->buf) {
		free(w);
		return -ENOMEM;
	}
	w->o = *o;
	w->counters = counters;
	w->next_id = 1;
	w->wait_left_ns = o->wait_ns;
	sandbox_init(&w->child);
	*ret = w;
	return 0;
}

DwarfWorker *dwarf_worker_free(DwarfWorker *w)
{
	if (!w)
		return NULL;
	sandbox_stop(&w->child, 100 * NSEC_PER_MSEC);
	sandbox_reap(&w->child);
	free(w->clients);
	free(w->queue);
	free(w->buf);
	free(w);
	return NULL;
}

static Client *client_find(DwarfWorker *w, uint64_t id)
{
	size_t lo = 0, hi = w->n_clients;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (w->clients[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < w->n_clients && w->clients[lo].id == id ? &w->clients[lo] : NULL;
}

int dwarf_worker_register(DwarfWorker *w, DwarfInfo *d, uint64_t *ret_id)
{
	if (GREEDY_REALLOC(w->clients, w->allocated_clients, w->n_clients + 1) < 0)
		return -ENOMEM;
	w->clients[w->n_clients++] = (Client){ .id = w->next_id, .d = d };
	*ret_id = w->next_id++;
	return 0;
}

void dwarf_worker_unregister(DwarfWorker *w, uint64_t id)
{
	Client *c = client_find(w, id);
	WireRequest q = { .kind = REQ_FORGET, .id = id };

	if (!c)
		return;
	memmove(c, c + 1, (size_t)(w->clients + w->n_clients - (c + 1)) * sizeof(*c));
	w->n_clients--;
	/* Its queued request goes when its turn comes (no client then). Not waited for: a child
	 * whose queue is full (busy on a request) keeps the binary until it is the least recently
	 * used. */
	if (w->child.pid > 0)
		(void)sandbox_send(w->child.sock, &q, sizeof(q), -1, MSG_DONTWAIT);
}

/* Queues id at position at. */
static int queue_insert(DwarfWorker *w, size_t at, uint64_t id)
{
	if (GREEDY_REALLOC(w->queue, w->allocated_queue, w->n_queue + 1) < 0)
		return -ENOMEM;
	memmove(w->queue + at + 1, w->queue + at, (w->n_queue - at) * sizeof(uint64_t));
	w->queue[at] = id;
	w->n_queue++;
	return 0;
}

int dwarf_worker_ask(DwarfWorker *w, uint64_t id)
{
	Client *c = client_find(w, id);
	DwarfRequestInfo ri;
	int r;

	if (!c)
		return -ENOENT;
	/* An opening (milliseconds, and every lookup of the binary waits for it) goes before the
	 * CUs (a big one takes a second): a new binary's samples are not held behind them. */
	dwarf_info_request_info(c->d, &ri);
	r = queue_insert(w, ri.open_only ? w->n_first : w->n_queue, id);
	if (r < 0)
		return r;
	w->n_first += ri.open_only;
	dwarf_worker_poll(w);
	return 0;
}

/* The request in flight failed with r: its binary's DWARF goes (never asked of libdw again). */
static void fail_in_flight(DwarfWorker *w, int r)
{
	Client *c = client_find(w, w->in_flight);

	if (c)
		dwarf_info_take_failure(c->d, r);
	w->in_flight = 0;
	w->stats.answered++;
	(void)sandbox_stop(&w->child, 0);
}

/*
 * The child ended while working on the request in flight. Killed (SIGKILL: from outside, say an
 * OOM kill or an admin, or before the request reached it), the request goes to the next child,
 * once; ended any other way (a crash, a fault, abort() at its heap's limit), it was the request.
 */
static void child_ended(DwarfWorker *w)
{
	int status = sandbox_stop(&w->child, 100 * NSEC_PER_MSEC);

	if (status >= 0 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL &&
	    w->retried != w->in_flight && queue_insert(w, 0, w->in_flight) >= 0) {
		w->n_first++;
		w->retried = w->in_flight;
		w->in_flight = 0;
		return;
	}
	w->stats.died++;
	fail_in_flight(w, -EIO);
}

int dwarf_worker_start(DwarfWorker *w)
{
	static const SandboxOptions base = { .keep_caps = 1ull << CAP_DAC_READ_SEARCH,
					     .open_read_only = true };
	SandboxOptions so = base;
	int r;

	if (w->child.pid > 0)
		return 0;
	so.max_data = w->o.max_data;
	r = sandbox_start(&w->child, &so, child_main, w->buf);
	if (r < 0)
		return r;
	w->stats.children++;
	return 0;
}

/* Sends c's request to the child (started if there is none): 0, or -errno. */
static int send_request(DwarfWorker *w, const Client *c)
{
	DwarfRequestInfo ri;
	WireRequest q;
	size_t path_len, debug_len;
	int r;

	dwarf_info_request_info(c->d, &ri);
	path_len = strnlen(ri.path, REQUEST_STRING_MAX);
	debug_len = strnlen(ri.debug_path, REQUEST_STRING_MAX);
	q = (WireRequest){ .kind = REQ_ASK,
			   .open_only = ri.open_only,
			   .id = c->id,
			   .vaddr = ri.vaddr,
			   .path_len = (uint32_t)path_len,
			   .debug_path_len = (uint32_t)debug_len,
			   .has_expect = ri.expect != NULL,
			   .expect_dev = ri.expect ? ri.expect->st_dev : 0,
			   .expect_ino = ri.expect ? ri.expect->st_ino : 0 };
	memcpy(w->buf, &q, sizeof(q));
	memcpy(w->buf + sizeof(q), ri.path, path_len);
	memcpy(w->buf + sizeof(q) + path_len, ri.debug_path, debug_len);
	for (int attempt = 0; attempt < 2; attempt++) {
		r = dwarf_worker_start(w);
		if (r < 0)
			return r;
		r = sandbox_send(w->child.sock, w->buf, sizeof(q) + path_len + debug_len, ri.fd, 0);
		if (r >= 0) {
			w->stats.requests++;
			return 0;
		}
		/* Gone since the last answer (killed from outside): once more with another. */
		sandbox_stop(&w->child, 0);
	}
	return r;
}

/* Sends the oldest queued request whose DwarfInfo is still there, if none is in flight. */
static void send_next(DwarfWorker *w)
{
	while (w->in_flight == 0 && w->n_queue > 0) {
		uint64_t id = w->queue[0];
		Client *c = client_find(w, id);
		int r;

		memmove(w->queue, w->queue + 1, --w->n_queue * sizeof(uint64_t));
		if (w->n_first > 0)
			w->n_first--;
		if (!c)
			continue;
		r = send_request(w, c);
		if (r < 0) {
			dwarf_info_take_failure(c->d, r);
			w->stats.answered++;
			continue;
		}
		w->in_flight = id;
		w->sent_ns = now_mono_ns();
	}
}

/* Reads the body the answer's memfd holds (a file the child wrote: its size checked, read, not
 * mapped, so that the child cannot fault us by shrinking it). */
static int body_read(int fd, uint64_t len, void **ret)
{
	_cleanup_free_ uint8_t *body = NULL;
	struct stat st;
	uint64_t off = 0;

	if (fd < 0 || len > BODY_MAX || fstat(fd, &st) < 0 || (uint64_t)st.st_size != len)
		return -EBADMSG;
	body = malloc(MAX(len, 1ull));
	if (!body)
		return -ENOMEM;
	while (off < len) {
		ssize_t n = pread(fd, body + off, len - off, (off_t)off);

		if (n <= 0)
			return -EBADMSG;
		off += (uint64_t)n;
	}
	*ret = TAKE_PTR(body);
	return 0;
}

/* The answer of n bytes in w->buf (with descriptor fd) to the request in flight. */
static void take_answer(DwarfWorker *w, size_t n, int fd)
{
	_cleanup_free_ void *body = NULL;
	_cleanup_free_ char *debug_file = NULL;
	Client *c = client_find(w, w->in_flight);
	DwarfAnswerInfo ai;
	WireAnswer a;
	int r = 0;

	memcpy(&a, w->buf, MIN(n, sizeof(a)));
	if (n < sizeof(a) || a.id != w->in_flight || a.debug_file_len > PATH_MAX ||
	    n != sizeof(a) + a.debug_file_len || (a.body_len > 0 && a.result < 0) ||
	    (a.has_debug_st && a.debug_file_len == 0)) {
		w->stats.refused++;
		fail_in_flight(w, -EBADMSG);
		return;
	}
	w->in_flight = 0;
	w->stats.answered++;
	if (w->counters) {
		w->counters->opens += a.opens;
		w->counters->open_ns += a.open_ns;
		w->counters->refused += a.refused;
		w->counters->faults += a.faults;
	}
	if (!c)
		return;
	if (a.body_len > 0)
		r = body_read(fd, a.body_len, &body);
	if (a.has_debug_st) {
		debug_file = strndup((char *)w->buf + sizeof(a), a.debug_file_len);
		if (!debug_file)
			r = -ENOMEM;
	}
	if (r < 0) {
		w->stats.refused += r == -EBADMSG;
		dwarf_info_take_failure(c->d, r);
		return;
	}
	ai = (DwarfAnswerInfo){ .open_result = a.open_result < 0 ? a.open_result : 0,
				.result = a.result,
				.dw_delta = a.dw_delta,
				.debug_file = debug_file,
				.debug_st = a.has_debug_st ? &a.debug_st : NULL,
				.body = body,
				.len = a.body_len };
	if (a.result >= 0 && !body)
		ai.result = -ENOENT;
	if (dwarf_info_take_answer(c->d, &ai) == -EBADMSG)
		w->stats.refused++;
}

void dwarf_worker_poll(DwarfWorker *w)
{
	sandbox_reap(&w->child);
	while (w->in_flight) {
		int fd;
		ssize_t n = sandbox_recv(w->child.sock, w->buf, ANSWER_MAX, MSG_DONTWAIT, &fd);

		if (n == -EAGAIN || n == -EINTR) {
			if (now_mono_ns() - w->sent_ns < w->o.timeout_ns)
				break;
			w->stats.timeouts++;
			fail_in_flight(w, -ETIMEDOUT);
		} else if (n <= 0) {
			child_ended(w);
		} else {
			take_answer(w, (size_t)n, fd);
		}
		if (fd >= 0)
			close(fd);
		send_next(w);
	}
	send_next(w);
}

void dwarf_worker_tick(DwarfWorker *w)
{
	w->wait_left_ns = w->o.wait_ns;
	dwarf_worker_poll(w);
}

/* Whether id's request is in flight or queued. */
static bool waiting_for(const DwarfWorker *w, uint64_t id)
{
	if (w->in_flight == id)
		return true;
	for (size_t i = 0; i < w->n_queue; i++)
		if (w->queue[i] == id)
			return true;
	return false;
}

void dwarf_worker_wait(DwarfWorker *w, uint64_t id)
{
	uint64_t limit = MIN(w->o.lookup_wait_ns, w->wait_left_ns), start = now_mono_ns(),
		 t = start;

	while (w->in_flight && waiting_for(w, id) && t - start < limit) {
		struct pollfd p = { .fd = w->child.sock, .events = POLLIN };
		uint64_t left = limit - (t - start);
		struct timespec ts = { .tv_sec = (time_t)(left / NSEC_PER_SEC),
				       .tv_nsec = (long)(left % NSEC_PER_SEC) };

		(void)ppoll(&p, 1, &ts, NULL);
		dwarf_worker_poll(w);
		t = now_mono_ns();
	}
	w->wait_left_ns -= MIN(t - start, w->wait_left_ns);
}

uint64_t dwarf_worker_answered(const DwarfWorker *w)
{
	return w->stats.answered;
}

void dwarf_worker_stats(const DwarfWorker *w, DwarfWorkerStats *ret)
{
	char path[64], buf[128];
	unsigned long long size, resident;
	ssize_t n;
	int fd;

	*ret = w->stats;
	ret->queued = w->n_queue + (w->in_flight != 0);
	if (w->child.pid <= 0)
		return;
	snprintf(path, sizeof(path), "/proc/%d/statm", (int)w->child.pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n > 0) {
		buf[n] = '\0';
		if (sscanf(buf, "%llu %llu", &size, &resident) == 2)
			ret->rss = resident * (uint64_t)sysconf(_SC_PAGESIZE);
	}
}
