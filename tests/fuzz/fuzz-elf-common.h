/* SPDX-License-Identifier: MIT */
/*
 * Shared by fuzz-elfsym and fuzz-dwarf: the input, a whole ELF file, written to a file the
 * modules can open, and the addresses to look up in it: every 8-byte and 4-byte little-endian
 * word of the input that may be an address (symbol values, section and segment addresses,
 * DWARF low_pc and range entries), a byte either side of each, and a few derived from a hash
 * of the input.
 */
#pragma once

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz-check.h"

#define FUZZ_MAX_ADDRS 1024

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t fuzz_le(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* Replaces the contents of the file open at fd with the input. */
static void fuzz_write_file(int fd, const uint8_t *data, size_t size)
{
	size_t off = 0;

	FUZZ_CHECK(ftruncate(fd, 0) == 0);
	while (off < size) {
		ssize_t n = pwrite(fd, data + off, size - off, (off_t)off);

		FUZZ_CHECK(n > 0);
		off += (size_t)n;
	}
}

/*
 * Plausible addresses: little-endian values at any byte offset of the input between 0x400 and
 * 2^40 (what a small user-space ELF file names: symbol values, section addresses, DWARF
 * DW_FORM_addr values), a deterministic sample of max / 4 of them when there are more, each with
 * the byte before and after; then a few pseudo-random ones and UINT64_MAX. Returns how many.
 */
static size_t fuzz_addresses(const uint8_t *data, size_t size, uint64_t *addrs, size_t max)
{
	size_t cap = max / 4, n = 0, seen = 0;
	uint64_t h = 0xcbf29ce484222325ULL, prev = 0;

	for (size_t i = 0; i < size; i++) {
		uint64_t v = fuzz_le(data + i, size - i < 8 ? size - i : 8);

		h = (h ^ data[i]) * 0x100000001b3ULL;
		if (v < 0x400 || v >= (1ULL << 40) || v == prev)
			continue;
		prev = v;
		if (n < cap) {
			addrs[n++] = v;
		} else {
			size_t j = (size_t)((h >> 16) % (seen + 1));

			if (j < cap)
				addrs[j] = v;
		}
		seen++;
	}
	for (size_t i = 0, m = n; i < m; i++) {
		addrs[n++] = addrs[i] - 1;
		addrs[n++] = addrs[i] + 1;
	}
	for (int k = 0; k < 16 && n + 1 < max; k++) {
		h = h * 6364136223846793005ULL + 1442695040888963407ULL;
		addrs[n++] = k < 8 ? h >> 40 : h;
	}
	addrs[n++] = UINT64_MAX;
	return n;
}
