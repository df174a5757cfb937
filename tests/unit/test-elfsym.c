/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <cmocka.h>

#include "base/macro.h"
#include "fixtures/fixture-symbols.h"
#include "symbolize/elfsym.h"
#include "elf-craft.h"

static int load_path(const char *path, ElfSym **ret)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	return elfsym_load_fd(fd, ret);
}

static int read_whole(const char *path, char **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf;

	if (fd < 0 || fstat(fd, &st) < 0)
		return -errno;
	buf = malloc((size_t)st.st_size);
	assert_non_null(buf);
	assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
	*ret = buf;
	*ret_len = (size_t)st.st_size;
	return 0;
}

/* An anonymous file holding data (elfsym reads from an fd). */
static int memfd_with(const void *data, size_t len)
{
	int fd = memfd_create("profq-elfsym", MFD_CLOEXEC);

	assert_true(fd >= 0);
	if (len > 0)
		assert_int_equal(write(fd, data, len), (ssize_t)len);
	return fd;
}

/*
 * Every function nm lists resolves to its name (or an alias at the same address) at its first
 * and last byte; the byte just past a sized function is not it.
 */
static void compare_with_nm(ElfSym *e, const NmTable *t, const char *path)
{
	for (size_t i = 0; i < t->n; i++) {
		const NmSym *s = &t->syms[i];
		const char *name = NULL;
		uint64_t off = 99;
		int r;

		r = elfsym_lookup(e, s->addr, &name, &off);
		if (r < 0)
			fail_msg("%s at 0x%" PRIx64 " not found", s->name, s->addr);
		if (!nm_name_at(t, s->addr, name))
			fail_msg("0x%" PRIx64 " resolved to %s, nm says %s", s->addr, name,
				 s->name);
		assert_int_equal(off, 0);
		if (s->size == 0) {
			/* Unsized (_init, _fini): up to the next function or its section's end,
			 * not into the next section (.init is followed by the PLT). */
			uint64_t end = readelf_section_end(path, s->section);
			uint64_t stop = MIN(end, nm_next_start(t, s->addr));

			assert_true(end > s->addr);
			assert_int_equal(elfsym_lookup(e, stop - 1, &name, &off), 0);
			if (!nm_name_at(t, s->addr, name))
				fail_msg("end of unsized %s resolved to %s", s->name, name);
			if (stop == end && elfsym_lookup(e, end, &name, NULL) == 0 &&
			    nm_name_at(t, s->addr, name))
				fail_msg("0x%" PRIx64 ", past %s's section %s, resolved to it", end,
					 s->name, s->section);
			continue;
		}
		if (!nm_starts_within(t, s->addr, s->addr + s->size - 1)) {
			assert_int_equal(elfsym_lookup(e, s->addr + s->size - 1, &name, &off), 0);
			if (!nm_name_at(t, s->addr, name))
				fail_msg("end of %s resolved to %s", s->name, name);
			assert_true(off == s->size - 1);
		}
		r = elfsym_lookup(e, s->addr + s->size, &name, NULL);
		if (r == 0 && nm_name_at(t, s->addr, name)) {
			/* Only an unsized or longer alias at the same address may cover it. */
			bool longer = false;

			for (size_t j = 0; j < t->n; j++)
				if (t->syms[j].addr == s->addr &&
				    (t->syms[j].size == 0 || t->syms[j].size > s->size))
					longer = true;
			if (!longer)
				fail_msg("0x%" PRIx64 ", just past %s, resolved to it",
					 s->addr + s->size, s->name);
		}
	}
}

static void check_file(const char *path, bool dynamic_only, const char *const *must_have)
{
	_cleanup_(elfsym_freep) ElfSym *e = NULL;
	NmTable t = { 0 };
	const char *name;

	assert_int_equal(load_path(path, &e), 0);
	if (!dynamic_only)
		assert_int_equal(nm_table_add(&t, "", path), 0);
	assert_int_equal(nm_table_add(&t, "-D", path), 0);
	assert_true(t.n > 0);
	compare_with_nm(e, &t, path);
	/* One entry per distinct function address of .symtab and .dynsym. */
	assert_int_equal(elfsym_count(e), nm_distinct_addresses(&t));
	assert_true(elfsym_memory(e) > elfsym_count(e) * 16);
	for (; must_have && *must_have; must_have++) {
		const NmSym *s = nm_find(&t, *must_have);

		if (!s)
			fail_msg("nm does not list %s in %s", *must_have, path);
		assert_int_equal(elfsym_lookup(e, s->addr + 1, &name, NULL), 0);
		assert_string_equal(name, *must_have);
	}
	/* Address 0 and the top of the address space hold nothing. */
	assert_int_equal(elfsym_lookup(e, 0, &name, NULL), -ENOENT);
	assert_int_equal(elfsym_lookup(e, UINT64_MAX, &name, NULL), -ENOENT);
	nm_table_done(&t);
}

