/* SPDX-License-Identifier: MIT */
/*
 * profq diff: the change of each function's share between two profiles, a base and a "with",
 * of one process over two time ranges, or of two processes (docs/profq.1). Each side is a `top`
 * answer with every function; rows are joined by (function, module; a Python function's .py
 * file too) and ranked by how much
 * their share moved, in percentage points of each side's own samples (so a longer range or a
 * busier process does not look like a regression).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/json-util.h"
#include "base/parse.h"
#include "command.h"

enum {
	OPT_OUTPUT = 'o',
	OPT_BASE = 0x200,
	OPT_WITH,
	OPT_BASE_PID,
	OPT_SORT,
	OPT_BASE_UNIT,
};

typedef struct Side {
	const char *name;  /* "base", "with" */
	const char *range; /* as given, for the output; NULL: all retained */
	bool life;	   /* "life": the side's process's life, asked for before its profile */
	Request req;
	json_object *answer;
} Side;

typedef struct DiffArgs {
	Side sides[2];
	uint32_t base_pid;     /* --base-pid; 0: pid for both sides */
	const char *base_unit; /* --base-unit; NULL: the same selection for both sides */
	bool by_total;	       /* --sort total */
	const char *output;    /* -o: a differential flame graph there too */
} DiffArgs;

typedef struct DiffRow {
	const char *function, *module;
	const char *file; /* a Python function's .py file; NULL for the others */
	bool python;
	json_object *source; /* the first side's row of it */
	double pct[2];	     /* self% or total% (the sort key) in base and with */
	double other[2];     /* the other percentage */
	int64_t samples[2];  /* of the sort key */
} DiffRow;

/* An end of a RANGE: a duration back from now, or a point in time (cli_parse_time()). */
static int parse_range_end(const char *s, uint64_t *ret)
{
	struct timespec ts;
	int64_t now, at;

	if (parse_duration_ns(s, ret) == 0)
		return 0;
	clock_gettime(CLOCK_REALTIME, &ts);
	now = (int64_t)ts.tv_sec * (int64_t)NSEC_PER_SEC + ts.tv_nsec;
	if (cli_parse_time(s, now, &at) < 0 || at > now)
		return -EINVAL;
	*ret = (uint64_t)(now - at);
	return 0;
}

/* RANGE: "SINCE..UNTIL", "SINCE.." or "SINCE" (until now), "all", or "life" (*ret_life). */
static int parse_range(const char *s, Request *req, bool *ret_life)
{
	_cleanup_free_ char *since = NULL;
	const char *dots = strstr(s, "..");
	uint64_t a, b = 0;

	req->has_since = req->has_until = false;
	*ret_life = streq(s, "life");
	if (streq(s, "all") || *ret_life)
		return 0;
	since = dots ? strndup(s, (size_t)(dots - s)) : strdup(s);
	if (!since)
		return -ENOMEM;
	if (parse_range_end(since, &a) < 0)
		return -EINVAL;
	if (dots && dots[2] && parse_range_end(dots + 2, &b) < 0)
		return -EINVAL;
	if (b >= a)
		return -EINVAL;
	req->has_since = true;
	req->since_ns = a;
	if (b) {
		req->has_until = true;
		req->until_ns = b;
	}
	return 0;
}

static int cmp_rows(const void *x, const void *y)
{
	const DiffRow *a = x, *b = y;
	double da = fabs(a->pct[1] - a->pct[0]), db = fabs(b->pct[1] - b->pct[0]);

	if (da != db)
		return da > db ? -1 : 1;
	return strcmp(a->function, b->function);
}

/* Joins the two answers' rows; *ret is sorted by the change of the sort key's share. */
static int join(Side sides[2], bool by_total, DiffRow **ret, size_t *ret_n)
{
	const char *key = by_total ? "total_pct" : "self_pct";
	const char *other = by_total ? "self_pct" : "total_pct";
	const char *count = by_total ? "total_samples" : "self_samples";
	_cleanup_free_ DiffRow *rows = NULL;
	size_t n = 0, allocated = 0;
	/* Rows by name for the join: a linear scan per row is quadratic in the functions of a
	 * process (tens of thousands for node), so the names are indexed. */
	_cleanup_(json_object_putp) json_object *index = json_object_new_object();

	if (!index)
		return -ENOMEM;
	for (int s = 0; s < 2; s++) {
		json_object *a;

		if (!json_object_object_get_ex(sides[s].answer, "rows", &a))
			continue;
		for (size_t i = 0; i < json_object_array_length(a); i++) {
			json_object *r = json_object_array_get_idx(a, i), *at;
			const char *fn = json_get_string(r, "function");
			const char *mod = json_get_string(r, "module");
			/* A Python function is its .py file's: every module's code is
			 * "<module>" of "[python]". */
			bool python = json_get_bool(r, "python");
			const char *file = python ? json_get_string(r, "file") : NULL;
			_cleanup_free_ char *k = NULL;
			DiffRow *row;

			if (!fn)
				continue;
			if (asprintf(&k, "%s\x1f%s\x1f%s", fn, strempty(mod), strempty(file)) < 0)
				return -ENOMEM;
			if (json_object_object_get_ex(index, k, &at)) {
				row = &rows[json_object_get_int64(at)];
			} else {
				if (GREEDY_REALLOC(rows, allocated, n + 1) < 0)
					return -ENOMEM;
				row = &rows[n];
				*row = (DiffRow){ .function = fn,
						  .module = mod,
						  .file = file,
						  .python = python,
						  .source = r };
				if (json_add_index(index, k, n) < 0)
					return -ENOMEM;
				n++;
			}
			row->pct[s] = json_get_double(r, key);
			row->other[s] = json_get_double(r, other);
			row->samples[s] = json_get_int(r, count);
		}
	}
	if (n > 0)
		qsort(rows, n, sizeof(DiffRow), cmp_rows);
	*ret = TAKE_PTR(rows);
	*ret_n = n;
	return 0;
}

