/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "base/hashindex.h"
#include "base/macro.h"

/* Elements are the uint64_t keys of the array passed as userdata; idx is the array index. */
static bool key_eq(uint32_t idx, const void *key, void *userdata)
{
	const uint64_t *keys = userdata;

	return keys[idx] == *(const uint64_t *)key;
}

static int find(const HashIndex *h, uint64_t hash, uint64_t *keys, uint64_t key, uint32_t *ret)
{
	return hash_index_find(h, hash, key_eq, &key, keys, ret);
}

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ULL;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
	return x ^ (x >> 31);
}

static void test_basic(void **state)
{
	_cleanup_(hash_index_freep) HashIndex *h = NULL;
	uint64_t keys[] = { 10, 20, 30 };
	size_t empty_mem;
	uint32_t idx = 12345;

	(void)state;
	assert_int_equal(hash_index_new(&h), 0);
	empty_mem = hash_index_memory(h);
	assert_int_equal(hash_index_count(h), 0);
	assert_int_equal(find(h, 1, keys, 10, &idx), -ENOENT);
	assert_int_equal(hash_index_remove(h, 1, 0), -ENOENT);
	assert_int_equal(idx, 12345);

	assert_int_equal(hash_index_insert(h, 1, 0), 0);
	assert_int_equal(hash_index_insert(h, 2, 1), 0);
	assert_int_equal(hash_index_insert(h, 3, 2), 0);
	assert_int_equal(hash_index_count(h), 3);
	assert_true(hash_index_memory(h) > empty_mem);

	assert_int_equal(find(h, 2, keys, 20, &idx), 0);
	assert_int_equal(idx, 1);
	assert_int_equal(find(h, 3, keys, 30, &idx), 0);
	assert_int_equal(idx, 2);
	/* The right key under the wrong hash is not found, nor the wrong key under the right
	 * one. */
	assert_int_equal(find(h, 1, keys, 20, &idx), -ENOENT);
	assert_int_equal(find(h, 4, keys, 10, &idx), -ENOENT);

	/* Removal needs the exact (hash, idx) pair. */
	assert_int_equal(hash_index_remove(h, 2, 0), -ENOENT);
	assert_int_equal(hash_index_remove(h, 1, 1), -ENOENT);
	assert_int_equal(hash_index_count(h), 3);
	assert_int_equal(hash_index_remove(h, 2, 1), 0);
	assert_int_equal(hash_index_count(h), 2);
	assert_int_equal(find(h, 2, keys, 20, &idx), -ENOENT);
	assert_int_equal(hash_index_remove(h, 2, 1), -ENOENT);

	/* UINT32_MAX cannot be stored (idx + 1 would wrap to the empty marker). */
	assert_int_equal(hash_index_insert(h, 9, UINT32_MAX), -ERANGE);
	assert_int_equal(hash_index_count(h), 2);
	assert_int_equal(hash_index_insert(h, 9, UINT32_MAX - 1), 0);
	assert_int_equal(hash_index_remove(h, 9, UINT32_MAX - 1), 0);

	assert_null(hash_index_free(NULL));
}

/* Many different keys under one hash: equality decides, every one is found. */
static void test_same_hash(void **state)
{
	_cleanup_(hash_index_freep) HashIndex *h = NULL;
	uint64_t keys[200];
	uint32_t idx;

	(void)state;
	assert_int_equal(hash_index_new(&h), 0);
	for (uint32_t i = 0; i < ARRAY_SIZE(keys); i++) {
		keys[i] = 1000 + i;
		assert_int_equal(hash_index_insert(h, 0xabcdef, i), 0);
	}
	for (uint32_t i = 0; i < ARRAY_SIZE(keys); i++) {
		assert_int_equal(find(h, 0xabcdef, keys, keys[i], &idx), 0);
		assert_int_equal(idx, i);
	}
	assert_int_equal(find(h, 0xabcdef, keys, 999, &idx), -ENOENT);

	/* Remove every other one: the rest stay reachable across the holes. */
	for (uint32_t i = 0; i < ARRAY_SIZE(keys); i += 2)
		assert_int_equal(hash_index_remove(h, 0xabcdef, i), 0);
	assert_int_equal(hash_index_count(h), ARRAY_SIZE(keys) / 2);
	for (uint32_t i = 0; i < ARRAY_SIZE(keys); i++) {
		int r = find(h, 0xabcdef, keys, keys[i], &idx);

		if (i % 2 == 0) {
			assert_int_equal(r, -ENOENT);
		} else {
			assert_int_equal(r, 0);
			assert_int_equal(idx, i);
		}
	}
}

/*
 * Probe runs that mix entries of several home slots, including runs that wrap around the end
 * of the table. Removing any one entry must leave every other entry findable (backward shift
 * must not move an entry before its home, nor leave a hole in front of it).
 */
