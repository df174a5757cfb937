/* SPDX-License-Identifier: MIT */
/*
 * Hostile ELF files for unit tests: an ELF64 little-endian x86-64 shared object laid out as the
 * test says (section data in order, then .shstrtab, then the section headers), for the tests
 * to patch further.
 */
#pragma once

#include <elf.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct CraftSection {
	const char *name;
	uint32_t type;
	uint64_t flags, addr;
	const void *data; /* NULL: size bytes of zeros (or none for SHT_NOBITS) */
	uint64_t size;
	uint32_t link, info;
	uint64_t entsize;
} CraftSection;

typedef struct CraftLayout {
	uint64_t shoff;	      /* where the section headers are */
	uint64_t offsets[32]; /* of each section's data (index i + 1: section 0 is null) */
	uint64_t size;	      /* of the file */
} CraftLayout;

static inline int craft_pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* Writes the file to fd (n <= 30 sections); layout (may be NULL) says where things went. */
static inline int craft_elf(int fd, const CraftSection *secs, size_t n, CraftLayout *layout)
{
	Elf64_Ehdr eh = { 0 };
	Elf64_Shdr sh[32] = { 0 };
	char shstr[4096] = { 0 };
	size_t shstr_len = 1;
	uint64_t off = sizeof(eh);
	CraftLayout l = { 0 };
	static const char zeros[65536];

	if (n > 30)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const CraftSection *s = &secs[i];
		Elf64_Shdr *h = &sh[i + 1];
		size_t len = strlen(s->name) + 1;

		if (shstr_len + len > sizeof(shstr))
			return -1;
		memcpy(shstr + shstr_len, s->name, len);
		off = (off + 7) & ~7ull;
		*h = (Elf64_Shdr){ .sh_name = (uint32_t)shstr_len,
				   .sh_type = s->type,
				   .sh_flags = s->flags,
				   .sh_addr = s->addr,
				   .sh_offset = off,
				   .sh_size = s->size,
				   .sh_link = s->link,
				   .sh_info = s->info,
				   .sh_addralign = 1,
				   .sh_entsize = s->entsize };
		shstr_len += len;
		l.offsets[i + 1] = off;
		if (s->type == SHT_NOBITS)
			continue;
		if (s->data) {
			if (craft_pwrite_all(fd, s->data, s->size, off) < 0)
				return -1;
		} else {
			for (uint64_t done = 0; done < s->size;) {
				size_t chunk = (size_t)(s->size - done < sizeof(zeros)
								? s->size - done
								: sizeof(zeros));

				if (craft_pwrite_all(fd, zeros, chunk, off + done) < 0)
					return -1;
				done += chunk;
			}
		}
		off += s->size;
	}
	/* .shstrtab */
	sh[n + 1] = (Elf64_Shdr){ .sh_name = (uint32_t)shstr_len,
				  .sh_type = SHT_STRTAB,
				  .sh_offset = off,
				  .sh_size = shstr_len + sizeof(".shstrtab"),
				  .sh_addralign = 1 };
	memcpy(shstr + shstr_len, ".shstrtab", sizeof(".shstrtab"));
	shstr_len += sizeof(".shstrtab");
	if (craft_pwrite_all(fd, shstr, shstr_len, off) < 0)
		return -1;
	off = (off + shstr_len + 7) & ~7ull;
	l.shoff = off;
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	eh.e_type = ET_DYN;
	eh.e_machine = EM_X86_64;
	eh.e_version = EV_CURRENT;
	eh.e_ehsize = sizeof(eh);
	eh.e_shoff = off;
	eh.e_shentsize = sizeof(Elf64_Shdr);
	eh.e_shnum = (uint16_t)(n + 2);
	eh.e_shstrndx = (uint16_t)(n + 1);
	eh.e_phentsize = sizeof(Elf64_Phdr);
	if (craft_pwrite_all(fd, &eh, sizeof(eh), 0) < 0 ||
	    craft_pwrite_all(fd, sh, (n + 2) * sizeof(Elf64_Shdr), off) < 0)
		return -1;
	l.size = off + (n + 2) * sizeof(Elf64_Shdr);
	if (layout)
		*layout = l;
	return 0;
}
