/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/macro.h"
#include "sampling/reader.h"

/* Records are packed back to back in chunks of this size (a larger record gets its own). */
#define CHUNK_BYTES (256u << 10)
/* Chunks kept for reuse once handled, at most this many and an eighth of the bound: a new chunk
 * costs a page fault per page written, which was most of the reader's CPU (docs/PERFORMANCE.md,
 * "Reader thread"). A few ticks' worth at 999 Hz on 2 CPUs with 16 KiB stack copies. */
#define SPARE_CHUNKS 32

struct ReaderChunk {
	ReaderChunk *next;
	size_t size, used; /* bytes of data */
	uint64_t data[];   /* records: a uint64_t length, then the record, padded to 8 bytes */
};

typedef struct Queue {
	ReaderChunk *head, *tail;
} Queue;

struct Reader {
	ReaderOptions opts;
	pthread_mutex_t lock; /* everything below, and the passes of the read function */
	pthread_cond_t wake;
	pthread_t thread;
	bool running, stop;
	Queue queue[_READER_SOURCE_MAX];
	ReaderChunk *spare; /* CHUNK_BYTES each, counted in stats.bytes */
	unsigned n_spare, max_spare;
	ReaderStats stats;
};

static void chunks_free(ReaderChunk *c)
{
	while (c) {
		ReaderChunk *next = c->next;

		free(c);
		c = next;
	}
}

static size_t chunk_cost(const ReaderChunk *c)
{
	return sizeof(*c) + c->size;
}

int reader_new(const ReaderOptions *opts, Reader **ret)
{
	pthread_condattr_t attr;
	Reader *r;
	int e;

	if (!opts->read || opts->period_ns == 0)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->opts = *opts;
	r->stats.max_bytes = opts->max_bytes;
	r->max_spare = (unsigned)MIN((size_t)SPARE_CHUNKS, opts->max_bytes / 8 / CHUNK_BYTES);
	e = pthread_mutex_init(&r->lock, NULL);
	if (e != 0) {
		free(r);
		return -e;
	}
	/* The period is on the monotonic clock: a clock change must not stop the reading. */
	e = pthread_condattr_init(&attr);
	if (e == 0) {
		e = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
		if (e == 0)
			e = pthread_cond_init(&r->wake, &attr);
		pthread_condattr_destroy(&attr);
	}
	if (e != 0) {
		pthread_mutex_destroy(&r->lock);
		free(r);
		return -e;
	}
	*ret = r;
	return 0;
}

Reader *reader_free(Reader *r)
{
	if (!r)
		return NULL;
	reader_stop(r);
	for (unsigned i = 0; i < _READER_SOURCE_MAX; i++)
		chunks_free(r->queue[i].head);
	chunks_free(r->spare);
	pthread_cond_destroy(&r->wake);
	pthread_mutex_destroy(&r->lock);
	free(r);
	return NULL;
}

