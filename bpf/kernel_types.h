/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The few kernel types the BPF program reads, declared for CO-RE: libbpf relocates each field
 * access against the running kernel's BTF (/sys/kernel/btf/vmlinux) at load time, so only the
 * fields we use are named and their order and offsets here do not matter. Vendoring this subset
 * instead of a generated vmlinux.h keeps the build independent of the build host's kernel and
 * the repository free of a 3 MB generated file (see docs/ARCHITECTURE.md).
 */
#ifndef PROFQ_KERNEL_TYPES_H
#define PROFQ_KERNEL_TYPES_H

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct mm_struct {
	unsigned long start_stack;
};

struct task_struct {
	int pid;
	int tgid;
	struct task_struct *group_leader;
	struct mm_struct *mm;
	__u64 start_boottime;
	char comm[16];
};

#pragma clang attribute pop

#endif
