/* SPDX-License-Identifier: MIT */
#include <getopt.h>

#include "cli.h"
#include "json-util.h"

static void render_ps(json_object *a)
{
	json_object *rows;
	int width = cli_terminal_width();

	printf("%8s  %-16s %7s %7s %7s %8s  %s\n", "PID", "COMM", "%USR", "%SYS", "%CPU", "SAMPLES",
	       "COMMAND");
	if (!json_object_object_get_ex(a, "rows", &rows))
		return;
	for (size_t i = 0; i < json_object_array_length(rows); i++) {
		json_object *r = json_object_array_get_idx(rows, i);
		const char *cmd = json_get_string(r, "cmdline");
		int used = 8 + 2 + 16 + 1 + 8 * 3 + 9 + 2;
		int room = width > used ? width - used : 0;

		if (!cmd || !*cmd)
			cmd = "";
		printf("%8lld  %-16s %7.2f %7.2f %7.2f %8lld  %.*s%s\n",
		       (long long)json_get_int(r, "pid"), strempty(json_get_string(r, "comm")),
		       json_get_double(r, "user_pct"), json_get_double(r, "sys_pct"),
		       json_get_double(r, "cpu_pct"), (long long)json_get_int(r, "samples"),
		       room ? room : (int)strlen(cmd), cmd,
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
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	_cleanup_json_ json_object *answer = NULL;
	Request req;
	int c, r;

	request_init(&req, COMMAND_PS);
	req.limit = REQUEST_LIMIT_MAX;
	while ((c = getopt_long(argc, argv, "hn:", options, NULL)) >= 0) {
		if (c == 'h') {
			printf("Usage: profq ps [--since DUR] [--until DUR] [--pid N] [-n N] "
			       "[--json]\n"
			       "\n"
			       "Processes by sampled CPU time in the range (default: all retained "
			       "data).\n");
			return EXIT_OK;
		}
		r = cli_common_option("ps", c, optarg, ctx, &req);
		if (r < 0)
			return EXIT_USAGE;
		if (r == 0)
			return cli_usage_error("ps", "unknown option '%s'", argv[optind - 1]);
	}
	if (optind < argc)
		return cli_usage_error("ps", "unexpected argument '%s'", argv[optind]);
	r = cli_query(ctx, &req, &answer);
	if (r != EXIT_OK)
		return r;
	if (ctx->json)
		cli_print_json(answer);
	else
		render_ps(answer);
	return EXIT_OK;
}
