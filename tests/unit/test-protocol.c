/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "base/json-util.h"
#include "base/macro.h"
#include "protocol/protocol.h"

static int parse(const char *line, Request *req, char **err)
{
	return request_parse(line, strlen(line), req, err);
}

/* Parses a line that must be refused with r; the message must be present and mention hint. */
static void refused(const char *line, int r, const char *hint)
{
	_cleanup_free_ char *err = NULL;
	Request req, before;

	memset(&req, 0x5a, sizeof(req));
	before = req;
	assert_int_equal(parse(line, &req, &err), r);
	assert_non_null(err);
	assert_true(strlen(err) > 0);
	if (hint && !strstr(err, hint))
		fail_msg("message '%s' for '%s' does not mention '%s'", err, line, hint);
	/* The result is written only on success. */
	assert_memory_equal(&req, &before, sizeof(req));
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(command_to_string(COMMAND_STATUS), "status");
	assert_string_equal(command_to_string(COMMAND_PS), "ps");
	assert_string_equal(command_to_string(COMMAND_TOP), "top");
	assert_string_equal(command_to_string(COMMAND_TIME), "time");
	assert_int_equal(command_from_string("time"), COMMAND_TIME);
	assert_int_equal(command_from_string("lines"), COMMAND_LINES);
	assert_int_equal(command_from_string("tree"), COMMAND_TREE);
	assert_string_equal(command_to_string(COMMAND_TREE), "tree");
	assert_int_equal(command_from_string("stacks"), COMMAND_STACKS);
	assert_string_equal(command_to_string(COMMAND_STACKS), "stacks");
	assert_null(command_to_string(_COMMAND_MAX));
	assert_null(command_to_string(_COMMAND_INVALID));
	assert_int_equal(command_from_string("top"), COMMAND_TOP);
	assert_int_equal(command_from_string("TOP"), -EINVAL);
	assert_int_equal(command_from_string(""), -EINVAL);
	assert_int_equal(command_from_string(NULL), -EINVAL);
	assert_int_equal(sort_key_from_string("total"), SORT_TOTAL);
	assert_int_equal(sort_key_from_string("self"), SORT_SELF);
	assert_int_equal(sort_key_from_string("name"), -EINVAL);
	assert_string_equal(sort_key_to_string(SORT_TOTAL), "total");
	for (int c = 0; c < _ERROR_MAX; c++)
		assert_int_equal(error_code_from_string(error_code_to_string(c)), c);
	assert_string_equal(error_code_to_string(ERROR_NOT_FOUND), "not_found");
	assert_string_equal(error_code_to_string(ERROR_BAD_REQUEST), "bad_request");
	assert_int_equal(error_code_from_string("nope"), -EINVAL);
}

