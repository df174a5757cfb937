/* SPDX-License-Identifier: MIT */
#include <limits.h>

#include "base/json-util.h"
#include "base/text.h"
#include "command.h"

/* Deeper levels are not indented further: "[+N]" says how many levels deeper they are. */
#define TREE_INDENT_MAX 32

static void render_nodes(json_object *a, json_object *nodes, int depth, int width)
{
	for (size_t i = 0; i < json_object_array_length(nodes); i++) {
		json_object *n = json_object_array_get_idx(nodes, i), *v;
		const char *comm = json_get_string(n, "comm");
		const char *fn = strempty(json_get_string(n, "function"));
		const char *mod = json_get_string(n, "module");
		bool inlined = json_object_object_get_ex(n, "inlined", &v) &&
			       json_object_get_boolean(v);
		bool kernel = json_get_bool(n, "kernel");
		int indent = MIN(depth, TREE_INDENT_MAX) * 2, used, room;
		char where[256], name[1024], time[32];

		used = cli_print_pct(json_get_double(n, "total_pct")) + 1;
		putchar(' ');
		used += cli_print_pct(json_get_double(n, "self_pct"));
		if (cli_cpu_time(a, json_get_int(n, "total_samples"), time, sizeof(time)))
			used += printf(" %9s", time);
		used += printf("  %*s", indent, "");
		fputs(kernel ? cli_style(CLI_STYLE_DIM) : "", stdout);
		if (depth > TREE_INDENT_MAX)
			used += printf("[+%d] ", depth - TREE_INDENT_MAX);
		room = width > 0 ? MAX(width - used, 8) : INT_MAX;
		if (comm) {
			/* A process name's node (--group comm): its processes, as ps shows them. */
			int64_t procs = json_get_int(n, "processes");

			printf("%s (%lld process%s)%s\n", text_fit(comm, room, name, sizeof(name)),
			       (long long)procs, procs == 1 ? "" : "es",
			       kernel ? cli_style(CLI_STYLE_RESET) : "");
			if (json_object_object_get_ex(n, "children", &v) && v)
				render_nodes(a, v, depth + 1, width);
			continue;
		}
		printf("%s",
		       cli_function_label(fn, width > 0 ? (size_t)room : 0, name, sizeof(name)));
		room -= MIN(room, (int)text_columns(name));
		/* The module, as perf shows it: "[name]". */
		if (mod && (int)strlen(mod) + 3 <= room) {
			printf(mod[0] == '[' ? " %s" : " [%s]", mod);
			room -= (int)strlen(mod) + 3;
		}
		if (inlined && room >= 10)
			printf(" (inlined)");
		if (cli_python_location(n, where, sizeof(where)) && (int)strlen(where) + 1 <= room)
			printf(" %s", where);
		printf("%s\n", kernel ? cli_style(CLI_STYLE_RESET) : "");
		if (json_object_object_get_ex(n, "children", &v) && v)
			render_nodes(a, v, depth + 1, width);
	}
}

static void render_tree(json_object *a, const Request *req)
{
	json_object *rows;
	char time[32];

	(void)req;
	cli_print_total(a);
	/* Processes selected by their labels: the header line above says which. */
	if (json_get_int(a, "pid"))
		printf("  pid %lld (%s)", (long long)json_get_int(a, "pid"),
		       strempty(json_get_string(a, "comm")));
	if (json_get_int(a, "tid"))
		printf("  tid %lld", (long long)json_get_int(a, "tid"));
	printf("  calls below %.2f%% left out\n", json_get_double(a, "min_pct"));
	if (json_get_string(a, "from"))
		printf("From %s: %lld samples (%.2f%%), its calls merged\n",
		       json_get_string(a, "from"), (long long)json_get_int(a, "from_samples"),
		       json_get_double(a, "from_pct"));
	if (json_get_int(a, "truncated_samples"))
		printf("The tree reached its size limit: the deepest calls of %lld samples are "
		       "left "
		       "out\n",
		       (long long)json_get_int(a, "truncated_samples"));
	printf("\n%s%7s %7s", cli_style(CLI_STYLE_HEADER), "TOTAL%", "SELF%");
	if (cli_cpu_time(a, 0, time, sizeof(time)))
		printf(" %9s", "TIME");
	printf("  %s%s\n", "FUNCTION", cli_style(CLI_STYLE_RESET));
	if (json_object_object_get_ex(a, "rows", &rows))
		render_nodes(a, rows, 0, cli_terminal_width());
}

