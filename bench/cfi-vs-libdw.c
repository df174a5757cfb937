/* SPDX-License-Identifier: MIT */
/*
 * profq-bench-cfi: profqd's own CFI rows (daemon/unwind/cfi.c) against libdw's CFI interface
 * (dwarf_getcfi_elf, dwarf_cfi_addrframe, dwarf_frame_cfa, dwarf_frame_register) on the same
 * addresses of one binary: the cost of one unwind-row lookup, the memory each keeps, and whether
 * the two agree on the rule.
 *
 *   profq-bench-cfi [--addresses N] [--hot N] [--runs N] [--seed N] BINARY
 *
 * Addresses: N (default 20000) uniformly random instruction addresses inside the sized FUNC
 * symbols of BINARY (.symtab, else .dynsym), fixed seed; and a hot set of the first --hot
 * (default 256) of them, looked up over and over, as the frames of a busy process are.
 * Each run, for each side, from a fresh load (the file is open; page cache warm):
 *   load         cfi_load_fd / elf_begin(ELF_C_READ, as cfi_load_fd) + dwarf_getcfi_elf
 *   cold         one pass over the N addresses right after the load
 *   warm         the N addresses again (what each caches is in place)
 *   hot          the hot set, 100 passes
 * Prints the median of the runs for each figure (ns per lookup; load in µs), then the heap each
 * side grew by over a run (mallinfo2: the file image read by ELF_C_READ is counted for both),
 * then the agreement of the rules on every address: CFA register and offset, the caller's RBP
 * (same value or saved at CFA + offset) and the return address (CFA - 8, or undefined: the
 * outermost frame). profq's PLT and signal-frame rules are DWARF expressions in libdw; they
 * agree when libdw also has an expression there.
 */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/macro.h"
#include "unwind/cfi.h"

/* DWARF register numbers of x86-64 (System V psABI, figure 3.36). */
#define REG_RBP 6
#define REG_RSP 7
#define REG_RA 16

#define MAX_RUNS 64

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static size_t heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* xorshift64*: a fixed sequence for a given seed. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

typedef struct Func {
	uint64_t start, size;
} Func;

/* The sized functions of the symbol table (.symtab, else .dynsym). */
static int read_functions(int fd, Func **ret, size_t *ret_n)
{
	Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	Elf_Scn *scn = NULL, *use = NULL;
	Func *f = NULL;
	size_t n = 0;

	if (!elf)
		return -ENOEXEC;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;

		if (!gelf_getshdr(scn, &sh))
			continue;
		if (sh.sh_type == SHT_SYMTAB || (sh.sh_type == SHT_DYNSYM && !use))
			use = scn;
	}
	if (use) {
		Elf_Data *d = elf_getdata(use, NULL);
		GElf_Shdr sh;
		size_t count;

		gelf_getshdr(use, &sh);
		count = sh.sh_entsize ? sh.sh_size / sh.sh_entsize : 0;
		f = calloc(count ? count : 1, sizeof(*f));
		for (size_t i = 0; f && d && i < count; i++) {
			GElf_Sym s;

			if (!gelf_getsym(d, (int)i, &s) || GELF_ST_TYPE(s.st_info) != STT_FUNC ||
			    s.st_shndx == SHN_UNDEF || s.st_size == 0)
				continue;
			f[n++] = (Func){ s.st_value, s.st_size };
		}
	}
	elf_end(elf);
	if (!f || n == 0) {
		free(f);
		return -ENOENT;
	}
	*ret = f;
	*ret_n = n;
	return 0;
}

/* A rule in terms both sides can express. */
typedef enum Cfa {
	CFA_NONE,
	CFA_RSP,
	CFA_RBP,
	CFA_EXPR,
	CFA_END
} Cfa;
typedef struct Rule {
	Cfa cfa;
	int64_t cfa_offset;
	bool rbp_saved;
	int64_t rbp_offset;
} Rule;

