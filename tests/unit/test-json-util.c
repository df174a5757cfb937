/* SPDX-License-Identifier: MIT */
/*
 * The member adders of json-util.h when json-c cannot allocate: json-c's constructors are
 * wrapped (-Wl,--wrap) to fail on demand.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "base/json-util.h"

json_object *__real_json_object_new_int64(int64_t i);
json_object *__wrap_json_object_new_int64(int64_t i);
json_object *__real_json_object_new_string(const char *s);
json_object *__wrap_json_object_new_string(const char *s);
json_object *__real_json_object_new_double_s(double d, const char *ds);
json_object *__wrap_json_object_new_double_s(double d, const char *ds);

static bool fail_alloc;

json_object *__wrap_json_object_new_int64(int64_t i)
{
	return fail_alloc ? NULL : __real_json_object_new_int64(i);
}

json_object *__wrap_json_object_new_string(const char *s)
{
	return fail_alloc ? NULL : __real_json_object_new_string(s);
}

json_object *__wrap_json_object_new_double_s(double d, const char *ds)
{
	return fail_alloc ? NULL : __real_json_object_new_double_s(d, ds);
}

static void test_adders(void **state)
{
	_cleanup_json_ json_object *o = json_object_new_object();
	uint64_t before = json_alloc_failures();
	json_object *v;

	(void)state;
	assert_non_null(o);
	assert_int_equal(json_add_int(o, "i", 7), 0);
	assert_int_equal(json_add_string(o, "s", "x"), 0);
	assert_int_equal(json_add_string(o, "null", NULL), 0);
	assert_int_equal(json_add_double(o, "d", 1.25, 1), 0);
	assert_int_equal(json_add_index(o, "row", 3), 0);
	assert_int_equal(json_alloc_failures(), before);
	assert_string_equal(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
			    "{\"i\":7,\"s\":\"x\",\"null\":null,\"d\":1.2,\"row\":3}");

	/* Each failure: -ENOMEM, no member (no null in its place), counted. */
	fail_alloc = true;
	assert_int_equal(json_add_int(o, "fi", 7), -ENOMEM);
	assert_int_equal(json_add_string(o, "fs", "x"), -ENOMEM);
	assert_int_equal(json_add_double(o, "fd", 1.25, 1), -ENOMEM);
	assert_int_equal(json_add_index(o, "frow", 3), -ENOMEM);
	/* A null asked for needs no allocation of a value. */
	assert_int_equal(json_add_string(o, "fnull", NULL), 0);
	fail_alloc = false;
	assert_int_equal(json_alloc_failures(), before + 4);
	assert_false(json_object_object_get_ex(o, "fi", &v));
	assert_false(json_object_object_get_ex(o, "fs", &v));
	assert_false(json_object_object_get_ex(o, "fd", &v));
	assert_false(json_object_object_get_ex(o, "frow", &v));
	assert_true(json_object_object_get_ex(o, "fnull", &v));
	assert_null(v);
	/* The count only grows. */
	assert_int_equal(json_add_int(o, "after", 1), 0);
	assert_int_equal(json_alloc_failures(), before + 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_adders),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
