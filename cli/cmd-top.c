/* SPDX-License-Identifier: MIT */
#include <limits.h>
#include <time.h>

#include "base/json-util.h"
#include "base/parse.h"
#include "command.h"

static void render_top(json_object *a, int max_rows)
{
	const char *comm = json_get_string(a, "comm");
	int width = cli_terminal_width(), modw = 6;
	json_object *rows, *pid;
	size_t n;

	if (!json_object_object_get_ex(a, "rows", &rows))
		return;
	n = json_object_array_length(rows);
	if (max_rows > 0 && (size_t)max_rows < n)
		n = (size_t)max_rows;
	for (size_t i = 0; i < n; i++) {
		const char *m = json_get_string(json_object_array_get_idx(rows, i), "module");
		int len = m ? (int)strlen(m) : 0;

		if (len > modw)
			modw = len < 28 ? len : 28;
	}
	printf("Samples: %lld", (long long)json_get_int(a, "samples"));
	if (json_object_object_get_ex(a, "pid", &pid) && pid)
		printf("  pid %lld (%s)", (long long)json_object_get_int64(pid), strempty(comm));
	if (json_get_int(a, "tid"))
		printf("  tid %lld", (long long)json_get_int(a, "tid"));
	printf("  sorted by %s\n\n", strempty(json_get_string(a, "sort")));
	printf("%7s %7s %8s %8s  %-*s  %s\n", "SELF%", "TOTAL%", "SELF", "TOTAL", modw, "MODULE",
	       "FUNCTION");
	for (size_t i = 0; i < n; i++) {
		json_object *r = json_object_array_get_idx(rows, i);
		const char *fn = strempty(json_get_string(r, "function"));
		int used = 7 + 1 + 7 + 1 + 8 + 1 + 8 + 2 + modw + 2;
		bool unlimited = width <= used + 8;
		int room = unlimited ? (int)strlen(fn) : width - used;
		char where[256];

		printf("%7.2f %7.2f %8lld %8lld  %-*.*s  %.*s", json_get_double(r, "self_pct"),
		       json_get_double(r, "total_pct"), (long long)json_get_int(r, "self_samples"),
		       (long long)json_get_int(r, "total_samples"), modw, modw,
		       strempty(json_get_string(r, "module")), room, fn);
		/* Python functions are all of module [python]: their file tells them apart. */
		room = unlimited ? INT_MAX : room - MIN(room, (int)strlen(fn));
		if (cli_python_location(r, where, sizeof(where)) && (int)strlen(where) + 2 <= room)
			printf("  %s", where);
		putchar('\n');
	}
}

/* Seconds as top(1) takes them ("2", "0.5"), or a duration ("500ms"). */
static int parse_seconds(const char *s, uint64_t *ret)
{
	char *end;
	double v;

	if (parse_duration_ns(s, ret) == 0)
		return 0;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= 0 && v <= 86400))
		return -EINVAL;
	*ret = (uint64_t)(v * (double)NSEC_PER_SEC);
	return 0;
}

/* The live view: like top(1), refreshed every interval over the daemon's last window. */
static int live_top(CliContext *ctx, Request *req, uint64_t interval_ns)
{
	_cleanup_json_ json_object *status = NULL;
	Request sreq;
	int r, rows;

	request_init(&sreq, COMMAND_STATUS);
	r = cli_query(ctx, &sreq, &status);
	if (r != EXIT_OK)
		return r;
	req->has_since = true;
	req->since_ns = (uint64_t)json_get_int(status, "window_s") * NSEC_PER_SEC;
	if (req->since_ns == 0)
		req->since_ns = 10 * NSEC_PER_SEC;
	for (;;) {
		_cleanup_json_ json_object *answer = NULL;
		struct timespec ts = { .tv_sec = (time_t)(interval_ns / NSEC_PER_SEC),
				       .tv_nsec = (long)(interval_ns % NSEC_PER_SEC) };
		const char *msg;
		ErrorCode code;

		r = cli_query_answer(ctx, req, &answer);
		if (r != EXIT_OK)
			return r;
		/* Clear the screen and home the cursor. */
		printf("\033[H\033[2J");
		if (answer_error_code(answer, &code, &msg) == 0) {
			if (code != ERROR_NOT_FOUND) {
				fprintf(stderr, "profq: %s\n", msg);
				return cli_exit_code(code);
			}
			printf("%s (waiting)\n", msg);
		} else {
			/* What fits under the header lines. */
			rows = cli_terminal_rows() - 5;
			render_top(answer, rows > 0 ? MIN(rows, (int)req->limit) : (int)req->limit);
		}
		fflush(stdout);
		nanosleep(&ts, NULL);
	}
}

