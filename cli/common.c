/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include "base/json-util.h"
#include "base/text.h"
#include "base/macro.h"
#include "base/parse.h"
#include "base/timeutil.h"
#include "cli.h"
#include "query/query.h"
#include "store/persist.h"

/* How long to wait for an answer: a daemon that takes longer is treated as unreachable. */
#define ANSWER_TIMEOUT_MS 30000
#define ANSWER_MAX (256u << 20)
#define ANSWER_MAX_DEPTH (2 * STORE_STACK_MAX + 64)

static int report(const CliContext *ctx, int code, const char *error_code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int report(const CliContext *ctx, int code, const char *error_code, const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	fprintf(stderr, "profq: %s\n", msg ? msg : "out of memory");
	if (ctx->json) {
		_cleanup_json_ json_object *o = json_object_new_object();

		if (o) {
			json_add_string(o, "error", msg ? msg : "out of memory");
			json_add_string(o, "code", error_code);
			cli_print_json(o);
		}
	}
	return code;
}

static int send_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads one line (without the newline) into *ret. */
static int read_line(int fd, char **ret)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, allocated = 0;

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;
		char *nl;
		int r;

		r = poll(&pfd, 1, ANSWER_TIMEOUT_MS);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return negative_errno();
		if (r == 0)
			return -ETIMEDOUT;
		if (GREEDY_REALLOC(buf, allocated, len + 65536) < 0)
			return -ENOMEM;
		n = recv(fd, buf + len, allocated - len - 1, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		if (n == 0)
			return -ECONNRESET;
		len += (size_t)n;
		buf[len] = '\0';
		nl = memchr(buf, '\n', len);
		if (nl) {
			*nl = '\0';
			*ret = TAKE_PTR(buf);
			return 0;
		}
		if (len > ANSWER_MAX)
			return -EFBIG;
	}
}