static int parse_option(int opt, const char *arg, Request *req, void *userdata)
{
	DiffArgs *args = userdata;
	Side *side;
	int r;

	(void)req;
	switch (opt) {
	case OPT_BASE:
	case OPT_WITH:
		side = &args->sides[opt == OPT_WITH];
		r = parse_range(arg, &side->req, &side->life);
		if (r == -ENOMEM)
			return EXIT_UNREACHABLE;
		if (r < 0)
			return cli_usage_error("diff",
					       "--%s: '%s' is not a range such as 20m..10m, "
					       "14:05..14:10, 10m, life or all",
					       side->name, arg);
		side->range = arg;
		return EXIT_OK;
	case OPT_OUTPUT:
		if (!*arg)
			return cli_usage_error("diff", "-o: an empty file name");
		args->output = arg;
		return EXIT_OK;
	case OPT_BASE_PID:
		if (parse_uint32(arg, 1, UINT32_MAX, &args->base_pid) < 0)
			return cli_usage_error("diff", "--base-pid: '%s' is not a process id", arg);
		return EXIT_OK;
	case OPT_BASE_UNIT:
		if (!arg[0] || strlen(arg) >= REQUEST_UNIT_MAX)
			return cli_usage_error("diff",
					       "--base-unit: '%s' is not 1 to %d characters", arg,
					       REQUEST_UNIT_MAX - 1);
		args->base_unit = arg;
		return EXIT_OK;
	default: /* --sort */
		if (!sort_key_valid(COMMAND_TOP, sort_key_from_string(arg)))
			return cli_usage_error("diff", "--sort: '%s' is not self or total", arg);
		args->by_total = sort_key_from_string(arg) == SORT_TOTAL;
		return EXIT_OK;
	}
}

static int check(const CliContext *ctx, const Request *req, void *userdata)
{
	const DiffArgs *args = userdata;

	(void)ctx;
	if (args->output && streq(args->output, "-"))
		return cli_usage_error("diff",
				       "-o: the table goes to standard output: give a file");
	if (!args->base_pid && !args->base_unit && !args->sides[0].range && !args->sides[1].range)
		return cli_usage_error("diff", "nothing to compare: give --base RANGE, "
					       "--with RANGE, --base-pid P or --base-unit NAME");
	if (args->base_pid && args->base_unit)
		return cli_usage_error("diff", "--base-pid: not with --base-unit");
	if (args->base_unit && !request_has_match(req))
		return cli_usage_error("diff", "--base-unit needs --unit, --cgroup, --container "
					       "or --comm for the other side");
	if (request_has_match(req) && (args->sides[0].life || args->sides[1].life))
		return cli_usage_error("diff", "a range of 'life' needs --pid");
	return EXIT_OK;
}