static bool rule_from_profq(Cfi *c, uint64_t addr, Rule *r)
{
	CfiRow row;

	*r = (Rule){ 0 };
	if (cfi_lookup(c, addr, &row) < 0)
		return false;
	switch (row.cfa) {
	case CFI_CFA_RSP:
		r->cfa = CFA_RSP;
		r->cfa_offset = row.cfa_offset;
		break;
	case CFI_CFA_RBP:
		r->cfa = CFA_RBP;
		r->cfa_offset = row.cfa_offset;
		break;
	case CFI_CFA_PLT:
	case CFI_CFA_SIGNAL:
		r->cfa = CFA_EXPR;
		return true;
	case CFI_CFA_END:
		r->cfa = CFA_END;
		return true;
	default:
		r->cfa = CFA_NONE;
		return true;
	}
	r->rbp_saved = row.rbp == CFI_RBP_OFFSET;
	r->rbp_offset = r->rbp_saved ? row.rbp_offset : 0;
	return true;
}

/* One lookup through libdw as an unwinder would make it: the frame, the CFA, RA and RBP. */
static bool rule_from_libdw(Dwarf_CFI *cfi, uint64_t addr, Rule *r)
{
	Dwarf_Frame *frame = NULL;
	Dwarf_Op ops_mem[3], *ops;
	size_t nops;
	bool ok = false;

	*r = (Rule){ 0 };
	if (dwarf_cfi_addrframe(cfi, addr, &frame) != 0)
		return false;
	/* The return address: undefined in the outermost frame. */
	if (dwarf_frame_register(frame, REG_RA, ops_mem, &ops, &nops) != 0)
		goto out;
	if (nops == 0 && ops == ops_mem) {
		r->cfa = CFA_END;
		ok = true;
		goto out;
	}
	if (dwarf_frame_cfa(frame, &ops, &nops) != 0)
		goto out;
	if (nops == 1 && ops[0].atom == DW_OP_bregx &&
	    (ops[0].number == REG_RSP || ops[0].number == REG_RBP)) {
		r->cfa = ops[0].number == REG_RSP ? CFA_RSP : CFA_RBP;
		r->cfa_offset = (int64_t)ops[0].number2;
	} else {
		r->cfa = nops ? CFA_EXPR : CFA_NONE;
		ok = true;
		goto out;
	}
	if (dwarf_frame_register(frame, REG_RBP, ops_mem, &ops, &nops) != 0)
		goto out;
	if (nops >= 1 && ops[0].atom == DW_OP_call_frame_cfa) {
		r->rbp_saved = true;
		r->rbp_offset = nops >= 2 && ops[1].atom == DW_OP_plus_uconst
					? (int64_t)ops[1].number
					: 0;
	}
	ok = true;
out:
	free(frame);
	return ok;
}

static bool rule_eq(const Rule *a, const Rule *b)
{
	if (a->cfa != b->cfa)
		return false;
	if (a->cfa != CFA_RSP && a->cfa != CFA_RBP)
		return true;
	return a->cfa_offset == b->cfa_offset && a->rbp_saved == b->rbp_saved &&
	       a->rbp_offset == b->rbp_offset;
}

typedef struct Figures {
	double load_us[MAX_RUNS], cold[MAX_RUNS], warm[MAX_RUNS], hot[MAX_RUNS];
	size_t heap;
	size_t own_memory; /* profq: cfi_memory() */
} Figures;

static volatile uint64_t sink;

