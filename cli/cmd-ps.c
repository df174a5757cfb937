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

/* The UNIT column: the unit, "-" without one; a long name keeps its start and its type. */
static const char *unit_string(json_object *row, char *buf, size_t len)
{
	const char *unit = json_get_string(row, "unit");
	const char *dot;
	size_t n, keep;

	if (!unit || !*unit)
		return "-";
	n = strlen(unit);
	if (n <= 24 || len < 25) {
		snprintf(buf, len, "%s", unit);
		return buf;
	}
	/* "docker-0123456789ab….scope": the type tells what it is. */
	dot = strrchr(unit, '.');
	keep = dot && strlen(dot) < 10 ? strlen(dot) : 0;
	snprintf(buf, len, "%.*s~%s", (int)(23 - keep), unit, keep ? dot : "");
	return buf;
}

/* ps --by: one row per group; %CPU of the range's elapsed time (200 is two CPUs). */
static void render_groups(json_object *a, const Request *req)
{
	const char *key = group_by_to_string(req->by);
	json_object *rows;
	char upper[16];
	size_t i;

	for (i = 0; key[i] && i < sizeof(upper) - 1; i++)
		upper[i] = (char)(key[i] - 'a' + 'A');
	upper[i] = '\0';
	printf("%-40s %9s %7s %7s %7s %9s %8s\n", upper, "PROCESSES", "%USR", "%SYS", "%CPU", "CPU",
	       "SAMPLES");
	if (!json_object_object_get_ex(a, "rows", &rows))
		return;
	for (i = 0; i < json_object_array_length(rows); i++) {
		json_object *r = json_object_array_get_idx(rows, i);
		const char *name = json_get_string(r, key);

		printf("%-40s %9lld %7.2f %7.2f %7.2f %8.2fs %8lld\n",
		       name		       ? name
		       : req->by == GROUP_COMM ? "?"
					       : "(none)",
		       (long long)json_get_int(r, "processes"), json_get_double(r, "user_pct"),
		       json_get_double(r, "sys_pct"), json_get_double(r, "cpu_pct"),
		       json_get_double(r, "cpu_s"), (long long)json_get_int(r, "samples"));
	}
	cli_print_rows_left_out(a, rows);
}

static void render_ps(json_object *a, const Request *req)
{
	bool threads = req->threads;
	int width = cli_terminal_width();
	json_object *rows;

	if (req->by != GROUP_NONE) {
		render_groups(a, req);
		return;
	}
	if (threads)
		printf("%8s  %-16s %7s %7s %7s %8s %9s\n", "TID", "THREAD", "%USR", "%SYS", "%CPU",
		       "SAMPLES", "OFF-CPU");
	else
		printf("%8s %8s %8s  %-16s %-24s %7s %7s %7s %8s %9s  %s\n", "PID", "PPID", "START",
		       "COMM", "UNIT", "%USR", "%SYS", "%CPU", "SAMPLES", "OFF-CPU", "COMMAND");
	if (!json_object_object_get_ex(a, "rows", &rows))
		return;
	for (size_t i = 0; i < json_object_array_length(rows); i++) {
		json_object *r = json_object_array_get_idx(rows, i);
		const char *cmd = json_get_string(r, "cmdline");
		int used = 8 + 1 + 8 + 1 + 8 + 2 + 16 + 1 + 25 + 8 * 3 + 9 + 10 + 2;
		int room;
		char start[32], unit[32];

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
		printf("%8lld %8lld %8s  %-16s %-24s %7.2f %7.2f %7.2f %8lld %8.2fs  %.*s%s\n",
		       (long long)json_get_int(r, "pid"), (long long)json_get_int(r, "ppid"),
		       start_string(json_get_double(r, "start_time"), start, sizeof(start)),
		       strempty(json_get_string(r, "comm")), unit_string(r, unit, sizeof(unit)),
		       json_get_double(r, "user_pct"), json_get_double(r, "sys_pct"),
		       json_get_double(r, "cpu_pct"), (long long)json_get_int(r, "samples"),
		       json_get_double(r, "off_cpu_s"), room, cmd,
		       json_object_get_boolean(json_object_object_get(r, "exited")) ? " (exited)"
										    : "");
	}
	cli_print_rows_left_out(a, rows);
}

enum {
	OPT_THREADS = 0x200,
	OPT_SORT,
	OPT_USER,
	OPT_BY,
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
	case OPT_BY:
		if (group_by_from_string(arg) != GROUP_UNIT &&
		    group_by_from_string(arg) != GROUP_COMM &&
		    group_by_from_string(arg) != GROUP_CONTAINER)
			return cli_usage_error("ps", "--by: '%s' is not unit, comm or container",
					       arg);
		req->by = group_by_from_string(arg);
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
	if (req->threads && req->by != GROUP_NONE)
		return cli_usage_error("ps", "--by: not with --threads");
	if (req->has_uid && req->pid)
		return cli_usage_error("ps", "--user selects processes without --pid");
	return EXIT_OK;
}

static const CliQuery ps = {
	.name = "ps",
	.command = COMMAND_PS,
	.shared = CLI_OPT_RANGE | CLI_OPT_PID | CLI_OPT_START | CLI_OPT_CHILDREN | CLI_OPT_LIMIT |
		  CLI_OPT_MATCH | CLI_OPT_EVENT,
	.empty_is_not_found = true,
	.help = "Usage: profq ps [--since WHEN] [--until WHEN] [--range life] [-n N]\n"
		"                [--sort time|cpu|user|sys|samples|start|off-cpu]\n"
		"                [--event cpu|off-cpu|wall] [--json]\n"
		"                [--user NAME | --pid N [--start TIME]\n"
		"                 [--children | --threads]]\n"
		"                [--unit NAME] [--cgroup PATH] [--container ID] [--comm NAME]\n"
		"                [--by unit|comm|container]\n"
		"\n"
		"Processes by sampled CPU time in the range (default: all\n"
		"retained data), exited ones flagged; %CPU is of the time each\n"
		"process was alive in the range. -n N: the first N rows (20;\n"
		"0: all). --sort: by CPU time (the default), %CPU, %USR, %SYS,\n"
		"samples, or start (newest first). --user: one user's processes.\n"
		"--pid: one process (the newest incarnation, or the one --start\n"
		"names), with --children its descendants, or with --threads one\n"
		"row per thread. UNIT is the process's systemd unit; OFF-CPU the\n"
		"time its threads spent switched out.\n"
		"--unit NAME, --cgroup PATH, --container ID, --comm NAME: only the\n"
		"processes that match (all given): unit and comm are globs, a\n"
		"cgroup counts with those below it, an id may be cut short.\n"
		"--by: one row per unit, command name or container instead of per\n"
		"process, ranked the same way; %CPU is then of the range's time\n"
		"(200 is two CPUs' worth).\n"
		"--event off-cpu: the processes that waited, most first; wall:\n"
		"those that ran or waited.\n",
	.options =
		(const struct option[]){
			{ "threads", no_argument, NULL, OPT_THREADS },
			{ "sort", required_argument, NULL, OPT_SORT },
			{ "user", required_argument, NULL, OPT_USER },
			{ "by", required_argument, NULL, OPT_BY },
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
	/* ps ranks processes by their time; the memory they faulted in is profq mem's. */
	if (req.event == EVENT_FAULTS)
		return cli_usage_error("ps", "--event: 'faults' is not an event ps ranks by");
	/* Asked which processes waited: most first, unless --sort says otherwise. */
	if (req.event == EVENT_OFF_CPU && !sorted)
		req.sort = SORT_OFF_CPU;
	return cli_answer(&ps, ctx, &req);
}
