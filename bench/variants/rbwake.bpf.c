// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * profq's own sampler (bpf/profq.bpf.c, included unchanged) with one difference: the ring
 * buffer submit passes flags 0 instead of BPF_RB_NO_WAKEUP, so the kernel wakes a waiting
 * reader whenever it has caught up, i.e. on almost every sample. This is the design
 * docs/ARCHITECTURE.md rejects ("Sample transport"); the benchmark measures what it costs here.
 *
 * The function-like macro only replaces calls: the helper's declaration in bpf_helper_defs.h,
 * "(*bpf_ringbuf_output)(...)", is not followed by "(" and stays as it is.
 */
#define bpf_ringbuf_output(map, data, size, flags) (bpf_ringbuf_output)(map, data, size, 0)

#include "profq.bpf.c"
