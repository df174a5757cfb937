/* SPDX-License-Identifier: MIT */
/*
 * The CFI compiler against binutils: every row `readelf --debug-dump=frames-interp` prints for
 * Debian's libc and ld.so must be what cfi_lookup() gives at that address. Plus hand-built
 * .eh_frame for the special rules, and hostile input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <dwarf.h>
#include <elf.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>

#include "base/macro.h"
#include "fixtures/eh-elf.h"
#include "tmpdir.h"
#include "unwind/cfi.h"

static const char *const libraries[] = {
	"/usr/lib/x86_64-linux-gnu/libc.so.6",
	"/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
	"/usr/lib/x86_64-linux-gnu/libm.so.6",
};

typedef struct Counts {
	size_t rows, checked, mismatches;
} Counts;

/* Compares one readelf row (loc, the CFA column, the rbp column or NULL, the ra column). */
static void compare_row(Cfi *cfi, uint64_t loc, const char *cfa, const char *rbp, const char *ra,
			Counts *c)
{
	CfiRow row;
	int r = cfi_lookup(cfi, loc, &row);
	long off;

	c->rows++;
	if (!streq(ra, "u") && !streq(ra, "c-8")) {
		/* The return address in a register or elsewhere: we cannot follow it. */
		c->checked++;
		if (r == 0 && row.cfa != CFI_CFA_SIGNAL) {
			c->mismatches++;
			print_error("%#lx: ra %s read as rule %d\n", (unsigned long)loc, ra,
				    row.cfa);
		}
		return;
	}
	if (streq(ra, "u")) {
		/* The outermost frame. */
		c->checked++;
		if (r != 0 || row.cfa != CFI_CFA_END) {
			c->mismatches++;
			print_error("%#lx: want END, got r=%d cfa=%d\n", (unsigned long)loc, r,
				    r == 0 ? row.cfa : -1);
		}
		return;
	}
	if (sscanf(cfa, "rsp+%ld", &off) == 1 || sscanf(cfa, "rbp+%ld", &off) == 1) {
		int want = cfa[1] == 's' ? CFI_CFA_RSP : CFI_CFA_RBP;

		c->checked++;
		if (r != 0 || row.cfa != want || row.cfa_offset != off) {
			c->mismatches++;
			print_error("%#lx: want %s, got r=%d cfa=%d off=%d\n", (unsigned long)loc,
				    cfa, r, r == 0 ? row.cfa : -1, r == 0 ? row.cfa_offset : 0);
			return;
		}
		if (rbp && rbp[0] == 'c' && sscanf(rbp, "c%ld", &off) == 1) {
			if (row.rbp != CFI_RBP_OFFSET || row.rbp_offset != off) {
				c->mismatches++;
				print_error("%#lx: want rbp %s, got %d %d\n", (unsigned long)loc,
					    rbp, row.rbp, row.rbp_offset);
			}
		} else if (row.rbp != CFI_RBP_SAME) {
			c->mismatches++;
			print_error("%#lx: want rbp unchanged (%s), got %d\n", (unsigned long)loc,
				    rbp ? rbp : "-", row.rbp);
		}
		return;
	}
	/* "exp": an expression CFA; we know the .plt one and signal frames, nothing else. */
	if (r == 0 && row.cfa != CFI_CFA_PLT && row.cfa != CFI_CFA_SIGNAL) {
		c->mismatches++;
		print_error("%#lx: expression CFA read as rule %d\n", (unsigned long)loc, row.cfa);
	}
}

/* Runs readelf on path and compares every row it prints. */
static void check_against_readelf(const char *path, Counts *c)
{
	_cleanup_(cfi_freep) Cfi *cfi = NULL;
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	char cmd[512], line[4096], *cols[32];
	int rbp_col = -1, ra_col = -1, n_cols = 0;
	bool in_fde = false;
	FILE *f;

	assert_true(fd >= 0);
	assert_int_equal(cfi_load_fd(fd, &cfi), 0);
	snprintf(cmd, sizeof(cmd), "readelf --debug-dump=frames-interp '%s' 2>/dev/null", path);
	f = popen(cmd, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		char *save = NULL, *tok;
		uint64_t loc;
		char *end;

		/* FDE tables only: a CIE's initial table is printed at LOC 0. */
		if (strstr(line, " CIE ")) {
			in_fde = false;
			continue;
		}
		if (strstr(line, " FDE ")) {
			in_fde = true;
			continue;
		}
		n_cols = 0;
		for (tok = strtok_r(line, " \t\n", &save); tok && n_cols < 32;
		     tok = strtok_r(NULL, " \t\n", &save)) {
			/* "r10 (r10)" is one column: a register rule naming the register. */
			if (tok[0] == '(' && n_cols > 0)
				continue;
			cols[n_cols++] = tok;
		}
		if (!in_fde)
			continue;
		if (n_cols >= 2 && streq(cols[0], "LOC") && streq(cols[1], "CFA")) {
			rbp_col = ra_col = -1;
			for (int i = 2; i < n_cols; i++) {
				if (streq(cols[i], "rbp"))
					rbp_col = i;
				else if (streq(cols[i], "ra"))
					ra_col = i;
			}
			continue;
		}
		if (n_cols < 3 || ra_col < 0 || n_cols <= ra_col || strlen(cols[0]) != 16)
			continue;
		loc = strtoull(cols[0], &end, 16);
		if (*end)
			continue;
		compare_row(cfi, loc, cols[1], rbp_col > 0 ? cols[rbp_col] : NULL, cols[ra_col], c);
	}
	pclose(f);
}

