/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer: a segment file loaded into a fresh Store (segment_parse and the loader's id
 * mapping). Checks that the loader only reports what its contract allows, that the store it
 * fills is consistent, and that every reference it took goes again (fuzz-common.h).
 *
 *   fuzz-segment -max_total_time=60 CORPUS_DIR tests/fuzz/corpus/segment
 */
#include "fuzz-common.h"

static FuzzLoad load;

static void one(const uint8_t *buf, size_t len)
{
	uint64_t windows;

	fuzz_load(&load, buf, len, false);
	/* The same segment again, as if a later one: nothing new, nothing lost. */
	windows = load.stats.windows;
	fuzz_load(&load, buf, len, true);
	FUZZ_CHECK(load.stats.windows == windows);
	fuzz_release(&load);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_both_ways(data, size, one);
	return 0;
}
