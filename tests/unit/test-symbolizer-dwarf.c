/* SPDX-License-Identifier: MIT */
/*
 * The symbolizer against fixtures built with -O2 -g (tests/unit/fixtures/fixture-dwarf.c and
 * fixture-cxx.cc): inlined calls as frames of their own, source lines, demangled C++ templates,
 * separate debug files (by .gnu_debuglink, and by build id under a --debug-dir root), and a
 * binary with nothing but .dynsym; and two more (fixture-relpath.c, fixture-nodie.s) for file
 * names relative to the compilation directory and line rows no function DIE covers.
 *
 * Nothing about the fixtures is written down here. Three oracles, read at test time:
 * - the source: the line a marker comment (e.g. LINE_MIX) is on;
 * - nm (binutils): where the functions are, and with -C their demangled names;
 * - addr2line -a -f -i (binutils' own DWARF reader, not libdw): the inline chain and the line of
 *   every address, compared frame by frame with the symbolizer's.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <grp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <zlib.h>
#include <cmocka.h>

#include "base/macro.h"
#include "base/procfs.h"
#include "fixtures/fixture-symbols.h"
#include "symbolize/dwarfinfo.h"
#include "symbolize/dwarfworker.h"
#include "symbolize/symbolizer.h"
#include "elf-craft.h"
#include "tmpdir.h"

/* Where a fixture is "loaded" in the fake process. */
#define LOAD_BIAS 0x555555554000ULL
#define A2L_MAX_FRAMES 8

/* ---- oracle: the source ---- */

/* The line of the fixture source src that contains needle; exactly one must. */
static unsigned source_line(const char *src, const char *needle)
{
	_cleanup_free_ char *path = NULL;
	unsigned line = 0, found = 0, hits = 0;
	char buf[512];
	FILE *f;

	assert_true(asprintf(&path, "%s/fixtures/%s", TEST_SOURCE_DIR, src) > 0);
	f = fopen(path, "re");
	if (!f)
		fail_msg("cannot open %s", path);
	while (fgets(buf, sizeof(buf), f)) {
		line++;
		if (strstr(buf, needle)) {
			found = line;
			hits++;
		}
	}
	fclose(f);
	if (hits != 1)
		fail_msg("'%s' is on %u lines of %s, expected one", needle, hits, src);
	return found;
}

/* The line of marker comment "/\* NAME *\/" in src. */
static unsigned marker_line(const char *src, const char *name)
{
	char needle[64];

	snprintf(needle, sizeof(needle), "/* %s */", name);
	return source_line(src, needle);
}

/* ---- oracle: addr2line ---- */

typedef struct A2lFrame {
	char function[256];
	char file[512];
	unsigned line; /* 0: unknown */
} A2lFrame;

typedef struct A2lAnswer {
	uint64_t addr;
	size_t n;
	A2lFrame frames[A2L_MAX_FRAMES]; /* innermost first */
} A2lAnswer;

static char *chomp(char *s)
{
	s[strcspn(s, "\n")] = '\0';
	return s;
}

/* "file:line" or "file:line (discriminator N)"; "??:0" and "??:?" are unknown. */
static void a2l_parse_location(const char *s, A2lFrame *f)
{
	const char *colon = strrchr(s, ':');
	char *end;

	/* The discriminator has no colon; the file name may. */
	f->file[0] = '\0';
	f->line = 0;
	if (!colon || strncmp(s, "??", 2) == 0)
		return;
	snprintf(f->file, sizeof(f->file), "%.*s", (int)MIN(colon - s, 511), s);
	f->line = (unsigned)strtoul(colon + 1, &end, 10);
	if (end == colon + 1)
		f->line = 0;
}

/* addr2line's answers for the n addresses from lo on (one per byte): an array of n. */
static A2lAnswer *a2l_range(const char *path, uint64_t lo, size_t n, bool demangle)
{
	_cleanup_free_ A2lAnswer *out = calloc(n, sizeof(A2lAnswer));
	_cleanup_free_ char *cmd = NULL;
	char *p, line[512];
	size_t len, cur = SIZE_MAX;
	FILE *f;
	int r;

	assert_non_null(out);
	len = 128 + strlen(path) + n * 20;
	cmd = malloc(len);
	assert_non_null(cmd);
	r = snprintf(cmd, len, "addr2line -a -f -i %s -e '%s'", demangle ? "-C" : "", path);
	p = cmd + r;
	for (size_t i = 0; i < n; i++)
		p += snprintf(p, len - (size_t)(p - cmd), " 0x%" PRIx64, lo + i);
	f = popen(cmd, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		A2lAnswer *a;

		chomp(line);
		if (strncmp(line, "0x", 2) == 0 &&
		    strspn(line + 2, "0123456789abcdef") == strlen(line + 2)) {
			cur = cur == SIZE_MAX ? 0 : cur + 1;
			assert_true(cur < n);
			out[cur].addr = strtoull(line, NULL, 16);
			assert_true(out[cur].addr == lo + cur);
			continue;
		}
		assert_true(cur < n);
		a = &out[cur];
		assert_true(a->n < A2L_MAX_FRAMES);
		snprintf(a->frames[a->n].function, sizeof(a->frames[0].function), "%.255s", line);
		if (!fgets(line, sizeof(line), f))
			fail_msg("addr2line: no location after '%s'", a->frames[a->n].function);
		a2l_parse_location(chomp(line), &a->frames[a->n]);
		a->n++;
	}
	assert_int_equal(pclose(f), 0);
	assert_true(cur == n - 1);
	return TAKE_PTR(out);
}

/* ---- the symbolizer on one fixture file ---- */

typedef struct World {
	Store *store; /* borrowed: worlds may share one, so that equal frames have equal ids */
	Symbolizer *sym;
	Binary *b;
	ProcMap map; /* the executable segment at LOAD_BIAS */
} World;

/* The second run of the tests: DWARF read by the worker process, as profqd does. Lookups wait
 * for its answers (the time a tick would give them is not refilled here). */
static const DwarfWorkerOptions *use_worker;
static const DwarfWorkerOptions worker_options = { .timeout_ns = 60 * NSEC_PER_SEC,
						   .wait_ns = 60 * NSEC_PER_SEC,
						   .lookup_wait_ns = 60 * NSEC_PER_SEC,
						   .max_data = 1024ull << 20 };

static void world_open(World *w, Store *store, const char *path, const char *debug_dirs)
{
	ExecSegment seg;
	uint64_t page_off;

	*w = (World){ .store = store };
	assert_int_equal(symbolizer_new(store, &w->sym), 0);
	if (use_worker)
		assert_int_equal(symbolizer_set_dwarf_worker(w->sym, use_worker), 0);
	if (debug_dirs)
		assert_int_equal(symbolizer_set_debug_dirs(w->sym, debug_dirs), 0);
	assert_int_equal(symbolizer_binary_from_path(w->sym, path, &w->b), 0);
	assert_int_equal(binary_error(w->b), 0);
	assert_int_equal(readelf_exec_segments(path, &seg, 1), 1);
	page_off = seg.vaddr & 0xfff;
	w->map = (ProcMap){
		.start = LOAD_BIAS + seg.vaddr - page_off,
		.end = LOAD_BIAS + ((seg.vaddr + seg.filesz + 0xfff) & ~0xfffULL),
		.pgoff = seg.offset - page_off,
		.inode = 1,
		.prot = PROT_READ | PROT_EXEC,
		.path = (char *)path,
	};
}

static void world_close(World *w)
{
	binary_unref(w->sym, w->b);
	symbolizer_free(w->sym);
}

/* The frames of ELF address vaddr (not a return address), innermost first. */
static size_t frames_at(World *w, uint64_t vaddr, FrameId *out)
{
	int n = symbolizer_user_frames(w->sym, w->b, &w->map, LOAD_BIAS + vaddr, false, out,
				       SYMBOLIZER_MAX_INLINE);

	assert_true(n >= 1);
	return (size_t)n;
}

static const StoreFrame *frame(const World *w, FrameId id)
{
	const StoreFrame *f = store_frame(w->store, id);

	assert_non_null(f);
	return f;
}

static const char *str(const World *w, StrId id)
{
	return id ? store_string(w->store, id) : NULL;
}

static const char *basename_of(const char *path)
{
	const char *slash = path ? strrchr(path, '/') : NULL;

	return slash ? slash + 1 : path;
}

static const NmSym *nm_must_find(const NmTable *t, const char *name)
{
	const NmSym *s = nm_find(t, name);

	if (!s)
		fail_msg("nm does not list %s", name);
	assert_true(s->size > 0);
	return s;
}

/*
 * Symbolizes every byte of function sym and compares each address's frames with addr2line's:
 * the same chain of functions (names as addr2line prints them, demangled with demangle), files
 * and lines; only the outermost frame is not marked inlined. Calls check(), if given, on each.
 */
typedef void (*CheckFn)(const World *w, uint64_t addr, const FrameId *f, size_t n, void *userdata);

static void compare_with_addr2line(World *w, const char *path, const NmSym *sym, bool demangle,
				   CheckFn check, void *userdata)
{
	_cleanup_free_ A2lAnswer *a2l = a2l_range(path, sym->addr, sym->size, demangle);

	for (size_t i = 0; i < sym->size; i++) {
		FrameId ids[SYMBOLIZER_MAX_INLINE];
		size_t n = frames_at(w, sym->addr + i, ids);
		const A2lAnswer *a = &a2l[i];

		if (n != a->n)
			fail_msg("%s+0x%zx: %zu frames, addr2line says %zu (innermost: %s)",
				 sym->name, i, n, a->n, a->frames[0].function);
		for (size_t k = 0; k < n; k++) {
			const StoreFrame *f = frame(w, ids[k]);
			const char *fn = str(w, f->function), *file = str(w, f->file);

			if (!fn || !streq(fn, a->frames[k].function))
				fail_msg("%s+0x%zx frame %zu: function %s, addr2line says %s",
					 sym->name, i, k, fn, a->frames[k].function);
			if (!file || !streq(file, a->frames[k].file) ||
			    f->line != a->frames[k].line)
				fail_msg("%s+0x%zx frame %zu (%s): %s:%u, addr2line says %s:%u",
					 sym->name, i, k, fn, file, f->line, a->frames[k].file,
					 a->frames[k].line);
			assert_int_equal(!!(f->flags & FRAME_INLINED), k + 1 < n);
			assert_true(f->address == sym->addr + i);
		}
		if (check)
			check(w, sym->addr + i, ids, n, userdata);
	}
}

