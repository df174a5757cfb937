/* SPDX-License-Identifier: MIT */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "base/json-util.h"
#include "command.h"

static void print_clock(const char *label, json_object *v)
{
	double t = json_object_get_double(v);
	char buf[64];

	printf("%s %s.%03d", label, cli_format_time(t, buf, sizeof(buf)),
	       (int)((t - (double)(time_t)t) * 1000));
}

static void print_status(int status)
{
	if (WIFEXITED(status))
		printf(", exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		printf(", killed by signal %d (%s)%s", WTERMSIG(status),
		       strsignal(WTERMSIG(status)), WCOREDUMP(status) ? ", core dumped" : "");
}

static void row(const char *label, json_object *o, double real, bool with_real, bool with_pct)
{
	if (with_real)
		printf("%10.3fs", real);
	else
		printf("%11s", "");
	printf(" %9.3fs %9.3fs", json_get_double(o, "user_s"), json_get_double(o, "sys_s"));
	if (with_pct)
		printf(" %8.1f%%", json_get_double(o, "cpu_pct"));
	else
		printf(" %9s", "");
	printf("   %s\n", label);
}

/* time over the processes a request's labels selected: one line each, then their sums. */
static void render_group(json_object *a)
{
	json_object *rows, *o;
	char label[96], when[64];
	int64_t total = json_get_int(a, "total_rows");
	size_t n;

	printf("\n%8s  %-16s %-19s %10s %10s %10s %9s\n", "PID", "COMM", "START", "real", "user",
	       "sys", "cpu%");
	if (!json_object_object_get_ex(a, "rows", &rows))
		return;
	n = json_object_array_length(rows);
	for (size_t i = 0; i < n; i++) {
		json_object *r = json_object_array_get_idx(rows, i);

		printf("%8lld  %-16s %-19s %9.3fs %9.3fs %9.3fs %8.1f%%%s\n",
		       (long long)json_get_int(r, "pid"), strempty(json_get_string(r, "comm")),
		       cli_format_time(json_get_double(r, "start_time"), when, sizeof(when)),
		       json_get_double(r, "real_s"), json_get_double(r, "user_s"),
		       json_get_double(r, "sys_s"), json_get_double(r, "cpu_pct"),
		       json_object_get_boolean(json_object_object_get(r, "exited")) ? " (exited)"
										    : "");
	}
	if (total > (int64_t)n)
		printf("(%zu of %lld processes, oldest first; -n 0 shows all)\n", n,
		       (long long)total);
	printf("\n%11s %10s %10s %9s\n", "real", "user", "sys", "cpu%");
	snprintf(label, sizeof(label), "%lld processes, summed (%s accounting)", (long long)total,
		 strempty(json_get_string(a, "accounting")));
	row(label, a, json_get_double(a, "real_s"), true, true);
	if (json_object_object_get_ex(a, "sampled", &o)) {
		snprintf(label, sizeof(label), "sampled (%lld samples)",
			 (long long)json_get_int(o, "samples"));
		row(label, o, 0, false, false);
	}
	printf("%10.3fs %33s   wall time from the first start to the last exit\n",
	       json_get_double(a, "span_s"), "");
}

/* Where the rest of the real time went: off the CPU, by state; then per thread. */
static void render_off_cpu(json_object *a)
{
	json_object *o, *threads;
	size_t n;

	if (!json_object_object_get_ex(a, "off_cpu", &o) || !o)
		return;
	printf("\n%11s %10s %10s %10s\n", "off-cpu", "runnable", "sleeping", "blocked");
	printf("%10.3fs %9.3fs %9.3fs %9.3fs   process (sampled switches)\n",
	       json_get_double(o, "off_cpu_s"), json_get_double(o, "runnable_s"),
	       json_get_double(o, "sleeping_s"), json_get_double(o, "blocked_s"));
	if (!json_object_object_get_ex(a, "threads", &threads) || !threads)
		return;
	n = json_object_array_length(threads);
	printf("\n%8s  %-16s %9s %9s %10s %10s %10s %10s\n", "TID", "COMM", "user", "sys",
	       "off-cpu", "runnable", "sleeping", "blocked");
	for (size_t i = 0; i < n; i++) {
		json_object *t = json_object_array_get_idx(threads, i);

		printf("%8lld  %-16.16s %8.3fs %8.3fs %9.3fs %9.3fs %9.3fs %9.3fs\n",
		       (long long)json_get_int(t, "tid"), strempty(json_get_string(t, "comm")),
		       json_get_double(t, "sampled_user_s"), json_get_double(t, "sampled_sys_s"),
		       json_get_double(t, "off_cpu_s"), json_get_double(t, "runnable_s"),
		       json_get_double(t, "sleeping_s"), json_get_double(t, "blocked_s"));
	}
}

