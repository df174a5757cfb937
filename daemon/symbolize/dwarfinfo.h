/* SPDX-License-Identifier: MIT */
/*
 * DwarfInfo: what DWARF says about an address of one binary: the chain of inlined calls it sits
 * in (innermost first), each with its source file and line, and the function's own declaration.
 * Reads the binary's DWARF or its separate debug file (found by build id under the debug roots,
 * or by .gnu_debuglink: a plain file name looked for in the binary's directory, its .debug/ and
 * under each debug root, matching the binary's build id, else the debuglink's CRC) through
 * libdwfl, offline.
 *
 * Fast per address: a CU is indexed the first time an address falls in it (one walk of its DIEs
 * into a nesting of function and inlined-call ranges, and a copy of its line table); a lookup is
 * then binary searches and a walk up the nesting. libdwfl's own address lookups
 * (dwfl_module_addrinfo) and dwarf_getscopes, hundreds of microseconds per address on big
 * binaries, are not used. A big CU can be indexed a slice at a time (DwarfCounters.slice_ns,
 * dwarf_info_work()).
 *
 * Small: libdw keeps 5 to 30 times our tables' size for the CUs it has read (line tables,
 * file lists, abbreviations) and gives nothing back while open, plus the file mappings. So
 * libdwfl is open only while new CUs are being indexed: lookups in indexed CUs never need it,
 * dwarf_info_release() closes it when idle, and it is closed and opened again whenever what it
 * read after opening holds more than DWARFINFO_LIBDW_BUDGET. Its heap (including what opening
 * takes, e.g. compressed debug sections decompressed) is measured with mallinfo2 around its
 * calls and counted in dwarf_info_memory().
 *
 * The file is hostile: the work per binary is bounded (DWARFINFO_MAX_DIES). With a worker
 * (DwarfCounters.worker), all of libdwfl's work runs in that child process (dwarfworker.h),
 * with this same code, and the indexes come back from it, checked, into tables like these:
 * lookups stay here. Not thread-safe.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

typedef struct DwarfInfo DwarfInfo;
typedef struct DwarfWorker DwarfWorker;

#define DWARFINFO_MAX_DIES (4u << 20)
/* Separate debug files larger than this are not used. */
#define DWARFINFO_DEBUG_FILE_MAX_SIZE (4ULL << 30)
/* A debug file found by .gnu_debuglink is checked against the binary by build id; without one
 * on both sides, by the debuglink's CRC-32 of the whole file, computed only up to this size. */
#define DWARFINFO_CRC_MAX_SIZE (256u << 20)
/* libdw inflates compressed debug sections (SHF_COMPRESSED, .zdebug_*) whole when it opens a
 * file: the DWARF of a file whose sections say they inflate to more than this in all, or to
 * more than DWARFINFO_MAX_INFLATE_RATIO times the file's size, is refused (its symbols are
 * not). Real debug sections compress 3 to 10 times. */
#define DWARFINFO_MAX_INFLATED (256u << 20)
#define DWARFINFO_MAX_INFLATE_RATIO 32u
/* A file truncated while libdw reads it through its mapping (SIGBUS) costs only that binary's
 * DWARF: the fault is caught, the binary's libdw handles are abandoned (leaked) and its DWARF
 * is not opened again. The handler is installed for SIGBUS process-wide on the first opening;
 * a SIGBUS anywhere else goes to the handler that was there before. After this many faults,
 * files not owned by root get no DWARF (each fault leaks up to DWARFINFO_LIBDW_BUDGET). */
#define DWARFINFO_MAX_FAULTS 16u
#define DWARFINFO_LIBDW_BUDGET (8u << 20)
/* libdwfl stays open at least this many times the CPU time its last opening took (e.g. 60 ms
 * to decompress libc's debug sections: a minute), so that opening again for a new CU now and
 * then costs at most a thousandth of a core. */
#define DWARFINFO_OPEN_AMORTIZE 1000u

/* What opening libdwfl cost, summed over the binaries that share it. */
typedef struct DwarfCounters {
	uint64_t opens;	   /* times libdwfl was opened */
	uint64_t open_ns;  /* CPU time of the openings (thread CPU clock) */
	uint64_t deferred; /* lookups answered without DWARF: closed for memory, not yet amortized,
			    * or what opening took last time is more than the headroom */
	uint64_t refused;  /* files whose DWARF was refused (DWARFINFO_MAX_INFLATED) */
	uint64_t faults;   /* files that faulted (SIGBUS: truncated) while libdw read them */
	uint64_t pending;  /* lookups answered without DWARF while their CU was being indexed */
	uint64_t slices;   /* indexing steps that ended at slice_ns with the CU not done */
	size_t headroom;   /* memory the owner can spare now; 0 is taken as none to spare */
	bool limited;	   /* headroom is set */
	uint64_t slice_ns; /* CPU time a CU is indexed for at a time (0: to the end) */
	DwarfWorker *worker; /* set: libdw runs in its child process (see dwarfworker.h) */
} DwarfCounters;

typedef struct DwarfFrame {
	const char *function; /* DW_AT_name (or the linkage name) of the (inlined) function; NULL
			       * when no function DIE covers the address, only the line table */
	const char *linkage;  /* its DW_AT_linkage_name (mangled), NULL if none */
	const char *file;     /* where the address is (innermost) or the call site (outer) */
	uint32_t line;
	const char *decl_file; /* where the function is declared */
	uint32_t decl_line;
	int inlined; /* this frame is inlined into the next */
} DwarfFrame;

