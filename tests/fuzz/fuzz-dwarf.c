/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer: the DWARF index builder (daemon/symbolize/dwarfinfo.c), which reads the DWARF of
 * any binary a process maps. The input is a whole ELF file, written to a file in a private
 * directory (libdwfl wants a path: a .gnu_debuglink is looked for next to it and in its
 * .debug/, where nothing else is): opened with dwarf_info_open(), then looked up at the
 * addresses it names (fuzz-elf-common.h), which indexes the CUs they fall in, then twice more
 * (from the indexes, without libdw), once more after libdwfl was closed for memory. Checked:
 * the frames the header promises (at most max, every one but the last inlined into the next,
 * strings NUL-terminated within the module's cap), the same answer each time once indexed,
 * errors of the documented kinds, and the memory the module reports bounded.
 *
 *   fuzz-dwarf -max_total_time=60 -max_len=65536 CORPUS_DIR tests/fuzz/corpus/dwarf
 */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>

#include "base/macro.h"
#include "fuzz-elf-common.h"
#include "fuzz-frames.h"
#include "symbolize/dwarfinfo.h"

#define MAX_FRAMES FUZZ_MAX_FRAMES
/* Lookups with frames compared: the first ones (each compares all its strings). */
#define MAX_COMPARED 256

static int file_fd = -1;
static char file_dir[PATH_MAX], file_path[PATH_MAX];

static int lookup(DwarfInfo *d, uint64_t addr, DwarfFrame *f)
{
	int r = dwarf_info_lookup(d, addr, f, MAX_FRAMES);

	fuzz_check_frames(f, r);
	return r;
}

static bool frames_equal(const DwarfFrame *a, const DwarfFrame *b, int n)
{
	for (int i = 0; i < n; i++)
		if (!streq_ptr(a[i].function, b[i].function) ||
		    !streq_ptr(a[i].linkage, b[i].linkage) || !streq_ptr(a[i].file, b[i].file) ||
		    a[i].line != b[i].line || !streq_ptr(a[i].decl_file, b[i].decl_file) ||
		    a[i].decl_line != b[i].decl_line || a[i].inlined != b[i].inlined)
			return false;
	return true;
}

static void print_frames(const char *what, uint64_t addr, const DwarfFrame *f, int n)
{
	fprintf(stderr, "%s 0x%" PRIx64 ": %d frame(s)\n", what, addr, n);
	for (int i = 0; i < n; i++)
		fprintf(stderr, "  %s (%s) %s:%u decl %s:%u%s\n", f[i].function ?: "?",
			f[i].linkage ?: "-", f[i].file ?: "?", f[i].line, f[i].decl_file ?: "?",
			f[i].decl_line, f[i].inlined ? " inlined" : "");
}

/* The same answer as the first time, or a report of both. */
static void check_again(uint64_t addr, const DwarfFrame *f, int n, const DwarfFrame *first,
			int first_n, bool none_ok)
{
	if ((n == first_n && frames_equal(f, first, n)) || (none_ok && n == 0))
		return;
	print_frames("first", addr, first, first_n);
	print_frames("again", addr, f, n);
	FUZZ_CHECK(!"the same frames again");
}

static void cleanup(void)
{
	unlink(file_path);
	rmdir(file_dir);
}

static void setup(void)
{
	snprintf(file_dir, sizeof(file_dir), "/tmp/fuzz-dwarf-XXXXXX");
	FUZZ_CHECK(mkdtemp(file_dir));
	snprintf(file_path, sizeof(file_path), "%s/input", file_dir);
	file_fd = open(file_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	FUZZ_CHECK(file_fd >= 0);
	atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint64_t addrs[FUZZ_MAX_ADDRS];
	static DwarfFrame first[MAX_COMPARED][MAX_FRAMES];
	static int first_n[MAX_COMPARED];
	DwarfCounters counters = { 0 };
	DwarfFrame f[MAX_FRAMES];
	DwarfInfo *d = NULL;
	size_t n;
	int r;

	if (file_fd < 0)
		setup();
	/* An input's length also says how it is indexed: whole, or in slices (of 1 ns: a few
	 * hundred DIEs each). */
	counters.slice_ns = size & 1;
	fuzz_write_file(file_fd, data, size);
	n = fuzz_addresses(data, size, addrs, FUZZ_MAX_ADDRS);

	r = dwarf_info_open(file_fd, file_path, ":.debug", &counters, &d);
	if (r < 0) {
		FUZZ_CHECK(!d);
		FUZZ_CHECK(r == -ENOENT || r == -EFBIG || r == -ENOEXEC || r == -E2BIG ||
			   r == -ENOMEM || r == -EIO || r == -ESTALE);
		return 0;
	}
	FUZZ_CHECK(counters.opens == 1);

	/* Indexes the CUs the addresses fall in (sliced: to the end, then asked again). */
	for (size_t i = 0; i < n; i++) {
		if (lookup(d, addrs[i], f) != -EINPROGRESS)
			continue;
		FUZZ_CHECK(counters.slice_ns && dwarf_info_building(d));
		while ((r = dwarf_info_work(d)) == 1)
			;
		FUZZ_CHECK(!dwarf_info_building(d));
		FUZZ_CHECK(lookup(d, addrs[i], f) != -EINPROGRESS);
	}
	/* Then the same answers each time (from the CU indexes now; which CU answers may depend
	 * on the order they were indexed in when the file's CUs overlap, so not the first). */
	for (size_t i = 0; i < n && i < MAX_COMPARED; i++) {
		first_n[i] = lookup(d, addrs[i], f);
		memcpy(first[i], f, sizeof(f));
	}
	for (size_t i = 0; i < n && i < MAX_COMPARED; i++) {
		r = lookup(d, addrs[i], f);
		if (first_n[i] >= 0)
			check_again(addrs[i], f, r, first[i], first_n[i], false);
	}
	/* Our tables hold a few dozen bytes per DIE and line row, and the input has at most one
	 * of either per byte; libdw's share is what it took of the heap while open. */
	FUZZ_CHECK(dwarf_info_memory(d) < (256u << 20));

	/* Closed for memory: indexed CUs still answer, others give nothing for now. */
	(void)dwarf_info_release(d, 0);
	for (size_t i = 0; i < n && i < MAX_COMPARED; i++) {
		r = lookup(d, addrs[i], f);
		if (first_n[i] >= 0)
			check_again(addrs[i], f, r, first[i], first_n[i], true);
	}
	(void)dwarf_info_debug_file(d);
	dwarf_info_free(d);
	return 0;
}
