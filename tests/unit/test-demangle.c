/* SPDX-License-Identifier: MIT */
/* Demangling: C++ and Rust names, PLT stubs of mangled names, and what is not mangled. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "base/macro.h"
#include "symbolize/demangle.h"

static const char *strnull(const char *s)
{
	return s ? s : "(null)";
}

static void expect(const char *sym, const char *want)
{
	_cleanup_free_ char *got = demangle(sym);

	if (!want) {
		if (got)
			fail_msg("'%s' demangled to '%s', expected it left as it is", strnull(sym),
				 got);
		return;
	}
	if (!got || !streq(got, want))
		fail_msg("'%s' demangled to '%s', expected '%s'", strnull(sym), strnull(got), want);
}

static void test_demangle(void **state)
{
	(void)state;
	expect("_ZN2fx3mixIiEET_S1_S1_", "int fx::mix<int>(int, int)");
	expect("_ZNK2fx3BoxIiE5twiceEv", "fx::Box<int>::twice() const");
	/* Legacy Rust: the hash is dropped. */
	expect("_ZN4core3fmt5write17h0123456789abcdefE", "core::fmt::write");
	/* Rust v0: the crate's disambiguator is left out. */
	expect("_RNvNtCsdjlXKrq6gMx_7mycrate3bar3baz", "mycrate::bar::baz");
	/* A PLT stub (elfsym names them NAME@plt) and a versioned name keep their suffix. */
	expect("_ZNSt6vectorIiSaIiEE9push_backERKi@plt",
	       "std::vector<int, std::allocator<int> >::push_back(int const&)@plt");
	expect("_ZdlPv@@GLIBCXX_3.4", "operator delete(void*)@@GLIBCXX_3.4");
	/* Not mangled, or not validly. */
	expect("list_contains", NULL);
	expect("PyObject_RichCompare@plt", NULL);
	expect("_init", NULL);
	expect("_Z", NULL);
	expect("_Zxyz@plt", NULL);
	expect(NULL, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_demangle),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