static void test_valid(void **state)
{
	Request req;
	char *err = (char *)"sentinel";

	(void)state;
	assert_int_equal(parse("{\"command\":\"status\"}", &req, &err), 0);
	assert_null(err); /* cleared on success */
	assert_int_equal(req.command, COMMAND_STATUS);
	assert_int_equal(req.pid, 0);
	assert_int_equal(req.tid, 0);
	assert_int_equal(req.limit, REQUEST_LIMIT_DEFAULT);
	assert_int_equal(req.sort, SORT_SELF);
	assert_false(req.has_since);
	assert_false(req.has_until);
	assert_int_equal(req.start_ns, 0);
	assert_false(req.children);
	assert_false(req.threads);

	assert_int_equal(
		parse("{\"command\":\"ps\",\"limit\":5,\"since_ns\":60000000000}", &req, NULL), 0);
	assert_int_equal(req.command, COMMAND_PS);
	assert_int_equal(req.limit, 5);
	assert_true(req.has_since);
	assert_true(req.since_ns == 60 * NSEC_PER_SEC);

	/* Every field of top, with whitespace around and a trailing newline. */
	assert_int_equal(parse(" { \"command\" : \"top\", \"pid\": 4194304, \"tid\": 1,\n"
			       "\"limit\": 100000, \"sort\": \"total\", \"since_ns\": 600000000000,"
			       " \"until_ns\": 0 }\r\n",
			       &req, NULL),
			 0);
	assert_int_equal(req.command, COMMAND_TOP);
	assert_int_equal(req.pid, 4194304);
	assert_int_equal(req.tid, 1);
	assert_int_equal(req.limit, 100000);
	assert_int_equal(req.sort, SORT_TOTAL);
	assert_true(req.has_since && req.has_until);
	assert_true(req.since_ns == 600 * NSEC_PER_SEC);
	assert_true(req.until_ns == 0);

	/* since == until is an empty but valid range; limit 1 is the smallest. */
	assert_int_equal(parse("{\"command\":\"top\",\"since_ns\":5,\"until_ns\":5,\"limit\":1}",
			       &req, NULL),
			 0);
	assert_int_equal(req.limit, 1);
	assert_int_equal(parse("{\"command\":\"top\",\"sort\":\"self\",\"pid\":1}", &req, NULL), 0);
	assert_int_equal(req.pid, 1);
	assert_int_equal(req.sort, SORT_SELF);
	/* time: a pid, which incarnation, its children. */
	assert_int_equal(parse("{\"command\":\"time\",\"pid\":7,\"start_ns\":1700000000000000000,"
			       "\"children\":true}",
			       &req, NULL),
			 0);
	assert_int_equal(req.command, COMMAND_TIME);
	assert_int_equal(req.pid, 7);
	assert_true(req.start_ns == 1700000000000000000LL);
	assert_true(req.children);
	assert_false(req.threads);
	assert_int_equal(parse("{\"command\":\"ps\",\"pid\":7,\"threads\":true,\"children\":false}",
			       &req, NULL),
			 0);
	assert_true(req.threads);
	assert_false(req.children);
	/* lines: a function; tree: a percentage, integer or not. */
	assert_int_equal(parse("{\"command\":\"lines\",\"pid\":7,\"function\":\"ns::f<int>()\"}",
			       &req, NULL),
			 0);
	assert_int_equal(req.command, COMMAND_LINES);
	assert_string_equal(req.function, "ns::f<int>()");
	assert_true(req.min_pct == REQUEST_MIN_PCT_DEFAULT);
	assert_int_equal(parse("{\"command\":\"tree\",\"pid\":7,\"min_pct\":2.5}", &req, NULL), 0);
	assert_int_equal(req.command, COMMAND_TREE);
	assert_true(req.min_pct == 2.5);
	assert_string_equal(req.function, "");
	assert_int_equal(parse("{\"command\":\"tree\",\"pid\":7,\"min_pct\":0}", &req, NULL), 0);
	assert_true(req.min_pct == 0);
	assert_int_equal(parse("{\"command\":\"tree\",\"pid\":7,\"min_pct\":100}", &req, NULL), 0);
	assert_true(req.min_pct == 100);
	/* python: false hides Python frames; true is the default. */
	assert_int_equal(
		parse("{\"command\":\"top\",\"python\":false,\"inline\":true}", &req, NULL), 0);
	assert_true(req.no_python);
	assert_false(req.no_inline);
	assert_int_equal(parse("{\"command\":\"top\",\"python\":true}", &req, NULL), 0);
	assert_false(req.no_python);
	/* The length given counts, not the NUL: a valid prefix of a longer buffer parses. */
	assert_int_equal(request_parse("{\"command\":\"ps\"}garbage", 16, &req, NULL), 0);
	assert_int_equal(req.command, COMMAND_PS);
	/* ps sorts by CPU time unless told otherwise, by its own keys. */
	assert_int_equal(req.sort, SORT_TIME);
	assert_false(req.has_uid);
	assert_int_equal(parse("{\"command\":\"ps\",\"sort\":\"start\",\"uid\":0}", &req, NULL), 0);
	assert_int_equal(req.sort, SORT_START);
	assert_true(req.has_uid && req.uid == 0);
	assert_true(sort_key_valid(COMMAND_PS, SORT_CPU));
	assert_false(sort_key_valid(COMMAND_PS, SORT_SELF));
	assert_false(sort_key_valid(COMMAND_TOP, SORT_CPU));
	assert_true(sort_key_valid(COMMAND_TOP, SORT_TOTAL));
	assert_false(sort_key_valid(COMMAND_TOP, _SORT_INVALID));
}

