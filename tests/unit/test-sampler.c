/* SPDX-License-Identifier: MIT */
/*
 * The sampler on the real kernel (loads and attaches the BPF programs: needs root, skipped
 * otherwise). libbpf's ring-buffer set-up is wrapped to reach the record callbacks, and close()
 * to catch a close of an fd that is no longer open: an fd closed twice, the second time maybe
 * someone else's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <unistd.h>

#include "base/macro.h"
#include "sampling/sampler.h"

int __real_close(int fd);
int __wrap_close(int fd);
struct ring_buffer *__real_ring_buffer__new(int map_fd, ring_buffer_sample_fn sample_cb, void *ctx,
					    const struct ring_buffer_opts *opts);
struct ring_buffer *__wrap_ring_buffer__new(int map_fd, ring_buffer_sample_fn sample_cb, void *ctx,
					    const struct ring_buffer_opts *opts);
int __real_ring_buffer__add(struct ring_buffer *rb, int map_fd, ring_buffer_sample_fn sample_cb,
			    void *ctx);
int __wrap_ring_buffer__add(struct ring_buffer *rb, int map_fd, ring_buffer_sample_fn sample_cb,
			    void *ctx);

static unsigned closes_of_closed_fds;
static ring_buffer_sample_fn event_cb, sample_cb;
static void *event_ctx, *sample_ctx;

int __wrap_close(int fd)
{
	int r = __real_close(fd);

	if (r < 0 && errno == EBADF)
		closes_of_closed_fds++;
	return r;
}

struct ring_buffer *__wrap_ring_buffer__new(int map_fd, ring_buffer_sample_fn cb, void *ctx,
					    const struct ring_buffer_opts *opts)
{
	event_cb = cb;
	event_ctx = ctx;
	return __real_ring_buffer__new(map_fd, cb, ctx, opts);
}

int __wrap_ring_buffer__add(struct ring_buffer *rb, int map_fd, ring_buffer_sample_fn cb, void *ctx)
{
	sample_cb = cb;
	sample_ctx = ctx;
	return __real_ring_buffer__add(rb, map_fd, cb, ctx);
}

typedef struct Seen {
	size_t samples, events;
	size_t last_sample_size, last_event_size;
} Seen;

static int on_sample(void *userdata, const struct profq_sample *s, size_t size)
{
	Seen *seen = userdata;

	(void)s;
	seen->samples++;
	seen->last_sample_size = size;
	return 0;
}

static int on_event(void *userdata, const struct profq_event *e, size_t size)
{
	Seen *seen = userdata;

	(void)e;
	seen->events++;
	seen->last_event_size = size;
	return 0;
}

static int sampler(Seen *seen, Sampler **ret)
{
	SamplerOptions opts = {
		.frequency = 49,
		.on_sample = on_sample,
		.on_event = on_event,
		.userdata = seen,
	};

	if (geteuid() != 0)
		return -EPERM;
	return sampler_new(&opts, ret);
}

/* Each perf event fd belongs to the BPF link attached to it, which closes it: freeing the
 * sampler closes no fd twice. */
static void test_free_closes_once(void **state)
{
	Sampler *s = NULL;
	Seen seen = { 0 };
	int r;

	(void)state;
	r = sampler(&seen, &s);
	if (r == -EPERM || r == -EACCES)
		skip();
	assert_int_equal(r, 0);
	assert_true(sampler_cpus(s) > 0);
	closes_of_closed_fds = 0;
	sampler_free(s);
	assert_int_equal(closes_of_closed_fds, 0);
}

/* Records shorter than their type reach the handlers, which count them as lost: none is dropped
 * uncounted on the way. */
static void test_short_records_reach_handlers(void **state)
{
	_cleanup_(sampler_freep) Sampler *s = NULL;
	uint8_t rec[64] = { 0 };
	Seen seen = { 0 };
	int r;

	(void)state;
	r = sampler(&seen, &s);
	if (r == -EPERM || r == -EACCES)
		skip();
	assert_int_equal(r, 0);
	assert_non_null(sample_cb);
	assert_non_null(event_cb);
	assert_int_equal(sample_cb(sample_ctx, rec, 16), 0);
	assert_int_equal(seen.samples, 1);
	assert_int_equal(seen.last_sample_size, 16);
	assert_int_equal(event_cb(event_ctx, rec, 8), 0);
	assert_int_equal(seen.events, 1);
	assert_int_equal(seen.last_event_size, 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_free_closes_once),
		cmocka_unit_test(test_short_records_reach_handlers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