/* ---- inlined calls ---- */

typedef struct InlineExpect {
	const char *inner, *outer; /* function names */
	unsigned inner_line, call_line, inner_decl_line;
	const char *inner_symbol_prefix; /* the raw symbol of the inlined function, NULL for C */
	size_t hits;			 /* addresses on inner_line inside the inlined call */
	size_t inlined;			 /* addresses with an inlined frame */
} InlineExpect;

static void check_inline(const World *w, uint64_t addr, const FrameId *ids, size_t n,
			 void *userdata)
{
	InlineExpect *e = userdata;
	const StoreFrame *outer = frame(w, ids[n - 1]), *inner;

	(void)addr;
	assert_string_equal(str(w, outer->function), e->outer);
	if (n == 1)
		return;
	/* What the source says: the only inlined call is inner's, at the call-site line. */
	assert_int_equal(n, 2);
	inner = frame(w, ids[0]);
	assert_string_equal(str(w, inner->function), e->inner);
	assert_int_equal(outer->line, e->call_line);
	assert_string_equal(basename_of(str(w, inner->decl_file)),
			    basename_of(str(w, outer->file)));
	assert_int_equal(inner->decl_line, e->inner_decl_line);
	if (e->inner_symbol_prefix) {
		assert_non_null(str(w, inner->symbol));
		assert_true(strncmp(str(w, inner->symbol), e->inner_symbol_prefix,
				    strlen(e->inner_symbol_prefix)) == 0);
	} else {
		assert_int_equal(inner->symbol, 0);
	}
	e->inlined++;
	if (inner->line == e->inner_line)
		e->hits++;
}

static void test_inline_frames(void **state)
{
	InlineExpect e = {
		.inner = "dw_mix",
		.outer = "dw_inline_loop",
		.inner_line = marker_line("fixture-dwarf.c", "LINE_MIX"),
		.call_line = marker_line("fixture-dwarf.c", "LINE_MIX_CALL"),
		.inner_decl_line = source_line("fixture-dwarf.c", "unsigned dw_mix("),
	};
	NmTable nm = { 0 };
	Store *store = NULL;
	SymbolizerStats st;
	World w;

	(void)state;
	assert_int_equal(store_new(&store), 0);
	assert_int_equal(nm_table_add(&nm, "", FIXTURE_DWARF), 0);
	world_open(&w, store, FIXTURE_DWARF, NULL);
	compare_with_addr2line(&w, FIXTURE_DWARF, nm_must_find(&nm, "dw_inline_loop"), false,
			       check_inline, &e);
	/* The hot loop's body is the inlined function's line, in a frame of its own. */
	assert_true(e.inlined > 0);
	assert_true(e.hits > 0);
	symbolizer_stats(w.sym, &st);
	assert_int_equal(st.dwarf_binaries, 1);
	assert_int_equal(st.unresolved, 0);
	world_close(&w);
	nm_table_done(&nm);
	store_free(store);
}

/* ---- source lines of leaf frames ---- */

typedef struct LineExpect {
	const char *function;
	unsigned first, last; /* the function's lines */
	unsigned want[2];     /* lines that must be hit */
	size_t hits[2];
} LineExpect;

static void check_lines(const World *w, uint64_t addr, const FrameId *ids, size_t n, void *userdata)
{
	LineExpect *e = userdata;
	const StoreFrame *f = frame(w, ids[0]);

	(void)addr;
	assert_int_equal(n, 1);
	assert_string_equal(str(w, f->function), e->function);
	assert_string_equal(basename_of(str(w, f->file)), "fixture-dwarf.c");
	if (f->line < e->first || f->line > e->last)
		fail_msg("%s at line %u, outside its lines %u-%u", e->function, f->line, e->first,
			 e->last);
	assert_int_equal(f->decl_line, e->first);
	for (size_t i = 0; i < ARRAY_SIZE(e->want); i++)
		if (f->line == e->want[i])
			e->hits[i]++;
}

static void test_leaf_lines(void **state)
{
	unsigned split = source_line("fixture-dwarf.c", "unsigned long dw_split(");
	unsigned helper = source_line("fixture-dwarf.c", "unsigned dw_static_helper(");
	LineExpect e = {
		.function = "dw_split",
		.first = split,
		.last = split + 10,
		.want = { marker_line("fixture-dwarf.c", "LINE_SPLIT_A"),
			  marker_line("fixture-dwarf.c", "LINE_SPLIT_B") },
	};
	LineExpect h = {
		.function = "dw_static_helper",
		.first = helper,
		.last = helper + 3,
		.want = { marker_line("fixture-dwarf.c", "LINE_STATIC"), 0 },
	};
	NmTable nm = { 0 };
	Store *store = NULL;
	World w;

	(void)state;
	assert_int_equal(store_new(&store), 0);
	assert_int_equal(nm_table_add(&nm, "", FIXTURE_DWARF), 0);
	world_open(&w, store, FIXTURE_DWARF, NULL);
	compare_with_addr2line(&w, FIXTURE_DWARF, nm_must_find(&nm, "dw_split"), false, check_lines,
			       &e);
	/* Both hot lines have code of their own. */
	assert_true(e.hits[0] > 0);
	assert_true(e.hits[1] > 0);
	compare_with_addr2line(&w, FIXTURE_DWARF, nm_must_find(&nm, "dw_static_helper"), false,
			       check_lines, &h);
	assert_true(h.hits[0] > 0);
	world_close(&w);
	nm_table_done(&nm);
	store_free(store);
}

/* ---- C++ ---- */

static void check_cxx(const World *w, uint64_t addr, const FrameId *ids, size_t n, void *userdata)
{
	const NmSym *const *expect = userdata; /* { raw, demangled } */
	const StoreFrame *outer = frame(w, ids[n - 1]);

	(void)addr;
	/* Plain output reads the demangled name; JSON keeps the raw symbol beside it. */
	assert_string_equal(str(w, outer->function), expect[1]->name);
	assert_string_equal(str(w, outer->symbol), expect[0]->name);
}

static void test_cxx_templates(void **state)
{
	NmTable raw = { 0 }, readable = { 0 };
	InlineExpect e = {
		.inner_line = marker_line("fixture-cxx.cc", "LINE_CXX_MIX"),
		.call_line = marker_line("fixture-cxx.cc", "LINE_CXX_CALL"),
		.inner_decl_line = source_line("fixture-cxx.cc", "T mix(T a, T b)"),
		.inner_symbol_prefix = "_ZN2fx3mixI",
	};
	unsigned twice_line = marker_line("fixture-cxx.cc", "LINE_CXX_TWICE");
	size_t templates = 0, hot_sums = 0, twice_hits = 0;
	Store *store = NULL;
	World w;

	(void)state;
	if (!FIXTURE_CXX[0])
		skip();
	assert_int_equal(store_new(&store), 0);
	assert_int_equal(nm_table_add(&raw, "", FIXTURE_CXX), 0);
	assert_int_equal(nm_table_add(&readable, "-C", FIXTURE_CXX), 0);
	assert_int_equal(raw.n, readable.n);
	world_open(&w, store, FIXTURE_CXX, NULL);
	for (size_t i = 0; i < raw.n; i++) {
		const NmSym *s = &raw.syms[i], *d = NULL, *expect[2];

		if (strncmp(s->name, "_ZN2fx", 6) != 0 && strncmp(s->name, "_ZNK2fx", 7) != 0)
			continue;
		for (size_t j = 0; j < readable.n && !d; j++)
			if (readable.syms[j].addr == s->addr && readable.syms[j].size == s->size)
				d = &readable.syms[j];
		assert_non_null(d);
		assert_string_not_equal(d->name, s->name);
		expect[0] = s;
		expect[1] = d;
		templates++;
		compare_with_addr2line(&w, FIXTURE_CXX, s, true, check_cxx, expect);
		if (strstr(d->name, "fx::hot_sum<")) {
			/* mix<T> is inlined into hot_sum<T>: its own frame, demangled. */
			char inner[128], *paren = strchr(d->name, '(');

			/* "int fx::hot_sum<int>(...)" calls "int fx::mix<int>(int, int)" */
			assert_non_null(paren);
			hot_sums++;
			e.outer = d->name;
			e.inner = inner;
			{
				const char *t = strstr(d->name, "hot_sum<") + strlen("hot_sum<");
				const char *close = strchr(t, '>');
				int tl = (int)(close - t);

				snprintf(inner, sizeof(inner), "%.*s fx::mix<%.*s>(%.*s, %.*s)", tl,
					 t, tl, t, tl, t, tl, t);
			}
			compare_with_addr2line(&w, FIXTURE_CXX, s, true, check_inline, &e);
		}
		if (strstr(d->name, "Box<int>::twice")) {
			FrameId ids[SYMBOLIZER_MAX_INLINE];

			for (uint64_t a = s->addr; a < s->addr + s->size; a++)
				if (frames_at(&w, a, ids) == 1 &&
				    frame(&w, ids[0])->line == twice_line)
					twice_hits++;
		}
	}
	/* What the source has: hot_sum<int>, hot_sum<double> and Box<int>::twice() const. */
	assert_int_equal(templates, 3);
	assert_int_equal(hot_sums, 2);
	assert_true(nm_find(&readable, "int fx::hot_sum<int>(int const*, unsigned int)"));
	assert_true(nm_find(&readable, "fx::Box<int>::twice() const"));
	assert_true(e.inlined > 0);
	assert_true(e.hits > 0);
	assert_true(twice_hits > 0);
	world_close(&w);
	nm_table_done(&raw);
	nm_table_done(&readable);
	store_free(store);
}