static void test_invalid(void **state)
{
	(void)state;
	refused("{\"command\":\"frobnicate\"}", -EINVAL, "frobnicate");
	refused("{\"command\":\"Top\"}", -EINVAL, "Top");
	refused("{}", -EINVAL, "command");
	refused("{\"command\":5}", -EINVAL, "command");
	refused("{\"command\":\"top\",\"colour\":1}", -EINVAL, "colour");
	refused("{\"command\":\"top\",\"pid\":\"42\"}", -EINVAL, "pid");
	refused("{\"command\":\"top\",\"pid\":42.0}", -EINVAL, "pid");
	refused("{\"command\":\"top\",\"pid\":true}", -EINVAL, "pid");
	refused("{\"command\":\"top\",\"pid\":null}", -EINVAL, "pid");
	refused("{\"command\":\"top\",\"pid\":[1]}", -EINVAL, "pid");
	refused("{\"command\":\"top\",\"pid\":-1}", -EINVAL, "pid");
	refused("{\"command\":\"top\",\"pid\":0}", -EINVAL, "pid");
	refused("{\"command\":\"top\",\"pid\":4194305}", -EINVAL, "pid");
	refused("{\"command\":\"top\",\"pid\":99999999999999999999}", -EINVAL, NULL);
	refused("{\"command\":\"top\",\"tid\":0}", -EINVAL, "tid");
	refused("{\"command\":\"top\",\"tid\":-5}", -EINVAL, "tid");
	refused("{\"command\":\"top\",\"limit\":0}", -EINVAL, "limit");
	refused("{\"command\":\"top\",\"limit\":100001}", -EINVAL, "limit");
	refused("{\"command\":\"top\",\"limit\":2.5}", -EINVAL, "limit");
	refused("{\"command\":\"top\",\"limit\":false}", -EINVAL, "limit");
	refused("{\"command\":\"top\",\"sort\":\"name\"}", -EINVAL, "sort");
	refused("{\"command\":\"top\",\"sort\":1}", -EINVAL, "sort");
	/* Each command its own keys. */
	refused("{\"command\":\"top\",\"sort\":\"cpu\"}", -EINVAL, "sort");
	refused("{\"command\":\"ps\",\"sort\":\"self\"}", -EINVAL, "sort");
	refused("{\"command\":\"ps\",\"uid\":-1}", -EINVAL, "uid");
	refused("{\"command\":\"ps\",\"uid\":4294967295}", -EINVAL, "uid");
	refused("{\"command\":\"ps\",\"uid\":\"root\"}", -EINVAL, "uid");
	refused("{\"command\":\"ps\",\"uid\":0,\"pid\":1}", -EINVAL, "uid");
	refused("{\"command\":\"top\",\"since_ns\":-1}", -EINVAL, "since_ns");
	refused("{\"command\":\"top\",\"since_ns\":\"10m\"}", -EINVAL, "since_ns");
	refused("{\"command\":\"top\",\"until_ns\":1e9}", -EINVAL, "until_ns");
	/* More than ten years back. */
	refused("{\"command\":\"top\",\"since_ns\":9223372036854775807}", -EINVAL, "since_ns");
	/* until older than since: the range would end before it starts. */
	refused("{\"command\":\"top\",\"since_ns\":10,\"until_ns\":20}", -EINVAL, "range");
	/* time, threads and start_ns are about one pid. */
	refused("{\"command\":\"time\"}", -EINVAL, "pid");
	refused("{\"command\":\"ps\",\"threads\":true}", -EINVAL, "pid");
	refused("{\"command\":\"top\",\"start_ns\":5}", -EINVAL, "pid");
	refused("{\"command\":\"time\",\"pid\":1,\"children\":1}", -EINVAL, "children");
	refused("{\"command\":\"ps\",\"pid\":1,\"threads\":\"yes\"}", -EINVAL, "threads");
	refused("{\"command\":\"top\",\"python\":0}", -EINVAL, "python");
	refused("{\"command\":\"top\",\"python\":null}", -EINVAL, "python");
	refused("{\"command\":\"time\",\"pid\":1,\"start_ns\":-1}", -EINVAL, "start_ns");
	refused("{\"command\":\"time\",\"pid\":1,\"start_ns\":9223372036854775807}", -EINVAL,
		"start_ns");
	/* lines and tree are about one pid; their own fields are checked. */
	refused("{\"command\":\"lines\"}", -EINVAL, "pid");
	refused("{\"command\":\"tree\",\"min_pct\":1}", -EINVAL, "pid");
	refused("{\"command\":\"stacks\"}", -EINVAL, "pid");
	refused("{\"command\":\"tree\",\"pid\":1,\"min_pct\":-0.1}", -EINVAL, "min_pct");
	refused("{\"command\":\"tree\",\"pid\":1,\"min_pct\":100.5}", -EINVAL, "min_pct");
	refused("{\"command\":\"tree\",\"pid\":1,\"min_pct\":1e999}", -EINVAL, NULL);
	refused("{\"command\":\"tree\",\"pid\":1,\"min_pct\":\"1\"}", -EINVAL, "min_pct");
	refused("{\"command\":\"lines\",\"pid\":1,\"function\":\"\"}", -EINVAL, "function");
	refused("{\"command\":\"lines\",\"pid\":1,\"function\":7}", -EINVAL, "function");
	refused("{\"command\":\"lines\",\"pid\":1,\"function\":null}", -EINVAL, "function");
	refused("{\"command\":\"top\"} x", -EINVAL, NULL);
	refused("{\"command\":\"top\"}{\"command\":\"ps\"}", -EINVAL, NULL);
	refused("{\"command\":\"top\"}\n\n]", -EINVAL, NULL);
	refused("[{\"command\":\"top\"}]", -EINVAL, "object");
	refused("\"top\"", -EINVAL, "object");
	refused("42 ", -EINVAL, "object");
	refused("null ", -EINVAL, "object");
	refused("{\"command\":\"top\"", -EINVAL, "JSON");
	refused("{command:\"top\"}", -EINVAL, "JSON");
	refused("{\"command\":'top'}", -EINVAL, "JSON");
	refused("{\"command\":\"top\",}", -EINVAL, "JSON");
	refused("", -EINVAL, "JSON");
	refused("   ", -EINVAL, "JSON");
	refused("\xff\xfe", -EINVAL, "JSON");
}

