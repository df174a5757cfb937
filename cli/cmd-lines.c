/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <sys/stat.h>

#include "base/json-util.h"
#include "base/text.h"
#include "command.h"

/*
 * Source text is read here, by the user who asks, with their own permissions: the daemon never
 * opens source files. File names come from the debug info of whatever ran on the host, so only
 * absolute paths of regular files up to a size are read, without blocking (no FIFOs or
 * devices), and the text is cut and made valid UTF-8 before it goes anywhere.
 */
#define SOURCE_FILE_MAX (16u << 20)
#define SOURCE_FILES_MAX 256
#define SOURCE_TEXT_MAX 1024

typedef struct SourceFile {
	char *path;
	char *data; /* NULL: unreadable */
	size_t size;
	size_t *starts; /* offset of each line's first byte; line N starts at starts[N - 1] */
	size_t n_lines;
} SourceFile;

typedef struct SourceCache {
	SourceFile files[SOURCE_FILES_MAX];
	size_t n;
} SourceCache;

static void source_cache_done(SourceCache *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->files[i].path);
		free(c->files[i].data);
		free(c->files[i].starts);
	}
	c->n = 0;
}

static int source_read(const char *path, char **ret, size_t *ret_size)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	struct stat st;
	size_t len = 0;

	if (path[0] != '/')
		return -ENOENT;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return negative_errno();
	if (fstat(fd, &st) < 0)
		return negative_errno();
	if (!S_ISREG(st.st_mode))
		return -EBADFD;
	if (st.st_size > (off_t)SOURCE_FILE_MAX)
		return -EFBIG;
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return -ENOMEM;
	/* The file may change under us: read at most what it held at fstat. */
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return negative_errno();
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*ret = TAKE_PTR(buf);
	*ret_size = len;
	return 0;
}

