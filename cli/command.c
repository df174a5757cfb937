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
	{ { "range", required_argument, NULL, OPT_RANGE }, CLI_OPT_RANGE },
	{ { "unit", required_argument, NULL, OPT_UNIT }, CLI_OPT_MATCH },
	{ { "cgroup", required_argument, NULL, OPT_CGROUP }, CLI_OPT_MATCH },
	{ { "container", required_argument, NULL, OPT_CONTAINER }, CLI_OPT_MATCH },
	{ { "comm", required_argument, NULL, OPT_COMM }, CLI_OPT_MATCH },
	{ { "event", required_argument, NULL, OPT_EVENT }, CLI_OPT_EVENT },
	{ { "full-names", no_argument, NULL, OPT_FULL_NAMES }, CLI_OPT_NAMES },
	{ { "color", required_argument, NULL, OPT_COLOR }, CLI_OPT_COLOR },
};

/* Room for every shared option, a command's own, --help and the terminator. */
#define OPTIONS_MAX 40

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

/* n decimal digits at s into *ret: n, or -EINVAL. */
static int digits(const char *s, int n, unsigned *ret)
{
	unsigned v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*ret = v;
	return n;
}

/* "H:MM", "HH:MM", with ":SS", into *tm's time of day: the length parsed, or -EINVAL. */
static int parse_clock(const char *s, struct tm *tm)
{
	int hl = s[0] && s[1] == ':' ? 1 : 2, n;
	unsigned h, m, sec = 0;

	if (digits(s, hl, &h) < 0 || s[hl] != ':' || digits(s + hl + 1, 2, &m) < 0)
		return -EINVAL;
	n = hl + 3;
	if (s[n] == ':') {
		if (digits(s + n + 1, 2, &sec) < 0)
			return -EINVAL;
		n += 3;
	}
	if (h > 23 || m > 59 || sec > 60)
		return -EINVAL;
	tm->tm_hour = (int)h;
	tm->tm_min = (int)m;
	tm->tm_sec = (int)sec;
	return n;
}

int cli_parse_time(const char *s, int64_t now_ns, int64_t *ret)
{
	time_t now = (time_t)(now_ns / (int64_t)NSEC_PER_SEC), t;
	unsigned y, mo, d;
	struct tm tm;
	char *end;
	double v;
	int n = 0, k;

	if (s[0] == '@' || (s[0] >= '0' && s[0] <= '9' && !strpbrk(s, ":-"))) {
		errno = 0;
		v = strtod(s + (s[0] == '@'), &end);
		if (errno != 0 || end == s + (s[0] == '@') || *end != '\0' ||
		    !(v > 0 && v < 7258118400.0))
			return -EINVAL;
		*ret = (int64_t)(v * (double)NSEC_PER_SEC);
		return 0;
	}
	if (!localtime_r(&now, &tm))
		return -EINVAL;
	if (digits(s, 4, &y) == 4 && s[4] == '-' && digits(s + 5, 2, &mo) == 2 && s[7] == '-' &&
	    digits(s + 8, 2, &d) == 2) {
		n = 10;
		if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31)
			return -EINVAL;
		tm = (struct tm){ .tm_year = (int)y - 1900,
				  .tm_mon = (int)mo - 1,
				  .tm_mday = (int)d };
		if (s[n] == 'T' || s[n] == ' ') {
			k = parse_clock(s + n + 1, &tm);
			if (k < 0)
				return k;
			n += 1 + k;
		}
		if (s[n] != '\0')
			return -EINVAL;
		tm.tm_isdst = -1;
		t = mktime(&tm);
		if (t == (time_t)-1 || tm.tm_mday != (int)d)
			return -EINVAL; /* no such day (mktime normalized Feb 30 away) */
		*ret = (int64_t)t * (int64_t)NSEC_PER_SEC;
		return 0;
	}
	k = parse_clock(s, &tm);
	if (k < 0 || s[k] != '\0')
		return -EINVAL;
	tm.tm_isdst = -1;
	t = mktime(&tm);
	/* A time of day still to come today is yesterday's. */
	if (t > now) {
		tm.tm_mday--;
		tm.tm_isdst = -1;
		t = mktime(&tm);
	}
	if (t == (time_t)-1)
		return -EINVAL;
	*ret = (int64_t)t * (int64_t)NSEC_PER_SEC;
	return 0;
}

