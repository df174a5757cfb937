/* SPDX-License-Identifier: MIT */
/*
 * profq run: time(1) with hotspots (docs/profq.1). Runs the command (K times with --repeat),
 * takes real time from the clock and user/sys from wait4() (the command and every child it
 * waited for, as time(1) reports them), then asks profqd for the hotspots of each run with its
 * descendants and sums them. profq exits with the command's status, as time(1) does, once
 * the command ran: a daemon that cannot be reached is found out before (exit 3, nothing run);
 * one that fails to answer afterwards costs the hotspots, not the status. With --json the
 * command's stdout is profq's stderr: stdout holds one JSON document.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/json-util.h"
#include "base/parse.h"
#include "base/timeutil.h"
#include "command.h"

#define RUN_REPEAT_MAX 1000

enum {
	OPT_REPEAT = 0x200,
};

typedef struct RunResult {
	pid_t pid;
	int64_t start_ns; /* realtime, for the request's incarnation */
	double real_s, user_s, sys_s;
	int64_t peak_rss; /* bytes: the kernel's maximum resident set (wait4's ru_maxrss) */
	int status;	  /* wait status */
} RunResult;

typedef struct HotRow {
	char *function, *module;
	char *file, *where; /* a Python function's .py file and "file.py:line"; else NULL */
	bool python;
	int64_t self, total;
} HotRow;

/* The samples of the processes of one name (comm), summed over the runs. */
typedef struct ProcRow {
	char *comm;
	int64_t processes, samples;
} ProcRow;

/* One `profq run`: its options, its runs and their hotspots. */
typedef struct Run {
	char **argv; /* the command */
	int argc;
	uint32_t repeat, limit;
	RunResult *runs; /* [repeat] */
	uint32_t ran;
	double real[3], user[3], sys[3], peak[3]; /* min, median, max (peak: bytes) */
	HotRow *rows;				  /* summed over the runs, hottest first */
	size_t n_rows;
	ProcRow *procs; /* by process name, summed over the runs, most samples first */
	size_t n_procs, allocated_procs;
	json_object *proc_index; /* comm -> index in procs */
	int64_t samples;
	int unsampled; /* runs without samples: too short, or idle */
	int idle;      /* of those, the ones the kernel says were idle (run_idle()) */
	double idle_cpu_s, idle_real_s; /* their CPU time and real time */
	char *hot_error;		/* why there are no hotspots */
} Run;

static double tv_s(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static int64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * (int64_t)NSEC_PER_SEC + ts.tv_nsec;
}

static double monotonic_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The dispositions of SIGINT and SIGQUIT profq had, for the command to inherit. */
static struct sigaction saved_int, saved_quit;

/* Runs argv once; 0, or a negative errno when it could not be started. */
static int run_once(char **argv, bool stdout_to_stderr, RunResult *ret)
{
	struct rusage ru;
	int pipefd[2], err = 0;
	double t0;
	pid_t pid;
	ssize_t n;

	/* A close-on-exec pipe tells an exec failure from the command's own exit status. */
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -errno;
	ret->start_ns = realtime_ns();
	t0 = monotonic_s();
	pid = fork();
	if (pid < 0) {
		err = -errno;
		close(pipefd[0]);
		close(pipefd[1]);
		return err;
	}
	if (pid == 0) {
		close(pipefd[0]);
		sigaction(SIGINT, &saved_int, NULL);
		sigaction(SIGQUIT, &saved_quit, NULL);
		if (stdout_to_stderr && dup2(STDERR_FILENO, STDOUT_FILENO) < 0)
			_exit(127);
		execvp(argv[0], argv);
		err = errno;
		(void)!write(pipefd[1], &err, sizeof(err));
		_exit(127);
	}
	close(pipefd[1]);
	do
		n = read(pipefd[0], &err, sizeof(err));
	while (n < 0 && errno == EINTR);
	close(pipefd[0]);
	while (wait4(pid, &ret->status, 0, &ru) < 0)
		if (errno != EINTR)
			return -errno;
	ret->real_s = monotonic_s() - t0;
	if (n == (ssize_t)sizeof(err))
		return -err;
	ret->pid = pid;
	ret->user_s = tv_s(ru.ru_utime);
	ret->sys_s = tv_s(ru.ru_stime);
	/* As time(1)'s %M: the largest of the command and the children it waited for. */
	ret->peak_rss = (int64_t)ru.ru_maxrss * 1024;
	return 0;
}

