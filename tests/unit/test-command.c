/* SPDX-License-Identifier: MIT */
/* cli/command.c: the shared options and their checks, as docs/profq.1 describes them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/json-util.h"
#include "base/macro.h"
#include "command.h"
#include "tmpdir.h"

#define ARGS_MAX 32

typedef struct Own {
	int calls;
	const char *last;
	int answer; /* what the option parser returns */
	int checks;
} Own;

static int own_option(int opt, const char *arg, Request *req, void *userdata)
{
	Own *own = userdata;

	(void)opt, (void)req;
	own->calls++;
	own->last = arg;
	return own->answer;
}

static int own_check(const CliContext *ctx, const Request *req, void *userdata)
{
	Own *own = userdata;

	(void)ctx, (void)req;
	own->checks++;
	return EXIT_OK;
}

static const CliQuery everything = {
	.name = "test",
	.command = COMMAND_TOP,
	.shared = CLI_OPT_RANGE | CLI_OPT_PID | CLI_OPT_TID | CLI_OPT_START | CLI_OPT_CHILDREN |
		  CLI_OPT_INLINE | CLI_OPT_LIMIT,
	.help = "Usage: profq test\n",
	.options = (const struct option[]){ { "own", required_argument, NULL, 0x200 }, {} },
	.short_options = "x:",
	.option = own_option,
	.check = own_check,
};