/* ---- file names relative to the compilation directory ---- */

typedef struct RelpathExpect {
	char *c, *h; /* realpath of fixture-relpath.c and .h */
	unsigned mix_line, call_line;
	size_t in_header; /* addresses whose leaf is rp_mix's line, in the header */
} RelpathExpect;

/* path is absolute and names the file want (a realpath). */
static void assert_same_file(const char *path, const char *want)
{
	_cleanup_free_ char *real = NULL;

	assert_non_null(path);
	if (path[0] != '/')
		fail_msg("'%s' is relative, expected %s", path, want);
	real = realpath(path, NULL);
	if (!real || !streq(real, want))
		fail_msg("'%s' is not %s", path, want);
}

static void check_relpath(const World *w, uint64_t addr, const FrameId *ids, size_t n,
			  void *userdata)
{
	RelpathExpect *e = userdata;
	const StoreFrame *outer = frame(w, ids[n - 1]);

	(void)addr;
	assert_string_equal(str(w, outer->function), "rp_loop");
	assert_same_file(str(w, outer->file), e->c);
	assert_same_file(str(w, outer->decl_file), e->c);
	if (n == 1)
		return;
	assert_int_equal(n, 2);
	/* The inlined function: its code and declaration in the header, called from the .c. */
	assert_string_equal(str(w, frame(w, ids[0])->function), "rp_mix");
	assert_same_file(str(w, frame(w, ids[0])->file), e->h);
	assert_same_file(str(w, frame(w, ids[0])->decl_file), e->h);
	assert_int_equal(outer->line, e->call_line);
	if (frame(w, ids[0])->line == e->mix_line)
		e->in_header++;
}

/* The line table of path has directory "fixtures", relative: what the test is about. */
static bool has_relative_dir(const char *path)
{
	_cleanup_free_ char *cmd = NULL;
	char line[1024];
	bool found = false;
	FILE *f;

	assert_true(asprintf(&cmd, "readelf --debug-dump=rawline '%s'", path) > 0);
	f = popen(cmd, "r");
	assert_non_null(f);
	/* "  1	fixtures" (DWARF 4) or "  1	(line string, offset: 0x..): fixtures" (5). */
	while (fgets(line, sizeof(line), f)) {
		const char *last = strrchr(chomp(line), ' '), *tab = strrchr(line, '\t');

		last = last && tab ? MAX(last, tab) : last ?: tab;
		if (last && streq(last + 1, "fixtures"))
			found = true;
	}
	assert_int_equal(pclose(f), 0);
	return found;
}

/*
 * Compiled from tests/unit as "fixtures/fixture-relpath.c": libdw gives "fixtures/..." names,
 * which nobody can open. The symbolizer answers them joined with the compilation directory,
 * the files of the source tree, as addr2line does, in DWARF 4 and 5.
 */
static void test_relative_file_names(void **state)
{
	const char *const fixtures[] = { FIXTURE_RELPATH_DWARF4, FIXTURE_RELPATH_DWARF5 };
	_cleanup_free_ char *c = NULL, *h = NULL;

	(void)state;
	assert_true(asprintf(&c, "%s/fixtures/fixture-relpath.c", TEST_SOURCE_DIR) > 0);
	assert_true(asprintf(&h, "%s/fixtures/fixture-relpath.h", TEST_SOURCE_DIR) > 0);
	for (size_t i = 0; i < ARRAY_SIZE(fixtures); i++) {
		RelpathExpect e = {
			.c = realpath(c, NULL),
			.h = realpath(h, NULL),
			.mix_line = marker_line("fixture-relpath.h", "LINE_RP_MIX"),
			.call_line = marker_line("fixture-relpath.c", "LINE_RP_CALL"),
		};
		NmTable nm = { 0 };
		Store *store = NULL;
		SymbolizerStats st;
		World w;

		assert_non_null(e.c);
		assert_non_null(e.h);
		assert_true(has_relative_dir(fixtures[i]));
		assert_int_equal(store_new(&store), 0);
		assert_int_equal(nm_table_add(&nm, "", fixtures[i]), 0);
		world_open(&w, store, fixtures[i], NULL);
		compare_with_addr2line(&w, fixtures[i], nm_must_find(&nm, "rp_loop"), false,
				       check_relpath, &e);
		assert_true(e.in_header > 0);
		symbolizer_stats(w.sym, &st);
		assert_int_equal(st.dwarf_binaries, 1);
		world_close(&w);
		nm_table_done(&nm);
		store_free(store);
		free(e.c);
		free(e.h);
	}
}

/* ---- line rows without a function DIE ---- */

typedef struct NodieExpect {
	unsigned lines[2];
	size_t hits[2];
} NodieExpect;

static void check_nodie(const World *w, uint64_t addr, const FrameId *ids, size_t n, void *userdata)
{
	NodieExpect *e = userdata;
	const StoreFrame *f = frame(w, ids[0]);

	(void)addr;
	assert_int_equal(n, 1);
	/* The name from the symbol table, the line from the line table. */
	assert_string_equal(str(w, f->function), "nd_add");
	assert_string_equal(basename_of(str(w, f->file)), "fixture-nodie.s");
	assert_int_equal(f->decl_file, 0);
	for (size_t i = 0; i < ARRAY_SIZE(e->lines); i++)
		if (f->line == e->lines[i])
			e->hits[i]++;
}

/*
 * Code the line table covers but no function DIE does (GCC's identical code folding leaves
 * such functions in libpython): file:line still from the line table, the name from .symtab.
 */
static void test_lines_without_function_die(void **state)
{
	NodieExpect e = { .lines = { source_line("fixture-nodie.s", "# LINE_NODIE_A"),
				     source_line("fixture-nodie.s", "# LINE_NODIE_B") } };
	NmTable nm = { 0 };
	Store *store = NULL;
	SymbolizerStats st;
	World w;

	(void)state;
	assert_int_equal(store_new(&store), 0);
	assert_int_equal(nm_table_add(&nm, "", FIXTURE_NODIE), 0);
	world_open(&w, store, FIXTURE_NODIE, NULL);
	compare_with_addr2line(&w, FIXTURE_NODIE, nm_must_find(&nm, "nd_add"), false, check_nodie,
			       &e);
	assert_true(e.hits[0] > 0);
	assert_true(e.hits[1] > 0);
	symbolizer_stats(w.sym, &st);
	assert_int_equal(st.dwarf_binaries, 1);
	assert_int_equal(st.unresolved, 0);
	world_close(&w);
	nm_table_done(&nm);
	store_free(store);
}

/* ---- separate debug files ---- */

/* The functions of fixture-dwarf the stripped copies are compared on. */
static const char *const dwarf_functions[] = { "dw_inline_loop", "dw_split", "dw_static_helper",
					       "main" };

/*
 * Every address of the fixture's functions symbolizes to the very same frames (same interned
 * ids: same names, files, lines, flags, module) in the copy at path as in the original.
 */
static void check_same_as_original(const char *path, const char *debug_dirs)
{
	FrameId want[SYMBOLIZER_MAX_INLINE], got[SYMBOLIZER_MAX_INLINE];
	size_t compared = 0, with_lines = 0, inlined = 0;
	NmTable nm = { 0 };
	Store *store = NULL;
	SymbolizerStats st;
	World orig, copy;

	assert_int_equal(store_new(&store), 0);
	assert_int_equal(nm_table_add(&nm, "", FIXTURE_DWARF), 0);
	world_open(&orig, store, FIXTURE_DWARF, NULL);
	world_open(&copy, store, path, debug_dirs);
	assert_string_equal(binary_name(copy.sym, copy.b), "fixture-dwarf");
	for (size_t i = 0; i < ARRAY_SIZE(dwarf_functions); i++) {
		const NmSym *s = nm_must_find(&nm, dwarf_functions[i]);

		for (uint64_t a = s->addr; a < s->addr + s->size; a++) {
			size_t n = frames_at(&orig, a, want), m = frames_at(&copy, a, got);

			if (n != m || memcmp(want, got, n * sizeof(FrameId)) != 0)
				fail_msg("%s+0x%" PRIx64
					 ": %zu frames (%s:%u), original %zu (%s:%u)",
					 s->name, a - s->addr, m,
					 str(&copy, frame(&copy, got[0])->function),
					 frame(&copy, got[0])->line, n,
					 str(&orig, frame(&orig, want[0])->function),
					 frame(&orig, want[0])->line);
			compared++;
			with_lines += frame(&orig, want[0])->line > 0;
			inlined += n > 1;
		}
	}
	/* The comparison was of DWARF answers, not of two empty ones. */
	assert_true(compared > 0);
	assert_true(with_lines == compared);
	assert_true(inlined > 0);
	symbolizer_stats(copy.sym, &st);
	assert_int_equal(st.dwarf_binaries, 1);
	assert_int_equal(st.unresolved, 0);
	world_close(&copy);
	world_close(&orig);
	nm_table_done(&nm);
	store_free(store);
}

/* --strip-debug with a .gnu_debuglink to the .debug file beside it. */
static void test_debuglink(void **state)
{
	(void)state;
	check_same_as_original(FIXTURE_DWARF_DEBUGLINK, NULL);
}

/*
 * --strip-all (no .symtab, no debuglink): the debug file is found by build id under a debug
 * root given like --debug-dir, laid out as /usr/lib/debug is: .build-id/xx/yyyy.debug. Local
 * functions come from the debug file's .symtab.
 */