static void test_libraries_vs_readelf(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(libraries); i++) {
		Counts c = { 0 };

		if (access(libraries[i], R_OK) < 0)
			continue;
		check_against_readelf(libraries[i], &c);
		print_message("%s: %zu rows, %zu checked, %zu mismatches\n", libraries[i], c.rows,
			      c.checked, c.mismatches);
		assert_true(c.rows > 1000);
		assert_true(c.checked > c.rows * 9 / 10);
		assert_int_equal(c.mismatches, 0);
	}
}

/* Function starts: every FDE readelf lists covers its middle and its last byte, and no other
 * FDE overlaps it in a linked library, so the start found there is the FDE's own. */
static void test_function_start_vs_readelf(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(libraries); i++) {
		_cleanup_(cfi_freep) Cfi *cfi = NULL;
		size_t fdes = 0, ok = 0;
		char cmd[512], line[512];
		uint64_t start;
		FILE *f;
		int fd;

		if (access(libraries[i], R_OK) < 0)
			continue;
		fd = open(libraries[i], O_RDONLY | O_CLOEXEC);
		assert_true(fd >= 0);
		assert_int_equal(cfi_load_fd(fd, &cfi), 0);
		close(fd);
		snprintf(cmd, sizeof(cmd), "readelf --debug-dump=frames '%s' 2>/dev/null",
			 libraries[i]);
		f = popen(cmd, "r");
		assert_non_null(f);
		while (fgets(line, sizeof(line), f)) {
			unsigned long long lo, hi;
			const char *pc = strstr(line, " FDE ");

			if (!pc || !(pc = strstr(pc, "pc=")) ||
			    sscanf(pc, "pc=%llx..%llx", &lo, &hi) != 2 || hi <= lo)
				continue;
			fdes++;
			if (cfi_function_start(cfi, lo + (hi - lo) / 2, &start) == 0 &&
			    start == lo && cfi_function_start(cfi, hi - 1, &start) == 0 &&
			    start == lo)
				ok++;
		}
		pclose(f);
		print_message("%s: %zu FDEs, %zu with their start found\n", libraries[i], fdes, ok);
		assert_true(fdes > 100);
		assert_int_equal(ok, fdes);
		/* Below the first FDE: none. */
		assert_int_equal(cfi_function_start(cfi, 0, &start), -ENOENT);
	}
}

/* ---- hand-built .eh_frame ---- */

typedef struct Buf {
	uint8_t d[4096];
	size_t n;
} Buf;

static void put(Buf *b, const void *p, size_t n)
{
	if (n > 0)
		memcpy(b->d + b->n, p, n);
	b->n += n;
}

static void put8(Buf *b, uint8_t v)
{
	put(b, &v, 1);
}

static void put32(Buf *b, uint32_t v)
{
	put(b, &v, 4);
}

/* CIE "zR" (or "zRS"), code 1, data -8, ra 16, pcrel|sdata4; def_cfa rsp 8, ra at cfa-8. */
static size_t put_cie(Buf *b, bool signal)
{
	size_t start = b->n;
	static const uint8_t insns[] = { 0x0c, 7, 8, 0x90, 1 };

	put32(b, 0); /* length, patched */
	put32(b, 0); /* CIE id */
	put8(b, 1);  /* version */
	put(b, signal ? "zRS" : "zR", signal ? 4 : 3);
	put8(b, 1);    /* code alignment */
	put8(b, 0x78); /* data alignment -8 */
	put8(b, 16);   /* return address register */
	put8(b, 1);    /* augmentation data length */
	put8(b, 0x1b); /* FDE pointers: pcrel | sdata4 */
	put(b, insns, sizeof(insns));
	while ((b->n - start) % 4)
		put8(b, 0);
	*(uint32_t *)(b->d + start) = (uint32_t)(b->n - start - 4);
	return start;
}

