/* SPDX-License-Identifier: MIT */
/*
 * ElfSym: the symbol table of one ELF binary as a sorted array for binary search (about 70 ns a
 * lookup where libdwfl's dwfl_module_addrinfo scans linearly), plus what is needed to turn a file
 * offset into an ELF virtual address (executable PT_LOAD segments) and the GNU build id.
 *
 * Functions from .symtab, else .dynsym (FUNC and GNU_IFUNC, defined), deduplicated by address.
 * The file is hostile: every table index and string offset is checked, and the work is bounded
 * (ELFSYM_MAX_SYMBOLS). Names are read from the file at lookup (a duplicate of the fd is kept;
 * the file's inode stays, whatever replaces its path), so only 16 bytes a function stay in
 * memory. Not thread-safe.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ElfSym ElfSym;

#define ELFSYM_MAX_SYMBOLS (4u << 20)
#define ELFSYM_BUILD_ID_MAX 64
/* More section or program headers than this: not a binary we read (linked binaries and their
 * debug files have tens of sections; libelf allocates per section before anything is read). */
#define ELFSYM_MAX_SECTIONS 65536u
#define ELFSYM_MAX_SEGMENTS 4096u

/*
 * What the headers of an ELF file say, read with pread and checked before libelf or libdw see
 * the file: the ELF header, the section and program header tables (extended numbering
 * included) within the file and under the caps above, and what compressed sections (SHF_COMPRESSED
 * or GNU .zdebug) say they inflate to.
 */
typedef struct ElfHeaders {
	uint64_t file_size;
	uint64_t n_sections, n_segments;
	uint64_t inflated;     /* sum of the compressed sections' inflated sizes */
	uint64_t inflated_max; /* the largest of them */
} ElfHeaders;

/* -ENOEXEC if the file open at fd is not ELF or its tables do not fit in it, -E2BIG past a cap. */
int elfsym_check_headers(int fd, ElfHeaders *ret);

/* Reads the ELF file open at fd (its headers checked first: elfsym_check_headers()). -ENOEXEC
 * if it is not a usable ELF file. */
int elfsym_load_fd(int fd, ElfSym **ret);
/* Reads an ELF image in memory (e.g. the vDSO); the buffer is not kept. */
int elfsym_load_memory(const void *image, size_t size, ElfSym **ret);
ElfSym *elfsym_free(ElfSym *e);

/*
 * The function containing vaddr: its name (valid until the next lookup in e) and vaddr's offset
 * into it. -ENOENT when no symbol covers vaddr; a negative errno when the name cannot be read.
 */
int elfsym_lookup(ElfSym *e, uint64_t vaddr, const char **ret_name, uint64_t *ret_offset);

/* ELF virtual address of a file offset inside an executable PT_LOAD segment; -ENOENT if none. */
int elfsym_offset_to_vaddr(const ElfSym *e, uint64_t offset, uint64_t *ret_vaddr);

/* One symbol to look for by name with elfsym_find_names(). */
typedef struct ElfSymbolQuery {
	const char *name;
	uint64_t vaddr; /* ELF virtual address, 0 if not found */
	uint64_t size;
} ElfSymbolQuery;

/*
 * Finds the named symbols (of any type: functions and data) among the dynamic symbols of the
 * ELF file open at fd (headers checked first, as elfsym_load_fd()). Each query found gets its
 * address and size; the others are left at 0. Returns how many were found, or -ENOEXEC.
 */
int elfsym_find_names(int fd, ElfSymbolQuery *q, size_t n);

/* Adds the symbols of another ELF file of the same binary (its separate debug file, whose
 * .symtab has the local functions a stripped binary lacks). */
int elfsym_add_symbols(ElfSym *e, int fd);
/* Whether the symbols came with a .symtab (not only the dynamic ones). */
bool elfsym_has_symtab(const ElfSym *e);

/* The build id (NULL, 0 if none). */
const uint8_t *elfsym_build_id(const ElfSym *e, size_t *ret_len);
size_t elfsym_count(const ElfSym *e);
size_t elfsym_memory(const ElfSym *e);

static inline void elfsym_freep(ElfSym **e)
{
	elfsym_free(*e);
}