/*
 * Opens the DWARF of the ELF file open at fd (path names it in messages and for .gnu_debuglink).
 * debug_path: libdwfl's search path for separate debug files (":.debug:/usr/lib/debug" if NULL,
 * none if ""), colon-separated roots. counters (may be NULL; must outlive d) sums the cost of
 * libdwfl's openings. -ENOENT if neither the file nor a debug file has DWARF, -EFBIG if its
 * compressed sections would inflate past the caps.
 */
int dwarf_info_open(int fd, const char *path, const char *debug_path, DwarfCounters *counters,
		    DwarfInfo **ret);
DwarfInfo *dwarf_info_free(DwarfInfo *d);
/*
 * With counters->worker, dwarf_info_open() checks the file's headers only and asks the worker
 * to open it: this is -EINPROGRESS until its answer has come, then 0, or why the DWARF is not
 * to be had (as dwarf_info_open(); -EIO when the worker died or was stopped on it). Always 0
 * without a worker. Lookups meanwhile return -EINPROGRESS.
 */
int dwarf_info_opened(const DwarfInfo *d);

/*
 * The frames of ELF virtual address vaddr, innermost first; the last is the function that
 * contains it (not inlined). Returns how many (<= max), 0 when DWARF does not cover vaddr, or a
 * negative errno. Strings stay valid while d lives (they are d's own copies).
 *
 * With counters->slice_ns, a CU is indexed for at most that much CPU time at a time: a CU
 * that takes longer (a million DIEs take half a second) is not done, and lookups in it, and in
 * any other CU not yet indexed, return -EINPROGRESS (counted in counters->pending) until
 * dwarf_info_work() has finished it. The first slice also has libdw decode the CU's whole line
 * program, in one call (40 ms of CPU for a CU of 170,000 DIEs).
 */
int dwarf_info_lookup(DwarfInfo *d, uint64_t vaddr, DwarfFrame *out, size_t max);
/* Indexes the CU being built for another slice: 1 while it is not done, 0 when it is (or none
 * was being built), or a negative errno (the build dropped). */
int dwarf_info_work(DwarfInfo *d);
/* Whether lookups may still return -EINPROGRESS: a CU is being built here, or asked of the
 * worker (or the opening is). */
bool dwarf_info_building(const DwarfInfo *d);
/* Whether dwarf_info_work() has work here (a CU built here, a slice at a time). */
bool dwarf_info_has_work(const DwarfInfo *d);

/* Closes libdwfl if no lookup needed it for idle_ns, and for DWARFINFO_OPEN_AMORTIZE times
 * what opening it cost (idle_ns 0: now, for memory; then it opens again only that much later,
 * and lookups in CUs not yet indexed find no DWARF meanwhile: memory pressure cannot make it
 * reopen over and over); whether it did. Indexed CUs stay; a CU being indexed is dropped (not
 * idle meanwhile). */
bool dwarf_info_release(DwarfInfo *d, uint64_t idle_ns);
/* Our tables' bytes plus the heap libdw holds while open. */
size_t dwarf_info_memory(const DwarfInfo *d);
/* The separate debug file the DWARF came from (its path resolved when it was opened), NULL if
 * it is the binary's own. */
const char *dwarf_info_debug_file(const DwarfInfo *d);
/* What that file was when it was opened (fstat of libdwfl's descriptor); -ENOENT if none. */
int dwarf_info_debug_stat(const DwarfInfo *d, struct stat *ret);

/*
 * Between DwarfInfo and the worker process (dwarfworker.c) only.
 *
 * The worker's side: the CU that holds ELF address vaddr, indexed if it is not yet, as a CU
 * body for dwarf_info_take_cu() (*ret_body, *ret_len, malloc'd), then dropped here but for its
 * identity: 1; 0 and no body when it was sent before; -ENOENT when no CU holds vaddr, or an
 * error.
 */
int dwarf_info_export_cu(DwarfInfo *d, uint64_t vaddr, void **ret_body, size_t *ret_len);
/* The worker's side: dwarf_info_open() that takes only the debug file st names (if not NULL) */
int dwarf_info_open_expecting(int fd, const char *path, const char *debug_path,
			      const struct stat *expect, DwarfCounters *counters, DwarfInfo **ret);
int64_t dwarf_info_dw_delta(const DwarfInfo *d);

/* What the owner's side sends with a request: the binary's descriptor (borrowed), its path, the
 * debug search path, and the identity of the debug file the first answer named. */
typedef struct DwarfRequestInfo {
	int fd;
	const char *path, *debug_path;
	const struct stat *expect; /* NULL: none named yet */
	uint64_t vaddr;
	bool open_only; /* no CU asked for */
} DwarfRequestInfo;
void dwarf_info_request_info(const DwarfInfo *d, DwarfRequestInfo *ret);

/* The worker's answer, checked before use. */
typedef struct DwarfAnswerInfo {
	int open_result; /* of the opening */
	int result;	 /* of the CU: as dwarf_info_export_cu() */
	int64_t dw_delta;
	const char *debug_file; /* NULL: none */
	const struct stat *debug_st;
	const void *body; /* the CU body (result 1) */
	size_t len;
} DwarfAnswerInfo;
/* A DwarfInfo fed by answers alone (tests, fuzzing): open, with a CU asked for at vaddr;
 * counters->worker must be NULL. */
int dwarf_info_new_detached(DwarfCounters *counters, uint64_t vaddr, DwarfInfo **ret);
/* The owner's side: takes the answer to the request it made; a body that fails its checks is
 * refused (-EBADMSG) and the binary's DWARF with it. */
int dwarf_info_take_answer(DwarfInfo *d, const DwarfAnswerInfo *a);
/* The owner's side: the worker could not answer (died, too slow): r for the opening or the
 * CU asked for. */
void dwarf_info_take_failure(DwarfInfo *d, int r);

static inline void dwarf_info_freep(DwarfInfo **d)
{
	dwarf_info_free(*d);
}