/* An FDE for [pc, pc + range) (pc as an absolute vaddr; the section is at vaddr 0). */
static void put_fde(Buf *b, size_t cie, uint32_t pc, uint32_t range, const uint8_t *insns, size_t n)
{
	size_t start = b->n;

	put32(b, 0);
	put32(b, (uint32_t)(b->n - cie)); /* CIE pointer: back from this field */
	put32(b, (uint32_t)(pc - b->n));  /* pcrel initial location */
	put32(b, range);
	put8(b, 0); /* augmentation data length */
	put(b, insns, n);
	while ((b->n - start) % 4)
		put8(b, 0);
	*(uint32_t *)(b->d + start) = (uint32_t)(b->n - start - 4);
}

static void assert_row(Cfi *cfi, uint64_t pc, int cfa, int off, int rbp, int rbp_off)
{
	CfiRow row;

	assert_int_equal(cfi_lookup(cfi, pc, &row), 0);
	assert_int_equal(row.cfa, cfa);
	if (cfa == CFI_CFA_RSP || cfa == CFI_CFA_RBP || cfa == CFI_CFA_PLT)
		assert_int_equal(row.cfa_offset, off);
	assert_int_equal(row.rbp, rbp);
	if (rbp == CFI_RBP_OFFSET)
		assert_int_equal(row.rbp_offset, rbp_off);
}

static void test_synthetic(void **state)
{
	/* push rbp; mov rsp,rbp; ...; pop rbp: the frame-pointer prologue. */
	static const uint8_t fp_fn[] = {
		0x41,	     /* advance 1 */
		0x0e, 16,    /* def_cfa_offset 16 */
		0x86, 2,     /* rbp at cfa-16 */
		0x43,	     /* advance 3 */
		0x0d, 6,     /* def_cfa_register rbp */
		0x4c,	     /* advance 12 */
		0x0a,	     /* remember_state */
		0x0c, 7,  8, /* def_cfa rsp 8 */
		0xc6,	     /* restore rbp */
		0x41,	     /* advance 1 */
		0x0b,	     /* restore_state */
	};
	/* The .plt expression, as binutils writes it. */
	static const uint8_t plt[] = { 0x0e, 16,   0x4a, 0x0f, 11,   0x77, 8,	 0x80,
				       0,    0x3f, 0x1a, 0x3b, 0x2a, 0x33, 0x24, 0x22 };
	/* _start: the return address is undefined. */
	static const uint8_t outermost[] = { 0x07, 16 };
	_cleanup_(cfi_freep) Cfi *cfi = NULL;
	CfiRow row;
	Buf b = { 0 };
	size_t cie, scie;

	(void)state;
	cie = put_cie(&b, false);
	scie = put_cie(&b, true);
	put_fde(&b, cie, 0x1000, 0x20, fp_fn, sizeof(fp_fn));
	put_fde(&b, cie, 0x2000, 0x40, plt, sizeof(plt));
	put_fde(&b, cie, 0x3000, 0x10, outermost, sizeof(outermost));
	put_fde(&b, scie, 0x4000, 0x10, NULL, 0);
	put32(&b, 0); /* terminator */
	assert_int_equal(cfi_load_eh_frame(b.d, b.n, 0, &cfi), 0);

	assert_row(cfi, 0x1000, CFI_CFA_RSP, 8, CFI_RBP_SAME, 0);
	assert_row(cfi, 0x1001, CFI_CFA_RSP, 16, CFI_RBP_OFFSET, -16);
	assert_row(cfi, 0x1003, CFI_CFA_RSP, 16, CFI_RBP_OFFSET, -16);
	assert_row(cfi, 0x1004, CFI_CFA_RBP, 16, CFI_RBP_OFFSET, -16);
	assert_row(cfi, 0x100f, CFI_CFA_RBP, 16, CFI_RBP_OFFSET, -16);
	assert_row(cfi, 0x1010, CFI_CFA_RSP, 8, CFI_RBP_SAME, 0);      /* after the epilogue */
	assert_row(cfi, 0x1011, CFI_CFA_RBP, 16, CFI_RBP_OFFSET, -16); /* state restored */
	assert_row(cfi, 0x101f, CFI_CFA_RBP, 16, CFI_RBP_OFFSET, -16);
	/* Between FDEs and past the last: nothing. */
	assert_int_equal(cfi_lookup(cfi, 0x1020, &row), -ENOENT);
	assert_int_equal(cfi_lookup(cfi, 0xfff, &row), -ENOENT);
	assert_int_equal(cfi_lookup(cfi, 0x5000, &row), -ENOENT);
	assert_row(cfi, 0x2000, CFI_CFA_RSP, 16, CFI_RBP_SAME, 0);
	assert_row(cfi, 0x2009, CFI_CFA_RSP, 16, CFI_RBP_SAME, 0);
	assert_row(cfi, 0x200a, CFI_CFA_PLT, 11, CFI_RBP_SAME, 0);
	assert_row(cfi, 0x203f, CFI_CFA_PLT, 11, CFI_RBP_SAME, 0);
	assert_row(cfi, 0x3000, CFI_CFA_END, 0, CFI_RBP_SAME, 0);
	assert_row(cfi, 0x4008, CFI_CFA_SIGNAL, 0, CFI_RBP_SAME, 0);
}