static void test_build_id_debug_dir(void **state)
{
	char root[] = "/tmp/profq-test-debugroot-XXXXXX", id[128];
	_cleanup_free_ char *dir = NULL, *link = NULL, *target = NULL, *bid = NULL;

	(void)state;
	assert_non_null(mkdtemp(root));
	assert_int_equal(readelf_build_id(FIXTURE_DWARF_BUILDID, id, sizeof(id)), 0);
	assert_true(strlen(id) > 2);
	assert_int_equal(readelf_build_id(FIXTURE_DWARF_DEBUG, id + 64, 64), 0);
	assert_string_equal(id, id + 64);
	assert_true(asprintf(&bid, "%s/.build-id", root) > 0);
	assert_true(asprintf(&dir, "%s/%.2s", bid, id) > 0);
	assert_true(asprintf(&link, "%s/%s.debug", dir, id + 2) > 0);
	target = realpath(FIXTURE_DWARF_DEBUG, NULL);
	assert_non_null(target);
	assert_int_equal(mkdir(bid, 0755), 0);
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(symlink(target, link), 0);

	check_same_as_original(FIXTURE_DWARF_BUILDID, root);

	unlink(link);
	rmdir(dir);
	rmdir(bid);
	rmdir(root);
}

/* Does this process map a file whose path contains needle? */
static bool self_maps(const char *needle)
{
	_cleanup_free_ char *maps = NULL;
	size_t len;

	assert_int_equal(procfs_read_file("/proc/self/maps", 16 << 20, &maps, &len), 0);
	return strstr(maps, needle) != NULL;
}

/* Nothing but .dynsym and no debug file: exported functions by name, locals unresolved. */
static void test_dynsym_only(void **state)
{
	NmTable nm = { 0 }, dyn = { 0 };
	Store *store = NULL;
	SymbolizerStats st;
	FrameId ids[SYMBOLIZER_MAX_INLINE];
	size_t exported = 0;
	World w;

	(void)state;
	assert_int_equal(store_new(&store), 0);
	assert_int_equal(nm_table_add(&nm, "", FIXTURE_DWARF), 0);
	/* No .symtab left: nm reads nothing without -D. */
	assert_int_equal(nm_table_add(&dyn, "-D", FIXTURE_DWARF_BUILDID), 0);
	world_open(&w, store, FIXTURE_DWARF_BUILDID, NULL);
	for (size_t i = 0; i < ARRAY_SIZE(dwarf_functions); i++) {
		const NmSym *s = nm_must_find(&nm, dwarf_functions[i]);
		bool in_dynsym = nm_find(&dyn, s->name) != NULL;

		for (uint64_t a = s->addr; a < s->addr + s->size; a++) {
			const StoreFrame *f;

			assert_int_equal(frames_at(&w, a, ids), 1);
			f = frame(&w, ids[0]);
			assert_int_equal(f->file, 0);
			assert_int_equal(f->line, 0);
			assert_int_equal(f->flags, 0);
			if (in_dynsym)
				assert_string_equal(str(&w, f->function), s->name);
			else
				assert_null(str(&w, f->function)); /* module+offset */
		}
		exported += in_dynsym;
	}
	/* -rdynamic exports all but the static function. */
	assert_int_equal(exported, ARRAY_SIZE(dwarf_functions) - 1);
	assert_null(nm_find(&dyn, "dw_static_helper"));
	symbolizer_stats(w.sym, &st);
	assert_int_equal(st.dwarf_binaries, 0);
	/* Looking for a debug file everywhere did not load libdebuginfod (and libcurl...). */
	assert_false(self_maps("libdebuginfod"));
	world_close(&w);
	nm_table_done(&nm);
	nm_table_done(&dyn);
	store_free(store);
}

/* ---- separate debug files the binary's owner names ---- */

static int run(const char *fmt, ...) _printf_(1, 2);
static int run(const char *fmt, ...)
{
	_cleanup_free_ char *cmd = NULL;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&cmd, fmt, ap);
	va_end(ap);
	assert_true(r > 0);
	return system(cmd);
}

static uint32_t file_crc(const char *path)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	uLong sum = crc32(0, NULL, 0);
	char buf[65536];
	ssize_t n;

	assert_true(fd >= 0);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		sum = crc32(sum, (const Bytef *)buf, (uInt)n);
	return (uint32_t)sum;
}

/*
 * A copy of the --strip-debug fixture at out whose .gnu_debuglink names name with CRC crc, as
 * its owner may write it (objcopy itself would keep the basename only); without its build id
 * if no_build_id.
 */
static void make_debuglink(const char *dir, const char *out, const char *name, uint32_t crc,
			   bool no_build_id)
{
	_cleanup_free_ char *blob = NULL;
	size_t len = strlen(name) + 1, pad = (4 - len % 4) % 4;
	char buf[512] = { 0 };
	FILE *f;

	assert_true(len + pad + 4 <= sizeof(buf));
	memcpy(buf, name, len);
	memcpy(buf + len + pad, &crc, 4);
	assert_true(asprintf(&blob, "%s/debuglink.bin", dir) > 0);
	f = fopen(blob, "we");
	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len + pad + 4, f), len + pad + 4);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(run("objcopy --remove-section .gnu_debuglink %s --add-section "
			     ".gnu_debuglink=%s '%s' '%s'",
			     no_build_id ? "--remove-section .note.gnu.build-id" : "", blob,
			     FIXTURE_DWARF_DEBUGLINK, out),
			 0);
}

/* Whether the binary at path was given DWARF (a debug file's), and what it cost. */
static bool has_dwarf(const char *path, uint64_t *ret_cpu_ns)
{
	Store *store = NULL;
	Symbolizer *sym = NULL;
	SymbolizerStats st;
	struct timespec a, b;
	Binary *bin = NULL;

	assert_int_equal(store_new(&store), 0);
	assert_int_equal(symbolizer_new(store, &sym), 0);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
	assert_int_equal(symbolizer_binary_from_path(sym, path, &bin), 0);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
	if (ret_cpu_ns)
		*ret_cpu_ns = (uint64_t)(b.tv_sec - a.tv_sec) * 1000000000ull +
			      (uint64_t)b.tv_nsec - (uint64_t)a.tv_nsec;
	assert_int_equal(binary_error(bin), 0);
	symbolizer_stats(sym, &st);
	binary_unref(sym, bin);
	symbolizer_free(sym);
	store_free(store);
	return st.dwarf_binaries > 0;
}

/*
 * The debuglink is a file name looked for in the standard places, and the file found must be
 * the binary's: an absolute path or "../" to another file (a root-only one, say) with CRC 0 is
 * not opened; a file of another build is not taken for it (CRC 0 is no wildcard); the right
 * file by build id, or by CRC when the binary has no build id, is.
 */
static void test_debuglink_hostile(void **state)
{
	_cleanup_tmpdir_ char *dir = tmpdir_new_named("profq-debuglink");
	_cleanup_free_ char *secret = NULL, *secret_dir = NULL, *bin = NULL, *name = NULL,
			    *other = NULL, *sparse = NULL;
	uint32_t crc = file_crc(FIXTURE_DWARF_DEBUG);
	uint64_t cpu;
	int fd;

	(void)state;
	assert_non_null(dir);
	assert_true(asprintf(&secret_dir, "%s/secret", dir) > 0);
	assert_true(asprintf(&secret, "%s/fixture-dwarf.debug", secret_dir) > 0);
	assert_true(asprintf(&bin, "%s/bin/app", dir) > 0);
	assert_int_equal(run("mkdir -p %s/bin %s && cp %s %s", dir, secret_dir, FIXTURE_DWARF_DEBUG,
			     secret),
			 0);

	/* The right file by absolute path or "../": not opened, whatever the CRC says. */
	make_debuglink(dir, bin, secret, 0, false);
	assert_false(has_dwarf(bin, NULL));
	make_debuglink(dir, bin, secret, crc, false);
	assert_false(has_dwarf(bin, NULL));
	make_debuglink(dir, bin, "../secret/fixture-dwarf.debug", 0, false);
	assert_false(has_dwarf(bin, NULL));

	/* By name beside the binary: taken when it is this build's (build id), CRC 0 or not. */
	assert_int_equal(run("cp %s %s/bin/app.debug", FIXTURE_DWARF_DEBUG, dir), 0);
	make_debuglink(dir, bin, "app.debug", 0, false);
	assert_true(has_dwarf(bin, NULL));
	/* Another build's file under that name: refused (before, CRC 0 took anything). */
	assert_int_equal(run("cp %s %s/bin/app.debug", FIXTURE_PROG, dir), 0);
	assert_false(has_dwarf(bin, NULL));

	/* No build id: the CRC decides, and 0 is a CRC like any other. */
	assert_int_equal(run("cp %s %s/bin/app.debug", FIXTURE_DWARF_DEBUG, dir), 0);
	make_debuglink(dir, bin, "app.debug", crc, true);
	assert_true(has_dwarf(bin, NULL));
	make_debuglink(dir, bin, "app.debug", 0, true);
	assert_false(has_dwarf(bin, NULL));
	make_debuglink(dir, bin, "app.debug", crc ^ 1, true);
	assert_false(has_dwarf(bin, NULL));
	/* In .debug/ beside the binary, as GDB looks. */
	assert_int_equal(
		run("mkdir %s/bin/.debug && mv %s/bin/app.debug %s/bin/.debug/", dir, dir, dir), 0);
	make_debuglink(dir, bin, "app.debug", crc, true);
	assert_true(has_dwarf(bin, NULL));

	/* An 8 GiB sparse file named by the debuglink: refused by its size, not read for a CRC
	 * (which took 9 s). */
	assert_true(asprintf(&sparse, "%s/bin/big.debug", dir) > 0);
	assert_int_equal(run("cp %s %s", FIXTURE_DWARF_DEBUG, sparse), 0);
	fd = open(sparse, O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 8ll << 30), 0);
	close(fd);
	make_debuglink(dir, bin, "big.debug", 0x12345678, true);
	assert_false(has_dwarf(bin, &cpu));
	assert_true(cpu < 500 * 1000000ull);
	/* Over the CRC cap (no build id to compare instead): not read either. */
	fd = open(sparse, O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 300ll << 20), 0);
	close(fd);
	assert_false(has_dwarf(bin, &cpu));
	assert_true(cpu < 500 * 1000000ull);
}

