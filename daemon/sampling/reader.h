/* SPDX-License-Identifier: MIT */
/*
 * Reader: a thread that moves records out of the kernel's rings (BPF samples and exec/exit
 * events, the sideband's perf rings) into a bounded queue in userspace, so that the main loop
 * may be busy for seconds (indexing a large binary's DWARF, say) without the kernel rings
 * filling up. The main loop takes the queued records at its own pace.
 *
 * The thread wakes every period_ns and calls the owner's read function, which drains the
 * kernel rings and hands each record to reader_push(). The read function runs in the reader's
 * thread, or in the caller's for reader_read_now(), always with the reader's lock held: it must
 * touch nothing but the rings it reads (the profiler, the Store and libdw are not thread-safe).
 * Passes never overlap, and reader_take() never cuts one in half: a batch holds whole passes.
 *
 * The queue is bounded: a sample that does not fit in max_bytes is dropped, and exec/exit events
 * and sideband records (rare, small, and needed to read the samples) may go an eighth over it;
 * every record dropped is counted by source (reader_stats()), never silently. A few handled
 * chunks are kept for reuse (counted in the bytes).
 *
 * Thread-safety: reader_push() only from the read function; everything else from the owner's
 * thread.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct Reader Reader;
typedef struct ReaderChunk ReaderChunk;

typedef enum ReaderSource {
	READER_SIDEBAND,
	READER_EVENT,
	READER_SAMPLE,
	_READER_SOURCE_MAX,
} ReaderSource;

/* Moves what the kernel rings hold into the queue (reader_push()). */
typedef void (*reader_read_fn)(void *userdata, Reader *r);
/* Gets each queued record, oldest first; the data stays valid during the call. */
typedef void (*reader_record_fn)(void *userdata, const void *data, size_t size);

typedef struct ReaderOptions {
	reader_read_fn read;
	void *userdata;
	uint64_t period_ns; /* how often the thread reads */
	size_t max_bytes;   /* queue bound (chunks allocated, headers included) */
} ReaderOptions;

typedef struct ReaderStats {
	uint64_t dropped[_READER_SOURCE_MAX]; /* records that did not fit */
	uint64_t shed[_READER_SOURCE_MAX];    /* low-priority records refused (reader_push_low()) */
	uint64_t passes;		      /* read function calls */
	size_t bytes;			      /* queued now, taken batches included until freed */
	size_t spare_bytes;		      /* ... of which empty chunks kept for reuse */
	size_t peak_bytes;
	size_t max_bytes;
} ReaderStats;

/* Records taken out of the queue, one list per source; owned by the caller. */
typedef struct ReaderBatch {
	Reader *reader;
	ReaderChunk *chunks[_READER_SOURCE_MAX];
} ReaderBatch;

/* Does not start the thread. */
int reader_new(const ReaderOptions *opts, Reader **ret);
/* Stops the thread (reader_stop()) and frees what is still queued. */
Reader *reader_free(Reader *r);

int reader_start(Reader *r);
/* Ends the thread and waits for it; what it read stays queued. Idempotent. */
void reader_stop(Reader *r);
/* One pass of the read function in the calling thread, now (between the thread's passes). */
void reader_read_now(Reader *r);

/* From the read function: queues a copy of the record, or drops and counts it (-ENOBUFS). */
int reader_push(Reader *r, ReaderSource src, const void *data, size_t size);

/* The same for a record that may go first: refused (and counted in shed) once the queue holds
 * quarters/4 of max_bytes, so that it never crowds out the records pushed with reader_push(). */
int reader_push_low(Reader *r, ReaderSource src, const void *data, size_t size, unsigned quarters);
/* The same with the bound in bytes: refused once the queue holds more than limit bytes. */
int reader_push_below(Reader *r, ReaderSource src, const void *data, size_t size, size_t limit);
/* The queue's bound (ReaderOptions.max_bytes). */
size_t reader_max_bytes(const Reader *r);
/* Takes every queued record of the sources in mask (bits 1 << ReaderSource). */
void reader_take(Reader *r, unsigned mask, ReaderBatch *ret);
void reader_batch_each(const ReaderBatch *b, ReaderSource src, reader_record_fn fn, void *userdata);
void reader_batch_free(ReaderBatch *b);

void reader_stats(Reader *r, ReaderStats *ret);

static inline void reader_freep(Reader **r)
{
	reader_free(*r);
}
