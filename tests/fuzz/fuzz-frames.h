/* SPDX-License-Identifier: MIT */
/* The promises of dwarf_info_lookup()'s frames, checked by the DWARF harnesses. */
#pragma once

#include <errno.h>
#include <string.h>

#include "fuzz-check.h"
#include "symbolize/dwarfinfo.h"

/* dwarfinfo.c cuts strings at 4095 bytes. */
#define FUZZ_STRING_LIMIT 4095
#define FUZZ_MAX_FRAMES 16

static inline void fuzz_check_string(const char *s)
{
	if (s)
		FUZZ_CHECK(strnlen(s, FUZZ_STRING_LIMIT + 1) <= FUZZ_STRING_LIMIT);
}

/* A lookup's answer r with frames f: at most the max asked for, strings within the cap, all
 * frames but the outermost inlined (innermost first), a line only with its file. */
static inline void fuzz_check_frames(const DwarfFrame *f, int r)
{
	FUZZ_CHECK((r >= 0 && r <= FUZZ_MAX_FRAMES) || r == -ENOMEM || r == -E2BIG ||
		   r == -EINPROGRESS);
	for (int i = 0; i < r; i++) {
		fuzz_check_string(f[i].function);
		fuzz_check_string(f[i].linkage);
		fuzz_check_string(f[i].file);
		fuzz_check_string(f[i].decl_file);
		if (i + 1 < r)
			FUZZ_CHECK(f[i].inlined);
		FUZZ_CHECK(f[i].file || f[i].line == 0);
	}
}
