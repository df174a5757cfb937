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

/* Reads the ELF file open at fd. -ENOEXEC if it is not a usable ELF file. */
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
