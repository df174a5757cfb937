/* SPDX-License-Identifier: MIT */
/*
 * HashIndex: an open-addressing hash index from a 64-bit hash to a 32-bit element index. The
 * elements live in the caller's own array; the index only finds them. Lookups take an equality
 * callback so the caller decides what a key is (and hash collisions are resolved exactly).
 * Linear probing with backward-shift deletion: no tombstones, lookups stay short after churn.
 * The table doubles at 3/4 full and halves at 1/8 full (removals give memory back).
 * Not thread-safe.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct HashIndex HashIndex;

/* Returns true when element idx has the key. */
typedef bool (*hash_index_eq_fn)(uint32_t idx, const void *key, void *userdata);

int hash_index_new(HashIndex **ret);
HashIndex *hash_index_free(HashIndex *h);

/* Finds the element with the key: 0 and *ret_idx, or -ENOENT. */
int hash_index_find(const HashIndex *h, uint64_t hash, hash_index_eq_fn eq, const void *key,
		    void *userdata, uint32_t *ret_idx);
/* Adds idx under hash; does not check for an existing equal key. 0 or -ENOMEM. */
int hash_index_insert(HashIndex *h, uint64_t hash, uint32_t idx);
/* Removes the entry (hash, idx): 0 or -ENOENT. */
int hash_index_remove(HashIndex *h, uint64_t hash, uint32_t idx);

void hash_index_clear(HashIndex *h);
/* Removes every entry, and makes the table smaller if it is larger than n entries need (the
 * memory of a storm given back); inserting up to n entries afterwards never allocates. */
void hash_index_clear_for(HashIndex *h, size_t n);
size_t hash_index_count(const HashIndex *h);
/* Bytes of heap the index uses. */
size_t hash_index_memory(const HashIndex *h);

static inline void hash_index_freep(HashIndex **h)
{
	hash_index_free(*h);
}
