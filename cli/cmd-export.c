/* SPDX-License-Identifier: MIT */
/*
 * The exports: `folded` (one "frame;frame;frame count" line per stack, as Brendan Gregg's
 * stackcollapse scripts write them), `flame` (an SVG flame graph, flame.h) and `pprof` (a
 * gzipped profile.proto, pprof.h). All three ask the `stacks` request and render its answer.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/json-util.h"
#include "command.h"
#include "flame.h"
#include "export/pprof.h"
#include "export/profile.h"

typedef enum ExportKind {
	EXPORT_FOLDED,
	EXPORT_FLAME,
	EXPORT_PPROF,
} ExportKind;

enum {
	OPT_OUTPUT = 'o',
	OPT_TITLE = 0x200,
	OPT_WIDTH,
	OPT_ICICLE,
	OPT_FROM,
	OPT_GROUP,
};

/* --title, --width and --icicle are flame's; the other exports parse them to refuse them as
 * unknown. */
static const struct option export_options[] = {
	{ "output", required_argument, NULL, OPT_OUTPUT },
	{ "title", required_argument, NULL, OPT_TITLE },
	{ "width", required_argument, NULL, OPT_WIDTH },
	{ "icicle", no_argument, NULL, OPT_ICICLE },
	{ "from", required_argument, NULL, OPT_FROM },
	{ "group", required_argument, NULL, OPT_GROUP },
	{},
};

/* What --from and --group say in every export's --help. */
#define EXPORT_HELP_FROM_GROUP                                                     \
	"--from F: only the stacks through function F, each from its outermost\n"  \
	"call of F (start-up frames left out); the shares are of their samples.\n" \
	"--group comm (the default with --children): a root frame per process\n"   \
	"name above the outermost frames, the processes of that name merged;\n"    \
	"--group none merges every process's stacks.\n"

