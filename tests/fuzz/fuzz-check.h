/* SPDX-License-Identifier: MIT */
/* FUZZ_CHECK(cond): an invariant of the code under test; a violation aborts, so libFuzzer keeps
 * the input as a crash. Shared by every harness. */
#pragma once

#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond)                                                                         \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                                 \
		}                                                                                \
	} while (0)