/* cli_parse() over "test" and the NULL-terminated arguments, getopt started afresh. */
static int parse(const CliQuery *q, CliContext *ctx, Request *req, void *userdata, ...)
{
	char *argv[ARGS_MAX] = { (char *)"test" };
	int argc = 1;
	va_list ap;

	va_start(ap, userdata);
	while (argc < ARGS_MAX - 1 && (argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	*ctx = (CliContext){ .socket_path = "/nonexistent" };
	optind = 0;
	opterr = 0;
	return cli_parse(q, ctx, req, argc, argv, userdata);
}

static void test_shared(void **state)
{
	Own own = { .answer = EXIT_OK };
	CliContext ctx;
	Request req;

	(void)state;
	assert_int_equal(parse(&everything, &ctx, &req, &own, "--json", "--pid", "42", "--tid",
			       "43", "--since", "5m", "--until", "1m", "--children", "--no-inline",
			       "-n", "7", "--start", "1732230000.5", NULL),
			 CLI_PARSED);
	assert_true(ctx.json);
	assert_int_equal(req.command, COMMAND_TOP);
	assert_int_equal(req.pid, 42);
	assert_int_equal(req.tid, 43);
	assert_true(req.has_since && req.since_ns == 300 * NSEC_PER_SEC);
	assert_true(req.has_until && req.until_ns == 60 * NSEC_PER_SEC);
	assert_true(req.children);
	assert_true(req.no_inline);
	assert_int_equal(req.limit, 7);
	assert_true(req.start_ns == 1732230000500000000LL);
	assert_int_equal(own.calls, 0);
	assert_int_equal(own.checks, 1);

	/* the last of --inline and --no-inline counts; -n's default is the protocol's */
	assert_int_equal(parse(&everything, &ctx, &req, &own, "--no-inline", "--inline", NULL),
			 CLI_PARSED);
	assert_false(req.no_inline);
	assert_false(req.no_python);
	assert_false(ctx.json);
	assert_int_equal(req.limit, REQUEST_LIMIT_DEFAULT);
	/* -n 0: all rows */
	assert_int_equal(parse(&everything, &ctx, &req, &own, "-n", "0", NULL), CLI_PARSED);
	assert_int_equal(req.limit, REQUEST_LIMIT_MAX);

	/* --no-python comes with --no-inline, each its own; the last of a pair counts */
	assert_int_equal(parse(&everything, &ctx, &req, &own, "--no-python", NULL), CLI_PARSED);
	assert_true(req.no_python);
	assert_false(req.no_inline);
	assert_int_equal(parse(&everything, &ctx, &req, &own, "--no-python", "--no-inline",
			       "--python", NULL),
			 CLI_PARSED);
	assert_false(req.no_python);
	assert_true(req.no_inline);
}

static void test_bad_values(void **state)
{
	Own own = { .answer = EXIT_OK };
	CliContext ctx;
	Request req;

	(void)state;
	assert_int_equal(parse(&everything, &ctx, &req, &own, "--pid", "0", NULL), EXIT_USAGE);
	assert_int_equal(parse(&everything, &ctx, &req, &own, "--tid", "x", NULL), EXIT_USAGE);
	assert_int_equal(parse(&everything, &ctx, &req, &own, "--since", "soon", NULL), EXIT_USAGE);
	assert_int_equal(parse(&everything, &ctx, &req, &own, "--until", "4000d", NULL),
			 EXIT_USAGE);
	assert_int_equal(parse(&everything, &ctx, &req, &own, "--start", "25:00", NULL),
			 EXIT_USAGE);
	assert_int_equal(parse(&everything, &ctx, &req, &own, "-n", "-1", NULL), EXIT_USAGE);
	assert_int_equal(parse(&everything, &ctx, &req, &own, "-n", "100001", NULL), EXIT_USAGE);
	assert_int_equal(parse(&everything, &ctx, &req, &own, "--pid", NULL), EXIT_USAGE);
	assert_int_equal(parse(&everything, &ctx, &req, &own, "--bogus", NULL), EXIT_USAGE);
	/* nothing after a bad value is parsed, nor checked */
	assert_int_equal(own.calls, 0);
	assert_int_equal(own.checks, 0);
}

/* What fd (stdout or stderr) receives between capture_start() and capture_end(). */
typedef struct Capture {
	int fd, saved;
	FILE *stream;
	char text[4096];
} Capture;

static void capture_start(Capture *c, FILE *stream)
{
	c->stream = stream;
	fflush(stream);
	c->fd = memfd_create("capture", 0);
	assert_true(c->fd >= 0);
	c->saved = dup(fileno(stream));
	assert_true(c->saved >= 0);
	assert_true(dup2(c->fd, fileno(stream)) >= 0);
}

static const char *capture_end(Capture *c)
{
	ssize_t n;

	fflush(c->stream);
	assert_true(dup2(c->saved, fileno(c->stream)) >= 0);
	close(c->saved);
	n = pread(c->fd, c->text, sizeof(c->text) - 1, 0);
	assert_true(n >= 0);
	c->text[n] = '\0';
	close(c->fd);
	return c->text;
}

static void test_missing_value(void **state)
{
	Own own = { .answer = EXIT_OK };
	CliContext ctx;
	Request req;
	Capture err;
	const char *text;

	(void)state;
	/* an option that takes a value, without one: not "unknown" */
	capture_start(&err, stderr);
	assert_int_equal(parse(&everything, &ctx, &req, &own, "--pid", NULL), EXIT_USAGE);
	text = capture_end(&err);
	assert_non_null(strstr(text, "option '--pid' needs a value"));
	assert_null(strstr(text, "unknown"));

	capture_start(&err, stderr);
	assert_int_equal(parse(&everything, &ctx, &req, &own, "--children", "-n", NULL),
			 EXIT_USAGE);
	assert_non_null(strstr(capture_end(&err), "option '-n' needs a value"));

	capture_start(&err, stderr);
	assert_int_equal(parse(&everything, &ctx, &req, &own, "--own", NULL), EXIT_USAGE);
	assert_non_null(strstr(capture_end(&err), "option '--own' needs a value"));
	assert_int_equal(own.calls, 0);

	/* an unknown option is still that */
	capture_start(&err, stderr);
	assert_int_equal(parse(&everything, &ctx, &req, &own, "--bogus", NULL), EXIT_USAGE);
	assert_non_null(strstr(capture_end(&err), "unknown option '--bogus'"));
}

/* A usage error in JSON mode: one JSON document on stdout, wherever --json is. */
static void assert_json_usage_error(const char *out)
{
	_cleanup_json_ json_object *o = json_tokener_parse(out);

	assert_non_null(o);
	assert_string_equal(json_get_string(o, "code"), "bad_request");
	assert_non_null(json_get_string(o, "error"));
}

static void test_json_usage_error(void **state)
{
	const CliQuery run = { .name = "run",
			       .command = COMMAND_TOP,
			       .shared = CLI_OPT_LIMIT,
			       .takes_command = true };
	Own own = { .answer = EXIT_OK };
	CliContext ctx;
	Request req;
	Capture out, err;

	(void)state;
	capture_start(&out, stdout);
	assert_int_equal(parse(&everything, &ctx, &req, &own, "--pid", "0", "--json", NULL),
			 EXIT_USAGE);
	assert_json_usage_error(capture_end(&out));

	capture_start(&out, stdout);
	assert_int_equal(parse(&everything, &ctx, &req, &own, "--bogus", "--json", NULL),
			 EXIT_USAGE);
	assert_json_usage_error(capture_end(&out));

	capture_start(&out, stdout);
	assert_int_equal(parse(&everything, &ctx, &req, &own, "--json", "--since", NULL),
			 EXIT_USAGE);
	assert_json_usage_error(capture_end(&out));

	/* the command's own checks too */
	own.answer = CLI_UNKNOWN;
	capture_start(&out, stdout);
	assert_int_equal(parse(&everything, &ctx, &req, &own, "--json", "-x", "1", NULL),
			 EXIT_USAGE);
	assert_json_usage_error(capture_end(&out));

	/* without --json, or with it only in the command to run, stdout stays empty (-n -1 is
	 * no count) */
	capture_start(&err, stderr);
	capture_start(&out, stdout);
	assert_int_equal(parse(&everything, &ctx, &req, &own, "--bogus", NULL), EXIT_USAGE);
	assert_string_equal(capture_end(&out), "");
	capture_start(&out, stdout);
	assert_int_equal(parse(&run, &ctx, &req, NULL, "-n", "-1", "ls", "--json", NULL),
			 EXIT_USAGE);
	assert_string_equal(capture_end(&out), "");
	capture_start(&out, stdout);
	assert_int_equal(parse(&run, &ctx, &req, NULL, "-n", "-1", "--", "--json", NULL),
			 EXIT_USAGE);
	assert_string_equal(capture_end(&out), "");
	capture_end(&err);
}

/*
 * Exit codes of offline answers (profq(1), EXIT STATUS): a --state-dir that is not one is a
 * usage error, not an unreachable daemon; ps over a range without samples finds nothing (1),
 * as top does, and still prints its (empty) answer.
 */
static void render_header(json_object *answer, const Request *req)
{
	(void)answer, (void)req;
	printf("PID\n");
}

static void test_offline_exit_codes(void **state)
{
	const CliQuery ps = { .name = "ps",
			      .command = COMMAND_PS,
			      .limit = REQUEST_LIMIT_MAX,
			      .empty_is_not_found = true,
			      .render = render_header };
	_cleanup_(tmpdir_freep) char *dir = tmpdir_new_named("profq-test-command");
	_cleanup_free_ char *segments = NULL, *file = NULL;
	CliContext ctx = { .socket_path = "/nonexistent" };
	Capture out, err;
	Request req;
	FILE *f;

	(void)state;
	assert_non_null(dir);
	assert_true(asprintf(&segments, "%s/segments", dir) > 0);
	assert_true(asprintf(&file, "%s/file", dir) > 0);
	f = fopen(file, "w");
	assert_non_null(f);
	fclose(f);
	request_init(&req, COMMAND_PS);

	capture_start(&err, stderr);
	ctx.state_dir = "/nonexistent/state";
	assert_int_equal(cli_answer(&ps, &ctx, &req), EXIT_USAGE);
	ctx.state_dir = file;
	assert_int_equal(cli_answer(&ps, &ctx, &req), EXIT_USAGE);
	ctx.state_dir = dir; /* a directory, without segments/ */
	assert_int_equal(cli_answer(&ps, &ctx, &req), EXIT_USAGE);
	assert_non_null(strstr(capture_end(&err), "not a state directory"));

	/* an empty state dir: nothing found, and the JSON answer is still printed */
	assert_int_equal(mkdir(segments, 0700), 0);
	capture_start(&err, stderr);
	capture_start(&out, stdout);
	assert_int_equal(cli_answer(&ps, &ctx, &req), EXIT_NOT_FOUND);
	assert_non_null(strstr(capture_end(&out), "PID"));
	ctx.json = true;
	capture_start(&out, stdout);
	assert_int_equal(cli_answer(&ps, &ctx, &req), EXIT_NOT_FOUND);
	{
		_cleanup_json_ json_object *o = json_tokener_parse(capture_end(&out));
		json_object *rows;

		assert_non_null(o);
		assert_true(json_object_object_get_ex(o, "rows", &rows));
		assert_int_equal(json_object_array_length(rows), 0);
	}
	assert_non_null(strstr(capture_end(&err), "No samples in range"));
}

static void test_not_taken(void **state)
{
	const CliQuery few = { .name = "few", .command = COMMAND_TIME, .shared = CLI_OPT_PID };
	CliContext ctx;
	Request req;

	(void)state;
	assert_int_equal(parse(&few, &ctx, &req, NULL, "--pid", "1", "--json", NULL), CLI_PARSED);
	assert_int_equal(req.command, COMMAND_TIME);
	assert_int_equal(parse(&few, &ctx, &req, NULL, "--tid", "1", NULL), EXIT_USAGE);
	assert_int_equal(parse(&few, &ctx, &req, NULL, "--since", "1m", NULL), EXIT_USAGE);
	assert_int_equal(parse(&few, &ctx, &req, NULL, "--children", NULL), EXIT_USAGE);
	assert_int_equal(parse(&few, &ctx, &req, NULL, "--inline", NULL), EXIT_USAGE);
	assert_int_equal(parse(&few, &ctx, &req, NULL, "--no-python", NULL), EXIT_USAGE);
	assert_int_equal(parse(&few, &ctx, &req, NULL, "--python", NULL), EXIT_USAGE);
	assert_int_equal(parse(&few, &ctx, &req, NULL, "-n", "3", NULL), EXIT_USAGE);
	assert_int_equal(parse(&few, &ctx, &req, NULL, "extra", NULL), EXIT_USAGE);
}

static void test_own(void **state)
{
	Own own = { .answer = EXIT_OK };
	CliContext ctx;
	Request req;

	(void)state;
	assert_int_equal(parse(&everything, &ctx, &req, &own, "--own", "a", "-x", "b", NULL),
			 CLI_PARSED);
	assert_int_equal(own.calls, 2);
	assert_string_equal(own.last, "b");

	own = (Own){ .answer = CLI_UNKNOWN };
	assert_int_equal(parse(&everything, &ctx, &req, &own, "--own", "a", NULL), EXIT_USAGE);
	own = (Own){ .answer = EXIT_UNREACHABLE };
	assert_int_equal(parse(&everything, &ctx, &req, &own, "--own", "a", "--json", NULL),
			 EXIT_UNREACHABLE);
	assert_false(ctx.json);
	assert_int_equal(own.checks, 0);
}

static void test_checks(void **state)
{
	const CliQuery pid = { .name = "pid",
			       .command = COMMAND_TREE,
			       .shared = CLI_OPT_PID,
			       .needs_pid = true,
			       .limit = REQUEST_LIMIT_MAX,
			       .help = "" };
	const CliQuery run = { .name = "run",
			       .command = COMMAND_TOP,
			       .shared = CLI_OPT_LIMIT,
			       .takes_command = true };
	CliContext ctx;
	Request req;

	(void)state;
	assert_int_equal(parse(&pid, &ctx, &req, NULL, NULL), EXIT_USAGE);
	assert_int_equal(parse(&pid, &ctx, &req, NULL, "--pid", "9", NULL), CLI_PARSED);
	assert_int_equal(req.limit, REQUEST_LIMIT_MAX);
	/* --help wins over what is missing, and ends the parsing */
	assert_int_equal(parse(&pid, &ctx, &req, NULL, "--help", "--bogus", NULL), EXIT_OK);

	/* a command to run: options end at its name, and its own are not profq's */
	assert_int_equal(parse(&run, &ctx, &req, NULL, "-n", "2", "true", "--json", NULL),
			 CLI_PARSED);
	assert_int_equal(req.limit, 2);
	assert_false(ctx.json);
	assert_int_equal(optind, 3);
	assert_int_equal(parse(&run, &ctx, &req, NULL, "--", "ls", "-n", NULL), CLI_PARSED);
	assert_int_equal(optind, 2);
}

static void test_match_options(void **state)
{
	const CliQuery q = { .name = "tree",
			     .command = COMMAND_TREE,
			     .shared = CLI_OPT_PID | CLI_OPT_CHILDREN | CLI_OPT_MATCH,
			     .needs_pid = true,
			     .help = "" };
	const CliQuery no_match = {
		.name = "pid", .command = COMMAND_TREE, .shared = CLI_OPT_PID, .help = ""
	};
	char label[256];
	CliContext ctx;
	Request req;

	(void)state;
	/* A selector stands in for the pid; a cgroup may leave out its leading '/'. */
	assert_int_equal(parse(&q, &ctx, &req, NULL, "--unit", "nginx", "--cgroup", "system.slice",
			       "--container", "0a1b", "--comm", "w*", NULL),
			 CLI_PARSED);
	assert_string_equal(req.match.unit, "nginx");
	assert_string_equal(req.match.cgroup, "/system.slice");
	assert_string_equal(req.match.container, "0a1b");
	assert_string_equal(req.match.comm, "w*");
	assert_string_equal(cli_match_label(&req, label, sizeof(label)),
			    "unit nginx, cgroup /system.slice, container 0a1b, comm w*");
	assert_int_equal(parse(&q, &ctx, &req, NULL, "--cgroup", "/a/b", NULL), CLI_PARSED);
	assert_string_equal(req.match.cgroup, "/a/b");
	/* Not with a pid or its children; nothing else bounded past its field. */
	assert_int_equal(parse(&q, &ctx, &req, NULL, "--unit", "a", "--pid", "3", NULL),
			 EXIT_USAGE);
	assert_int_equal(parse(&q, &ctx, &req, NULL, "--unit", "a", "--children", NULL),
			 EXIT_USAGE);
	assert_int_equal(parse(&q, &ctx, &req, NULL, "--container", "XYZ", NULL), EXIT_USAGE);
	assert_int_equal(parse(&q, &ctx, &req, NULL, "--unit", "", NULL), EXIT_USAGE);
	assert_int_equal(parse(&q, &ctx, &req, NULL, "--comm",
			       "0123456789012345678901234567890123456789012345678901234567890123",
			       NULL),
			 EXIT_USAGE);
	assert_int_equal(parse(&q, &ctx, &req, NULL, NULL), EXIT_USAGE);
	/* A command without them does not take them. */
	assert_int_equal(parse(&no_match, &ctx, &req, NULL, "--unit", "a", NULL), EXIT_USAGE);
}

#define NOW_S 1700000000LL /* 2023-11-14 22:13:20 UTC */
#define NOW_NS (NOW_S * (int64_t)NSEC_PER_SEC)

static int64_t time_of(const char *s)
{
	int64_t t = 0;

	if (cli_parse_time(s, NOW_NS, &t) < 0)
		return -1;
	return t / (int64_t)NSEC_PER_SEC;
}

/* Points in time for --since, --until and --start, in UTC for the test. */
static void test_times(void **state)
{
	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	assert_int_equal(time_of("@1700000000"), NOW_S);
	assert_int_equal(time_of("1699999000"), 1699999000);
	assert_int_equal(time_of("2023-11-14T22:13:20"), NOW_S);
	assert_int_equal(time_of("2023-11-14 22:00"), 1699999200);
	assert_int_equal(time_of("2023-11-14"), 1699920000);
	assert_int_equal(time_of("22:00"), 1699999200);
	assert_int_equal(time_of("22:00:30"), 1699999230);
	/* Later today than now: yesterday's. */
	assert_int_equal(time_of("23:00"), 1699916400);
	assert_int_equal(time_of("2023-02-30"), -1);
	assert_int_equal(time_of("2023-11-14T25:00"), -1);
	assert_int_equal(time_of("9:05"), 1699952700);
	assert_int_equal(time_of("22:0"), -1);
	assert_int_equal(time_of("222:00"), -1);
	assert_int_equal(time_of("2023-1-14"), -1);
	assert_int_equal(time_of("22:00:3"), -1);
	assert_int_equal(time_of("@"), -1);
	assert_int_equal(time_of("@-5"), -1);
	assert_int_equal(time_of("2023-11-14x"), -1);
	assert_int_equal(time_of("soon"), -1);
}

static void test_range_options(void **state)
{
	Own own = { .answer = EXIT_OK };
	struct timespec ts;
	char buf[64];
	CliContext ctx;
	Request req;

	(void)state;
	clock_gettime(CLOCK_REALTIME, &ts);
	/* A point in time becomes the duration back to it from now. */
	snprintf(buf, sizeof(buf), "@%lld", (long long)ts.tv_sec - 600);
	assert_int_equal(parse(&everything, &ctx, &req, &own, "--since", buf, "--until", "1m",
			       NULL),
			 CLI_PARSED);
	assert_true(req.has_since && req.since_ns >= 599 * NSEC_PER_SEC &&
		    req.since_ns <= 602 * NSEC_PER_SEC);
	assert_true(ctx.since_absolute && !ctx.until_absolute);
	assert_string_equal(ctx.since, buf);
	assert_string_equal(ctx.until, "1m");
	/* --until in the future is now; --since in the future is no range. */
	snprintf(buf, sizeof(buf), "@%lld", (long long)ts.tv_sec + 600);
	assert_int_equal(parse(&everything, &ctx, &req, &own, "--until", buf, NULL), CLI_PARSED);
	assert_true(req.has_until && req.until_ns == 0);
	assert_int_equal(parse(&everything, &ctx, &req, &own, "--since", buf, NULL), EXIT_USAGE);

	assert_int_equal(parse(&everything, &ctx, &req, &own, "--pid", "5", "--range", "life",
			       NULL),
			 CLI_PARSED);
	assert_true(ctx.range_life);
	assert_int_equal(parse(&everything, &ctx, &req, &own, "--range", "life", NULL), EXIT_USAGE);
	assert_int_equal(parse(&everything, &ctx, &req, &own, "--pid", "5", "--range", "life",
			       "--since", "5m", NULL),
			 EXIT_USAGE);
	assert_int_equal(parse(&everything, &ctx, &req, &own, "--pid", "5", "--range", "all", NULL),
			 EXIT_USAGE);
}

static void expect_label(const CliContext *ctx, Command command, const char *answer,
			 const char *want)
{
	json_object *a = json_tokener_parse(answer);
	Request req;
	char buf[256];

	assert_non_null(a);
	request_init(&req, command);
	assert_string_equal(cli_range_label(ctx, &req, a, buf, sizeof(buf)), want);
	json_object_put(a);
}

/* The header of a plain answer says which range it covers, as asked and as answered. */
static void test_range_label(void **state)
{
	const char *covered = "{\"range\":{\"since_s\":1699999400.0,\"until_s\":1700000000.0}}";
	CliContext ctx = { 0 };

	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	expect_label(&ctx, COMMAND_PS, covered,
		     "all retained (2023-11-14 22:03:20-2023-11-14 22:13:20)");
	expect_label(&ctx, COMMAND_PS, "{\"range\":{\"since_s\":null,\"until_s\":null}}",
		     "all retained (no data)");
	ctx.since = "10m";
	expect_label(&ctx, COMMAND_TOP, covered,
		     "last 10m (2023-11-14 22:03:20-2023-11-14 22:13:20)");
	ctx.until = "5m";
	expect_label(&ctx, COMMAND_TOP, covered,
		     "10m ago to 5m ago (2023-11-14 22:03:20-2023-11-14 22:13:20)");
	ctx = (CliContext){ .since = "22:03", .since_absolute = true };
	expect_label(&ctx, COMMAND_LINES, covered,
		     "since 22:03 (2023-11-14 22:03:20-2023-11-14 22:13:20)");
	ctx = (CliContext){ 0 };
	expect_label(&ctx, COMMAND_TIME, covered,
		     "the process's life (2023-11-14 22:03:20-2023-11-14 22:13:20)");
}

/* run: a run without samples is idle when the kernel counts (almost) no CPU for it. */
static void test_run_idle(void **state)
{
	(void)state;
	/* sh -c 'sleep 1': a couple of milliseconds of CPU in a second. */
	assert_true(cli_run_idle(0.001, 0.002, 1.0));
	assert_true(cli_run_idle(0, 0, 0.5));
	/* A short busy command: too short, not idle. */
	assert_false(cli_run_idle(0.004, 0.001, 0.006));
	assert_false(cli_run_idle(0, 0, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shared),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_not_taken),
		cmocka_unit_test(test_own),
		cmocka_unit_test(test_checks),
		cmocka_unit_test(test_match_options),
		cmocka_unit_test(test_missing_value),
		cmocka_unit_test(test_json_usage_error),
		cmocka_unit_test(test_offline_exit_codes),
		cmocka_unit_test(test_times),
		cmocka_unit_test(test_range_options),
		cmocka_unit_test(test_range_label),
		cmocka_unit_test(test_run_idle),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