static void test_nul_and_size(void **state)
{
	static const char with_nul[] = "{\"command\":\"top\"}\0{\"x\":1}";
	_cleanup_free_ char *err = NULL, *err2 = NULL, *err3 = NULL, *big = NULL;
	_cleanup_free_ char *deep = NULL, *err4 = NULL;
	size_t n = PROTOCOL_MAX_REQUEST + 1;
	Request req;
	int i;

	(void)state;
	assert_int_equal(request_parse(with_nul, sizeof(with_nul) - 1, &req, &err), -EINVAL);
	assert_non_null(err);
	assert_non_null(strstr(err, "NUL"));
	/* Not UTF-8: refused, so no error answer can echo bytes that are not. */
	{
		static const char latin1[] =
			"{\"command\":\"lines\",\"pid\":1,\"function\":\"f\xe9\"}";
		_cleanup_free_ char *err5 = NULL;

		assert_int_equal(request_parse(latin1, sizeof(latin1) - 1, &req, &err5), -EINVAL);
		assert_non_null(err5);
	}
	/* Over 64 KiB: refused unparsed, even if it is valid JSON. */
	big = malloc(n + 1);
	assert_non_null(big);
	memset(big, ' ', n);
	memcpy(big, "{\"command\":\"top\"}", 17);
	big[n] = '\0';
	assert_int_equal(request_parse(big, n, &req, &err2), -E2BIG);
	assert_non_null(err2);
	/* Exactly 64 KiB is fine. */
	assert_int_equal(request_parse(big, n - 1, &req, &err3), 0);
	assert_int_equal(req.command, COMMAND_TOP);
	assert_null(err3);
	/* Deep nesting is refused by the parser's depth limit, without recursion trouble. */
	deep = malloc(2 * 5000 + 64);
	assert_non_null(deep);
	i = sprintf(deep, "{\"command\":\"top\",\"x\":");
	for (int d = 0; d < 5000; d++)
		deep[i++] = '[';
	for (int d = 0; d < 5000; d++)
		deep[i++] = ']';
	deep[i++] = '}';
	deep[i] = '\0';
	assert_int_equal(request_parse(deep, (size_t)i, &req, &err4), -EINVAL);
	assert_non_null(err4);
	assert_non_null(strstr(err4, "JSON"));
	/* No error buffer wanted: still refused. */
	assert_int_equal(request_parse("{}", 2, &req, NULL), -EINVAL);
	assert_int_equal(request_parse(big, n, &req, NULL), -E2BIG);
}

