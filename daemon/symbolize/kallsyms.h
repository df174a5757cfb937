/* SPDX-License-Identifier: MIT */
/*
 * Kallsyms: kernel text symbols from /proc/kallsyms (vmlinux and modules) in a sorted array.
 * A symbol extends to the next one. Reading needs root (kptr_restrict); without it every address
 * reads as 0 and loading fails with -EPERM. Not thread-safe.
 */
#pragma once

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
size_t kallsyms_count(const Kallsyms *k);
size_t kallsyms_memory(const Kallsyms *k);

static inline void kallsyms_freep(Kallsyms **k)
{
	kallsyms_free(*k);
}