static SourceFile *source_file(SourceCache *c, const char *path)
{
	SourceFile *f;

	for (size_t i = 0; i < c->n; i++)
		if (streq(c->files[i].path, path))
			return &c->files[i];
	if (c->n >= SOURCE_FILES_MAX)
		return NULL;
	f = &c->files[c->n];
	*f = (SourceFile){ .path = strdup(path) };
	if (!f->path)
		return NULL;
	c->n++;
	if (source_read(path, &f->data, &f->size) < 0)
		return f;
	/* A line starts at 0 and after each newline that is not the last byte. */
	for (size_t i = 0, allocated = 0; i < f->size || i == 0; i++) {
		if (i > 0 && f->data[i - 1] != '\n')
			continue;
		if (GREEDY_REALLOC(f->starts, allocated, f->n_lines + 1) < 0) {
			f->data = mfree(f->data);
			f->n_lines = 0;
			return f;
		}
		f->starts[f->n_lines++] = i;
	}
	return f;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0. */
static size_t utf8_valid(const unsigned char *s, size_t n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (n < len)
		return 0;
	/* No overlong forms, no surrogates, nothing past U+10FFFF. */
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

/* The text of a line, without its line break, as valid UTF-8 of bounded size; or NULL. */
static char *source_line(SourceCache *c, const char *path, int64_t line)
{
	SourceFile *f = source_file(c, path);
	const unsigned char *s;
	size_t n, out = 0;
	char *text;

	if (!f || !f->data || line < 1 || (uint64_t)line > f->n_lines)
		return NULL;
	s = (const unsigned char *)f->data + f->starts[line - 1];
	n = ((uint64_t)line < f->n_lines ? f->starts[line] : f->size) - f->starts[line - 1];
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		n--;
	text = malloc(MIN(n, (size_t)SOURCE_TEXT_MAX) + 1);
	if (!text)
		return NULL;
	for (size_t i = 0; i < n;) {
		size_t len = utf8_valid(s + i, n - i);

		if (out + MAX(len, (size_t)1) > SOURCE_TEXT_MAX)
			break;
		if (len == 0 || s[i] == '\0') {
			text[out++] = '?';
			i++;
			continue;
		}
		memcpy(text + out, s + i, len);
		out += len;
		i += len;
	}
	text[out] = '\0';
	return text;
}

/* Fills in each row's "text" from the source file, where it can be read. */
static void add_source_text(json_object *answer)
{
	SourceCache *cache = calloc(1, sizeof(SourceCache));
	json_object *rows;

	if (!cache)
		return;
	if (json_object_object_get_ex(answer, "rows", &rows))
		for (size_t i = 0; i < json_object_array_length(rows); i++) {
			json_object *r = json_object_array_get_idx(rows, i);
			const char *file = json_get_string(r, "file");
			int64_t line = json_get_int(r, "line");
			_cleanup_free_ char *text = NULL;

			if (file && line > 0)
				text = source_line(cache, file, line);
			if (text)
				json_add_string(r, "text", text);
		}
	source_cache_done(cache);
	free(cache);
}

/* "file:line" by the file's base name, "-" when unknown. */
static void location(json_object *r, char *buf, size_t len)
{
	const char *file = json_get_string(r, "file");
	const char *base = file ? strrchr(file, '/') : NULL;
	int64_t line = json_get_int(r, "line");

	if (!file)
		snprintf(buf, len, "-");
	else if (line > 0)
		snprintf(buf, len, "%s:%lld", base ? base + 1 : file, (long long)line);
	else
		snprintf(buf, len, "%s", base ? base + 1 : file);
}

/* Source text for a terminal: without its indentation, tabs as spaces, controls as '?'. */
static void print_text(const char *text, int room)
{
	const unsigned char *s = (const unsigned char *)text;
	int col = 0;

	while (*s == ' ' || *s == '\t')
		s++;
	for (; *s && (room <= 0 || col < room); s++, col++) {
		if (*s == '\t')
			putchar(' ');
		else if (*s < 0x20 || *s == 0x7f)
			putchar('?');
		else
			putchar(*s);
	}
}

static void render_lines(json_object *a, const Request *req)
{
	const char *function = json_get_string(a, "function");
	const char *comm = json_get_string(a, "comm");
	int width = cli_terminal_width(), locw = 8, fnw = 8;
	char count[32];
	json_object *rows;
	char t[32];
	bool cpu;
	size_t n;

	(void)req;
	if (!json_object_object_get_ex(a, "rows", &rows))
		return;
	n = json_object_array_length(rows);
	for (size_t i = 0; i < n; i++) {
		json_object *r = json_object_array_get_idx(rows, i);
		const char *fn = json_get_string(r, "function");
		char loc[512], name[1024];

		location(r, loc, sizeof(loc));
		locw = MAX(locw, MIN((int)strlen(loc), 40));
		fnw = MAX(fnw, MIN((int)text_columns(
					   cli_function_label(strempty(fn), 0, name, sizeof(name))),
				   32));
	}
	cli_print_total(a);
	/* Processes selected by their labels: the header line above says which. */
	if (json_get_int(a, "pid"))
		printf("  pid %lld (%s)", (long long)json_get_int(a, "pid"), strempty(comm));
	if (json_get_int(a, "tid"))
		printf("  tid %lld", (long long)json_get_int(a, "tid"));
	putchar('\n');
	if (function && streq(strempty(json_get_string(a, "event")), "cpu"))
		printf("Function %s: %lld samples (%.2f%%), each on its line in it: SELF executing "
		       "the line, CALLEE in what it called, TOTAL both\n",
		       function, (long long)json_get_int(a, "function_samples"),
		       json_get_double(a, "function_pct"));
	else if (function)
		printf("Function %s: %s (%.2f%%), each on its line in it: SELF executing "
		       "the line, CALLEE in what it called, TOTAL both\n",
		       function,
		       cli_count(a, json_get_int(a, "function_samples"), count, sizeof(count)),
		       json_get_double(a, "function_pct"));
	putchar('\n');
	/* The CPU time of each line's samples beside its share (the cpu event). */
	cpu = cli_cpu_time(a, 0, t, sizeof(t));
	fputs(cli_style(CLI_STYLE_HEADER), stdout);
	if (function)
		printf("%7s %7s %7s%s %8s %8s  %-*s  %s", "FUNC%", "SELF%", "TOTAL%",
		       cpu ? "      TIME" : "", "TOTAL", "CALLEE", locw, "LINE", "SOURCE");
	else
		printf("%7s%s %8s  %-*s  %-*s  %s", "SELF%", cpu ? "      TIME" : "", "SAMPLES",
		       locw, "LINE", fnw, "FUNCTION", "SOURCE");
	printf("%s\n", cli_style(CLI_STYLE_RESET));
	for (size_t i = 0; i < n; i++) {
		json_object *r = json_object_array_get_idx(rows, i);
		const char *text = json_get_string(r, "text");
		int used, fnb;
		char loc[512], c1[32], c2[32], name[1024];

		location(r, loc, sizeof(loc));
		/* The name cut to the column with an ellipsis; its width in bytes pads it. */
		cli_function_label(strempty(json_get_string(r, "function")), (size_t)fnw, name,
				   sizeof(name));
		fnb = fnw + (int)(strlen(name) - text_columns(name));
		if (function) {
			used = printf("%7.2f ", json_get_double(r, "function_pct"));
			used += cli_print_pct(json_get_double(r, "self_pct")) + 1;
			putchar(' ');
			used += cli_print_pct(json_get_double(r, "total_pct"));
			if (cli_cpu_time(a, json_get_int(r, "total_samples"), t, sizeof(t)))
				used += printf(" %9s", t);
			used += printf(
				" %8s %8s  %-*.*s  ",
				cli_count(a, json_get_int(r, "total_samples"), c1, sizeof(c1)),
				cli_count(a, json_get_int(r, "callee_samples"), c2, sizeof(c2)),
				locw, locw, loc);
		} else {
			used = cli_print_pct(json_get_double(r, "self_pct"));
			if (cli_cpu_time(a, json_get_int(r, "self_samples"), t, sizeof(t)))
				used += printf(" %9s", t);
			/* The function column is padded only when text follows it. */
			used += printf(
				" %8s  %-*.*s  %-*.*s%s",
				cli_count(a, json_get_int(r, "self_samples"), c1, sizeof(c1)), locw,
				locw, loc, text ? fnb : 0, fnb, name, text ? "  " : "");
		}
		if (text)
			print_text(text, width > used + 8 ? width - used : 0);
		putchar('\n');
	}
}

enum {
	OPT_FUNCTION = 0x200,
};

static int parse_option(int opt, const char *arg, Request *req, void *userdata)
{
	(void)opt, (void)userdata; /* --function, the only one */
	if (!*arg || strlen(arg) >= sizeof(req->function))
		return cli_usage_error("lines", "--function: needs a name of 1 to %zu bytes",
				       sizeof(req->function) - 1);
	strcpy(req->function, arg);
	return EXIT_OK;
}

static const CliQuery lines = {
	.name = "lines",
	.command = COMMAND_LINES,
	.shared = CLI_OPT_RANGE | CLI_OPT_PID | CLI_OPT_TID | CLI_OPT_START | CLI_OPT_CHILDREN |
		  CLI_OPT_INLINE | CLI_OPT_LIMIT | CLI_OPT_MATCH | CLI_OPT_EVENT | CLI_OPT_NAMES |
		  CLI_OPT_COLOR,
	.needs_pid = true,
	.help = "Usage: profq lines --pid N [--tid T] [--start TIME] [--children]\n"
		"                   [--unit NAME] [--cgroup PATH] [--container ID] [--comm NAME]\n"
		"                   [--function F] [-n N] [--since WHEN] [--until WHEN]\n"
		"                   [--range life] [--event cpu|off-cpu|wall|faults]\n"
		"                   [--[no-]inline] [--[no-]python] [--full-names]\n"
		"                   [--color auto|always|never] [--json]\n"
		"\n"
		"Hot source lines: the samples taken on each line (of the process's\n"
		"samples), with the line's text when you can read the source file.\n"
		"Each sample counts on the line its innermost frame was executing;\n"
		"code the compiler inlined counts on its own lines (--no-inline: on\n"
		"the line of the call in the function it was inlined into).\n"
		"--function F: the lines of F, line_profiler's view: every sample\n"
		"with F on the stack counts once, on the line F was executing (SELF)\n"
		"or calling from (CALLEE); TOTAL is both.\n"
		"Python functions have lines of their own, in place of the\n"
		"interpreter's (--no-python: the interpreter's, as native code).\n"
		"--event off-cpu: where threads waited, switched out; wall: CPU and\n"
		"off-CPU time together (counts are then times).\n"
		"-n N: at most N lines (20). TIME: the CPU time of a line's samples\n"
		"(samples x the sampling period).\n"

		"--unit NAME, --cgroup PATH, --container ID, --comm NAME: instead\n"
		"of --pid, every process that matches (all given), summed: unit\n"
		"and comm are globs, a cgroup counts with those below it, an id\n"
		"may be cut short.\n"
		"C++ names are shown without template arguments and parameters;\n"
		"--full-names shows them whole (--json always does).\n",
	.options = (const struct option[]){ { "function", required_argument, NULL, OPT_FUNCTION },
					    {} },
	.option = parse_option,
	.amend = add_source_text,
	.render = render_lines,
};

int cmd_lines(CliContext *ctx, int argc, char **argv)
{
	return cli_query_command(&lines, ctx, argc, argv);
}
