/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "base/macro.h"
#include "unwind/stackcache.h"

static bool key_eq(StackKey128 a, StackKey128 b)
{
	return a.lo == b.lo && a.hi == b.hi;
}

/* A stack of one frame at address addr; the caller gets one reference. */
static StackId make_stack(Store *s, uint64_t addr)
{
	StoreFrame f = { .address = addr };
	FrameId frame;
	StackId id;

	assert_int_equal(store_intern_frame(s, &f, &frame), 0);
	assert_int_equal(store_intern_stack(s, &frame, 1, &id), 0);
	store_frame_unref(s, frame);
	return id;
}

static void test_keys(void **state)
{
	const uint64_t addrs[] = { 0xffffffff81000010ULL, 0x401234, 0x401300 };
	uint64_t other[3];
	StackKey128 k;

	(void)state;
	k = stack_cache_key(42, 1000, 0, 1, addrs, 3);
	assert_true(key_eq(k, stack_cache_key(42, 1000, 0, 1, addrs, 3)));
	/* Every part of the identity matters: pid, start time, generation, kernel part,
	 * addresses. */
	assert_false(key_eq(k, stack_cache_key(43, 1000, 0, 1, addrs, 3)));
	assert_false(key_eq(k, stack_cache_key(42, 1001, 0, 1, addrs, 3)));
	assert_false(key_eq(k, stack_cache_key(42, 1000, 1, 1, addrs, 3)));
	assert_false(key_eq(k, stack_cache_key(42, 1000, 0, 2, addrs, 3)));
	assert_false(key_eq(k, stack_cache_key(42, 1000, 0, 1, addrs, 2)));
	memcpy(other, addrs, sizeof(other));
	other[2]++;
	assert_false(key_eq(k, stack_cache_key(42, 1000, 0, 1, other, 3)));
	/* pid and generation are not interchangeable halves of one word. */
	assert_false(key_eq(stack_cache_key(1, 0, 2, 0, addrs, 1),
			    stack_cache_key(2, 0, 1, 0, addrs, 1)));
}

static void test_get_put(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_(stack_cache_freep) StackCache *c = NULL;
	const uint64_t addrs[] = { 1, 2 };
	StackId a, b, got = 0;
	StackKey128 ka, kb;
	size_t mem0;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	assert_int_equal(stack_cache_new(s, 100, &c), 0);
	mem0 = stack_cache_memory(c);
	a = make_stack(s, 0x10);
	b = make_stack(s, 0x20);
	ka = stack_cache_key(1, 1, 0, 0, addrs, 1);
	kb = stack_cache_key(1, 1, 0, 0, addrs, 2);
	assert_int_equal(stack_cache_get(c, ka, &got), -ENOENT);
	assert_int_equal(got, 0);
	assert_int_equal(stack_cache_put(c, ka, a), 0);
	assert_int_equal(stack_cache_put(c, kb, b), 0);
	assert_int_equal(stack_cache_count(c), 2);
	assert_true(stack_cache_memory(c) > mem0);
	assert_int_equal(stack_cache_get(c, ka, &got), 0);
	assert_int_equal(got, a);
	assert_int_equal(stack_cache_get(c, kb, &got), 0);
	assert_int_equal(got, b);

	/* The cache holds the only references: b is also held elsewhere and survives a clear. */
	store_stack_ref(s, b);
	stack_cache_clear(c);
	assert_int_equal(stack_cache_count(c), 0);
	assert_int_equal(stack_cache_get(c, ka, &got), -ENOENT);
	assert_null(store_stack(s, a, &(size_t){ 0 }));
	assert_non_null(store_stack(s, b, &(size_t){ 0 }));
	assert_int_equal(stack_cache_flushes(c), 0); /* an explicit clear is not a flush */
	store_stack_unref(s, b);
}

static void test_bounded(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_(stack_cache_freep) StackCache *c = NULL;
	StackId ids[17], got;
	uint64_t addr;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	/* Asking for fewer than 16 entries still gives 16. */
	assert_int_equal(stack_cache_new(s, 2, &c), 0);
	for (int i = 0; i < 17; i++) {
		addr = 0x1000 + (uint64_t)i;
		ids[i] = make_stack(s, addr);
		assert_int_equal(stack_cache_put(c, stack_cache_key(7, 7, 0, 0, &addr, 1), ids[i]),
				 0);
		assert_int_equal(stack_cache_count(c), i < 16 ? (size_t)i + 1 : 1);
	}
	/* Full at 16: the 17th emptied it first, releasing what it held. */
	assert_int_equal(stack_cache_flushes(c), 1);
	for (int i = 0; i < 16; i++)
		assert_null(store_stack(s, ids[i], &(size_t){ 0 }));
	addr = 0x1000 + 16;
	assert_int_equal(stack_cache_get(c, stack_cache_key(7, 7, 0, 0, &addr, 1), &got), 0);
	assert_int_equal(got, ids[16]);
	addr = 0x1000;
	assert_int_equal(stack_cache_get(c, stack_cache_key(7, 7, 0, 0, &addr, 1), &got), -ENOENT);
}

static void test_free_releases(void **state)
{
	_cleanup_(store_freep) Store *s = NULL;
	StackCache *c = NULL;
	const uint64_t addr = 5;
	StackId a;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	assert_int_equal(stack_cache_new(s, 16, &c), 0);
	a = make_stack(s, 0x99);
	assert_int_equal(stack_cache_put(c, stack_cache_key(1, 2, 3, 0, &addr, 1), a), 0);
	assert_null(stack_cache_free(c));
	assert_null(store_stack(s, a, &(size_t){ 0 }));
	assert_null(stack_cache_free(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_get_put),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_free_releases),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