static const CliQuery diff = {
	.name = "diff",
	.command = COMMAND_TOP,
	.shared = CLI_OPT_PID | CLI_OPT_INLINE | CLI_OPT_LIMIT | CLI_OPT_MATCH | CLI_OPT_EVENT,
	.needs_pid = true,
	.help = "Usage: profq diff --pid N [--base RANGE] [--with RANGE]\n"
		"                  [--base-pid P] [-n N] [--sort self|total]\n"
		"                  [--event cpu|off-cpu|wall|faults]\n"
		"                  [--[no-]inline] [--[no-]python] [-o FILE.svg]\n"
		"                  [--json]\n"
		"       profq diff {--unit NAME | --cgroup PATH | --container ID |\n"
		"                   --comm NAME}... [--base RANGE] [--with RANGE]\n"
		"                  [--base-unit NAME] [-n N] ...\n"
		"\n"
		"How each function's share of the samples changed from the base\n"
		"profile to the other one: of pid N over two time ranges, or of\n"
		"pid P (the base) and pid N. With --unit, --cgroup, --container or\n"
		"--comm: of every process that matches, over two ranges, or against\n"
		"the processes of --base-unit NAME (the base). RANGE is\n"
		"SINCE..UNTIL, each a duration back from now or a time\n"
		"(20m..10m, 14:05..14:10),\n"
		"SINCE (until now), life (the process's), or all (the default).\n"
		"Rows are ranked by the change of SELF% (or TOTAL% with\n"
		"--sort total), in points of each side's own samples.\n"
		"-o FILE.svg also writes a differential flame graph: the other\n"
		"profile's call paths, red where their share grew, blue where it\n"
		"shrank.\n"
		"--event off-cpu or wall: of time switched out, or of wall time.\n",
	.options =
		(const struct option[]){
			{ "base", required_argument, NULL, OPT_BASE },
			{ "with", required_argument, NULL, OPT_WITH },
			{ "base-pid", required_argument, NULL, OPT_BASE_PID },
			{ "base-unit", required_argument, NULL, OPT_BASE_UNIT },
			{ "sort", required_argument, NULL, OPT_SORT },
			{ "output", required_argument, NULL, OPT_OUTPUT },
			{},
		},
	.short_options = "o:",
	.option = parse_option,
	.check = check,
};

/* Each side's answer: the shared options, the side's range and pid, every function. */
static int query_sides(const CliContext *ctx, const Request *common, DiffArgs *args)
{
	for (int s = 0; s < 2; s++) {
		Side *side = &args->sides[s];
		Request *q = &side->req;
		bool since = q->has_since, until = q->has_until;
		uint64_t since_ns = q->since_ns, until_ns = q->until_ns;
		int r;

		*q = *common;
		q->has_since = since, q->since_ns = since_ns;
		q->has_until = until, q->until_ns = until_ns;
		/* Every function: a row may be missing on one side only. */
		q->limit = REQUEST_LIMIT_MAX;
		q->sort = args->by_total ? SORT_TOTAL : SORT_SELF;
		if (s == 0 && args->base_pid) {
			q->pid = args->base_pid;
			q->match = (RequestMatch){ 0 };
		}
		if (s == 0 && args->base_unit) {
			q->match = (RequestMatch){ 0 };
			snprintf(q->match.unit, sizeof(q->match.unit), "%s", args->base_unit);
		}
		if (side->life) {
			CliContext life = *ctx;

			life.range_life = true;
			r = cli_resolve_range(&life, q);
			if (r != EXIT_OK) {
				fprintf(stderr, "profq diff: (the %s profile)\n", side->name);
				return r;
			}
		}
		r = cli_query(ctx, q, &side->answer);
		if (r != EXIT_OK) {
			fprintf(stderr, "profq diff: (the %s profile)\n", side->name);
			return r;
		}
	}
	return EXIT_OK;
}

static void side_json(json_object *o, const Side *s)
{
	json_object *side = json_object_new_object();

	if (!side)
		return;
	if (request_has_match(&s->req)) {
		json_object_object_add(side, "pid", NULL);
		json_add_int(side, "processes", json_get_int(s->answer, "processes"));
		json_add_int(side, "hidden", json_get_int(s->answer, "hidden"));
		json_add_string(side, "unit", s->req.match.unit[0] ? s->req.match.unit : NULL);
	} else {
		json_add_int(side, "pid", json_get_int(s->answer, "pid"));
		json_add_string(side, "comm", json_get_string(s->answer, "comm"));
	}
	json_add_int(side, "samples", json_get_int(s->answer, "samples"));
	json_add_string(side, "range", s->range ? s->range : "all");
	json_object_object_add(o, s->name, side);
}

static json_object *row_json(const DiffArgs *args, const DiffRow *r)
{
	const char *k = args->by_total ? "total" : "self", *ok = args->by_total ? "self" : "total";
	json_object *row = json_object_new_object();
	char name[32];

	if (!row)
		return NULL;
	json_add_string(row, "function", r->function);
	json_add_string(row, "module", r->module);
	json_add_string(row, "file", r->file);
	json_object_object_add(row, "python", json_object_new_boolean(r->python));
	for (int s = 0; s < 2; s++) {
		snprintf(name, sizeof(name), "%s_%s_pct", args->sides[s].name, k);
		json_add_double(row, name, r->pct[s], 2);
		snprintf(name, sizeof(name), "%s_%s_pct", args->sides[s].name, ok);
		json_add_double(row, name, r->other[s], 2);
		snprintf(name, sizeof(name), "%s_%s_samples", args->sides[s].name, k);
		json_add_int(row, name, r->samples[s]);
	}
	snprintf(name, sizeof(name), "delta_%s_pct", k);
	json_add_double(row, name, r->pct[1] - r->pct[0], 2);
	return row;
}