static int64_t now_realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * (int64_t)NSEC_PER_SEC + ts.tv_nsec;
}

/* --since, --until: a duration back from now (at most ten years), or a point in time. */
static int parse_range_option(const char *command, int opt, const char *arg, CliContext *ctx,
			      Request *req)
{
	int64_t now = now_realtime_ns(), at;
	bool absolute = false;
	uint64_t ns;

	if (parse_duration_ns(arg, &ns) < 0) {
		if (cli_parse_time(arg, now, &at) < 0)
			return cli_usage_error(command,
					       "--%s: '%s' is neither a duration such as 30s, 5m, "
					       "2h nor a time such as 14:05, 2026-12-06T14:05:00, "
					       "@1765029900",
					       opt == OPT_SINCE ? "since" : "until", arg);
		if (at > now && opt == OPT_SINCE)
			return cli_usage_error(command, "--since: '%s' is in the future", arg);
		ns = at < now ? (uint64_t)(now - at) : 0;
		absolute = true;
	}
	if (ns > 10ULL * 366 * 86400 * NSEC_PER_SEC)
		return cli_usage_error(command, "--%s: '%s' is more than ten years ago",
				       opt == OPT_SINCE ? "since" : "until", arg);
	if (opt == OPT_SINCE) {
		req->since_ns = ns;
		req->has_since = true;
		ctx->since = arg;
		ctx->since_absolute = absolute;
	} else {
		req->until_ns = ns;
		req->has_until = true;
		ctx->until = arg;
		ctx->until_absolute = absolute;
	}
	return EXIT_OK;
}

/* --unit, --cgroup, --container, --comm into req->match, checked as the protocol checks them
 * (a cgroup path may leave out its leading '/'). */
static int parse_match_option(const char *command, int opt, const char *arg, Request *req)
{
	static const char *const names[] = { [OPT_UNIT - OPT_UNIT] = "unit",
					     [OPT_CGROUP - OPT_UNIT] = "cgroup",
					     [OPT_CONTAINER - OPT_UNIT] = "container",
					     [OPT_COMM - OPT_UNIT] = "comm" };
	RequestMatch *m = &req->match;
	const char *name = names[opt - OPT_UNIT];
	bool slash = opt == OPT_CGROUP && arg[0] != '/';
	size_t size = opt == OPT_UNIT	     ? sizeof(m->unit)
		      : opt == OPT_CGROUP    ? sizeof(m->cgroup)
		      : opt == OPT_CONTAINER ? sizeof(m->container)
					     : sizeof(m->comm);
	char *field = opt == OPT_UNIT	     ? m->unit
		      : opt == OPT_CGROUP    ? m->cgroup
		      : opt == OPT_CONTAINER ? m->container
					     : m->comm;

	if (!arg[0] || strlen(arg) + slash >= size)
		return cli_usage_error(command, "--%s: '%s' is not 1 to %zu characters", name, arg,
				       size - 1 - slash);
	if (opt == OPT_CONTAINER && strspn(arg, "0123456789abcdef") != strlen(arg))
		return cli_usage_error(command,
				       "--container: '%s' is not a container id (hex digits)", arg);
	/* Fits: checked above. */
	field[0] = '/';
	memcpy(field + slash, arg, strlen(arg) + 1);
	return EXIT_OK;
}

void cli_print_match(const Request *req, json_object *answer)
{
	int64_t hidden = json_get_int(answer, "hidden");
	char label[REQUEST_CGROUP_MAX + 512];

	if (!request_has_match(req))
		return;
	printf("Processes: %lld (%s)\n", (long long)json_get_int(answer, "processes"),
	       cli_match_label(req, label, sizeof(label)));
	/* Access is judged process by process: say that some were left out. */
	if (hidden > 0)
		fprintf(stderr,
			"profq: note: %lld more processes match that you may not see; they are "
			"left out.\n",
			(long long)hidden);
}