static void render_time(json_object *a, const Request *req)
{
	json_object *v, *o;
	double real = json_get_double(a, "real_s");
	bool exited = json_object_get_boolean(json_object_object_get(a, "exited"));
	char label[96];

	if (request_has_match(req)) {
		render_group(a);
		return;
	}
	printf("pid %lld (%s)", (long long)json_get_int(a, "pid"),
	       strempty(json_get_string(a, "comm")));
	if (json_get_string(a, "cmdline"))
		printf(" %s", json_get_string(a, "cmdline"));
	printf("\n");
	if (json_object_object_get_ex(a, "start_time", &v))
		print_clock("started", v);
	if (exited && json_object_object_get_ex(a, "exit_time", &v) && v) {
		print_clock(", exited", v);
		if (json_object_object_get_ex(a, "exit_code", &v) && v)
			print_status(json_object_get_int(v));
	} else {
		printf(", running");
	}
	printf("\n\n%11s %10s %10s %9s\n", "real", "user", "sys", "cpu%");
	snprintf(label, sizeof(label), "process (%s accounting)",
		 streq_ptr(json_get_string(a, "accounting"), "kernel") ? "kernel" : "sampled");
	row(label, a, real, true, true);
	if (json_object_object_get_ex(a, "children", &o))
		row("waited-for children", o, real, false, false);
	if (json_object_object_get_ex(a, "with_children", &o))
		row("with waited-for children, as time(1)", o, real, false, true);
	if (json_object_object_get_ex(a, "descendants", &o)) {
		snprintf(label, sizeof(label), "%lld descendants seen (their own accounting)",
			 (long long)json_get_int(o, "count"));
		row(label, o, real, false, false);
	}
	if (json_object_object_get_ex(a, "sampled", &o)) {
		snprintf(label, sizeof(label), "sampled (%lld samples%s)",
			 (long long)json_get_int(o, "samples"),
			 json_object_object_get(a, "descendants") ? ", descendants included" : "");
		row(label, o, real, false, false);
	}
	/* time(1)'s %M, of the process itself (its children have their own). */
	if (json_object_object_get_ex(a, "peak_rss_bytes", &v) && v)
		printf("\nmaximum resident set %.1f MiB (%lld bytes)\n",
		       (double)json_object_get_int64(v) / (1024.0 * 1024.0),
		       (long long)json_object_get_int64(v));
	render_off_cpu(a);
}

static const CliQuery time_query = {
	.name = "time",
	.command = COMMAND_TIME,
	.shared = CLI_OPT_PID | CLI_OPT_START | CLI_OPT_CHILDREN | CLI_OPT_MATCH | CLI_OPT_LIMIT,
	.needs_pid = true,
	.help = "Usage: profq time --pid N [--start TIME] [--children] [--json]\n"
		"       profq time [--unit NAME] [--cgroup PATH] [--container ID]\n"
		"                  [--comm NAME] [-n N] [--json]\n"
		"\n"
		"Like time(1), for any process the daemon has seen, running\n"
		"or exited: real (start to exit, or to now), user and sys\n"
		"(the kernel's accounting), cpu% = 100*(user+sys)/real;\n"
		"waited-for children on their own line; and the sampled\n"
		"estimate (samples x period); the maximum resident set (the\n"
		"kernel's high-water mark, with memory tracking). The newest\n"
		"incarnation of the\n"
		"pid, unless --start (a start time from 'profq ps') names\n"
		"another. --children adds the descendants seen.\n"
		"--unit NAME, --cgroup PATH, --container ID, --comm NAME: every\n"
		"process known that matches (all given; unit and comm are globs,\n"
		"a cgroup counts with those below it, an id may be cut short),\n"
		"one line each (-n N of them, 20; 0: all), and the sums of real\n"
		"(their lives), user and sys.\n"
		"Then where the rest of the real time went (when profqd records it):\n"
		"off-CPU time, runnable (waiting for a CPU), sleeping\n"
		"(interruptible: sleeps, polls, locks, pipes) and blocked\n"
		"(uninterruptible, usually disk I/O), for the process and each\n"
		"of its threads.\n",
	.render = render_time,
};

int cmd_time(CliContext *ctx, int argc, char **argv)
{
	return cli_query_command(&time_query, ctx, argc, argv);
}