static int run_profq(int fd, const uint64_t *a, size_t n, size_t n_hot, unsigned run, Figures *fg)
{
	size_t heap0 = heap_in_use();
	uint64_t t0 = now_ns(), t;
	Cfi *c = NULL;
	CfiRow row;
	int r;

	r = cfi_load_fd(fd, &c);
	if (r < 0)
		return r;
	t = now_ns();
	fg->load_us[run] = (double)(t - t0) / 1e3;
	for (size_t i = 0; i < n; i++)
		sink += cfi_lookup(c, a[i], &row) == 0 ? (uint64_t)row.cfa_offset : 0;
	fg->cold[run] = (double)(now_ns() - t) / (double)n;
	t = now_ns();
	for (size_t i = 0; i < n; i++)
		sink += cfi_lookup(c, a[i], &row) == 0 ? (uint64_t)row.cfa_offset : 0;
	fg->warm[run] = (double)(now_ns() - t) / (double)n;
	t = now_ns();
	for (unsigned p = 0; p < 100; p++)
		for (size_t i = 0; i < n_hot; i++)
			sink += cfi_lookup(c, a[i], &row) == 0 ? (uint64_t)row.cfa_offset : 0;
	fg->hot[run] = (double)(now_ns() - t) / (double)(100 * n_hot);
	fg->heap = heap_in_use() - heap0;
	fg->own_memory = cfi_memory(c);
	cfi_free(c);
	return 0;
}

static int run_libdw(int fd, const uint64_t *a, size_t n, size_t n_hot, unsigned run, Figures *fg)
{
	size_t heap0 = heap_in_use();
	uint64_t t0 = now_ns(), t;
	Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
	Dwarf_CFI *cfi;
	Rule rule;

	if (!elf)
		return -ENOEXEC;
	cfi = dwarf_getcfi_elf(elf);
	if (!cfi) {
		elf_end(elf);
		return -ENOENT;
	}
	t = now_ns();
	fg->load_us[run] = (double)(t - t0) / 1e3;
	for (size_t i = 0; i < n; i++)
		sink += rule_from_libdw(cfi, a[i], &rule) ? (uint64_t)rule.cfa_offset : 0;
	fg->cold[run] = (double)(now_ns() - t) / (double)n;
	t = now_ns();
	for (size_t i = 0; i < n; i++)
		sink += rule_from_libdw(cfi, a[i], &rule) ? (uint64_t)rule.cfa_offset : 0;
	fg->warm[run] = (double)(now_ns() - t) / (double)n;
	t = now_ns();
	for (unsigned p = 0; p < 100; p++)
		for (size_t i = 0; i < n_hot; i++)
			sink += rule_from_libdw(cfi, a[i], &rule) ? (uint64_t)rule.cfa_offset : 0;
	fg->hot[run] = (double)(now_ns() - t) / (double)(100 * n_hot);
	fg->heap = heap_in_use() - heap0;
	dwarf_cfi_end(cfi);
	elf_end(elf);
	return 0;
}

static void print_figures(const char *who, Figures *fg, unsigned runs)
{
	printf("%-6s load_us %.0f cold_ns %.0f warm_ns %.0f hot_ns %.0f heap_bytes %zu", who,
	       median(fg->load_us, runs), median(fg->cold, runs), median(fg->warm, runs),
	       median(fg->hot, runs), fg->heap);
	if (fg->own_memory)
		printf(" cfi_memory %zu", fg->own_memory);
	printf("\n");
}