/* One round trip: the parsed answer (possibly an error answer), or a negative errno. */
static int roundtrip(const CliContext *ctx, const Request *req, json_object **ret,
		     const char **ret_what)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_json_ json_object *request = NULL;
	_cleanup_(json_tokener_freep) json_tokener *tok = NULL;
	_cleanup_free_ char *line = NULL;
	_cleanup_close_ int fd = -1;
	json_object *answer;
	const char *text;
	int r;

	*ret_what = "connect to";
	if (strlen(ctx->socket_path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, ctx->socket_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return negative_errno();
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return negative_errno();
	*ret_what = "get an answer from";
	r = request_to_json(req, &request);
	if (r < 0)
		return r;
	text = json_object_to_json_string_ext(request, JSON_C_TO_STRING_PLAIN);
	r = send_all(fd, text, strlen(text));
	if (r >= 0)
		r = send_all(fd, "\n", 1);
	if (r >= 0)
		r = read_line(fd, &line);
	if (r < 0)
		return r;
	/* A tree answer nests two levels per frame of the deepest stack. */
	tok = json_tokener_new_ex(ANSWER_MAX_DEPTH);
	if (!tok)
		return -ENOMEM;
	answer = json_tokener_parse_ex(tok, line, (int)strlen(line));
	if (json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(answer);
		answer = NULL;
	}
	if (!answer || !json_object_is_type(answer, json_type_object)) {
		json_object_put(answer);
		return -EBADMSG;
	}
	*ret = answer;
	return 0;
}

int cli_exit_code(ErrorCode code)
{
	static const int exit_codes[_ERROR_MAX] = {
		[ERROR_DENIED] = EXIT_DENIED,
		[ERROR_NOT_FOUND] = EXIT_NOT_FOUND,
		[ERROR_BAD_REQUEST] = EXIT_USAGE,
		[ERROR_UNAVAILABLE] = EXIT_UNREACHABLE,
	};

	return code >= 0 && code < _ERROR_MAX ? exit_codes[code] : EXIT_UNREACHABLE;
}

static void on_offline_version(void *userdata, const char *path, uint32_t version)
{
	(void)userdata;
	fprintf(stderr, "profq: skipped '%s': it is in format version %u, this profq reads %d\n",
		path, version, SEGMENT_VERSION);
}

static void on_offline_problem(void *userdata, const char *path, int error, size_t good,
			       size_t size)
{
	if (error == -EPROTONOSUPPORT)
		return; /* on_offline_version() says it better */
	(void)userdata;
	if (good > 0)
		fprintf(stderr, "profq: skipped the last %zu of %zu bytes of '%s': %s\n",
			size - good, size, path, strerror(-error));
	else
		fprintf(stderr, "profq: skipped '%s': %s\n", path, strerror(-error));
}

/* Keeps every process record loaded: exited ones with no samples are answered for too. */
static void on_offline_proc(void *userdata, ProcId id, const StoreProc *p)
{
	(void)p;
	store_proc_ref(userdata, id);
}

static int offline_status(const Store *store, const PersistLoadStats *st, json_object **ret)
{
	_cleanup_json_ json_object *o = json_object_new_object();
	size_t n = store_window_count(store);
	uint64_t samples = 0, lost = 0, idle = 0;

	if (!o)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		samples += store_window(store, i)->samples;
		lost += store_window(store, i)->lost;
		idle += store_window(store, i)->idle;
	}
	json_object_object_add(o, "offline", json_object_new_boolean(true));
	json_add_int(o, "samples", (int64_t)samples);
	json_add_int(o, "idle", (int64_t)idle);
	json_add_int(o, "lost", (int64_t)lost);
	json_add_int(o, "windows", (int64_t)n);
	if (n > 0) {
		json_add_double(o, "first_window_start",
				(double)store_window(store, 0)->start_ns / NSEC_PER_SEC, 3);
		json_add_double(o, "last_window_end",
				(double)store_window(store, n - 1)->end_ns / NSEC_PER_SEC, 3);
	}
	json_add_int(o, "memory_bytes", (int64_t)store_memory(store));
	json_add_int(o, "processes", (int64_t)store_proc_count(store));
	json_add_int(o, "segments", (int64_t)st->segments);
	json_add_int(o, "disk_bytes", (int64_t)st->bytes);
	json_add_int(o, "corrupt_segments", (int64_t)(st->corrupt_segments + st->bad_segments));
	*ret = TAKE_PTR(o);
	return 0;
}

/*
 * Answers from a state dir, read-only, as the daemon would. Whoever can read the files sees
 * everything in them: the directory's permissions are the access control here.
 */
static int offline(const CliContext *ctx, const Request *req, json_object **ret)
{
	_cleanup_(store_freep) Store *store = NULL;
	PersistLoadCallbacks cb = { .proc = on_offline_proc,
				    .problem = on_offline_problem,
				    .version = on_offline_version };
	int64_t now = now_real_ns(), not_before = INT64_MIN;
	PersistLoadStats st;
	QueryContext q;
	int r;

	/* top, tree, lines and stacks count samples of windows in range and nothing else: segments
	 * and windows that ended before --since are not worth reading (every segment holds the
	 * records of the processes its windows sampled). */
	if (req->has_since && (req->command == COMMAND_TOP || req->command == COMMAND_TREE ||
			       req->command == COMMAND_LINES || req->command == COMMAND_STACKS))
		not_before = now - (int64_t)MIN(req->since_ns, (uint64_t)INT64_MAX / 2);
	r = store_new(&store);
	if (r < 0)
		return r;
	cb.userdata = store;
	r = persist_load(store, ctx->state_dir, not_before, &cb, &st);
	if (r < 0)
		return r;
	if (req->command == COMMAND_STATUS)
		return offline_status(store, &st, ret);
	q = (QueryContext){ .store = store, .now_ns = now, .viewer.privileged = true };
	r = query_answer(&q, req, ret);
	if (r == -EOPNOTSUPP) {
		*ret = error_answer_new(ERROR_BAD_REQUEST, "Command '%s' is not supported offline",
					command_to_string(req->command));
		return *ret ? 0 : -ENOMEM;
	}
	return r;
}