static const struct {
	const char *name;
	const char *help;
} exports[] = {
	[EXPORT_FOLDED] = {
		.name = "folded",
		.help = "Usage: profq folded --pid N [--tid T] [--start TIME] [--children]\n"
			"              [--unit NAME] [--cgroup PATH] [--container ID]\n"
			"              [--comm NAME]\n"
			"              [--since WHEN] [--until WHEN] [--range life]\n"
			"              [--event cpu|off-cpu|wall|faults]\n"
			"              [--[no-]inline] [--[no-]python] [--from F]\n"
			"              [--group comm|none] [-o FILE] [--json]\n"
			"\n"
			"Folded stacks: one line per distinct stack, outermost frame first,\n"
			"frames separated by ';', then the number of samples, as\n"
			"stackcollapse-perf.pl writes them with its annotations (kernel frames\n"
			"end in _[k], inlined ones in _[i], JIT code in _[j]; Python functions\n"
			"by name), for flamegraph.pl, speedscope and friends. --json prints\n"
			"the stacks answer. --event off-cpu or wall: the counts are\n"
			"nanoseconds.\n"
			"--unit NAME, --cgroup PATH, --container ID, --comm NAME: instead\n"
			"of --pid, every process that matches (all given), summed: unit\n"
			"and comm are globs, a cgroup counts with those below it, an id\n"
			"may be cut short.\n"
			EXPORT_HELP_FROM_GROUP
			"\n"
			"-o FILE writes to FILE (\"-\": standard output).\n",
	},
	[EXPORT_FLAME] = {
		.name = "flame",
		.help = "Usage: profq flame --pid N [--tid T] [--start TIME] [--children]\n"
			"             [--unit NAME] [--cgroup PATH] [--container ID]\n"
			"             [--comm NAME]\n"
			"             [--since WHEN] [--until WHEN] [--range life]\n"
			"             [--event cpu|off-cpu|wall|faults]\n"
			"             [--[no-]inline] [--[no-]python] [--from F]\n"
			"             [--group comm|none]\n"
			"       [--title T] [--width PX] [--icicle] -o FILE.svg [--json]\n"
			"\n"
			"An interactive SVG flame graph: one box per call path, as wide as its\n"
			"share of the samples, callers below their callees (above them with\n"
			"--icicle, so that the roots show without scrolling). Open it in a\n"
			"browser: hover for figures, click to zoom, Ctrl-F to search.\n"
			"--event off-cpu or wall: boxes as wide as their time off the CPU\n"
			"(or of wall time); --event faults: as the memory they faulted in.\n"
			"--unit NAME, --cgroup PATH, --container ID, --comm NAME: instead\n"
			"of --pid, every process that matches (all given), summed: unit\n"
			"and comm are globs, a cgroup counts with those below it, an id\n"
			"may be cut short.\n"
			EXPORT_HELP_FROM_GROUP
			"\n"
			"-o FILE writes to FILE (\"-\": standard output).\n",
	},
	[EXPORT_PPROF] = {
		.name = "pprof",
		.help = "Usage: profq pprof --pid N [--tid T] [--start TIME] [--children]\n"
			"             [--unit NAME] [--cgroup PATH] [--container ID]\n"
			"             [--comm NAME]\n"
			"             [--since WHEN] [--until WHEN] [--range life]\n"
			"             [--event cpu|off-cpu|wall|faults]\n"
			"             [--[no-]inline] [--[no-]python] [--from F]\n"
			"             [--group comm|none] -o FILE.pb.gz [--json]\n"
			"\n"
			"A gzipped pprof profile (profile.proto) for go tool pprof, Pyroscope or\n"
			"Parca: sample types samples/count and cpu/nanoseconds, inlined\n"
			"frames as pprof's inline lines, file and line of every frame;\n"
			"Python functions have the mapping [python] and their first line.\n"
			"--event off-cpu or wall: one sample type, off_cpu/nanoseconds or\n"
			"wall/nanoseconds.\n"
			"--unit NAME, --cgroup PATH, --container ID, --comm NAME: instead\n"
			"of --pid, every process that matches (all given), summed: unit\n"
			"and comm are globs, a cgroup counts with those below it, an id\n"
			"may be cut short.\n"
			EXPORT_HELP_FROM_GROUP
			"\n"
			"-o FILE writes to FILE (\"-\": standard output, not a terminal).\n",
	},
};

typedef struct ExportArgs {
	ExportKind kind;
	int group;	    /* --group: cli_apply_group()'s */
	const char *output; /* -o; "-" or NULL: stdout */
	const char *title;
	unsigned width;
	bool icicle;
	const Profile *base; /* a differential flame graph's base (profq diff -o) */
} ExportArgs;

/* One frame of a folded line: its name, with perf's stackcollapse annotations for kernel
 * (_[k]), inlined (_[i]) and JIT (_[j]) frames; ';' and control characters, which the format
 * cannot hold, become '_'. */
static void folded_frame(FILE *f, const ProfileFrame *fr)
{
	for (const char *c = fr->function; *c; c++)
		fputc(*c == ';' || (unsigned char)*c < 0x20 || *c == 0x7f ? '_' : *c, f);
	if (fr->kernel)
		fputs("_[k]", f);
	else if (fr->inlined)
		fputs("_[i]", f);
	else if (fr->module && streq(fr->module, "[jit]"))
		fputs("_[j]", f);
}

typedef struct FoldedLine {
	char *text;
	uint64_t samples;
} FoldedLine;

static int cmp_folded(const void *a, const void *b)
{
	return strcmp(((const FoldedLine *)a)->text, ((const FoldedLine *)b)->text);
}

