/* SPDX-License-Identifier: MIT */
/*
 * A query command, described once: the shared options it takes (one definition of each, with
 * its messages, below), its own options, the request they build, and how its answer is printed.
 * cli_parse() turns the command line into a Request, cli_answer() sends it and prints the answer,
 * cli_query_command() does both: a command file holds only what is its own. docs/profq.1 is the
 * contract for the options, the output and the exit codes. Not thread-safe (getopt).
 */
#pragma once

#include <getopt.h>

#include "cli.h"

/* The shared options a command may take; --json and --help every command takes. */
enum {
	CLI_OPT_RANGE = 1 << 0,	   /* --since WHEN, --until WHEN, --range life */
	CLI_OPT_PID = 1 << 1,	   /* --pid N */
	CLI_OPT_TID = 1 << 2,	   /* --tid T */
	CLI_OPT_START = 1 << 3,	   /* --start TIME: an incarnation of the pid */
	CLI_OPT_CHILDREN = 1 << 4, /* --children */
	CLI_OPT_INLINE = 1 << 5,   /* --inline, --no-inline, --python, --no-python */
	CLI_OPT_LIMIT = 1 << 6,	   /* -n N (0: all) */
	/* --unit NAME, --cgroup PATH, --container ID, --comm NAME: every process that matches */
	CLI_OPT_MATCH = 1 << 7,
	CLI_OPT_EVENT = 1 << 8,	 /* --event cpu|off-cpu|wall|faults */
	CLI_OPT_NAMES = 1 << 9,	 /* --full-names: no shortened C++ names in tables */
	CLI_OPT_COLOR = 1 << 10, /* --color auto|always|never (also a global option) */
};

/* getopt values of the shared options; a command's own long options use values from 0x200. */
enum {
	OPT_JSON = 0x100,
	OPT_SINCE,
	OPT_UNTIL,
	OPT_PID,
	OPT_TID,
	OPT_START,
	OPT_CHILDREN,
	OPT_INLINE,
	OPT_NO_INLINE,
	OPT_PYTHON,
	OPT_NO_PYTHON,
	OPT_RANGE,
	OPT_UNIT,
	OPT_CGROUP,
	OPT_CONTAINER,
	OPT_COMM,
	OPT_EVENT,
	OPT_FULL_NAMES,
	OPT_COLOR,
	_OPT_SHARED_END,
};

/* What cli_parse() returns when the command is to go on; anything else is its exit code. */
#define CLI_PARSED (-1)
/* What an own option's parser returns for an option it does not take: "unknown option". */
#define CLI_UNKNOWN (-2)

typedef struct CliQuery {
	const char *name; /* the command's name, for messages: "top" */
	Command command;  /* the request it sends */
	unsigned shared;  /* CLI_OPT_*: the shared options it takes */
	uint32_t limit;	  /* -n's default; 0: the protocol's */
	bool needs_pid;	  /* --pid is required */
	/* The arguments after its options are a command to run, not a usage error. */
	bool takes_command;
	/* cli_answer() exits EXIT_NOT_FOUND for an answer without rows (ps over an empty range),
	 * after printing it, as for the answers that are not_found errors. */
	bool empty_is_not_found;
	const char *help; /* what --help prints */
	/* Its own options: long ones ({}-terminated; NULL: none), short ones in getopt's syntax. */
	const struct option *options;
	const char *short_options;
	/* Applies one of its own options to req or userdata: EXIT_OK, CLI_UNKNOWN for an option
	 * this variant of the command does not take, or an exit code after reporting. */
	int (*option)(int opt, const char *arg, Request *req, void *userdata);
	/* Checks the options together once all are parsed: EXIT_OK, or an exit code after
	 * reporting the problem. NULL: nothing to check. */
	int (*check)(const CliContext *ctx, const Request *req, void *userdata);
	/* For cli_answer(): adds to the answer before it is printed in either mode (NULL: nothing),
	 * then prints it in plain text. */
	void (*amend)(json_object *answer);
	void (*render)(json_object *answer, const Request *req);
} CliQuery;

/*
 * Parses argv (from the command's name on) into *req (request_init()ed here) and ctx (--json).
 * Options end at the first argument that is not one. Prints the help for --help. Returns
 * CLI_PARSED, with optind at the first argument after the options, or the exit code to return
 * (EXIT_OK after the help, else after reporting). The caller sets optind (1) before.
 */
int cli_parse(const CliQuery *q, CliContext *ctx, Request *req, int argc, char **argv,
	      void *userdata);

/* Sends req (or answers it offline) and prints the answer: JSON, or q->render. Exit code. */
int cli_answer(const CliQuery *q, const CliContext *ctx, const Request *req);

/*
 * A point in time as --since, --until and --start take it, realtime ns: "@SECONDS" (since the
 * epoch, fractions allowed), "HH:MM[:SS]" (the last such time of day, local time: today's, or
 * yesterday's if today's is still to come), "YYYY-MM-DD[THH:MM[:SS]]" (local time). now_ns is
 * realtime. 0 or -EINVAL.
 */
int cli_parse_time(const char *s, int64_t now_ns, int64_t *ret);

/* With --range life (ctx->range_life): asks when the process of req lived and sets req's range
 * to its life (and req->start_ns to that incarnation). EXIT_OK or an exit code after reporting. */
int cli_resolve_range(const CliContext *ctx, Request *req);

/* What an answer covers, for the header of a plain answer: "last 10m (13:55:02-14:05:02)", from
 * the options ctx recorded and the answer's "range". Written to buf. */
const char *cli_range_label(const CliContext *ctx, const Request *req, json_object *answer,
			    char *buf, size_t len);

/* What req->match selects, for headers and titles: "unit nginx, comm worker*"; "" without. */
const char *cli_match_label(const Request *req, char *buf, size_t len);

/* The header line of an answer over req->match ("Processes: 3 (unit nginx)"), and on stderr how
 * many processes that match were hidden from the viewer. Nothing without a match. */
void cli_print_match(const Request *req, json_object *answer);

/* --group comm|none of tree and the exports into *ret (GroupBy): EXIT_OK or EXIT_USAGE after
 * reporting. cli_apply_group() sets req->by from it, or (-1: not given) to comm with
 * --children. */
int cli_parse_group(const char *command, const char *arg, int *ret);
void cli_apply_group(Request *req, int group);
/* --from F of tree and flame into req->function: EXIT_OK or EXIT_USAGE after reporting. */
int cli_parse_from(const char *command, const char *arg, Request *req);

/* cli_parse() then cli_answer(): the whole of a command that is only a query. Exit code. */
int cli_query_command(const CliQuery *q, CliContext *ctx, int argc, char **argv);
