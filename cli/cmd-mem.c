/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <math.h>
#include <time.h>

#include "base/json-util.h"
#include "command.h"
#include "memplot.h"

/* Bytes as a short size: 1.5G, 96.0M, 512K. */
static const char *size_string(int64_t bytes, char *buf, size_t len)
{
	static const char units[] = "KMGTP";
	double v = (double)bytes;
	size_t u = 0;

	if (bytes < 1024) {
		snprintf(buf, len, "%lldB", (long long)bytes);
		return buf;
	}
	v /= 1024;
	while (v >= 1024 && u + 1 < sizeof(units) - 1) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "%.1f%c", v, units[u]);
	return buf;
}

static const char *clock_string(json_object *v, char *buf, size_t len)
{
	double t;
	time_t sec;
	struct tm tm;

	if (!v)
		return "-";
	t = json_object_get_double(v);
	sec = (time_t)t;
	localtime_r(&sec, &tm);
	strftime(buf, len, "%H:%M:%S", &tm);
	snprintf(buf + strlen(buf), len - strlen(buf), ".%03d",
		 (int)((t - (double)sec) * 1000 + 0.5) % 1000);
	return buf;
}

static void render_peak(json_object *a)
{
	char size[32], at[32];

	printf("peak %s (%lld bytes) at %s%s",
	       size_string(json_get_int(a, "peak_rss_bytes"), size, sizeof(size)),
	       (long long)json_get_int(a, "peak_rss_bytes"),
	       clock_string(json_object_object_get(a, "peak_time"), at, sizeof(at)),
	       json_object_get_boolean(json_object_object_get(a, "peak_exact"))
		       ? ""
		       : " (largest point in range)");
	if (json_object_get_boolean(json_object_object_get(a, "oom_killed")))
		printf("; killed by the OOM killer at %s",
		       clock_string(json_object_object_get(a, "oom_time"), at, sizeof(at)));
	printf("\n");
}

static void render_process(json_object *a)
{
	json_object *points = json_object_object_get(a, "points");
	char t[32], b[4][32];

	printf("pid %lld (%s)", (long long)json_get_int(a, "pid"),
	       strempty(json_get_string(a, "comm")));
	if (json_get_string(a, "cmdline"))
		printf(" %s", json_get_string(a, "cmdline"));
	printf("%s\n",
	       json_object_get_boolean(json_object_object_get(a, "exited")) ? " (exited)" : "");
	render_peak(a);
	printf("\n%-12s %9s %9s %9s %9s\n", "TIME", "RSS", "ANON", "FILE", "SHMEM");
	for (size_t i = 0; i < json_object_array_length(points); i++) {
		json_object *p = json_object_array_get_idx(points, i);

		printf("%-12s %9s %9s %9s %9s%s%s\n",
		       clock_string(json_object_object_get(p, "time"), t, sizeof(t)),
		       size_string(json_get_int(p, "rss_bytes"), b[0], sizeof(b[0])),
		       size_string(json_get_int(p, "anon_bytes"), b[1], sizeof(b[1])),
		       size_string(json_get_int(p, "file_bytes"), b[2], sizeof(b[2])),
		       size_string(json_get_int(p, "shmem_bytes"), b[3], sizeof(b[3])),
		       json_object_object_get(p, "oom_kill") ? "  OOM kill" : "",
		       json_object_object_get(p, "exit") ? "  exit" : "");
	}
}

static void render_ranking(json_object *a)
{
	json_object *rows = json_object_object_get(a, "rows");
	char b[3][32], at[32];

	printf("%8s  %-16s %9s %-12s %9s %9s  %s\n", "PID", "COMM", "PEAK", "AT", "RSS", "GROWTH",
	       "");
	for (size_t i = 0; i < json_object_array_length(rows); i++) {
		json_object *r = json_object_array_get_idx(rows, i);
		int64_t growth = json_get_int(r, "growth_bytes");

		printf("%8lld  %-16s %9s %-12s %9s %8s%s%s%s\n", (long long)json_get_int(r, "pid"),
		       strempty(json_get_string(r, "comm")),
		       size_string(json_get_int(r, "peak_rss_bytes"), b[0], sizeof(b[0])),
		       clock_string(json_object_object_get(r, "peak_time"), at, sizeof(at)),
		       size_string(json_get_int(r, "rss_bytes"), b[1], sizeof(b[1])),
		       growth < 0 ? "-" : "+",
		       size_string(growth < 0 ? -growth : growth, b[2], sizeof(b[2])),
		       json_object_get_boolean(json_object_object_get(r, "exited")) ? "  (exited)"
										    : "",
		       json_object_get_boolean(json_object_object_get(r, "oom_killed"))
			       ? "  (OOM killed)"
			       : "");
	}
	cli_print_rows_left_out(a, rows);
}