/* Stacks that differ only in lines or inline levels fold into one line: merged, sorted. */
static int write_folded(const Profile *p, FILE *out)
{
	_cleanup_free_ FoldedLine *lines = calloc(p->n_stacks + 1, sizeof(FoldedLine));
	size_t n = 0;
	int r = 0;

	if (!lines)
		return -ENOMEM;
	for (size_t i = 0; i < p->n_stacks; i++) {
		const ProfileStack *s = &p->stacks[i];
		size_t len = 0;
		FILE *m = open_memstream(&lines[n].text, &len);

		if (!m) {
			r = -ENOMEM;
			goto out;
		}
		for (size_t j = s->n_frames; j-- > 0;) {
			folded_frame(m, &p->frames[s->frames[j]]);
			if (j > 0)
				fputc(';', m);
		}
		if (fclose(m) != 0) {
			free(lines[n].text);
			r = -ENOMEM;
			goto out;
		}
		lines[n++].samples = s->samples;
	}
	qsort(lines, n, sizeof(FoldedLine), cmp_folded);
	for (size_t i = 0; i < n; i++) {
		uint64_t samples = lines[i].samples;

		while (i + 1 < n && streq(lines[i].text, lines[i + 1].text))
			samples += lines[++i].samples;
		fprintf(out, "%s %" PRIu64 "\n", lines[i].text, samples);
	}
	if (p->truncated_samples)
		fprintf(out, "[truncated] %" PRIu64 "\n", p->truncated_samples);
out:
	for (size_t i = 0; i < n; i++)
		free(lines[i].text);
	return r;
}

static void range_text(const Profile *p, char *buf, size_t len)
{
	char a[32], b[32];
	struct tm tm;
	time_t t;

	t = (time_t)(p->start_ns / 1000000000);
	strftime(a, sizeof(a), "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
	t = (time_t)(p->end_ns / 1000000000);
	strftime(b, sizeof(b), "%H:%M:%S", localtime_r(&t, &tm));
	snprintf(buf, len, "%s to %s", a, b);
}

static int write_flame(const Profile *p, const ExportArgs *args, FILE *out)
{
	char title[512], subtitle[512], range[80];
	FlameOptions o = { .title = args->title,
			   .width = args->width,
			   .icicle = args->icicle,
			   .base = args->base };

	range_text(p, range, sizeof(range));
	if (!o.title && p->pid) {
		snprintf(title, sizeof(title), "pid %" PRIu32 " (%s)", p->pid,
			 p->comm ? p->comm : "?");
		o.title = title;
	} else if (!o.title) {
		snprintf(title, sizeof(title), "%s: %" PRIu64 " processes", strempty(p->comm),
			 p->processes);
		o.title = title;
	}
	if (args->base) {
		char base_range[80];

		char base_pid[32] = "";

		range_text(args->base, base_range, sizeof(base_range));
		if (args->base->pid)
			snprintf(base_pid, sizeof(base_pid), " pid %" PRIu32, args->base->pid);
		snprintf(subtitle, sizeof(subtitle),
			 "%" PRIu64 " samples, %s, against the base%s: %" PRIu64 " samples, %s",
			 p->samples, range, base_pid, args->base->samples, base_range);
	} else if (streq(p->event, "faults")) {
		char bytes[32];

		snprintf(subtitle, sizeof(subtitle), "%s faulted in, %s",
			 cli_bytes(p->samples, bytes, sizeof(bytes)), range);
	} else {
		snprintf(subtitle, sizeof(subtitle), "%" PRIu64 " samples, %s", p->samples, range);
	}
	o.subtitle = subtitle;
	return flame_write_svg(p, &o, out);
}

/* Where an export goes: standard output, a file written in place, or a temporary file that
 * replaces the old one only once it is whole. */
typedef struct Output {
	FILE *f;
	bool is_stdout;
	char *temp; /* NULL: written in place */
} Output;

/*
 * Opens -o's file, or stdout for "-". A regular file (or a new one) is written to a temporary
 * file beside it and renamed over it when complete, so that a failed export (disk full, ^C)
 * leaves the old file as it was; anything else (a FIFO, /dev/stdout, a symlink) is written in
 * place. New files get 0666 less the umask, as the shell's > gives them.
 */
static int output_open(const ExportArgs *args, Output *ret)
{
	const char *path = args->output;
	struct stat st;
	mode_t mask;
	int fd;

	*ret = (Output){ .is_stdout = !path || streq(path, "-") };
	if (ret->is_stdout) {
		if (args->kind == EXPORT_PPROF && isatty(STDOUT_FILENO))
			return -ENOTTY;
		ret->f = stdout;
		return 0;
	}
	if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		ret->f = fopen(path, "we");
		return ret->f ? 0 : -errno;
	}
	if (asprintf(&ret->temp, "%s.XXXXXX", path) < 0) {
		ret->temp = NULL;
		return -ENOMEM;
	}
	fd = mkostemp(ret->temp, O_CLOEXEC);
	if (fd < 0) {
		int r = -errno;

		ret->temp = mfree(ret->temp);
		if (r != -EACCES)
			return r;
		/* a file we may write in a directory we may not: in place, then */
		ret->f = fopen(path, "we");
		return ret->f ? 0 : -errno;
	}
	mask = umask(0);
	umask(mask);
	if (fchmod(fd, 0666 & ~mask) < 0 || !(ret->f = fdopen(fd, "w"))) {
		int r = -errno;

		close(fd);
		unlink(ret->temp);
		ret->temp = mfree(ret->temp);
		return r;
	}
	return 0;
}

