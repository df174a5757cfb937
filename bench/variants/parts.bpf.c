// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * For the cost breakdown: profq's own sampler (bpf/profq.bpf.c, included unchanged) with
 * parts switched off before load through the read-only global `skip` (PARTS_SKIP_* bits; the
 * verifier removes the dead branches), plus an empty program for the fixed cost of running
 * any BPF program on a sample. A skipped bpf_get_stack() "returns" 0 frames and a skipped
 * submit "succeeds", so everything else runs as in profqd.
 *
 * The function-like macros only replace calls: the helpers' declarations in
 * bpf_helper_defs.h, "(*name)(...)", are not followed by "(" and stay as they are.
 */
#include <linux/bpf.h>

#include "parts.h"

const volatile __u32 skip = 0;

#define bpf_get_stack(ctx, buf, size, flags)                                           \
	((skip & (((flags)&BPF_F_USER_STACK) ? PARTS_SKIP_USTACK : PARTS_SKIP_KSTACK)) \
		 ? 0L                                                                  \
		 : (bpf_get_stack)(ctx, buf, size, flags))
#define bpf_ringbuf_output(map, data, size, flags) \
	((skip & PARTS_SKIP_OUTPUT) ? 0L : (bpf_ringbuf_output)(map, data, size, flags))

#include "profq.bpf.c"

SEC("perf_event")
int empty_sample(struct bpf_perf_event_data *ctx)
{
	return 0;
}
