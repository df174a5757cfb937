/* SPDX-License-Identifier: MIT */
#include "base/hashindex.h"
#include "base/macro.h"

/* idx1 == 0 marks an empty slot; stored indices are idx + 1. */
typedef struct Slot {
	uint64_t hash;
	uint32_t idx1;
} Slot;

#define MIN_CAPACITY 64

struct HashIndex {
	Slot *slots;
	size_t mask; /* capacity - 1; capacity is a power of two or 0 */
	size_t count;
};

int hash_index_new(HashIndex **ret)
{
	HashIndex *h = calloc(1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	*ret = h;
	return 0;
}

HashIndex *hash_index_free(HashIndex *h)
{
	if (!h)
		return NULL;
	free(h->slots);
	free(h);
	return NULL;
}

static size_t capacity(const HashIndex *h)
{
	return h->slots ? h->mask + 1 : 0;
}

int hash_index_find(const HashIndex *h, uint64_t hash, hash_index_eq_fn eq, const void *key,
		    void *userdata, uint32_t *ret_idx)
{
	if (h->count == 0)
		return -ENOENT;
	for (size_t i = hash & h->mask;; i = (i + 1) & h->mask) {
		const Slot *s = &h->slots[i];

		if (s->idx1 == 0)
			return -ENOENT;
		if (s->hash == hash && eq(s->idx1 - 1, key, userdata)) {
			*ret_idx = s->idx1 - 1;
			return 0;
		}
	}
}

static void place(Slot *slots, size_t mask, uint64_t hash, uint32_t idx1)
{
	size_t i = hash & mask;

	while (slots[i].idx1 != 0)
		i = (i + 1) & mask;
	slots[i] = (Slot){ .hash = hash, .idx1 = idx1 };
}

/* Moves the members to a table of n slots (a power of two above the count). */
static int resize(HashIndex *h, size_t n)
{
	size_t old = capacity(h);
	Slot *slots;

	if (n > SIZE_MAX / sizeof(Slot))
		return -ENOMEM;
	slots = calloc(n, sizeof(Slot));
	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < old; i++)
		if (h->slots[i].idx1 != 0)
			place(slots, n - 1, h->slots[i].hash, h->slots[i].idx1);
	free(h->slots);
	h->slots = slots;
	h->mask = n - 1;
	return 0;
}

int hash_index_insert(HashIndex *h, uint64_t hash, uint32_t idx)
{
	int r;

	if (idx == UINT32_MAX)
		return -ERANGE;
	/* Keep the load factor at or below 3/4. */
	if ((h->count + 1) * 4 > capacity(h) * 3) {
		r = resize(h, capacity(h) ? capacity(h) * 2 : MIN_CAPACITY);
		if (r < 0)
			return r;
	}
	place(h->slots, h->mask, hash, idx + 1);
	h->count++;
	return 0;
}

int hash_index_remove(HashIndex *h, uint64_t hash, uint32_t idx)
{
	size_t i, j;

	if (h->count == 0)
		return -ENOENT;
	for (i = hash & h->mask;; i = (i + 1) & h->mask) {
		if (h->slots[i].idx1 == 0)
			return -ENOENT;
		if (h->slots[i].hash == hash && h->slots[i].idx1 == idx + 1)
			break;
	}
	/* Backward-shift: pull later members of the probe run into the hole. */
	for (j = (i + 1) & h->mask; h->slots[j].idx1 != 0; j = (j + 1) & h->mask) {
		size_t home = h->slots[j].hash & h->mask;

		/* Move j to i unless its home lies cyclically in (i, j]. */
		if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) {
			h->slots[i] = h->slots[j];
			i = j;
		}
	}
	h->slots[i].idx1 = 0;
	h->count--;
	/* Give memory back once an eighth full (then a quarter: far from growing again). Failing
	 * that, the table stays as it is. */
	if (capacity(h) > MIN_CAPACITY && h->count * 8 < capacity(h))
		(void)resize(h, capacity(h) / 2);
	return 0;
}

void hash_index_clear(HashIndex *h)
{
	if (h->slots)
		memset(h->slots, 0, capacity(h) * sizeof(Slot));
	h->count = 0;
}

void hash_index_clear_for(HashIndex *h, size_t n)
{
	size_t want = MIN_CAPACITY;
	Slot *slots;

	while (want < SIZE_MAX / 8 && n * 4 > want * 3)
		want *= 2;
	if (want < capacity(h) && (slots = calloc(want, sizeof(Slot)))) {
		free(h->slots);
		h->slots = slots;
		h->mask = want - 1;
		h->count = 0;
		return;
	}
	hash_index_clear(h);
}

size_t hash_index_count(const HashIndex *h)
{
	return h->count;
}

size_t hash_index_memory(const HashIndex *h)
{
	return sizeof(*h) + capacity(h) * sizeof(Slot);
}