/* Finishes the output: flushed, closed, renamed into place when r >= 0, removed otherwise.
 * r, or the first error of these. */
static int output_close(Output *o, const char *path, int r)
{
	if (fflush(o->f) != 0 && r >= 0)
		r = -errno;
	if (!o->is_stdout && fclose(o->f) != 0 && r >= 0)
		r = -errno;
	if (o->temp) {
		if (r >= 0 && rename(o->temp, path) < 0)
			r = -errno;
		if (r < 0)
			unlink(o->temp);
		o->temp = mfree(o->temp);
	}
	return r;
}

static int parse_option(int opt, const char *arg, Request *req, void *userdata)
{
	ExportArgs *args = userdata;
	const char *name = exports[args->kind].name;
	char *end;

	switch (opt) {
	case OPT_FROM:
		return cli_parse_from(name, arg, req);
	case OPT_GROUP:
		return cli_parse_group(name, arg, &args->group);
	case OPT_OUTPUT:
		if (!*arg)
			return cli_usage_error(name, "-o: an empty file name");
		args->output = arg;
		return EXIT_OK;
	case OPT_TITLE:
		if (args->kind != EXPORT_FLAME)
			return CLI_UNKNOWN;
		args->title = arg;
		return EXIT_OK;
	case OPT_ICICLE:
		if (args->kind != EXPORT_FLAME)
			return CLI_UNKNOWN;
		args->icicle = true;
		return EXIT_OK;
	default: /* --width */
		if (args->kind != EXPORT_FLAME)
			return CLI_UNKNOWN;
		errno = 0;
		args->width = (unsigned)strtoul(arg, &end, 10);
		if (errno || end == arg || *end || args->width < 200 || args->width > 100000)
			return cli_usage_error(
				name, "--width: '%s' is not a width in pixels (200..100000)", arg);
		return EXIT_OK;
	}
}

static int check(const CliContext *ctx, const Request *req, void *userdata)
{
	const ExportArgs *args = userdata;
	const char *name = exports[args->kind].name;

	(void)req;
	if (args->kind != EXPORT_FOLDED && !args->output)
		return cli_usage_error(name, "-o FILE is required (\"-\" for standard output)");
	if (ctx->json && (args->kind != EXPORT_FOLDED || args->output) &&
	    (!args->output || streq(args->output, "-")))
		return cli_usage_error(name, "--json prints a summary on standard output: "
					     "give -o FILE");
	return EXIT_OK;
}

