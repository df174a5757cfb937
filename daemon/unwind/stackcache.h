/* SPDX-License-Identifier: MIT */
/*
 * StackCache: from a raw sampled stack (the addresses as the BPF program read them, in one
 * process incarnation and address-space generation) to its interned, symbolized StackId, so a
 * stack seen before costs one hash instead of a symbolization. The key is a 128-bit XXH3 hash of
 * the incarnation, generation and addresses; at 2^-128 per pair a collision is not a practical
 * concern, unlike the bucket-indexed BPF stack maps. Entries hold a reference on their stack.
 * Bounded: when full, the cache is emptied (what is hot refills at once). Not thread-safe.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

typedef struct StackCache StackCache;

typedef struct StackKey128 {
	uint64_t lo, hi;
} StackKey128;

int stack_cache_new(Store *store, size_t max_entries, StackCache **ret);
StackCache *stack_cache_free(StackCache *c);

StackKey128 stack_cache_key(uint32_t pid, uint64_t start_ns, uint32_t generation,
			    uint32_t kernel_len, const void *addrs, size_t n);
/* 0 and the stack (borrowed: valid while cached), or -ENOENT. */
int stack_cache_get(StackCache *c, StackKey128 key, StackId *ret);
/* Caches key -> stack, taking over the caller's reference on stack. */
int stack_cache_put(StackCache *c, StackKey128 key, StackId stack);
void stack_cache_clear(StackCache *c);
size_t stack_cache_count(const StackCache *c);
size_t stack_cache_memory(const StackCache *c);
uint64_t stack_cache_flushes(const StackCache *c);

static inline void stack_cache_freep(StackCache **c)
{
	stack_cache_free(*c);
}
