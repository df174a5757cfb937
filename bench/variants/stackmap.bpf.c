// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Benchmark variant in the design of bcc's profile tool: aggregate in the kernel. Per sample,
 * bpf_get_stackid stores the kernel and the user stack in a BPF_MAP_TYPE_STACK_TRACE map and a
 * hash map counts (tgid, kernel stack id, user stack id, comm); userspace reads both maps only
 * at the end. Like bcc, it asks for both stacks on every sample (the kernel one fails fast in
 * user mode), does not pass BPF_F_REUSE_STACKID (a hash collision is an error, counted), and
 * skips the idle task.
 */
#include <linux/bpf.h>
#include <linux/bpf_perf_event.h>
#include <linux/errno.h>
#include <bpf/bpf_helpers.h>

#include "stackmap.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, STACKMAP_STACKS);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, STACKMAP_MAX_FRAMES * sizeof(__u64));
} stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, STACKMAP_COUNTS);
	__type(key, struct stackmap_key);
	__type(value, __u64);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stackmap_counters);
} counters SEC(".maps");

SEC("perf_event")
int stackmap_sample(struct bpf_perf_event_data *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct stackmap_counters *c;
	struct stackmap_key key = {};
	__u64 one = 1, *count;
	__u32 zero = 0;

	c = bpf_map_lookup_elem(&counters, &zero);
	if (!c)
		return 0;
	c->samples++;
	if ((__u32)pid_tgid == 0) {
		c->idle++;
		return 0;
	}
	key.tgid = pid_tgid >> 32;
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	key.kstack = bpf_get_stackid(ctx, &stacks, 0);
	key.ustack = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
	/* Other errors are expected: -EFAULT for the kernel stack of a user-mode sample and for
	 * the user stack of a kernel thread. */
	if (key.kstack == -EEXIST || key.ustack == -EEXIST)
		c->collisions++;

	count = bpf_map_lookup_elem(&counts, &key);
	if (count) {
		__sync_fetch_and_add(count, 1);
	} else if (bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST) < 0) {
		/* Full, or another CPU inserted it first: try once more, then count a loss. */
		count = bpf_map_lookup_elem(&counts, &key);
		if (count)
			__sync_fetch_and_add(count, 1);
		else
			c->lost++;
	}
	return 0;
}