/* ---- compressed debug sections that inflate to gigabytes ---- */

/* An SHF_COMPRESSED section's contents: the header and a zlib stream of size zeros. */
static void *zlib_zeros(uint64_t size, size_t *ret_len)
{
	static const char zeros[1 << 20];
	Elf64_Chdr ch = { .ch_type = ELFCOMPRESS_ZLIB, .ch_size = size, .ch_addralign = 1 };
	size_t cap = sizeof(ch) + size / 512 + 65536;
	uint8_t *buf = malloc(cap);
	z_stream z = { 0 };

	assert_non_null(buf);
	memcpy(buf, &ch, sizeof(ch));
	assert_int_equal(deflateInit(&z, 9), Z_OK);
	z.next_out = buf + sizeof(ch);
	z.avail_out = (uInt)(cap - sizeof(ch));
	for (uint64_t done = 0; done < size; done += sizeof(zeros)) {
		z.next_in = (Bytef *)zeros;
		z.avail_in = sizeof(zeros);
		assert_int_equal(deflate(&z, done + sizeof(zeros) >= size ? Z_FINISH : Z_NO_FLUSH),
				 done + sizeof(zeros) >= size ? Z_STREAM_END : Z_OK);
	}
	*ret_len = sizeof(ch) + z.total_out;
	deflateEnd(&z);
	return buf;
}

typedef struct BombArgs {
	const char *path;
	uint64_t func_addr;
} BombArgs;

/* In a child: the binary loads, its DWARF is refused (counted), its symbols are not. */
static int load_bomb(void *arg)
{
	const BombArgs *a = arg;
	Store *store = NULL;
	Symbolizer *sym = NULL;
	SymbolizerStats st;
	Binary *bin = NULL;
	ProcMap m = { .start = 0x1000, .end = 0x2000, .pgoff = 0x1000, .path = (char *)a->path };
	FrameId id;
	const StoreFrame *f;

	if (store_new(&store) < 0 || symbolizer_new(store, &sym) < 0 ||
	    symbolizer_binary_from_path(sym, a->path, &bin) < 0 || binary_error(bin) < 0)
		return 1;
	if (symbolizer_user_frames(sym, bin, &m, a->func_addr, false, &id, 1) != 1)
		return 2;
	f = store_frame(store, id);
	if (!f || !streq_ptr(store_string(store, f->function), "bomb_func"))
		return 3;
	symbolizer_stats(sym, &st);
	if (st.dwarf_refused != 1 || st.dwarf_binaries != 0)
		return 4;
	return 0;
}

/*
 * Two debug sections of a 400 KiB file say they inflate to 192 MiB each (zeros, and they do):
 * libdw would inflate them whole on opening. The DWARF is refused before, counted; the symbols
 * stay.
 */
static void test_compressed_bomb(void **state)
{
	const uint64_t inflated = 192u << 20;
	_cleanup_tmpdir_ char *dir = tmpdir_new_named("profq-zbomb");
	_cleanup_free_ char *path = NULL;
	_cleanup_free_ void *z = NULL;
	static char strtab[] = "\0bomb_func";
	Elf64_Sym syms[2] = { { 0 },
			      { .st_name = 1,
				.st_info = ELF64_ST_INFO(STB_GLOBAL, STT_FUNC),
				.st_shndx = 1,
				.st_value = 0x1000,
				.st_size = 0x100 } };
	BombArgs a = { .func_addr = 0x1010 };
	struct rusage ru;
	size_t zlen;
	int status;
	pid_t pid;
	int fd;

	(void)state;
	assert_non_null(dir);
	z = zlib_zeros(inflated, &zlen);
	const CraftSection secs[] = {
		{ .name = ".text",
		  .type = SHT_PROGBITS,
		  .flags = SHF_ALLOC | SHF_EXECINSTR,
		  .addr = 0x1000,
		  .size = 0x1000 },
		{ .name = ".symtab",
		  .type = SHT_SYMTAB,
		  .data = syms,
		  .size = sizeof(syms),
		  .link = 3,
		  .info = 1,
		  .entsize = sizeof(Elf64_Sym) },
		{ .name = ".strtab", .type = SHT_STRTAB, .data = strtab, .size = sizeof(strtab) },
		{ .name = ".debug_info",
		  .type = SHT_PROGBITS,
		  .flags = SHF_COMPRESSED,
		  .data = z,
		  .size = zlen },
		{ .name = ".debug_abbrev",
		  .type = SHT_PROGBITS,
		  .flags = SHF_COMPRESSED,
		  .data = z,
		  .size = zlen },
	};
	assert_true(asprintf(&path, "%s/bomb.so", dir) > 0);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(craft_elf(fd, secs, ARRAY_SIZE(secs), NULL), 0);
	close(fd);
	a.path = path;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(load_bomb(&a));
	assert_int_equal(wait4(pid, &status, 0, &ru), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_true(ru.ru_maxrss < 100 * 1024); /* KiB; libdw inflating: over 384 MiB */
}

/* ---- a file truncated under libdw's mapping ---- */

/* In a child: the copy's DWARF is opened, the file truncated, an address of a CU not yet read
 * looked up (at the module's level: the symbolizer would see the change first, see
 * test_replaced_in_place, and the fault needs the truncation to race with the walk). */
static int lookup_truncated(void *arg)
{
	const char *path = arg;
	DwarfFrame frames[SYMBOLIZER_MAX_INLINE];
	DwarfCounters counters = { 0 };
	DwarfInfo *d = NULL;
	NmTable nm = { 0 };
	int fd, n;

	if (nm_table_add(&nm, "", FIXTURE_DWARF) < 0)
		return 1;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || dwarf_info_open(fd, path, NULL, &counters, &d) < 0)
		return 2;
	if (truncate(path, 0) < 0)
		return 3;
	n = dwarf_info_lookup(d, nm_must_find(&nm, dwarf_functions[0])->addr, frames,
			      ARRAY_SIZE(frames));
	if (n != 0 || counters.faults != 1)
		return 4;
	/* Not opened again. */
	n = dwarf_info_lookup(d, nm_must_find(&nm, dwarf_functions[1])->addr, frames,
			      ARRAY_SIZE(frames));
	if (n != 0 || counters.faults != 1 || counters.opens != 1)
		return 5;
	dwarf_info_free(d);
	close(fd);
	nm_table_done(&nm);
	return 0;
}

/*
 * The binary's owner truncates it while libdw has it mapped: the read past the new end
 * (SIGBUS) costs that binary's DWARF, counted, not the daemon.
 */