/* The stacks answer as a Profile; NULL after printing it (folded --json without -o) or after
 * reporting a failure, with the exit code in *ret_exit. */
static Profile *export_profile(const CliContext *ctx, const Request *req, const ExportArgs *args,
			       int *ret_exit)
{
	const char *name = exports[args->kind].name;
	_cleanup_json_ json_object *answer = NULL;
	_cleanup_free_ char *error = NULL;
	Request resolved = *req;
	Profile *p = NULL;
	int r;

	*ret_exit = cli_resolve_range(ctx, &resolved);
	if (*ret_exit != EXIT_OK)
		return NULL;
	*ret_exit = cli_query(ctx, &resolved, &answer);
	if (*ret_exit != EXIT_OK)
		return NULL;
	if (args->kind == EXPORT_FOLDED && ctx->json && !args->output) {
		cli_print_json(answer);
		return NULL;
	}
	r = profile_from_json(answer, &p, &error);
	if (r < 0) {
		fprintf(stderr, "profq %s: the answer is malformed: %s\n", name,
			error ? error : strerror(-r));
		*ret_exit = EXIT_UNREACHABLE;
		return NULL;
	}
	if (request_has_match(req)) {
		char label[REQUEST_CGROUP_MAX + 512];

		free(p->comm);
		p->comm = strdup(cli_match_label(req, label, sizeof(label)));
		if (p->hidden > 0)
			fprintf(stderr,
				"profq: note: %" PRIu64 " more processes match that you may not "
				"see; they are left out.\n",
				p->hidden);
	}
	return p;
}

static int write_export(const Profile *p, const ExportArgs *args, FILE *f)
{
	switch (args->kind) {
	case EXPORT_FOLDED:
		return write_folded(p, f);
	case EXPORT_FLAME:
		return write_flame(p, args, f);
	default:
		if (fflush(f) != 0)
			return -errno;
		return pprof_write(p, fileno(f));
	}
}

/* Writes the export to -o's file or standard output: an exit code, after reporting a failure. */
static int export_output(const Profile *p, const ExportArgs *args, bool *ret_stdout)
{
	const char *name = exports[args->kind].name;
	Output out;
	int r;

	r = output_open(args, &out);
	if (r == -ENOTTY)
		return cli_usage_error(name, "standard output is a terminal: give -o FILE");
	if (r < 0) {
		fprintf(stderr, "profq %s: Failed to open '%s': %s\n", name, args->output,
			strerror(-r));
		return EXIT_USAGE;
	}
	r = output_close(&out, args->output, write_export(p, args, out.f));
	if (r < 0) {
		fprintf(stderr, "profq %s: Failed to write '%s': %s\n", name,
			out.is_stdout ? "standard output" : args->output, strerror(-r));
		return EXIT_USAGE; /* as for a file that cannot be opened: the -o is unusable */
	}
	*ret_stdout = out.is_stdout;
	return EXIT_OK;
}

