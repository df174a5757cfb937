/* SPDX-License-Identifier: MIT */
/*
 * Writes the seed corpus of fuzz-dwarfbody (checked in under corpus/dwarfbody): the body the
 * DWARF worker would send for each compile unit of an ELF file, found by looking up every
 * symbol of its .symtab, as OUT_DIR/NAME-cu-N.
 *
 *   for f in fixture-dwarf fixture-cxx; do
 *     build-fuzz/tests/fuzz/gen-dwarfbody build/tests/unit/$f tests/fuzz/corpus/dwarfbody; done
 */
#include <fcntl.h>
#include <gelf.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "symbolize/dwarfinfo.h"

int main(int argc, char **argv)
{
	DwarfCounters counters = { 0 };
	DwarfInfo *d = NULL;
	Elf_Scn *scn = NULL;
	Elf *elf;
	int fd, written = 0;

	if (argc != 3) {
		fprintf(stderr, "usage: %s ELF OUT_DIR\n", argv[0]);
		return 2;
	}
	fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	elf_version(EV_CURRENT);
	if (fd < 0 || !(elf = elf_begin(fd, ELF_C_READ, NULL)) ||
	    dwarf_info_open(fd, argv[1], "", &counters, &d) < 0) {
		fprintf(stderr, "%s: no DWARF to read\n", argv[1]);
		return 1;
	}
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		Elf_Data *data;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_SYMTAB ||
		    !(data = elf_getdata(scn, NULL)))
			continue;
		for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym sym;
			void *body = NULL;
			size_t len = 0;
			char path[4096];
			FILE *f;

			if (!gelf_getsym(data, (int)i, &sym) ||
			    GELF_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_value == 0 ||
			    dwarf_info_export_cu(d, sym.st_value, &body, &len) != 1)
				continue;
			snprintf(path, sizeof(path), "%s/%s-cu-%d", argv[2], basename(argv[1]),
				 written++);
			f = fopen(path, "wb");
			if (!f || fwrite(body, 1, len, f) != len || fclose(f) != 0) {
				perror(path);
				return 1;
			}
			free(body);
		}
	}
	dwarf_info_free(d);
	elf_end(elf);
	close(fd);
	printf("%d bodies\n", written);
	return 0;
}
