// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The sampler: runs on every PERF_COUNT_SW_CPU_CLOCK sample of every CPU, reads the kernel and
 * user stacks and sends one variable-length record per sample through a ring buffer without
 * waking the reader (BPF_RB_NO_WAKEUP); profqd drains it on a timer. Idle samples are only
 * counted. Every failure is counted in the per-CPU counters.
 */
#include <linux/bpf.h>
#include <linux/bpf_perf_event.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include "kernel_types.h"
#include "profq.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20); /* resized by profqd before load */
} samples SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct profq_counters);
} counters SEC(".maps");

/* A sample is too big for the 512-byte BPF stack: build it here, then copy it out. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct profq_sample);
} scratch SEC(".maps");

#define STACK_BYTES (PROFQ_MAX_FRAMES * sizeof(__u64))

SEC("perf_event")
int profq_sample(struct bpf_perf_event_data *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct profq_counters *c;
	struct task_struct *task;
	struct profq_sample *s;
	__u32 zero = 0, klen = 0, ulen = 0, size;
	long n;

	c = bpf_map_lookup_elem(&counters, &zero);
	if (!c)
		return 0;
	c->samples++;
	if ((__u32)pid_tgid == 0) {
		c->idle++;
		return 0;
	}
	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return 0;

	task = (struct task_struct *)bpf_get_current_task();
	s->time_ns = bpf_ktime_get_boot_ns();
	s->start_ns = BPF_CORE_READ(task, group_leader, start_boottime);
	s->mm_id = (__u64)BPF_CORE_READ(task, mm);
	s->tgid = pid_tgid >> 32;
	s->tid = (__u32)pid_tgid;
	s->cpu = bpf_get_smp_processor_id();
	s->uid = (__u32)bpf_get_current_uid_gid();
	s->flags = 0;
	bpf_get_current_comm(s->comm, sizeof(s->comm));
	BPF_CORE_READ_STR_INTO(&s->pcomm, task, group_leader, comm);

	/* CPL 0 in the interrupted CS: the sample hit kernel code. */
	if ((ctx->regs.cs & 3) == 0) {
		s->flags |= PROFQ_SAMPLE_KERNEL_MODE;
		n = bpf_get_stack(ctx, s->addrs, STACK_BYTES, 0);
		if (n < 0) {
			c->kstack_errors++;
			s->flags |= PROFQ_SAMPLE_KSTACK_ERR;
		} else {
			klen = ((__u32)n / sizeof(__u64)) & 0x7f;
		}
	}
	if (s->mm_id == 0) {
		s->flags |= PROFQ_SAMPLE_KTHREAD;
	} else {
		n = bpf_get_stack(ctx, &s->addrs[klen], STACK_BYTES, BPF_F_USER_STACK);
		if (n < 0) {
			c->ustack_errors++;
			s->flags |= PROFQ_SAMPLE_USTACK_ERR;
		} else {
			ulen = ((__u32)n / sizeof(__u64)) & 0x7f;
		}
	}
	s->kstack_len = klen;
	s->ustack_len = ulen;

	size = PROFQ_SAMPLE_HDR_SIZE + (klen + ulen) * sizeof(__u64);
	if (size > sizeof(*s))
		return 0;
	if (bpf_ringbuf_output(&samples, s, size, BPF_RB_NO_WAKEUP) < 0)
		c->lost_ringbuf++;
	return 0;
}
