/* SPDX-License-Identifier: MIT */
/*
 * A Profile for the exporters' tests (test-flame, test-pprof), parsed from a stacks answer
 * written out by hand so the expected output can be worked out on paper:
 *
 *   main (prog.c:10) -> work (prog.c:20) -> hot (prog.h:5, inlined into work)   60 samples
 *   main (prog.c:11) -> [kernel] kfunc                                          30 samples
 *   main (prog.c:12) -> other (prog.c:30)                                       10 samples
 *   truncated                                                                     5 samples
 */
#pragma once

#include "base/json-util.h"
#include "base/macro.h"
#include "export/profile.h"

#define FIXTURE_PERIOD_NS 10101010
#define FIXTURE_START_NS 1700000000000000000LL

static const char fixture_answer[] =
	"{\"pid\": 100, \"comm\": \"prog\", \"samples\": 105, \"truncated_samples\": 5,"
	" \"period_ns\": 10101010, \"start_ns\": 1700000000000000000,"
	" \"end_ns\": 1700000010000000000,"
	" \"frames\": ["
	"  {\"function\": \"hot\", \"module\": \"prog\", \"file\": \"prog.h\", \"line\": 5,"
	"   \"inlined\": true},"
	"  {\"function\": \"work\", \"module\": \"prog\", \"file\": \"prog.c\", \"line\": 20},"
	"  {\"function\": \"main\", \"module\": \"prog\", \"file\": \"prog.c\", \"line\": 10},"
	"  {\"function\": \"main\", \"module\": \"prog\", \"file\": \"prog.c\", \"line\": 11},"
	"  {\"function\": \"kfunc\", \"module\": \"[kernel.kallsyms]\", \"kernel\": true},"
	"  {\"function\": \"main\", \"module\": \"prog\", \"file\": \"prog.c\", \"line\": 12},"
	"  {\"function\": \"other\", \"module\": \"prog\", \"file\": \"prog.c\", \"line\": 30}"
	" ],"
	" \"stacks\": ["
	"  {\"frames\": [0, 1, 2], \"samples\": 60},"
	"  {\"frames\": [4, 3], \"samples\": 30},"
	"  {\"frames\": [6, 5], \"samples\": 10}"
	" ]}";

/*
 * A CPython process, as the stacks answer gives it: Python functions (module "[python]", the
 * .py file, the line executing, the function's first line as start_line) in place of the
 * interpreter's evaluation frames, leaf first:
 *
 *   long_richcompare, list_contains, Worker.parse:12, main:5 (run.py), PyEval_EvalCode,
 *       main (C), __libc_start_main                                            40 samples
 *   Worker.parse:14, main:5, PyEval_EvalCode, main (C), __libc_start_main       30 samples
 *   [python] (not named), PyEval_EvalCode, main (C), __libc_start_main          10 samples
 */
static const char fixture_python_answer[] =
	"{\"pid\": 200, \"comm\": \"python3\", \"samples\": 80, \"truncated_samples\": 0,"
	" \"period_ns\": 10101010, \"start_ns\": 1700000000000000000,"
	" \"end_ns\": 1700000010000000000, \"inline\": true, \"python\": true,"
	" \"frames\": ["
	"  {\"function\": \"long_richcompare\", \"module\": \"python3.11\","
	"   \"file\": \"Objects/longobject.c\", \"line\": 3000, \"python\": false},"
	"  {\"function\": \"list_contains\", \"module\": \"python3.11\","
	"   \"file\": \"Objects/listobject.c\", \"line\": 450},"
	"  {\"function\": \"Worker.parse\", \"module\": \"[python]\","
	"   \"file\": \"/srv/app/worker.py\", \"line\": 12, \"python\": true, \"start_line\": 10},"
	"  {\"function\": \"main\", \"module\": \"[python]\", \"file\": \"/srv/app/run.py\","
	"   \"line\": 5, \"python\": true, \"start_line\": 3},"
	"  {\"function\": \"PyEval_EvalCode\", \"module\": \"python3.11\","
	"   \"file\": \"Python/ceval.c\", \"line\": 580},"
	"  {\"function\": \"main\", \"module\": \"python3.11\", \"file\": \"Programs/python.c\","
	"   \"line\": 15},"
	"  {\"function\": \"__libc_start_main\", \"module\": \"libc.so.6\"},"
	"  {\"function\": \"Worker.parse\", \"module\": \"[python]\","
	"   \"file\": \"/srv/app/worker.py\", \"line\": 14, \"python\": true, \"start_line\": 10},"
	"  {\"function\": \"[python]\", \"module\": \"[python]\", \"file\": null,"
	"   \"line\": null, \"python\": true}"
	" ],"
	" \"stacks\": ["
	"  {\"frames\": [0, 1, 2, 3, 4, 5, 6], \"samples\": 40},"
	"  {\"frames\": [7, 3, 4, 5, 6], \"samples\": 30},"
	"  {\"frames\": [8, 4, 5, 6], \"samples\": 10}"
	" ]}";

/* The fixture, or a Profile of another answer text; fails the test when it does not parse. */
static inline Profile *fixture_profile_of(const char *text)
{
	_cleanup_json_ json_object *answer = json_tokener_parse(text);
	Profile *p = NULL;
	char *error = NULL;

	assert_non_null(answer);
	if (profile_from_json(answer, &p, &error) < 0)
		fail_msg("fixture: %s", error ? error : "out of memory");
	return p;
}