static void test_symbols_vs_nm(void **state)
{
	static const char *const prog[] = {
		"fixture_alpha",	 "fixture_beta", "fixture_gamma",
		"fixture_static_helper", "main",	 NULL,
	};
	static const char *const lib[] = { "fixture_lib_work", "fixture_lib_other",
					   "fixture_lib_local", NULL };
	static const char *const stripped[] = { "fixture_alpha", "fixture_gamma", "main", NULL };

	(void)state;
	check_file(FIXTURE_PROG, false, prog);
	check_file(FIXTURE_LIB, false, lib);
	check_file(FIXTURE_STRIPPED, true, stripped);
	check_file(FIXTURE_NOPIE, false, prog);
}

/* The stripped copy has only .dynsym: the static function is gone, never misnamed. */
static void test_stripped(void **state)
{
	_cleanup_(elfsym_freep) ElfSym *full = NULL, *e = NULL;
	NmTable t = { 0 };
	const NmSym *helper;
	const char *name;

	(void)state;
	assert_int_equal(nm_table_add(&t, "", FIXTURE_PROG), 0);
	helper = nm_find(&t, "fixture_static_helper");
	assert_non_null(helper);
	assert_int_equal(load_path(FIXTURE_PROG, &full), 0);
	assert_int_equal(load_path(FIXTURE_STRIPPED, &e), 0);
	assert_true(elfsym_count(e) < elfsym_count(full));
	if (elfsym_lookup(e, helper->addr, &name, NULL) == 0)
		assert_string_not_equal(name, "fixture_static_helper");
	nm_table_done(&t);
}

/*
 * PLT stubs resolve to "NAME@plt" over their whole 16 bytes, as objdump labels them (binutils
 * reads .rela.plt itself); the PLT's header, right after .init, is ".plt" (as perf names it),
 * not _init.
 */
static void check_plt(const char *path)
{
	_cleanup_(elfsym_freep) ElfSym *e = NULL;
	_cleanup_free_ char *cmd = NULL;
	uint64_t plt_start = UINT64_MAX, off;
	size_t stubs = 0;
	const char *name;
	char line[512];
	FILE *f;

	assert_int_equal(load_path(path, &e), 0);
	assert_true(asprintf(&cmd, "objdump -d -j .plt -j .plt.sec '%s'", path) > 0);
	f = popen(cmd, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		char label[256], want[300];
		unsigned long long addr;
		size_t len;

		/* "0000000000001040 <printf@plt>:" (the header: "<printf@plt-0x10>:") */
		if (sscanf(line, "%llx <%255[^>]>:", &addr, label) != 2)
			continue;
		plt_start = MIN(plt_start, (uint64_t)addr);
		len = strlen(label);
		if (len < 5 || !streq(label + len - 4, "@plt"))
			continue;
		snprintf(want, sizeof(want), "%s", label);
		for (unsigned k = 0; k < 16; k += 15) {
			assert_int_equal(elfsym_lookup(e, addr + k, &name, &off), 0);
			if (!streq(name, want))
				fail_msg("%s: 0x%llx resolved to %s, objdump says %s", path,
					 addr + k, name, want);
			assert_int_equal(off, k);
		}
		stubs++;
	}
	assert_int_equal(pclose(f), 0);
	/* fixture-prog calls printf, fixture_lib_work and fixture_lib_other through the PLT. */
	assert_true(stubs >= 3);
	assert_true(plt_start != UINT64_MAX);
	for (unsigned k = 0; k < 16; k += 15) {
		assert_int_equal(elfsym_lookup(e, plt_start + k, &name, &off), 0);
		assert_string_equal(name, ".plt");
		assert_int_equal(off, k);
	}
}

