/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdlib.h>
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

#define E TEXT_ELLIPSIS

static void expect_short(const char *in, const char *want)
{
	char buf[512];

	assert_string_equal(text_shorten_name(in, buf, sizeof(buf)), want);
}

static void test_shorten_name(void **state)
{
	(void)state;
	expect_short("std::vector<int, std::allocator<int> >::push_back(int const&)",
		     "std::vector<" E ">::push_back(" E ")");
	/* Nested lists, a list after a list, and what follows the parameters. */
	expect_short("std::_Rb_tree<K, std::pair<K const, V>, std::_Select1st<std::pair<K const, "
		     "V> >, std::less<K> >::find(K const&) const",
		     "std::_Rb_tree<" E ">::find(" E ") const");
	expect_short("void foo<int>(int)", "void foo<" E ">(" E ")");
	expect_short("ns::f() [clone .cold]", "ns::f() [clone .cold]");
	expect_short("std::less<>::operator()", "std::less<>::operator()");
	/* Operators keep their symbols; their parameters go. */
	expect_short("bool operator<(A const&, A const&)", "bool operator<(" E ")");
	expect_short("ns::A::operator<<=(int)", "ns::A::operator<<=(" E ")");
	expect_short("ns::A::operator()(int, char) const", "ns::A::operator()(" E ") const");
	expect_short("ns::A::operator[](unsigned long)", "ns::A::operator[](" E ")");
	expect_short("ns::It::operator->() const", "ns::It::operator->() const");
	expect_short("ns::A::operator bool() const", "ns::A::operator bool() const");
	expect_short("std::function<void (int)>::operator()(int) const",
		     "std::function<" E ">::operator()(" E ") const");
	/* Lambdas, anonymous namespaces. */
	expect_short("main::{lambda(int)#1}::operator()(int) const",
		     "main::{lambda(" E ")#1}::operator()(" E ") const");
	expect_short("(anonymous namespace)::worker(Job*)", "(anonymous namespace)::worker(" E ")");
	expect_short("f(std::function<int (int)>, std::map<int, int>)", "f(" E ")");
	/* Not C++: kept. */
	expect_short("<module>", "<module>");
	expect_short("main.(*Server).handle", "main.(*Server).handle");
	expect_short("_PyEval_EvalFrameDefault", "_PyEval_EvalFrameDefault");
	expect_short("[unknown]", "[unknown]");
	expect_short("", "");
	/* Unbalanced or mismatched: the rest as it is. */
	expect_short("a<b(c)", "a<b(c)");
	expect_short("f(int", "f(int");
	expect_short("g<int)>", "g<int)>");
	expect_short("x<y>>z(w)", "x<" E ">>z(" E ")");
	expect_short("))((<<>>", "))((<<>>");
}

/* Long and hostile names: bounded output, valid cuts, work linear in the length. */
static void test_shorten_hostile(void **state)
{
	size_t n = 1 << 20;
	_cleanup_free_ char *in = malloc(n + 1);
	char small[8], buf[256];

	(void)state;
	assert_non_null(in);
	/* Deeper than the nesting limit: copied as it is, as far as it fits. */
	memset(in, '<', n);
	in[0] = 'a';
	in[n] = '\0';
	assert_int_equal(strlen(text_shorten_name(in, buf, sizeof(buf))), sizeof(buf) - 1);
	/* A million openers without a match: each one fails once, not once per opener. */
	for (size_t i = 0; i < n; i++)
		in[i] = i % 2 ? '(' : 'f';
	assert_int_equal(strlen(text_shorten_name(in, buf, sizeof(buf))), sizeof(buf) - 1);
	/* Balanced and long: shortened whole. */
	memset(in, 'x', n);
	in[1] = '<';
	in[n - 1] = '>';
	assert_string_equal(text_shorten_name(in, buf, sizeof(buf)), "x<" E ">");
	/* A cut never splits a character: "…" needs three bytes. */
	assert_string_equal(text_shorten_name("ab<c>", small, 6), "ab<");
	assert_string_equal(text_shorten_name("caf\xc3\xa9\xc3\xa9", small, 6), "caf\xc3\xa9");
	assert_string_equal(text_shorten_name("x", small, 1), "");
}

static void test_fit(void **state)
{
	char buf[64], small[4];

	(void)state;
	assert_string_equal(text_fit("_PyUnicode_ToDecimalDigit", 24, buf, sizeof(buf)),
			    "_PyUnicode_ToDecimalDig" E);
	assert_string_equal(text_fit("_PyUnicode_ToDecimalDigit", 25, buf, sizeof(buf)),
			    "_PyUnicode_ToDecimalDigit");
	assert_string_equal(text_fit("abc", 1, buf, sizeof(buf)), E);
	assert_string_equal(text_fit("a", 1, buf, sizeof(buf)), "a");
	assert_string_equal(text_fit("abc", 0, buf, sizeof(buf)), "");
	/* Characters count, not bytes. */
	assert_string_equal(text_fit("\xc3\xa9\xc3\xa9\xc3\xa9x", 3, buf, sizeof(buf)),
			    "\xc3\xa9\xc3\xa9" E);
	assert_int_equal(text_columns("\xc3\xa9\xe2\x82\xac\xf0\x9f\x94\xa5x"), 4);
	assert_int_equal(text_columns("a\xff"), 2);
	assert_string_equal(text_fit("abcdef", 5, small, sizeof(small)), "abc");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_escape_all_pairs),
		cmocka_unit_test(test_store_interns_escaped),
		cmocka_unit_test(test_shorten_name),
		cmocka_unit_test(test_shorten_hostile),
		cmocka_unit_test(test_fit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