int main(int argc, char **argv)
{
	static const struct option options[] = { { "addresses", required_argument, NULL, 'n' },
						 { "hot", required_argument, NULL, 'h' },
						 { "runs", required_argument, NULL, 'r' },
						 { "seed", required_argument, NULL, 's' },
						 {} };
	size_t n = 20000, n_hot = 256, n_funcs, n_hot_funcs = 0, agree = 0, both_none = 0,
	       only_profq = 0, only_libdw = 0, differ = 0, shown = 0;
	unsigned runs = 7;
	uint64_t seed = 0x5eed;
	_cleanup_free_ Func *funcs = NULL;
	_cleanup_free_ uint64_t *a = NULL;
	_cleanup_free_ bool *hot_func = NULL;
	Figures *ours = calloc(1, sizeof(*ours)), *theirs = calloc(1, sizeof(*theirs));
	Cfi *c = NULL;
	Elf *elf;
	Dwarf_CFI *dcfi;
	int fd, opt, r;

	while ((opt = getopt_long(argc, argv, "", options, NULL)) >= 0) {
		switch (opt) {
		case 'n':
			n = strtoull(optarg, NULL, 0);
			break;
		case 'h':
			n_hot = strtoull(optarg, NULL, 0);
			break;
		case 'r':
			runs = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		default:
			return 2;
		}
	}
	if (optind + 1 != argc || n == 0 || runs == 0 || runs > MAX_RUNS || !ours || !theirs) {
		fprintf(stderr,
			"usage: %s [--addresses N] [--hot N] [--runs N<=%d] [--seed N] "
			"BINARY\n",
			argv[0], MAX_RUNS);
		return 2;
	}
	if (n_hot > n)
		n_hot = n;
	elf_version(EV_CURRENT);
	fd = open(argv[optind], O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "Failed to open '%s': %m\n", argv[optind]);
		return 1;
	}
	r = read_functions(fd, &funcs, &n_funcs);
	if (r < 0) {
		fprintf(stderr, "Failed to read the functions of '%s': %s\n", argv[optind],
			strerror(-r));
		return 1;
	}
	a = calloc(n, sizeof(*a));
	hot_func = calloc(n_funcs, sizeof(*hot_func));
	if (!a || !hot_func)
		return 1;
	for (size_t i = 0; i < n; i++) {
		size_t k = rnd(&seed) % n_funcs;
		const Func *f = &funcs[k];

		a[i] = f->start + rnd(&seed) % f->size;
		/* Distinct functions of the hot set: about its FDEs. */
		if (i < n_hot && !hot_func[k]) {
			hot_func[k] = true;
			n_hot_funcs++;
		}
	}

	/* Alternate the two sides so that drift on a noisy machine hits both alike. */
	for (unsigned run = 0; run < runs; run++) {
		r = run_profq(fd, a, n, n_hot, run, ours);
		if (r >= 0)
			r = run_libdw(fd, a, n, n_hot, run, theirs);
		if (r < 0) {
			fprintf(stderr, "Failed to read the CFI of '%s': %s\n", argv[optind],
				strerror(-r));
			return 1;
		}
	}
	printf("binary %s functions %zu addresses %zu hot %zu (in %zu functions) runs %u\n",
	       argv[optind], n_funcs, n, n_hot, n_hot_funcs, runs);
	print_figures("profq", ours, runs);
	print_figures("libdw", theirs, runs);

	/* Agreement, address by address. */
	if (cfi_load_fd(fd, &c) < 0)
		return 1;
	elf = elf_begin(fd, ELF_C_READ, NULL);
	dcfi = elf ? dwarf_getcfi_elf(elf) : NULL;
	if (!dcfi)
		return 1;
	for (size_t i = 0; i < n; i++) {
		Rule rp, rd;
		bool hp = rule_from_profq(c, a[i], &rp), hd = rule_from_libdw(dcfi, a[i], &rd);

		if (!hp && !hd)
			both_none++;
		else if (hp && !hd)
			only_profq++;
		else if (!hp && hd) {
			if (only_libdw++ < 5)
				printf("only-libdw 0x%" PRIx64 ": cfa %d%+" PRId64 "\n", a[i],
				       rd.cfa, rd.cfa_offset);
		} else if (rule_eq(&rp, &rd))
			agree++;
		else {
			differ++;
			if (shown++ < 5)
				printf("differ 0x%" PRIx64 ": profq cfa %d%+" PRId64
				       " rbp %d%+" PRId64 ", libdw cfa %d%+" PRId64
				       " rbp %d%+" PRId64 "\n",
				       a[i], rp.cfa, rp.cfa_offset, rp.rbp_saved, rp.rbp_offset,
				       rd.cfa, rd.cfa_offset, rd.rbp_saved, rd.rbp_offset);
		}
	}
	printf("agreement agree %zu differ %zu only_profq %zu only_libdw %zu neither %zu\n", agree,
	       differ, only_profq, only_libdw, both_none);
	dwarf_cfi_end(dcfi);
	elf_end(elf);
	cfi_free(c);
	free(ours);
	free(theirs);
	close(fd);
	return differ ? 3 : 0;
}
