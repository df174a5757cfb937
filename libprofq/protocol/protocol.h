/* SPDX-License-Identifier: MIT */
/*
 * The query protocol between profq and profqd: one JSON object per line in each direction over
 * a Unix stream socket (profqd(8), ACCESS CONTROL). This module turns a request line into a
 * validated Request (every field checked, unknown fields refused) and back, and builds error
 * answers. The answers themselves are built by the query engine (query.h). Thread-safe.
 */
#pragma once

#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

/* Requests larger than this are refused without being parsed. */
#define PROTOCOL_MAX_REQUEST (64u * 1024u)

typedef enum Command {
	COMMAND_STATUS,
	COMMAND_PS,
	COMMAND_TOP,
	COMMAND_TIME,
	COMMAND_LINES,
	COMMAND_TREE,
	COMMAND_STACKS, /* every stack with its samples: the exports (folded, flame, pprof) */
	COMMAND_MEM,	/* resident set over time: a process's points, or processes by peak */
	_COMMAND_MAX,
	_COMMAND_INVALID = -EINVAL,
} Command;

/* top's (and diff's) keys, self the default; then ps's, time (CPU time) the default. */
typedef enum SortKey {
	SORT_SELF,
	SORT_TOTAL,
	SORT_TIME,    /* ps: CPU time */
	SORT_CPU,     /* ps: %CPU (of the time alive in the range) */
	SORT_USER,    /* ps: %USR */
	SORT_SYS,     /* ps: %SYS */
	SORT_SAMPLES, /* ps: samples */
	SORT_START,   /* ps: start time, newest first */
	SORT_PEAK,    /* mem: peak resident set */
	SORT_GROWTH,  /* mem: growth of the resident set over the range */
	SORT_OFF_CPU, /* ps: off-CPU time */
	_SORT_MAX,
	_SORT_INVALID = -EINVAL,
} SortKey;

typedef enum ErrorCode {
	ERROR_DENIED,
	ERROR_NOT_FOUND,
	ERROR_BAD_REQUEST,
	ERROR_UNAVAILABLE,
	_ERROR_MAX,
	_ERROR_INVALID = -EINVAL,
} ErrorCode;

/* What a profile weighs: CPU samples, time switched out, or both (wall-clock time). */
typedef enum Event {
	EVENT_CPU,
	EVENT_OFF_CPU,
	EVENT_WALL,
	EVENT_FAULTS, /* bytes faulted in (sampled minor page faults) */
	_EVENT_MAX,
	_EVENT_INVALID = -EINVAL,
} Event;

#define REQUEST_LIMIT_DEFAULT 20
#define REQUEST_LIMIT_MAX 100000
/* Longest function name a request may name (demangled C++ names run long). */
#define REQUEST_FUNCTION_MAX 4096
/* tree: nodes below this share of the samples are left out. */
#define REQUEST_MIN_PCT_DEFAULT 0.5

/* What rows an answer has. ps: one row per group of processes instead of per process (GROUP_NONE);
 * top: per process or per module instead of per function (GROUP_NONE). On the wire "process"
 * and "function" name GROUP_NONE of ps and of top. */
typedef enum GroupBy {
	GROUP_NONE,
	GROUP_UNIT,
	GROUP_COMM,
	GROUP_CONTAINER,
	GROUP_PROCESS,	/* top */
	GROUP_MODULE,	/* top: the binary a sample's frame is in */
	GROUP_FUNCTION, /* only on the wire: parsed as GROUP_NONE */
	_GROUP_MAX,
	_GROUP_INVALID = -EINVAL,
} GroupBy;

/* Lengths of the process selectors' fields, with their NUL. */
#define REQUEST_UNIT_MAX 256
#define REQUEST_CGROUP_MAX 4096
#define REQUEST_CONTAINER_MAX 65
#define REQUEST_COMM_MAX 64

/* Which processes a request covers by their labels instead of a pid: every process that matches
 * all the fields given ("" for a field not given). NUL-terminated. */
typedef struct RequestMatch {
	char unit[REQUEST_UNIT_MAX];	 /* glob (fnmatch(3)); without a '.', also NAME.service */
	char cgroup[REQUEST_CGROUP_MAX]; /* a cgroup path: it, or any below it */
	char container[REQUEST_CONTAINER_MAX]; /* a container id, or its start (hex digits) */
	char comm[REQUEST_COMM_MAX];	       /* glob of the process's name */
} RequestMatch;

typedef struct Request {
	Command command;
	uint32_t pid; /* 0: none given */
	uint32_t tid; /* 0: none given */
	uint32_t limit;
	SortKey sort; /* one of the command's: sort_key_valid() */
	bool has_uid; /* only the processes of this user (without a pid) */
	uint32_t uid;
	/* Range relative to the answerer's now: [now - since_ns, now - until_ns]. */
	bool has_since;
	bool has_until;
	uint64_t since_ns;
	uint64_t until_ns;
	/* The incarnation of pid that started at this realtime (within a second); 0: newest. */
	int64_t start_ns;
	bool children;	/* include the descendants of pid */
	bool threads;	/* ps: one row per thread of pid */
	bool no_inline; /* fold inlined frames into the function they are inlined into */
	/* Hide Python frames, show the interpreter's evaluation frames they stand in for. */
	bool no_python;
	double min_pct; /* tree: prune nodes below this percentage, 0..100 */
	Event event;	/* the answers over stacks (top, tree, lines, stacks) and ps's order */
	/* lines: only samples with this function on the stack ("" for all); NUL-terminated. */
	char function[REQUEST_FUNCTION_MAX];
	RequestMatch match; /* no pid with it */
	GroupBy by; /* ps (not with threads) and top: the kinds each takes; tree, stacks: comm */
} Request;

/* Whether req selects processes by their labels (req->match). */
bool request_has_match(const Request *req);

const char *command_to_string(Command c);
Command command_from_string(const char *s);
const char *sort_key_to_string(SortKey k);
SortKey sort_key_from_string(const char *s);
/* Whether command c sorts by k: ps by its keys, the others by self or total. */
bool sort_key_valid(Command c, SortKey k);
const char *group_by_to_string(GroupBy g);
GroupBy group_by_from_string(const char *s);
const char *event_to_string(Event e);
Event event_from_string(const char *s);
const char *error_code_to_string(ErrorCode c);
ErrorCode error_code_from_string(const char *s);

void request_init(Request *req, Command command);

/*
 * Parses and validates one request line. On failure returns -EINVAL (or -E2BIG, -ENOMEM) and,
 * when ret_error is given, a message for the client in *ret_error (caller frees).
 */
int request_parse(const char *line, size_t len, Request *ret, char **ret_error);

/* The request as a JSON object (the wire form). */
int request_to_json(const Request *req, json_object **ret);

/* {"error": message, "code": code}. */
json_object *error_answer_new(ErrorCode code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* If answer is an error answer, its code; otherwise -ENOENT. */
int answer_error_code(json_object *answer, ErrorCode *ret_code, const char **ret_message);