static void test_plt(void **state)
{
	(void)state;
	check_plt(FIXTURE_PROG);
	check_plt(FIXTURE_STRIPPED);
	check_plt(FIXTURE_NOPIE);
	check_plt(FIXTURE_IBT);
}

static void check_segments(const char *path)
{
	_cleanup_(elfsym_freep) ElfSym *e = NULL;
	ExecSegment segs[8];
	uint64_t va = 0;
	int n;

	assert_int_equal(load_path(path, &e), 0);
	n = readelf_exec_segments(path, segs, ARRAY_SIZE(segs));
	assert_true(n >= 1);
	if (streq(path, FIXTURE_NOPIE))
		assert_true(segs[0].vaddr != segs[0].offset); /* else this proves little */
	for (int i = 0; i < n; i++) {
		const ExecSegment *s = &segs[i];

		assert_int_equal(elfsym_offset_to_vaddr(e, s->offset, &va), 0);
		assert_true(va == s->vaddr);
		assert_int_equal(elfsym_offset_to_vaddr(e, s->offset + s->filesz / 2, &va), 0);
		assert_true(va == s->vaddr + s->filesz / 2);
		assert_int_equal(elfsym_offset_to_vaddr(e, s->offset + s->filesz - 1, &va), 0);
		assert_true(va == s->vaddr + s->filesz - 1);
		va = 42;
		if (n == 1) {
			/* Past the segment, and before it (the read-only headers): not code. */
			assert_int_equal(elfsym_offset_to_vaddr(e, s->offset + s->filesz, &va),
					 -ENOENT);
			if (s->offset > 0)
				assert_int_equal(elfsym_offset_to_vaddr(e, s->offset - 1, &va),
						 -ENOENT);
			assert_int_equal(va, 42);
		}
	}
}

static void check_build_id(const char *path)
{
	_cleanup_(elfsym_freep) ElfSym *e = NULL;
	char want[200], got[2 * ELFSYM_BUILD_ID_MAX + 1];
	const uint8_t *id;
	size_t len;

	assert_int_equal(load_path(path, &e), 0);
	assert_int_equal(readelf_build_id(path, want, sizeof(want)), 0);
	id = elfsym_build_id(e, &len);
	assert_non_null(id);
	assert_int_equal(len, 20); /* --build-id=sha1 */
	for (size_t i = 0; i < len; i++)
		sprintf(got + 2 * i, "%02x", id[i]);
	assert_string_equal(got, want);
}

static void test_segments_and_build_id(void **state)
{
	(void)state;
	check_segments(FIXTURE_PROG);
	check_segments(FIXTURE_LIB);
	check_segments(FIXTURE_STRIPPED);
	check_segments(FIXTURE_NOPIE);
	check_build_id(FIXTURE_PROG);
	check_build_id(FIXTURE_LIB);
	check_build_id(FIXTURE_STRIPPED);
	check_build_id(FIXTURE_NOPIE);
}

static void test_memory_image(void **state)
{
	_cleanup_(elfsym_freep) ElfSym *a = NULL, *b = NULL;
	_cleanup_free_ char *buf = NULL;
	const char *n1, *n2;
	size_t len, l1, l2;
	NmTable t = { 0 };
	const NmSym *beta;

	(void)state;
	assert_int_equal(read_whole(FIXTURE_PROG, &buf, &len), 0);
	assert_int_equal(elfsym_load_memory(buf, len, &a), 0);
	/* The caller's buffer is not kept: scribble over it. */
	memset(buf, 0xcc, len);
	assert_int_equal(load_path(FIXTURE_PROG, &b), 0);
	assert_int_equal(elfsym_count(a), elfsym_count(b));
	assert_int_equal(nm_table_add(&t, "", FIXTURE_PROG), 0);
	beta = nm_find(&t, "fixture_beta");
	assert_non_null(beta);
	assert_int_equal(elfsym_lookup(a, beta->addr + 2, &n1, NULL), 0);
	assert_int_equal(elfsym_lookup(b, beta->addr + 2, &n2, NULL), 0);
	assert_string_equal(n1, "fixture_beta");
	assert_string_equal(n2, "fixture_beta");
	assert_memory_equal(elfsym_build_id(a, &l1), elfsym_build_id(b, &l2), 20);
	nm_table_done(&t);
}