static void render_mem(json_object *a, const Request *req)
{
	if (req->pid)
		render_process(a);
	else
		render_ranking(a);
}

enum {
	OPT_SORT = 0x200,
	OPT_OUTPUT,
};

typedef struct MemArgs {
	const char *output;
} MemArgs;

static int parse_option(int opt, const char *arg, Request *req, void *userdata)
{
	MemArgs *args = userdata;

	switch (opt) {
	case OPT_SORT:
		if (!sort_key_valid(COMMAND_MEM, sort_key_from_string(arg)))
			return cli_usage_error("mem", "--sort: '%s' is not peak or growth", arg);
		req->sort = sort_key_from_string(arg);
		return EXIT_OK;
	case 'o':
	case OPT_OUTPUT:
		args->output = arg;
		return EXIT_OK;
	default:
		return CLI_UNKNOWN;
	}
}

static int check(const CliContext *ctx, const Request *req, void *userdata)
{
	const MemArgs *args = userdata;

	(void)ctx;
	if (args->output && !req->pid)
		return cli_usage_error("mem", "-o needs --pid");
	return EXIT_OK;
}

static const CliQuery mem_query = {
	.name = "mem",
	.command = COMMAND_MEM,
	.shared = CLI_OPT_RANGE | CLI_OPT_PID | CLI_OPT_START | CLI_OPT_LIMIT,
	.empty_is_not_found = true,
	.help = "Usage: profq mem [--pid N [--start TIME] [-o FILE.svg]]\n"
		"                [--since WHEN] [--until WHEN] [--range life]\n"
		"                [-n N] [--sort peak|growth] [--json]\n"
		"\n"
		"The resident set over time. With --pid: its points (RSS,\n"
		"anonymous, file and shared memory; one a second at most while\n"
		"it changes, none while flat), its peak (the kernel's high-water\n"
		"mark) and when, and whether the OOM killer ended it; -o writes\n"
		"an SVG plot of the points with the peak marked. Without --pid:\n"
		"processes by peak (or --sort growth: last point less the first\n"
		"in the range).\n",
	.options =
		(const struct option[]){
			{ "sort", required_argument, NULL, OPT_SORT },
			{ "output", required_argument, NULL, OPT_OUTPUT },
			{},
		},
	.short_options = "o:",
	.option = parse_option,
	.check = check,
	.render = render_mem,
};

static int write_plot(const CliContext *ctx, const Request *req, const char *path)
{
	_cleanup_json_ json_object *answer = NULL;
	_cleanup_fclose_ FILE *f = NULL;
	int r;

	r = cli_query(ctx, req, &answer);
	if (r != EXIT_OK)
		return r;
	f = streq(path, "-") ? NULL : fopen(path, "we");
	if (!streq(path, "-") && !f) {
		fprintf(stderr, "profq mem: Failed to open '%s': %m\n", path);
		return EXIT_USAGE;
	}
	r = memplot_write(answer, f ?: stdout);
	if (r >= 0 && f && fflush(f) != 0)
		r = -errno;
	if (r < 0) {
		errno = -r;
		fprintf(stderr, "profq mem: Failed to write '%s': %m\n", path);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

int cmd_mem(CliContext *ctx, int argc, char **argv)
{
	MemArgs args = { 0 };
	Request req;
	int r;

	r = cli_parse(&mem_query, ctx, &req, argc, argv, &args);
	if (r != CLI_PARSED)
		return r;
	if (optind < argc)
		return cli_usage_error("mem", "unexpected argument '%s'", argv[optind]);
	if (args.output)
		return write_plot(ctx, &req, args.output);
	return cli_answer(&mem_query, ctx, &req);
}