static void test_remove_in_runs(void **state)
{
	/* Home slots in a 64-slot table (the first allocation); hashes differ in the high bits. */
	static const uint64_t homes[] = { 60, 60, 61, 63, 63, 60, 0, 1, 0, 62, 2, 1, 5, 5, 4 };
	const size_t n = ARRAY_SIZE(homes);
	uint64_t keys[ARRAY_SIZE(homes)], hashes[ARRAY_SIZE(homes)];

	(void)state;
	for (size_t i = 0; i < n; i++) {
		keys[i] = 7000 + i;
		hashes[i] = (uint64_t)(i + 1) << 40 | homes[i];
	}
	/* For each entry: rebuild, remove it first, then the others in a scrambled order. */
	for (size_t victim = 0; victim < n; victim++) {
		_cleanup_(hash_index_freep) HashIndex *h = NULL, *one = NULL;
		uint32_t idx;

		assert_int_equal(hash_index_new(&h), 0);
		assert_int_equal(hash_index_new(&one), 0);
		assert_int_equal(hash_index_insert(one, 0, 0), 0);
		for (size_t i = 0; i < n; i++)
			assert_int_equal(hash_index_insert(h, hashes[i], (uint32_t)i), 0);
		/* Still the first table (64 slots), so the home slots above are what we meant. */
		assert_int_equal(hash_index_memory(h), hash_index_memory(one));
		assert_int_equal(hash_index_remove(h, hashes[victim], (uint32_t)victim), 0);
		for (size_t i = 0; i < n; i++) {
			int r = find(h, hashes[i], keys, keys[i], &idx);

			if (i == victim) {
				assert_int_equal(r, -ENOENT);
				continue;
			}
			assert_int_equal(r, 0);
			assert_int_equal(idx, i);
		}
		/* Then remove the rest one by one in a scrambled order, checking all each time. */
		for (size_t step = 0; step < n; step++) {
			size_t j = (victim + step * 7) % n;

			if (j == victim)
				continue;
			assert_int_equal(hash_index_remove(h, hashes[j], (uint32_t)j), 0);
			keys[j] += 1000000; /* mark removed */
			for (size_t i = 0; i < n; i++) {
				if (i == victim || keys[i] >= 1000000)
					continue;
				assert_int_equal(find(h, hashes[i], keys, keys[i], &idx), 0);
				assert_int_equal(idx, i);
			}
		}
		assert_int_equal(hash_index_count(h), 0);
		for (size_t i = 0; i < n; i++)
			keys[i] = 7000 + i;
	}
}

static void test_growth_and_clear(void **state)
{
	_cleanup_(hash_index_freep) HashIndex *h = NULL;
	const uint32_t n = 50000;
	_cleanup_free_ uint64_t *keys = calloc(n, sizeof(uint64_t));
	size_t mem_small, mem_big;
	uint32_t idx;

	(void)state;
	assert_non_null(keys);
	assert_int_equal(hash_index_new(&h), 0);
	assert_int_equal(hash_index_insert(h, splitmix64(0), 0), 0);
	mem_small = hash_index_memory(h);
	for (uint32_t i = 0; i < n; i++) {
		keys[i] = splitmix64(i);
		if (i > 0)
			assert_int_equal(hash_index_insert(h, keys[i], i), 0);
	}
	assert_int_equal(hash_index_count(h), n);
	mem_big = hash_index_memory(h);
	/* At most 3/4 full: at least 4/3 slots per entry, and 16 bytes per slot at the least. */
	assert_true(mem_big > mem_small);
	assert_true(mem_big >= (size_t)n * 4 / 3 * 12);
	for (uint32_t i = 0; i < n; i++) {
		assert_int_equal(find(h, keys[i], keys, keys[i], &idx), 0);
		assert_int_equal(idx, i);
	}

	hash_index_clear(h);
	assert_int_equal(hash_index_count(h), 0);
	assert_int_equal(find(h, keys[5], keys, keys[5], &idx), -ENOENT);
	assert_int_equal(hash_index_remove(h, keys[5], 5), -ENOENT);
	/* Clear keeps the table (no reallocation needed to refill it). */
	assert_int_equal(hash_index_memory(h), mem_big);
	assert_int_equal(hash_index_insert(h, keys[5], 5), 0);
	assert_int_equal(find(h, keys[5], keys, keys[5], &idx), 0);
	assert_int_equal(idx, 5);
	assert_int_equal(hash_index_count(h), 1);
}

/* A new index of n random keys (keys[i] at index i). */
static HashIndex *filled(uint64_t *keys, uint32_t n)
{
	HashIndex *h = NULL;

	assert_int_equal(hash_index_new(&h), 0);
	for (uint32_t i = 0; i < n; i++) {
		keys[i] = splitmix64(i);
		assert_int_equal(hash_index_insert(h, keys[i], i), 0);
	}
	return h;
}

/* Of the n keys, exactly the first keep are found, each at its index. */
static void expect_first(const HashIndex *h, uint64_t *keys, uint32_t n, uint32_t keep)
{
	uint32_t idx;

	for (uint32_t i = 0; i < n; i++) {
		int r = find(h, keys[i], keys, keys[i], &idx);

		assert_int_equal(r, i < keep ? 0 : -ENOENT);
		if (r == 0)
			assert_int_equal(idx, i);
	}
}