bool cli_run_idle(double user_s, double sys_s, double real_s)
{
	return user_s + sys_s < 0.1 * real_s;
}

static bool run_idle(const RunResult *r)
{
	return cli_run_idle(r->user_s, r->sys_s, r->real_s);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* min, median, max of v[0..n) (sorted in place). */
static void stats(double *v, size_t n, double ret[3])
{
	qsort(v, n, sizeof(double), cmp_double);
	ret[0] = v[0];
	ret[1] = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	ret[2] = v[n - 1];
}

/* Adds a top answer's rows into rows, found by function and module through index. */
static int add_rows(json_object *answer, json_object *index, HotRow **rows, size_t *n,
		    size_t *allocated)
{
	json_object *a;

	if (!json_object_object_get_ex(answer, "rows", &a))
		return 0;
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		json_object *r = json_object_array_get_idx(a, i), *at;
		const char *fn = strempty(json_get_string(r, "function"));
		const char *mod = strempty(json_get_string(r, "module"));
		/* A Python function is its .py file's (every module's code is <module>). */
		bool python = json_get_bool(r, "python");
		const char *file = python ? json_get_string(r, "file") : NULL;
		_cleanup_free_ char *key = NULL;
		char where[256];
		HotRow *row;

		if (asprintf(&key, "%s\x1f%s\x1f%s", fn, mod, strempty(file)) < 0)
			return -ENOMEM;
		if (json_object_object_get_ex(index, key, &at)) {
			row = &(*rows)[json_object_get_int64(at)];
		} else {
			if (GREEDY_REALLOC(*rows, *allocated, *n + 1) < 0)
				return -ENOMEM;
			row = &(*rows)[*n];
			*row = (HotRow){ .function = strdup(fn),
					 .module = strdup(mod),
					 .file = file ? strdup(file) : NULL,
					 .where = cli_python_location(r, where, sizeof(where))
							  ? strdup(where)
							  : NULL,
					 .python = python };
			(*n)++; /* freed with the others, whatever failed */
			if (!row->function || !row->module || (file && !row->file) ||
			    (file && !row->where) || json_add_index(index, key, *n - 1) < 0)
				return -ENOMEM;
		}
		row->self += json_get_int(r, "self_samples");
		row->total += json_get_int(r, "total_samples");
	}
	return 0;
}

/* Adds the samples of the processes of a run, by name (a ps answer by comm), into run->procs. */
static int add_procs(json_object *answer, Run *run)
{
	json_object *a;

	if (!run->proc_index) {
		run->proc_index = json_object_new_object();
		if (!run->proc_index)
			return -ENOMEM;
	}
	if (!json_object_object_get_ex(answer, "rows", &a))
		return 0;
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		json_object *r = json_object_array_get_idx(a, i), *at;
		const char *comm = strempty(json_get_string(r, "comm"));
		ProcRow *row;

		if (json_object_object_get_ex(run->proc_index, comm, &at)) {
			row = &run->procs[json_object_get_int64(at)];
		} else {
			if (GREEDY_REALLOC(run->procs, run->allocated_procs, run->n_procs + 1) < 0)
				return -ENOMEM;
			row = &run->procs[run->n_procs];
			*row = (ProcRow){ .comm = strdup(comm) };
			run->n_procs++; /* freed with the others, whatever failed */
			if (!row->comm ||
			    json_add_index(run->proc_index, comm, run->n_procs - 1) < 0)
				return -ENOMEM;
		}
		row->processes += json_get_int(r, "processes");
		row->samples += json_get_int(r, "samples");
	}
	return 0;
}

static int cmp_proc(const void *a, const void *b)
{
	const ProcRow *x = a, *y = b;

	if (x->samples != y->samples)
		return x->samples > y->samples ? -1 : 1;
	return strcmp(x->comm, y->comm);
}

static int cmp_hot(const void *a, const void *b)
{
	const HotRow *x = a, *y = b;

	if (x->self != y->self)
		return x->self > y->self ? -1 : 1;
	if (x->total != y->total)
		return x->total > y->total ? -1 : 1;
	return strcmp(x->function, y->function);
}

