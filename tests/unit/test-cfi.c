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
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>

#include "base/macro.h"
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
			print_error("%#lx: ra %s read as rule %d\n", (unsigned long)loc, ra, row.cfa);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_libraries_vs_readelf),
		cmocka_unit_test(test_synthetic),
		cmocka_unit_test(test_factored_overflow),
		cmocka_unit_test(test_hostile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