static void roundtrip(const Request *in)
{
	_cleanup_json_ json_object *o = NULL;
	const char *text;
	Request out;

	assert_int_equal(request_to_json(in, &o), 0);
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	assert_int_equal(request_parse(text, strlen(text), &out, NULL), 0);
	assert_int_equal(out.command, in->command);
	assert_int_equal(out.pid, in->pid);
	assert_int_equal(out.tid, in->tid);
	assert_int_equal(out.limit, in->limit);
	assert_int_equal(out.sort, in->sort);
	assert_int_equal(out.has_uid, in->has_uid);
	assert_int_equal(out.uid, in->uid);
	assert_int_equal(out.has_since, in->has_since);
	assert_int_equal(out.has_until, in->has_until);
	assert_true(out.since_ns == in->since_ns);
	assert_true(out.until_ns == in->until_ns);
	assert_true(out.start_ns == in->start_ns);
	assert_int_equal(out.children, in->children);
	assert_int_equal(out.threads, in->threads);
	assert_true(out.min_pct == in->min_pct);
	assert_string_equal(out.function, in->function);
}

static void test_roundtrip(void **state)
{
	_cleanup_json_ json_object *o = NULL;
	Request req;

	(void)state;
	request_init(&req, COMMAND_STATUS);
	roundtrip(&req);
	/* Defaults are left out of the wire form. */
	assert_int_equal(request_to_json(&req, &o), 0);
	assert_string_equal(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
			    "{\"command\":\"status\"}");

	request_init(&req, COMMAND_TOP);
	req.pid = 4194304;
	req.tid = 77;
	req.limit = 3;
	req.sort = SORT_TOTAL;
	req.has_since = req.has_until = true;
	req.since_ns = 3600 * NSEC_PER_SEC;
	req.until_ns = 60 * NSEC_PER_SEC;
	roundtrip(&req);

	request_init(&req, COMMAND_TIME);
	req.pid = 9;
	req.start_ns = 1700000000123456789LL;
	req.children = true;
	roundtrip(&req);

	request_init(&req, COMMAND_PS);
	req.pid = 9;
	req.threads = true;
	roundtrip(&req);

	request_init(&req, COMMAND_LINES);
	req.pid = 9;
	req.no_inline = true;
	strcpy(req.function, "std::vector<int>::push_back(int const&)");
	roundtrip(&req);
	req.no_python = true;
	strcpy(req.function, "Worker.parse");
	roundtrip(&req);

	request_init(&req, COMMAND_TREE);
	req.pid = 9;
	req.min_pct = 0;
	roundtrip(&req);
	req.min_pct = 0.25;
	roundtrip(&req);

	request_init(&req, COMMAND_PS);
	req.limit = REQUEST_LIMIT_MAX;
	req.has_until = true;
	req.until_ns = 0;
	roundtrip(&req);
	req.sort = SORT_SYS;
	req.has_uid = true;
	req.uid = 1000;
	roundtrip(&req);
}

