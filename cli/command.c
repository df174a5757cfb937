/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <stdlib.h>
#include <time.h>

#include "base/json-util.h"
#include "base/macro.h"
#include "base/parse.h"
#include "base/timeutil.h"
#include "command.h"

/* Every shared option, and which of CLI_OPT_* brings it (0: every command takes it). */
static const struct {
	struct option option;
	unsigned set;
} shared_options[] = {
	{ { "json", no_argument, NULL, OPT_JSON }, 0 },
	{ { "since", required_argument, NULL, OPT_SINCE }, CLI_OPT_RANGE },
	{ { "until", required_argument, NULL, OPT_UNTIL }, CLI_OPT_RANGE },
	{ { "pid", required_argument, NULL, OPT_PID }, CLI_OPT_PID },
	{ { "tid", required_argument, NULL, OPT_TID }, CLI_OPT_TID },
	{ { "start", required_argument, NULL, OPT_START }, CLI_OPT_START },
	{ { "children", no_argument, NULL, OPT_CHILDREN }, CLI_OPT_CHILDREN },
	{ { "inline", no_argument, NULL, OPT_INLINE }, CLI_OPT_INLINE },
	{ { "no-inline", no_argument, NULL, OPT_NO_INLINE }, CLI_OPT_INLINE },
	{ { "python", no_argument, NULL, OPT_PYTHON }, CLI_OPT_INLINE },
	{ { "no-python", no_argument, NULL, OPT_NO_PYTHON }, CLI_OPT_INLINE },
};

/* Room for every shared option, a command's own, --help and the terminator. */
#define OPTIONS_MAX 32

/* The long options q takes, into options[OPTIONS_MAX]. */
static void long_options(const CliQuery *q, struct option *options)
{
	size_t n = 0;

	for (size_t i = 0; i < ARRAY_SIZE(shared_options); i++)
		if ((q->shared & shared_options[i].set) == shared_options[i].set)
			options[n++] = shared_options[i].option;
	for (const struct option *o = q->options; o && o->name; o++) {
		assert(n < OPTIONS_MAX - 2);
		options[n++] = *o;
	}
	options[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	options[n] = (struct option){};
}

/* The short options q takes, in getopt's syntax. '+': options end at the first argument (as
 * they do for profq's own options, where getopt's ordering is set); ':': a missing value is
 * told apart from an unknown option. */
static void short_options(const CliQuery *q, char *buf, size_t len)
{
	snprintf(buf, len, "+:h%s%s", q->shared & CLI_OPT_LIMIT ? "n:" : "",
		 strempty(q->short_options));
}

/* "1732230000.123" (epoch seconds) or "HH:MM[:SS]" of today, local time. */
static int parse_start_time(const char *s, int64_t *ret)
{
	unsigned h, m, sec = 0;
	struct tm tm;
	time_t now;
	char *end;
	double v;
	int n = 0;

	if (sscanf(s, "%2u:%2u%n", &h, &m, &n) == 2 && (s[n] == '\0' || s[n] == ':')) {
		if (s[n] == ':') {
			int k = 0;

			if (sscanf(s + n + 1, "%2u%n", &sec, &k) != 1 || s[n + 1 + k] != '\0')
				return -EINVAL;
		}
		if (h > 23 || m > 59 || sec > 60)
			return -EINVAL;
		now = time(NULL);
		localtime_r(&now, &tm);
		tm.tm_hour = (int)h;
		tm.tm_min = (int)m;
		tm.tm_sec = (int)sec;
		tm.tm_isdst = -1;
		*ret = (int64_t)mktime(&tm) * (int64_t)NSEC_PER_SEC;
		return 0;
	}
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v > 0 && v < 7258118400.0))
		return -EINVAL;
	*ret = (int64_t)(v * (double)NSEC_PER_SEC);
	return 0;
}

/* --since, --until: a duration back from now, at most ten years. */
static int parse_range_option(const char *command, int opt, const char *arg, Request *req)
{
	uint64_t ns;

	if (parse_duration_ns(arg, &ns) < 0 || ns > 10ULL * 366 * 86400 * NSEC_PER_SEC)
		return cli_usage_error(command, "--%s: '%s' is not a duration such as 30s, 5m, 2h",
				       opt == OPT_SINCE ? "since" : "until", arg);
	if (opt == OPT_SINCE) {
		req->since_ns = ns;
		req->has_since = true;
	} else {
		req->until_ns = ns;
		req->has_until = true;
	}
	return EXIT_OK;
}

