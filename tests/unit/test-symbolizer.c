/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/mman.h>
#include <time.h>
#include <cmocka.h>

#include "base/macro.h"
#include "base/procfs.h"
#include "fixtures/fixture-symbols.h"
#include "symbolize/elfsym.h"
#include "symbolize/symbolizer.h"

/*
 * CLOCK_MONOTONIC as the symbolizer sees it (linked with --wrap=clock_gettime): the kallsyms
 * reload test moves it forward instead of sleeping a minute.
 */
int __real_clock_gettime(clockid_t id, struct timespec *ts);
int __wrap_clock_gettime(clockid_t id, struct timespec *ts);
static uint64_t mono_skew_s;
/* Each read of the thread CPU clock is this much later than the one before, on top of the
 * real clock: anything timed with it seems to cost at least that. */
static uint64_t cpu_step_ms, cpu_steps;

int __wrap_clock_gettime(clockid_t id, struct timespec *ts)
{
	int r = __real_clock_gettime(id, ts);

	if (r == 0 && id == CLOCK_MONOTONIC)
		ts->tv_sec += (time_t)mono_skew_s;
	if (r == 0 && id == CLOCK_THREAD_CPUTIME_ID && cpu_step_ms) {
		uint64_t ns = (uint64_t)ts->tv_nsec + ++cpu_steps * cpu_step_ms * 1000000ull;

		ts->tv_sec += (time_t)(ns / 1000000000ull);
		ts->tv_nsec = (long)(ns % 1000000000ull);
	}
	return r;
}

/* Where the fixture is "loaded" in the fake process. */
#define LOAD_BIAS 0x555555554000ULL

typedef struct World {
	Store *store;
	Symbolizer *sym;
	NmTable nm;
	ProcMap map; /* the fixture's executable segment at LOAD_BIAS */
} World;

