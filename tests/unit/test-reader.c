/* SPDX-License-Identifier: MIT */
/* Reader: the bounds low-priority records are refused at (no thread started; the queue counts
 * its bytes by chunks of 256 KiB). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "base/macro.h"
#include "sampling/reader.h"

static void read_nothing(void *userdata, Reader *r)
{
	(void)userdata;
	(void)r;
}

/* reader_push_below() refuses once the queue holds more than its limit, and counts it in shed;
 * the records under the limit, and those of a higher bound, still go in. */
static void test_push_below(void **state)
{
	_cleanup_(reader_freep) Reader *r = NULL;
	ReaderOptions o = { .read = read_nothing, .period_ns = 1000000, .max_bytes = 16 << 20 };
	char rec[1000];
	ReaderStats st;
	size_t limit = 1 << 20, pushed = 0;

	(void)state;
	memset(rec, 7, sizeof(rec));
	assert_int_equal(reader_new(&o, &r), 0);
	assert_int_equal(reader_max_bytes(r), 16 << 20);
	for (;;) {
		reader_stats(r, &st);
		if (st.bytes > limit)
			break;
		assert_int_equal(reader_push_below(r, READER_SAMPLE, rec, sizeof(rec), limit), 0);
		assert_true(++pushed < 100000);
	}
	assert_true(pushed >= limit / sizeof(rec) / 2);
	assert_int_equal(reader_push_below(r, READER_SAMPLE, rec, sizeof(rec), limit), -ENOBUFS);
	reader_stats(r, &st);
	assert_int_equal(st.shed[READER_SAMPLE], 1);
	/* A quarter of the bound is 4 MiB: more room than the limit above. */
	assert_int_equal(reader_push_low(r, READER_SAMPLE, rec, sizeof(rec), 1), 0);
	assert_int_equal(reader_push_below(r, _READER_SOURCE_MAX, rec, sizeof(rec), limit),
			 -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_push_below),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
