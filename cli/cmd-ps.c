/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <time.h>

#include "base/json-util.h"
#include "cli.h"

/* Start times as ps(1) shows them: HH:MM:SS today, else the date. */
static const char *start_string(double t, char *buf, size_t len)
{
	time_t sec = (time_t)t, now = time(NULL);
	struct tm tm, today;

	localtime_r(&sec, &tm);
	localtime_r(&now, &today);
	strftime(buf, len,
		 tm.tm_yday == today.tm_yday && tm.tm_year == today.tm_year ? "%H:%M:%S" : "%b%d",
		 &tm);
	return buf;
}

static void render_ps(json_object *a, bool threads)
{
	int width = cli_terminal_width();
	json_object *rows;

	if (threads)
		printf("%8s  %-16s %7s %7s %7s %8s\n", "TID", "THREAD", "%USR", "%SYS", "%CPU",
		       "SAMPLES");
	else
		printf("%8s %8s %8s  %-16s %7s %7s %7s %8s  %s\n", "PID", "PPID", "START", "COMM",
		       "%USR", "%SYS", "%CPU", "SAMPLES", "COMMAND");
	if (!json_object_object_get_ex(a, "rows", &rows))
		return;
	for (size_t i = 0; i < json_object_array_length(rows); i++) {
		json_object *r = json_object_array_get_idx(rows, i);
		const char *cmd = json_get_string(r, "cmdline");
		int used = 8 + 1 + 8 + 1 + 8 + 2 + 16 + 1 + 8 * 3 + 9 + 2;
		int room;
		char start[32];

		if (threads) {
			printf("%8lld  %-16s %7.2f %7.2f %7.2f %8lld\n",
			       (long long)json_get_int(r, "tid"),
			       strempty(json_get_string(r, "comm")), json_get_double(r, "user_pct"),
			       json_get_double(r, "sys_pct"), json_get_double(r, "cpu_pct"),
			       (long long)json_get_int(r, "samples"));
			continue;
		}
		if (!cmd || !*cmd)
			cmd = "";
		room = width > used ? width - used : (int)strlen(cmd);
		printf("%8lld %8lld %8s  %-16s %7.2f %7.2f %7.2f %8lld  %.*s%s\n",
		       (long long)json_get_int(r, "pid"), (long long)json_get_int(r, "ppid"),
		       start_string(json_get_double(r, "start_time"), start, sizeof(start)),
		       strempty(json_get_string(r, "comm")), json_get_double(r, "user_pct"),
		       json_get_double(r, "sys_pct"), json_get_double(r, "cpu_pct"),
		       (long long)json_get_int(r, "samples"), room, cmd,
		       json_object_get_boolean(json_object_object_get(r, "exited")) ? " (exited)"
										    : "");
	}
}

int cmd_ps(CliContext *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "since", required_argument, NULL, OPT_SINCE },
		{ "until", required_argument, NULL, OPT_UNTIL },
		{ "pid", required_argument, NULL, OPT_PID },
		{ "start", required_argument, NULL, OPT_START },
		{ "children", no_argument, NULL, OPT_CHILDREN },
		{ "threads", no_argument, NULL, OPT_THREADS },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	_cleanup_json_ json_object *answer = NULL;
	Request req;
	int c, r;

	request_init(&req, COMMAND_PS);
	req.limit = REQUEST_LIMIT_MAX;
	while ((c = getopt_long(argc, argv, "hn:", options, NULL)) >= 0) {
		switch (c) {
		case 'h':
			printf("Usage: profq ps [--since DUR] [--until DUR] [-n N] [--json]\n"
			       "                [--pid N [--start TIME] [--children | --threads]]\n"
			       "\n"
			       "Processes by sampled CPU time in the range (default: all\n"
			       "retained data), exited ones flagged. --pid: one process (the\n"
			       "newest incarnation, or the one --start names), with\n"
			       "--children its descendants, or with --threads one row per\n"
			       "thread.\n");
			return EXIT_OK;
		case OPT_THREADS:
			req.threads = true;
			break;
		default:
			r = cli_common_option("ps", c, optarg, ctx, &req);
			if (r < 0)
				return EXIT_USAGE;
			if (r == 0)
				return cli_usage_error("ps", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error("ps", "unexpected argument '%s'", argv[optind]);
	if (req.threads && !req.pid)
		return cli_usage_error("ps", "--threads needs --pid");
	r = cli_query(ctx, &req, &answer);
	if (r != EXIT_OK)
		return r;
	if (ctx->json)
		cli_print_json(answer);
	else
		render_ps(answer, req.threads);
	return EXIT_OK;
}