/* The fixture at path (whose symbols nm reads from nm_path: the stripped copy has none). */
static void world_init_nm(World *w, const char *path, const char *nm_path)
{
	ExecSegment seg;
	uint64_t page_off;

	*w = (World){ 0 };
	assert_int_equal(store_new(&w->store), 0);
	assert_int_equal(symbolizer_new(w->store, &w->sym), 0);
	assert_int_equal(nm_table_add(&w->nm, "", nm_path), 0);
	assert_int_equal(readelf_exec_segments(path, &seg, 1), 1);
	/* A mapping as the kernel makes it: page-aligned start and file offset. */
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

static void world_init(World *w, const char *path)
{
	world_init_nm(w, path, streq(path, FIXTURE_STRIPPED) ? FIXTURE_PROG : path);
}

static void world_done(World *w)
{
	symbolizer_free(w->sym);
	store_free(w->store);
	nm_table_done(&w->nm);
}

static uint64_t fn_addr(const World *w, const char *name)
{
	const NmSym *s = nm_find(&w->nm, name);

	if (!s)
		fail_msg("nm does not list %s", name);
	return s->addr;
}

/* Symbolizes one user address (module-relative vaddr) of the fixture. */
static FrameId user_frame(World *w, Binary *b, uint64_t vaddr, bool return_address)
{
	FrameId out[SYMBOLIZER_MAX_INLINE];
	int n;

	n = symbolizer_user_frames(w->sym, b, &w->map, LOAD_BIAS + vaddr, return_address, out,
				   ARRAY_SIZE(out));
	assert_int_equal(n, 1);
	assert_non_null(store_frame(w->store, out[0]));
	return out[0];
}

static const char *frame_function(const World *w, FrameId id)
{
	const StoreFrame *f = store_frame(w->store, id);

	assert_non_null(f);
	return store_string(w->store, f->function);
}

static const char *frame_module(const World *w, FrameId id)
{
	return store_string(w->store, store_frame(w->store, id)->module);
}

/* Symbolizes the named functions (NULL-terminated) and every function nm lists in path. */
static void check_user_frames(const char *path, const char *module, const char *const *names)
{
	SymbolizerStats st;
	size_t n_names = 0;
	Binary *b = NULL;
	World w;

	world_init(&w, path);
	assert_int_equal(symbolizer_binary_from_path(w.sym, path, &b), 0);
	assert_non_null(b);
	assert_int_equal(binary_error(b), 0);
	assert_string_equal(binary_name(w.sym, b), module);

	for (size_t i = 0; names[i]; i++, n_names++) {
		uint64_t a = fn_addr(&w, names[i]);
		FrameId id = user_frame(&w, b, a + 1, false);
		const StoreFrame *f = store_frame(w.store, id);

		assert_string_equal(frame_function(&w, id), names[i]);
		assert_string_equal(frame_module(&w, id), module);
		assert_true(f->address == a + 1); /* module-relative */
		assert_int_equal(f->flags, 0);
	}
	/* Every function nm knows, at its first byte. */
	for (size_t i = 0; i < w.nm.n; i++) {
		const NmSym *s = &w.nm.syms[i];
		FrameId id;

		if (s->addr < w.map.start - LOAD_BIAS || s->addr >= w.map.end - LOAD_BIAS)
			continue; /* outside the executable segment (never sampled) */
		id = user_frame(&w, b, s->addr, false);
		if (!frame_function(&w, id) || !nm_name_at(&w.nm, s->addr, frame_function(&w, id)))
			fail_msg("%s resolved as %s", s->name, frame_function(&w, id));
	}
	symbolizer_stats(w.sym, &st);
	assert_true(st.unresolved == 0);
	assert_true(st.lookups >= n_names);
	binary_unref(w.sym, b);
	world_done(&w);
}

static void test_user_frames(void **state)
{
	static const char *const prog[] = { "fixture_alpha", "fixture_beta",
					    "fixture_gamma", "fixture_static_helper",
					    "main",	     NULL };
	static const char *const lib[] = { "fixture_lib_work", "fixture_lib_other",
					   "fixture_lib_local", NULL };

	(void)state;
	check_user_frames(FIXTURE_PROG, "fixture-prog", prog);
	/* Linked at a fixed address: the file offset is not the virtual address. */
	check_user_frames(FIXTURE_NOPIE, "fixture-prog-nopie", prog);
	/* The shared library, with its exported and its local functions. */
	check_user_frames(FIXTURE_LIB, "libprofq-fixture.so", lib);
}

/* A return address is looked up at pc - 1: the call may be the caller's last instruction. */
static void test_return_address(void **state)
{
	const NmSym *a = NULL, *next = NULL;
	Binary *b = NULL;
	World w;

	(void)state;
	world_init(&w, FIXTURE_PROG);
	assert_int_equal(symbolizer_binary_from_path(w.sym, FIXTURE_PROG, &b), 0);
	/* Two sized functions that abut (the fixture is built with -falign-functions=1). */
	for (size_t i = 0; i < w.nm.n && !next; i++)
		for (size_t j = 0; j < w.nm.n; j++)
			if (w.nm.syms[i].size > 0 &&
			    w.nm.syms[j].addr == w.nm.syms[i].addr + w.nm.syms[i].size &&
			    !nm_starts_within(&w.nm, w.nm.syms[i].addr, w.nm.syms[j].addr - 1) &&
			    w.nm.syms[j].addr < w.map.end - LOAD_BIAS) {
				a = &w.nm.syms[i];
				next = &w.nm.syms[j];
				break;
			}
	if (!next)
		fail_msg("no two abutting functions in the fixture");
	assert_true(nm_name_at(&w.nm, next->addr,
			       frame_function(&w, user_frame(&w, b, next->addr, false))));
	assert_true(nm_name_at(&w.nm, a->addr,
			       frame_function(&w, user_frame(&w, b, next->addr, true))));
	assert_true(store_frame(w.store, user_frame(&w, b, next->addr, true))->address ==
		    next->addr - 1);
	binary_unref(w.sym, b);
	world_done(&w);
}

static void test_unresolved_and_cache(void **state)
{
	_cleanup_(elfsym_freep) ElfSym *e = NULL;
	SymbolizerStats before, after;
	uint64_t helper, alpha;
	Binary *b = NULL, *missing = NULL;
	FrameId f1, f2, out[4];
	const char *name;
	World w;
	int fd;

	(void)state;
	world_init(&w, FIXTURE_STRIPPED);
	symbolizer_set_cfi(w.sym, true); /* as profqd does when it unwinds (the default) */
	helper = fn_addr(&w, "fixture_static_helper");
	alpha = fn_addr(&w, "fixture_alpha");
	assert_int_equal(symbolizer_binary_from_path(w.sym, FIXTURE_STRIPPED, &b), 0);
	assert_string_equal(binary_name(w.sym, b), "fixture-prog.stripped");
	/* The static function is not in .dynsym. */
	fd = open(FIXTURE_STRIPPED, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(elfsym_load_fd(fd, &e), 0);
	close(fd);
	assert_int_equal(elfsym_lookup(e, helper, &name, NULL), -ENOENT);

	symbolizer_stats(w.sym, &before);
	f1 = user_frame(&w, b, helper + 2, false);
	assert_null(frame_function(&w, f1));
	assert_string_equal(frame_module(&w, f1), "fixture-prog.stripped");
	/* Named by the start of its function, which .eh_frame bounds: another address in the
	 * same function is the same frame. */
	assert_true(store_frame(w.store, f1)->address == helper);
	symbolizer_stats(w.sym, &after);
	assert_int_equal(after.unresolved, before.unresolved + 1);
	assert_int_equal(after.lookups, before.lookups + 1);
	assert_int_equal(after.cache_hits, before.cache_hits);
	assert_int_equal(user_frame(&w, b, helper + 1, false), f1);
	symbolizer_stats(w.sym, &before);

	/* The same address again: from the cache, the same frame. */
	f2 = user_frame(&w, b, helper + 2, false);
	assert_int_equal(f2, f1);
	symbolizer_stats(w.sym, &after);
	assert_int_equal(after.cache_hits, before.cache_hits + 1);
	assert_int_equal(after.unresolved, before.unresolved);
	/* Exported functions still resolve from .dynsym. */
	assert_string_equal(frame_function(&w, user_frame(&w, b, alpha, false)), "fixture_alpha");

	/* Anonymous memory (no binary) and addresses outside every mapping. */
	assert_int_equal(symbolizer_user_frames(w.sym, NULL, NULL, 0x7f0000001234ULL, false, out,
						ARRAY_SIZE(out)),
			 1);
	assert_null(frame_function(&w, out[0]));
	assert_string_equal(frame_module(&w, out[0]), "[anon]");
	assert_true(store_frame(w.store, out[0])->address == 0x7f0000001234ULL);
	assert_int_equal(symbolizer_user_frames(w.sym, NULL, NULL, 0x7f0000001234ULL, true, out,
						ARRAY_SIZE(out)),
			 1);
	assert_true(store_frame(w.store, out[0])->address == 0x7f0000001233ULL);
	assert_int_equal(symbolizer_unknown_frame(w.sym, 0x1234, &out[0]), 1);
	assert_string_equal(frame_module(&w, out[0]), "[unknown]");
	assert_true(store_frame(w.store, out[0])->address == 0x1234);
	assert_int_equal(symbolizer_user_frames(w.sym, b, &w.map, LOAD_BIAS + alpha, false, out, 0),
			 -ENOBUFS);

	/* A file that cannot be read still gives a Binary: frames show module+offset. */
	assert_int_equal(symbolizer_binary_from_path(w.sym, "/nonexistent/libgone.so", &missing),
			 0);
	assert_int_equal(binary_error(missing), -ENOENT);
	assert_string_equal(binary_name(w.sym, missing), "libgone.so");
	f1 = user_frame(&w, missing, 0x1234, false);
	assert_null(frame_function(&w, f1));
	assert_string_equal(frame_module(&w, f1), "libgone.so");
	binary_unref(w.sym, missing);
	binary_unref(w.sym, b);
	world_done(&w);
}

/* Binaries of real mappings are cached per file, shared between processes. */
static void test_binary_cache(void **state)
{
	ProcMap *maps = NULL, *mine = NULL;
	uint64_t here = (uint64_t)(uintptr_t)&test_binary_cache;
	Binary *b1 = NULL, *b2 = NULL;
	SymbolizerStats st;
	FrameId out[4];
	size_t n = 0;
	World w;

	(void)state;
	world_init(&w, FIXTURE_PROG);
	assert_int_equal(procfs_read_maps(getpid(), &maps, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (here >= maps[i].start && here < maps[i].end)
			mine = &maps[i];
	assert_non_null(mine);
	assert_int_equal(symbolizer_binary(w.sym, getpid(), mine, &b1), 0);
	assert_int_equal(symbolizer_binary(w.sym, getpid(), mine, &b2), 0);
	assert_ptr_equal(b1, b2);
	assert_int_equal(binary_error(b1), 0);
	assert_string_equal(binary_name(w.sym, b1), "test-symbolizer");
	symbolizer_stats(w.sym, &st);
	assert_int_equal(st.binaries, 1);
	/* Our own function, by its real address. */
	assert_int_equal(symbolizer_user_frames(w.sym, b1, mine, here + 1, false, out, 4), 1);
	assert_string_equal(frame_function(&w, out[0]), "test_binary_cache");
	/* Anonymous mappings have no binary. */
	assert_int_equal(symbolizer_binary(w.sym, getpid(), &(ProcMap){ .start = 1, .end = 2 },
					   &b2),
			 -ENOENT);
	binary_unref(w.sym, b1);
	binary_unref(w.sym, b1);
	procfs_maps_free(maps, n);
	world_done(&w);
}

/* The mapping of maps holding pc, NULL if none. */
static ProcMap *mapping_of_pc(ProcMap *maps, size_t n, uint64_t pc)
{
	for (size_t i = 0; i < n; i++)
		if (pc >= maps[i].start && pc < maps[i].end)
			return &maps[i];
	return NULL;
}

__attribute__((noinline)) static int trim_held_fn(int x)
{
	return x * 3 + 1;
}

__attribute__((noinline)) static int trim_loose_fn(int x)
{
	return x * 5 + 2;
}

/*
 * Trimming over budget drops the caches of the mapped binaries: frames held elsewhere in the
 * store (here by a stack) stay, the others go. The binary is this test's own, as the process
 * table would get it from /proc/PID/maps.
 */
static void test_trim(void **state)
{
	uint64_t held_pc = (uint64_t)(uintptr_t)&trim_held_fn + 1;
	uint64_t loose_pc = (uint64_t)(uintptr_t)&trim_loose_fn + 1;
	ProcMap *maps = NULL, *mine = NULL;
	SymbolizerStats st;
	FrameId held, loose, again;
	Binary *b = NULL;
	StackId stack;
	size_t n = 0;
	World w;

	(void)state;
	assert_int_equal(trim_held_fn(1) + trim_loose_fn(1), 11);
	world_init(&w, FIXTURE_PROG);
	assert_int_equal(procfs_read_maps(getpid(), &maps, &n), 0);
	mine = mapping_of_pc(maps, n, held_pc);
	assert_non_null(mine);
	assert_true(loose_pc >= mine->start && loose_pc < mine->end);
	assert_int_equal(symbolizer_binary(w.sym, getpid(), mine, &b), 0);
	assert_int_equal(symbolizer_user_frames(w.sym, b, mine, held_pc, false, &held, 1), 1);
	assert_int_equal(symbolizer_user_frames(w.sym, b, mine, loose_pc, false, &loose, 1), 1);
	assert_string_equal(frame_function(&w, held), "trim_held_fn");
	assert_string_equal(frame_function(&w, loose), "trim_loose_fn");
	assert_int_equal(store_intern_stack(w.store, &held, 1, &stack), 0);
	assert_true(symbolizer_memory(w.sym) > 0);

	/* Within the budget, trim keeps the caches. */
	symbolizer_trim(w.sym);
	symbolizer_stats(w.sym, &st);
	assert_int_equal(st.cache_flushes, 0);
	assert_non_null(store_frame(w.store, loose));

	symbolizer_set_cache_budget(w.sym, 1);
	symbolizer_trim(w.sym);
	symbolizer_stats(w.sym, &st);
	assert_int_equal(st.cache_flushes, 1);
	assert_string_equal(frame_function(&w, held), "trim_held_fn");
	assert_null(store_frame(w.store, loose));
	/* The next lookup misses the cache and finds the same function again. */
	assert_int_equal(st.cache_hits, 0);
	assert_int_equal(symbolizer_user_frames(w.sym, b, mine, held_pc, false, &again, 1), 1);
	assert_int_equal(again, held); /* interned: the store still has it */
	symbolizer_stats(w.sym, &st);
	assert_int_equal(st.cache_hits, 0);
	assert_int_equal(symbolizer_user_frames(w.sym, b, mine, loose_pc, false, &again, 1), 1);
	assert_string_equal(frame_function(&w, again), "trim_loose_fn");

	store_stack_unref(w.store, stack);
	binary_unref(w.sym, b);
	procfs_maps_free(maps, n);
	world_done(&w);
}

static const char kallsyms_text[] = "ffffffff81000000 T _stext\n"
				    "ffffffff81000100 T do_syscall_64\n"
				    "ffffffff81000200 t schedule\n"
				    "ffffffff81000300 D data\n"
				    "ffffffff81000400 T last\n"
				    "ffffffffc0001000 t mod_fn\t[e1000e]\n"
				    "ffffffffc0002000 t mod_end\t[e1000e]\n";

static void write_kallsyms(char *path)
{
	_cleanup_close_ int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, kallsyms_text, sizeof(kallsyms_text) - 1),
			 (ssize_t)(sizeof(kallsyms_text) - 1));
}

static FrameId kernel_frame(World *w, uint64_t addr, bool return_address)
{
	FrameId out[4];

	assert_int_equal(symbolizer_kernel_frames(w->sym, addr, return_address, out, 4), 1);
	assert_true(store_frame(w->store, out[0])->flags & FRAME_KERNEL);
	return out[0];
}

/*
 * The vDSO: the symbolizer reads its own (the same image in every 64-bit process). Oracle: nm
 * -D on a copy of this process's vDSO. Every function it lists resolves to its name or an
 * alias at its address (__vdso_clock_gettime and clock_gettime), module [vdso].
 */
static void test_vdso(void **state)
{
	char path[] = "/tmp/profq-test-vdso-XXXXXX";
	_cleanup_free_ ProcMap *maps = NULL;
	const ProcMap *vdso = NULL;
	size_t n = 0, checked = 0;
	NmTable nm = { 0 };
	Binary *b = NULL;
	Store *store = NULL;
	Symbolizer *sym = NULL;
	int fd;

	(void)state;
	assert_int_equal(procfs_read_maps(getpid(), &maps, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (maps[i].path && streq(maps[i].path, "[vdso]"))
			vdso = &maps[i];
	if (!vdso) {
		procfs_maps_free(TAKE_PTR(maps), n);
		skip(); /* a kernel without one */
	}
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, (const void *)vdso->start, vdso->end - vdso->start),
			 (ssize_t)(vdso->end - vdso->start));
	close(fd);
	assert_int_equal(nm_table_add(&nm, "-D", path), 0);
	unlink(path);
	/* nm -D adds the symbol version ("@@LINUX_2.6"): not part of the name. */
	for (size_t i = 0; i < nm.n; i++)
		nm.syms[i].name[strcspn(nm.syms[i].name, "@")] = '\0';

	assert_int_equal(store_new(&store), 0);
	assert_int_equal(symbolizer_new(store, &sym), 0);
	assert_int_equal(symbolizer_binary(sym, getpid(), vdso, &b), 0);
	assert_int_equal(binary_error(b), 0);
	assert_string_equal(binary_name(sym, b), "[vdso]");
	for (size_t i = 0; i < nm.n; i++) {
		FrameId id;
		const StoreFrame *f;
		const char *fn;

		if (nm.syms[i].size == 0)
			continue;
		assert_int_equal(symbolizer_user_frames(sym, b, vdso, vdso->start + nm.syms[i].addr,
							false, &id, 1),
				 1);
		f = store_frame(store, id);
		fn = store_string(store, f->function);
		if (!fn || !nm_name_at(&nm, nm.syms[i].addr, fn))
			fail_msg("vDSO %s at 0x%" PRIx64 " resolved to %s", nm.syms[i].name,
				 nm.syms[i].addr, fn);
		assert_string_equal(store_string(store, f->module), "[vdso]");
		checked++;
	}
	assert_true(nm_find(&nm, "__vdso_clock_gettime") || nm_find(&nm, "__kernel_clock_gettime"));
	assert_true(checked >= 3);
	binary_unref(sym, b);
	symbolizer_free(sym);
	store_free(store);
	nm_table_done(&nm);
	procfs_maps_free(TAKE_PTR(maps), n);
}

static void test_kernel_frames(void **state)
{
	char path[] = "/tmp/profq-test-symbolizer-XXXXXX";
	SymbolizerStats st;
	FrameId f;
	World w;

	(void)state;
	write_kallsyms(path);
	world_init(&w, FIXTURE_PROG);
	assert_int_equal(symbolizer_set_kallsyms_path(w.sym, path), 0);

	f = kernel_frame(&w, 0xffffffff81000150ULL, false);
	assert_string_equal(frame_function(&w, f), "do_syscall_64");
	assert_string_equal(frame_module(&w, f), "[kernel.kallsyms]");
	assert_true(store_frame(w.store, f)->address == 0xffffffff81000150ULL);
	symbolizer_stats(w.sym, &st);
	assert_int_equal(st.kernel_symbols, 6);
	/* Return addresses at pc - 1: the start of schedule is still do_syscall_64's call. */
	assert_string_equal(frame_function(&w, kernel_frame(&w, 0xffffffff81000200ULL, false)),
			    "schedule");
	assert_string_equal(frame_function(&w, kernel_frame(&w, 0xffffffff81000200ULL, true)),
			    "do_syscall_64");
	f = kernel_frame(&w, 0xffffffffc0001010ULL, false);
	assert_string_equal(frame_function(&w, f), "mod_fn");
	assert_string_equal(frame_module(&w, f), "[e1000e]");
	/* Below the kernel: unresolved, shown by module (the address hidden to non-root). */
	f = kernel_frame(&w, 0xffffffff80000000ULL, false);
	assert_null(frame_function(&w, f));
	assert_string_equal(frame_module(&w, f), "[kernel.kallsyms]");
	symbolizer_stats(w.sym, &st);
	assert_int_equal(st.unresolved, 1);
	/* Cached. */
	assert_int_equal(kernel_frame(&w, 0xffffffff81000150ULL, false),
			 kernel_frame(&w, 0xffffffff81000150ULL, false));
	symbolizer_stats(w.sym, &st);
	assert_true(st.cache_hits >= 2);

	/* Marker frames are held by the symbolizer and shared. */
	assert_int_equal(symbolizer_marker_frame(w.sym, "[truncated]", FRAME_TRUNCATED, &f), 0);
	assert_string_equal(frame_function(&w, f), "[truncated]");
	assert_int_equal(store_frame(w.store, f)->flags, FRAME_TRUNCATED);
	{
		FrameId g;

		assert_int_equal(symbolizer_marker_frame(w.sym, "[truncated]", FRAME_TRUNCATED, &g),
				 0);
		assert_int_equal(g, f);
	}
	unlink(path);
	world_done(&w);
}

/*
 * A kernel stack is symbolized frame by frame into an array of borrowed frames, then interned.
 * A reload of kallsyms (for an unknown address, at most once a minute) must not free the frames
 * handed out before it: they are valid until the next symbolizer_trim().
 */
static void test_kernel_reload_keeps_frames(void **state)
{
	char path[] = "/tmp/profq-test-symbolizer-XXXXXX";
	FrameId first, second;
	World w;

	(void)state;
	write_kallsyms(path);
	world_init(&w, FIXTURE_PROG);
	assert_int_equal(symbolizer_set_kallsyms_path(w.sym, path), 0);
	first = kernel_frame(&w, 0xffffffff81000210ULL, false);
	assert_string_equal(frame_function(&w, first), "schedule");

	mono_skew_s = 120; /* two minutes later: the next unknown address reloads kallsyms */
	second = kernel_frame(&w, 0xffffffff70000000ULL, true);
	mono_skew_s = 0;
	assert_null(frame_function(&w, second));
	assert_int_not_equal(first, second);
	/* The first frame is still what it was. */
	assert_non_null(store_frame(w.store, first));
	assert_string_equal(frame_function(&w, first), "schedule");
	assert_true(store_frame(w.store, first)->address == 0xffffffff81000210ULL);
	/* And the stack the caller builds from both is right. */
	{
		FrameId frames[2] = { first, second };
		StackId st;

		assert_int_equal(store_intern_stack(w.store, frames, 2, &st), 0);
		symbolizer_set_cache_budget(w.sym, 0);
		symbolizer_trim(w.sym);
		assert_string_equal(frame_function(&w, first), "schedule");
		store_stack_unref(w.store, st);
	}
	unlink(path);
	world_done(&w);
}

static void test_kernel_no_kallsyms(void **state)
{
	World w;
	FrameId f;

	(void)state;
	world_init(&w, FIXTURE_PROG);
	assert_int_equal(symbolizer_set_kallsyms_path(w.sym, "/nonexistent/kallsyms"), 0);
	f = kernel_frame(&w, 0xffffffff81000150ULL, false);
	assert_null(frame_function(&w, f));
	assert_string_equal(frame_module(&w, f), "[kernel.kallsyms]");
	world_done(&w);
}

/*
 * libdwfl is closed when idle, but not before it has stayed open a thousand times what opening
 * it cost (DWARFINFO_OPEN_AMORTIZE): a binary whose debug sections take long to decompress is
 * not opened again every few seconds for a new CU now and then.
 */
static void test_dwarf_open_amortized(void **state)
{
	uint64_t pc = (uint64_t)(uintptr_t)&trim_held_fn + 1;
	/* In another CU of this binary: daemon/symbolize/symbolizer.c. */
	uint64_t other_cu_pc = (uint64_t)(uintptr_t)&symbolizer_stats + 1;
	/* And in a third: libprofq/store/store.c. */
	uint64_t third_cu_pc = (uint64_t)(uintptr_t)&store_memory + 1;
	ProcMap *maps = NULL, *mine = NULL, *other = NULL;
	uint64_t opens;
	SymbolizerStats st;
	Binary *b, *unused;
	FrameId frame;
	size_t n = 0;
	World w;

	(void)state;
	world_init(&w, FIXTURE_PROG);
	assert_int_equal(procfs_read_maps(getpid(), &maps, &n), 0);
	mine = mapping_of_pc(maps, n, pc);
	assert_non_null(mine);
	/* Opening seems to take 30 ms or more: it stays open at least 30 s. */
	cpu_step_ms = 30;
	assert_int_equal(symbolizer_binary(w.sym, getpid(), mine, &b), 0);
	assert_int_equal(symbolizer_user_frames(w.sym, b, mine, pc, false, &frame, 1), 1);
	cpu_step_ms = 0;
	assert_string_equal(frame_function(&w, frame), "trim_held_fn");
	symbolizer_stats(w.sym, &st);
	assert_true(st.dwarf_binaries == 1 && st.dwarf_opens == 1);
	assert_true(st.dwarf_open_ns >= 30000000ull);
	assert_int_equal(st.dwarf_releases, 0);

	/* Memory pressure that dropping a binary no process maps relieves leaves it open. */
	for (size_t i = 0; i < n && !other; i++)
		if ((maps[i].prot & PROT_EXEC) && maps[i].path && maps[i].path[0] == '/' &&
		    !streq(maps[i].path, mine->path))
			other = &maps[i];
	assert_non_null(other);
	assert_int_equal(symbolizer_binary(w.sym, getpid(), other, &unused), 0);
	binary_unref(w.sym, unused);
	assert_true(symbolizer_shrink(w.sym, 1) >= 1);
	symbolizer_stats(w.sym, &st);
	assert_int_equal(st.binaries_dropped, 1);
	assert_int_equal(st.dwarf_releases, 0);

	/* Idle for 15 s (more than DWARF_IDLE_NS): still open, it cost too much to open. */
	mono_skew_s = 15;
	symbolizer_trim(w.sym);
	symbolizer_stats(w.sym, &st);
	assert_int_equal(st.dwarf_releases, 0);
	/* Idle for 45 s: closed. A lookup in a CU already indexed does not open it again. */
	mono_skew_s = 45;
	symbolizer_trim(w.sym);
	symbolizer_stats(w.sym, &st);
	assert_int_equal(st.dwarf_releases, 1);
	opens = st.dwarf_opens;
	assert_int_equal(symbolizer_user_frames(w.sym, b, mine, pc + 1, false, &frame, 1), 1);
	assert_string_equal(frame_function(&w, frame), "trim_held_fn");
	symbolizer_stats(w.sym, &st);
	assert_int_equal(st.dwarf_opens, opens);

	/* A new CU opens it again; pressure that nothing cheaper relieves closes it however
	 * dear. */
	cpu_step_ms = 30;
	assert_int_equal(symbolizer_user_frames(w.sym, b, mine, other_cu_pc, false, &frame, 1), 1);
	cpu_step_ms = 0;
	assert_string_equal(frame_function(&w, frame), "symbolizer_stats");
	symbolizer_stats(w.sym, &st);
	assert_int_equal(st.dwarf_opens, opens + 1);
	(void)symbolizer_shrink(w.sym, SIZE_MAX);
	symbolizer_stats(w.sym, &st);
	assert_int_equal(st.dwarf_releases, 2);

	/* Closed for memory, it does not open again before a thousand times its opening cost
	 * (30 s or more): a third CU is answered from the symbol table meanwhile. */
	assert_int_equal(symbolizer_user_frames(w.sym, b, mine, third_cu_pc, false, &frame, 1), 1);
	assert_string_equal(frame_function(&w, frame), "store_memory");
	symbolizer_stats(w.sym, &st);
	assert_int_equal(st.dwarf_opens, opens + 1);
	assert_int_equal(st.dwarf_deferred, 1);
	/* An hour later it does, if there is the memory it took last time to spare. */
	mono_skew_s = 45 + 3600;
	symbolizer_shrink(w.sym, 1); /* drops the address cache, not the binary */
	symbolizer_set_headroom(w.sym, 0);
	assert_int_equal(symbolizer_user_frames(w.sym, b, mine, third_cu_pc, false, &frame, 1), 1);
	assert_string_equal(frame_function(&w, frame), "store_memory");
	symbolizer_stats(w.sym, &st);
	assert_int_equal(st.dwarf_opens, opens + 1);
	assert_int_equal(st.dwarf_deferred, 2);
	symbolizer_shrink(w.sym, 1);
	symbolizer_set_headroom(w.sym, SIZE_MAX);
	assert_int_equal(symbolizer_user_frames(w.sym, b, mine, third_cu_pc, false, &frame, 1), 1);
	assert_string_equal(frame_function(&w, frame), "store_memory");
	symbolizer_stats(w.sym, &st);
	assert_int_equal(st.dwarf_opens, opens + 2);
	assert_int_equal(st.dwarf_deferred, 2);
	mono_skew_s = 0;
	binary_unref(w.sym, b);
	procfs_maps_free(maps, n);
	world_done(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_user_frames),
		cmocka_unit_test(test_return_address),
		cmocka_unit_test(test_unresolved_and_cache),
		cmocka_unit_test(test_binary_cache),
		cmocka_unit_test(test_trim),
		cmocka_unit_test(test_dwarf_open_amortized),
		cmocka_unit_test(test_vdso),
		cmocka_unit_test(test_kernel_frames),
		cmocka_unit_test(test_kernel_reload_keeps_frames),
		cmocka_unit_test(test_kernel_no_kallsyms),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
