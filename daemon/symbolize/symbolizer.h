/* SPDX-License-Identifier: MIT */
/*
 * Symbolizer: turns sampled addresses into interned store frames.
 *
 * - Binaries are cached per file identity (device + inode), not per process: every process
 *   mapping libc shares one Binary and its symbol table (ElfSym) and per-address cache. A
 *   binary that failed to load is remembered and not retried.
 * - User addresses are looked up at pc-1 for return addresses (the call instruction), by the
 *   ELF virtual address derived from the mapping's file offset.
 * - Kernel addresses use /proc/kallsyms, loaded on first use.
 * - What cannot be resolved becomes "module+0xaddress" frames (function id 0), never dropped.
 *
 * Frames returned are borrowed: the symbolizer's caches hold the references, valid until the
 * next symbolizer_trim(). Binaries are reference-counted by their users (the process table).
 * Not thread-safe.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/procfs.h"
#include "store/store.h"
#include "symbolize/dwarfworker.h"
#include "symbolize/elfsym.h"
#include "symbolize/mounts.h"
#include "unwind/cfi.h"

typedef struct Symbolizer Symbolizer;
typedef struct Binary Binary;

/* Most frames one address can expand to (inlined calls). */
#define SYMBOLIZER_MAX_INLINE 16

typedef struct SymbolizerStats {
	uint64_t binaries;	    /* binaries cached */
	uint64_t binary_errors;	    /* binaries that could not be read */
	uint64_t lookups;	    /* address lookups */
	uint64_t cache_hits;	    /* ... answered from the per-binary cache */
	uint64_t unresolved;	    /* ... that gave module+offset frames */
	uint64_t kernel_symbols;    /* symbols in the kallsyms table */
	uint64_t cache_flushes;	    /* address caches dropped to stay within the budget */
	uint64_t cfi_binaries;	    /* binaries with compiled unwind tables */
	uint64_t binaries_dropped;  /* unused binaries let go (LRU limit, or memory) */
	uint64_t binaries_unloaded; /* tables of binaries in use let go for memory */
	uint64_t binaries_reloaded; /* ... and read again when needed */
	uint64_t dwarf_binaries;    /* binaries with DWARF (their own, or a debug file's) */
	uint64_t dwarf_releases;    /* times libdwfl was closed (idle, or memory) */
	uint64_t dwarf_opens;	    /* times libdwfl was opened */
	uint64_t dwarf_open_ns;	    /* CPU time those openings took */
	uint64_t dwarf_deferred;    /* lookups without DWARF: libdwfl closed for memory lately */
	uint64_t dwarf_refused;	    /* DWARF refused: compressed sections inflating past the caps */
	uint64_t dwarf_faults;	    /* binaries whose DWARF faulted (truncated while read) */
	uint64_t dwarf_pending;	    /* lookups without DWARF: their CU was being indexed */
	uint64_t dwarf_slices;	    /* indexing slices that ended before their CU was done */
	uint64_t fuse_refused;	    /* files not opened: on FUSE (or a device nothing tells of) */
	DwarfWorkerStats dwarf_worker; /* zero without a worker */
} SymbolizerStats;

int symbolizer_new(Store *store, Symbolizer **ret);
Symbolizer *symbolizer_free(Symbolizer *s);

/* Uses a different kallsyms file (tests); before the first kernel lookup. */
int symbolizer_set_kallsyms_path(Symbolizer *s, const char *path);
/* Bytes the address caches may use before symbolizer_trim() drops them. */
void symbolizer_set_cache_budget(Symbolizer *s, size_t bytes);
/* Memory the owner can spare now: libdw is not opened again for a binary whose last opening
 * took more (lookups in its CUs not yet indexed find no DWARF meanwhile). Unset: no limit. */
void symbolizer_set_headroom(Symbolizer *s, size_t bytes);
/* Also compile each binary's unwind tables (cfi.h) when it is read. Before any binary. */
void symbolizer_set_cfi(Symbolizer *s, bool enabled);
/* Read DWARF (inlined calls, source lines) of each binary (default on). Before any binary. */
void symbolizer_set_dwarf(Symbolizer *s, bool enabled);
/* CPU time a DWARF compile unit is indexed for at a time (0, the default: to the end). */
void symbolizer_set_dwarf_slice(Symbolizer *s, uint64_t cpu_ns);
/* Reads DWARF in a worker process (dwarfworker.h) rather than here. Before any binary. */
int symbolizer_set_dwarf_worker(Symbolizer *s, const DwarfWorkerOptions *o);
/* Extra roots for separate debug files (colon-separated), searched after /usr/lib/debug. */
int symbolizer_set_debug_dirs(Symbolizer *s, const char *dirs);

/*
 * The Binary behind an executable mapping of process pid (a new reference). The file is opened
 * through /proc/PID/map_files (the exact mapped file, also when deleted or in another mount
 * namespace) or /proc/PID/root. Anonymous mappings give -ENOENT; "[vdso]" gives the vDSO.
 * A binary that cannot be read still gives a Binary (frames show module+offset).
 */