enum {
	OPT_SORT = 0x200,
	OPT_ONCE,
};

typedef struct TopArgs {
	bool once;
	uint64_t interval_ns;
} TopArgs;

static int parse_option(int opt, const char *arg, Request *req, void *userdata)
{
	TopArgs *args = userdata;

	switch (opt) {
	case OPT_SORT:
		if (!sort_key_valid(COMMAND_TOP, sort_key_from_string(arg)))
			return cli_usage_error("top", "--sort: '%s' is not 'self' or 'total'", arg);
		req->sort = sort_key_from_string(arg);
		return EXIT_OK;
	case OPT_ONCE:
		args->once = true;
		return EXIT_OK;
	default: /* -d */
		if (parse_seconds(arg, &args->interval_ns) < 0 ||
		    args->interval_ns < 100 * NSEC_PER_MSEC ||
		    args->interval_ns > 3600 * NSEC_PER_SEC)
			return cli_usage_error("top", "-d: '%s' is not a delay in 0.1s..1h", arg);
		return EXIT_OK;
	}
}

static void render_all(json_object *answer, const Request *req)
{
	(void)req;
	render_top(answer, 0);
}

static const CliQuery top = {
	.name = "top",
	.command = COMMAND_TOP,
	.shared = CLI_OPT_RANGE | CLI_OPT_PID | CLI_OPT_TID | CLI_OPT_START | CLI_OPT_CHILDREN |
		  CLI_OPT_INLINE | CLI_OPT_LIMIT,
	.help = "Usage: profq top [--pid N [--tid T] [--start TIME] [--children]]\n"
		"                 [-n N] [--sort self|total] [--since WHEN]\n"
		"                 [--until WHEN] [--range life] [--[no-]inline]\n"
		"                 [--[no-]python] [--once] [-d SECS] [--json]\n"
		"\n"
		"Hotspot functions: SELF% (samples in the function itself) and\n"
		"TOTAL% (samples with the function anywhere on the stack), of the\n"
		"process's samples (of all samples without --pid).\n"
		"On a terminal, without --since, --range, --json or --once: a live\n"
		"view over the last window, refreshed every -d seconds (2).\n"
		"--tid: one thread. --start: another incarnation of the pid\n"
		"(a start time from 'profq ps'). --children: the pid and its\n"
		"descendants. Calls inlined by the compiler are functions of their\n"
		"own; --no-inline folds them into the function they are in.\n"
		"Python functions are frames of their own in place of the interpreter\n"
		"frames that ran them; --no-python shows the interpreter frames.\n",
	.options =
		(const struct option[]){
			{ "sort", required_argument, NULL, OPT_SORT },
			{ "once", no_argument, NULL, OPT_ONCE },
			{ "delay", required_argument, NULL, 'd' },
			{},
		},
	.short_options = "d:",
	.option = parse_option,
	.render = render_all,
};

int cmd_top(CliContext *ctx, int argc, char **argv)
{
	TopArgs args = { .interval_ns = 2 * NSEC_PER_SEC };
	Request req;
	int r;

	r = cli_parse(&top, ctx, &req, argc, argv, &args);
	if (r != CLI_PARSED)
		return r;
	if (isatty(STDOUT_FILENO) && !args.once && !ctx->json && !req.has_since && !ctx->range_life)
		return live_top(ctx, &req, args.interval_ns);
	return cli_answer(&top, ctx, &req);
}
