/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer: profqd's check of a compile unit's index as the DWARF worker sends it
 * (dwarf_info_take_answer(), daemon/symbolize/dwarfinfo.c). The worker parses hostile DWARF with
 * libdw, so its answer is hostile input too. The input is a CU body, taken by a DwarfInfo fed
 * by answers alone, then looked up at every 8-byte value of the input's first KiB and the
 * addresses next to them (ranges and spans are such values). Checked: an answer taken or
 * refused with an error of the documented kinds, the frames the header promises (at most max,
 * every one but the last inlined into the next, strings NUL-terminated within the module's
 * cap, a line only with its file), and the same frames when asked again.
 *
 *   fuzz-dwarfbody -max_total_time=60 CORPUS_DIR tests/fuzz/corpus/dwarfbody
 * Seeds: gen-dwarfbody ELF OUT_DIR writes the bodies of each CU of an ELF file with DWARF.
 */
#include <errno.h>
#include <string.h>

#include "base/macro.h"
#include "fuzz-frames.h"
#include "symbolize/dwarfinfo.h"

#define MAX_FRAMES FUZZ_MAX_FRAMES
#define ASKED_AT 0x1000u

static void lookup(DwarfInfo *d, uint64_t addr)
{
	DwarfFrame f[MAX_FRAMES], again[MAX_FRAMES];
	int r = dwarf_info_lookup(d, addr, f, MAX_FRAMES), r2;

	FUZZ_CHECK(r != -EINPROGRESS && r != -E2BIG);
	fuzz_check_frames(f, r);
	r2 = dwarf_info_lookup(d, addr, again, MAX_FRAMES);
	FUZZ_CHECK(r2 == r);
	for (int i = 0; i < r; i++)
		FUZZ_CHECK(again[i].function == f[i].function && again[i].file == f[i].file &&
			   again[i].line == f[i].line && again[i].inlined == f[i].inlined);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	DwarfCounters counters = { 0 };
	DwarfAnswerInfo a = { .result = 1, .body = data, .len = size };
	DwarfInfo *d = NULL;
	int r;

	FUZZ_CHECK(dwarf_info_new_detached(&counters, ASKED_AT, &d) == 0);
	r = dwarf_info_take_answer(d, &a);
	FUZZ_CHECK(r == 0 || r == -EBADMSG || r == -ENOMEM || r == -E2BIG);
	FUZZ_CHECK(!dwarf_info_building(d));
	lookup(d, ASKED_AT);
	for (size_t off = 0; off + 8 <= MIN(size, (size_t)1024); off += 8) {
		uint64_t v;

		memcpy(&v, data + off, sizeof(v));
		lookup(d, v - 1);
		lookup(d, v);
		lookup(d, v + 1);
	}
	dwarf_info_free(d);
	return 0;
}
