/* SPDX-License-Identifier: MIT */
/*
 * profq run: time(1) with hotspots (SPEC §11). Runs the command (K times with --repeat), takes
 * real time from the clock and user/sys from wait4() (the command and every child it waited
 * for, as time(1) reports them), then asks profqd for the hotspots of each run with its
 * descendants and sums them. profq exits with the command's status, as time(1) does, once
 * the command ran: a daemon that cannot be reached is found out before (exit 3, nothing run);
 * one that fails to answer afterwards costs the hotspots, not the status. With --json the
 * command's stdout is profq's stderr: stdout holds one JSON document.
 */
#include <fcntl.h>
#include <getopt.h>
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
#include "cli.h"

#define RUN_REPEAT_MAX 1000

enum {
	OPT_REPEAT = 0x400,
};

typedef struct RunResult {
	pid_t pid;
	int64_t start_ns; /* realtime, for the request's incarnation */
	double real_s, user_s, sys_s;
	int status; /* wait status */
} RunResult;

typedef struct HotRow {
	char *function, *module;
	int64_t self, total;
} HotRow;

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
	return 0;
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
		_cleanup_free_ char *key = NULL;
		HotRow *row;

		if (asprintf(&key, "%s\x1f%s", fn, mod) < 0)
			return -ENOMEM;
		if (json_object_object_get_ex(index, key, &at)) {
			row = &(*rows)[json_object_get_int64(at)];
		} else {
			if (GREEDY_REALLOC(*rows, *allocated, *n + 1) < 0)
				return -ENOMEM;
			row = &(*rows)[*n];
			*row = (HotRow){ .function = strdup(fn), .module = strdup(mod) };
			(*n)++; /* freed with the others, whatever failed */
			if (!row->function || !row->module || json_add_index(index, key, *n - 1) < 0)
				return -ENOMEM;
		}
		row->self += json_get_int(r, "self_samples");
		row->total += json_get_int(r, "total_samples");
	}
	return 0;
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
	}
	free(rows);
}

/*
 * The hotspots of every run, summed into *rows. 0, or -EPROTO when profqd could not be asked
 * or refused (said on stderr, and in *ret_error for the JSON), -ENOMEM.
 */
static int collect_hotspots(const CliContext *ctx, const Request *common, const RunResult *runs,
			    uint32_t repeat, HotRow **rows, size_t *n_rows, int64_t *samples,
			    int *unsampled, char **ret_error)
{
	/* said on stderr only: stdout is for the one JSON document */
	CliContext quiet = *ctx;
	_cleanup_json_ json_object *index = json_object_new_object();
	size_t allocated = 0;

	if (!index)
		return -ENOMEM;
	quiet.json = false;
	for (uint32_t i = 0; i < repeat; i++) {
		_cleanup_json_ json_object *answer = NULL;
		Request req = *common;
		const char *msg;
		ErrorCode code;

		req.pid = (uint32_t)runs[i].pid;
		req.start_ns = runs[i].start_ns;
		req.children = true;
		req.limit = REQUEST_LIMIT_MAX;
		if (cli_query_answer(&quiet, &req, &answer) != EXIT_OK) {
			*ret_error = strdup("profqd did not answer");
			return -EPROTO;
		}
		if (answer_error_code(answer, &code, &msg) == 0) {
			if (code != ERROR_NOT_FOUND) {
				fprintf(stderr, "profq run: no hotspots: %s\n", strempty(msg));
				*ret_error = strdup(strempty(msg));
				return -EPROTO;
			}
			(*unsampled)++;
			continue;
		}
		*samples += json_get_int(answer, "samples");
		if (add_rows(answer, index, rows, n_rows, &allocated) < 0)
			return -ENOMEM;
	}
	if (*n_rows > 0)
		qsort(*rows, *n_rows, sizeof(HotRow), cmp_hot);
	return 0;
}