static size_t put_uleb(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	do {
		p[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			p[n] |= 0x80;
	} while (p[n++] & 0x80);
	return n;
}

static size_t put_sleb(uint8_t *p, int64_t v)
{
	size_t n = 0;
	bool more;

	do {
		uint8_t b = (uint8_t)(v & 0x7f);

		v >>= 7; /* arithmetic on GCC and clang */
		more = !((v == 0 && !(b & 0x40)) || (v == -1 && (b & 0x40)));
		p[n++] = more ? (uint8_t)(b | 0x80) : b;
	} while (more);
	return n;
}

/*
 * Factored offsets whose product with the data alignment (-8) overflows int64 (UBSan reports it):
 * wrapped, they read as plausible offsets (2^61 + 2 times -8 is -16 modulo 2^64), which a release
 * build took as a frame; and unsigned offsets over INT64_MAX, which read as negative ones. The
 * FDE is refused instead: no row at all, so the unwinder falls back.
 */
static void test_factored_overflow(void **state)
{
	static const uint64_t big = (1ULL << 61) + 2;
	static const struct {
		uint8_t op;
		int reg; /* the register operand, or -1 */
		bool is_signed;
		int64_t v;
	} cases[] = {
		{ DW_CFA_offset | 6, -1, false, (int64_t)big },
		{ DW_CFA_offset_extended, 6, false, (int64_t)big },
		{ DW_CFA_offset_extended_sf, 6, true, (int64_t)big },
		{ DW_CFA_def_cfa_sf, 7, true, -(int64_t)big },
		{ DW_CFA_def_cfa_offset_sf, -1, true, -(int64_t)big },
		{ DW_CFA_GNU_negative_offset_extended, 6, false, (int64_t)big },
		/* -(int64_t)2^63 itself overflows. */
		{ DW_CFA_GNU_negative_offset_extended, 6, false, INT64_MIN },
		/* Unsigned, unfactored: 2^64 - 16 is no offset of -16. */
		{ DW_CFA_def_cfa, 7, false, -16 },
		{ DW_CFA_def_cfa_offset, -1, false, -16 },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		_cleanup_(cfi_freep) Cfi *cfi = NULL;
		uint8_t insns[32];
		size_t n = 0, cie;
		CfiRow row;
		Buf b = { 0 };

		insns[n++] = DW_CFA_advance_loc | 1;
		insns[n++] = cases[i].op;
		if (cases[i].reg >= 0)
			insns[n++] = (uint8_t)cases[i].reg;
		n += cases[i].is_signed ? put_sleb(insns + n, cases[i].v)
					: put_uleb(insns + n, (uint64_t)cases[i].v);
		insns[n++] = DW_CFA_advance_loc | 1;
		cie = put_cie(&b, false);
		put_fde(&b, cie, 0x1000, 0x10, insns, n);
		/* A sound FDE beside it still compiles. */
		put_fde(&b, cie, 0x2000, 0x10, NULL, 0);
		put32(&b, 0);
		assert_int_equal(cfi_load_eh_frame(b.d, b.n, 0, &cfi), 0);
		for (uint64_t pc = 0x1000; pc < 0x1010; pc++)
			assert_int_equal(cfi_lookup(cfi, pc, &row), -ENOENT);
		assert_row(cfi, 0x2000, CFI_CFA_RSP, 8, CFI_RBP_SAME, 0);
	}
}

/* The .eh_frame of a real library, cut and damaged every way: never a crash (run under ASan),
 * and a prefix still compiles to the rows it holds. */
static void test_hostile(void **state)
{
	_cleanup_free_ uint8_t *copy = NULL;
	_cleanup_close_ int fd = open(libraries[1], O_RDONLY | O_CLOEXEC);
	Elf *elf;
	Elf_Scn *scn = NULL;
	size_t shstrndx, size = 0;
	uint64_t vaddr = 0;
	uint32_t seed = 7;

	(void)state;
	assert_true(fd >= 0);
	elf_version(EV_CURRENT);
	elf = elf_begin(fd, ELF_C_READ, NULL);
	assert_non_null(elf);
	assert_int_equal(elf_getshdrstrndx(elf, &shstrndx), 0);
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		Elf_Data *d;

		gelf_getshdr(scn, &sh);
		if (!streq(elf_strptr(elf, shstrndx, sh.sh_name), ".eh_frame"))
			continue;
		d = elf_getdata(scn, NULL);
		size = d->d_size;
		vaddr = sh.sh_addr;
		copy = malloc(size);
		memcpy(copy, d->d_buf, size);
	}
	elf_end(elf);
	assert_non_null(copy);

	for (size_t cut = 0; cut < size; cut += 7) {
		/* An exact-size buffer, so ASan sees any read past it. */
		_cleanup_free_ uint8_t *part = malloc(MAX(cut, (size_t)1));
		Cfi *cfi = NULL;

		memcpy(part, copy, cut);
		if (cfi_load_eh_frame(part, cut, vaddr, &cfi) == 0)
			assert_true(cfi_rows(cfi) > 0);
		cfi_free(cfi);
	}
	for (int round = 0; round < 300; round++) {
		_cleanup_free_ uint8_t *bad = malloc(size);
		Cfi *cfi = NULL;

		memcpy(bad, copy, size);
		for (int k = 0; k < 8; k++) {
			seed = seed * 1103515245u + 12345u;
			bad[(seed >> 8) % size] ^= (uint8_t)(seed >> 3);
		}
		(void)cfi_load_eh_frame(bad, size, vaddr, &cfi);
		cfi_free(cfi);
	}
}

