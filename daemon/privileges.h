/* SPDX-License-Identifier: MIT */
/*
 * What to tell a user who started profqd without the privileges it needs: appended to the
 * message of the first call the kernel refused with EPERM or EACCES (the sideband event, the
 * BPF load, a perf event), which is logged once by the caller. docs/profqd.8, PRIVILEGES, is
 * the source of each line.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>

#define PRIVILEGES_HINT                                                                         \
	"profqd needs root, or these capabilities:\n"                                           \
	"  CAP_BPF                 load its BPF programs (required)\n"                          \
	"  CAP_PERFMON             open a perf event on every CPU, BPF tracing (required)\n"    \
	"  CAP_SYS_PTRACE          binaries in other users' containers, deleted binaries,\n"    \
	"                          perf maps in a process's /tmp, other users' Python memory\n" \
	"  CAP_CHECKPOINT_RESTORE  /proc/PID/map_files: binaries deleted or replaced since\n"   \
	"                          they were mapped\n"                                          \
	"  CAP_DAC_READ_SEARCH     binaries not readable by everyone, other users' map_files\n" \
	"                          (and cgroups opened by id rather than walked)\n"             \
	"  CAP_SYSLOG              kernel symbols (the addresses in /proc/kallsyms)\n"          \
	"Run it as root (sudo profqd), as its service (systemctl start profqd), or with the\n"  \
	"capabilities: sudo setpriv --reuid=USER --regid=GROUP --init-groups\n"                 \
	"  --inh-caps=+bpf,+perfmon,+sys_ptrace,+checkpoint_restore,+dac_read_search,+syslog\n" \
	"  --ambient-caps=+bpf,+perfmon,+sys_ptrace,+checkpoint_restore,+dac_read_search,"      \
	"+syslog profqd"

/* Whether a failure -errno is the kernel's refusal for want of privileges. */
static inline bool privileges_denied(int r)
{
	return r == -EPERM || r == -EACCES;
}
