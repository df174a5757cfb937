/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer: the request parser (profqd(8), ACCESS CONTROL). Any input is one request line from a
 * hostile client: it parses into a valid Request or is refused with a message, and a parsed request
 * survives the round trip through its wire form unchanged.
 *
 *   fuzz-request -max_total_time=60 CORPUS_DIR tests/fuzz/corpus/request
 */
#include <stdio.h>
#include <stdlib.h>

#include "base/macro.h"
#include "protocol/protocol.h"

#define CHECK(cond)                                                                              \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                                 \
		}                                                                                \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	_cleanup_free_ char *error = NULL;
	json_object *wire = NULL;
	Request req, again;
	const char *text;
	int r;

	r = request_parse((const char *)data, size, &req, &error);
	if (r < 0) {
		CHECK(r == -EINVAL || r == -E2BIG || r == -ENOMEM);
		CHECK(r == -ENOMEM || error);
		return 0;
	}
	CHECK(!error);
	CHECK(req.command >= 0 && req.command < _COMMAND_MAX);
	CHECK(req.sort >= 0 && req.sort < _SORT_MAX && sort_key_valid(req.command, req.sort));
	CHECK(!req.has_uid || !req.pid);
	CHECK(req.limit >= 1 && req.limit <= REQUEST_LIMIT_MAX);
	/* time names a process, or the processes its labels select. */
	CHECK(req.command != COMMAND_TIME || req.pid || request_has_match(&req));
	CHECK(!req.has_since || !req.has_until || req.until_ns <= req.since_ns);
	/* by: ps groups processes, top ranks processes or modules; no other takes it. */
	CHECK(req.by == GROUP_NONE ||
	      (req.command == COMMAND_PS &&
	       (req.by == GROUP_UNIT || req.by == GROUP_COMM || req.by == GROUP_CONTAINER)) ||
	      (req.command == COMMAND_TOP && (req.by == GROUP_PROCESS || req.by == GROUP_MODULE)));
	CHECK(request_to_json(&req, &wire) == 0);
	text = json_object_to_json_string_ext(wire, JSON_C_TO_STRING_PLAIN);
	CHECK(request_parse(text, strlen(text), &again, NULL) == 0);
	CHECK(again.command == req.command && again.pid == req.pid && again.tid == req.tid &&
	      again.limit == req.limit && again.sort == req.sort &&
	      again.has_since == req.has_since && again.since_ns == req.since_ns &&
	      again.has_until == req.has_until && again.until_ns == req.until_ns &&
	      again.start_ns == req.start_ns && again.children == req.children &&
	      again.threads == req.threads && again.no_inline == req.no_inline &&
	      again.has_uid == req.has_uid && again.uid == req.uid && again.event == req.event &&
	      again.by == req.by && streq(again.match.unit, req.match.unit) &&
	      streq(again.match.cgroup, req.match.cgroup) &&
	      streq(again.match.container, req.match.container) &&
	      streq(again.match.comm, req.match.comm));
	json_object_put(wire);
	return 0;
}
