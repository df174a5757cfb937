/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer: the stacks answer as the exports read it (profq(1): folded, flame, pprof). Any input
 * is an answer from a hostile daemon or state dir: it parses into a Profile whose every index and
 * count checks, or is refused with a message; a Profile that parses renders as a flame graph and as
 * a pprof profile without error.
 *
 *   fuzz-profile -max_total_time=60 CORPUS_DIR tests/fuzz/corpus/profile
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/json-util.h"
#include "base/macro.h"
#include "flame.h"
#include "export/pprof.h"
#include "export/profile.h"
#include "store/store.h"

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
	_cleanup_(json_tokener_freep)
		json_tokener *tok = json_tokener_new_ex(2 * STORE_STACK_MAX + 64);
	_cleanup_(profile_freep) Profile *p = NULL;
	_cleanup_json_ json_object *answer = NULL;
	_cleanup_free_ char *error = NULL;
	uint64_t sum = 0;
	FILE *f;
	int fd, r;

	CHECK(tok);
	answer = json_tokener_parse_ex(tok, (const char *)data, (int)MIN(size, (size_t)INT32_MAX));
	if (!answer)
		return 0;
	r = profile_from_json(answer, &p, &error);
	if (r < 0) {
		CHECK(r == -EBADMSG || r == -ENOMEM);
		CHECK(r == -ENOMEM || error);
		CHECK(!p);
		return 0;
	}
	CHECK(!error);
	for (size_t i = 0; i < p->n_stacks; i++) {
		CHECK(p->stacks[i].samples > 0 && p->stacks[i].n_frames > 0);
		for (size_t j = 0; j < p->stacks[i].n_frames; j++)
			CHECK(p->stacks[i].frames[j] < p->n_frames);
		sum += p->stacks[i].samples;
	}
	CHECK(sum + p->truncated_samples == p->samples);
	f = fopen("/dev/null", "we");
	CHECK(f);
	CHECK(flame_write_svg(p, &(FlameOptions){ .title = p->comm }, f) == 0);
	fclose(f);
	fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK(pprof_write(p, fd) == 0);
	close(fd);
	return 0;
}
