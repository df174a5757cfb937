/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "base/macro.h"
#include "base/text.h"
#include "store/store.h"

static void expect_escape(const char *in, size_t len, const char *want)
{
	_cleanup_free_ char *out = NULL;

	assert_int_equal(text_escape(in, len, &out), 0);
	assert_string_equal(out, want);
	assert_true(text_is_clean(out, strlen(out)));
	/* Clean input is copied unchanged, and said to be clean. */
	assert_int_equal(text_is_clean(in, len), strlen(want) == len && memcmp(in, want, len) == 0);
}

static void test_escape(void **state)
{
	(void)state;
	expect_escape("plain_name", 10, "plain_name");
	expect_escape("a\\xff", 5, "a\\xff"); /* a backslash is kept as it is */
	expect_escape("bad\xff\xfename", 9, "bad\\xff\\xfename");
	expect_escape("\x1b[2Jx\x7f", 6, "\\x1b[2Jx\\x7f");
	expect_escape("tab\there\nnl", 11, "tab\\x09here\\x0anl");
	expect_escape("nul\0in", 6, "nul\\x00in");
	/* Valid UTF-8 of every length is kept. */
	expect_escape("\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\xa5", 14,
		      "\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\xa5");
	/* Overlong forms, surrogates, beyond U+10FFFF, lone continuation, truncated sequences. */
	expect_escape("\xc0\xaf", 2, "\\xc0\\xaf");
	expect_escape("\xe0\x80\xaf", 3, "\\xe0\\x80\\xaf");
	expect_escape("\xed\xa0\x80", 3, "\\xed\\xa0\\x80");
	expect_escape("\xf4\x90\x80\x80", 4, "\\xf4\\x90\\x80\\x80");
	expect_escape("\x80x", 2, "\\x80x");
	expect_escape("a\xe2\x82", 3, "a\\xe2\\x82");
	expect_escape("", 0, "");
}

/* Every byte of every input comes out as valid UTF-8 without control bytes. */
static void test_escape_all_pairs(void **state)
{
	(void)state;
	for (unsigned a = 0; a < 256; a++)
		for (unsigned b = 0; b < 256; b++) {
			char in[3] = { (char)a, (char)b, (char)0xa9 };
			_cleanup_free_ char *out = NULL;

			assert_int_equal(text_escape(in, sizeof(in), &out), 0);
			assert_true(text_is_clean(out, strlen(out)));
		}
}

/* The store keeps names as answers show them: interning escapes, and equal results are one. */
static void test_store_interns_escaped(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	StrId a, b, c;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	assert_int_equal(store_intern_string(s, "bad\xff\xfename", &a), 0);
	assert_string_equal(store_string(s, a), "bad\\xff\\xfename");
	assert_int_equal(store_intern_string(s, "bad\\xff\\xfename", &b), 0);
	assert_int_equal(a, b);
	assert_int_equal(store_intern_string(s, "caf\xc3\xa9", &c), 0);
	assert_string_equal(store_string(s, c), "caf\xc3\xa9");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_escape_all_pairs),
		cmocka_unit_test(test_store_interns_escaped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