static bool is_denied(int r)
{
	return r == -EACCES || r == -EPERM;
}

/* A state dir that cannot be read: not one (a usage error), not ours to read (denied), or
 * unreadable for another reason (as a daemon that does not answer). */
static int report_offline(const CliContext *ctx, int r)
{
	struct stat st;

	errno = -r;
	if (is_denied(r))
		return report(ctx, EXIT_DENIED, error_code_to_string(ERROR_DENIED),
			      "Failed to read state directory '%s': %m", ctx->state_dir);
	if (r == -ENOENT || r == -ENOTDIR) {
		if (stat(ctx->state_dir, &st) == 0 && S_ISDIR(st.st_mode))
			return report(
				ctx, EXIT_USAGE, error_code_to_string(ERROR_BAD_REQUEST),
				"'%s' is not a state directory of profqd (no segments/ in it)",
				ctx->state_dir);
		return report(ctx, EXIT_USAGE, error_code_to_string(ERROR_BAD_REQUEST),
			      "Failed to read state directory '%s': %m", ctx->state_dir);
	}
	return report(ctx, EXIT_UNREACHABLE, "unavailable",
		      "Failed to read state directory '%s': %m", ctx->state_dir);
}

int cli_query_answer(const CliContext *ctx, const Request *req, json_object **ret)
{
	const char *what;
	int r;

	if (ctx->state_dir) {
		r = offline(ctx, req, ret);
		return r < 0 ? report_offline(ctx, r) : EXIT_OK;
	}
	r = roundtrip(ctx, req, ret, &what);
	if (r < 0) {
		errno = -r;
		/* The socket is mode 0666: a directory on its path is what the user may not
		 * search. */
		if (is_denied(r))
			return report(ctx, EXIT_DENIED, error_code_to_string(ERROR_DENIED),
				      "Failed to %s profqd at '%s': %m", what, ctx->socket_path);
		return report(ctx, EXIT_UNREACHABLE, "unavailable",
			      "Failed to %s profqd at '%s': %m%s", what, ctx->socket_path,
			      r == -ENOENT || r == -ECONNREFUSED ? " (is profqd running?)" : "");
	}
	return EXIT_OK;
}

/*
 * Names of processes, threads, functions and files come from whoever runs a program on the host:
 * for plain output on a terminal, control characters (escape sequences) become '?'. JSON output
 * escapes them itself.
 */
static void sanitize(json_object *o)
{
	if (json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, key, val)
		{
			(void)key;
			sanitize(val);
		}
	} else if (json_object_is_type(o, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(o); i++)
			sanitize(json_object_array_get_idx(o, i));
	} else if (json_object_is_type(o, json_type_string)) {
		const char *s = json_object_get_string(o);
		size_t n = (size_t)json_object_get_string_len(o);
		bool bad = false;

		for (size_t i = 0; i < n; i++)
			bad |= (unsigned char)s[i] < 0x20 || s[i] == 0x7f;
		if (bad) {
			_cleanup_free_ char *copy = malloc(n + 1);

			if (!copy)
				return;
			for (size_t i = 0; i < n; i++)
				copy[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
			copy[n] = '\0';
			json_object_set_string(o, copy);
		}
	}
}

void cli_sanitize(json_object *answer)
{
	sanitize(answer);
}

int cli_query(const CliContext *ctx, const Request *req, json_object **ret)
{
	_cleanup_json_ json_object *answer = NULL;
	const char *msg;
	ErrorCode code;
	int r;

	r = cli_query_answer(ctx, req, &answer);
	if (r != EXIT_OK)
		return r;
	if (!ctx->json)
		sanitize(answer);
	if (answer_error_code(answer, &code, &msg) == 0)
		return report(ctx, cli_exit_code(code), error_code_to_string(code), "%s", msg);
	*ret = TAKE_PTR(answer);
	return EXIT_OK;
}

