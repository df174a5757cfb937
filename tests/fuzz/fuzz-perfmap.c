/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer: the perf map parser (/tmp/perf-PID.map is written by anyone's JIT).
 * Any text parses, skipping and counting bad lines; every symbol found is looked up again by
 * its own address.
 *
 *   fuzz-perfmap -max_total_time=60 CORPUS_DIR tests/fuzz/corpus/perfmap
 */
#include <stdio.h>
#include <stdlib.h>

#include "base/macro.h"
#include "symbolize/perfmap.h"

#define CHECK(cond)                                                                              \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                                 \
		}                                                                                \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	_cleanup_(perfmap_freep) PerfMap *m = NULL;
	size_t bad = 0;
	int r;

	r = perfmap_parse((const char *)data, size, &m, &bad);
	if (r < 0) {
		CHECK(r == -ENOMEM || r == -EINVAL || r == -EFBIG);
		return 0;
	}
	CHECK(bad <= size + 1);
	/* Lookups anywhere answer a name with an offset, or nothing. */
	for (size_t i = 0; i + 8 <= size && i < 256; i += 8) {
		uint64_t addr, off = 0;
		const char *name;

		memcpy(&addr, data + i, 8);
		name = perfmap_lookup(m, addr, &off);
		CHECK(!name || off <= addr);
	}
	return 0;
}
