/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <unistd.h>
#include <time.h>
#include <cmocka.h>

#include "base/macro.h"
#include "base/procfs.h"
#include "symbolize/kallsyms.h"

/* Out of order on purpose: modules first, as /proc/kallsyms can list [bpf] late or early. */
static const char synthetic[] = "ffffffffc0002000 t other_fn\t[nf_tables]\n"
				"ffffffffc0002100 T end_marker\t[nf_tables]\n"
				"ffffffff81000000 T _stext\n"
				"ffffffff81000000 T startup_64\n"
				"ffffffff81000100 t helper\n"
				"ffffffff81000200 D some_data\n"
				"ffffffff81000300 W weak_fn\n"
				"ffffffff81000380 w weak_local\n"
				"ffffffff81000400 r rodata_sym\n"
				"ffffffff81000480 b bss_sym\n"
				"ffffffff81000500 T last_vmlinux_text\n"
				"zzzzzzzzzzzzzzzz T not_hex\n"
				"ffffffff81000600 T\n"
				"ffffffff81000600Tglued\n"
				"1ffffffff81000600 T seventeen_digits\n"
				"\n"
				"ffffffff81000700 A absolute\n"
				"ffffffffc0001000 t mod_fn_a\t[e1000e]\n"
				"ffffffffc0001100 t mod_fn_b\t[e1000e]";

static void expect(const Kallsyms *k, uint64_t addr, const char *name, const char *module)
{
	const char *n = NULL, *m = NULL;

	if (kallsyms_lookup(k, addr, &n, &m) < 0)
		fail_msg("0x%" PRIx64 " did not resolve, expected %s", addr, name);
	assert_string_equal(n, name);
	assert_string_equal(m, module);
}

static void expect_none(const Kallsyms *k, uint64_t addr)
{
	const char *n = "untouched", *m = "untouched";

	assert_int_equal(kallsyms_lookup(k, addr, &n, &m), -ENOENT);
	assert_string_equal(n, "untouched");
	assert_string_equal(m, "untouched");
}

static void test_synthetic(void **state)
{
	_cleanup_(kallsyms_freep) Kallsyms *k = NULL;
	const char *n, *m;

	(void)state;
	/* No NUL after the text: the parser must stay within len. */
	assert_int_equal(kallsyms_parse(synthetic, sizeof(synthetic) - 1, &k), 0);
	/* Text symbols only (t, T, w, W); malformed lines skipped. */
	assert_int_equal(kallsyms_count(k), 10);
	assert_true(kallsyms_memory(k) > 10 * 8);

	/* Two names at one address: either is right, the module is the kernel's. */
	assert_int_equal(kallsyms_lookup(k, 0xffffffff81000000ULL, &n, &m), 0);
	assert_true(streq(n, "_stext") || streq(n, "startup_64"));
	assert_string_equal(m, "[kernel.kallsyms]");
	expect(k, 0xffffffff810000ffULL, n, "[kernel.kallsyms]");
	expect(k, 0xffffffff81000100ULL, "helper", "[kernel.kallsyms]");
	expect(k, 0xffffffff81000150ULL, "helper", "[kernel.kallsyms]");
	/* Data symbols are not boundaries: helper runs up to weak_fn. */
	expect(k, 0xffffffff81000200ULL, "helper", "[kernel.kallsyms]");
	expect(k, 0xffffffff810002ffULL, "helper", "[kernel.kallsyms]");
	expect(k, 0xffffffff81000300ULL, "weak_fn", "[kernel.kallsyms]");
	expect(k, 0xffffffff81000390ULL, "weak_local", "[kernel.kallsyms]");
	expect(k, 0xffffffff81000500ULL, "last_vmlinux_text", "[kernel.kallsyms]");
	expect(k, 0xffffffff81000700ULL, "last_vmlinux_text", "[kernel.kallsyms]");
	expect(k, 0xffffffffc0001000ULL, "mod_fn_a", "[e1000e]");
	expect(k, 0xffffffffc00010ffULL, "mod_fn_a", "[e1000e]");
	expect(k, 0xffffffffc0001100ULL, "mod_fn_b", "[e1000e]");
	expect(k, 0xffffffffc0002000ULL, "other_fn", "[nf_tables]");
	expect(k, 0xffffffffc00020ffULL, "other_fn", "[nf_tables]");
	/* Below the first symbol, and from the last one on (no end to measure): unknown. */
	expect_none(k, 0);
	expect_none(k, 0xffffffff80ffffffULL);
	expect_none(k, 0xffffffffc0002100ULL);
	expect_none(k, UINT64_MAX);
}