static const char *status_text(int status, char *buf, size_t len)
{
	if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "exit %d", WEXITSTATUS(status));
	return buf;
}

static int exit_of(int status)
{
	return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

static void hot_rows_free(HotRow *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].function);
		free(rows[i].module);
		free(rows[i].file);
		free(rows[i].where);
	}
	free(rows);
}

/*
 * The hotspots of every run, summed into run->rows. 0, or -EPROTO when profqd could not be
 * asked or refused (said on stderr, and in run->hot_error for the JSON), -ENOMEM.
 */
static int collect_hotspots(const CliContext *ctx, const Request *common, Run *run)
{
	/* said on stderr only: stdout is for the one JSON document */
	CliContext quiet = *ctx;
	_cleanup_json_ json_object *index = json_object_new_object();
	size_t allocated = 0;
	Request ps;

	if (!index)
		return -ENOMEM;
	/* For ps's default sort key. */
	request_init(&ps, COMMAND_PS);
	quiet.json = false;
	for (uint32_t i = 0; i < run->ran; i++) {
		_cleanup_json_ json_object *answer = NULL;
		Request req = *common;
		const char *msg;
		ErrorCode code;

		req.pid = (uint32_t)run->runs[i].pid;
		req.start_ns = run->runs[i].start_ns;
		req.children = true;
		req.limit = REQUEST_LIMIT_MAX;
		if (cli_query_answer(&quiet, &req, &answer) != EXIT_OK) {
			run->hot_error = strdup("profqd did not answer");
			return -EPROTO;
		}
		if (answer_error_code(answer, &code, &msg) == 0) {
			if (code != ERROR_NOT_FOUND) {
				fprintf(stderr, "profq run: no hotspots: %s\n", strempty(msg));
				run->hot_error = strdup(strempty(msg));
				return -EPROTO;
			}
			run->unsampled++;
			if (run_idle(&run->runs[i])) {
				run->idle++;
				run->idle_cpu_s += run->runs[i].user_s + run->runs[i].sys_s;
				run->idle_real_s += run->runs[i].real_s;
			}
			continue;
		}
		run->samples += json_get_int(answer, "samples");
		if (add_rows(answer, index, &run->rows, &run->n_rows, &allocated) < 0)
			return -ENOMEM;
		json_object_put(TAKE_PTR(answer));
		/* Which tools took the samples: the run's processes by name. */
		req.command = COMMAND_PS;
		req.sort = ps.sort;
		req.by = GROUP_COMM;
		if (cli_query_answer(&quiet, &req, &answer) == EXIT_OK &&
		    answer_error_code(answer, &code, &msg) < 0 && add_procs(answer, run) < 0)
			return -ENOMEM;
	}
	if (run->n_rows > 0)
		qsort(run->rows, run->n_rows, sizeof(HotRow), cmp_hot);
	if (run->n_procs > 0)
		qsort(run->procs, run->n_procs, sizeof(ProcRow), cmp_proc);
	return 0;
}

static int parse_option(int opt, const char *arg, Request *req, void *userdata)
{
	Run *run = userdata;

	(void)opt, (void)req; /* --repeat, the only one */
	if (parse_uint32(arg, 1, RUN_REPEAT_MAX, &run->repeat) < 0)
		return cli_usage_error("run", "--repeat: '%s' is not a number in 1..%d", arg,
				       RUN_REPEAT_MAX);
	return EXIT_OK;
}

static const CliQuery run_query = {
	.name = "run",
	.command = COMMAND_TOP,
	.shared = CLI_OPT_INLINE | CLI_OPT_LIMIT,
	/* the command's own options are not ours */
	.takes_command = true,
	.help = "Usage: profq run [--repeat K] [-n N] [--[no-]inline] [--[no-]python]\n"
		"                 [--json] [--] CMD [ARG...]\n"
		"\n"
		"Runs CMD like time(1): real, user, sys and the maximum resident\n"
		"set (time's %M; of the command and the children it waited for),\n"
		"min/median/max over K runs with --repeat,\n"
		"then the share of each program it ran (by name, when more than one),\n"
		"then its hotspot functions, children included, from profqd's\n"
		"samples of every run. Exits with the command's status (of the last\n"
		"run; 128+N when killed by signal N). Needs a running profqd.\n"
		"With --json the command's standard output goes to standard error.\n",
	.options = (const struct option[]){ { "repeat", required_argument, NULL, OPT_REPEAT }, {} },
	.option = parse_option,
};