/* ---- hostile ELF files, written by the test ---- */

#define EH_VADDR 0x100000u
#define HDR_VADDR 0x80000u
#define EH_OFFSET 0x1000u
#define FN_PC 0x400000u

/* A growable byte string for sections too big for Buf. */
typedef struct Bytes {
	uint8_t *d;
	size_t n, allocated;
} Bytes;

static void bytes_put(Bytes *b, const void *p, size_t n)
{
	assert_int_equal(GREEDY_REALLOC(b->d, b->allocated, b->n + n), 0);
	memcpy(b->d + b->n, p, n);
	b->n += n;
}

static void bytes_put32(Bytes *b, uint32_t v)
{
	bytes_put(b, &v, 4);
}

static void bytes_align4(Bytes *b, size_t start)
{
	while ((b->n - start) % 4)
		bytes_put(b, "", 1);
}

/* .eh_frame at EH_VADDR: the CIE of put_cie(), then n_fdes FDEs of rows rows each (advance 1,
 * then def_cfa_offset 16 or 24 in turn: no two rows merge) or, with nops, of that many
 * DW_CFA_nop; FDE k covers [FN_PC + k * span, + span) with span = rows + 1. Offsets of the FDEs
 * in ret_offs (n_fdes). */
static void eh_frame_build(Bytes *b, size_t n_fdes, size_t rows, size_t nops, uint32_t *ret_offs)
{
	Buf cie = { 0 };
	uint32_t span = (uint32_t)rows + 1;

	put_cie(&cie, false);
	bytes_put(b, cie.d, cie.n);
	for (size_t k = 0; k < n_fdes; k++) {
		size_t start = b->n;

		ret_offs[k] = (uint32_t)start;
		bytes_put32(b, 0);
		bytes_put32(b, (uint32_t)(b->n)); /* back to the CIE at offset 0 */
		bytes_put32(b, (uint32_t)(FN_PC + k * span - (EH_VADDR + b->n)));
		bytes_put32(b, span);
		bytes_put(b, "", 1); /* augmentation data length */
		for (size_t i = 0; i < rows; i++) {
			uint8_t row[] = { DW_CFA_advance_loc | 1, DW_CFA_def_cfa_offset,
					  i % 2 ? 16 : 24 };

			bytes_put(b, row, sizeof(row));
		}
		for (size_t i = 0; i < nops; i++)
			bytes_put(b, (uint8_t[]){ DW_CFA_nop }, 1);
		bytes_align4(b, start);
		*(uint32_t *)(b->d + start) = (uint32_t)(b->n - start - 4);
	}
	bytes_put32(b, 0);
}

/* .eh_frame_hdr at HDR_VADDR with the given (pc, FDE offset) entries, sorted by pc. */
static void eh_frame_hdr_build(Bytes *b, size_t n, const uint64_t *pcs, const uint32_t *offs)
{
	bytes_put(b,
		  (uint8_t[]){ 1, DW_EH_PE_pcrel | DW_EH_PE_sdata4, DW_EH_PE_udata4,
			       DW_EH_PE_datarel | DW_EH_PE_sdata4 },
		  4);
	bytes_put32(b, (uint32_t)(EH_VADDR - (HDR_VADDR + 4)));
	bytes_put32(b, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		bytes_put32(b, (uint32_t)(pcs[i] - HDR_VADDR));
		bytes_put32(b, (uint32_t)(EH_VADDR + offs[i] - HDR_VADDR));
	}
}

/*
 * Writes an ELF file with .eh_frame (eh at EH_OFFSET, its header claiming eh_claimed bytes of
 * type eh_type), .eh_frame_hdr (when hdr) and .shstrtab; then extends the file to file_size
 * (sparse) when that is larger. Returns an fd open on it.
 */
