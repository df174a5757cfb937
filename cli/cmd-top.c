/* SPDX-License-Identifier: MIT */
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "base/json-util.h"
#include "base/macro.h"
#include "base/parse.h"
#include "base/text.h"
#include "base/timeutil.h"
#include "command.h"

/* A row's process name as the COMM column shows it: "name", or "name +N" when N other names
 * have samples of the function too. */
static const char *comm_label(json_object *r, char *buf, size_t len)
{
	int64_t others = json_get_int(r, "comms") - 1;

	if (others > 0)
		snprintf(buf, len, "%s +%lld", strempty(json_get_string(r, "comm")),
			 (long long)others);
	else
		snprintf(buf, len, "%s", json_get_string(r, "comm") ?: "-");
	return buf;
}

/* The widest value of key (or of the COMM label) in the first n rows, within [min, max]. */
static int column_width(json_object *rows, size_t n, const char *key, int min, int max)
{
	int w = min;

	for (size_t i = 0; i < n; i++) {
		json_object *r = json_object_array_get_idx(rows, i);
		char buf[128];
		const char *v = key ? json_get_string(r, key) : comm_label(r, buf, sizeof(buf));
		int len = v ? (int)strlen(v) : 0;

		w = MAX(w, MIN(len, max));
	}
	return w;
}

/* SELF and TOTAL of a row: samples (or times, for the events that count time), and for the
 * cpu event also as CPU time. Returns the width printed. */
static int print_counts(json_object *a, json_object *r)
{
	char self[32], total[32], self_t[32], total_t[32];
	int64_t ns = json_get_int(r, "self_samples"), nt = json_get_int(r, "total_samples");
	int used = 7 + 1 + 7 + 18;

	cli_print_pct(json_get_double(r, "self_pct"));
	putchar(' ');
	cli_print_pct(json_get_double(r, "total_pct"));
	if (cli_cpu_time(a, ns, self_t, sizeof(self_t)) &&
	    cli_cpu_time(a, nt, total_t, sizeof(total_t))) {
		printf(" %10s %10s", self_t, total_t);
		used += 22;
	}
	printf(" %8s %8s", cli_count(a, ns, self, sizeof(self)),
	       cli_count(a, nt, total, sizeof(total)));
	return used;
}

static void print_count_header(json_object *a)
{
	char buf[32];

	printf("%s%7s %7s", cli_style(CLI_STYLE_HEADER), "SELF%", "TOTAL%");
	if (cli_cpu_time(a, 0, buf, sizeof(buf)))
		printf(" %10s %10s", "SELF-TIME", "TOTAL-TIME");
	printf(" %8s %8s", "SELF", "TOTAL");
}

static void render_processes(json_object *a, json_object *rows, size_t n)
{
	char count[32], time[32];
	bool cpu = cli_cpu_time(a, 0, time, sizeof(time));

	printf("%s%7s", cli_style(CLI_STYLE_HEADER), "SHARE%");
	if (cpu)
		printf(" %9s", "TIME");
	printf(" %9s %8s  %s%s\n", cpu ? "SAMPLES" : "TIME", "PID", "COMM",
	       cli_style(CLI_STYLE_RESET));
	for (size_t i = 0; i < n; i++) {
		json_object *r = json_object_array_get_idx(rows, i);
		int64_t samples = json_get_int(r, "samples");

		cli_print_pct(json_get_double(r, "pct"));
		if (cli_cpu_time(a, samples, time, sizeof(time)))
			printf(" %9s", time);
		printf(" %9s %8lld  %s\n", cli_count(a, samples, count, sizeof(count)),
		       (long long)json_get_int(r, "pid"), strempty(json_get_string(r, "comm")));
	}
}

static void render_modules(json_object *a, json_object *rows, size_t n)
{
	print_count_header(a);
	printf("  %s%s\n", "MODULE", cli_style(CLI_STYLE_RESET));
	for (size_t i = 0; i < n; i++) {
		json_object *r = json_object_array_get_idx(rows, i);
		bool kernel = json_get_bool(r, "kernel");

		print_counts(a, r);
		printf("  %s%s%s\n", kernel ? cli_style(CLI_STYLE_DIM) : "",
		       strempty(json_get_string(r, "module")),
		       kernel ? cli_style(CLI_STYLE_RESET) : "");
	}
}

