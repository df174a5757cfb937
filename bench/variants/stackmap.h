/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Shared by stackmap.bpf.c and the bench loader: map sizes, the count key and the per-CPU
 * counters. Fixed-width fields and explicit padding only.
 */
#ifndef PROFQ_BENCH_STACKMAP_H
#define PROFQ_BENCH_STACKMAP_H

#ifndef __bpf__
#include <linux/types.h>
#endif

/* bcc profile's defaults: --stack-storage-size 16384, BPF_HASH's 10240 entries. */
#define STACKMAP_STACKS 16384
#define STACKMAP_COUNTS 10240
/* kernel.perf_event_max_stack's default, as profq. */
#define STACKMAP_MAX_FRAMES 127

struct stackmap_key {
	__u32 tgid;
	__s32 kstack; /* stack id, or a negative errno (user mode, or a collision) */
	__s32 ustack;
	char comm[16];
	__u32 pad;
};

struct stackmap_counters {
	__u64 samples;
	__u64 idle;
	__u64 collisions; /* a stack lost to a hash collision in the stack map (-EEXIST) */
	__u64 lost;	  /* counts map full */
};

#ifndef __bpf__
_Static_assert(sizeof(struct stackmap_key) == 32, "stackmap_key size");
_Static_assert(sizeof(struct stackmap_counters) == 32, "stackmap_counters size");
#endif

#endif
