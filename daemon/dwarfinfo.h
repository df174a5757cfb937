/* SPDX-License-Identifier: MIT */
/*
 * DwarfInfo: what DWARF says about an address of one binary: the chain of inlined calls it sits
 * in (innermost first), each with its source file and line, and the function's own declaration.
 * Reads the binary's DWARF or its separate debug file (found by build id under the debug roots,
 * or by .gnu_debuglink) through libdwfl, offline. Fast per address: a CU's inline tree is built
 * once, the first time an address falls in it (one walk of its DIEs), and a lookup is then a
 * binary search plus a walk up the nesting; the line comes from libdw's line table. Calls of
 * libdwfl's own address lookups (dwfl_module_addrinfo) and dwarf_getscopes, which cost hundreds
 * of microseconds per address on big binaries, are not used.
 *
 * The file is hostile: the work per binary is bounded (DWARFINFO_MAX_DIES). Not thread-safe.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct DwarfInfo DwarfInfo;

#define DWARFINFO_MAX_DIES (4u << 20)

typedef struct DwarfFrame {
	const char *function; /* DW_AT_name (or the linkage name) of the (inlined) function */
	const char *linkage;  /* its DW_AT_linkage_name (mangled), NULL if none */
	const char *file;     /* where the address is (innermost) or the call site (outer) */
	uint32_t line;
	const char *decl_file; /* where the function is declared */
	uint32_t decl_line;
	int inlined; /* this frame is inlined into the next */
} DwarfFrame;

/*
 * Opens the DWARF of the ELF file open at fd (path names it in messages and for
 * .gnu_debuglink). debug_path: libdwfl's search path for separate debug files
 * (":.debug:/usr/lib/debug" if NULL), colon-separated roots. -ENOENT if neither the file nor a
 * debug file has DWARF.
 */
int dwarf_info_open(int fd, const char *path, const char *debug_path, DwarfInfo **ret);
DwarfInfo *dwarf_info_free(DwarfInfo *d);

/*
 * The frames of ELF virtual address vaddr, innermost first; the last is the function that
 * contains it (not inlined). Returns how many (<= max), 0 when DWARF does not cover vaddr, or a
 * negative errno. Strings stay valid while d lives.
 */
int dwarf_info_lookup(DwarfInfo *d, uint64_t vaddr, DwarfFrame *out, size_t max);

/* Our own tables' bytes (libdw's caches are not counted). */
size_t dwarf_info_memory(const DwarfInfo *d);
/* The separate debug file the DWARF came from, NULL if it is the binary's own. */
const char *dwarf_info_debug_file(const DwarfInfo *d);

static inline void dwarf_info_freep(DwarfInfo **d)
{
	dwarf_info_free(*d);
}
