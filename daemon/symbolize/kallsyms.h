/* SPDX-License-Identifier: MIT */
/*
 * Kallsyms: kernel text symbols from /proc/kallsyms (vmlinux and modules) in a sorted array.
 * A symbol extends to the next one. Reading needs root (kptr_restrict); without it every address
 * reads as 0 and loading fails with -EPERM. Not thread-safe.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct Kallsyms Kallsyms;

int kallsyms_load(const char *path, Kallsyms **ret);
/* Parses a kallsyms text buffer (for tests and fuzzing). */
int kallsyms_parse(const char *buf, size_t len, Kallsyms **ret);
Kallsyms *kallsyms_free(Kallsyms *k);

/*
 * The symbol containing addr: name and module ("[kernel.kallsyms]" or "[name]" of a module),
 * both valid while k lives. -ENOENT outside kernel text.
 */
int kallsyms_lookup(const Kallsyms *k, uint64_t addr, const char **ret_name,
		    const char **ret_module);
/*
 * Is addr in the scheduler's or the lock functions' text (__sched_text_start..end,
 * __lock_text_start..end), the frames the kernel leaves out of a sleeping task's stack
 * (in_sched_functions())? false if kallsyms does not list the bounds.
 */
bool kallsyms_in_sched(const Kallsyms *k, uint64_t addr);
size_t kallsyms_count(const Kallsyms *k);
size_t kallsyms_memory(const Kallsyms *k);

static inline void kallsyms_freep(Kallsyms **k)
{
	kallsyms_free(*k);
}
