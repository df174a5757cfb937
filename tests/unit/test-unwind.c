/* SPDX-License-Identifier: MIT */
/*
 * The unwinder on a real stack: this process copies the top of its own stack inside a chain of
 * functions built without frame pointers (and called through libc's qsort), then unwinds the
 * copy with the CFI of the binaries it maps, as profqd does with a sample. The frames must be
 * the chain, through libc, down to _start, and the unwind must end as complete. Also: the copy
 * bounds the walk (a short copy ends truncated), garbage stops it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>

#include "base/macro.h"
#include "base/procfs.h"
#include "symbolize/elfsym.h"
#include "symbolize/symbolizer.h"
#include "unwind/unwind.h"

#define NOFP __attribute__((noinline, optimize("omit-frame-pointer")))

typedef struct Captured {
	UnwindInput in;
	uint8_t stack[32768];
} Captured;

static Captured cap;
static uint64_t stack_end;
static volatile int sink;

/* Copies the live stack byte by byte, as the BPF program does: not through memcpy, which
 * AddressSanitizer (rightly, for normal code) refuses across its stack redzones. */
__attribute__((no_sanitize_address)) static void copy_stack(uint8_t *dst, const uint8_t *src,
							    size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = ((const volatile uint8_t *)src)[i];
}

/* Records this function's own registers and the stack above them, like the BPF program. */
NOFP static void capture(void)
{
	uint64_t ip, sp, bp;

	__asm__ volatile("lea 0(%%rip), %0\n\tmov %%rsp, %1\n\tmov %%rbp, %2"
			 : "=r"(ip), "=r"(sp), "=r"(bp));
	cap.in.ip = ip;
	cap.in.sp = sp;
	cap.in.bp = bp;
	cap.in.stack_len = MIN(sizeof(cap.stack), (size_t)(stack_end - sp));
	copy_stack(cap.stack, (const uint8_t *)sp, cap.in.stack_len);
	cap.in.stack = cap.stack;
	sink++;
}

/* Called by qsort: the capture happens inside libc's sort, as a profiler would find it. */
NOFP static int compare(const void *a, const void *b)
{
	static bool done;

	if (!done) {
		done = true;
		capture();
	}
	return *(const int *)a - *(const int *)b;
}

NOFP static void level3(void)
{
	int v[4] = { 4, 3, 2, 1 };

	qsort(v, 4, sizeof(int), compare);
	sink += v[0];
}

NOFP static void level2(void)
{
	level3();
	sink++;
}

NOFP static void level1(void)
{
	level2();
	sink++;
}

/* The mappings and binaries of this process, for the unwinder's callback. */
typedef struct Maps {
	Store *store;
	Symbolizer *sym;
	ProcMap *maps;
	size_t n;
	Binary **binaries;
} Maps;

static const ProcMap *mapping_of(Maps *m, uint64_t addr, size_t *ret_i)
{
	for (size_t i = 0; i < m->n; i++)
		if (addr >= m->maps[i].start && addr < m->maps[i].end) {
			*ret_i = i;
			return &m->maps[i];
		}
	return NULL;
}

static Cfi *cfi_of(void *userdata, uint64_t addr, uint64_t *ret_vaddr)
{
	Maps *m = userdata;
	size_t i;
	const ProcMap *pm = mapping_of(m, addr, &i);

	if (!pm || !m->binaries[i])
		return NULL;
	return symbolizer_cfi(m->sym, m->binaries[i], pm, addr, ret_vaddr);
}

static int setup(void **state)
{
	Maps *m = calloc(1, sizeof(*m));

	assert_non_null(m);
	assert_int_equal(store_new(&m->store), 0);
	assert_int_equal(symbolizer_new(m->store, &m->sym), 0);
	symbolizer_set_cfi(m->sym, true);
	assert_int_equal(procfs_read_maps(getpid(), &m->maps, &m->n), 0);
	m->binaries = calloc(m->n, sizeof(Binary *));
	for (size_t i = 0; i < m->n; i++)
		if (m->maps[i].path && m->maps[i].path[0] == '/')
			assert_int_equal(symbolizer_binary(m->sym, getpid(), &m->maps[i],
							   &m->binaries[i]),
					 0);
	/* The end of the main thread's stack, where a copy must stop. */
	{
		_cleanup_free_ char *buf = NULL;
		size_t len;

		assert_int_equal(procfs_read_file("/proc/self/maps", 1 << 20, &buf, &len), 0);
		for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
			if (strstr(line, "[stack]"))
				assert_int_equal(
					sscanf(line, "%*x-%lx", (unsigned long *)&stack_end), 1);
	}
	assert_true(stack_end > 0);
	*state = m;
	return 0;
}

