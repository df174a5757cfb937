/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer: the config file parser (profqd(8), CONFIGURATION FILE). Any text either applies or is
 * refused with a message naming the line; what applies passes validation as the daemon would check
 * it.
 *
 *   fuzz-config -max_total_time=60 CORPUS_DIR tests/fuzz/corpus/config
 */
#include <stdio.h>
#include <stdlib.h>

#include "base/log.h"
#include "base/macro.h"
#include "service/config.h"

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
	static const char *const skip[] = { "socket", NULL };
	_cleanup_free_ char *error = NULL, *verror = NULL;
	Config c;
	int r;

	CHECK(config_init(&c) == 0);
	r = config_parse_text(&c, "fuzz.conf", (const char *)data, size, skip, &error);
	if (r < 0) {
		CHECK(r != -ENOMEM ? error != NULL : true);
		/* Messages name the file and the line. */
		CHECK(!error || strncmp(error, "fuzz.conf", 9) == 0);
	} else {
		CHECK(!error);
		CHECK(c.frequency >= 1 && c.frequency <= 10000);
		(void)config_validate(&c, &verror);
	}
	config_done(&c);
	return 0;
}