static void test_truncated_under_libdw(void **state)
{
	_cleanup_tmpdir_ char *dir = tmpdir_new_named("profq-truncate");
	_cleanup_free_ char *path = NULL;
	int status;
	pid_t pid;

	(void)state;
	assert_non_null(dir);
	assert_true(asprintf(&path, "%s/fixture-dwarf", dir) > 0);
	assert_int_equal(run("cp %s %s", FIXTURE_DWARF, path), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(lookup_truncated(path));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		fail_msg("killed by signal %d", WTERMSIG(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/*
 * A fault inside the walk of a CU (its line table on a page past the truncated end, the CU
 * header and DIEs before it): what was being built is ours and freed, only libdw's handles are
 * abandoned. Run by the test in a process of its own (main(): --cu-fault PATH) so that, in an
 * ASan build, LeakSanitizer checks at its exit with libdw's and libelf's leaks suppressed:
 * before, the CU index being built leaked (found by test_hostile.py against the ASan daemon).
 */
static int cu_fault_child(const char *path)
{
	DwarfFrame frames[SYMBOLIZER_MAX_INLINE];
	DwarfCounters counters = { 0 };
	DwarfInfo *d = NULL;
	NmTable nm = { 0 };
	int fd, n;

	if (nm_table_add(&nm, "", path) < 0)
		return 1;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || dwarf_info_open(fd, path, "", &counters, &d) < 0)
		return 2;
	/* .debug_line starts a page of its own (objcopy --set-section-alignment). */
	if (truncate(path, 4096 * 4) < 0)
		return 3;
	n = dwarf_info_lookup(d, nm_must_find(&nm, dwarf_functions[0])->addr, frames,
			      ARRAY_SIZE(frames));
	if (n != 0 || counters.faults != 1)
		return 4;
	dwarf_info_free(d);
	close(fd);
	nm_table_done(&nm);
	return 0;
}

/*
 * The same between two slices of a big CU's walk: its first slice read the start of the CU,
 * then the file is truncated and the next slice (dwarf_info_work(), outside any lookup) reads
 * past the end. --cu-fault-sliced PATH, a copy of the big fixture.
 */
static int cu_fault_sliced_child(const char *path)
{
	DwarfFrame frames[SYMBOLIZER_MAX_INLINE];
	DwarfCounters counters = { .slice_ns = 1 };
	DwarfInfo *d = NULL;
	NmTable nm = { 0 };
	int fd, n, r;

	if (nm_table_add(&nm, "", path) < 0)
		return 1;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || dwarf_info_open(fd, path, "", &counters, &d) < 0)
		return 2;
	n = dwarf_info_lookup(d, nm_must_find(&nm, "f399")->addr, frames, ARRAY_SIZE(frames));
	if (n != -EINPROGRESS || !dwarf_info_building(d))
		return 3;
	if (truncate(path, 4096) < 0)
		return 4;
	while ((r = dwarf_info_work(d)) == 1)
		;
	if (r != -EIO || counters.faults != 1 || dwarf_info_building(d))
		return 5;
	/* Its DWARF is not opened again: symbol-table names from now on. */
	n = dwarf_info_lookup(d, nm_must_find(&nm, "f7")->addr, frames, ARRAY_SIZE(frames));
	if (n != 0 || counters.opens != 1)
		return 6;
	dwarf_info_free(d);
	close(fd);
	nm_table_done(&nm);
	return 0;
}

static void cu_fault_run(const char *mode, const char *path)
{
	_cleanup_free_ char *supp = NULL;
	FILE *f;

	assert_true(asprintf(&supp, "%s.lsan.supp", path) > 0);
	f = fopen(supp, "we");
	assert_non_null(f);
	fputs("leak:libdw.so\nleak:libelf.so\n", f);
	fclose(f);
	assert_int_equal(run("LSAN_OPTIONS=suppressions=%s:exitcode=23 /proc/%d/exe %s %s", supp,
			     (int)getpid(), mode, path),
			 0);
}

static void test_fault_between_slices(void **state)
{
	_cleanup_tmpdir_ char *dir = tmpdir_new_named("profq-cu-fault-sliced");
	_cleanup_free_ char *path = NULL;

	(void)state;
	assert_non_null(dir);
	assert_true(asprintf(&path, "%s/libbig.so", dir) > 0);
	assert_int_equal(run("cp %s %s", FIXTURE_DWARF_BIG, path), 0);
	cu_fault_run("--cu-fault-sliced", path);
}

static void test_fault_in_cu_walk(void **state)
{
	_cleanup_tmpdir_ char *dir = tmpdir_new_named("profq-cu-fault");
	_cleanup_free_ char *path = NULL;

	(void)state;
	assert_non_null(dir);
	assert_true(asprintf(&path, "%s/fixture-dwarf", dir) > 0);
	assert_int_equal(run("objcopy --set-section-alignment .debug_line=16384 %s %s",
			     FIXTURE_DWARF, path),
			 0);
	assert_int_equal(run("readelf -SW %s | grep -q ' .debug_line .* 004000 '", path), 0);
	assert_int_equal(run("readelf -SW %s | grep -q ' .debug_info .* 003'", path), 0);
	cu_fault_run("--cu-fault", path);
}

/* ---- a process reads through the symbolizer what its owner may read ---- */

/* A process of user nobody, stopped until killed. */
static pid_t spawn_nobody(void)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		/* Not holding the test's output; gone with the test, also when an assertion ends
		 * it (after the ids change, which clears the parent-death signal). */
		(void)!freopen("/dev/null", "w", stdout);
		(void)!freopen("/dev/null", "w", stderr);
		if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
		    setresuid(65534, 65534, 65534) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 ||
		    getppid() == 1)
			_exit(1);
		for (;;)
			pause();
	}
	/* Until /proc shows the new ids. */
	for (int i = 0; i < 1000; i++) {
		ProcStatus st;

		if (procfs_read_status(pid, &st) == 0 && st.uid[0] == 65534)
			return pid;
		usleep(1000);
	}
	fail_msg("the nobody process did not change its ids");
	return -1;
}

static void kill_wait(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* The mapping of path's executable segment as process pid would have it (not really mapped:
 * the symbolizer opens it through /proc/PID/root). */
static ProcMap map_of(const char *path)
{
	ExecSegment seg = { 0 };
	struct stat st;
	uint64_t page_off;

	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(readelf_exec_segments(path, &seg, 1), 1);
	page_off = seg.vaddr & 0xfff;
	return (ProcMap){ .start = LOAD_BIAS + seg.vaddr - page_off,
			  .end = LOAD_BIAS + ((seg.vaddr + seg.filesz + 0xfff) & ~0xfffULL),
			  .pgoff = seg.offset - page_off,
			  .inode = st.st_ino,
			  .dev_major = major(st.st_dev),
			  .dev_minor = minor(st.st_dev),
			  .prot = PROT_READ | PROT_EXEC,
			  .path = (char *)path };
}

/* What process pid gets at ELF address vaddr of path: the outermost frame's function and line. */
static void lookup_as(Symbolizer *sym, Store *store, pid_t pid, const char *path, uint64_t vaddr,
		      const char **ret_function, uint32_t *ret_line)
{
	FrameId ids[SYMBOLIZER_MAX_INLINE];
	ProcMap m = map_of(path);
	const StoreFrame *f;
	Binary *b = NULL;
	int n;

	assert_int_equal(symbolizer_binary(sym, pid, &m, &b), 0);
	n = symbolizer_user_frames(sym, b, &m, LOAD_BIAS + vaddr, false, ids,
				   SYMBOLIZER_MAX_INLINE);
	assert_true(n >= 1);
	f = store_frame(store, ids[n - 1]);
	*ret_function = store_string(store, f->function);
	*ret_line = f->line;
	binary_unref(sym, b);
}

/* Each case with a new symbolizer: nothing cached from the one before. */
static void check_as(pid_t pid, const char *path, uint64_t vaddr, const char *want_function,
		     bool want_line)
{
	Store *store = NULL;
	Symbolizer *sym = NULL;
	const char *fn;
	uint32_t line;

	assert_int_equal(store_new(&store), 0);
	assert_int_equal(symbolizer_new(store, &sym), 0);
	lookup_as(sym, store, pid, path, vaddr, &fn, &line);
	if (!streq_ptr(fn, want_function) || (line > 0) != want_line)
		fail_msg("pid %d, %s: %s:%u, want %s with%s a line", (int)pid, path, fn ?: "-",
			 line, want_function ?: "-", want_line ? "" : "out");
	symbolizer_free(sym);
	store_free(store);
}

/* Gives path a POSIX ACL (the system.posix_acl_access xattr, as setfacl writes it) with the
 * mode bits r-x for all but user uid, who gets nothing. */
static int set_acl_deny(const char *path, uint32_t uid)
{
	struct {
		uint16_t tag, perm;
		uint32_t id;
	} entries[] = {
		{ 0x01, 7, UINT32_MAX }, /* user_obj */
		{ 0x02, 0, uid },	 /* user:uid:--- */
		{ 0x04, 5, UINT32_MAX }, /* group_obj */
		{ 0x10, 5, UINT32_MAX }, /* mask */
		{ 0x20, 5, UINT32_MAX }, /* other */
	};
	uint8_t buf[4 + sizeof(entries)];
	uint32_t version = 2;

	memcpy(buf, &version, 4);
	memcpy(buf + 4, entries, sizeof(entries));
	return setxattr(path, "system.posix_acl_access", buf, sizeof(buf), 0) < 0 ? -errno : 0;
}

/*
 * The symbols and DWARF used for a process are only those its owner could read: a debug file
 * only root may read (or reached through a directory only root may search) gives a user's
 * process no lines, an execute-only binary gives it no names; root's process gets all.
 */
static void test_owner_access(void **state)
{
	_cleanup_tmpdir_ char *dir = tmpdir_new_named("profq-access");
	_cleanup_free_ char *bin = NULL, *dbg = NULL, *secret = NULL, *bindir = NULL;
	NmTable nm = { 0 };
	const char *fn = dwarf_functions[0];
	uint64_t vaddr;
	pid_t nobody, self = getpid();

	(void)state;
	assert_non_null(dir);
	assert_int_equal(chmod(dir, 0755), 0);
	assert_int_equal(nm_table_add(&nm, "", FIXTURE_DWARF), 0);
	vaddr = nm_must_find(&nm, fn)->addr;
	assert_true(asprintf(&bindir, "%s/bin", dir) > 0);
	assert_true(asprintf(&bin, "%s/bin/app", dir) > 0);
	assert_true(asprintf(&dbg, "%s/bin/fixture-dwarf.debug", dir) > 0);
	assert_true(asprintf(&secret, "%s/secret", dir) > 0);
	assert_int_equal(run("mkdir -m 755 %s/bin && cp %s %s && cp %s %s && chmod 755 %s && "
			     "chmod 644 %s",
			     dir, FIXTURE_DWARF_DEBUGLINK, bin, FIXTURE_DWARF_DEBUG, dbg, bin, dbg),
			 0);
	nobody = spawn_nobody();

	/* All readable: names and lines for both. */
	check_as(nobody, bin, vaddr, fn, true);
	check_as(self, bin, vaddr, fn, true);
	/* An ACL on the debug file's directory that lets everyone but nobody search it (its mode
	 * bits still say 755): no lines for nobody. */
	assert_int_equal(set_acl_deny(bindir, 65534), 0);
	check_as(nobody, bin, vaddr, fn, false);
	check_as(self, bin, vaddr, fn, true);
	assert_int_equal(removexattr(bindir, "system.posix_acl_access"), 0);
	check_as(nobody, bin, vaddr, fn, true);
	/* A root-only debug file: the binary's own symbols, no lines, for nobody. */
	assert_int_equal(chmod(dbg, 0600), 0);
	check_as(nobody, bin, vaddr, fn, false);
	check_as(self, bin, vaddr, fn, true);
	/* Readable itself, but behind a directory only root may search (through a symlink). */
	assert_int_equal(run("mkdir -m 700 %s && mv %s %s/ && chmod 644 %s/fixture-dwarf.debug && "
			     "ln -s %s/fixture-dwarf.debug %s",
			     secret, dbg, secret, secret, secret, dbg),
			 0);
	check_as(nobody, bin, vaddr, fn, false);
	check_as(self, bin, vaddr, fn, true);
	/* An execute-only binary: nothing for nobody. */
	assert_int_equal(chmod(bin, 0711), 0);
	check_as(nobody, bin, vaddr, NULL, false);
	check_as(self, bin, vaddr, fn, true);

	kill_wait(nobody);
	nm_table_done(&nm);
}

