// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * profq's own sampler (bpf/profq.bpf.c) exactly as profqd loads it, built into the bench
 * loader so that the ring-buffer reader can be measured with the same trivial record handler
 * as the wakeup variant (rbwake.bpf.c): the difference between the two is the wakeup alone.
 */
#include "profq.bpf.c"
