/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer: the sideband's record parser and the mapping log it feeds. The input is a run of
 * records as the kernel writes them to a perf ring (each starts with its perf_event_header; a
 * size that does not fit ends the run); every record that parses goes into a MapLog, which is
 * then asked for the mappings of each pid seen, at times around the records', and expired.
 * The kernel is trusted to write what it documents, but a parser bug there would be as bad as
 * one on hostile input, and the paths come from user space.
 *
 *   fuzz-sideband -max_total_time=60 CORPUS_DIR tests/fuzz/corpus/sideband
 */
#include <linux/perf_event.h>
#include <string.h>

#include "base/macro.h"
#include "base/procfs.h"
#include "fuzz-check.h"
#include "process/maplog.h"
#include "process/sideband.h"

#define MAX_PIDS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	_cleanup_free_ uint8_t *copy = NULL;
	uint32_t pids[MAX_PIDS];
	uint64_t times[MAX_PIDS];
	size_t n_pids = 0, pos = 0;
	uint64_t lost = 0;
	MapLog *log = NULL;

	/* Records are 8-byte aligned in the ring: so are they here. */
	copy = malloc(size + 8);
	FUZZ_CHECK(copy);
	memcpy(copy, data, size);
	FUZZ_CHECK(maplog_new(&log) == 0);
	while (size - pos >= sizeof(struct perf_event_header)) {
		const struct perf_event_header *h = (const void *)(copy + pos);
		SidebandEvent ev;
		int r;

		if (h->size < sizeof(*h) || h->size > size - pos)
			break;
		r = sideband_parse_record(h, h->size, &ev, &lost);
		FUZZ_CHECK(r == 0 || r == 1 || r == -EBADMSG);
		if (r == 1) {
			FUZZ_CHECK(ev.type >= 0 && ev.type < _SIDEBAND_TYPE_MAX);
			if (ev.type == SIDEBAND_MMAP) {
				/* The path lies inside the record and ends there. */
				FUZZ_CHECK(ev.path);
				FUZZ_CHECK((const uint8_t *)ev.path >= copy + pos &&
					   (const uint8_t *)ev.path < copy + pos + h->size);
				FUZZ_CHECK(memchr(
					ev.path, '\0',
					(size_t)(copy + pos + h->size - (const uint8_t *)ev.path)));
			}
			maplog_event(log, &ev);
			if (n_pids < MAX_PIDS) {
				pids[n_pids] = ev.pid;
				times[n_pids++] = ev.time_ns;
			}
		}
		pos += MIN((size_t)((h->size + 7u) & ~7u), size - pos);
	}
	for (size_t i = 0; i < n_pids; i++)
		for (int d = -1; d <= 1; d++) {
			ProcMap *maps = NULL;
			uint32_t parent = 0;
			bool complete = false;
			size_t n = 0;

			if (maplog_lookup(log, pids[i], times[i] + (uint64_t)d, &maps, &n, &parent,
					  &complete) == 0) {
				for (size_t k = 1; k < n; k++)
					FUZZ_CHECK(maps[k - 1].start <= maps[k].start);
				procfs_maps_free(maps, n);
			}
			(void)maplog_count(log, pids[i], times[i]);
		}
	maplog_expire(log, n_pids ? times[0] : 0, 0);
	maplog_free(log);
	return 0;
}