static void render_functions(json_object *a, json_object *rows, size_t n)
{
	int width = cli_terminal_width(), modw = column_width(rows, n, "module", 6, 28);
	/* Several processes: which one each row's samples are of. */
	bool comms = n > 0 &&
		     json_object_object_get_ex(json_object_array_get_idx(rows, 0), "comm", NULL);
	int commw = comms ? column_width(rows, n, NULL, 4, 24) : 0;

	print_count_header(a);
	if (comms)
		printf("  %-*s", commw, "COMM");
	printf("  %-*s  %s%s\n", modw, "MODULE", "FUNCTION", cli_style(CLI_STYLE_RESET));
	for (size_t i = 0; i < n; i++) {
		json_object *r = json_object_array_get_idx(rows, i);
		const char *fn = strempty(json_get_string(r, "function"));
		bool kernel = json_get_bool(r, "kernel");
		int used = print_counts(a, r) + 2 + modw + 2;
		bool unlimited;
		int room;
		char where[256], comm[128], name[1024];

		if (comms) {
			printf("  %-*.*s", commw, commw, comm_label(r, comm, sizeof(comm)));
			used += 2 + commw;
		}
		unlimited = width <= used + 8;
		room = unlimited ? 0 : width - used;
		/* C++ names shortened unless --full-names, cut to the room with an ellipsis. */
		cli_function_label(fn, (size_t)room, name, sizeof(name));
		printf("  %s%-*.*s  %s", kernel ? cli_style(CLI_STYLE_DIM) : "", modw, modw,
		       strempty(json_get_string(r, "module")), name);
		/* Python functions are all of module [python]: their file tells them apart. */
		room = unlimited ? INT_MAX : room - MIN(room, (int)text_columns(name));
		if (cli_python_location(r, where, sizeof(where)) && (int)strlen(where) + 2 <= room)
			printf("  %s", where);
		printf("%s\n", kernel ? cli_style(CLI_STYLE_RESET) : "");
	}
}

static void render_top(json_object *a, int max_rows)
{
	const char *comm = json_get_string(a, "comm"), *by = json_get_string(a, "by");
	json_object *rows, *pid;
	size_t n;

	if (!json_object_object_get_ex(a, "rows", &rows))
		return;
	n = json_object_array_length(rows);
	if (max_rows > 0 && (size_t)max_rows < n)
		n = (size_t)max_rows;
	cli_print_total(a);
	if (json_object_object_get_ex(a, "pid", &pid) && pid)
		printf("  pid %lld (%s)", (long long)json_get_int(a, "pid"), strempty(comm));
	if (json_get_int(a, "tid"))
		printf("  tid %lld", (long long)json_get_int(a, "tid"));
	by = by ?: "function";
	if (streq(by, "process"))
		printf("  by process\n\n");
	else
		printf("  by %s, sorted by %s\n\n", by, strempty(json_get_string(a, "sort")));
	if (streq(by, "process"))
		render_processes(a, rows, n);
	else if (streq(by, "module"))
		render_modules(a, rows, n);
	else
		render_functions(a, rows, n);
}

/* Seconds as top(1) takes them ("2", "0.5"), or a duration ("500ms"). */
static int parse_seconds(const char *s, uint64_t *ret)
{
	char *end;
	double v;

	if (parse_duration_ns(s, ret) == 0)
		return 0;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= 0 && v <= 86400))
		return -EINVAL;
	*ret = (uint64_t)(v * (double)NSEC_PER_SEC);
	return 0;
}

/*
 * The live view: like top(1), refreshed every interval over the daemon's last window, with
 * keys read from the terminal (q, s, p, h). Errors end it and stay on the screen under the
 * last frame: the screen is cleared only to draw a new one.
 */
typedef struct Live {
	CliContext *ctx;
	Request *req;
	uint64_t interval_ns;
	bool paused, help;
	json_object *answer;  /* the last answer shown; NULL: none yet */
	char waiting[256];    /* else the not_found message shown */
	int64_t when_ns;      /* when it was asked */
	struct termios saved; /* the terminal's settings before */
	bool raw;	      /* the terminal is in our mode (saved holds its own) */
} Live;