int symbolizer_binary(Symbolizer *s, pid_t pid, const ProcMap *m, Binary **ret);
/* A Binary for an ELF file by path (tests, tools). */
int symbolizer_binary_from_path(Symbolizer *s, const char *path, Binary **ret);
Binary *binary_ref(Binary *b);
void binary_unref(Symbolizer *s, Binary *b);
const char *binary_name(const Symbolizer *s, const Binary *b);
/* 0 if the binary's symbols loaded, else the negative errno of the failure. */
int binary_error(const Binary *b);

/*
 * Frames (leaf first: innermost inlined function first) for a user address in mapping m of
 * binary b (b may be NULL for an anonymous or unknown mapping). return_address: look up at
 * addr - 1. Writes up to max frames to out; returns how many (>= 1) or a negative errno.
 */
int symbolizer_user_frames(Symbolizer *s, Binary *b, const ProcMap *m, uint64_t addr,
			   bool return_address, FrameId *out, size_t max);
/*
 * The unwind table covering user address addr in mapping m of binary b, and addr as an ELF
 * virtual address; NULL when the binary has none. Valid while b lives.
 */
Cfi *symbolizer_cfi(Symbolizer *s, Binary *b, const ProcMap *m, uint64_t addr, uint64_t *ret_vaddr);

/* A frame for a user address outside every known mapping. */
int symbolizer_unknown_frame(Symbolizer *s, uint64_t addr, FrameId *ret);
/* A frame of JIT code named by a perf map (module "[jit]"). */
int symbolizer_jit_frame(Symbolizer *s, const char *name, uint64_t addr, FrameId *ret);
/* The mount tables the symbolizer checks files against (mounts_open_in_root()). */
Mounts *symbolizer_mounts(Symbolizer *s);
/* Is a kernel address in the scheduler's or lock functions' text (kallsyms_in_sched())? */
bool symbolizer_kernel_sched(Symbolizer *s, uint64_t addr);
/* Frames for a kernel address. */
int symbolizer_kernel_frames(Symbolizer *s, uint64_t addr, bool return_address, FrameId *out,
			     size_t max);
/*
 * Finds named symbols of binary b (its dynamic symbols, elfsym_find_names()) and gives their
 * addresses in the process whose executable mapping m maps b: each query's vaddr becomes that
 * address (0: not found). Returns how many were found, or a negative errno (b unreadable or
 * changed since it was read, m not one of its executable mappings).
 */
int symbolizer_binary_find(Binary *b, const ProcMap *m, ElfSymbolQuery *q, size_t n);
/* The same frame with flags added (a new reference), e.g. FRAME_PYTHON_EVAL. */
int symbolizer_flag_frame(Symbolizer *s, FrameId frame, uint32_t flags, FrameId *ret);
/* A marker frame (e.g. "[truncated]"), flags FRAME_*. */
int symbolizer_marker_frame(Symbolizer *s, const char *name, uint32_t flags, FrameId *ret);

/*
 * Indexes DWARF for one slice of CPU time (symbolizer_set_dwarf_slice()) where a lookup left a
 * compile unit half done; whether any is still not done. Until a unit is done, lookups in its
 * binary name frames from the symbol table alone (no inlined calls, no lines), cached only
 * until then: each counts in symbolizer_provisional(), and stacks made of them should not be
 * cached.
 */
bool symbolizer_work(Symbolizer *s);
bool symbolizer_has_work(const Symbolizer *s);
/* Takes the DWARF worker's answers that came (lookups take them too), stops a worker past its
 * time limit, and drops the frames named without DWARF of binaries whose wait is over (so that
 * their next lookups have it): call a few times a second, between samples. Invalidates
 * borrowed frames. */
void symbolizer_tick(Symbolizer *s);
/* How many of the DWARF worker's requests are over (answered or failed) so far; 0 without. */
uint64_t symbolizer_dwarf_answers(const Symbolizer *s);
uint64_t symbolizer_provisional(const Symbolizer *s);
/* Drops address caches when they exceed the budget. Invalidates borrowed frames. */
void symbolizer_trim(Symbolizer *s);
/*
 * Under memory pressure: drops the address caches, then binaries no process maps (least
 * recently used first) until about bytes are freed. Returns the bytes freed. Invalidates
 * borrowed frames.
 */
size_t symbolizer_shrink(Symbolizer *s, size_t bytes);
size_t symbolizer_memory(const Symbolizer *s);
void symbolizer_stats(const Symbolizer *s, SymbolizerStats *ret);

/* The binaries holding the most memory, largest first: up to max; returns how many. */
typedef struct SymbolizerBinaryMemory {
	const char *module; /* valid until the symbolizer changes */
	size_t symbols, cfi, dwarf, cache;
} SymbolizerBinaryMemory;
size_t symbolizer_largest(const Symbolizer *s, SymbolizerBinaryMemory *out, size_t max);

static inline void symbolizer_freep(Symbolizer **s)
{
	symbolizer_free(*s);
}
