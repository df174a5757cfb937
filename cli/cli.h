/* SPDX-License-Identifier: MIT */
/*
 * Shared by profq's commands: the global context, the query round trip, exit codes, and
 * output helpers; command.h describes a query command and runs it. In JSON mode stdout always
 * carries exactly one valid JSON document (the answer or the error answer); messages go to
 * stderr.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>

#include "protocol/protocol.h"

enum {
	EXIT_OK = 0,
	EXIT_NOT_FOUND = 1,
	EXIT_USAGE = 2,
	EXIT_UNREACHABLE = 3,
	EXIT_DENIED = 4,
};

#define CLI_DEFAULT_SOCKET "/run/profq/profq.sock"

typedef struct CliContext {
	const char *socket_path;
	const char *state_dir; /* offline: answer from this state dir, without a daemon */
	bool json;
	/* --since, --until as given (NULL: not given), for the range an answer says it covers;
	 * absolute: a time of day or date rather than a duration back from now. */
	const char *since, *until;
	bool since_absolute, until_absolute;
	bool range_life; /* --range life: the selected process's life, resolved before asking */
} CliContext;

typedef struct CliCommand {
	const char *name;
	int (*run)(CliContext *ctx, int argc, char **argv);
	const char *help;
} CliCommand;

/*
 * Sends req and reads the answer. Returns EXIT_OK with *ret set, or an exit code after
 * reporting the failure (daemon unreachable, error answer) the way the output mode wants.
 */
int cli_query(const CliContext *ctx, const Request *req, json_object **ret);
/* Like cli_query, but an error answer is returned as the answer, not reported. */
int cli_query_answer(const CliContext *ctx, const Request *req, json_object **ret);
/* For plain output on a terminal: control characters in every string of answer become '?'
 * (names come from whoever runs a program; cli_query() does this for plain output). */
void cli_sanitize(json_object *answer);
/* The exit code for an error answer's code. */
int cli_exit_code(ErrorCode code);

/* Prints a JSON document to stdout (pretty) followed by a newline. */
void cli_print_json(json_object *o);
/* Local date and time of a realtime in seconds ("2026-12-06 14:05:00"), written to buf. */
const char *cli_format_time(double epoch_s, char *buf, size_t len);

/* Reports a usage error for a command (NULL: of profq itself) on stderr, and in JSON mode also
 * as the JSON document on stdout ({"error", "code": "bad_request"}); returns EXIT_USAGE. */
int cli_usage_error(const char *command, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Whether cli_usage_error() prints JSON: set once --json is known to be given (main() for the
 * global option, cli_parse() for the command's). */
void cli_set_json_errors(bool json);

/* For a row or node of a Python function ("python": true) with a file: "file.py:line" (the
 * file's base name, the function's first line) in buf, and true. Else false. */
bool cli_python_location(json_object *row, char *buf, size_t len);

/* A count of an answer over stacks as a table shows it: samples ("123") for the cpu event, bytes
 * ("96.0MiB", cli_bytes()) for faults, a duration ("1.25s", "12.5ms", "250us") for the others,
 * whose counts are nanoseconds. */
const char *cli_count(json_object *answer, int64_t n, char *buf, size_t len);
/* The CPU time of n samples of an answer of the cpu event, n x its "period_ns", as cli_count()
 * writes a duration, in buf; NULL for the other events (their counts are times or bytes). */
const char *cli_cpu_time(json_object *answer, int64_t n, char *buf, size_t len);
/* n bytes in buf as "512B", "4.0KiB", "96.0MiB" or "1.25GiB". */
const char *cli_bytes(uint64_t n, char *buf, size_t len);
/* The first words of such an answer's header: "Samples: 123", "Off-CPU: 1.25s", "Wall: 2.50s",
 * "Faulted in: 128.0MiB". */
void cli_print_total(json_object *answer);

/* A function's name as a table shows it: C++ template argument and parameter lists elided
 * (text_shorten_name()) unless cli_set_full_names(true), then cut to columns characters with an
 * ellipsis (0: not cut), into buf. Returns buf. */
const char *cli_function_label(const char *fn, size_t columns, char *buf, size_t len);
/* --full-names: function names in tables as the answer has them. */
void cli_set_full_names(bool full);
/* Under a table of an answer with "total_rows" and "sort": how many of its rows it shows,
 * when -n left some out ("(20 of 135 rows, by cpu; -n 0 shows all)"). */
void cli_print_rows_left_out(json_object *answer, json_object *rows);

/* Colour of plain output: --color always or never as given; auto (the default) only when stdout
 * is a terminal and NO_COLOR is not set to a non-empty value (no-color.org). */
typedef enum CliColor {
	CLI_COLOR_AUTO,
	CLI_COLOR_ALWAYS,
	CLI_COLOR_NEVER,
	_CLI_COLOR_MAX,
} CliColor;

/* --color WHEN: "auto", "always" or "never"; 0 or -EINVAL. */
int cli_set_color(const char *when);
bool cli_color(void);

typedef enum CliStyle {
	CLI_STYLE_RESET,
	CLI_STYLE_HEADER, /* a table's column names: bold */
	CLI_STYLE_DIM,	  /* kernel frames */
	CLI_STYLE_HOT,	  /* a share of 5% or more: red, as perf top */
	CLI_STYLE_WARM,	  /* of 0.5% or more: green */
	_CLI_STYLE_MAX,
} CliStyle;

/* The escape sequence that starts style s, "" without colour (or for _CLI_STYLE_MAX); each
 * styled field ends with cli_style(CLI_STYLE_RESET). */
const char *cli_style(CliStyle s);
/* The style of a percentage: hot, warm or none (""). */
const char *cli_pct_style(double pct);
/* A percentage in a column of 7 ("%7.2f"), in its style; returns the columns it took (7). */
int cli_print_pct(double pct);

/* Terminal width for plain output (COLUMNS, the tty, else 0 = unlimited). */
int cli_terminal_width(void);
/* Terminal height (LINES, the tty, else 0). */
int cli_terminal_rows(void);

/* profq run: whether a run without samples was idle by the kernel's accounting (it used the CPU
 * for less than a tenth of its real time: a shell sleeping, a command waiting on I/O) rather
 * than too short to be sampled. */
bool cli_run_idle(double user_s, double sys_s, double real_s);

int cmd_status(CliContext *ctx, int argc, char **argv);
int cmd_ps(CliContext *ctx, int argc, char **argv);
int cmd_top(CliContext *ctx, int argc, char **argv);
int cmd_time(CliContext *ctx, int argc, char **argv);
int cmd_lines(CliContext *ctx, int argc, char **argv);
int cmd_tree(CliContext *ctx, int argc, char **argv);
int cmd_folded(CliContext *ctx, int argc, char **argv);
int cmd_flame(CliContext *ctx, int argc, char **argv);
int cmd_pprof(CliContext *ctx, int argc, char **argv);
int cmd_diff(CliContext *ctx, int argc, char **argv);
int cmd_run(CliContext *ctx, int argc, char **argv);
int cmd_mem(CliContext *ctx, int argc, char **argv);

/* profq diff -o: a differential flame graph of the stacks of with against base (their ranges
 * resolved), written to output ("-": standard output). An exit code, after reporting a
 * failure. */
int cli_diff_flame(const CliContext *ctx, const Request *base, const Request *with,
		   const char *output);
