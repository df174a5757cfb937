/* SPDX-License-Identifier: MIT */
#include <getopt.h>

#include "base/macro.h"
#include "cli.h"
#include "service/config.h"

static const CliCommand commands[] = {
	{ "status", cmd_status, "Daemon health: uptime, samples taken and lost, memory" },
	{ "ps", cmd_ps, "Processes by CPU in the range" },
	{ "top", cmd_top, "Hotspot functions (a live view on a terminal)" },
	{ "time", cmd_time, "real, user, sys and cpu% like time(1), and the sampled estimate" },
	{ "tree", cmd_tree, "Call tree, top down, with total% and self%" },
	{ "lines", cmd_lines, "Hot source lines with their text, like line_profiler" },
	{ "folded", cmd_folded, "Folded stacks: frame;frame;frame count" },
	{ "flame", cmd_flame, "Interactive SVG flame graph" },
	{ "pprof", cmd_pprof, "Gzipped pprof profile (go tool pprof)" },
	{ "diff", cmd_diff, "Per-function change between two ranges or pids" },
	{ "mem", cmd_mem, "Resident set over time, peaks, OOM kills" },
	{ "run", cmd_run, "Run a command: time(1) figures and its hotspots" },
};

static void help(void)
{
	printf("Usage: profq [--socket PATH | --state-dir DIR] [--json]\n"
	       "             [--color auto|always|never] COMMAND [OPTIONS]\n"
	       "\n"
	       "Query the always-on CPU profiler profqd.\n"
	       "\n"
	       "Commands ('profq COMMAND --help' for each one's options):\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		printf("  %-8s  %s\n", commands[i].name, commands[i].help);
	printf("\n"
	       "Global options:\n"
	       "  --socket PATH     Daemon socket (default $PROFQ_SOCKET, else the socket of\n"
	       "                    profqd's config file, else " CLI_DEFAULT_SOCKET ")\n"
	       "  --state-dir DIR   Answer offline from a state directory (profqd's --state-dir,\n"
	       "                    or a copy), read-only, without a daemon\n"
	       "  --json            Answer in JSON (also accepted after the command)\n"
	       "  --color WHEN      Colour the tables of top, tree and lines: auto (on a\n"
	       "                    terminal, unless NO_COLOR is set), always or never (also\n"
	       "                    accepted after those commands)\n"
	       "  -h, --help        Show this help\n"
	       "  --version         Show the version\n"
	       "\n"
	       "Time ranges (--since, --until) count back from now (30s, 5m, 2h, 1h30m) or are\n"
	       "times (14:05, 2026-12-06T14:05:00, @SECONDS).\n"
	       "Exit status: 0 ok, 1 nothing found, 2 usage error, 3 daemon unreachable,\n"
	       "4 permission denied.\n");
}

/* profqd's socket as its config file sets it ($PROFQ_CONFIG, else profqd's default file), or
 * NULL: a file the user cannot read, or that does not parse, says nothing. */
static char *configured_socket(void)
{
	const char *path = getenv("PROFQ_CONFIG");
	_cleanup_free_ char *error = NULL;
	Config config;
	char *socket = NULL;

	if (config_init(&config) < 0)
		return NULL;
	if (config_parse_file(&config, path && *path ? path : CONFIG_DEFAULT_PATH, NULL, &error) ==
	    0)
		socket = TAKE_PTR(config.socket_path);
	config_done(&config);
	return socket;
}

int main(int argc, char *argv[])
{
	static const struct option options[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "state-dir", required_argument, NULL, 'S' },
		{ "json", no_argument, NULL, 'j' },
		{ "color", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{},
	};
	CliContext ctx = { .socket_path = getenv("PROFQ_SOCKET") };
	_cleanup_free_ char *configured = NULL;
	int c;

	if (!ctx.socket_path || !*ctx.socket_path)
		ctx.socket_path = NULL;
	opterr = 0;
	/* A usage error before the command is JSON too when profq's own options ask for it. */
	for (int i = 1; i < argc && argv[i][0] == '-' && !streq(argv[i], "--"); i++) {
		if (streq(argv[i], "--json"))
			cli_set_json_errors(true);
		else if (streq(argv[i], "--socket") || streq(argv[i], "--state-dir") ||
			 streq(argv[i], "--color"))
			i++; /* its value */
	}
	/* '+': stop at the command; its options are its own. ':': tell a missing value apart. */
	while ((c = getopt_long(argc, argv, "+:h", options, NULL)) >= 0) {
		switch (c) {
		case 's':
			ctx.socket_path = optarg;
			break;
		case 'S':
			ctx.state_dir = optarg;
			break;
		case 'j':
			ctx.json = true;
			break;
		case 'c':
			if (cli_set_color(optarg) < 0)
				return cli_usage_error(
					NULL, "--color: '%s' is not 'auto', 'always' or 'never'",
					optarg);
			break;
		case 'h':
			help();
			return EXIT_OK;
		case 'V':
			printf("profq " PROFQ_VERSION "\n");
			return EXIT_OK;
		case ':':
			return cli_usage_error(NULL, "option '%s' needs a value", argv[optind - 1]);
		default:
			return cli_usage_error(NULL, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (!ctx.socket_path) {
		configured = configured_socket();
		ctx.socket_path = configured ?: CLI_DEFAULT_SOCKET;
	}
	if (optind >= argc)
		return cli_usage_error(NULL, "missing command");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (streq(argv[optind], commands[i].name)) {
			/* The command parses its own argv, from its name on. */
			int sub_argc = argc - optind;
			char **sub_argv = argv + optind;

			optind = 1;
			opterr = 0;
			return commands[i].run(&ctx, sub_argc, sub_argv);
		}
	return cli_usage_error(NULL, "unknown command '%s'", argv[optind]);
}