static volatile sig_atomic_t live_interrupted;

static void on_live_signal(int sig)
{
	(void)sig;
	live_interrupted = 1;
}

/* Keys one at a time, without echo; Ctrl-C still interrupts. */
static void live_terminal_raw(Live *l)
{
	struct termios t;

	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &l->saved) < 0)
		return;
	t = l->saved;
	t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	l->raw = tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
}

static void live_terminal_restore(Live *l)
{
	if (l->raw)
		(void)tcsetattr(STDIN_FILENO, TCSANOW, &l->saved);
	l->raw = false;
}

static void live_draw(const Live *l)
{
	char when[64], *clock;
	int rows;

	/* Clear the screen and home the cursor. */
	printf("\033[H\033[2J");
	if (l->help) {
		printf("profq top: the live view's keys\n"
		       "\n"
		       "  q       quit\n"
		       "  s       sort by SELF or by TOTAL samples (toggles)\n"
		       "  p       pause or resume the refreshing\n"
		       "  h, ?    this help\n"
		       "\n"
		       "Any key goes back to the view.\n");
		fflush(stdout);
		return;
	}
	cli_format_time((double)l->when_ns / NSEC_PER_SEC, when, sizeof(when));
	clock = strchr(when, ' ');
	printf("profq top: the last %llus to %s (whole windows), every %.3gs%s  [h: help]\n",
	       (unsigned long long)(l->req->since_ns / NSEC_PER_SEC), clock ? clock + 1 : when,
	       (double)l->interval_ns / NSEC_PER_SEC, l->paused ? ", PAUSED" : "");
	if (l->answer) {
		/* What fits under the header lines. */
		rows = cli_terminal_rows() - 6;
		render_top(l->answer,
			   rows > 0 ? MIN(rows, (int)l->req->limit) : (int)l->req->limit);
	} else {
		printf("%s (waiting)\n", l->waiting);
	}
	fflush(stdout);
}

/*
 * With a pid that has no samples in the view: whether it is still there. Returns CLI_PARSED
 * to keep waiting (it runs, idle), else an exit code after saying why not: not known,
 * exited, denied.
 */
static int live_pid_gone(const Live *l)
{
	_cleanup_json_ json_object *answer = NULL;
	const char *msg;
	ErrorCode code;
	Request req;
	char when[64];
	int r;

	request_init(&req, COMMAND_TIME);
	req.pid = l->req->pid;
	req.start_ns = l->req->start_ns;
	r = cli_query_answer(l->ctx, &req, &answer);
	if (r != EXIT_OK)
		return r;
	cli_sanitize(answer);
	if (answer_error_code(answer, &code, &msg) == 0) {
		fprintf(stderr, "profq: %s\n", msg);
		return cli_exit_code(code);
	}
	if (!json_get_bool(answer, "exited"))
		return CLI_PARSED;
	fprintf(stderr, "profq: pid %u (%s) exited at %s\n", req.pid,
		strempty(json_get_string(answer, "comm")),
		cli_format_time(json_get_double(answer, "exit_time"), when, sizeof(when)));
	return EXIT_NOT_FOUND;
}

/* Asks for the view: CLI_PARSED to show it (or wait), else an exit code after reporting. */
static int live_ask(Live *l)
{
	_cleanup_json_ json_object *answer = NULL;
	const char *msg;
	ErrorCode code;
	int r;

	l->when_ns = now_real_ns();
	r = cli_query_answer(l->ctx, l->req, &answer);
	if (r != EXIT_OK)
		return r;
	/* Names are shown on the terminal: no escape sequence of theirs reaches it. */
	cli_sanitize(answer);
	if (answer_error_code(answer, &code, &msg) < 0) {
		json_object_put(l->answer);
		l->answer = TAKE_PTR(answer);
		return CLI_PARSED;
	}
	if (code != ERROR_NOT_FOUND) {
		fprintf(stderr, "profq: %s\n", msg);
		return cli_exit_code(code);
	}
	if (l->req->pid) {
		r = live_pid_gone(l);
		if (r != CLI_PARSED)
			return r;
	}
	snprintf(l->waiting, sizeof(l->waiting), "%s", msg);
	json_object_put(l->answer);
	l->answer = NULL;
	return CLI_PARSED;
}