/* The options into *common (the hotspots' request) and run; CLI_PARSED or an exit code. */
static int parse_run(CliContext *ctx, int argc, char **argv, Request *common, Run *run)
{
	int r;

	r = cli_parse(&run_query, ctx, common, argc, argv, run);
	if (r != CLI_PARSED)
		return r;
	if (optind >= argc)
		return cli_usage_error("run", "no command given");
	if (ctx->state_dir)
		return cli_usage_error("run", "runs a command now: not with --state-dir");
	run->argv = argv + optind;
	run->argc = argc - optind;
	run->limit = common->limit;
	return CLI_PARSED;
}

/* Runs the command run->repeat times, or until ^C: EXIT_OK, or 127/126 when it could not be
 * started (reported). */
static int run_all(Run *run, bool stdout_to_stderr)
{
	int r = 0;

	/* Like time(1): the terminal's ^C is for the command, not for us; the command gets the
	 * dispositions we had (ignored under nohup stays ignored). */
	sigaction(SIGINT, &(struct sigaction){ .sa_handler = SIG_IGN }, &saved_int);
	sigaction(SIGQUIT, &(struct sigaction){ .sa_handler = SIG_IGN }, &saved_quit);
	for (; run->ran < run->repeat; run->ran++) {
		int st;

		r = run_once(run->argv, stdout_to_stderr, &run->runs[run->ran]);
		if (r < 0)
			break;
		/* ^C or ^\ ends --repeat too, as it ends a shell loop */
		st = run->runs[run->ran].status;
		if (WIFSIGNALED(st) && (WTERMSIG(st) == SIGINT || WTERMSIG(st) == SIGQUIT) &&
		    run->ran + 1 < run->repeat) {
			fprintf(stderr, "profq run: interrupted after %u of %u runs\n",
				run->ran + 1, run->repeat);
			run->ran++;
			break;
		}
	}
	sigaction(SIGINT, &saved_int, NULL);
	sigaction(SIGQUIT, &saved_quit, NULL);
	if (r < 0) {
		fprintf(stderr, "profq run: Failed to run '%s': %s\n", run->argv[0], strerror(-r));
		return r == -ENOENT ? 127 : 126;
	}
	return EXIT_OK;
}

/* min, median, max of real, user and sys over the runs. */
static int summarize(Run *run)
{
	_cleanup_free_ double *v = calloc(run->ran, sizeof(double));

	if (!v)
		return -ENOMEM;
	for (uint32_t i = 0; i < run->ran; i++)
		v[i] = run->runs[i].real_s;
	stats(v, run->ran, run->real);
	for (uint32_t i = 0; i < run->ran; i++)
		v[i] = run->runs[i].user_s;
	stats(v, run->ran, run->user);
	for (uint32_t i = 0; i < run->ran; i++)
		v[i] = run->runs[i].sys_s;
	stats(v, run->ran, run->sys);
	for (uint32_t i = 0; i < run->ran; i++)
		v[i] = (double)run->runs[i].peak_rss;
	stats(v, run->ran, run->peak);
	return 0;
}

static double cpu_pct(const Run *run)
{
	return run->real[1] > 0 ? 100.0 * (run->user[1] + run->sys[1]) / run->real[1] : 0.0;
}

static double share(int64_t n, int64_t samples)
{
	return samples ? 100.0 * (double)n / (double)samples : 0.0;
}

static json_object *runs_json(const Run *run)
{
	json_object *a = json_object_new_array();

	for (uint32_t i = 0; a && i < run->ran; i++) {
		json_object *x = json_object_new_object();

		if (!x)
			continue;
		json_add_int(x, "pid", run->runs[i].pid);
		json_add_double(x, "real_s", run->runs[i].real_s, 3);
		json_add_double(x, "user_s", run->runs[i].user_s, 3);
		json_add_double(x, "sys_s", run->runs[i].sys_s, 3);
		json_add_int(x, "peak_rss_bytes", run->runs[i].peak_rss);
		json_add_int(x, "exit_code", exit_of(run->runs[i].status));
		json_object_array_add(a, x);
	}
	return a;
}