/*
 * A binary copied over in place (same inode): the next process to map it gets the new build's
 * symbols, not the cached ones of the old; the old Binary, still held for a process that
 * mapped the old file, reads nothing more from the file (it is the new one now).
 */
static void test_replaced_in_place(void **state)
{
	_cleanup_tmpdir_ char *dir = tmpdir_new_named("profq-replace");
	_cleanup_free_ char *bin = NULL;
	FrameId ids[SYMBOLIZER_MAX_INLINE];
	NmTable a = { 0 }, b = { 0 };
	const NmSym *fa, *fb;
	Store *store = NULL;
	Symbolizer *sym = NULL;
	Binary *old = NULL, *new = NULL;
	ProcMap ma, mb;
	struct stat st1, st2;
	const StoreFrame *f;
	int n;

	(void)state;
	assert_non_null(dir);
	assert_true(asprintf(&bin, "%s/app", dir) > 0);
	/* Two builds of one program: PIE and not. */
	assert_int_equal(nm_table_add(&a, "", FIXTURE_PROG), 0);
	assert_int_equal(nm_table_add(&b, "", FIXTURE_NOPIE), 0);
	fa = nm_must_find(&a, "fixture_static_helper");
	fb = nm_must_find(&b, "main");
	assert_int_equal(store_new(&store), 0);
	assert_int_equal(symbolizer_new(store, &sym), 0);

	assert_int_equal(run("cp %s %s", FIXTURE_PROG, bin), 0);
	assert_int_equal(stat(bin, &st1), 0);
	ma = map_of(bin);
	assert_int_equal(symbolizer_binary(sym, getpid(), &ma, &old), 0);
	n = symbolizer_user_frames(sym, old, &ma, LOAD_BIAS + fa->addr, false, ids, 1);
	assert_int_equal(n, 1);
	assert_string_equal(store_string(store, store_frame(store, ids[0])->function), fa->name);

	/* cp writes over the file: same inode. */
	assert_int_equal(run("cp %s %s", FIXTURE_NOPIE, bin), 0);
	assert_int_equal(stat(bin, &st2), 0);
	assert_int_equal(st1.st_ino, st2.st_ino);
	mb = map_of(bin);
	assert_int_equal(symbolizer_binary(sym, getpid(), &mb, &new), 0);
	assert_ptr_not_equal(new, old);
	n = symbolizer_user_frames(sym, new, &mb, LOAD_BIAS + fb->addr + 1, false, ids, 1);
	assert_int_equal(n, 1);
	f = store_frame(store, ids[0]);
	assert_string_equal(store_string(store, f->function), "main");

	/* The old Binary: its cached address still named, a new one not read from the new file. */
	n = symbolizer_user_frames(sym, old, &ma, LOAD_BIAS + fa->addr, false, ids, 1);
	assert_string_equal(store_string(store, store_frame(store, ids[0])->function), fa->name);
	n = symbolizer_user_frames(sym, old, &ma, LOAD_BIAS + fa->addr + 1, false, ids, 1);
	assert_int_equal(n, 1);
	assert_null(store_string(store, store_frame(store, ids[0])->function));

	binary_unref(sym, old);
	binary_unref(sym, new);
	symbolizer_free(sym);
	store_free(store);
	nm_table_done(&a);
	nm_table_done(&b);
}

/* ---- a big compile unit, indexed a slice at a time ---- */

/*
 * The daemon indexes a compile unit for a slice of CPU time at a time, so that one of a million
 * DIEs does not hold its loop: meanwhile lookups in it are named from the symbol table and
 * counted as provisional, and once symbolizer_work() has finished the unit every address has
 * the frames an index built in one go gives (the same store: the same frame ids).
 */
static void test_sliced_index(void **state)
{
	static const char *const names[] = { "f7", "f123", "f399", "big_entry" };
	FrameId ids[SYMBOLIZER_MAX_INLINE], want[SYMBOLIZER_MAX_INLINE];
	World whole, sliced;
	SymbolizerStats st;
	Store *store = NULL;
	NmTable nm = { 0 };
	const NmSym *f = NULL;
	uint64_t prov;
	unsigned slices = 0;
	size_t n;

	(void)state;
	assert_int_equal(nm_table_add(&nm, "", FIXTURE_DWARF_BIG), 0);
	assert_int_equal(store_new(&store), 0);
	world_open(&whole, store, FIXTURE_DWARF_BIG, NULL);
	/* As the daemon has it: in the symbolizer's table (work is done for the binaries there). */
	world_open(&sliced, store, FIXTURE_DWARF_BIG, NULL);
	binary_unref(sliced.sym, sliced.b);
	sliced.map = map_of(FIXTURE_DWARF_BIG);
	assert_int_equal(symbolizer_binary(sliced.sym, getpid(), &sliced.map, &sliced.b), 0);
	symbolizer_set_dwarf_slice(sliced.sym, 1);

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		f = nm_must_find(&nm, names[i]);
		prov = symbolizer_provisional(sliced.sym);
		n = frames_at(&sliced, f->addr, ids);
		assert_int_equal(n, 1);
		assert_string_equal(str(&sliced, frame(&sliced, ids[0])->function), names[i]);
		assert_int_equal(frame(&sliced, ids[0])->file, 0);
		assert_int_equal(symbolizer_provisional(sliced.sym), prov + 1);
		/* From the cache, still provisional. */
		n = frames_at(&sliced, f->addr, ids);
		assert_int_equal(symbolizer_provisional(sliced.sym), prov + 2);
	}
	assert_true(symbolizer_has_work(sliced.sym));
	while (symbolizer_work(sliced.sym)) {
		slices++;
		assert_true(slices < 1000000);
	}
	assert_false(symbolizer_has_work(sliced.sym));
	symbolizer_stats(sliced.sym, &st);
	/* A DIE count is checked against the deadline every 256: a few thousand DIEs take many
	 * slices. */
	assert_true(slices >= 4);
	assert_true(st.dwarf_slices >= slices);
	assert_int_equal(st.dwarf_pending, ARRAY_SIZE(names));

	prov = symbolizer_provisional(sliced.sym);
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		f = nm_must_find(&nm, names[i]);
		for (uint64_t a = f->addr; a < f->addr + f->size; a++) {
			size_t m = frames_at(&whole, a, want);

			n = frames_at(&sliced, a, ids);
			assert_int_equal(n, m);
			assert_memory_equal(ids, want, n * sizeof(FrameId));
		}
	}
	/* The unit has inlined calls and lines: the comparison was not of symbol-table names. */
	n = frames_at(&sliced, nm_must_find(&nm, "f123")->addr + 8, ids);
	assert_true(n >= 1 && frame(&sliced, ids[0])->file != 0);
	assert_int_equal(symbolizer_provisional(sliced.sym), prov);

	world_close(&whole);
	world_close(&sliced);
	store_free(store);
	nm_table_done(&nm);
}

/* ---- DWARF through the worker process ---- */

/* The frames of the big fixture's functions at every address, from a world of the same store
 * with DWARF read here (the same ids for the same frames). */
static void same_frames(World *w, const NmTable *nm)
{
	static const char *const names[] = { "f7", "f123", "f399", "big_entry" };
	const DwarfWorkerOptions *saved = use_worker;
	FrameId ids[SYMBOLIZER_MAX_INLINE], want[SYMBOLIZER_MAX_INLINE];
	World here;

	use_worker = NULL;
	world_open(&here, w->store, FIXTURE_DWARF_BIG, NULL);
	use_worker = saved;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		const NmSym *f = nm_must_find(nm, names[i]);

		for (uint64_t a = f->addr; a < f->addr + f->size; a++) {
			size_t m = frames_at(&here, a, want), n = frames_at(w, a, ids);

			assert_int_equal(n, m);
			assert_memory_equal(ids, want, n * sizeof(FrameId));
		}
	}
	/* Inlined calls and lines: not a comparison of symbol-table names. */
	assert_true(frames_at(w, nm_must_find(nm, "f123")->addr + 8, ids) >= 1);
	assert_true(frame(w, ids[0])->file != 0);
	world_close(&here);
}

/*
 * Every address of the big fixture's functions gets, through the worker, the frames an index
 * built here gives; libdw ran in the worker (its openings are counted from its answers), which
 * answered every request.
 */
static void test_worker_same_frames(void **state)
{
	World w;
	SymbolizerStats st;
	Store *store = NULL;
	NmTable nm = { 0 };

	(void)state;
	assert_int_equal(nm_table_add(&nm, "", FIXTURE_DWARF_BIG), 0);
	assert_int_equal(store_new(&store), 0);
	world_open(&w, store, FIXTURE_DWARF_BIG, NULL);
	same_frames(&w, &nm);
	symbolizer_stats(w.sym, &st);
	assert_true(st.dwarf_worker.requests >= 2); /* the opening, and a CU */
	assert_int_equal(st.dwarf_worker.children, 1);
	assert_int_equal(st.dwarf_worker.died + st.dwarf_worker.timeouts, 0);
	assert_int_equal(st.dwarf_worker.refused, 0);
	assert_true(st.dwarf_opens >= 1);
	assert_int_equal(st.dwarf_binaries, 1);
	world_close(&w);
	store_free(store);
	nm_table_done(&nm);
}

/* A world of the big fixture whose lookups do not wait for the worker (as on a daemon whose
 * waiting time for the tick is spent), its binary in the symbolizer's table as the daemon has
 * it (ticks drop the frames named without DWARF of the binaries there). */
static void world_open_nowait(World *w, Store *store)
{
	static const DwarfWorkerOptions nowait = { .timeout_ns = 60 * NSEC_PER_SEC,
						   .max_data = 1024ull << 20 };
	const DwarfWorkerOptions *saved = use_worker;

	use_worker = &nowait;
	world_open(w, store, FIXTURE_DWARF_BIG, NULL);
	use_worker = saved;
	binary_unref(w->sym, w->b);
	w->map = map_of(FIXTURE_DWARF_BIG);
	assert_int_equal(symbolizer_binary(w->sym, getpid(), &w->map, &w->b), 0);
}

