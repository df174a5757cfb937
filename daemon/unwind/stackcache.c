/* SPDX-License-Identifier: MIT */
#include <xxhash.h>

#include "base/hashindex.h"
#include "base/macro.h"
#include "unwind/stackcache.h"

typedef struct Entry {
	StackKey128 key;
	StackId stack;
} Entry;

struct StackCache {
	Store *store;
	Entry *entries;
	size_t n, allocated, max;
	HashIndex *index;
	uint64_t flushes;
};

int stack_cache_new(Store *store, size_t max_entries, StackCache **ret)
{
	StackCache *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	c->store = store;
	c->max = MAX(max_entries, (size_t)16);
	r = hash_index_new(&c->index);
	if (r < 0) {
		free(c);
		return r;
	}
	*ret = c;
	return 0;
}

StackCache *stack_cache_free(StackCache *c)
{
	if (!c)
		return NULL;
	stack_cache_clear(c);
	free(c->entries);
	hash_index_free(c->index);
	free(c);
	return NULL;
}

StackKey128 stack_cache_key(uint32_t pid, uint64_t start_ns, uint32_t generation,
			    uint32_t kernel_len, const void *addrs, size_t n)
{
	const uint64_t head[3] = { (uint64_t)pid << 32 | generation, start_ns, kernel_len };
	/* The incarnation seeds the hash of the addresses. */
	XXH128_hash_t h = XXH3_128bits_withSeed(addrs, n * sizeof(uint64_t),
						XXH3_64bits(head, sizeof(head)));

	return (StackKey128){ .lo = h.low64, .hi = h.high64 };
}

static bool entry_eq(uint32_t idx, const void *key, void *userdata)
{
	const Entry *e = &((const StackCache *)userdata)->entries[idx];
	const StackKey128 *k = key;

	return e->key.lo == k->lo && e->key.hi == k->hi;
}

int stack_cache_get(StackCache *c, StackKey128 key, StackId *ret)
{
	uint32_t idx;

	if (hash_index_find(c->index, key.lo, entry_eq, &key, c, &idx) < 0)
		return -ENOENT;
	*ret = c->entries[idx].stack;
	return 0;
}

int stack_cache_put(StackCache *c, StackKey128 key, StackId stack)
{
	int r;

	if (c->n >= c->max) {
		stack_cache_clear(c);
		c->flushes++;
	}
	r = GREEDY_REALLOC(c->entries, c->allocated, c->n + 1);
	if (r < 0)
		return r;
	r = hash_index_insert(c->index, key.lo, (uint32_t)c->n);
	if (r < 0)
		return r;
	c->entries[c->n++] = (Entry){ .key = key, .stack = stack };
	return 0;
}

void stack_cache_clear(StackCache *c)
{
	for (size_t i = 0; i < c->n; i++)
		store_stack_unref(c->store, c->entries[i].stack);
	c->n = 0;
	hash_index_clear(c->index);
}

size_t stack_cache_count(const StackCache *c)
{
	return c->n;
}

size_t stack_cache_memory(const StackCache *c)
{
	return sizeof(*c) + c->allocated * sizeof(Entry) + hash_index_memory(c->index);
}

uint64_t stack_cache_flushes(const StackCache *c)
{
	return c->flushes;
}