static int print_json(const DiffArgs *args, const DiffRow *rows, size_t n)
{
	_cleanup_json_ json_object *o = json_object_new_object();
	json_object *a = json_object_new_array();

	if (!o || !a) {
		json_object_put(a);
		return EXIT_UNREACHABLE;
	}
	json_add_string(o, "sort", args->by_total ? "total" : "self");
	side_json(o, &args->sides[0]);
	side_json(o, &args->sides[1]);
	for (size_t i = 0; i < n; i++) {
		json_object *row = row_json(args, &rows[i]);

		if (row)
			json_object_array_add(a, row);
	}
	json_object_object_add(o, "rows", a);
	cli_print_json(o);
	return EXIT_OK;
}

static void side_text(const Side *s)
{
	const char *event = json_get_string(s->answer, "event");
	/* Samples, or the time an off-CPU or wall profile covers. */
	const char *what = !event || streq(event, "cpu") ? "samples"
			   : streq(event, "wall")	 ? "of wall time"
			   : streq(event, "faults")	 ? "faulted in"
							 : "off the CPU";
	char label[REQUEST_CGROUP_MAX + 512], count[32];

	cli_count(s->answer, json_get_int(s->answer, "samples"), count, sizeof(count));
	if (request_has_match(&s->req))
		printf("%-5s %s: %" PRId64 " processes, %s %s, %s\n", s->name,
		       cli_match_label(&s->req, label, sizeof(label)),
		       json_get_int(s->answer, "processes"), count, what,
		       s->range ? s->range : "all retained");
	else
		printf("%-5s pid %" PRId64 " (%s), %s %s, %s\n", s->name,
		       json_get_int(s->answer, "pid"), strempty(json_get_string(s->answer, "comm")),
		       count, what, s->range ? s->range : "all retained");
	if (json_get_int(s->answer, "hidden") > 0)
		fprintf(stderr,
			"profq: note: %" PRId64 " more processes of the %s profile match that you "
			"may not see; they are left out.\n",
			json_get_int(s->answer, "hidden"), s->name);
}

static int print_text(const DiffArgs *args, const DiffRow *rows, size_t n)
{
	int width = cli_terminal_width();

	side_text(&args->sides[0]);
	side_text(&args->sides[1]);
	printf("\n%7s %7s %8s  %s (by %s)\n", "BASE%", "WITH%", "CHANGE", "FUNCTION",
	       args->by_total ? "TOTAL%" : "SELF%");
	for (size_t i = 0; i < n; i++) {
		const char *mod = rows[i].module;
		int room = width > 34 ? width - 26 : INT32_MAX;
		char where[256];

		printf("%7.2f %7.2f %+8.2f  %.*s", rows[i].pct[0], rows[i].pct[1],
		       rows[i].pct[1] - rows[i].pct[0], room, rows[i].function);
		room -= (int)MIN(strlen(rows[i].function), (size_t)INT32_MAX);
		if (mod && (int)strlen(mod) + 3 <= room) {
			printf(mod[0] == '[' ? " %s" : " [%s]", mod);
			room -= (int)strlen(mod) + 3;
		}
		if (cli_python_location(rows[i].source, where, sizeof(where)) &&
		    (int)strlen(where) + 1 <= room)
			printf(" %s", where);
		putchar('\n');
	}
	return EXIT_OK;
}

/* Queries both sides, joins their rows, prints the first limit of them. */
static int diff_run(const CliContext *ctx, const Request *common, DiffArgs *args)
{
	_cleanup_free_ DiffRow *rows = NULL;
	size_t n = 0;
	int r;

	r = query_sides(ctx, common, args);
	if (r != EXIT_OK)
		return r;
	r = join(args->sides, args->by_total, &rows, &n);
	if (r < 0) {
		fprintf(stderr, "profq diff: %s\n", strerror(-r));
		return EXIT_UNREACHABLE;
	}
	n = MIN(n, (size_t)common->limit);
	r = ctx->json ? print_json(args, rows, n) : print_text(args, rows, n);
	if (r == EXIT_OK && args->output)
		r = cli_diff_flame(ctx, &args->sides[0].req, &args->sides[1].req, args->output);
	return r;
}

int cmd_diff(CliContext *ctx, int argc, char **argv)
{
	DiffArgs args = { .sides = { { .name = "base" }, { .name = "with" } } };
	Request common;
	int r;

	r = cli_parse(&diff, ctx, &common, argc, argv, &args);
	if (r != CLI_PARSED)
		return r;
	r = diff_run(ctx, &common, &args);
	json_object_put(args.sides[0].answer);
	json_object_put(args.sides[1].answer);
	return r;
}