static int elf_write(const char *dir, const char *name, const Bytes *eh, uint64_t eh_claimed,
		     uint32_t eh_type, const Bytes *hdr, uint64_t file_size)
{
	_cleanup_free_ char *path = NULL;
	uint64_t hdr_off = (EH_OFFSET + eh->n + 7) & ~7ull;
	EhElf e;
	int fd;

	eh_elf_init(&e,
		    &(Elf64_Shdr){ .sh_type = eh_type,
				   .sh_flags = SHF_ALLOC,
				   .sh_addr = EH_VADDR,
				   .sh_offset = EH_OFFSET,
				   .sh_size = eh_claimed,
				   .sh_addralign = 8 },
		    &(Elf64_Shdr){ .sh_type = SHT_PROGBITS,
				   .sh_flags = SHF_ALLOC,
				   .sh_addr = HDR_VADDR,
				   .sh_offset = hdr_off,
				   .sh_size = hdr ? hdr->n : 0,
				   .sh_addralign = 4 },
		    hdr_off + (hdr ? hdr->n : 0));
	if (!hdr) /* no index: the section is nameless, so not found */
		e.sh[2].sh_name = 0;
	assert_true(asprintf(&path, "%s/%s", dir, name) > 0);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, &e.ehdr, sizeof(e.ehdr), 0), (ssize_t)sizeof(e.ehdr));
	assert_int_equal(pwrite(fd, eh->d, eh->n, EH_OFFSET), (ssize_t)eh->n);
	if (hdr)
		assert_int_equal(pwrite(fd, hdr->d, hdr->n, (off_t)hdr_off), (ssize_t)hdr->n);
	assert_int_equal(pwrite(fd, eh_elf_names, sizeof(eh_elf_names), (off_t)e.names_off),
			 (ssize_t)sizeof(eh_elf_names));
	assert_int_equal(pwrite(fd, e.sh, sizeof(e.sh), (off_t)e.sh_off), (ssize_t)sizeof(e.sh));
	if (file_size > e.size)
		assert_int_equal(ftruncate(fd, (off_t)file_size), 0);
	return fd;
}

/* An indexed file of n_fdes FDEs of rows rows (and nops nops) each, one index entry per FDE. */
static int elf_indexed(const char *dir, const char *name, size_t n_fdes, size_t rows, size_t nops)
{
	_cleanup_free_ uint32_t *offs = calloc(n_fdes, sizeof(uint32_t));
	_cleanup_free_ uint64_t *pcs = calloc(n_fdes, sizeof(uint64_t));
	Bytes eh = { 0 }, hdr = { 0 };
	int fd;

	assert_non_null(offs);
	assert_non_null(pcs);
	eh_frame_build(&eh, n_fdes, rows, nops, offs);
	for (size_t k = 0; k < n_fdes; k++)
		pcs[k] = FN_PC + k * (rows + 1);
	eh_frame_hdr_build(&hdr, n_fdes, pcs, offs);
	fd = elf_write(dir, name, &eh, eh.n, SHT_PROGBITS, &hdr, 0);
	free(eh.d);
	free(hdr.d);
	return fd;
}

/*
 * Section headers that claim more than the file holds: a 1 GiB .eh_frame over a sparse file
 * (20 KB on disk) was read and copied whole (2 GB of RSS, 13 s); one past the end of the file;
 * one with no bytes in the file. None is allocated; a sound file still loads.
 */
static void test_hostile_sections(void **state)
{
	_cleanup_tmpdir_ char *dir = tmpdir_new_named("test-cfi");
	Bytes eh = { 0 }, hdr = { 0 };
	uint32_t off;
	uint64_t pc = FN_PC;
	Cfi *cfi = NULL;
	CfiRow row;
	int fd;

	(void)state;
	assert_non_null(dir);
	eh_frame_build(&eh, 1, 3, 0, &off);
	eh_frame_hdr_build(&hdr, 1, &pc, &off);
	/* Zero padding to 20 KB: the section ends at the terminator. */
	while (eh.n < 20000)
		bytes_put(&eh, "", 1);

	fd = elf_write(dir, "sparse", &eh, 1ull << 30, SHT_PROGBITS, &hdr,
		       EH_OFFSET + (1ull << 30));
	assert_int_equal(cfi_load_fd(fd, &cfi), -EFBIG);
	assert_null(cfi);
	close(fd);

	fd = elf_write(dir, "past-end", &eh, 1u << 20, SHT_PROGBITS, &hdr, 0);
	assert_int_equal(cfi_load_fd(fd, &cfi), -EBADMSG);
	close(fd);

	fd = elf_write(dir, "nobits", &eh, 1ull << 30, SHT_NOBITS, &hdr, 0);
	assert_int_equal(cfi_load_fd(fd, &cfi), -ENOENT);
	close(fd);

	fd = elf_write(dir, "sound", &eh, eh.n, SHT_PROGBITS, &hdr, 0);
	assert_int_equal(cfi_load_fd(fd, &cfi), 0);
	close(fd);
	assert_int_equal(cfi_lookup(cfi, FN_PC + 2, &row), 0);
	assert_int_equal(row.cfa_offset, 16);
	assert_true(cfi_memory(cfi) < 1024 * 1024);
	cfi = cfi_free(cfi);

	/* Without the index the same checks hold (eager). */
	fd = elf_write(dir, "sparse-eager", &eh, 1ull << 30, SHT_PROGBITS, NULL,
		       EH_OFFSET + (1ull << 30));
	assert_int_equal(cfi_load_fd(fd, &cfi), -EFBIG);
	close(fd);
	free(eh.d);
	free(hdr.d);
}

