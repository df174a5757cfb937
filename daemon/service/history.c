/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/json-util.h"
#include "base/log.h"
#include "base/macro.h"
#include "base/timeutil.h"
#include "service/history.h"
#include "store/persist.h"

typedef struct Worker {
	History *history;
	pid_t pid; /* 0: slot free */
	int fd;	   /* read end of its answer pipe */
	LoopSource *src;
	uint64_t token;
	uint64_t deadline_ns;
	bool timed_out;
	char *buf;
	size_t len, allocated;
	bool overflow;
} Worker;

struct History {
	Loop *loop;
	HistoryOptions opts;
	history_done_t done;
	void *userdata;
	Worker workers[HISTORY_MAX_WORKERS];
	HistoryStats stats;
};

/* ---- the worker process ---- */

typedef struct WorkerLoad {
	Store *store;
	size_t limit;
	uint8_t *held; /* records in the store before loading, by ProcId: newer than disk's */
	size_t n_held;
	uint64_t left_out;
} WorkerLoad;

static bool keep_record(void *userdata, ProcId id)
{
	WorkerLoad *l = userdata;

	return id < l->n_held && l->held[id];
}

static void on_segment(void *userdata)
{
	WorkerLoad *l = userdata;

	while (store_memory(l->store) > l->limit && store_window_count(l->store) > 1 &&
	       store_window_evict(l->store) == 0)
		l->left_out++;
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? negative_errno() : -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Says in the answer (an error answer too: no samples) that it does not cover its whole
 * range, and from when it does. */
static void mark_incomplete(json_object *answer, int64_t covered_ns, const char *why)
{
	if (!json_object_is_type(answer, json_type_object))
		return;
	json_add_string(answer, "incomplete", why);
	json_add_double(answer, "covered_since_s", (double)covered_ns / NSEC_PER_SEC, 3);
}

static _noreturn_ void worker_run(const HistoryOptions *opts, const QueryContext *ctx,
				  const Request *req, int64_t not_before_ns, int64_t deleted_ns,
				  int fd)
{
	/* This process's own copy of the daemon's store, as of the fork. */
	Store *store = (Store *)ctx->store;
	WorkerLoad l = { .store = store };
	const PersistLoadCallbacks cb = {
		.segment_done = on_segment,
		.keep_record = keep_record,
		.userdata = &l,
	};
	json_object *answer = NULL;
	int64_t not_after_ns = INT64_MAX;
	const Window *oldest;
	uint64_t failures;
	const char *text;
	int r;

	/* Windows from disk only where the range needs them: before its end and before the
	 * daemon's own (the copy has them). Others loaded would crowd out the range's own when
	 * memory is short: a query about an old window reads the segments after it too. */
	oldest = store_window(store, 0);
	if (oldest)
		not_after_ns = oldest->start_ns;
	if (req->has_until)
		not_after_ns = MIN(not_after_ns,
				   ctx->now_ns -
					   (int64_t)MIN(req->until_ns, (uint64_t)INT64_MAX / 2));
	l.limit = store_memory(store) + opts->max_memory;
	l.n_held = store_proc_id_limit(store);
	l.held = calloc(MAX(l.n_held, (size_t)1), 1);
	if (!l.held)
		_exit(EXIT_FAILURE);
	for (size_t id = 1; id < l.n_held; id++)
		l.held[id] = store_proc(store, (ProcId)id) != NULL;
	r = persist_load_range(store, opts->state_dir, not_before_ns, not_after_ns, &cb, NULL);
	if (r < 0 && r != -ENOENT)
		_exit(EXIT_FAILURE);
	failures = json_alloc_failures();
	if (query_answer(ctx, req, &answer) < 0 || !answer)
		_exit(EXIT_FAILURE);
	oldest = store_window(store, 0);
	if (l.left_out > 0 && oldest)
		mark_incomplete(answer, oldest->start_ns,
				"The oldest windows of the range did not fit in memory");
	else if (deleted_ns >= not_before_ns)
		mark_incomplete(answer, deleted_ns,
				"Windows of the range were deleted to stay within --max-disk");
	/* A document that lost a member to a failed allocation is no answer (json-util.h). */
	text = json_object_to_json_string_ext(answer, JSON_C_TO_STRING_PLAIN);
	if (!text || json_alloc_failures() != failures || write_all(fd, text, strlen(text)) < 0)
		_exit(EXIT_FAILURE);
	_exit(EXIT_SUCCESS);
}

/* ---- the daemon's side ---- */

static void worker_finish(Worker *w)
{
	History *h = w->history;
	_cleanup_json_ json_object *answer = NULL;
	uint64_t token = w->token;
	int status = 0;

	loop_remove(h->loop, w->src);
	close(w->fd);
	/* Its pipe closed: it has exited, or is about to. */
	while (waitpid(w->pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && !w->overflow && w->len > 0) {
		json_tokener *tok = json_tokener_new_ex(64);

		if (tok) {
			answer = json_tokener_parse_ex(tok, w->buf, (int)w->len);
			if (json_tokener_get_error(tok) != json_tokener_success)
				answer = (json_object_put(answer), NULL);
			json_tokener_free(tok);
		}
	}
	if (!answer) {
		h->stats.failed++;
		if (w->overflow)
			answer = error_answer_new(ERROR_BAD_REQUEST,
						  "The answer is too large: ask for less (limit, "
						  "range, pid)");
		else
			answer = error_answer_new(ERROR_UNAVAILABLE,
						  "Failed to read the range from the state dir: %s",
						  w->timed_out ? "it took too long"
							       : "the worker failed");
	}
	free(w->buf);
	*w = (Worker){ .history = h, .fd = -1 };
	h->stats.running--;
	if (answer)
		h->done(h->userdata, token, answer);
}

static int on_worker(LoopSource *src, int fd, uint32_t events, void *userdata)
{
	Worker *w = userdata;

	(void)src;
	(void)events;
	for (;;) {
		char chunk[65536];
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0)
			break;
		if (w->len + (size_t)n > w->history->opts.max_answer) {
			w->overflow = true;
			continue; /* read to the end, keep nothing */
		}
		if (GREEDY_REALLOC(w->buf, w->allocated, w->len + (size_t)n) < 0) {
			w->overflow = true;
			continue;
		}
		memcpy(w->buf + w->len, chunk, (size_t)n);
		w->len += (size_t)n;
	}
	worker_finish(w);
	return 0;
}

int history_new(Loop *loop, const HistoryOptions *opts, history_done_t done, void *userdata,
		History **ret)
{
	History *h = calloc(1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	h->loop = loop;
	h->opts = *opts;
	h->done = done;
	h->userdata = userdata;
	for (size_t i = 0; i < HISTORY_MAX_WORKERS; i++)
		h->workers[i] = (Worker){ .history = h, .fd = -1 };
	*ret = h;
	return 0;
}

History *history_free(History *h)
{
	if (!h)
		return NULL;
	for (size_t i = 0; i < HISTORY_MAX_WORKERS; i++) {
		Worker *w = &h->workers[i];

		if (!w->pid)
			continue;
		loop_remove(h->loop, w->src);
		close(w->fd);
		(void)kill(w->pid, SIGKILL);
		while (waitpid(w->pid, NULL, 0) < 0 && errno == EINTR)
			;
		free(w->buf);
	}
	free(h);
	return NULL;
}

int history_start(History *h, const QueryContext *ctx, const Request *req, int64_t not_before_ns,
		  int64_t deleted_ns, uint64_t token)
{
	Worker *w = NULL;
	int fds[2], r;
	pid_t parent = getpid(), pid;

	for (size_t i = 0; i < HISTORY_MAX_WORKERS && !w; i++)
		if (!h->workers[i].pid)
			w = &h->workers[i];
	if (!w) {
		h->stats.busy++;
		return -EBUSY;
	}
	if (pipe2(fds, O_CLOEXEC) < 0)
		return negative_errno();
	pid = fork();
	if (pid < 0) {
		r = negative_errno();
		close(fds[0]);
		close(fds[1]);
		return r;
	}
	if (pid == 0) {
		/* Dies with the daemon; signals the daemon blocks for its signalfd are its own
		 * to take again. */
		sigset_t all;

		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(EXIT_FAILURE);
		sigfillset(&all);
		(void)sigprocmask(SIG_UNBLOCK, &all, NULL);
		close(fds[0]);
		worker_run(&h->opts, ctx, req, not_before_ns, deleted_ns, fds[1]);
	}
	close(fds[1]);
	r = fcntl(fds[0], F_SETFL, O_NONBLOCK) < 0 ? negative_errno() : 0;
	if (r >= 0)
		r = loop_add(h->loop, fds[0], EPOLLIN, on_worker, w, &w->src);
	if (r < 0) {
		close(fds[0]);
		(void)kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		return r;
	}
	w->pid = pid;
	w->fd = fds[0];
	w->token = token;
	w->deadline_ns = now_mono_ns() + h->opts.timeout_ns;
	h->stats.queries++;
	h->stats.running++;
	return 0;
}

void history_tick(History *h, uint64_t now_ns)
{
	for (size_t i = 0; i < HISTORY_MAX_WORKERS; i++) {
		Worker *w = &h->workers[i];

		/* Its pipe then closes, and on_worker() answers its client. */
		if (w->pid && !w->timed_out && now_ns > w->deadline_ns) {
			w->timed_out = true;
			h->stats.timeouts++;
			(void)kill(w->pid, SIGKILL);
		}
	}
}

void history_stats(const History *h, HistoryStats *ret)
{
	*ret = h->stats;
}