static void add_stats_json(json_object *o, const Run *run)
{
	const char *names[] = { "real_s", "user_s", "sys_s" };
	const double *figs[] = { run->real, run->user, run->sys };

	for (size_t k = 0; k < 3; k++) {
		json_object *x = json_object_new_object();

		if (!x)
			continue;
		json_add_double(x, "min", figs[k][0], 3);
		json_add_double(x, "median", figs[k][1], 3);
		json_add_double(x, "max", figs[k][2], 3);
		json_object_object_add(o, names[k], x);
	}
}

static json_object *hotspots_json(const Run *run)
{
	json_object *h = json_object_new_array();

	for (size_t i = 0; h && i < run->n_rows && i < run->limit; i++) {
		json_object *x = json_object_new_object();

		if (!x)
			continue;
		json_add_string(x, "function", run->rows[i].function);
		json_add_string(x, "module", run->rows[i].module);
		json_add_string(x, "file", run->rows[i].file);
		json_object_object_add(x, "python", json_object_new_boolean(run->rows[i].python));
		json_add_int(x, "self_samples", run->rows[i].self);
		json_add_int(x, "total_samples", run->rows[i].total);
		json_add_double(x, "self_pct", share(run->rows[i].self, run->samples), 2);
		json_add_double(x, "total_pct", share(run->rows[i].total, run->samples), 2);
		json_object_array_add(h, x);
	}
	return h;
}

/* The processes by name: [{comm, processes, samples, pct}]; NULL on ENOMEM. */
static json_object *procs_json(const Run *run)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; a && i < run->n_procs; i++) {
		json_object *x = json_object_new_object();

		if (!x || json_object_array_add(a, x) < 0) {
			json_object_put(x);
			break;
		}
		json_add_string(x, "comm", run->procs[i].comm);
		json_add_int(x, "processes", run->procs[i].processes);
		json_add_int(x, "samples", run->procs[i].samples);
		json_add_double(x, "pct", share(run->procs[i].samples, run->samples), 2);
	}
	return a;
}

static int print_json(const Run *run)
{
	_cleanup_json_ json_object *o = json_object_new_object();
	json_object *a = runs_json(run), *h = hotspots_json(run), *cmd = json_object_new_array();

	if (!o || !a || !h || !cmd) {
		json_object_put(a);
		json_object_put(h);
		json_object_put(cmd);
		return EXIT_UNREACHABLE;
	}
	for (int i = 0; i < run->argc; i++)
		json_object_array_add(cmd, json_object_new_string(run->argv[i]));
	json_object_object_add(o, "command", cmd);
	json_object_object_add(o, "runs", a);
	add_stats_json(o, run);
	json_add_double(o, "cpu_pct", cpu_pct(run), 1);
	/* The largest over the runs (runs[] has each). */
	json_add_int(o, "peak_rss_bytes", (int64_t)run->peak[2]);
	json_add_int(o, "exit_code", exit_of(run->runs[run->ran - 1].status));
	json_add_int(o, "samples", run->samples);
	/* Runs without samples, and of them those the kernel says were idle. */
	json_add_int(o, "unsampled_runs", run->unsampled);
	json_add_int(o, "idle_runs", run->idle);
	if (run->hot_error)
		json_add_string(o, "hotspots_error", run->hot_error);
	json_object_object_add(o, "rows", h);
	json_object_object_add(o, "processes", procs_json(run));
	cli_print_json(o);
	return EXIT_OK;
}

static void print_times(const Run *run)
{
	char buf[128];

	if (run->ran == 1) {
		printf("real %.3fs  user %.3fs  sys %.3fs  cpu %.0f%%  maxrss %.1fM  (%s)\n",
		       run->real[1], run->user[1], run->sys[1], cpu_pct(run),
		       run->peak[1] / (1024.0 * 1024.0),
		       status_text(run->runs[0].status, buf, sizeof(buf)));
		return;
	}
	printf("%u runs, min / median / max:\n", run->ran);
	printf("  real %8.3fs %8.3fs %8.3fs\n", run->real[0], run->real[1], run->real[2]);
	printf("  user %8.3fs %8.3fs %8.3fs\n", run->user[0], run->user[1], run->user[2]);
	printf("  sys  %8.3fs %8.3fs %8.3fs\n", run->sys[0], run->sys[1], run->sys[2]);
	printf("  maxrss %6.1fM %8.1fM %8.1fM\n", run->peak[0] / (1024.0 * 1024.0),
	       run->peak[1] / (1024.0 * 1024.0), run->peak[2] / (1024.0 * 1024.0));
	printf("last run: %s\n", status_text(run->runs[run->ran - 1].status, buf, sizeof(buf)));
}

