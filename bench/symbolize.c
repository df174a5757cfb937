/* SPDX-License-Identifier: MIT */
/*
 * profq-bench-symbolize: symbolization throughput of profqd's own Symbolizer (ElfSym symbol
 * tables, DwarfInfo CU indexes, the per-address cache) on one ELF file, for bench/symbolize.sh.
 *
 *   profq-bench-symbolize [--output FILE] [--no-dwarf] [--debug-dir DIRS] BINARY ADDRESSES
 *
 * ADDRESSES holds ELF virtual addresses of BINARY, one hex number a line (what addr2line -e
 * takes). Three passes over the list, each timed with CLOCK_MONOTONIC:
 *   cold        the first pass, including reading the binary (symbol table, DWARF open) and
 *               indexing every CU an address falls in: a binary's first samples in profqd;
 *   warm-index  the list again with the address cache dropped: symbol table and CU indexes
 *               built, every address looked up again (addresses profqd has not seen before);
 *   warm-cache  the list again as profqd resolves an address seen before: the address cache.
 * Prints "pass seconds lookups lookups_per_s" lines, then "heap BYTES": what the heap grew by
 * (symbol table, CU indexes, address cache, interned frames, and libdw while open). With
 * --output, writes the frames of the cold pass as addr2line -a -f -i prints them (innermost
 * first; "??" when unknown), for the agreement check.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "base/macro.h"
#include "store/store.h"
#include "symbolize/symbolizer.h"

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

static int read_addresses(const char *path, uint64_t **ret, size_t *ret_n)
{
	_cleanup_free_ uint64_t *a = NULL;
	size_t n = 0, allocated = 0;
	char line[128];
	FILE *f = fopen(path, "re");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *end;
		uint64_t v = strtoull(line, &end, 16);

		if (end == line)
			continue;
		if (GREEDY_REALLOC(a, allocated, n + 1) < 0) {
			fclose(f);
			return -ENOMEM;
		}
		a[n++] = v;
	}
	fclose(f);
	*ret = TAKE_PTR(a);
	*ret_n = n;
	return 0;
}

/*
 * The mapping the kernel would make of the executable PT_LOAD segment at load bias 0, so that
 * a mapped address is the ELF address (page-aligned start and file offset, as in
 * /proc/PID/maps).
 */
static int exec_mapping(const char *path, ProcMap *ret)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t n = 0;
	Elf *elf;
	int r = -ENOEXEC;

	if (fd < 0)
		return -errno;
	elf_version(EV_CURRENT);
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (!elf || elf_getphdrnum(elf, &n) != 0) {
		elf_end(elf);
		return -ENOEXEC;
	}
	for (size_t i = 0; i < n && r < 0; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD || !(ph.p_flags & PF_X))
			continue;
		*ret = (ProcMap){
			.start = ph.p_vaddr & ~0xfffULL,
			.end = (ph.p_vaddr + ph.p_memsz + 0xfff) & ~0xfffULL,
			.pgoff = ph.p_offset & ~0xfffULL,
			.prot = PROT_READ | PROT_EXEC,
		};
		r = 0;
	}
	elf_end(elf);
	return r;
}

static void print_frames(FILE *out, const Store *store, uint64_t addr, const FrameId *ids, int n)
{
	fprintf(out, "0x%016" PRIx64 "\n", addr);
	for (int k = 0; k < n; k++) {
		const StoreFrame *f = store_frame(store, ids[k]);
		const char *fn = f && f->function ? store_string(store, f->function) : NULL;
		const char *file = f && f->file ? store_string(store, f->file) : NULL;

		fprintf(out, "%s\n", fn ?: "??");
		if (file)
			fprintf(out, "%s:%" PRIu32 "\n", file, f->line);
		else
			fprintf(out, "??:0\n");
	}
}

