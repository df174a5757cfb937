/* SPDX-License-Identifier: MIT */
#include <pwd.h>
#include <time.h>

#include "base/json-util.h"
#include "base/parse.h"
#include "command.h"

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

static void render_ps(json_object *a, const Request *req)
{
	bool threads = req->threads;
	int width = cli_terminal_width();
	json_object *rows;

	if (threads)
		printf("%8s  %-16s %7s %7s %7s %8s %9s\n", "TID", "THREAD", "%USR", "%SYS", "%CPU",
		       "SAMPLES", "OFF-CPU");
	else
		printf("%8s %8s %8s  %-16s %7s %7s %7s %8s %9s  %s\n", "PID", "PPID", "START",
		       "COMM", "%USR", "%SYS", "%CPU", "SAMPLES", "OFF-CPU", "COMMAND");
	if (!json_object_object_get_ex(a, "rows", &rows))
		return;
	for (size_t i = 0; i < json_object_array_length(rows); i++) {
		json_object *r = json_object_array_get_idx(rows, i);
		const char *cmd = json_get_string(r, "cmdline");
		int used = 8 + 1 + 8 + 1 + 8 + 2 + 16 + 1 + 8 * 3 + 9 + 10 + 2;
		int room;
		char start[32];

		if (threads) {
			printf("%8lld  %-16s %7.2f %7.2f %7.2f %8lld %8.2fs\n",
			       (long long)json_get_int(r, "tid"),
			       strempty(json_get_string(r, "comm")), json_get_double(r, "user_pct"),
			       json_get_double(r, "sys_pct"), json_get_double(r, "cpu_pct"),
			       (long long)json_get_int(r, "samples"),
			       json_get_double(r, "off_cpu_s"));
			continue;
		}
		if (!cmd || !*cmd)
			cmd = "";
		room = width > used ? width - used : (int)strlen(cmd);
		printf("%8lld %8lld %8s  %-16s %7.2f %7.2f %7.2f %8lld %8.2fs  %.*s%s\n",
		       (long long)json_get_int(r, "pid"), (long long)json_get_int(r, "ppid"),
		       start_string(json_get_double(r, "start_time"), start, sizeof(start)),
		       strempty(json_get_string(r, "comm")), json_get_double(r, "user_pct"),
		       json_get_double(r, "sys_pct"), json_get_double(r, "cpu_pct"),
		       (long long)json_get_int(r, "samples"), json_get_double(r, "off_cpu_s"), room,
		       cmd,
		       json_object_get_boolean(json_object_object_get(r, "exited")) ? " (exited)"
										    : "");
	}
	if (json_get_int(a, "total_rows") > (int64_t)json_object_array_length(rows))
		printf("(%lld of %lld rows, by %s; -n 0 shows all)\n",
		       (long long)json_object_array_length(rows),
		       (long long)json_get_int(a, "total_rows"),
		       strempty(json_get_string(a, "sort")));
}

enum {
	OPT_THREADS = 0x200,
	OPT_SORT,
	OPT_USER,
};

/* --user: a user name, or a numeric uid. */
static int parse_user(const char *arg, uint32_t *ret)
{
	struct passwd *pw = getpwnam(arg);

	if (pw) {
		*ret = (uint32_t)pw->pw_uid;
		return 0;
	}
	return parse_uint32(arg, 0, UINT32_MAX - 1, ret);
}

static int parse_option(int opt, const char *arg, Request *req, void *userdata)
{
	bool *sorted = userdata;

	switch (opt) {
	case OPT_THREADS:
		req->threads = true;
		return EXIT_OK;
	case OPT_SORT:
		if (!sort_key_valid(COMMAND_PS, sort_key_from_string(arg)))
			return cli_usage_error("ps",
					       "--sort: '%s' is not time, cpu, user, sys, samples, "
					       "start or off-cpu",
					       arg);
		req->sort = sort_key_from_string(arg);
		*sorted = true;
		return EXIT_OK;
	default: /* --user */
		if (parse_user(arg, &req->uid) < 0)
			return cli_usage_error("ps", "--user: '%s' is not a user name or uid", arg);
		req->has_uid = true;
		return EXIT_OK;
	}
}

static int check(const CliContext *ctx, const Request *req, void *userdata)
{
	(void)ctx, (void)userdata;
	if (req->threads && !req->pid)
		return cli_usage_error("ps", "--threads needs --pid");
	if (req->has_uid && req->pid)
		return cli_usage_error("ps", "--user selects processes without --pid");
	return EXIT_OK;
}

static const CliQuery ps = {
	.name = "ps",
	.command = COMMAND_PS,
	.shared = CLI_OPT_RANGE | CLI_OPT_PID | CLI_OPT_START | CLI_OPT_CHILDREN | CLI_OPT_LIMIT |
		  CLI_OPT_EVENT,
	.empty_is_not_found = true,
	.help = "Usage: profq ps [--since WHEN] [--until WHEN] [--range life] [-n N]\n"
		"                [--sort time|cpu|user|sys|samples|start|off-cpu]\n"
		"                [--event cpu|off-cpu|wall] [--json]\n"
		"                [--user NAME | --pid N [--start TIME]\n"
		"                 [--children | --threads]]\n"
		"\n"
		"Processes by sampled CPU time in the range (default: all\n"
		"retained data), exited ones flagged; %CPU is of the time each\n"
		"process was alive in the range. -n N: the first N rows (20;\n"
		"0: all). --sort: by CPU time (the default), %CPU, %USR, %SYS,\n"
		"samples, or start (newest first). --user: one user's processes.\n"
		"--pid: one process (the newest incarnation, or the one --start\n"
		"names), with --children its descendants, or with --threads one\n"
		"row per thread. OFF-CPU: the time its threads spent switched out.\n"
		"--event off-cpu: the processes that waited, most first; wall:\n"
		"those that ran or waited.\n",
	.options =
		(const struct option[]){
			{ "threads", no_argument, NULL, OPT_THREADS },
			{ "sort", required_argument, NULL, OPT_SORT },
			{ "user", required_argument, NULL, OPT_USER },
			{},
		},
	.option = parse_option,
	.check = check,
	.render = render_ps,
};

int cmd_ps(CliContext *ctx, int argc, char **argv)
{
	bool sorted = false;
	Request req;
	int r;

	r = cli_parse(&ps, ctx, &req, argc, argv, &sorted);
	if (r != CLI_PARSED)
		return r;
	/* Asked which processes waited: most first, unless --sort says otherwise. */
	if (req.event == EVENT_OFF_CPU && !sorted)
		req.sort = SORT_OFF_CPU;
	return cli_answer(&ps, ctx, &req);
}
