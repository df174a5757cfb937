/* SPDX-License-Identifier: MIT */
#include <limits.h>

#include "base/json-util.h"
#include "command.h"

/* Deeper levels are not indented further: the depth is printed instead. */
#define TREE_INDENT_MAX 32

static void render_nodes(json_object *nodes, int depth, int width)
{
	for (size_t i = 0; i < json_object_array_length(nodes); i++) {
		json_object *n = json_object_array_get_idx(nodes, i), *v;
		const char *fn = strempty(json_get_string(n, "function"));
		const char *mod = json_get_string(n, "module");
		bool inlined = json_object_object_get_ex(n, "inlined", &v) &&
			       json_object_get_boolean(v);
		int indent = MIN(depth, TREE_INDENT_MAX) * 2, used, room;
		char where[256];

		used = printf("%7.2f %7.2f  %*s", json_get_double(n, "total_pct"),
			      json_get_double(n, "self_pct"), indent, "");
		if (depth > TREE_INDENT_MAX)
			used += printf("[%d] ", depth);
		room = width > 0 ? MAX(width - used, 8) : INT_MAX;
		printf("%.*s", room, fn);
		room -= MIN(room, (int)strlen(fn));
		/* The module, as perf shows it: "[name]". */
		if (mod && (int)strlen(mod) + 3 <= room) {
			printf(mod[0] == '[' ? " %s" : " [%s]", mod);
			room -= (int)strlen(mod) + 3;
		}
		if (inlined && room >= 10)
			printf(" (inlined)");
		if (cli_python_location(n, where, sizeof(where)) && (int)strlen(where) + 1 <= room)
			printf(" %s", where);
		putchar('\n');
		if (json_object_object_get_ex(n, "children", &v) && v)
			render_nodes(v, depth + 1, width);
	}
}

static void render_tree(json_object *a, const Request *req)
{
	json_object *rows;

	(void)req;
	cli_print_total(a);
	/* Processes selected by their labels: the header line above says which. */
	if (json_get_int(a, "pid"))
		printf("  pid %lld (%s)", (long long)json_get_int(a, "pid"),
		       strempty(json_get_string(a, "comm")));
	if (json_get_int(a, "tid"))
		printf("  tid %lld", (long long)json_get_int(a, "tid"));
	printf("  calls below %.2f%% left out\n", json_get_double(a, "min_pct"));
	if (json_get_int(a, "truncated_samples"))
		printf("The tree reached its size limit: the deepest calls of %lld samples are "
		       "left "
		       "out\n",
		       (long long)json_get_int(a, "truncated_samples"));
	printf("\n%7s %7s  %s\n", "TOTAL%", "SELF%", "FUNCTION");
	if (json_object_object_get_ex(a, "rows", &rows))
		render_nodes(rows, 0, cli_terminal_width());
}

enum {
	OPT_MIN_PCT = 0x200,
};

static int parse_option(int opt, const char *arg, Request *req, void *userdata)
{
	char *end;

	(void)opt, (void)userdata; /* --min-pct, the only one */
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
		  CLI_OPT_INLINE | CLI_OPT_MATCH | CLI_OPT_EVENT,
	.needs_pid = true,
	.help = "Usage: profq tree --pid N [--tid T] [--start TIME] [--children]\n"
		"                  [--unit NAME] [--cgroup PATH] [--container ID] [--comm NAME]\n"
		"                  [--min-pct P] [--since WHEN] [--until WHEN]\n"
		"                  [--range life] [--event cpu|off-cpu|wall|faults]\n"
		"                  [--[no-]inline] [--[no-]python] [--json]\n"
		"\n"
		"The call tree, top down: each stack's outermost frame is a root, a\n"
		"function's children are the functions it called. TOTAL% counts the\n"
		"samples under a call path, SELF% those that ended in it, of the\n"
		"process's samples. Calls below --min-pct P percent (0.5) are left\n"
		"out. Calls the compiler inlined are nodes of their own;\n"
		"--no-inline folds them into the function they are in.\n"
		"Python functions are frames of their own in place of the interpreter\n"
		"frames that ran them; --no-python shows the interpreter frames.\n"
		"--unit NAME, --cgroup PATH, --container ID, --comm NAME: instead\n"
		"of --pid, every process that matches (all given), summed: unit\n"
		"and comm are globs, a cgroup counts with those below it, an id\n"
		"may be cut short.\n"
		"--event off-cpu: time switched out, by where threads waited; wall:\n"
		"CPU and off-CPU time together.\n",
	.options = (const struct option[]){ { "min-pct", required_argument, NULL, OPT_MIN_PCT },
					    {} },
	.option = parse_option,
	.render = render_tree,
};

int cmd_tree(CliContext *ctx, int argc, char **argv)
{
	return cli_query_command(&tree, ctx, argc, argv);
}