const char *cli_format_time(double epoch_s, char *buf, size_t len)
{
	time_t sec = (time_t)epoch_s;
	struct tm tm;

	if (!localtime_r(&sec, &tm) || strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(buf, len, "@%.0f", epoch_s);
	return buf;
}

void cli_print_json(json_object *o)
{
	const char *text = NULL;

	/* A document that lost a member to a failed allocation is never printed (json-util.h):
	 * stdout stays one valid, honest document. */
	if (json_alloc_failures() == 0)
		text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
								 JSON_C_TO_STRING_NOSLASHESCAPE);
	puts(text && json_alloc_failures() == 0 ? text : JSON_OUT_OF_MEMORY);
}

/* Whether usage errors are also the JSON document on stdout. */
static bool json_errors;

void cli_set_json_errors(bool json)
{
	json_errors = json;
}

int cli_usage_error(const char *command, const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (command)
		fprintf(stderr, "profq %s: %s\nTry 'profq %s --help'.\n", command,
			msg ? msg : "out of memory", command);
	else
		fprintf(stderr, "profq: %s\nTry 'profq --help'.\n", msg ? msg : "out of memory");
	if (json_errors) {
		_cleanup_json_ json_object *o = json_object_new_object();

		if (o) {
			json_add_string(o, "error", msg ? msg : "out of memory");
			json_add_string(o, "code", error_code_to_string(ERROR_BAD_REQUEST));
			cli_print_json(o);
		}
	}
	return EXIT_USAGE;
}

bool cli_python_location(json_object *row, char *buf, size_t len)
{
	const char *file = json_get_string(row, "file"), *base;
	int64_t line = json_get_int(row, "line");

	if (!json_get_bool(row, "python") || !file || !len)
		return false;
	base = strrchr(file, '/');
	base = base ? base + 1 : file;
	if (line > 0)
		snprintf(buf, len, "%s:%" PRId64, base, line);
	else
		snprintf(buf, len, "%s", base);
	return true;
}

static bool counts_time(json_object *answer)
{
	const char *event = json_get_string(answer, "event");

	return event && !streq(event, "cpu") && !streq(event, "faults");
}

static bool counts_bytes(json_object *answer)
{
	return streq(strempty(json_get_string(answer, "event")), "faults");
}

const char *cli_bytes(uint64_t n, char *buf, size_t len)
{
	if (n < 1024)
		snprintf(buf, len, "%lluB", (unsigned long long)n);
	else if (n < (1ull << 20))
		snprintf(buf, len, "%.1fKiB", (double)n / 1024);
	else if (n < (1ull << 30))
		snprintf(buf, len, "%.1fMiB", (double)n / (1 << 20));
	else
		snprintf(buf, len, "%.2fGiB", (double)n / (1 << 30));
	return buf;
}

static const char *duration_string(double ns, char *buf, size_t len)
{
	if (ns < 1e6)
		snprintf(buf, len, "%.0fus", ns / 1e3);
	else if (ns < 1e9)
		snprintf(buf, len, "%.1fms", ns / 1e6);
	else
		snprintf(buf, len, "%.2fs", ns / 1e9);
	return buf;
}

const char *cli_count(json_object *answer, int64_t n, char *buf, size_t len)
{
	if (counts_bytes(answer))
		return cli_bytes(n > 0 ? (uint64_t)n : 0, buf, len);
	if (!counts_time(answer)) {
		snprintf(buf, len, "%lld", (long long)n);
		return buf;
	}
	return duration_string((double)n, buf, len);
}

const char *cli_cpu_time(json_object *answer, int64_t n, char *buf, size_t len)
{
	int64_t period = json_get_int(answer, "period_ns");

	if (counts_time(answer) || counts_bytes(answer) || period <= 0)
		return NULL;
	return duration_string((double)n * (double)period, buf, len);
}

