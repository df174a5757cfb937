/* SPDX-License-Identifier: MIT */
/*
 * Segment: the on-disk format of profile windows (profqd(8), PERSISTENCE). A segment file is a
 * header followed by records; every record carries its own CRC32, so a torn or corrupt tail is
 * detected and the records before it still load. Within a segment, objects (strings, frames,
 * stacks, processes) are defined by a record before the first record that uses them, under
 * segment-local ids; a segment never refers to another, so whole segments can be deleted.
 *
 *   header:  "PROFQSEG" | u32 version | u32 header size (32) | i64 created (realtime ns) |
 *            u32 flags (0) | u32 crc32 of the preceding 28 bytes
 *   record:  u32 type | u32 payload length | payload | u32 crc32 of type, length and payload
 *   window:  head | entries | (version 5+) u32 n_mem | n_mem memory points
 *
 * All integers little-endian. This module encodes and decodes buffers only (no files); the
 * decoder treats its input as hostile. Thread-safe.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define SEGMENT_MAGIC "PROFQSEG"
/* 3: processes carry PROC_PRIVATE. Version 2 still loads: its processes are judged by their
 * uid alone, as profqd of that version did. 4: frames carry FRAME_PYTHON and
 * FRAME_PYTHON_EVAL (an older reader refuses the segment as a later version, rather than as
 * damage at its first Python frame). 5: processes carry their cgroup, unit, slice and
 * container (a longer process record); window entries carry a kind and a weight (off-CPU
 * time) and windows their count of such records; a window's record ends with its memory
 * points. Version 4's records still load: processes without labels, entries all CPU samples,
 * windows without memory points. 6: entries may be of KIND_FAULTS (bytes); the layout is
 * version 5's, which still loads (an older reader refuses a version 6 segment as a later
 * version, rather than as damage at its first fault entry). */
#define SEGMENT_VERSION 6
#define SEGMENT_VERSION_OLDEST 2
#define SEGMENT_HEADER_SIZE 32
#define SEGMENT_MAX_RECORD (64u << 20)
#define SEGMENT_MAX_STRING 65536
/* Segment-local ids are below this. */
#define SEGMENT_MAX_ID (1u << 28)

typedef enum SegmentRecordType {
	SEGMENT_STRING = 1,
	SEGMENT_FRAME = 2,
	SEGMENT_STACK = 3,
	SEGMENT_PROC = 4,
	SEGMENT_WINDOW = 5,
} SegmentRecordType;

/* A process as stored: the StoreProc with its strings as segment-local ids. */
typedef struct SegmentProc {
	uint32_t id;
	StoreProc p; /* its strings (store_proc_strings()): segment-local string ids */
} SegmentProc;

typedef struct SegmentWindow {
	int64_t start_ns, end_ns;
	uint64_t period_ns;
	uint64_t samples, idle, lost;
	uint64_t records; /* of kinds other than KIND_CPU (version 5) */
	size_t n_entries;
	size_t entry_size;	/* bytes per encoded entry: by the segment's version */
	const uint8_t *entries; /* n_entries encoded entries; decode with segment_window_entry() */
	size_t n_mem;
	const uint8_t *mem; /* n_mem encoded memory points; decode with segment_window_mem() */
} SegmentWindow;

/* Growable output buffer. */
typedef struct SegmentBuf {
	uint8_t *data;
	size_t len, allocated;
	int error; /* first allocation failure; later appends are dropped */
} SegmentBuf;

void segment_buf_done(SegmentBuf *b);

/* Encoders: append one complete record (or the header) to b. Ids are segment-local. */
void segment_put_header(SegmentBuf *b, int64_t created_ns);
void segment_put_string(SegmentBuf *b, uint32_t id, const char *s);
void segment_put_frame(SegmentBuf *b, uint32_t id, const StoreFrame *f);
void segment_put_stack(SegmentBuf *b, uint32_t id, const uint32_t *frames, size_t n);
void segment_put_proc(SegmentBuf *b, const SegmentProc *p);
/* entries: the window's entries with proc/stack/thread already mapped to segment-local ids;
 * mem: its w->n_mem memory points likewise (NULL when there are none). */
void segment_put_window(SegmentBuf *b, const Window *w, const WindowEntry *entries,
			const MemPoint *mem);

/* Callbacks of the decoder. A negative return stops decoding: the record counts as corrupt. */
typedef struct SegmentVisitor {
	int (*string)(void *userdata, uint32_t id, const char *s, size_t len);
	int (*frame)(void *userdata, uint32_t id, const StoreFrame *f);
	int (*stack)(void *userdata, uint32_t id, const uint32_t *frames, size_t n);
	int (*proc)(void *userdata, const SegmentProc *p);
	int (*window)(void *userdata, const SegmentWindow *w);
} SegmentVisitor;

typedef struct SegmentParseResult {
	uint32_t version; /* the file's format version (also set for -EPROTONOSUPPORT) */
	int64_t created_ns;
	size_t records;	   /* records decoded and accepted */
	size_t good_bytes; /* prefix of the input that decoded cleanly */
	int tail_error;	   /* 0, or why decoding stopped before the end (-EBADMSG, -EPROTO...) */
} SegmentParseResult;

/*
 * Decodes a segment. -EPROTONOSUPPORT for a format version outside
 * [SEGMENT_VERSION_OLDEST, SEGMENT_VERSION], -EBADMSG for a bad header;
 * otherwise 0, having visited every record up to the first corrupt one (then ret->tail_error).
 * A string passed to the visitor is NUL-free and len bytes long (not terminated).
 */
int segment_parse(const uint8_t *buf, size_t len, const SegmentVisitor *v, void *userdata,
		  SegmentParseResult *ret);

/* The i-th entry of a decoded window. */
void segment_window_entry(const SegmentWindow *w, size_t i, WindowEntry *ret);
/* The i-th memory point of a decoded window (proc: a segment-local id; checked: flags known,
 * times not negative). */
void segment_window_mem(const SegmentWindow *w, size_t i, MemPoint *ret);