/* Addresses more than 4 GiB apart (not a kernel's: a parse of any input must still hold): kept
 * whole, looked up the same. And a module whose symbols lie between the kernel's. */
static void test_wide(void **state)
{
	static const char wide[] = "0000000000001000 T low_fn\n"
				   "0000000000001100 T low_end\n"
				   "ffffffff81000000 T high_fn\n"
				   "ffffffff81000080 t in_mod\t[mod]\n"
				   "ffffffff81000100 T high_after\n"
				   "ffffffff81000200 T high_end\n";
	_cleanup_(kallsyms_freep) Kallsyms *k = NULL;

	(void)state;
	assert_int_equal(kallsyms_parse(wide, sizeof(wide) - 1, &k), 0);
	assert_int_equal(kallsyms_count(k), 6);
	expect(k, 0x1000, "low_fn", "[kernel.kallsyms]");
	expect(k, 0x10ff, "low_fn", "[kernel.kallsyms]");
	expect(k, 0xffffffff81000000ULL, "high_fn", "[kernel.kallsyms]");
	expect(k, 0xffffffff81000090ULL, "in_mod", "[mod]");
	expect(k, 0xffffffff81000100ULL, "high_after", "[kernel.kallsyms]");
	expect_none(k, 0xfff);
	expect_none(k, 0xffffffff81000200ULL);
}

static void test_restricted_and_empty(void **state)
{
	static const char zeros[] = "0000000000000000 T _stext\n"
				    "0000000000000000 t helper\n"
				    "0000000000000000 t mod_fn\t[e1000e]\n";
	static const char no_text[] = "ffffffff81000200 D some_data\nffffffff81000400 r ro\n";
	_cleanup_(kallsyms_freep) Kallsyms *k = NULL, *e = NULL, *d = NULL;
	const char *n, *m;

	(void)state;
	/* kptr_restrict: every address reads as zero. */
	assert_int_equal(kallsyms_parse(zeros, sizeof(zeros) - 1, &k), -EPERM);
	assert_null(k);
	/* No text symbols at all: an empty table that resolves nothing. */
	assert_int_equal(kallsyms_parse("", 0, &e), 0);
	assert_int_equal(kallsyms_count(e), 0);
	assert_int_equal(kallsyms_lookup(e, 0xffffffff81000000ULL, &n, &m), -ENOENT);
	assert_int_equal(kallsyms_parse(no_text, sizeof(no_text) - 1, &d), 0);
	assert_int_equal(kallsyms_count(d), 0);
	assert_int_equal(kallsyms_lookup(d, 0xffffffff81000300ULL, &n, &m), -ENOENT);
	assert_null(kallsyms_free(NULL));
	assert_int_equal(kallsyms_load("/nonexistent/kallsyms", &k), -ENOENT);
}

static void test_load_file(void **state)
{
	char path[] = "/tmp/profq-test-kallsyms-XXXXXX";
	_cleanup_(kallsyms_freep) Kallsyms *k = NULL;
	_cleanup_close_ int fd = -1;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, synthetic, sizeof(synthetic) - 1),
			 (ssize_t)(sizeof(synthetic) - 1));
	assert_int_equal(kallsyms_load(path, &k), 0);
	unlink(path);
	assert_int_equal(kallsyms_count(k), 10);
	expect(k, 0xffffffffc0001050ULL, "mod_fn_a", "[e1000e]");
}

/*
 * Splits one line of a kallsyms text at p into its fields; returns how many were read (4 with a
 * module) and advances p to the next line.
 */