/*
 * One FDE with more rows than CFI_MAX_FDE_ROWS (a hostile one had 8 million: 3.6 s and 450 MB
 * for the first lookup), or with more instructions than CFI_MAX_FDE_INSNS: refused, counted,
 * decoded once however often it is looked up. An FDE just under the bound is kept.
 */
static void test_fde_bounds(void **state)
{
	_cleanup_tmpdir_ char *dir = tmpdir_new_named("test-cfi");
	static const struct {
		size_t rows, nops;
		bool refused;
	} cases[] = {
		{ CFI_MAX_FDE_ROWS + 100, 0, true },
		{ 1, CFI_MAX_FDE_INSNS + 1, true },
		{ CFI_MAX_FDE_ROWS - 100, 0, false },
	};

	(void)state;
	assert_non_null(dir);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		_cleanup_(cfi_freep) Cfi *cfi = NULL;
		CfiStats st;
		CfiRow row;
		int fd = elf_indexed(dir, "big-fde", 1, cases[i].rows, cases[i].nops);

		assert_int_equal(cfi_load_fd(fd, &cfi), 0);
		close(fd);
		for (int k = 0; k < 10; k++)
			assert_int_equal(cfi_lookup(cfi, FN_PC + 1 + (uint64_t)k, &row),
					 cases[i].refused ? -ENOENT : 0);
		cfi_stats(cfi, &st);
		assert_int_equal(st.decoded_fdes, 1);
		assert_int_equal(st.refused_fdes, cases[i].refused ? 1 : 0);
		if (cases[i].refused) {
			assert_true(st.decoded_rows <= 2);
			assert_true(st.cache_bytes <= 2 * (sizeof(uint64_t) + sizeof(CfiRow)));
		} else {
			assert_true(st.decoded_rows >= cases[i].rows);
		}
	}
}

/*
 * An .eh_frame_hdr whose 128 entries all name one big FDE: it is decoded once, not once per
 * entry (which took 10 GB and 165 s with 4 million rows). And a binary whose FDEs together hold
 * more rows than CFI_MAX_CACHE_BYTES keeps no more than that.
 */
static void test_index_bounds(void **state)
{
	_cleanup_tmpdir_ char *dir = tmpdir_new_named("test-cfi");
	_cleanup_(cfi_freep) Cfi *cfi = NULL;
	const size_t rows = 60000, n_entries = 128, n_fdes = 60;
	uint64_t pcs[128];
	uint32_t offs[128];
	Bytes eh = { 0 }, hdr = { 0 };
	CfiStats st;
	CfiRow row;
	int fd;

	(void)state;
	assert_non_null(dir);
	eh_frame_build(&eh, 1, rows, 0, offs);
	for (size_t k = 0; k < n_entries; k++) {
		pcs[k] = FN_PC + k * (rows / n_entries);
		offs[k] = offs[0];
	}
	eh_frame_hdr_build(&hdr, n_entries, pcs, offs);
	fd = elf_write(dir, "shared", &eh, eh.n, SHT_PROGBITS, &hdr, 0);
	assert_int_equal(cfi_load_fd(fd, &cfi), 0);
	close(fd);
	for (size_t k = 0; k < n_entries; k++)
		assert_int_equal(cfi_lookup(cfi, pcs[k] + 1, &row), 0);
	/* The section and one FDE's rows. */
	assert_true(cfi_memory(cfi) < eh.n + (rows + 2) * 20 + 256 * 1024);
	cfi_stats(cfi, &st);
	assert_int_equal(st.decoded_fdes, 1);
	assert_int_equal(st.cached_fdes, 1);
	assert_true(st.decoded_rows >= rows && st.decoded_rows <= rows + 2);
	cfi = cfi_free(cfi);
	free(eh.d);
	free(hdr.d);

	/* 60 FDEs of 20000 rows: 24 MB of rows if all were kept. */
	fd = elf_indexed(dir, "many", n_fdes, 20000, 0);
	assert_int_equal(cfi_load_fd(fd, &cfi), 0);
	close(fd);
	for (size_t k = 0; k < n_fdes; k++)
		assert_int_equal(cfi_lookup(cfi, FN_PC + k * 20001 + 5, &row), 0);
	cfi_stats(cfi, &st);
	assert_int_equal(st.decoded_fdes, n_fdes);
	assert_true(st.cache_bytes <= CFI_MAX_CACHE_BYTES);
	assert_true(st.cached_fdes < n_fdes);
	/* The most recent is kept, the oldest went. */
	assert_int_equal(cfi_lookup(cfi, FN_PC + (n_fdes - 1) * 20001 + 5, &row), 0);
	cfi_stats(cfi, &st);
	assert_int_equal(st.decoded_fdes, n_fdes);
	assert_int_equal(cfi_lookup(cfi, FN_PC + 5, &row), 0);
	cfi_stats(cfi, &st);
	assert_int_equal(st.decoded_fdes, n_fdes + 1);
}