/* One pass over the addresses: seconds, or a negative errno. */
static int run_pass(Symbolizer *sym, Binary *b, const ProcMap *m, const uint64_t *addrs, size_t n,
		    Store *store, FILE *out, double *ret_s)
{
	FrameId ids[SYMBOLIZER_MAX_INLINE];
	uint64_t t0 = now_ns();

	for (size_t i = 0; i < n; i++) {
		int r = symbolizer_user_frames(sym, b, m, addrs[i], false, ids, ARRAY_SIZE(ids));

		if (r < 0)
			return r;
		if (out)
			print_frames(out, store, addrs[i], ids, r);
	}
	*ret_s = (double)(now_ns() - t0) / 1e9;
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: profq-bench-symbolize [--output FILE] [--no-dwarf] [--debug-dir DIRS] "
		   "BINARY ADDRESSES\n");
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "no-dwarf", no_argument, NULL, 'n' },
		{ "debug-dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	const char *output = NULL, *debug_dirs = NULL;
	_cleanup_free_ char *path = NULL;
	struct stat st;
	_cleanup_free_ uint64_t *addrs = NULL;
	Symbolizer *sym = NULL;
	Store *store = NULL;
	Binary *b = NULL;
	FILE *out = NULL;
	bool dwarf = true;
	double load_s, cold_s, index_s, cache_s;
	uint64_t t0;
	size_t n = 0, heap0;
	SymbolizerStats stats;
	uint64_t hits_cold, hits_index = 0, hits_fill;
	ProcMap m;
	int c, r;

	while ((c = getopt_long(argc, argv, "o:nd:h", options, NULL)) >= 0)
		switch (c) {
		case 'o':
			output = optarg;
			break;
		case 'n':
			dwarf = false;
			break;
		case 'd':
			debug_dirs = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	if (argc - optind != 2) {
		usage(stderr);
		return 2;
	}
	r = read_addresses(argv[optind + 1], &addrs, &n);
	if (r < 0 || n == 0) {
		fprintf(stderr, "Failed to read addresses from '%s': %s\n", argv[optind + 1],
			r < 0 ? strerror(-r) : "none");
		return 1;
	}
	if (output) {
		out = fopen(output, "we");
		if (!out) {
			fprintf(stderr, "Failed to open '%s': %m\n", output);
			return 1;
		}
	}
	r = store_new(&store);
	if (r >= 0)
		r = symbolizer_new(store, &sym);
	if (r < 0) {
		fprintf(stderr, "Failed to set up the symbolizer: %s\n", strerror(-r));
		return 1;
	}
	symbolizer_set_dwarf(sym, dwarf);
	/* The cache must hold the whole list for the warm-cache pass. */
	symbolizer_set_cache_budget(sym, SIZE_MAX);
	if (debug_dirs && symbolizer_set_debug_dirs(sym, debug_dirs) < 0)
		return 1;

	path = realpath(argv[optind], NULL);
	r = path ? exec_mapping(path, &m) : -errno;
	if (r < 0 || stat(path, &st) < 0) {
		fprintf(stderr, "Failed to read the program headers of '%s': %s\n", argv[optind],
			strerror(r < 0 ? -r : errno));
		return 1;
	}
	/* As a mapping of our own process would be: the binary joins the symbolizer's table, so
	 * symbolizer_trim() drops its address cache like the daemon's (read through
	 * /proc/self/root/PATH, map_files having no such mapping). */
	m.path = path;
	m.inode = st.st_ino;
	m.dev_major = major(st.st_dev);
	m.dev_minor = minor(st.st_dev);
	heap0 = heap_in_use();
	t0 = now_ns();
	r = symbolizer_binary(sym, getpid(), &m, &b);
	if (r < 0 || binary_error(b) < 0) {
		fprintf(stderr, "Failed to read '%s': %s\n", argv[optind],
			strerror(-(r < 0 ? r : binary_error(b))));
		return 1;
	}
	load_s = (double)(now_ns() - t0) / 1e9;
	for (size_t i = 0; i < n; i++)
		if (addrs[i] < m.start || addrs[i] >= m.end) {
			fprintf(stderr, "Address 0x%" PRIx64 " is outside the executable segment\n",
				addrs[i]);
			return 1;
		}
	r = run_pass(sym, b, &m, addrs, n, store, out, &cold_s);
	symbolizer_stats(sym, &stats);
	hits_cold = stats.cache_hits;
	if (r >= 0) {
		cold_s += load_s;
		/* Drop the address cache (over budget), keep the symbol table and CU indexes. */
		symbolizer_set_cache_budget(sym, 0);
		symbolizer_trim(sym);
		r = run_pass(sym, b, &m, addrs, n, store, NULL, &index_s);
		symbolizer_stats(sym, &stats);
		hits_index = stats.cache_hits - hits_cold;
	}
	if (r >= 0) {
		/* Fill the cache again (not timed), then the pass that hits it. */
		symbolizer_set_cache_budget(sym, SIZE_MAX);
		r = run_pass(sym, b, &m, addrs, n, store, NULL, &cache_s);
	}
	symbolizer_stats(sym, &stats);
	hits_fill = stats.cache_hits;
	if (r >= 0)
		r = run_pass(sym, b, &m, addrs, n, store, NULL, &cache_s);
	if (r < 0) {
		fprintf(stderr, "Failed to symbolize: %s\n", strerror(-r));
		return 1;
	}
	symbolizer_stats(sym, &stats);
	if (out && fclose(out) != 0) {
		fprintf(stderr, "Failed to write '%s': %m\n", output);
		return 1;
	}
	printf("load %.6f 1 %.1f\n", load_s, 1 / load_s);
	printf("cold %.6f %zu %.1f\n", cold_s, n, (double)n / cold_s);
	printf("warm-index %.6f %zu %.1f\n", index_s, n, (double)n / index_s);
	printf("warm-cache %.6f %zu %.1f\n", cache_s, n, (double)n / cache_s);
	printf("heap %zu\n", heap_in_use() - MIN(heap0, heap_in_use()));
	if (hits_index != hits_cold || stats.cache_hits - hits_fill != n) {
		/* The warm-index pass must miss the cache as the cold one did (repeated addresses
		 * aside), the warm-cache pass hit it every time. */
		fprintf(stderr,
			"Unexpected cache hits: %" PRIu64 " cold, %" PRIu64 " warm-index, %" PRIu64
			" warm-cache for %zu addresses\n",
			hits_cold, hits_index, stats.cache_hits - hits_fill, n);
		return 1;
	}
	binary_unref(sym, b);
	symbolizer_free(sym);
	store_free(store);
	return 0;
}
