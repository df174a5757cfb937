/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Shared by parts.bpf.c and the bench loader: what the breakdown variants switch off. */
#ifndef PROFQ_BENCH_PARTS_H
#define PROFQ_BENCH_PARTS_H

#define PARTS_SKIP_KSTACK (1u << 0) /* no kernel bpf_get_stack() */
#define PARTS_SKIP_USTACK (1u << 1) /* no user bpf_get_stack() */
#define PARTS_SKIP_OUTPUT (1u << 2) /* no bpf_ringbuf_output() */

#endif