static void *reader_main(void *userdata)
{
	Reader *r = userdata;
	struct timespec next;
	sigset_t all;

	/* Signals are the main loop's (its signalfd): none is delivered here. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	clock_gettime(CLOCK_MONOTONIC, &next);
	pthread_mutex_lock(&r->lock);
	while (!r->stop) {
		uint64_t ns = (uint64_t)next.tv_nsec + r->opts.period_ns;

		next.tv_sec += (time_t)(ns / NSEC_PER_SEC);
		next.tv_nsec = (long)(ns % NSEC_PER_SEC);
		while (!r->stop && pthread_cond_timedwait(&r->wake, &r->lock, &next) != ETIMEDOUT)
			;
		if (r->stop)
			break;
		r->opts.read(r->opts.userdata, r);
		r->stats.passes++;
		/* After a long pass (or a suspend), the next period starts now: no catching up. */
		{
			struct timespec now;

			clock_gettime(CLOCK_MONOTONIC, &now);
			if (now.tv_sec > next.tv_sec ||
			    (now.tv_sec == next.tv_sec && now.tv_nsec > next.tv_nsec))
				next = now;
		}
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

int reader_start(Reader *r)
{
	int e;

	if (r->running)
		return -EBUSY;
	r->stop = false;
	e = pthread_create(&r->thread, NULL, reader_main, r);
	if (e != 0)
		return -e;
	r->running = true;
	return 0;
}

void reader_stop(Reader *r)
{
	if (!r->running)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_cond_signal(&r->wake);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	r->running = false;
}

void reader_read_now(Reader *r)
{
	pthread_mutex_lock(&r->lock);
	r->opts.read(r->opts.userdata, r);
	r->stats.passes++;
	pthread_mutex_unlock(&r->lock);
}

int reader_push(Reader *r, ReaderSource src, const void *data, size_t size)
{
	size_t need = sizeof(uint64_t) + ((size + 7) & ~(size_t)7);
	ReaderChunk *c;
	Queue *q;
	uint8_t *p;

	if ((unsigned)src >= _READER_SOURCE_MAX || size > UINT32_MAX)
		return -EINVAL;
	q = &r->queue[src];
	c = q->tail;
	if (!c || c->size - c->used < need) {
		size_t max = r->opts.max_bytes;
		size_t cap = MAX((size_t)CHUNK_BYTES, need);

		if (r->spare && cap == CHUNK_BYTES) {
			/* Already counted. */
			c = r->spare;
			r->spare = c->next;
			r->n_spare--;
			c->next = NULL;
			c->used = 0;
		} else {
			/* Samples stop at the bound; what the samples need to be read goes on a
			 * bit. */
			if (src != READER_SAMPLE)
				max += max / 8;
			if (r->stats.bytes + sizeof(*c) + cap > max) {
				r->stats.dropped[src]++;
				return -ENOBUFS;
			}
			c = malloc(sizeof(*c) + cap);
			if (!c) {
				r->stats.dropped[src]++;
				return -ENOMEM;
			}
			*c = (ReaderChunk){ .size = cap };
			r->stats.bytes += chunk_cost(c);
			r->stats.peak_bytes = MAX(r->stats.peak_bytes, r->stats.bytes);
		}
		if (q->tail)
			q->tail->next = c;
		else
			q->head = c;
		q->tail = c;
	}
	p = (uint8_t *)c->data + c->used;
	*(uint64_t *)p = size;
	memcpy(p + sizeof(uint64_t), data, size);
	c->used += need;
	return 0;
}

int reader_push_below(Reader *r, ReaderSource src, const void *data, size_t size, size_t limit)
{
	if ((unsigned)src >= _READER_SOURCE_MAX)
		return -EINVAL;
	if (r->stats.bytes > limit) {
		r->stats.shed[src]++;
		return -ENOBUFS;
	}
	return reader_push(r, src, data, size);
}

int reader_push_low(Reader *r, ReaderSource src, const void *data, size_t size, unsigned quarters)
{
	if (quarters > 4)
		return -EINVAL;
	return reader_push_below(r, src, data, size, r->opts.max_bytes / 4 * quarters);
}

size_t reader_max_bytes(const Reader *r)
{
	return r->opts.max_bytes;
}

void reader_take(Reader *r, unsigned mask, ReaderBatch *ret)
{
	*ret = (ReaderBatch){ .reader = r };
	pthread_mutex_lock(&r->lock);
	for (unsigned i = 0; i < _READER_SOURCE_MAX; i++) {
		if (!(mask & (1u << i)))
			continue;
		ret->chunks[i] = r->queue[i].head;
		r->queue[i] = (Queue){ 0 };
	}
	pthread_mutex_unlock(&r->lock);
}

void reader_batch_each(const ReaderBatch *b, ReaderSource src, reader_record_fn fn, void *userdata)
{
	for (const ReaderChunk *c = b->chunks[src]; c; c = c->next)
		for (size_t off = 0; off < c->used;) {
			const uint8_t *p = (const uint8_t *)c->data + off;
			uint64_t size = *(const uint64_t *)p;

			fn(userdata, p + sizeof(uint64_t), (size_t)size);
			off += sizeof(uint64_t) + ((size + 7) & ~(uint64_t)7);
		}
}

void reader_batch_free(ReaderBatch *b)
{
	Reader *r = b->reader;
	ReaderChunk *spare = NULL, *unused = NULL;
	unsigned n_spare;
	size_t freed = 0;

	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	n_spare = r->n_spare;
	pthread_mutex_unlock(&r->lock);
	for (unsigned i = 0; i < _READER_SOURCE_MAX; i++) {
		for (ReaderChunk *c = b->chunks[i], *next; c; c = next) {
			next = c->next;
			if (c->size == CHUNK_BYTES && n_spare < r->max_spare) {
				c->next = spare;
				spare = c;
				n_spare++;
			} else {
				freed += chunk_cost(c);
				c->next = unused;
				unused = c;
			}
		}
		b->chunks[i] = NULL;
	}
	chunks_free(unused);
	pthread_mutex_lock(&r->lock);
	while (spare) {
		ReaderChunk *c = spare;

		spare = c->next;
		c->next = r->spare;
		r->spare = c;
		r->n_spare++;
	}
	r->stats.bytes -= freed;
	pthread_mutex_unlock(&r->lock);
}

void reader_stats(Reader *r, ReaderStats *ret)
{
	pthread_mutex_lock(&r->lock);
	*ret = r->stats;
	ret->spare_bytes = 0;
	for (const ReaderChunk *c = r->spare; c; c = c->next)
		ret->spare_bytes += chunk_cost(c);
	pthread_mutex_unlock(&r->lock);
}