int cmd_run(CliContext *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "repeat", required_argument, NULL, OPT_REPEAT },
		{ "inline", no_argument, NULL, OPT_INLINE },
		{ "no-inline", no_argument, NULL, OPT_NO_INLINE },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	_cleanup_free_ RunResult *runs = NULL;
	_cleanup_free_ double *v = NULL;
	_cleanup_free_ char *hot_error = NULL;
	_cleanup_json_ json_object *status = NULL;
	HotRow *rows = NULL;
	size_t n_rows = 0;
	uint32_t repeat = 1, ran = 0;
	int64_t samples = 0;
	Request common, ping;
	double real[3], user[3], sys[3];
	int c, r, unsampled = 0;
	char buf[128];

	request_init(&common, COMMAND_TOP);
	/* '+': the command's own options are not ours. */
	while ((c = getopt_long(argc, argv, "+hn:", options, NULL)) >= 0) {
		switch (c) {
		case 'h':
			printf("Usage: profq run [--repeat K] [-n N] [--[no-]inline] [--json] "
			       "[--] CMD [ARG...]\n"
			       "\n"
			       "Runs CMD like time(1): real, user and sys (the command and the\n"
			       "children it waited for), min/median/max over K runs with "
			       "--repeat,\n"
			       "then its hotspot functions, children included, from profqd's\n"
			       "samples of every run. Exits with the command's status (of the "
			       "last\n"
			       "run; 128+N when killed by signal N). Needs a running profqd.\n"
			       "With --json the command's standard output goes to standard "
			       "error.\n");
			return EXIT_OK;
		case OPT_REPEAT:
			if (parse_uint32(optarg, 1, RUN_REPEAT_MAX, &repeat) < 0)
				return cli_usage_error("run",
						       "--repeat: '%s' is not a number in 1..%d",
						       optarg, RUN_REPEAT_MAX);
			break;
		default:
			r = cli_common_option("run", c, optarg, ctx, &common);
			if (r < 0)
				return EXIT_USAGE;
			if (r == 0)
				return cli_usage_error("run", "unknown option '%s'",
						       argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return cli_usage_error("run", "no command given");
	if (ctx->state_dir)
		return cli_usage_error("run", "runs a command now: not with --state-dir");

	runs = calloc(repeat, sizeof(RunResult));
	v = calloc(repeat, sizeof(double));
	if (!runs || !v)
		return EXIT_UNREACHABLE;
	/* Without a daemon there would be no hotspots: say so before anything runs. */
	request_init(&ping, COMMAND_STATUS);
	r = cli_query_answer(ctx, &ping, &status);
	if (r != EXIT_OK)
		return r; /* reported */

	/* Like time(1): the terminal's ^C is for the command, not for us; the command gets the
	 * dispositions we had (ignored under nohup stays ignored). */
	sigaction(SIGINT, &(struct sigaction){ .sa_handler = SIG_IGN }, &saved_int);
	sigaction(SIGQUIT, &(struct sigaction){ .sa_handler = SIG_IGN }, &saved_quit);
	for (; ran < repeat; ran++) {
		int st;

		r = run_once(argv + optind, ctx->json, &runs[ran]);
		if (r < 0) {
			fprintf(stderr, "profq run: Failed to run '%s': %s\n", argv[optind],
				strerror(-r));
			return r == -ENOENT ? 127 : 126;
		}
		/* ^C or ^\ ends --repeat too, as it ends a shell loop */
		st = runs[ran].status;
		if (WIFSIGNALED(st) && (WTERMSIG(st) == SIGINT || WTERMSIG(st) == SIGQUIT) &&
		    ran + 1 < repeat) {
			fprintf(stderr, "profq run: interrupted after %u of %u runs\n", ran + 1,
				repeat);
			ran++;
			break;
		}
	}
	sigaction(SIGINT, &saved_int, NULL);
	sigaction(SIGQUIT, &saved_quit, NULL);

	r = collect_hotspots(ctx, &common, runs, ran, &rows, &n_rows, &samples, &unsampled,
			     &hot_error);
	if (r == -ENOMEM) {
		hot_rows_free(rows, n_rows);
		return EXIT_UNREACHABLE;
	}

	for (uint32_t i = 0; i < ran; i++)
		v[i] = runs[i].real_s;
	stats(v, ran, real);
	for (uint32_t i = 0; i < ran; i++)
		v[i] = runs[i].user_s;
	stats(v, ran, user);
	for (uint32_t i = 0; i < ran; i++)
		v[i] = runs[i].sys_s;
	stats(v, ran, sys);

	if (ctx->json) {
		_cleanup_json_ json_object *o = json_object_new_object();
		json_object *a = json_object_new_array(), *h = json_object_new_array(), *cmd;
		const char *names[] = { "real_s", "user_s", "sys_s" };
		double *figs[] = { real, user, sys };

		cmd = json_object_new_array();
		if (!o || !a || !h || !cmd) {
			json_object_put(a);
			json_object_put(h);
			json_object_put(cmd);
			hot_rows_free(rows, n_rows);
			return EXIT_UNREACHABLE;
		}
		for (int i = optind; i < argc; i++)
			json_object_array_add(cmd, json_object_new_string(argv[i]));
		json_object_object_add(o, "command", cmd);
		for (uint32_t i = 0; i < ran; i++) {
			json_object *x = json_object_new_object();

			if (!x)
				continue;
			json_add_int(x, "pid", runs[i].pid);
			json_add_double(x, "real_s", runs[i].real_s, 3);
			json_add_double(x, "user_s", runs[i].user_s, 3);
			json_add_double(x, "sys_s", runs[i].sys_s, 3);
			json_add_int(x, "exit_code", exit_of(runs[i].status));
			json_object_array_add(a, x);
		}
		json_object_object_add(o, "runs", a);
		for (size_t k = 0; k < 3; k++) {
			json_object *x = json_object_new_object();

			if (!x)
				continue;
			json_add_double(x, "min", figs[k][0], 3);
			json_add_double(x, "median", figs[k][1], 3);
			json_add_double(x, "max", figs[k][2], 3);
			json_object_object_add(o, names[k], x);
		}
		json_add_double(o, "cpu_pct",
				real[1] > 0 ? 100.0 * (user[1] + sys[1]) / real[1] : 0.0, 1);
		json_add_int(o, "exit_code", exit_of(runs[ran - 1].status));
		json_add_int(o, "samples", samples);
		if (hot_error)
			json_add_string(o, "hotspots_error", hot_error);
		for (size_t i = 0; i < n_rows && i < common.limit; i++) {
			json_object *x = json_object_new_object();

			if (!x)
				continue;
			json_add_string(x, "function", rows[i].function);
			json_add_string(x, "module", rows[i].module);
			json_add_int(x, "self_samples", rows[i].self);
			json_add_int(x, "total_samples", rows[i].total);
			json_add_double(
				x, "self_pct",
				samples ? 100.0 * (double)rows[i].self / (double)samples : 0.0, 2);
			json_add_double(
				x, "total_pct",
				samples ? 100.0 * (double)rows[i].total / (double)samples : 0.0, 2);
			json_object_array_add(h, x);
		}
		json_object_object_add(o, "rows", h);
		cli_print_json(o);
	} else {
		if (ran == 1) {
			printf("real %.3fs  user %.3fs  sys %.3fs  cpu %.0f%%  (%s)\n", real[1],
			       user[1], sys[1],
			       real[1] > 0 ? 100.0 * (user[1] + sys[1]) / real[1] : 0.0,
			       status_text(runs[0].status, buf, sizeof(buf)));
		} else {
			printf("%u runs, min / median / max:\n", ran);
			printf("  real %8.3fs %8.3fs %8.3fs\n", real[0], real[1], real[2]);
			printf("  user %8.3fs %8.3fs %8.3fs\n", user[0], user[1], user[2]);
			printf("  sys  %8.3fs %8.3fs %8.3fs\n", sys[0], sys[1], sys[2]);
			printf("last run: %s\n", status_text(runs[ran - 1].status, buf, sizeof(buf)));
		}
		if (!hot_error) {
			printf("\nSamples: %" PRId64 " (children included)%s\n\n", samples,
			       unsampled ? "; some runs were too short to be sampled" : "");
			if (n_rows > 0)
				printf("%7s %7s  %s\n", "SELF%", "TOTAL%", "FUNCTION");
			for (size_t i = 0; i < n_rows && i < common.limit; i++)
				printf(rows[i].module[0] == '[' ? "%7.2f %7.2f  %s %s\n"
								: "%7.2f %7.2f  %s [%s]\n",
				       100.0 * (double)rows[i].self / (double)samples,
				       100.0 * (double)rows[i].total / (double)samples,
				       rows[i].function, rows[i].module);
		}
	}
	hot_rows_free(rows, n_rows);
	return exit_of(runs[ran - 1].status);
}