/* Why runs have no samples: idle (by the kernel's accounting), or too short. */
static void print_unsampled(const Run *run)
{
	const char *all = run->unsampled == (int)run->ran ? "the" : "some";

	if (run->idle > 0)
		printf("; %s runs were idle (%.0f ms of CPU in %.1f s, by the kernel's accounting)",
		       run->idle == (int)run->ran ? "the" : "some", run->idle_cpu_s * 1000,
		       run->idle_real_s);
	if (run->unsampled > run->idle)
		printf("; %s runs were too short to be sampled", run->idle ? "other" : all);
}

static void print_hotspots(const Run *run)
{
	printf("\nSamples: %" PRId64 " (children included)", run->samples);
	print_unsampled(run);
	printf("\n\n");
	/* Which tools took the time, when the command ran more than one. */
	if (run->n_procs > 1) {
		printf("%7s %6s  %s\n", "SAMP%", "PROCS", "COMMAND");
		for (size_t i = 0; i < run->n_procs && i < run->limit; i++)
			printf("%7.2f %6" PRId64 "  %s\n",
			       share(run->procs[i].samples, run->samples), run->procs[i].processes,
			       run->procs[i].comm);
		putchar('\n');
	}
	if (run->n_rows > 0)
		printf("%7s %7s  %s\n", "SELF%", "TOTAL%", "FUNCTION");
	for (size_t i = 0; i < run->n_rows && i < run->limit; i++)
		printf(run->rows[i].module[0] == '[' ? "%7.2f %7.2f  %s %s%s%s\n"
						     : "%7.2f %7.2f  %s [%s]%s%s\n",
		       share(run->rows[i].self, run->samples),
		       share(run->rows[i].total, run->samples), run->rows[i].function,
		       run->rows[i].module, run->rows[i].where ? " " : "",
		       strempty(run->rows[i].where));
}

static void run_done(Run *run)
{
	for (size_t i = 0; i < run->n_procs; i++)
		free(run->procs[i].comm);
	free(run->procs);
	json_object_put(run->proc_index);
	free(run->runs);
	hot_rows_free(run->rows, run->n_rows);
	free(run->hot_error);
}

/* After the options: checks for the daemon, runs, asks for the hotspots, prints. The exit code:
 * the command's, once it ran. */
static int run_and_report(const CliContext *ctx, const Request *common, Run *run)
{
	_cleanup_json_ json_object *status = NULL;
	Request ping;
	int r;

	run->runs = calloc(run->repeat, sizeof(RunResult));
	if (!run->runs)
		return EXIT_UNREACHABLE;
	/* Without a daemon there would be no hotspots: say so before anything runs. */
	request_init(&ping, COMMAND_STATUS);
	r = cli_query_answer(ctx, &ping, &status);
	if (r != EXIT_OK)
		return r; /* reported */
	r = run_all(run, ctx->json);
	if (r != EXIT_OK)
		return r;
	if (collect_hotspots(ctx, common, run) == -ENOMEM || summarize(run) < 0)
		return EXIT_UNREACHABLE;
	if (ctx->json) {
		r = print_json(run);
		if (r != EXIT_OK)
			return r;
	} else {
		print_times(run);
		if (!run->hot_error)
			print_hotspots(run);
	}
	return exit_of(run->runs[run->ran - 1].status);
}

int cmd_run(CliContext *ctx, int argc, char **argv)
{
	_cleanup_(run_done) Run run = { .repeat = 1 };
	Request common;
	int r;

	r = parse_run(ctx, argc, argv, &common, &run);
	if (r != CLI_PARSED)
		return r;
	return run_and_report(ctx, &common, &run);
}