const char *cli_match_label(const Request *req, char *buf, size_t len)
{
	const RequestMatch *m = &req->match;
	const char *fields[] = { m->unit, m->cgroup, m->container, m->comm };
	const char *names[] = { "unit", "cgroup", "container", "comm" };
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
		if (!fields[i][0] || used >= len)
			continue;
		used += (size_t)snprintf(buf + used, len - used, "%s%s %s", used ? ", " : "",
					 names[i], fields[i]);
	}
	return buf;
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
		return parse_range_option(command, opt, arg, ctx, req);
	case OPT_EVENT:
		if (event_from_string(arg) < 0)
			return cli_usage_error(
				command,
				"--event: '%s' is not 'cpu', 'off-cpu', 'wall' or 'faults'", arg);
		req->event = event_from_string(arg);
		return EXIT_OK;
	case OPT_COLOR:
		if (cli_set_color(arg) < 0)
			return cli_usage_error(
				command, "--color: '%s' is not 'auto', 'always' or 'never'", arg);
		return EXIT_OK;
	case OPT_RANGE:
		if (!streq(arg, "life"))
			return cli_usage_error(command, "--range: '%s' is not 'life'", arg);
		ctx->range_life = true;
		return EXIT_OK;
	case OPT_START:
		if (cli_parse_time(arg, now_realtime_ns(), &req->start_ns) < 0)
			return cli_usage_error(
				command,
				"--start: '%s' is not a start time (seconds since the "
				"epoch as ps --json shows, HH:MM:SS, or a date and time)",
				arg);
		return EXIT_OK;
	case OPT_CHILDREN:
		req->children = true;
		return EXIT_OK;
	case OPT_FULL_NAMES:
		cli_set_full_names(true);
		return EXIT_OK;
	case OPT_UNIT:
	case OPT_CGROUP:
	case OPT_CONTAINER:
	case OPT_COMM:
		return parse_match_option(command, opt, arg, req);
	case OPT_INLINE:
	case OPT_NO_INLINE:
		req->no_inline = opt == OPT_NO_INLINE;
		return EXIT_OK;
	case OPT_PYTHON:
	case OPT_NO_PYTHON:
		req->no_python = opt == OPT_NO_PYTHON;
		return EXIT_OK;
	case 'n':
		if (parse_uint32(arg, 0, REQUEST_LIMIT_MAX, &v) < 0)
			return cli_usage_error(command,
					       "-n: '%s' is not a number in 0..%u (0: all)", arg,
					       REQUEST_LIMIT_MAX);
		req->limit = v == 0 ? REQUEST_LIMIT_MAX : v;
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
	if (request_has_match(req) && req->pid)
		return cli_usage_error(q->name, "--pid: not with --unit, --cgroup, --container or "
						"--comm, which select processes by their labels");
	if (request_has_match(req) && req->children)
		return cli_usage_error(q->name, "--children needs --pid");
	if (q->needs_pid && !req->pid && !request_has_match(req))
		return cli_usage_error(q->name, q->shared & CLI_OPT_MATCH
							? "--pid (or --unit, --cgroup, --container "
							  "or --comm) is required"
							: "--pid is required");
	if (ctx->range_life && !req->pid)
		return cli_usage_error(q->name, "--range life needs --pid");
	if (ctx->range_life && (req->has_since || req->has_until))
		return cli_usage_error(q->name, "--range life: not with --since or --until");
	r = q->check ? q->check(ctx, req, userdata) : EXIT_OK;
	return r == EXIT_OK ? CLI_PARSED : r;
}

int cli_resolve_range(const CliContext *ctx, Request *req)
{
	_cleanup_json_ json_object *life = NULL;
	Request t;
	int64_t now, start, end = 0;
	json_object *v;
	int r;

	if (!ctx->range_life)
		return EXIT_OK;
	request_init(&t, COMMAND_TIME);
	t.pid = req->pid;
	t.start_ns = req->start_ns;
	r = cli_query(ctx, &t, &life);
	if (r != EXIT_OK)
		return r;
	start = (int64_t)(json_get_double(life, "start_time") * (double)NSEC_PER_SEC);
	if (json_object_object_get_ex(life, "exit_time", &v) && v)
		end = (int64_t)(json_object_get_double(v) * (double)NSEC_PER_SEC);
	now = now_realtime_ns();
	/* The same incarnation, and a second's margin each side: the answerer's now is a little
	 * later than ours, and ranges take whole windows anyway. */
	req->start_ns = start;
	req->has_since = true;
	req->since_ns = now > start - (int64_t)NSEC_PER_SEC
				? (uint64_t)(now - start + (int64_t)NSEC_PER_SEC)
				: 0;
	req->has_until = end > 0 && now - end > (int64_t)NSEC_PER_SEC;
	req->until_ns = req->has_until ? (uint64_t)(now - end - (int64_t)NSEC_PER_SEC) : 0;
	return EXIT_OK;
}