/* The big fixture's symbols in *nm, and a world whose lookups do not wait for the worker. */
static void big_world_nowait(World *w, Store **store, NmTable *nm)
{
	assert_int_equal(nm_table_add(nm, "", FIXTURE_DWARF_BIG), 0);
	assert_int_equal(store_new(store), 0);
	world_open_nowait(w, *store);
}

/*
 * Lookups that do not wait for the worker: named from the symbol table and counted provisional
 * until the answer is in, then the same frames as in-process.
 */
static void test_worker_async(void **state)
{
	const struct timespec ms = { .tv_nsec = NSEC_PER_MSEC };
	FrameId ids[SYMBOLIZER_MAX_INLINE];
	Store *store = NULL;
	NmTable nm = { 0 };
	uint64_t prov;
	World w;
	size_t n;

	(void)state;
	big_world_nowait(&w, &store, &nm);
	prov = symbolizer_provisional(w.sym);
	n = frames_at(&w, nm_must_find(&nm, "f123")->addr, ids);
	assert_int_equal(n, 1);
	assert_string_equal(str(&w, frame(&w, ids[0])->function), "f123");
	assert_int_equal(frame(&w, ids[0])->file, 0);
	assert_int_equal(symbolizer_provisional(w.sym), prov + 1);
	/* Ticks take the answers; each lookup that finds no CU asks again. */
	for (unsigned i = 0; i < 60000; i++) {
		prov = symbolizer_provisional(w.sym);
		symbolizer_tick(w.sym);
		(void)frames_at(&w, nm_must_find(&nm, "f123")->addr, ids);
		if (symbolizer_provisional(w.sym) == prov)
			break;
		nanosleep(&ms, NULL);
	}
	assert_int_equal(symbolizer_provisional(w.sym), prov);
	assert_true(frame(&w, ids[0])->file != 0);
	/* Every other CU's first lookup is provisional too: ask for all, then compare. */
	for (unsigned i = 0; i < 60000; i++) {
		static const char *const names[] = { "f7", "f399", "big_entry" };

		prov = symbolizer_provisional(w.sym);
		symbolizer_tick(w.sym);
		for (size_t k = 0; k < ARRAY_SIZE(names); k++)
			(void)frames_at(&w, nm_must_find(&nm, names[k])->addr, ids);
		if (symbolizer_provisional(w.sym) == prov)
			break;
		nanosleep(&ms, NULL);
	}
	same_frames(&w, &nm);
	world_close(&w);
	store_free(store);
	nm_table_done(&nm);
}

/*
 * A worker's answer taken by a lookup in another binary, as while one stack is named, ends the
 * first binary's wait: the frames borrowed before from its cache must stay what they were
 * until the stack is interned (its cache is dropped at the next tick, between samples). Before,
 * the next lookup in it dropped the cache and freed them: profqd crashed writing a window.
 */
static void test_worker_answer_mid_stack(void **state)
{
	const struct timespec wait = { .tv_nsec = 300 * NSEC_PER_MSEC };
	FrameId first[SYMBOLIZER_MAX_INLINE], ids[SYMBOLIZER_MAX_INLINE];
	Store *store = NULL;
	NmTable nm = { 0 };
	ProcMap other_map;
	Binary *other = NULL;
	FrameId kept;
	World w;

	(void)state;
	big_world_nowait(&w, &store, &nm);
	/* Its opening not answered yet: named from the symbol table, borrowed from its cache. */
	assert_int_equal(frames_at(&w, nm_must_find(&nm, "f123")->addr, first), 1);
	kept = first[0];
	assert_string_equal(str(&w, frame(&w, kept)->function), "f123");
	/* The answer is in the socket; opening another binary asks the worker, and takes it. */
	nanosleep(&wait, NULL);
	other_map = map_of(FIXTURE_DWARF);
	assert_int_equal(symbolizer_binary(w.sym, getpid(), &other_map, &other), 0);
	/* The first binary again, in the same stack: the frame borrowed before is still it. */
	(void)frames_at(&w, nm_must_find(&nm, "f7")->addr, ids);
	assert_non_null(store_frame(store, kept));
	assert_string_equal(str(&w, frame(&w, kept)->function), "f123");

	binary_unref(w.sym, other);
	world_close(&w);
	store_free(store);
	nm_table_done(&nm);
}

/* The pids of this process's children (of all its threads), up to max. */
static size_t children_of_self(pid_t *out, size_t max)
{
	_cleanup_free_ char *buf = NULL;
	char path[64];
	size_t n = 0;

	snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)getpid());
	if (procfs_read_file(path, 4096, &buf, NULL) < 0)
		return 0;
	for (char *p = buf, *end; n < max && *p; p = end) {
		long pid = strtol(p, &end, 10);

		if (end == p)
			break;
		out[n++] = (pid_t)pid;
	}
	return n;
}

/*
 * A file truncated under the worker's libdw faults there: that binary's DWARF goes, nothing else.
 * A worker killed from outside costs the request it had; the next starts another.
 */
static void test_worker_truncated(void **state)
{
	_cleanup_tmpdir_ char *dir = tmpdir_new_named("profq-worker");
	_cleanup_free_ char *path = NULL;
	DwarfFrame frames[SYMBOLIZER_MAX_INLINE];
	DwarfCounters counters = { 0 };
	DwarfWorkerStats st;
	DwarfWorker *w = NULL;
	DwarfInfo *d = NULL, *d2 = NULL;
	NmTable nm = { 0 };
	pid_t kids[8];
	size_t n_kids;
	int fd, fd2, n;

	(void)state;
	assert_non_null(dir);
	assert_true(asprintf(&path, "%s/fixture-dwarf", dir) > 0);
	assert_int_equal(run("cp %s %s", FIXTURE_DWARF, path), 0);
	assert_int_equal(nm_table_add(&nm, "", FIXTURE_DWARF), 0);
	assert_int_equal(dwarf_worker_new(&worker_options, &counters, &w), 0);
	counters.worker = w;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(dwarf_info_open(fd, path, NULL, &counters, &d), 0);
	assert_int_equal(dwarf_info_opened(d), 0);
	assert_int_equal(truncate(path, 0), 0);
	n = dwarf_info_lookup(d, nm_must_find(&nm, dwarf_functions[0])->addr, frames,
			      ARRAY_SIZE(frames));
	assert_int_equal(n, 0);
	assert_int_equal(counters.faults, 1);
	assert_false(dwarf_info_building(d));
	n = dwarf_info_lookup(d, nm_must_find(&nm, dwarf_functions[1])->addr, frames,
			      ARRAY_SIZE(frames));
	assert_int_equal(n, 0);

	/* The worker killed from outside, between requests. */
	n_kids = children_of_self(kids, ARRAY_SIZE(kids));
	assert_int_equal(n_kids, 1);
	assert_int_equal(kill(kids[0], SIGKILL), 0);
	fd2 = open(FIXTURE_DWARF, O_RDONLY | O_CLOEXEC);
	assert_true(fd2 >= 0);
	assert_int_equal(dwarf_info_open(fd2, FIXTURE_DWARF, NULL, &counters, &d2), 0);
	assert_int_equal(dwarf_info_opened(d2), 0);
	n = dwarf_info_lookup(d2, nm_must_find(&nm, dwarf_functions[0])->addr, frames,
			      ARRAY_SIZE(frames));
	assert_true(n >= 1);
	assert_non_null(frames[n - 1].function);
	dwarf_worker_stats(w, &st);
	assert_int_equal(st.children, 2);
	assert_int_equal(st.refused, 0);

	dwarf_info_free(d);
	dwarf_info_free(d2);
	dwarf_worker_free(w);
	close(fd);
	close(fd2);
	nm_table_done(&nm);
}

/* The symbolizer's answers: in process, then through the worker process. */
#define SYMBOLIZER_TESTS                                                                       \
	cmocka_unit_test(test_inline_frames), cmocka_unit_test(test_leaf_lines),               \
		cmocka_unit_test(test_cxx_templates), cmocka_unit_test(test_debuglink),        \
		cmocka_unit_test(test_build_id_debug_dir), cmocka_unit_test(test_dynsym_only), \
		cmocka_unit_test(test_relative_file_names),                                    \
		cmocka_unit_test(test_lines_without_function_die),                             \
		cmocka_unit_test(test_debuglink_hostile), cmocka_unit_test(test_owner_access), \
		cmocka_unit_test(test_replaced_in_place)

int main(int argc, char **argv)
{
	if (argc == 3 && streq(argv[1], "--cu-fault"))
		return cu_fault_child(argv[2]);
	if (argc == 3 && streq(argv[1], "--cu-fault-sliced"))
		return cu_fault_sliced_child(argv[2]);
	const struct CMUnitTest tests[] = {
		SYMBOLIZER_TESTS,
		cmocka_unit_test(test_compressed_bomb),
		cmocka_unit_test(test_truncated_under_libdw),
		cmocka_unit_test(test_fault_in_cu_walk),
		cmocka_unit_test(test_fault_between_slices),
		cmocka_unit_test(test_sliced_index),
	};
	const struct CMUnitTest worker_tests[] = {
		SYMBOLIZER_TESTS,
		cmocka_unit_test(test_worker_same_frames),
		cmocka_unit_test(test_worker_async),
		cmocka_unit_test(test_worker_answer_mid_stack),
		cmocka_unit_test(test_worker_truncated),
	};
	int failed = cmocka_run_group_tests_name("in-process", tests, NULL, NULL);

	use_worker = &worker_options;
	return failed + cmocka_run_group_tests_name("worker", worker_tests, NULL, NULL);
}