/* Applies a shared option to ctx and req: EXIT_OK, or EXIT_USAGE after reporting. */
static int parse_shared_option(const char *command, int opt, const char *arg, CliContext *ctx,
			       Request *req)
{
	uint32_t v;

	switch (opt) {
	case OPT_JSON:
		ctx->json = true;
		return EXIT_OK;
	case OPT_PID:
	case OPT_TID:
		if (parse_pid(arg, &v) < 0)
			return cli_usage_error(command, "--%s: '%s' is not a %s id",
					       opt == OPT_PID ? "pid" : "tid", arg,
					       opt == OPT_PID ? "process" : "thread");
		*(opt == OPT_PID ? &req->pid : &req->tid) = v;
		return EXIT_OK;
	case OPT_SINCE:
	case OPT_UNTIL:
		return parse_range_option(command, opt, arg, req);
	case OPT_START:
		if (parse_start_time(arg, &req->start_ns) < 0)
			return cli_usage_error(
				command,
				"--start: '%s' is not a start time (seconds since the "
				"epoch as ps --json shows, or HH:MM:SS of today)",
				arg);
		return EXIT_OK;
	case OPT_CHILDREN:
		req->children = true;
		return EXIT_OK;
	case OPT_INLINE:
	case OPT_NO_INLINE:
		req->no_inline = opt == OPT_NO_INLINE;
		return EXIT_OK;
	case OPT_PYTHON:
	case OPT_NO_PYTHON:
		req->no_python = opt == OPT_NO_PYTHON;
		return EXIT_OK;
	case 'n':
		if (parse_uint32(arg, 1, REQUEST_LIMIT_MAX, &v) < 0)
			return cli_usage_error(command, "-n: '%s' is not a number in 1..%u", arg,
					       REQUEST_LIMIT_MAX);
		req->limit = v;
		return EXIT_OK;
	default:
		abort(); /* not a shared option: is_shared() said it was */
	}
}

static bool is_shared(int opt)
{
	return (opt >= OPT_JSON && opt < _OPT_SHARED_END) || opt == 'n';
}

/* Whether --json is among the options of argv (before "--", and for a command that runs a
 * command, before its name): a usage error found before it is parsed is still JSON. */
static bool wants_json(const CliQuery *q, int argc, char **argv)
{
	for (int i = 1; i < argc && argv[i]; i++) {
		if (streq(argv[i], "--"))
			return false;
		if (streq(argv[i], "--json"))
			return true;
		if (q->takes_command && argv[i][0] != '-')
			return false;
	}
	return false;
}

int cli_parse(const CliQuery *q, CliContext *ctx, Request *req, int argc, char **argv,
	      void *userdata)
{
	struct option options[OPTIONS_MAX];
	char shorts[32];
	int c, r;

	request_init(req, q->command);
	if (q->limit)
		req->limit = q->limit;
	long_options(q, options);
	short_options(q, shorts, sizeof(shorts));
	cli_set_json_errors(ctx->json || wants_json(q, argc, argv));
	while ((c = getopt_long(argc, argv, shorts, options, NULL)) >= 0) {
		if (c == 'h') {
			fputs(q->help, stdout);
			return EXIT_OK;
		}
		if (c == ':')
			return cli_usage_error(q->name, "option '%s' needs a value",
					       argv[optind - 1]);
		if (c == '?')
			r = CLI_UNKNOWN;
		else if (is_shared(c))
			r = parse_shared_option(q->name, c, optarg, ctx, req);
		else
			r = q->option(c, optarg, req, userdata);
		if (r == CLI_UNKNOWN)
			return cli_usage_error(q->name, "unknown option '%s'", argv[optind - 1]);
		if (r != EXIT_OK)
			return r;
	}
	if (!q->takes_command && optind < argc)
		return cli_usage_error(q->name, "unexpected argument '%s'", argv[optind]);
	if (q->needs_pid && !req->pid)
		return cli_usage_error(q->name, "--pid is required");
	r = q->check ? q->check(ctx, req, userdata) : EXIT_OK;
	return r == EXIT_OK ? CLI_PARSED : r;
}

int cli_answer(const CliQuery *q, const CliContext *ctx, const Request *req)
{
	_cleanup_json_ json_object *answer = NULL;
	json_object *rows;
	bool empty;
	char when[64];
	int r;

	r = cli_query(ctx, req, &answer);
	if (r != EXIT_OK)
		return r;
	if (q->amend)
		q->amend(answer);
	empty = q->empty_is_not_found && json_object_object_get_ex(answer, "rows", &rows) &&
		json_object_array_length(rows) == 0;
	if (ctx->json) {
		cli_print_json(answer);
		return empty ? EXIT_NOT_FOUND : EXIT_OK;
	}
	/* Part of the range could not be read (the daemon's disk budget deleted it, or it did
	 * not fit in memory): the figures are low, say so. */
	if (json_get_string(answer, "incomplete"))
		fprintf(stderr, "profq: warning: %s; the answer covers the range from %s only.\n",
			json_get_string(answer, "incomplete"),
			cli_format_time(json_get_double(answer, "covered_since_s"), when,
					sizeof(when)));
	q->render(answer, req);
	if (empty) {
		fprintf(stderr, "profq: No samples in range\n");
		return EXIT_NOT_FOUND;
	}
	return EXIT_OK;
}

int cli_query_command(const CliQuery *q, CliContext *ctx, int argc, char **argv)
{
	Request req;
	int r;

	r = cli_parse(q, ctx, &req, argc, argv, NULL);
	if (r != CLI_PARSED)
		return r;
	return cli_answer(q, ctx, &req);
}