/* Cleared for fewer entries, the table shrinks to their size; refilled with that many, it
 * does not grow (so the callers' rebuilds cannot fail); cleared for more, it stays. */
static void test_clear_for(void **state)
{
	const uint32_t n = 50000, keep = 1000;
	_cleanup_free_ uint64_t *keys = calloc(n, sizeof(uint64_t));
	_cleanup_(hash_index_freep) HashIndex *h = NULL;
	size_t mem_big, mem_keep;
	uint32_t idx;

	(void)state;
	assert_non_null(keys);
	h = filled(keys, n);
	mem_big = hash_index_memory(h);
	hash_index_clear_for(h, n);
	assert_int_equal(hash_index_memory(h), mem_big);
	assert_int_equal(hash_index_count(h), 0);

	hash_index_clear_for(h, keep);
	assert_int_equal(hash_index_count(h), 0);
	assert_int_equal(find(h, keys[5], keys, keys[5], &idx), -ENOENT);
	mem_keep = hash_index_memory(h);
	assert_true(mem_keep < mem_big / 32);
	for (uint32_t i = 0; i < keep; i++)
		assert_int_equal(hash_index_insert(h, keys[i], i), 0);
	assert_int_equal(hash_index_memory(h), mem_keep);
	expect_first(h, keys, n, keep);
	/* One more than it was sized for grows it as any insert would. */
	assert_int_equal(hash_index_insert(h, keys[keep], keep), 0);
	assert_true(hash_index_memory(h) >= mem_keep);
}

/* Emptied by removals, the table gives its memory back; what stays is still found. */
static void test_shrink(void **state)
{
	const uint32_t n = 50000, keep = 100;
	_cleanup_free_ uint64_t *keys = calloc(n, sizeof(uint64_t));
	_cleanup_(hash_index_freep) HashIndex *h = NULL;
	size_t mem_big;

	(void)state;
	assert_non_null(keys);
	h = filled(keys, n);
	mem_big = hash_index_memory(h);
	for (uint32_t i = keep; i < n; i++)
		assert_int_equal(hash_index_remove(h, keys[i], i), 0);
	assert_int_equal(hash_index_count(h), keep);
	/* At most 8 slots of 16 bytes per entry left, or the smallest table. */
	assert_true(hash_index_memory(h) <= MAX((size_t)keep * 8 * 16, (size_t)64 * 16) + 64);
	assert_true(hash_index_memory(h) < mem_big / 64);
	expect_first(h, keys, n, keep);
}

/*
 * Differential test: 100k random operations against a plain array. Keys in the same group
 * (key % 97) share one full 64-bit hash, and all hashes land in few home slots, so probe runs
 * are long and collide in both the full hash and the home slot.
 */
static uint64_t group_hash(uint64_t key)
{
	return splitmix64(key % 97) & ~(uint64_t)0xf0;
}

static void test_differential(void **state)
{
	enum {
		UNIVERSE = 3000,
		OPS = 100000
	};
	_cleanup_(hash_index_freep) HashIndex *h = NULL;
	static uint64_t keys[UNIVERSE];
	static bool present[UNIVERSE];
	size_t count = 0;
	uint64_t rng = 42;

	(void)state;
	assert_int_equal(hash_index_new(&h), 0);
	for (uint32_t i = 0; i < UNIVERSE; i++) {
		keys[i] = i;
		present[i] = false;
	}
	for (int op = 0; op < OPS; op++) {
		uint32_t k, idx;
		int r;

		rng = splitmix64(rng);
		k = (uint32_t)(rng >> 8) % UNIVERSE;
		switch (rng % 3) {
		case 0:
			if (!present[k]) {
				assert_int_equal(hash_index_insert(h, group_hash(k), k), 0);
				present[k] = true;
				count++;
			}
			break;
		case 1:
			r = hash_index_remove(h, group_hash(k), k);
			assert_int_equal(r, present[k] ? 0 : -ENOENT);
			if (present[k])
				count--;
			present[k] = false;
			break;
		default:
			r = find(h, group_hash(k), keys, k, &idx);
			if (present[k]) {
				assert_int_equal(r, 0);
				assert_int_equal(idx, k);
			} else {
				assert_int_equal(r, -ENOENT);
			}
			break;
		}
		assert_int_equal(hash_index_count(h), count);
		if (op % 10000 == 9999)
			for (uint32_t i = 0; i < UNIVERSE; i++) {
				r = find(h, group_hash(i), keys, i, &idx);
				assert_int_equal(r, present[i] ? 0 : -ENOENT);
				if (r == 0)
					assert_int_equal(idx, i);
			}
	}
	assert_true(count > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),	       cmocka_unit_test(test_same_hash),
		cmocka_unit_test(test_remove_in_runs), cmocka_unit_test(test_growth_and_clear),
		cmocka_unit_test(test_shrink),	       cmocka_unit_test(test_differential),
		cmocka_unit_test(test_clear_for),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