static void test_match(void **state)
{
	Request req;

	(void)state;
	assert_int_equal(
		parse("{\"command\":\"top\",\"unit\":\"nginx*\",\"comm\":\"w?\"}", &req, NULL), 0);
	assert_string_equal(req.match.unit, "nginx*");
	assert_string_equal(req.match.comm, "w?");
	assert_true(request_has_match(&req));
	/* Without a pid, the commands that need one take a selector instead. */
	assert_int_equal(parse("{\"command\":\"time\",\"cgroup\":\"/a.slice\"}", &req, NULL), 0);
	assert_int_equal(parse("{\"command\":\"stacks\",\"container\":\"0a1b\"}", &req, NULL), 0);
	assert_int_equal(parse("{\"command\":\"ps\",\"by\":\"unit\",\"uid\":5}", &req, NULL), 0);
	assert_int_equal(req.by, GROUP_UNIT);
	roundtrip(&req);
	request_init(&req, COMMAND_TREE);
	strcpy(req.match.unit, "a.service");
	strcpy(req.match.cgroup, "/x/y");
	strcpy(req.match.container, "ff");
	strcpy(req.match.comm, "bash");
	roundtrip(&req);

	refused("{\"command\":\"tree\"}", -EINVAL, "unit");
	refused("{\"command\":\"top\",\"unit\":\"a\",\"pid\":3}", -EINVAL, "pid");
	refused("{\"command\":\"top\",\"comm\":\"a\",\"children\":true}", -EINVAL, "children");
	refused("{\"command\":\"top\",\"unit\":\"\"}", -EINVAL, "unit");
	refused("{\"command\":\"top\",\"unit\":5}", -EINVAL, "unit");
	refused("{\"command\":\"top\",\"comm\":\"a\\u0000b\"}", -EINVAL, "comm");
	refused("{\"command\":\"top\",\"comm\":\"0123456789012345678901234567890123456789"
		"012345678901234567890123\"}",
		-EINVAL, "comm");
	refused("{\"command\":\"top\",\"cgroup\":\"a.slice\"}", -EINVAL, "absolute");
	refused("{\"command\":\"top\",\"container\":\"ABC\"}", -EINVAL, "hex");
	refused("{\"command\":\"top\",\"by\":\"unit\"}", -EINVAL, "by");
	refused("{\"command\":\"ps\",\"by\":\"pid\"}", -EINVAL, "by");
	refused("{\"command\":\"ps\",\"by\":\"unit\",\"pid\":3,\"threads\":true}", -EINVAL, "by");
	/* tree and stacks group by comm, and by nothing else. */
	assert_int_equal(parse("{\"command\":\"tree\",\"pid\":3,\"children\":true,\"by\":\"comm\"}",
			       &req, NULL),
			 0);
	assert_int_equal(req.by, GROUP_COMM);
	assert_int_equal(parse("{\"command\":\"stacks\",\"pid\":3,\"by\":\"comm\"}", &req, NULL),
			 0);
	refused("{\"command\":\"tree\",\"pid\":3,\"by\":\"unit\"}", -EINVAL, "by");
	refused("{\"command\":\"lines\",\"pid\":3,\"by\":\"comm\"}", -EINVAL, "by");
	/* top ranks functions (its rows without grouping), processes or modules. */
	assert_int_equal(parse("{\"command\":\"top\",\"by\":\"module\"}", &req, NULL), 0);
	assert_int_equal(req.by, GROUP_MODULE);
	roundtrip(&req);
	assert_int_equal(parse("{\"command\":\"top\",\"by\":\"process\"}", &req, NULL), 0);
	assert_int_equal(req.by, GROUP_PROCESS);
	roundtrip(&req);
	assert_int_equal(parse("{\"command\":\"top\",\"by\":\"function\"}", &req, NULL), 0);
	assert_int_equal(req.by, GROUP_NONE);
	assert_int_equal(parse("{\"command\":\"ps\",\"by\":\"process\"}", &req, NULL), 0);
	assert_int_equal(req.by, GROUP_NONE);
	refused("{\"command\":\"ps\",\"by\":\"module\"}", -EINVAL, "by");
	refused("{\"command\":\"ps\",\"by\":\"function\"}", -EINVAL, "by");
	refused("{\"command\":\"tree\",\"pid\":3,\"by\":\"module\"}", -EINVAL, "by");
}

static void test_error_answers(void **state)
{
	_cleanup_json_ json_object *e = NULL, *ok = NULL, *odd = NULL, *partial = NULL;
	const char *msg = NULL;
	ErrorCode code = _ERROR_INVALID;

	(void)state;
	e = error_answer_new(ERROR_DENIED, "Permission denied for pid %d", 42);
	assert_non_null(e);
	assert_string_equal(json_get_string(e, "error"), "Permission denied for pid 42");
	assert_string_equal(json_get_string(e, "code"), "denied");
	assert_int_equal(answer_error_code(e, &code, &msg), 0);
	assert_int_equal(code, ERROR_DENIED);
	assert_string_equal(msg, "Permission denied for pid 42");
	assert_int_equal(answer_error_code(e, NULL, NULL), 0);

	ok = json_tokener_parse("{\"rows\":[],\"pid\":1}");
	assert_non_null(ok);
	code = ERROR_NOT_FOUND;
	msg = "untouched";
	assert_int_equal(answer_error_code(ok, &code, &msg), -ENOENT);
	assert_int_equal(code, ERROR_NOT_FOUND);
	assert_string_equal(msg, "untouched");

	/* An unknown code from a newer daemon still reads as an error. */
	odd = json_tokener_parse("{\"error\":\"x\",\"code\":\"exploded\"}");
	assert_int_equal(answer_error_code(odd, &code, &msg), 0);
	assert_int_equal(code, ERROR_UNAVAILABLE);
	assert_string_equal(msg, "x");
	/* "error" without "code" is not an error answer. */
	partial = json_tokener_parse("{\"error\":\"x\"}");
	assert_int_equal(answer_error_code(partial, &code, NULL), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),	      cmocka_unit_test(test_valid),
		cmocka_unit_test(test_invalid),	      cmocka_unit_test(test_nul_and_size),
		cmocka_unit_test(test_roundtrip),     cmocka_unit_test(test_match),
		cmocka_unit_test(test_error_answers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