/* A realtime as the header shows it: the time of day, with the date unless it is today's. */
static void clock_string(double t, char *buf, size_t len)
{
	time_t sec = (time_t)t, now = time(NULL);
	struct tm tm, today;

	if (!localtime_r(&sec, &tm) || !localtime_r(&now, &today) ||
	    strftime(buf, len,
		     tm.tm_yday == today.tm_yday && tm.tm_year == today.tm_year
			     ? "%H:%M:%S"
			     : "%Y-%m-%d %H:%M:%S",
		     &tm) == 0)
		snprintf(buf, len, "@%.0f", t);
}

/* An end of the range as given: a time as typed, a duration as "10m ago". */
static void range_end(const char *arg, bool absolute, char *buf, size_t len)
{
	snprintf(buf, len, absolute ? "%s" : "%s ago", arg);
}

const char *cli_range_label(const CliContext *ctx, const Request *req, json_object *answer,
			    char *buf, size_t len)
{
	char since[80], until[80], from[32], to[32];
	json_object *range, *a, *b;

	range_end(strempty(ctx->since), ctx->since_absolute, since, sizeof(since));
	range_end(strempty(ctx->until), ctx->until_absolute, until, sizeof(until));
	if (req->command == COMMAND_TIME && request_has_match(req))
		snprintf(buf, len, "the processes' lives");
	else if (req->command == COMMAND_TIME || ctx->range_life)
		snprintf(buf, len, "the process's life");
	else if (ctx->since && ctx->until)
		snprintf(buf, len, "%s to %s", since, until);
	else if (ctx->since)
		snprintf(buf, len, ctx->since_absolute ? "since %s" : "last %s", ctx->since);
	else if (ctx->until)
		snprintf(buf, len, "until %s", until);
	else
		snprintf(buf, len, "all retained");
	if (!json_object_object_get_ex(answer, "range", &range) ||
	    !json_object_object_get_ex(range, "since_s", &a) ||
	    !json_object_object_get_ex(range, "until_s", &b))
		return buf;
	if (!a || !b) {
		snprintf(buf + strlen(buf), len - strlen(buf), " (no data)");
		return buf;
	}
	clock_string(json_object_get_double(a), from, sizeof(from));
	clock_string(json_object_get_double(b), to, sizeof(to));
	snprintf(buf + strlen(buf), len - strlen(buf), " (%s-%s)", from, to);
	return buf;
}

int cli_answer(const CliQuery *q, const CliContext *ctx, const Request *req)
{
	_cleanup_json_ json_object *answer = NULL;
	Request resolved = *req;
	char when[64], range[256];
	json_object *rows;
	int64_t lost;
	bool empty;
	int r;

	r = cli_resolve_range(ctx, &resolved);
	if (r != EXIT_OK)
		return r;
	r = cli_query(ctx, &resolved, &answer);
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
	/* Samples the daemon lost while busy are of no one process: any figure may be low. */
	lost = json_get_int(answer, "lost");
	if (lost > 0)
		fprintf(stderr,
			"profq: warning: %lld samples were lost in the range (the daemon was "
			"busy); the figures may be low.\n",
			(long long)lost);
	if (json_object_object_get(answer, "range"))
		printf("Range: %s\n",
		       cli_range_label(ctx, &resolved, answer, range, sizeof(range)));
	cli_print_match(&resolved, answer);
	q->render(answer, &resolved);
	if (empty) {
		fprintf(stderr, "profq: No samples in range\n");
		return EXIT_NOT_FOUND;
	}
	return EXIT_OK;
}

int cli_parse_group(const char *command, const char *arg, int *ret)
{
	if (streq(arg, "comm"))
		*ret = GROUP_COMM;
	else if (streq(arg, "none"))
		*ret = GROUP_NONE;
	else
		return cli_usage_error(command, "--group: '%s' is not comm or none", arg);
	return EXIT_OK;
}

void cli_apply_group(Request *req, int group)
{
	req->by = group >= 0 ? (GroupBy)group : req->children ? GROUP_COMM : GROUP_NONE;
}

int cli_parse_from(const char *command, const char *arg, Request *req)
{
	if (!*arg || strlen(arg) >= sizeof(req->function))
		return cli_usage_error(command, "--from: needs a name of 1 to %zu bytes",
				       sizeof(req->function) - 1);
	strcpy(req->function, arg);
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
