/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer: the CFI compiler (daemon/unwind/cfi.c), which reads the .eh_frame of any binary a
 * process maps. An input is either an ELF file (it starts with the ELF magic: cfi_load_memory),
 * or sections:
 *
 *   u64 .eh_frame vaddr, u64 .eh_frame_hdr vaddr, u32 hdr_len, hdr_len bytes of .eh_frame_hdr,
 *   then .eh_frame to the end (little-endian)
 *
 * compiled eagerly and, with an index, lazily: from a copy of the section, and from a file (an ELF
 * file around the sections, in a memfd) that FDEs are read from one at a time, which must
 * answer every lookup the same (an ELF input too: loaded from memory and from the file).
 * Lookups at the addresses the index names (and around them) give a row of a known kind or
 * nothing, and the work and memory stay in bounds.
 * Seeds: tests/fuzz/gen-cfi-corpus.py over real libraries.
 *
 *   fuzz-cfi -max_total_time=60 -max_len=65536 CORPUS_DIR tests/fuzz/corpus/cfi
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/macro.h"
#include "fixtures/eh-elf.h"
#include "fuzz-check.h"
#include "unwind/cfi.h"

#define MAX_LOOKUPS 512

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t le(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void check_load(int r, Cfi *cfi)
{
	if (r < 0) {
		FUZZ_CHECK(!cfi);
		FUZZ_CHECK(r == -ENOENT || r == -ENOMEM || r == -EFBIG || r == -EBADMSG ||
			   r == -ENOEXEC || r == -EOPNOTSUPP);
	}
}

/* Looks up every address: a known kind of row, or -ENOENT; bounded work and memory. */
static void lookups(Cfi *cfi, const uint64_t *addrs, size_t n)
{
	CfiStats st;

	for (size_t i = 0; i < n; i++) {
		CfiRow row;
		int r = cfi_lookup(cfi, addrs[i], &row);

		FUZZ_CHECK(r == 0 || r == -ENOENT);
		if (r == 0) {
			FUZZ_CHECK(row.cfa > CFI_CFA_UNKNOWN && row.cfa <= CFI_CFA_END);
			FUZZ_CHECK(row.rbp == CFI_RBP_SAME || row.rbp == CFI_RBP_OFFSET);
		}
	}
	cfi_stats(cfi, &st);
	FUZZ_CHECK(st.refused_fdes <= st.decoded_fdes);
	FUZZ_CHECK(st.cache_bytes <= CFI_MAX_CACHE_BYTES);
	FUZZ_CHECK(cfi_memory(cfi) > 0);
}

/* The input's own file: a memfd, its contents replaced for each input. */
static int input_file(const void *data, size_t size)
{
	static int fd = -1;
	size_t off = 0;

	if (fd < 0) {
		fd = memfd_create("fuzz-cfi", MFD_CLOEXEC);
		FUZZ_CHECK(fd >= 0);
	}
	FUZZ_CHECK(ftruncate(fd, 0) == 0);
	while (off < size) {
		ssize_t n = pwrite(fd, (const uint8_t *)data + off, size - off, (off_t)off);

		FUZZ_CHECK(n > 0);
		off += (size_t)n;
	}
	return fd;
}

/* An ELF file holding the two sections at their addresses, in the input's file. */
static int sections_file(const uint8_t *eh, size_t eh_len, uint64_t eh_vaddr, const uint8_t *hdr,
			 size_t hdr_len, uint64_t hdr_vaddr)
{
	size_t eh_off = sizeof(Elf64_Ehdr), hdr_off = eh_off + eh_len;
	uint8_t *file;
	EhElf e;
	int fd;

	eh_elf_init(&e,
		    &(Elf64_Shdr){ .sh_type = SHT_PROGBITS,
				   .sh_flags = SHF_ALLOC,
				   .sh_addr = eh_vaddr,
				   .sh_offset = eh_off,
				   .sh_size = eh_len },
		    &(Elf64_Shdr){ .sh_type = SHT_PROGBITS,
				   .sh_flags = SHF_ALLOC,
				   .sh_addr = hdr_vaddr,
				   .sh_offset = hdr_off,
				   .sh_size = hdr_len },
		    hdr_off + hdr_len);
	file = calloc(1, e.size);
	FUZZ_CHECK(file);
	memcpy(file, &e.ehdr, sizeof(e.ehdr));
	memcpy(file + eh_off, eh, eh_len);
	memcpy(file + hdr_off, hdr, hdr_len);
	memcpy(file + e.names_off, eh_elf_names, sizeof(eh_elf_names));
	memcpy(file + e.sh_off, e.sh, sizeof(e.sh));
	fd = input_file(file, e.size);
	free(file);
	return fd;
}

/* Two tables of the same bytes (a copy, the file) answer every lookup the same. */
static void same_answers(Cfi *a, Cfi *b, const uint64_t *addrs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		CfiRow ra = { 0 }, rb = { 0 };
		int r = cfi_lookup(a, addrs[i], &ra);

		FUZZ_CHECK(cfi_lookup(b, addrs[i], &rb) == r);
		FUZZ_CHECK(r < 0 ||
			   (ra.cfa == rb.cfa && ra.rbp == rb.rbp &&
			    ra.cfa_offset == rb.cfa_offset && ra.rbp_offset == rb.rbp_offset));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint64_t addrs[MAX_LOOKUPS];
	uint64_t eh_vaddr, hdr_vaddr, hdr_len;
	const uint8_t *hdr, *eh;
	size_t n = 0, eh_len;
	Cfi *cfi = NULL;
	int r;

	if (size >= 4 && memcmp(data, "\177ELF", 4) == 0) {
		Cfi *from_file = NULL;

		r = cfi_load_memory(data, size, &cfi);
		check_load(r, cfi);
		/* libelf reads a file and an image in memory its own ways: the two loads may
		 * fail differently; two tables must answer alike. */
		check_load(cfi_load_fd(input_file(data, size), &from_file), from_file);
		/* Addresses from the input itself: any 8 bytes may be one. */
		for (size_t i = 0; i + 8 <= size && n < MAX_LOOKUPS; i += 8)
			addrs[n++] = le(data + i, 8) & 0xffffffff;
		if (cfi)
			lookups(cfi, addrs, n);
		if (from_file)
			lookups(from_file, addrs, n);
		if (cfi && from_file)
			same_answers(cfi, from_file, addrs, n);
		cfi_free(cfi);
		cfi_free(from_file);
		return 0;
	}
	if (size < 20)
		return 0;
	eh_vaddr = le(data, 8);
	hdr_vaddr = le(data + 8, 8);
	hdr_len = le(data + 16, 4);
	if (hdr_len > size - 20)
		return 0;
	hdr = data + 20;
	eh = hdr + hdr_len;
	eh_len = size - 20 - (size_t)hdr_len;

	/* The initial locations of the index (datarel sdata4 entries after a 12-byte header),
	 * each and the byte after it; and the start of the section. */
	for (size_t i = 12; i + 8 <= hdr_len && n + 2 <= MAX_LOOKUPS; i += 8) {
		uint64_t pc = hdr_vaddr + (uint64_t)(int64_t)(int32_t)le(hdr + i, 4);

		addrs[n++] = pc;
		addrs[n++] = pc + 1;
	}
	if (n < MAX_LOOKUPS)
		addrs[n++] = eh_vaddr;

	r = cfi_load_eh_frame(eh, eh_len, eh_vaddr, &cfi);
	check_load(r, cfi);
	if (r == 0) {
		lookups(cfi, addrs, n);
		cfi = cfi_free(cfi);
	}
	if (hdr_len == 0)
		return 0;
	r = cfi_load_indexed(eh, eh_len, eh_vaddr, hdr, (size_t)hdr_len, hdr_vaddr, &cfi);
	check_load(r, cfi);
	if (r == 0) {
		CfiStats st;

		/* Twice: the second round mostly cached. A lookup decodes one FDE at most. */
		lookups(cfi, addrs, n);
		lookups(cfi, addrs, n);
		cfi_stats(cfi, &st);
		FUZZ_CHECK(st.decoded_fdes <= 2 * n);
	}
	if (r == 0 || r == -EOPNOTSUPP) {
		Cfi *from_file = NULL;
		int fd = sections_file(eh, eh_len, eh_vaddr, hdr, (size_t)hdr_len, hdr_vaddr);

		/* With an index we do not read, the file's table is eager: looked up for its
		 * bounds only. */
		r = cfi_load_fd(fd, &from_file);
		check_load(r, from_file);
		if (r == 0)
			lookups(from_file, addrs, n);
		if (r == 0 && cfi)
			same_answers(cfi, from_file, addrs, n);
		cfi_free(from_file);
	}
	cfi_free(cfi);
	return 0;
}
