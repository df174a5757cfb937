/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "base/macro.h"
#include "base/parse.h"

static void test_uint(void **state)
{
	uint64_t v;
	uint32_t u;

	(void)state;
	assert_int_equal(parse_uint64("0", 0, 10, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(parse_uint64("18446744073709551615", 0, UINT64_MAX, &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(parse_uint64("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE);
	assert_int_equal(parse_uint64("11", 0, 10, &v), -ERANGE);
	assert_int_equal(parse_uint64("", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_uint64("-1", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_uint64("+1", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_uint64(" 1", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_uint64("1 ", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_uint64("0x10", 0, 100, &v), -EINVAL);
	assert_int_equal(parse_uint64(NULL, 0, 100, &v), -EINVAL);
	assert_int_equal(parse_uint32("4294967295", 0, UINT32_MAX, &u), 0);
	assert_true(u == UINT32_MAX);
	assert_int_equal(parse_pid("1", &u), 0);
	assert_int_equal(parse_pid("4194304", &u), 0);
	assert_int_equal(parse_pid("4194305", &u), -ERANGE);
	assert_int_equal(parse_pid("0", &u), -ERANGE);
}

static void test_duration(void **state)
{
	uint64_t v = 42;

	(void)state;
	assert_int_equal(parse_duration_ns("30s", &v), 0);
	assert_true(v == 30 * NSEC_PER_SEC);
	assert_int_equal(parse_duration_ns("90", &v), 0);
	assert_true(v == 90 * NSEC_PER_SEC);
	assert_int_equal(parse_duration_ns("5m", &v), 0);
	assert_true(v == 300 * NSEC_PER_SEC);
	assert_int_equal(parse_duration_ns("5min", &v), 0);
	assert_true(v == 300 * NSEC_PER_SEC);
	assert_int_equal(parse_duration_ns("2h", &v), 0);
	assert_true(v == 7200 * NSEC_PER_SEC);
	assert_int_equal(parse_duration_ns("1h30m", &v), 0);
	assert_true(v == 5400 * NSEC_PER_SEC);
	assert_int_equal(parse_duration_ns("500ms", &v), 0);
	assert_true(v == 500 * NSEC_PER_MSEC);
	assert_int_equal(parse_duration_ns("1d", &v), 0);
	assert_true(v == 86400 * NSEC_PER_SEC);
	assert_int_equal(parse_duration_ns("7us", &v), 0);
	assert_true(v == 7000);
	assert_int_equal(parse_duration_ns("7ns", &v), 0);
	assert_true(v == 7);

	v = 42;
	assert_int_equal(parse_duration_ns("", &v), -EINVAL);
	assert_int_equal(parse_duration_ns("s", &v), -EINVAL);
	assert_int_equal(parse_duration_ns("1h30", &v), -EINVAL);
	assert_int_equal(parse_duration_ns("10x", &v), -EINVAL);
	assert_int_equal(parse_duration_ns("10 s", &v), -EINVAL);
	assert_int_equal(parse_duration_ns("-5s", &v), -EINVAL);
	assert_int_equal(parse_duration_ns("1.5s", &v), -EINVAL);
	assert_int_equal(parse_duration_ns("10sec", &v), -EINVAL);
	assert_int_equal(parse_duration_ns("99999999999999999999d", &v), -ERANGE);
	assert_int_equal(parse_duration_ns("999999999999d", &v), -ERANGE);
	assert_true(v == 42); /* untouched on failure */
}

static void test_size(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(parse_size("64M", &v), 0);
	assert_true(v == 64ULL << 20);
	assert_int_equal(parse_size("64MiB", &v), 0);
	assert_true(v == 64ULL << 20);
	assert_int_equal(parse_size("512K", &v), 0);
	assert_true(v == 512ULL << 10);
	assert_int_equal(parse_size("1G", &v), 0);
	assert_true(v == 1ULL << 30);
	assert_int_equal(parse_size("4096", &v), 0);
	assert_true(v == 4096);
	assert_int_equal(parse_size("4096B", &v), 0);
	assert_true(v == 4096);
	assert_int_equal(parse_size("1X", &v), -EINVAL);
	assert_int_equal(parse_size("M", &v), -EINVAL);
	assert_int_equal(parse_size("1Mi", &v), 0);
	assert_int_equal(parse_size("99999999999T", &v), -ERANGE);
}

static void test_format_duration(void **state)
{
	char buf[32];

	(void)state;
	assert_string_equal(format_duration(buf, sizeof(buf), 3600 * NSEC_PER_SEC), "1h");
	assert_string_equal(format_duration(buf, sizeof(buf), 90 * NSEC_PER_SEC), "90s");
	assert_string_equal(format_duration(buf, sizeof(buf), 250 * NSEC_PER_MSEC), "250ms");
	assert_string_equal(format_duration(buf, sizeof(buf), 7), "7ns");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uint),
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_size),
		cmocka_unit_test(test_format_duration),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