static CliColor color_mode = CLI_COLOR_AUTO;

int cli_set_color(const char *when)
{
	static const char *const names[_CLI_COLOR_MAX] = {
		[CLI_COLOR_AUTO] = "auto",
		[CLI_COLOR_ALWAYS] = "always",
		[CLI_COLOR_NEVER] = "never",
	};

	for (int i = 0; i < _CLI_COLOR_MAX; i++)
		if (streq(when, names[i])) {
			color_mode = (CliColor)i;
			return 0;
		}
	return -EINVAL;
}

bool cli_color(void)
{
	static int on = -1;
	const char *no_color;

	if (color_mode != CLI_COLOR_AUTO)
		return color_mode == CLI_COLOR_ALWAYS;
	if (on < 0) {
		/* no-color.org: NO_COLOR present and not empty, whatever its value. */
		no_color = getenv("NO_COLOR");
		on = isatty(STDOUT_FILENO) && !(no_color && *no_color);
	}
	return on;
}

const char *cli_style(CliStyle s)
{
	static const char *const sgr[_CLI_STYLE_MAX] = {
		[CLI_STYLE_RESET] = "\033[0m", [CLI_STYLE_HEADER] = "\033[1m",
		[CLI_STYLE_DIM] = "\033[2m",   [CLI_STYLE_HOT] = "\033[31m",
		[CLI_STYLE_WARM] = "\033[32m",
	};

	return s >= 0 && s < _CLI_STYLE_MAX && cli_color() ? sgr[s] : "";
}

const char *cli_pct_style(double pct)
{
	return cli_style(pct >= 5.0 ? CLI_STYLE_HOT : pct >= 0.5 ? CLI_STYLE_WARM : _CLI_STYLE_MAX);
}

int cli_print_pct(double pct)
{
	const char *style = cli_pct_style(pct);

	printf("%s%7.2f%s", style, pct, *style ? cli_style(CLI_STYLE_RESET) : "");
	return 7;
}

void cli_print_total(json_object *answer)
{
	const char *event = json_get_string(answer, "event");
	int64_t n = json_get_int(answer, "samples");
	char buf[32];

	if (counts_bytes(answer))
		printf("Faulted in: %s", cli_count(answer, n, buf, sizeof(buf)));
	else if (!counts_time(answer))
		printf("Samples: %lld", (long long)n);
	else
		printf("%s: %s", streq(event, "wall") ? "Wall" : "Off-CPU",
		       cli_count(answer, n, buf, sizeof(buf)));
}

static bool full_names;

void cli_set_full_names(bool full)
{
	full_names = full;
}

const char *cli_function_label(const char *fn, size_t columns, char *buf, size_t len)
{
	char short_name[1024];
	const char *name = full_names ? fn : text_shorten_name(fn, short_name, sizeof(short_name));

	if (columns == 0) {
		snprintf(buf, len, "%s", name);
		return buf;
	}
	return text_fit(name, columns, buf, len);
}

void cli_print_rows_left_out(json_object *answer, json_object *rows)
{
	int64_t shown = rows ? (int64_t)json_object_array_length(rows) : 0;

	if (json_get_int(answer, "total_rows") > shown)
		printf("(%lld of %lld rows, by %s; -n 0 shows all)\n", (long long)shown,
		       (long long)json_get_int(answer, "total_rows"),
		       strempty(json_get_string(answer, "sort")));
}

int cli_terminal_width(void)
{
	const char *cols = getenv("COLUMNS");
	struct winsize ws;
	uint32_t v;

	if (cols && parse_uint32(cols, 20, 10000, &v) == 0)
		return (int)v;
	if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return 0;
}

int cli_terminal_rows(void)
{
	const char *lines = getenv("LINES");
	struct winsize ws;
	uint32_t v;

	if (lines && parse_uint32(lines, 5, 10000, &v) == 0)
		return (int)v;
	if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0)
		return ws.ws_row;
	return 0;
}
