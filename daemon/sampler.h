/* SPDX-License-Identifier: MIT */
/*
 * Sampler: loads the BPF program, opens one PERF_COUNT_SW_CPU_CLOCK event per online CPU at the
 * given frequency, attaches the program to each, and hands the samples from the ring buffer to a
 * callback when drained. The BPF side never wakes us (BPF_RB_NO_WAKEUP); the owner calls
 * sampler_drain() on a timer. Owns every kernel object it creates. Not thread-safe.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "profq.h"

typedef struct Sampler Sampler;

/* Called for each sample in ring-buffer order; size is the record's size as sent. */
typedef int (*sampler_handler_t)(void *userdata, const struct profq_sample *s, size_t size);

typedef struct SamplerOptions {
	uint32_t frequency;   /* Hz, per CPU */
	size_t ringbuf_bytes; /* power of two, multiple of the page size; 0: derived */
} SamplerOptions;

int sampler_new(const SamplerOptions *opts, sampler_handler_t handler, void *userdata, Sampler **ret);
Sampler *sampler_free(Sampler *s);

/* Consumes every sample in the ring buffer: the count, or a negative errno. */
int sampler_drain(Sampler *s);

/* Sums of the per-CPU BPF counters. */
int sampler_counters(Sampler *s, struct profq_counters *ret);
unsigned sampler_cpus(const Sampler *s);
size_t sampler_ringbuf_bytes(const Sampler *s);
/* BPF program id (for bpftool / kernel.bpf_stats_enabled figures). */
uint32_t sampler_prog_id(const Sampler *s);

static inline void sampler_freep(Sampler **s)
{
	sampler_free(*s);
}
