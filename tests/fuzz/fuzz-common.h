/* SPDX-License-Identifier: MIT */
/*
 * Shared by the segment fuzzers: loading an input as a segment into a fresh Store the way
 * profqd and the offline CLI do, and checking what the Store then holds.
 *
 * Every record carries a CRC-32, so almost every mutation of a real segment only reaches the
 * CRC check. Each input is therefore loaded twice: as it is, and with every CRC recomputed
 * along the record structure (fuzz_fix_crcs), which takes the mutations through to the
 * decoder and the loader.
 */
#pragma once

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <zlib.h>

#include "base/macro.h"
#include "fuzz-check.h"
#include "store/persist.h"

#define FUZZ_MAX_HELD 65536

/* The processes the loader reported, held as profqd holds the exited ones. */
typedef struct FuzzLoad {
	Store *store;
	uint8_t held[FUZZ_MAX_HELD];
	unsigned procs_seen;
	PersistLoadStats stats;
	SegmentParseResult res;
	int r;
} FuzzLoad;

static void fuzz_on_proc(void *userdata, ProcId id, const StoreProc *p)
{
	FuzzLoad *f = userdata;

	FUZZ_CHECK(p && store_proc(f->store, id) == p);
	FUZZ_CHECK(p->pid != 0);
	f->procs_seen++;
	if (id < FUZZ_MAX_HELD && !f->held[id]) {
		f->held[id] = 1;
		store_proc_ref(f->store, id);
	}
}

static uint32_t fuzz_get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void fuzz_put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Recomputes the header CRC and each record's CRC as far as the lengths lead. */
static void fuzz_fix_crcs(uint8_t *p, size_t len)
{
	size_t off = SEGMENT_HEADER_SIZE;

	if (len < SEGMENT_HEADER_SIZE)
		return;
	fuzz_put_u32(p + 28, (uint32_t)crc32(crc32(0L, Z_NULL, 0), p, 28));
	while (len - off >= 12) {
		uint32_t plen = fuzz_get_u32(p + off + 4);

		if (plen > len - off - 12)
			break;
		fuzz_put_u32(p + off + 8 + plen,
			     (uint32_t)crc32(crc32(0L, Z_NULL, 0), p + off, 8 + (uInt)plen));
		off += 12 + (size_t)plen;
	}
}

/* Every window closed, in time order, each entry naming what the store holds. */
static void fuzz_check_store(const Store *s)
{
	const Window *prev = NULL;

	for (size_t i = 0; i < store_window_count(s); i++) {
		const Window *w = store_window(s, i);

		FUZZ_CHECK(!w->open && w->start_ns < w->end_ns);
		FUZZ_CHECK(w->period_ns > 0 && w->period_ns <= NSEC_PER_SEC);
		FUZZ_CHECK(!prev || w->start_ns >= prev->end_ns);
		for (size_t j = 0; j < w->n_entries; j++) {
			const WindowEntry *e = &w->entries[j];
			const FrameId *frames;
			size_t n;

			FUZZ_CHECK(store_proc(s, e->proc) != NULL);
			FUZZ_CHECK(e->thread == 0 || store_string(s, e->thread) != NULL);
			frames = store_stack(s, e->stack, &n);
			FUZZ_CHECK(frames && n >= 1 && n <= STORE_STACK_MAX);
			for (size_t k = 0; k < n; k++) {
				const StoreFrame *fr = store_frame(s, frames[k]);

				FUZZ_CHECK(fr != NULL);
				FUZZ_CHECK(fr->function == 0 || store_string(s, fr->function));
				FUZZ_CHECK(fr->module == 0 || store_string(s, fr->module));
				FUZZ_CHECK(fr->file == 0 || store_string(s, fr->file));
			}
		}
		prev = w;
	}
}

/*
 * Loads buf[0..len) into f->store (a new one unless again) and checks the loader's results and
 * the store. Loading again into the same store is what a later segment does: processes it
 * defines are found and updated, overlapping windows are skipped.
 */
static void fuzz_load(FuzzLoad *f, const uint8_t *buf, size_t len, bool again)
{
	const PersistLoadCallbacks cb = { .proc = fuzz_on_proc, .userdata = f };
	PersistLoadStats before = f->stats;
	SegmentParseResult plain;

	if (!again) {
		memset(f, 0, sizeof(*f));
		FUZZ_CHECK(store_new(&f->store) == 0);
		before = f->stats;
	}
	f->r = persist_load_buffer(f->store, buf, len, INT64_MIN, &cb, &f->stats, &f->res);
	FUZZ_CHECK(f->r == 0 || f->r == -EBADMSG || f->r == -EPROTONOSUPPORT);
	FUZZ_CHECK(store_window_count(f->store) == f->stats.windows);
	if (f->r < 0) {
		FUZZ_CHECK(f->stats.windows == before.windows);
		FUZZ_CHECK(again || store_proc_count(f->store) == 0);
		return;
	}
	FUZZ_CHECK(f->res.good_bytes >= SEGMENT_HEADER_SIZE && f->res.good_bytes <= len);
	FUZZ_CHECK((f->res.tail_error == 0) == (f->res.good_bytes == len));
	FUZZ_CHECK(f->res.records <= (len - SEGMENT_HEADER_SIZE) / 12);
	/* Decoding alone (no loader checks) gets at least as far as loading. */
	FUZZ_CHECK(segment_parse(buf, len, &(SegmentVisitor){ 0 }, NULL, &plain) == 0);
	FUZZ_CHECK(plain.good_bytes >= f->res.good_bytes);
	fuzz_check_store(f->store);
}

/* Drops the windows and the processes held: nothing may be left (no reference leaked). */
static void fuzz_release(FuzzLoad *f)
{
	Store *s = f->store;

	while (store_window_count(s) > 0)
		FUZZ_CHECK(store_window_evict(s) == 0);
	for (size_t id = 0; id < FUZZ_MAX_HELD; id++)
		if (f->held[id])
			store_proc_unref(s, (ProcId)id);
	FUZZ_CHECK(store_proc_count(s) == 0);
	for (size_t id = 1; id < store_stack_id_limit(s); id++)
		FUZZ_CHECK(store_stack(s, (StackId)id, &(size_t){ 0 }) == NULL);
	for (size_t id = 1; id < store_frame_id_limit(s); id++)
		FUZZ_CHECK(store_frame(s, (FrameId)id) == NULL);
	for (size_t id = 1; id < store_string_id_limit(s); id++)
		FUZZ_CHECK(store_string(s, (StrId)id) == NULL);
	f->store = store_free(s);
}

/* Runs fn on the input as it is, then with its CRCs made right if that changes anything. */
static void fuzz_both_ways(const uint8_t *data, size_t size, void (*fn)(const uint8_t *, size_t))
{
	uint8_t *copy = malloc(size ? size : 1);

	FUZZ_CHECK(copy);
	memcpy(copy, data, size);
	fn(copy, size);
	fuzz_fix_crcs(copy, size);
	if (memcmp(copy, data, size) != 0)
		fn(copy, size);
	free(copy);
}
