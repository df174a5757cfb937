/* SPDX-License-Identifier: MIT */
/*
 * Sampler: loads the BPF programs, opens one PERF_COUNT_SW_CPU_CLOCK event per online CPU at the
 * given frequency, attaches the sampling program to each and the exec/exit programs to their
 * tracepoints, and hands samples and events from their ring buffers to callbacks when drained.
 * The BPF side never wakes us (BPF_RB_NO_WAKEUP); the owner drains it on a timer (profqd: from
 * its reader thread, reader.h). Owns every kernel object it creates (each perf event fd through
 * the BPF link attached to it). Not thread-safe: the drains run the handlers in the calling
 * thread, one drain at a time; sampler_counters() reads memory the kernel writes and may run
 * beside a drain.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "profq.h"

typedef struct Sampler Sampler;

/* Called for each sample in ring-buffer order; size is the record's size as sent, which may be
 * shorter than the header: the handler checks it before reading and counts what it drops. */
typedef int (*sampler_handler_t)(void *userdata, const struct profq_sample *s, size_t size);
/* Called for each exec/exit event and memory record (struct profq_mem, by its type), short
 * ones too (as above); events are drained before the samples. */
typedef int (*sampler_event_handler_t)(void *userdata, const struct profq_event *e, size_t size);

typedef struct SamplerOptions {
	uint32_t frequency;   /* Hz, per CPU */
	uint32_t stack_copy;  /* bytes of user stack copied per sample; 0: frame pointers in BPF */
	size_t ringbuf_bytes; /* power of two, multiple of the page size; 0: derived */
	/* Off-CPU stacks (bpf/profq.bpf.c): captured per CPU per 100 ms, about; 0: off. */
	uint32_t offcpu_budget;
	uint64_t offcpu_long_ns;	/* an interval this long always counts, whole */
	uint32_t offcpu_preempt_budget; /* preemptions captured per CPU per 100 ms, about */
	/* Page faults (PROFQ_KIND_FAULTS records): one sample per this many minor faults of a
	 * CPU; 0: off. */
	uint64_t fault_period;
	sampler_handler_t on_sample;
	sampler_event_handler_t on_event;
	void *userdata;
	/* Memory tracking (PROFQ_EVENT_MEM records among the events): rss_stat and mark_victim. */
	bool memory;
	uint64_t mem_threshold; /* bytes; 0: the program's default (1 MiB) */
} SamplerOptions;

int sampler_new(const SamplerOptions *opts, Sampler **ret);
Sampler *sampler_free(Sampler *s);

/* Consumes every event, then every sample, in the ring buffers: the count, or a negative errno
 * (the first a handler returned; the records are consumed all the same). */
int sampler_drain(Sampler *s);
/* The same for one ring buffer. */
int sampler_drain_events(Sampler *s);
int sampler_drain_samples(Sampler *s);

/* Sums of the per-CPU BPF counters. */
int sampler_counters(Sampler *s, struct profq_counters *ret);
/* The same for off-CPU records: all zero when they are off. */
int sampler_offcpu_counters(Sampler *s, struct profq_offcpu_counters *ret);
bool sampler_offcpu(const Sampler *s);
/* The same for page fault records. */
int sampler_fault_counters(Sampler *s, struct profq_fault_counters *ret);
bool sampler_faults(const Sampler *s);
unsigned sampler_cpus(const Sampler *s);
size_t sampler_ringbuf_bytes(const Sampler *s);
/* How long the sample ring holds typical records at the configured rate on every CPU. */
uint64_t sampler_ringbuf_span_ns(const Sampler *s);
/* The Python maps the BPF program walks threads from (bpf/profq.h): 0 or -errno (-E2BIG when
 * a map is full). */
int sampler_py_set_layout(Sampler *s, uint32_t index, const struct profq_py_layout *l);
int sampler_py_set_proc(Sampler *s, uint32_t tgid, const struct profq_py_proc *v);
int sampler_py_del_proc(Sampler *s, uint32_t tgid);
int sampler_py_set_thread(Sampler *s, const struct profq_py_thread_key *k,
			  const struct profq_py_thread *v);
int sampler_py_del_thread(Sampler *s, const struct profq_py_thread_key *k);
/* The py_threads entry after prev (NULL: the first) in the map's order; -ENOENT after the last. */
int sampler_py_next_thread(Sampler *s, const struct profq_py_thread_key *prev,
			   struct profq_py_thread_key *ret_key, struct profq_py_thread *ret);

/* Whether memory tracking runs: asked for, and loaded (a kernel may lack what it needs). */
bool sampler_memory(const Sampler *s);

/* BPF program id (for bpftool / kernel.bpf_stats_enabled figures). */
uint32_t sampler_prog_id(const Sampler *s);
/* The off-CPU program's id (sched_switch); 0 when off. */
uint32_t sampler_offcpu_prog_id(const Sampler *s);
/* The fault program's id; 0 when off. */
uint32_t sampler_fault_prog_id(const Sampler *s);

static inline void sampler_freep(Sampler **s)
{
	sampler_free(*s);
}
