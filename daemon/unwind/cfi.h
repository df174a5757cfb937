/* SPDX-License-Identifier: MIT */
/*
 * Cfi: a binary's call frame information (.eh_frame) as unwind rows for x86-64: at each address,
 * how to find the canonical frame address (CFA), the return address (always at CFA-8 on x86-64)
 * and the caller's RBP. Rows come from running the DWARF CFA programs of the CIEs/FDEs with our
 * own interpreter: per FDE on first use when the binary has the linker's .eh_frame_hdr index
 * (a binary search finds the FDE), else for the whole section at load; a lookup is then a
 * binary search in the FDE's rows.
 * The unwinder (unwind.h) walks a copied user stack with it, which is what makes stacks
 * complete for code built without frame pointers (profqd(8), --stack-copy).
 *
 * Only what x86-64 code uses is represented: CFA = RSP or RBP + offset, the .plt expression,
 * signal frames (glibc's __restore_rt, augmentation "S"); anything else gives an "unknown" row.
 * The input is hostile (a root daemon reads files any user controls): every read is
 * bounds-checked; section sizes are checked against the file's real size and CFI_MAX_SECTION
 * before anything is allocated; an FDE is decoded at most once per cache residency, whatever
 * number of index entries name it, within CFI_MAX_FDE_ROWS rows and CFI_MAX_FDE_INSNS
 * instructions (beyond, it is refused: no rows, and counted); what a binary keeps is bounded
 * (CFI_MAX_ROWS eager, CFI_MAX_CACHE_BYTES of decoded rows lazy). Not thread-safe.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct Cfi Cfi;

typedef enum CfiCfa {
	CFI_CFA_UNKNOWN, /* no rule (no FDE covers the address, or an unsupported one) */
	CFI_CFA_RSP,	 /* CFA = RSP + offset */
	CFI_CFA_RBP,	 /* CFA = RBP + offset */
	CFI_CFA_PLT,	 /* the .plt expression: RSP + 8, + 8 more past the push in each entry */
	CFI_CFA_SIGNAL,	 /* a signal trampoline: the registers are in the ucontext at RSP */
	CFI_CFA_END,	 /* the return address is undefined: the outermost frame (_start) */
} CfiCfa;

typedef enum CfiRbp {
	CFI_RBP_SAME,	/* the caller's RBP is this frame's RBP */
	CFI_RBP_OFFSET, /* saved at CFA + rbp_offset */
} CfiRbp;

typedef struct CfiRow {
	uint8_t cfa; /* CfiCfa */
	uint8_t rbp; /* CfiRbp */
	int32_t cfa_offset;
	int32_t rbp_offset;
} CfiRow;

/* Bytes of .eh_frame or of .eh_frame_hdr: -EFBIG beyond (the largest real ones are a few MB). */
#define CFI_MAX_SECTION (64u << 20)
/* Entries of an .eh_frame_hdr index: -EFBIG beyond. */
#define CFI_MAX_FDES (2u << 20)
/* Rows of an eager table: the rows before it are kept. */
#define CFI_MAX_ROWS (2u << 20)
/* Rows of one FDE, and CFA instructions run for it: the FDE is refused beyond. */
#define CFI_MAX_FDE_ROWS (1u << 16)
#define CFI_MAX_FDE_INSNS (1u << 18)
/* Decoded rows a lazy table keeps (least recently used FDEs go first). */
#define CFI_MAX_CACHE_BYTES (16u << 20)

typedef struct CfiStats {
	uint64_t decoded_fdes; /* FDEs decoded: each once (eager), or per cache miss (lazy) */
	uint64_t decoded_rows; /* rows they gave */
	uint64_t refused_fdes; /* FDEs over a bound or that we cannot follow: no rows */
	size_t cached_fdes;    /* lazy: decoded FDEs held */
	size_t cache_bytes;    /* lazy: bytes of their rows */
	size_t section_bytes;  /* lazy: the copy of .eh_frame (0: read from the file) */
} CfiStats;

/* Compiles the .eh_frame of the ELF file open at fd. With an .eh_frame_hdr index the table is
 * lazy and keeps no copy of .eh_frame: it keeps a descriptor of its own to the file and reads
 * each FDE (and the CIE it names) from it when a lookup first needs it, an entry that cannot
 * be read then (the file truncated since) giving no rows. -ENOENT if it has none, -EFBIG if a
 * section is over its bound, -EBADMSG if a section header points past the end of the file. */
int cfi_load_fd(int fd, Cfi **ret);
/* The same for an ELF image in memory (the vDSO); the buffer is not kept. */
int cfi_load_memory(const void *image, size_t size, Cfi **ret);
/* Compiles an .eh_frame section's bytes found at virtual address section_vaddr (tests,
 * fuzzing). -EFBIG over CFI_MAX_SECTION. */
int cfi_load_eh_frame(const uint8_t *data, size_t size, uint64_t section_vaddr, Cfi **ret);
Cfi *cfi_free(Cfi *c);

/*
 * Compiles lazily from .eh_frame and its .eh_frame_hdr index: FDEs are decoded when a lookup
 * first needs them (a bounded cache of the hot ones), so a library with a million rows costs
 * its section bytes, not a second of CPU and 20 MB of table. -EOPNOTSUPP for an index we do not
 * read (then compile eagerly).
 */
int cfi_load_indexed(const uint8_t *data, size_t size, uint64_t section_vaddr, const uint8_t *hdr,
		     size_t hdr_size, uint64_t hdr_vaddr, Cfi **ret);

/* The row in effect at ELF virtual address vaddr: 0, or -ENOENT when none covers it. May decode
 * (and cache) the FDE that covers vaddr. */
int cfi_lookup(Cfi *c, uint64_t vaddr, CfiRow *ret);

/* The start of the FDE (a function, or a part of one the compiler split off) that covers
 * vaddr: 0, -ENOENT when none does, -EOPNOTSUPP for an eager table (which keeps no FDE
 * bounds). Reads the FDE's header only. */
int cfi_function_start(Cfi *c, uint64_t vaddr, uint64_t *ret);

/* Rows (eager) or FDEs (lazy). */
size_t cfi_rows(const Cfi *c);
size_t cfi_memory(const Cfi *c);
void cfi_stats(const Cfi *c, CfiStats *ret);

static inline void cfi_freep(Cfi **c)
{
	cfi_free(*c);
}