/* Waits up to timeout_ms (-1: forever) for a key: the key, 0 on timeout, -1 to quit. */
static int live_key(const Live *l, int timeout_ms)
{
	struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
	unsigned char c;
	int r;

	if (live_interrupted) /* during the query */
		return -1;
	if (!l->raw) {
		/* No keys to read: only the time passes (or a signal ends it). */
		if (timeout_ms < 0)
			pause();
		else
			poll(NULL, 0, timeout_ms);
		return live_interrupted ? -1 : 0;
	}
	r = poll(&pfd, 1, timeout_ms);
	if (live_interrupted)
		return -1;
	if (r <= 0)
		return 0;
	/* End of input (the terminal hung up): nobody is watching. */
	if (read(STDIN_FILENO, &c, 1) != 1)
		return -1;
	return c;
}

static int live_loop(Live *l)
{
	int64_t next = 0;
	int r, key;

	for (;;) {
		int64_t now = (int64_t)now_mono_ns();

		if (!l->paused && !l->help && now >= next) {
			r = live_ask(l);
			if (r != CLI_PARSED)
				return r;
			next = now + (int64_t)l->interval_ns;
			live_draw(l);
		}
		now = (int64_t)now_mono_ns();
		key = live_key(l, l->paused || l->help
					  ? -1
					  : (int)MAX((next - now) / (int64_t)NSEC_PER_MSEC, 0));
		if (key < 0 || (key == 'q' && !l->help))
			return EXIT_OK;
		if (key == 0)
			continue;
		if (l->help) {
			l->help = false;
		} else if (key == 's') {
			l->req->sort = l->req->sort == SORT_SELF ? SORT_TOTAL : SORT_SELF;
			next = 0; /* ask again now, in the new order */
		} else if (key == 'p') {
			l->paused = !l->paused;
			next = 0;
		} else if (key == 'h' || key == '?') {
			l->help = true;
		} else {
			continue;
		}
		live_draw(l);
	}
}

static int live_top(CliContext *ctx, Request *req, uint64_t interval_ns)
{
	_cleanup_json_ json_object *status = NULL;
	struct sigaction sa = { .sa_handler = on_live_signal }, old_int, old_term;
	Live l = { .ctx = ctx, .req = req, .interval_ns = interval_ns };
	Request sreq;
	int r;

	request_init(&sreq, COMMAND_STATUS);
	r = cli_query(ctx, &sreq, &status);
	if (r != EXIT_OK)
		return r;
	req->has_since = true;
	req->since_ns = (uint64_t)json_get_int(status, "window_s") * NSEC_PER_SEC;
	if (req->since_ns == 0)
		req->since_ns = 10 * NSEC_PER_SEC;
	/* Ctrl-C and SIGTERM end the view as q does, with the terminal restored. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	live_terminal_raw(&l);
	r = live_loop(&l);
	live_terminal_restore(&l);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	json_object_put(l.answer);
	return r;
}

enum {
	OPT_SORT = 0x200,
	OPT_ONCE,
	OPT_BY,
};

typedef struct TopArgs {
	bool once;
	uint64_t interval_ns;
} TopArgs;

static int parse_option(int opt, const char *arg, Request *req, void *userdata)
{
	TopArgs *args = userdata;

	switch (opt) {
	case OPT_SORT:
		if (!sort_key_valid(COMMAND_TOP, sort_key_from_string(arg)))
			return cli_usage_error("top", "--sort: '%s' is not 'self' or 'total'", arg);
		req->sort = sort_key_from_string(arg);
		return EXIT_OK;
	case OPT_ONCE:
		args->once = true;
		return EXIT_OK;
	case OPT_BY:
		if (!streq(arg, "function") && !streq(arg, "process") && !streq(arg, "module"))
			return cli_usage_error(
				"top", "--by: '%s' is not function, process or module", arg);
		req->by = streq(arg, "function") ? GROUP_NONE : group_by_from_string(arg);
		return EXIT_OK;
	default: /* -d */
		if (parse_seconds(arg, &args->interval_ns) < 0 ||
		    args->interval_ns < 100 * NSEC_PER_MSEC ||
		    args->interval_ns > 3600 * NSEC_PER_SEC)
			return cli_usage_error("top", "-d: '%s' is not a delay in 0.1s..1h", arg);
		return EXIT_OK;
	}
}

