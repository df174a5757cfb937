// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The other design measured for the fault profile: a program on every user page fault
 * (tp_btf/page_fault_user), which sees the error code, keeps a per-CPU countdown and would
 * capture the stack one in PERIOD not-present faults: here it only counts. */
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define PERIOD 64
#define X86_PF_PROT 1

struct cnt {
	__u64 faults, not_present, picked;
};
struct cnt counts[1024];

SEC("tp_btf/page_fault_user")
int BPF_PROG(pf_user, unsigned long address, struct pt_regs *regs, unsigned long error_code)
{
	struct cnt *c = &counts[bpf_get_smp_processor_id() & 1023];

	c->faults++;
	if (error_code & X86_PF_PROT)
		return 0;
	if (++c->not_present % PERIOD == 0)
		c->picked++;
	return 0;
}