static int next_line(const char **p, unsigned long long *addr, char *type, char *name, char *mod)
{
	const char *eol = strchrnul(*p, '\n');
	char line[1024];
	size_t n = MIN((size_t)(eol - *p), sizeof(line) - 1);

	memcpy(line, *p, n);
	line[n] = '\0';
	*p = *eol ? eol + 1 : eol;
	*mod = '\0';
	return sscanf(line, "%llx %c %255s %255s", addr, type, name, mod);
}

/* The names of the text symbols at addr in a kallsyms text, "|name|name|". */
static void names_at(const char *text, uint64_t addr, char *buf, size_t len)
{
	const char *p = text;
	size_t used = 1;

	snprintf(buf, len, "|");
	while (*p) {
		unsigned long long a;
		char type, name[256], mod[256];

		if (next_line(&p, &a, &type, name, mod) >= 3 && a == addr && strchr("tTwW", type) &&
		    used + strlen(name) + 2 < len)
			used += (size_t)snprintf(buf + used, len - used, "%s|", name);
	}
}

/* The real table of the running kernel (we run as root, so addresses are visible). */
static void test_real(void **state)
{
	_cleanup_(kallsyms_freep) Kallsyms *k = NULL;
	_cleanup_free_ char *text = NULL;
	unsigned long long sched = 0, mod_addr = 0, highest = 0;
	char same[4096], want[300], mod_name[256] = "";
	const char *n, *m, *p;
	size_t expected = 0;
	int r;

	(void)state;
	/* BPF programs that others load and unload come and go in /proc/kallsyms ([bpf]): compare
	 * with a text read before and after the load that saw the same. A test suite starting
	 * daemons beside this one changes it for seconds at a time: up to 30 s of tries. */
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		_cleanup_free_ char *before = NULL;

		clock_gettime(CLOCK_MONOTONIC, &t);
		assert_true(t.tv_sec - t0.tv_sec < 30);
		if (procfs_read_file("/proc/kallsyms", 256u << 20, &before, NULL) < 0) {
			skip();
			return;
		}
		k = kallsyms_free(k);
		r = kallsyms_load("/proc/kallsyms", &k);
		if (r == -EPERM || r == -EACCES || r == -ENOENT) {
			skip();
			return;
		}
		assert_int_equal(r, 0);
		text = mfree(text);
		assert_int_equal(procfs_read_file("/proc/kallsyms", 256u << 20, &text, NULL), 0);
		if (streq(before, text))
			break;
		usleep(20000);
	}

	/* Count the text symbols ourselves, and find schedule and some module function. */
	for (p = text; *p;) {
		unsigned long long a;
		char type, name[256], mod[256];
		int f = next_line(&p, &a, &type, name, mod);

		if (f >= 3 && strchr("tTwW", type)) {
			expected++;
			highest = MAX(highest, a);
			if (f == 3 && streq(name, "schedule"))
				sched = a;
			if (f == 4 && !mod_addr && mod[0] == '[' && !streq(mod, "[bpf]") &&
			    !streq(mod, "[__builtin__ftrace]")) {
				mod_addr = a;
				snprintf(mod_name, sizeof(mod_name), "%s", mod);
			}
		}
	}
	assert_int_equal(kallsyms_count(k), expected);
	assert_true(sched != 0);

	names_at(text, sched, same, sizeof(same));
	assert_non_null(strstr(same, "|schedule|"));
	/* The start of schedule and an address inside it resolve to it (or an alias of it). */
	for (int d = 0; d < 2; d++) {
		assert_int_equal(kallsyms_lookup(k, sched + (unsigned)d, &n, &m), 0);
		snprintf(want, sizeof(want), "|%s|", n);
		if (!strstr(same, want))
			fail_msg("0x%llx resolved to '%s', not one of %s", sched + (unsigned)d, n,
				 same);
		assert_string_equal(m, "[kernel.kallsyms]");
	}
	/* A module's function resolves with its module (unless it is the very last symbol). */
	if (mod_addr && mod_addr != highest) {
		assert_int_equal(kallsyms_lookup(k, mod_addr, &n, &m), 0);
		assert_string_equal(m, mod_name);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_synthetic),
		cmocka_unit_test(test_wide),
		cmocka_unit_test(test_restricted_and_empty),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_real),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