/* Loads whatever a hostile file gives; a success must still answer lookups sanely. */
static void load_hostile(const void *data, size_t len, const NmTable *t)
{
	_cleanup_(elfsym_freep) ElfSym *e = NULL;
	_cleanup_close_ int fd = memfd_with(data, len);
	const char *name;
	uint64_t va;
	size_t blen;
	int r;

	r = elfsym_load_fd(fd, &e);
	if (r < 0) {
		assert_null(e);
		return;
	}
	/* Partial results are fine; what resolves must be a real name of that file. */
	for (size_t i = 0; t && i < t->n; i++)
		if (elfsym_lookup(e, t->syms[i].addr, &name, NULL) == 0)
			assert_true(strlen(name) < 4096);
	(void)elfsym_lookup(e, 0x1000, &name, NULL);
	(void)elfsym_offset_to_vaddr(e, 0x1000, &va);
	(void)elfsym_build_id(e, &blen);
	assert_true(blen <= ELFSYM_BUILD_ID_MAX);
}

static void test_hostile(void **state)
{
	static const size_t cuts[] = { 1, 4, 16, 52, 63, 64, 65, 100, 500, 4095, 4096, 8192 };
	_cleanup_(elfsym_freep) ElfSym *e = NULL;
	_cleanup_free_ char *buf = NULL, *copy = NULL;
	_cleanup_close_ int empty = -1, junk_fd = -1, dir = -1;
	uint8_t junk[4096];
	uint64_t rng = 7, shoff;
	NmTable t = { 0 };
	size_t len;

	(void)state;
	/* Empty file, random bytes, an ELF magic with nothing behind it, a directory. */
	empty = memfd_with(NULL, 0);
	assert_int_equal(elfsym_load_fd(empty, &e), -ENOEXEC);
	for (size_t i = 0; i < sizeof(junk); i++) {
		rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
		junk[i] = (uint8_t)(rng >> 56);
	}
	junk_fd = memfd_with(junk, sizeof(junk));
	assert_int_equal(elfsym_load_fd(junk_fd, &e), -ENOEXEC);
	assert_int_equal(elfsym_load_memory(junk, sizeof(junk), &e), -ENOEXEC);
	assert_int_equal(elfsym_load_memory("\177ELF", 4, &e), -ENOEXEC);
	assert_null(e);
	dir = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_int_not_equal(elfsym_load_fd(dir, &e), 0);
	assert_int_equal(elfsym_load_fd(-1, &e), -ENOEXEC);

	/* The fixture cut short at many places, including inside its tables. */
	assert_int_equal(read_whole(FIXTURE_PROG, &buf, &len), 0);
	assert_int_equal(nm_table_add(&t, "", FIXTURE_PROG), 0);
	for (size_t i = 0; i < ARRAY_SIZE(cuts); i++)
		load_hostile(buf, MIN(cuts[i], len), &t);
	for (size_t i = 1; i < 16; i++)
		load_hostile(buf, len * i / 16, &t);
	load_hostile(buf, len - 1, &t);

	/* Random corruption of the ELF and program headers, the section headers, anything. */
	memcpy(&shoff, buf + 0x28, sizeof(shoff)); /* e_shoff of an ELF64 header */
	assert_true(shoff > 0 && shoff < len);
	copy = malloc(len);
	assert_non_null(copy);
	for (int round = 0; round < 500; round++) {
		memcpy(copy, buf, len);
		for (int k = 0; k < 8; k++) {
			size_t at;

			rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
			if (k % 3 == 0)
				at = (rng >> 20) % 256;
			else if (k % 3 == 1)
				at = shoff + (rng >> 20) % (len - shoff);
			else
				at = (rng >> 20) % len;
			copy[at] = (char)(rng >> 8);
			if (k == 7 && at + 8 <= len)
				memset(copy + at, 0xff, 8); /* a huge offset or size */
		}
		load_hostile(copy, len, &t);
	}
	nm_table_done(&t);
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * 20 000 functions whose names point into the second half of a 16 MiB string table without a NUL:
 * each name must not cost a scan of the rest of the table (quadratic: seconds). The names are read
 * cut at 4095 bytes, like any long name.
 */
static void test_unterminated_names(void **state)
{
	enum {
		N = 20000
	};
	const uint64_t str_size = 16u << 20;
	_cleanup_(elfsym_freep) ElfSym *e = NULL;
	_cleanup_free_ Elf64_Sym *syms = calloc(N + 1, sizeof(Elf64_Sym));
	_cleanup_free_ char *str = malloc(str_size);
	_cleanup_close_ int fd = memfd_create("profq-names", MFD_CLOEXEC);
	const char *name;
	uint64_t t0, off;

	(void)state;
	assert_non_null(syms);
	assert_non_null(str);
	assert_true(fd >= 0);
	memset(str, 'A', str_size);
	str[0] = 0;
	for (size_t i = 1; i <= N; i++)
		syms[i] = (Elf64_Sym){ .st_name = (uint32_t)(str_size - (8u << 20) + i),
				       .st_info = ELF64_ST_INFO(STB_GLOBAL, STT_FUNC),
				       .st_shndx = 1,
				       .st_value = 0x1000 + i * 16,
				       .st_size = 16 };
	const CraftSection secs[] = {
		{ .name = ".text",
		  .type = SHT_PROGBITS,
		  .flags = SHF_ALLOC | SHF_EXECINSTR,
		  .addr = 0x1000,
		  .size = (N + 2) * 16 },
		{ .name = ".symtab",
		  .type = SHT_SYMTAB,
		  .data = syms,
		  .size = (N + 1) * sizeof(Elf64_Sym),
		  .link = 3,
		  .entsize = sizeof(Elf64_Sym) },
		{ .name = ".strtab", .type = SHT_STRTAB, .data = str, .size = str_size },
	};
	assert_int_equal(craft_elf(fd, secs, ARRAY_SIZE(secs), NULL), 0);

	t0 = cpu_ns();
	assert_int_equal(elfsym_load_fd(fd, &e), 0);
	assert_true(cpu_ns() - t0 < 500 * 1000000ull);
	assert_int_equal(elfsym_count(e), N);
	assert_int_equal(elfsym_lookup(e, 0x1000 + 7 * 16 + 3, &name, &off), 0);
	assert_int_equal(strlen(name), 4095);
	assert_int_equal(off, 3);
}

/*
 * A .strtab whose offset lies past the end of the file (found by fuzz-elfsym): names are read
 * from the file at lookup, so libelf never reads the table and never checks it. Its symbols
 * are not taken (lookups used to fail with the pread's -EINVAL); the .dynsym's are.
 */
static void test_strtab_outside_file(void **state)
{
	static const char dynstr[] = "\0dyn_fn";
	Elf64_Sym syms[2] = { { 0 },
			      { .st_name = 1,
				.st_info = ELF64_ST_INFO(STB_GLOBAL, STT_FUNC),
				.st_shndx = 1,
				.st_value = 0x1000,
				.st_size = 16 } };
	const CraftSection secs[] = {
		{ .name = ".text",
		  .type = SHT_PROGBITS,
		  .flags = SHF_ALLOC | SHF_EXECINSTR,
		  .addr = 0x1000,
		  .size = 64 },
		{ .name = ".symtab",
		  .type = SHT_SYMTAB,
		  .data = syms,
		  .size = sizeof(syms),
		  .link = 3,
		  .entsize = sizeof(Elf64_Sym) },
		{ .name = ".strtab", .type = SHT_STRTAB, .data = dynstr, .size = sizeof(dynstr) },
		{ .name = ".dynsym",
		  .type = SHT_DYNSYM,
		  .data = syms,
		  .size = sizeof(syms),
		  .link = 5,
		  .entsize = sizeof(Elf64_Sym) },
		{ .name = ".dynstr", .type = SHT_STRTAB, .data = dynstr, .size = sizeof(dynstr) },
	};
	const uint64_t offsets[] = { 0xa904ffffffffffffull, 1ull << 40, 4096 };
	_cleanup_close_ int fd = memfd_create("profq-strtab", MFD_CLOEXEC);
	CraftLayout l;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(craft_elf(fd, secs, ARRAY_SIZE(secs), &l), 0);
	for (size_t i = 0; i < ARRAY_SIZE(offsets); i++) {
		_cleanup_(elfsym_freep) ElfSym *e = NULL;
		/* Section 3 (.strtab): sh_offset is 24 bytes into its header. */
		uint64_t where = l.shoff + 3 * sizeof(Elf64_Shdr) + 24;
		const char *name;
		uint64_t off;

		assert_int_equal(craft_pwrite_all(fd, &offsets[i], 8, where), 0);
		assert_int_equal(elfsym_load_fd(fd, &e), 0);
		assert_false(elfsym_has_symtab(e));
		assert_int_equal(elfsym_lookup(e, 0x1004, &name, &off), 0);
		assert_string_equal(name, "dyn_fn");
		assert_int_equal(off, 4);
	}
}

/* Peak RSS in KiB of a child that runs fn(arg), which must return 0. */
static long child_peak_kib(int (*fn)(void *), void *arg)
{
	struct rusage ru;
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(fn(arg) == 0 ? 0 : 1);
	assert_int_equal(wait4(pid, &status, 0, &ru), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	return ru.ru_maxrss;
}

static int load_expecting_failure(void *arg)
{
	ElfSym *e = NULL;
	ElfHeaders h;
	int fd = *(int *)arg;

	if (elfsym_check_headers(fd, &h) >= 0)
		return 1;
	return elfsym_load_fd(fd, &e) < 0 && !e ? 0 : 1;
}

/*
 * Header tables libelf would allocate per entry before reading any: 8M section headers by
 * extended numbering (section 0's sh_size) in a 24 KiB file, and program headers the same way
 * (PN_XNUM, section 0's sh_info), and tables past the end of the file. Refused from the headers,
 * without the gigabytes.
 */
static void test_header_counts(void **state)
{
	static char page[24 << 10];
	const CraftSection secs[] = {
		{ .name = ".text",
		  .type = SHT_PROGBITS,
		  .flags = SHF_ALLOC | SHF_EXECINSTR,
		  .addr = 0x1000,
		  .data = page,
		  .size = sizeof(page) },
	};
	_cleanup_close_ int fd = memfd_create("profq-shnum", MFD_CLOEXEC);
	CraftLayout l;
	Elf64_Ehdr eh;
	Elf64_Shdr sh0;
	ElfHeaders h;
	long kib;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(craft_elf(fd, secs, ARRAY_SIZE(secs), &l), 0);
	assert_int_equal(elfsym_check_headers(fd, &h), 0);
	assert_int_equal(h.n_sections, 3);
	assert_int_equal(h.inflated, 0);

	/* e_shnum 0: the count is section 0's sh_size. */
	assert_int_equal(pread(fd, &eh, sizeof(eh), 0), sizeof(eh));
	assert_int_equal(pread(fd, &sh0, sizeof(sh0), (off_t)l.shoff), sizeof(sh0));
	eh.e_shnum = 0;
	sh0.sh_size = 8u << 20;
	assert_int_equal(pwrite(fd, &eh, sizeof(eh), 0), sizeof(eh));
	assert_int_equal(pwrite(fd, &sh0, sizeof(sh0), (off_t)l.shoff), sizeof(sh0));
	assert_int_equal(elfsym_check_headers(fd, &h), -E2BIG);
	kib = child_peak_kib(load_expecting_failure, &fd);
	assert_true(kib < 64 * 1024);

	/* Under the cap, but not in the file. */
	sh0.sh_size = ELFSYM_MAX_SECTIONS;
	assert_int_equal(pwrite(fd, &sh0, sizeof(sh0), (off_t)l.shoff), sizeof(sh0));
	assert_int_equal(elfsym_check_headers(fd, &h), -ENOEXEC);
	kib = child_peak_kib(load_expecting_failure, &fd);
	assert_true(kib < 64 * 1024);

	/* Program headers: PN_XNUM takes the count from section 0's sh_info. */
	eh.e_shnum = 3;
	eh.e_phnum = PN_XNUM;
	eh.e_phoff = sizeof(eh);
	sh0.sh_size = 0;
	sh0.sh_info = 0xfffffff0u;
	assert_int_equal(pwrite(fd, &eh, sizeof(eh), 0), sizeof(eh));
	assert_int_equal(pwrite(fd, &sh0, sizeof(sh0), (off_t)l.shoff), sizeof(sh0));
	assert_int_equal(elfsym_check_headers(fd, &h), -E2BIG);
	kib = child_peak_kib(load_expecting_failure, &fd);
	assert_true(kib < 64 * 1024);
	sh0.sh_info = 4000; /* under the cap, past the end of the file */
	assert_int_equal(pwrite(fd, &sh0, sizeof(sh0), (off_t)l.shoff), sizeof(sh0));
	assert_int_equal(elfsym_check_headers(fd, &h), -ENOEXEC);

	/* The section headers past the end of the file. */
	eh.e_phnum = 0;
	eh.e_shoff = l.size - 8;
	assert_int_equal(pwrite(fd, &eh, sizeof(eh), 0), sizeof(eh));
	assert_int_equal(elfsym_check_headers(fd, &h), -ENOEXEC);
}

typedef struct HugeArgs {
	int fd;
	size_t expect_syms;
} HugeArgs;

static int load_huge(void *arg)
{
	const HugeArgs *a = arg;
	ElfSym *e = NULL;
	int r = elfsym_load_fd(a->fd, &e);

	if (r < 0 || elfsym_count(e) != a->expect_syms)
		return 1;
	elfsym_free(e);
	return 0;
}

/*
 * Sections that say they hold a GiB (a sparse file: the attacker pays nothing): a note section
 * and a symbol table are not read into memory whole; the file still loads.
 */
static void test_huge_sections(void **state)
{
	static const char note[16];
	Elf64_Sym syms[2] = { { 0 },
			      { .st_name = 1,
				.st_info = ELF64_ST_INFO(STB_GLOBAL, STT_FUNC),
				.st_shndx = 1,
				.st_value = 0x1000,
				.st_size = 16 } };
	static const char strtab[] = "\0f";
	const CraftSection secs[] = {
		{ .name = ".text",
		  .type = SHT_PROGBITS,
		  .flags = SHF_ALLOC | SHF_EXECINSTR,
		  .addr = 0x1000,
		  .size = 0x100 },
		{ .name = ".dynsym",
		  .type = SHT_DYNSYM,
		  .data = syms,
		  .size = sizeof(syms),
		  .link = 3,
		  .info = 1,
		  .entsize = sizeof(Elf64_Sym) },
		{ .name = ".dynstr", .type = SHT_STRTAB, .data = strtab, .size = sizeof(strtab) },
		{ .name = ".note.big", .type = SHT_NOTE, .data = note, .size = sizeof(note) },
		{ .name = ".symtab",
		  .type = SHT_SYMTAB,
		  .data = syms,
		  .size = sizeof(syms),
		  .link = 3,
		  .info = 1,
		  .entsize = sizeof(Elf64_Sym) },
	};
	_cleanup_close_ int fd = memfd_create("profq-huge", MFD_CLOEXEC);
	HugeArgs a = { .fd = fd };
	CraftLayout l;
	Elf64_Shdr sh;
	long kib;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(craft_elf(fd, secs, ARRAY_SIZE(secs), &l), 0);
	/* The note and the symbol table (sections 4 and 5) grow to 1 GiB each, of holes. */
	assert_int_equal(ftruncate(fd, (off_t)(l.size + (2ull << 30))), 0);
	for (int i = 4; i <= 5; i++) {
		off_t at = (off_t)(l.shoff + (uint64_t)i * sizeof(sh));

		assert_int_equal(pread(fd, &sh, sizeof(sh), at), sizeof(sh));
		sh.sh_offset = l.size + (uint64_t)(i - 4) * (1ull << 30);
		sh.sh_size = 1ull << 30;
		assert_int_equal(pwrite(fd, &sh, sizeof(sh), at), sizeof(sh));
	}
	/* The symbols come from .dynsym then. */
	a.expect_syms = 1;
	kib = child_peak_kib(load_huge, &a);
	assert_true(kib < 64 * 1024);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_symbols_vs_nm),
		cmocka_unit_test(test_stripped),
		cmocka_unit_test(test_plt),
		cmocka_unit_test(test_segments_and_build_id),
		cmocka_unit_test(test_memory_image),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_unterminated_names),
		cmocka_unit_test(test_strtab_outside_file),
		cmocka_unit_test(test_header_counts),
		cmocka_unit_test(test_huge_sections),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