/* What was written: a JSON summary with --json, else a line on stderr for a file. */
static int export_summary(const CliContext *ctx, const Profile *p, const ExportArgs *args,
			  bool to_stdout)
{
	if (ctx->json) {
		_cleanup_json_ json_object *o = json_object_new_object();

		if (!o)
			return EXIT_UNREACHABLE;
		if (p->pid) {
			json_add_int(o, "pid", p->pid);
			json_add_string(o, "comm", p->comm);
		} else {
			json_object_object_add(o, "pid", NULL);
			json_add_string(o, "selection", p->comm);
			json_add_int(o, "processes", (int64_t)p->processes);
			json_add_int(o, "hidden", (int64_t)p->hidden);
		}
		json_add_string(o, "output", args->output);
		json_add_int(o, "samples", (int64_t)p->samples);
		json_add_int(o, "stacks", (int64_t)p->n_stacks);
		json_add_int(o, "truncated_samples", (int64_t)p->truncated_samples);
		cli_print_json(o);
	} else if (!to_stdout && streq(p->event, "faults")) {
		char bytes[32];

		fprintf(stderr, "Wrote %s: %s faulted in, in %zu stacks of %s.\n", args->output,
			cli_bytes(p->samples, bytes, sizeof(bytes)), p->n_stacks,
			p->pid ? "the process" : strempty(p->comm));
	} else if (!to_stdout && p->time) {
		fprintf(stderr, "Wrote %s: %.3f s (%s) in %zu stacks of %s.\n", args->output,
			(double)p->samples / 1e9, p->event, p->n_stacks,
			p->pid ? "the process" : strempty(p->comm));
	} else if (!to_stdout && p->pid) {
		fprintf(stderr, "Wrote %s: %" PRIu64 " samples in %zu stacks of pid %" PRIu32 ".\n",
			args->output, p->samples, p->n_stacks, p->pid);
	} else if (!to_stdout) {
		fprintf(stderr,
			"Wrote %s: %" PRIu64 " samples in %zu stacks of %" PRIu64
			" processes (%s).\n",
			args->output, p->samples, p->n_stacks, p->processes, strempty(p->comm));
	}
	return EXIT_OK;
}

static int export_run(ExportKind kind, CliContext *ctx, int argc, char **argv)
{
	_cleanup_(profile_freep) Profile *p = NULL;
	const CliQuery q = {
		.name = exports[kind].name,
		.command = COMMAND_STACKS,
		.shared = CLI_OPT_RANGE | CLI_OPT_PID | CLI_OPT_TID | CLI_OPT_START |
			  CLI_OPT_CHILDREN | CLI_OPT_INLINE | CLI_OPT_MATCH | CLI_OPT_EVENT,
		.needs_pid = true,
		.help = exports[kind].help,
		.options = export_options,
		.short_options = "o:",
		.option = parse_option,
		.check = check,
	};
	ExportArgs args = { .kind = kind, .group = -1 };
	bool to_stdout = false;
	Request req;
	int r;

	r = cli_parse(&q, ctx, &req, argc, argv, &args);
	if (r != CLI_PARSED)
		return r;
	cli_apply_group(&req, args.group);
	p = export_profile(ctx, &req, &args, &r);
	if (!p)
		return r;
	r = export_output(p, &args, &to_stdout);
	if (r != EXIT_OK)
		return r;
	return export_summary(ctx, p, &args, to_stdout);
}

int cli_diff_flame(const CliContext *ctx, const Request *base, const Request *with,
		   const char *output)
{
	_cleanup_(profile_freep) Profile *b = NULL, *w = NULL;
	ExportArgs args = { .kind = EXPORT_FLAME, .output = output };
	CliContext plain = *ctx;
	Request q[2] = { *base, *with };
	bool to_stdout;
	int r;

	/* The sides' ranges are resolved already; the answers are not printed. */
	plain.range_life = false;
	plain.json = false;
	q[0].command = q[1].command = COMMAND_STACKS;
	b = export_profile(&plain, &q[0], &args, &r);
	if (!b)
		return r;
	w = export_profile(&plain, &q[1], &args, &r);
	if (!w)
		return r;
	args.base = b;
	r = export_output(w, &args, &to_stdout);
	if (r == EXIT_OK && !to_stdout)
		fprintf(stderr, "Wrote %s: %" PRIu64 " samples against %" PRIu64 " of the base.\n",
			output, w->samples, b->samples);
	return r;
}

int cmd_folded(CliContext *ctx, int argc, char **argv)
{
	return export_run(EXPORT_FOLDED, ctx, argc, argv);
}

int cmd_flame(CliContext *ctx, int argc, char **argv)
{
	return export_run(EXPORT_FLAME, ctx, argc, argv);
}

int cmd_pprof(CliContext *ctx, int argc, char **argv)
{
	return export_run(EXPORT_PPROF, ctx, argc, argv);
}
