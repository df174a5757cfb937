/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer: the ELF symbol reader (daemon/symbolize/elfsym.c), which reads the symbol tables
 * of any binary a process maps. The input is a whole ELF file, written to a memfd: its headers
 * checked (elfsym_check_headers), loaded from the descriptor and from memory, its own .symtab
 * added again as a debug file's (which must change nothing), and looked up at the addresses it
 * names (fuzz-elf-common.h). Checked: the results the header promises (a name NUL-terminated
 * within the module's cap, an offset that leads back to the symbol's start, which names the
 * same function: the table is sorted), errors of the documented kinds, and the memory the
 * module reports bounded by what it holds.
 *
 *   fuzz-elfsym -max_total_time=60 -max_len=65536 CORPUS_DIR tests/fuzz/corpus/elfsym
 */
#include <sys/mman.h>

#include "base/macro.h"
#include "fuzz-elf-common.h"
#include "symbolize/elfsym.h"

/* elfsym.c cuts names at 4095 bytes; a PLT stub's has "@plt" after it. */
#define NAME_LIMIT (4095 + 4)

static int memfd = -1;

static void check_headers(int fd, size_t size)
{
	ElfHeaders h;
	int r = elfsym_check_headers(fd, &h);

	FUZZ_CHECK(r == 0 || r == -ENOEXEC || r == -E2BIG || r == -ENOMEM);
	if (r < 0)
		return;
	FUZZ_CHECK(h.file_size == size);
	FUZZ_CHECK(h.n_sections <= ELFSYM_MAX_SECTIONS);
	FUZZ_CHECK(h.n_segments <= ELFSYM_MAX_SEGMENTS);
	FUZZ_CHECK(h.inflated_max <= h.inflated);
}

static void check_load(int r, ElfSym *e)
{
	if (r < 0) {
		FUZZ_CHECK(!e);
		FUZZ_CHECK(r == -ENOEXEC || r == -E2BIG || r == -ENOMEM || r == -EBADMSG);
	}
}

/* What e says of itself is within what an input of this size can make it hold. */
static void check_table(const ElfSym *e, size_t size)
{
	size_t id_len;
	const uint8_t *id = elfsym_build_id(e, &id_len);

	FUZZ_CHECK((id == NULL) == (id_len == 0));
	FUZZ_CHECK(id_len <= ELFSYM_BUILD_ID_MAX);
	/* A symbol is 16 (ELF32) or 24 bytes of the input, twice with a debug file's. */
	FUZZ_CHECK(elfsym_count(e) <= 2 * (size / 16));
	FUZZ_CHECK(elfsym_count(e) <= ELFSYM_MAX_SYMBOLS * 2);
	/* 16 bytes a symbol, the names (in memory: a copy of a table of the input; from a file:
	 * read at lookup into one buffer), the segments and PLT stubs. */
	FUZZ_CHECK(elfsym_memory(e) <= 4096 + 16 * elfsym_count(e) + 8 * (size_t)size + 8192);
}

/* Lookups: a name or a documented error; the start of the symbol found names it again. */
static void lookups(ElfSym *e, const uint64_t *addrs, size_t n)
{
	static char first[NAME_LIMIT + 1];

	for (size_t i = 0; i < n; i++) {
		const char *name = NULL;
		uint64_t off = UINT64_MAX, off2 = UINT64_MAX, va;
		size_t len;
		int r = elfsym_lookup(e, addrs[i], &name, &off);

		FUZZ_CHECK(r == 0 || r == -ENOENT || r == -EBADMSG || r == -ENOMEM);
		(void)elfsym_offset_to_vaddr(e, addrs[i], &va);
		if (r < 0)
			continue;
		FUZZ_CHECK(name);
		len = strnlen(name, NAME_LIMIT + 1);
		FUZZ_CHECK(len <= NAME_LIMIT);
		FUZZ_CHECK(off <= addrs[i]);
		memcpy(first, name, len + 1);
		r = elfsym_lookup(e, addrs[i] - off, &name, &off2);
		FUZZ_CHECK(r == 0);
		/* Unless a symbol starts inside a PLT stub, which is named first. */
		len = strlen(name);
		if (len < 4 || !streq(name + len - 4, "@plt") || strstr(first, "@plt")) {
			FUZZ_CHECK(off2 == 0);
			FUZZ_CHECK(streq(name, first));
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint64_t addrs[FUZZ_MAX_ADDRS];
	ElfSym *e = NULL;
	size_t n, count;
	int r;

	if (memfd < 0) {
		memfd = memfd_create("fuzz-elfsym", MFD_CLOEXEC);
		FUZZ_CHECK(memfd >= 0);
	}
	fuzz_write_file(memfd, data, size);
	n = fuzz_addresses(data, size, addrs, FUZZ_MAX_ADDRS);

	check_headers(memfd, size);

	r = elfsym_load_fd(memfd, &e);
	check_load(r, e);
	if (r == 0) {
		check_table(e, size);
		lookups(e, addrs, n);
		/* The binary's own .symtab as its debug file's: every address it has is the
		 * binary's already, and the binary's symbol wins. */
		count = elfsym_count(e);
		r = elfsym_add_symbols(e, memfd);
		FUZZ_CHECK(r == 0 || r == -ENOEXEC || r == -E2BIG || r == -ENOMEM || r == -EBADMSG);
		if (r == 0 && elfsym_has_symtab(e))
			FUZZ_CHECK(elfsym_count(e) == count);
		check_table(e, size);
		lookups(e, addrs, n);
		e = elfsym_free(e);
	}

	r = elfsym_load_memory(data, size, &e);
	check_load(r, e);
	if (r == 0) {
		check_table(e, size);
		lookups(e, addrs, n);
		elfsym_free(e);
	}
	return 0;
}