/* The function name at a (return) address, "?" if none. */
static const char *name_at(Maps *m, uint64_t addr, bool ret_addr, char *buf, size_t len)
{
	size_t i;
	const ProcMap *pm = mapping_of(m, addr - ret_addr, &i);
	FrameId f;

	snprintf(buf, len, "?");
	if (pm && m->binaries[i] &&
	    symbolizer_user_frames(m->sym, m->binaries[i], pm, addr, ret_addr, &f, 1) == 1) {
		const StoreFrame *sf = store_frame(m->store, f);
		const char *fn = store_string(m->store, sf->function);

		snprintf(buf, len, "%s", fn ? fn : "?");
	}
	return buf;
}

static void test_own_stack(void **state)
{
	Maps *m = *state;
	uint64_t out[128];
	UnwindResult res;
	char names[128][64];
	int found = 0;

	level1();
	unwind_user(&cap.in, cfi_of, m, out, ARRAY_SIZE(out), &res);
	for (size_t i = 0; i < res.n; i++) {
		name_at(m, out[i], i > 0, names[i], sizeof(names[i]));
		print_message("  %zu %#lx %s\n", i, (unsigned long)out[i], names[i]);
	}
	assert_int_equal(res.end, UNWIND_COMPLETE);
	assert_int_equal(res.fp_frames, 0);
	assert_string_equal(names[0], "capture");
	assert_string_equal(names[1], "compare");
	/* Through libc's sort (its internal function names vary) back to ours. */
	for (size_t i = 2; i < res.n; i++) {
		if (found == 0 && streq(names[i], "level3"))
			found = 1;
		else if (found == 1 && streq(names[i], "level2"))
			found = 2;
		else if (found == 2 && streq(names[i], "level1"))
			found = 3;
		else if (found == 3 && streq(names[i], "test_own_stack"))
			found = 4;
	}
	assert_int_equal(found, 4);
	assert_string_equal(names[res.n - 1], "_start");
}

/* The bytes of the copy a walk read: the copy cut there gives the same walk (a sample held for
 * later keeps only those), and one byte less does not. */
static void test_stack_used(void **state)
{
	Maps *m = *state;
	UnwindInput in = cap.in;
	uint64_t out[128], again[128];
	UnwindResult res, cut;

	unwind_user(&cap.in, cfi_of, m, out, ARRAY_SIZE(out), &res);
	assert_int_equal(res.end, UNWIND_COMPLETE);
	assert_true(res.stack_used > 0 && res.stack_used <= cap.in.stack_len);
	print_message("  %zu of %zu bytes read\n", res.stack_used, cap.in.stack_len);
	in.stack_len = res.stack_used;
	unwind_user(&in, cfi_of, m, again, ARRAY_SIZE(again), &cut);
	assert_int_equal(cut.n, res.n);
	assert_int_equal(cut.end, res.end);
	assert_int_equal(cut.stack_used, res.stack_used);
	assert_memory_equal(again, out, res.n * sizeof(uint64_t));
	in.stack_len = res.stack_used - 1;
	unwind_user(&in, cfi_of, m, again, ARRAY_SIZE(again), &cut);
	assert_int_equal(cut.end, UNWIND_TRUNCATED);
}

static void test_short_copy(void **state)
{
	Maps *m = *state;
	UnwindInput in = cap.in;
	uint64_t out[128];
	UnwindResult res;

	/* A copy too short for the chain ends as truncated, never as a wrong frame. */
	in.stack_len = 64;
	unwind_user(&in, cfi_of, m, out, ARRAY_SIZE(out), &res);
	assert_int_equal(res.end, UNWIND_TRUNCATED);
	assert_true(res.n >= 1 && res.n <= 3);
	/* The depth limit truncates too. */
	unwind_user(&cap.in, cfi_of, m, out, 3, &res);
	assert_int_equal(res.n, 3);
	assert_int_equal(res.end, UNWIND_TRUNCATED);
}

static void test_garbage(void **state)
{
	Maps *m = *state;
	uint8_t junk[4096];
	UnwindInput in = {
		.ip = 0x1234, .sp = 0x7000, .bp = 0x6000, .stack = junk, .stack_len = sizeof(junk)
	};
	uint64_t out[128];
	UnwindResult res;
	uint32_t seed = 1;

	for (size_t i = 0; i < sizeof(junk); i++) {
		seed = seed * 1103515245u + 12345u;
		junk[i] = (uint8_t)(seed >> 16);
	}
	/* An ip in no mapping and a frame pointer below the stack: stop at once. */
	unwind_user(&in, cfi_of, m, out, ARRAY_SIZE(out), &res);
	assert_int_equal(res.n, 1);
	assert_int_equal(res.end, UNWIND_STUCK);
	/* A real ip over a random stack: whatever it finds, it ends, bounded; stack pointers
	 * only grow, so it cannot loop. */
	in.ip = cap.in.ip;
	in.sp = 0x7ff000000000;
	in.bp = in.sp + 64;
	unwind_user(&in, cfi_of, m, out, ARRAY_SIZE(out), &res);
	assert_true(res.n >= 1 && res.n <= ARRAY_SIZE(out));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_own_stack),
		cmocka_unit_test(test_stack_used),
		cmocka_unit_test(test_short_copy),
		cmocka_unit_test(test_garbage),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