/*
 * A lazy table from a file keeps no copy of .eh_frame (a compiler's is megabytes, of which a
 * profile decodes a few FDEs): it reads each FDE from a descriptor of its own when a lookup
 * first needs it, after the caller closed its own. A file truncated after the load gives no
 * rows for the FDEs not decoded before, and the rest keep theirs.
 */
static void test_lazy_reads_file(void **state)
{
	_cleanup_tmpdir_ char *dir = tmpdir_new_named("test-cfi");
	_cleanup_(cfi_freep) Cfi *cfi = NULL;
	const size_t n_fdes = 400, rows = 30, span = rows + 1;
	struct stat st_file;
	CfiStats st;
	CfiRow row;
	int fd, wfd;

	(void)state;
	assert_non_null(dir);
	wfd = elf_indexed(dir, "lazy", n_fdes, rows, 0);
	assert_int_equal(fstat(wfd, &st_file), 0);
	fd = dup(wfd);
	assert_true(fd >= 0);
	assert_int_equal(cfi_load_fd(fd, &cfi), 0);
	close(fd);
	cfi_stats(cfi, &st);
	assert_int_equal(st.section_bytes, 0);
	/* The index (12 bytes an FDE) and the table, not the section's 400 FDEs of 30 rows. */
	assert_true(cfi_memory(cfi) < (size_t)st_file.st_size / 4);
	for (size_t k = 0; k < n_fdes / 2; k++) {
		assert_int_equal(cfi_lookup(cfi, FN_PC + k * span + 3, &row), 0);
		assert_int_equal(row.cfa, CFI_CFA_RSP);
	}
	cfi_stats(cfi, &st);
	assert_int_equal(st.decoded_fdes, n_fdes / 2);
	assert_int_equal(st.refused_fdes, 0);

	/* Truncated to its first part: the FDEs past it cannot be read, those decoded stay. */
	assert_int_equal(ftruncate(wfd, EH_OFFSET + 64), 0);
	close(wfd);
	assert_int_equal(cfi_lookup(cfi, FN_PC + (n_fdes - 1) * span + 3, &row), -ENOENT);
	assert_int_equal(cfi_lookup(cfi, FN_PC + (n_fdes / 2) * span + 3, &row), -ENOENT);
	for (size_t k = 0; k < n_fdes / 2; k++)
		assert_int_equal(cfi_lookup(cfi, FN_PC + k * span + 3, &row), 0);
}

/* Freeing a table closes only a descriptor of its own: an eager one has none (a version closed
 * descriptor 0, which calloc had left in the field, and with it whatever file held it then). */
static void test_free_closes_own_only(void **state)
{
	Bytes eh = { 0 };
	uint32_t off;
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	(void)state;
	assert_true(fd >= 0);
	if (fcntl(0, F_GETFD) < 0)
		assert_int_equal(dup2(fd, 0), 0);
	eh_frame_build(&eh, 1, 3, 0, &off);
	for (int i = 0; i < 2; i++) {
		Cfi *cfi = NULL;

		assert_int_equal(cfi_load_eh_frame(eh.d, eh.n, EH_VADDR, &cfi), 0);
		cfi_free(cfi);
		assert_true(fcntl(0, F_GETFD) >= 0);
	}
	close(fd);
	free(eh.d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_libraries_vs_readelf),
		cmocka_unit_test(test_function_start_vs_readelf),
		cmocka_unit_test(test_synthetic),
		cmocka_unit_test(test_factored_overflow),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_hostile_sections),
		cmocka_unit_test(test_fde_bounds),
		cmocka_unit_test(test_index_bounds),
		cmocka_unit_test(test_lazy_reads_file),
		cmocka_unit_test(test_free_closes_own_only),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