static void render_all(json_object *answer, const Request *req)
{
	(void)req;
	render_top(answer, 0);
}

static const CliQuery top = {
	.name = "top",
	.command = COMMAND_TOP,
	.shared = CLI_OPT_RANGE | CLI_OPT_PID | CLI_OPT_TID | CLI_OPT_START | CLI_OPT_CHILDREN |
		  CLI_OPT_INLINE | CLI_OPT_LIMIT | CLI_OPT_MATCH | CLI_OPT_EVENT | CLI_OPT_COLOR |
		  CLI_OPT_NAMES,
	.help = "Usage: profq top [--pid N [--tid T] [--start TIME] [--children]]\n"
		"                 [--unit NAME] [--cgroup PATH] [--container ID] [--comm NAME]\n"
		"                 [-n N] [--sort self|total] [--since WHEN]\n"
		"                 [--until WHEN] [--range life] [--[no-]inline]\n"
		"                 [--[no-]python] [--event cpu|off-cpu|wall|faults]\n"
		"                 [--by function|process|module] [--full-names]\n"
		"                 [--once] [-d SECS] [--color auto|always|never] [--json]\n"
		"\n"
		"Hotspot functions: SELF% (samples in the function itself) and\n"
		"TOTAL% (samples with the function anywhere on the stack), of the\n"
		"process's samples (of all samples without --pid), and for CPU\n"
		"samples their CPU time (samples x the sampling period).\n"
		"Without --pid (or with --children) COMM names the process most of\n"
		"a function's samples are of, '+N' when N others have some too.\n"
		"--by process: processes by their samples; --by module: binaries\n"
		"(libc.so.6, [kernel.kallsyms]) by self and total samples.\n"
		"--color: colour on a terminal (auto, unless NO_COLOR is set).\n"
		"C++ names are shown without template arguments and parameters,\n"
		"all names cut to the terminal's width; --full-names shows them\n"
		"whole (--json always does).\n"
		"--event off-cpu: the time threads spent switched out, by the stack\n"
		"they waited at; wall: CPU and off-CPU time together (SELF and TOTAL\n"
		"are then times).\n"
		"On a terminal, without --since, --range, --json or --once: a live\n"
		"view over the last window, refreshed every -d seconds (2);\n"
		"keys: q quit, s sort by self/total, p pause, h help.\n"
		"--tid: one thread. --start: another incarnation of the pid\n"
		"(a start time from 'profq ps'). --children: the pid and its\n"
		"descendants. Calls inlined by the compiler are functions of their\n"
		"own; --no-inline folds them into the function they are in.\n"
		"Python functions are frames of their own in place of the interpreter\n"
		"frames that ran them; --no-python shows the interpreter frames.\n"
		"--unit NAME, --cgroup PATH, --container ID, --comm NAME: instead\n"
		"of --pid, every process that matches (all given), summed: unit\n"
		"and comm are globs, a cgroup counts with those below it, an id\n"
		"may be cut short.\n",
	.options =
		(const struct option[]){
			{ "sort", required_argument, NULL, OPT_SORT },
			{ "once", no_argument, NULL, OPT_ONCE },
			{ "by", required_argument, NULL, OPT_BY },
			{ "delay", required_argument, NULL, 'd' },
			{},
		},
	.short_options = "d:",
	.option = parse_option,
	.render = render_all,
};

int cmd_top(CliContext *ctx, int argc, char **argv)
{
	TopArgs args = { .interval_ns = 2 * NSEC_PER_SEC };
	Request req;
	int r;

	r = cli_parse(&top, ctx, &req, argc, argv, &args);
	if (r != CLI_PARSED)
		return r;
	if (isatty(STDOUT_FILENO) && !args.once && !ctx->json && !req.has_since && !ctx->range_life)
		return live_top(ctx, &req, args.interval_ns);
	return cli_answer(&top, ctx, &req);
}
