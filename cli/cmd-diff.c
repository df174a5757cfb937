/* SPDX-License-Identifier: MIT */
/*
 * profq diff: the change of each function's share between two profiles, a base and a "with",
 * of one process over two time ranges, or of two processes (SPEC §11). Each side is a `top`
 * answer with every function; rows are joined by (function, module) and ranked by how much
 * their share moved, in percentage points of each side's own samples (so a longer range or a
 * busier process does not look like a regression).
 */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json-util.h"
#include "base/parse.h"
#include "cli.h"

enum {
	OPT_BASE = 0x300,
	OPT_WITH,
	OPT_BASE_PID,
};

typedef struct Side {
	const char *name;  /* "base", "with" */
	const char *range; /* as given, for the output; NULL: all retained */
	Request req;
	json_object *answer;
} Side;

typedef struct DiffRow {
	const char *function, *module;
	double pct[2];	    /* self% or total% (the sort key) in base and with */
	double other[2];    /* the other percentage */
	int64_t samples[2]; /* of the sort key */
} DiffRow;

/* RANGE: "SINCE..UNTIL", "SINCE.." or "SINCE" (until now), or "all". */
static int parse_range(const char *s, Request *req)
{
	_cleanup_free_ char *since = NULL;
	const char *dots = strstr(s, "..");
	uint64_t a, b = 0;

	req->has_since = req->has_until = false;
	if (streq(s, "all"))
		return 0;
	since = dots ? strndup(s, (size_t)(dots - s)) : strdup(s);
	if (!since)
		return -ENOMEM;
	if (parse_duration_ns(since, &a) < 0)
		return -EINVAL;
	if (dots && dots[2] && parse_duration_ns(dots + 2, &b) < 0)
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
			_cleanup_free_ char *k = NULL;
			DiffRow *row;

			if (!fn)
				continue;
			if (asprintf(&k, "%s\x1f%s", fn, strempty(mod)) < 0)
				return -ENOMEM;
			if (json_object_object_get_ex(index, k, &at)) {
				row = &rows[json_object_get_int64(at)];
			} else {
				if (GREEDY_REALLOC(rows, allocated, n + 1) < 0)
					return -ENOMEM;
				row = &rows[n];
				*row = (DiffRow){ .function = fn, .module = mod };
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

static void side_json(json_object *o, const Side *s)
{
	json_object *side = json_object_new_object();

	if (!side)
		return;
	json_add_int(side, "pid", json_get_int(s->answer, "pid"));
	json_add_string(side, "comm", json_get_string(s->answer, "comm"));
	json_add_int(side, "samples", json_get_int(s->answer, "samples"));
	json_add_string(side, "range", s->range ? s->range : "all");
	json_object_object_add(o, s->name, side);
}

static void side_text(const Side *s)
{
	printf("%-5s pid %" PRId64 " (%s), %" PRId64 " samples, %s\n", s->name,
	       json_get_int(s->answer, "pid"), strempty(json_get_string(s->answer, "comm")),
	       json_get_int(s->answer, "samples"), s->range ? s->range : "all retained");
}

int cmd_diff(CliContext *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "pid", required_argument, NULL, OPT_PID },
		{ "base", required_argument, NULL, OPT_BASE },
		{ "with", required_argument, NULL, OPT_WITH },
		{ "base-pid", required_argument, NULL, OPT_BASE_PID },
		{ "sort", required_argument, NULL, OPT_SORT },
		{ "inline", no_argument, NULL, OPT_INLINE },
		{ "no-inline", no_argument, NULL, OPT_NO_INLINE },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	Side sides[2] = { { .name = "base" }, { .name = "with" } };
	_cleanup_free_ DiffRow *rows = NULL;
	Request common;
	uint32_t base_pid = 0, limit;
	bool by_total = false;
	size_t n = 0;
	int c, r;

	request_init(&common, COMMAND_TOP);
	while ((c = getopt_long(argc, argv, "hn:", options, NULL)) >= 0) {
		switch (c) {
		case 'h':
			printf("Usage: profq diff --pid N [--base RANGE] [--with RANGE]\n"
			       "                  [--base-pid P] [-n N] [--sort self|total]\n"
			       "                  [--[no-]inline] [--json]\n"
			       "\n"
			       "How each function's share of the samples changed from the base\n"
			       "profile to the other one: of pid N over two time ranges, or of\n"
			       "pid P (the base) and pid N. RANGE is SINCE..UNTIL counted back\n"
			       "from now (20m..10m), SINCE (until now), or all (the default).\n"
			       "Rows are ranked by the change of SELF%% (or TOTAL%% with\n"
			       "--sort total), in points of each side's own samples.\n");
			return EXIT_OK;
		case OPT_BASE:
		case OPT_WITH: {
			Side *s = &sides[c == OPT_WITH];

			r = parse_range(optarg, &s->req);
			if (r == -ENOMEM)
				return EXIT_UNREACHABLE;
			if (r < 0)
				return cli_usage_error(
					"diff",
					"--%s: '%s' is not a range such as 20m..10m, "
					"10m or all",
					s->name, optarg);
			s->range = optarg;
			break;
		}
		case OPT_BASE_PID:
			if (parse_uint32(optarg, 1, UINT32_MAX, &base_pid) < 0)
				return cli_usage_error(
					"diff", "--base-pid: '%s' is not a process id", optarg);
			break;
		case OPT_SORT:
			if (sort_key_from_string(optarg) < 0)
				return cli_usage_error("diff", "--sort: '%s' is not self or total",
						       optarg);
			by_total = sort_key_from_string(optarg) == SORT_TOTAL;
			break;
		default:
			r = cli_common_option("diff", c, optarg, ctx, &common);
			if (r < 0)
				return EXIT_USAGE;
			if (r == 0)
				return cli_usage_error("diff", "unknown option '%s'",
						       argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error("diff", "unexpected argument '%s'", argv[optind]);
	if (!common.pid)
		return cli_usage_error("diff", "--pid is required");
	if (!base_pid && !sides[0].range && !sides[1].range)
		return cli_usage_error("diff", "nothing to compare: give --base RANGE, "
					       "--with RANGE or --base-pid P");
	limit = common.limit;
	for (int s = 0; s < 2; s++) {
		Request *q = &sides[s].req;
		bool since = q->has_since, until = q->has_until;
		uint64_t since_ns = q->since_ns, until_ns = q->until_ns;

		*q = common;
		q->has_since = since, q->since_ns = since_ns;
		q->has_until = until, q->until_ns = until_ns;
		/* Every function: a row may be missing on one side only. */
		q->limit = REQUEST_LIMIT_MAX;
		q->sort = by_total ? SORT_TOTAL : SORT_SELF;
		if (s == 0 && base_pid)
			q->pid = base_pid;
		r = cli_query(ctx, q, &sides[s].answer);
		if (r != EXIT_OK) {
			json_object_put(sides[0].answer);
			fprintf(stderr, "profq diff: (the %s profile)\n", sides[s].name);
			return r;
		}
	}

	r = join(sides, by_total, &rows, &n);
	if (r < 0) {
		fprintf(stderr, "profq diff: %s\n", strerror(-r));
		r = EXIT_UNREACHABLE;
		goto out;
	}
	n = MIN(n, (size_t)limit);
	if (ctx->json) {
		_cleanup_json_ json_object *o = json_object_new_object();
		json_object *a = json_object_new_array();

		if (!o || !a) {
			json_object_put(a);
			r = EXIT_UNREACHABLE;
			goto out;
		}
		json_add_string(o, "sort", by_total ? "total" : "self");
		side_json(o, &sides[0]);
		side_json(o, &sides[1]);
		for (size_t i = 0; i < n; i++) {
			json_object *row = json_object_new_object();
			const char *k = by_total ? "total" : "self",
				   *ok = by_total ? "self" : "total";
			char name[32];

			if (!row)
				continue;
			json_add_string(row, "function", rows[i].function);
			json_add_string(row, "module", rows[i].module);
			for (int s = 0; s < 2; s++) {
				snprintf(name, sizeof(name), "%s_%s_pct", sides[s].name, k);
				json_add_double(row, name, rows[i].pct[s], 2);
				snprintf(name, sizeof(name), "%s_%s_pct", sides[s].name, ok);
				json_add_double(row, name, rows[i].other[s], 2);
				snprintf(name, sizeof(name), "%s_%s_samples", sides[s].name, k);
				json_add_int(row, name, rows[i].samples[s]);
			}
			snprintf(name, sizeof(name), "delta_%s_pct", k);
			json_add_double(row, name, rows[i].pct[1] - rows[i].pct[0], 2);
			json_object_array_add(a, row);
		}
		json_object_object_add(o, "rows", a);
		cli_print_json(o);
	} else {
		int width = cli_terminal_width();

		side_text(&sides[0]);
		side_text(&sides[1]);
		printf("\n%7s %7s %8s  %s (by %s)\n", "BASE%", "WITH%", "CHANGE", "FUNCTION",
		       by_total ? "TOTAL%" : "SELF%");
		for (size_t i = 0; i < n; i++) {
			const char *mod = rows[i].module;
			int room = width > 34 ? width - 26 : INT32_MAX;

			printf("%7.2f %7.2f %+8.2f  %.*s", rows[i].pct[0], rows[i].pct[1],
			       rows[i].pct[1] - rows[i].pct[0], room, rows[i].function);
			room -= (int)MIN(strlen(rows[i].function), (size_t)INT32_MAX);
			if (mod && (int)strlen(mod) + 3 <= room)
				printf(mod[0] == '[' ? " %s" : " [%s]", mod);
			putchar('\n');
		}
	}
	r = EXIT_OK;
out:
	json_object_put(sides[0].answer);
	json_object_put(sides[1].answer);
	return r;
}