enum {
	OPT_MIN_PCT = 0x200,
	OPT_FROM,
	OPT_GROUP,
};

/* --group: GROUP_COMM or GROUP_NONE, or -1 for the default (comm with --children). */
typedef struct TreeOptions {
	int group;
} TreeOptions;

static int parse_option(int opt, const char *arg, Request *req, void *userdata)
{
	TreeOptions *o = userdata;
	char *end;

	if (opt == OPT_FROM)
		return cli_parse_from("tree", arg, req);
	if (opt == OPT_GROUP)
		return cli_parse_group("tree", arg, &o->group);
	errno = 0;
	req->min_pct = strtod(arg, &end);
	if (errno != 0 || end == arg || *end != '\0' || !(req->min_pct >= 0 && req->min_pct <= 100))
		return cli_usage_error("tree", "--min-pct: '%s' is not a percentage in 0..100",
				       arg);
	return EXIT_OK;
}

static const CliQuery tree = {
	.name = "tree",
	.command = COMMAND_TREE,
	.shared = CLI_OPT_RANGE | CLI_OPT_PID | CLI_OPT_TID | CLI_OPT_START | CLI_OPT_CHILDREN |
		  CLI_OPT_INLINE | CLI_OPT_MATCH | CLI_OPT_EVENT | CLI_OPT_NAMES | CLI_OPT_COLOR,
	.needs_pid = true,
	.help = "Usage: profq tree --pid N [--tid T] [--start TIME] [--children]\n"
		"                  [--unit NAME] [--cgroup PATH] [--container ID] [--comm NAME]\n"
		"                  [--min-pct P] [--from F] [--group comm|none]\n"
		"                  [--since WHEN] [--until WHEN] [--range life]\n"
		"                  [--event cpu|off-cpu|wall|faults] [--[no-]inline]\n"
		"                  [--[no-]python] [--full-names]\n"
		"                  [--color auto|always|never] [--json]\n"
		"\n"
		"The call tree, top down: each stack's outermost frame is a root, a\n"
		"function's children are the functions it called. TOTAL% counts the\n"
		"samples under a call path, SELF% those that ended in it, of the\n"
		"process's samples; TIME the CPU time under it. Calls below\n"
		"--min-pct P percent (0.5) are left out. Calls the compiler\n"
		"inlined are nodes of their own; --no-inline folds them into the\n"
		"function they are in.\n"
		"Python functions are frames of their own in place of the interpreter\n"
		"frames that ran them; --no-python shows the interpreter frames.\n"
		"--unit NAME, --cgroup PATH, --container ID, --comm NAME: instead\n"
		"of --pid, every process that matches (all given), summed: unit\n"
		"and comm are globs, a cgroup counts with those below it, an id\n"
		"may be cut short.\n"
		"--event off-cpu: time switched out, by where threads waited; wall:\n"
		"CPU and off-CPU time together.\n"
		"--from F: only the stacks through function F, each from its\n"
		"outermost call of F: one root, F, with every call path through it\n"
		"merged (start-up frames left out); shares stay of all samples.\n"
		"--group comm (the default with --children): a root per process\n"
		"name, with the processes of that name merged under it; --group\n"
		"none merges every process's calls.\n"
		"C++ names are shown without template arguments and parameters\n"
		"(std::vector<...>::push_back(...)), all names cut to the terminal's\n"
		"width; --full-names shows them whole (--json always does).\n",
	.options = (const struct option[]){ { "min-pct", required_argument, NULL, OPT_MIN_PCT },
					    { "from", required_argument, NULL, OPT_FROM },
					    { "group", required_argument, NULL, OPT_GROUP },
					    {} },
	.option = parse_option,
	.render = render_tree,
};

int cmd_tree(CliContext *ctx, int argc, char **argv)
{
	TreeOptions o = { .group = -1 };
	Request req;
	int r;

	r = cli_parse(&tree, ctx, &req, argc, argv, &o);
	if (r != CLI_PARSED)
		return r;
	cli_apply_group(&req, o.group);
	return cli_answer(&tree, ctx, &req);
}
