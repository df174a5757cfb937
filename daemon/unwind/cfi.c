/* SPDX-License-Identifier: MIT */
#include <dwarf.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/hashindex.h"
#include "base/macro.h"
#include "unwind/cfi.h"

/* DWARF register numbers on x86-64. */
#define REG_RBP 6
#define REG_RSP 7
#define REG_RA 16

/* The parts of a DW_EH_PE pointer encoding (<dwarf.h> names the values, not the masks), and of
 * a CFA opcode: the primary ones carry an operand in their low 6 bits. */
#define EH_PE_FORMAT 0x0f
#define EH_PE_APPLICATION 0x70
#define CFA_PRIMARY 0xc0
#define CFA_OPERAND 0x3f

#define MAX_CIES 256
/* Bytes of one entry (a CIE or an FDE) a lazy table reads from the file: the header and
 * CFI_MAX_FDE_INSNS instructions of a few bytes each fit. Beyond, the entry is taken as torn. */
#define MAX_ENTRY (4u << 20)
/* What one read of an entry takes at once: the whole of almost every real one. */
#define ENTRY_READ 512
#define MAX_STATE_STACK 16
/* Decoded FDEs a lazy table keeps: the hot functions of a binary (and at most
 * CFI_MAX_CACHE_BYTES of rows). Slots are allocated as they are used. 512 was too few for
 * libpython's hot set: every lookup then decoded its FDE again (6x libdw's cost, see
 * docs/PERFORMANCE.md). */
#define CACHE_FDES 4096
#define NO_SLOT UINT32_MAX
/* Sections in an ELF file and bytes of its section name table: far more than any real file. */
#define MAX_SECTIONS 65536
#define MAX_SHSTRTAB (1u << 20)

/* The .plt CFA expression GCC/binutils emit: rsp + 8 + ((rip & 15) >= N) << 3, N a DW_OP_litN
 * (10 or 11) between the head and the tail. */
static const uint8_t plt_expr_head[] = { DW_OP_breg7, 8, DW_OP_breg16, 0, DW_OP_lit15, DW_OP_and };
static const uint8_t plt_expr_tail[] = { DW_OP_ge, DW_OP_lit3, DW_OP_shl, DW_OP_plus };

typedef struct Entry {
	uint64_t pc;
	uint32_t seq; /* emission order: of equal pcs, the later row is the state in effect */
	CfiRow row;
	uint8_t unknown_end; /* an FDE-end marker: loses to a real row at the same pc */
} Entry;

/* Sorted rows with their start addresses; consecutive equal rows merged. */
typedef struct Table {
	uint64_t *pcs;
	CfiRow *rows;
	size_t n;
} Table;

typedef struct Cie Cie;

/* The CIEs a table has parsed so far (most binaries have one or two), up to MAX_CIES. */
typedef struct CieSet {
	Cie *v;
	size_t n, allocated;
} CieSet;

/* The ELF file the sections are read from: open at fd, or an image in memory; size is the
 * file's real size (fstat), which every section header is checked against. */
typedef struct Image {
	int fd;
	const uint8_t *mem;
	uint64_t size;
} Image;

/* A decoded FDE in the cache of a lazy Cfi, by its offset in the section (several index entries
 * may name one FDE: it is decoded once). A bad FDE is cached too, as an empty table. */
typedef struct CachedFde {
	uint32_t off;
	uint32_t prev, next; /* the LRU list (used slots, most recent first), or the free list */
	bool used;
	Table t;
} CachedFde;

struct Cfi {
	bool lazy;
	/* Eager: every row of the binary. */
	Table all;
	/* Lazy: the section (a copy in data, or read an entry at a time from the file at
	 * file_off: file.fd, a descriptor of our own), the sorted FDE index of .eh_frame_hdr, the
	 * FDEs decoded so far. */
	uint8_t *data;
	Image file;
	uint64_t file_off;
	size_t size;
	uint64_t vaddr;
	uint64_t *fde_pcs;
	uint32_t *fde_offs;
	size_t n_fdes;
	CieSet cies;
	CachedFde *cache;
	size_t n_cache;		     /* slots in use */
	size_t allocated_cache;	     /* slots allocated (<= CACHE_FDES) */
	uint32_t lru_head, lru_tail; /* most and least recently used */
	uint32_t free_head;
	HashIndex *cache_index;
	size_t cache_bytes;
	uint64_t decoded_fdes, decoded_rows, refused_fdes;
};

typedef struct Cursor {
	const uint8_t *p, *end;
} Cursor;

static bool get_bytes(Cursor *c, size_t n, const uint8_t **ret)
{
	if ((size_t)(c->end - c->p) < n)
		return false;
	*ret = c->p;
	c->p += n;
	return true;
}

static bool get_u8(Cursor *c, uint8_t *ret)
{
	const uint8_t *p;

	if (!get_bytes(c, 1, &p))
		return false;
	*ret = p[0];
	return true;
}

static bool get_uint(Cursor *c, size_t n, uint64_t *ret)
{
	const uint8_t *p;
	uint64_t v = 0;

	if (!get_bytes(c, n, &p))
		return false;
	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	*ret = v;
	return true;
}

static bool get_uleb(Cursor *c, uint64_t *ret)
{
	uint64_t v = 0;
	unsigned shift = 0;
	uint8_t b;

	do {
		if (!get_u8(c, &b) || shift > 63)
			return false;
		v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
	} while (b & 0x80);
	*ret = v;
	return true;
}

static bool get_sleb(Cursor *c, int64_t *ret)
{
	uint64_t v = 0;
	unsigned shift = 0;
	uint8_t b;

	do {
		if (!get_u8(c, &b) || shift > 63)
			return false;
		v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
	} while (b & 0x80);
	if (shift < 64 && (b & 0x40))
		v |= ~0ULL << shift;
	*ret = (int64_t)v;
	return true;
}

/*
 * Bytes of an .eh_frame section: data holds those at section offsets [base, base + size), the
 * whole section (base 0) or one entry read from the file. vaddr is the section's address.
 * With file, the CIE an FDE names is read from file (at file_off + its offset, within total,
 * the section's size) into a window of its own.
 */
typedef struct Section {
	const uint8_t *data;
	size_t base;
	size_t size;
	uint64_t vaddr;
	const Image *file;
	uint64_t file_off;
	size_t total;
} Section;

/* A pointer in DW_EH_PE encoding enc; pcrel is relative to the field's own address. */
static bool get_encoded(Cursor *c, uint8_t enc, const Section *sec, uint64_t *ret)
{
	uint64_t field = sec->vaddr + sec->base + (uint64_t)(c->p - sec->data), v;
	int64_t s;

	if (enc == DW_EH_PE_omit)
		return false;
	switch (enc & EH_PE_FORMAT) {
	case DW_EH_PE_absptr:
		if (!get_uint(c, 8, &v))
			return false;
		break;
	case DW_EH_PE_uleb128:
		if (!get_uleb(c, &v))
			return false;
		break;
	case DW_EH_PE_udata2:
		if (!get_uint(c, 2, &v))
			return false;
		break;
	case DW_EH_PE_udata4:
		if (!get_uint(c, 4, &v))
			return false;
		break;
	case DW_EH_PE_udata8:
		if (!get_uint(c, 8, &v))
			return false;
		break;
	case DW_EH_PE_sleb128:
		if (!get_sleb(c, &s))
			return false;
		v = (uint64_t)s;
		break;
	case DW_EH_PE_sdata2:
		if (!get_uint(c, 2, &v))
			return false;
		v = (uint64_t)(int64_t)(int16_t)v;
		break;
	case DW_EH_PE_sdata4:
		if (!get_uint(c, 4, &v))
			return false;
		v = (uint64_t)(int64_t)(int32_t)v;
		break;
	case DW_EH_PE_sdata8:
		if (!get_uint(c, 8, &v))
			return false;
		break;
	default:
		return false;
	}
	switch (enc & EH_PE_APPLICATION) {
	case DW_EH_PE_absptr:
		break;
	case DW_EH_PE_pcrel:
		v += field;
		break;
	default: /* textrel, datarel, funcrel, aligned: not used in .eh_frame of ELF x86-64 */
		return false;
	}
	if (enc & DW_EH_PE_indirect) /* would need the process's memory */
		return false;
	*ret = v;
	return true;
}

typedef struct State {
	uint8_t cfa; /* CfiCfa */
	uint64_t cfa_reg;
	int64_t cfa_offset;
	uint8_t rbp; /* CfiRbp */
	int64_t rbp_offset;
	bool ra_undefined;
	bool ra_odd; /* the return address is not at CFA-8: we cannot follow */
	bool signal; /* a signal trampoline's FDE (augmentation "S") */
} State;

struct Cie {
	size_t offset; /* in the section */
	uint64_t code_align;
	int64_t data_align;
	uint64_t ra_reg;
	uint8_t fde_enc;
	bool has_z;
	bool signal;
	bool bad; /* did not parse: the FDEs that name it are skipped */
	const uint8_t *insns, *insns_end;
	State initial; /* after the initial instructions, run once */
};

/* Reads the entry header at section offset off: its content range. 0 length ends the
 * section. */
static bool entry_range(const Section *sec, size_t off, const uint8_t **ret_start,
			const uint8_t **ret_end, bool *ret_terminator)
{
	Cursor c;
	uint64_t len;

	*ret_terminator = false;
	if (off < sec->base || off - sec->base > sec->size)
		return false;
	c = (Cursor){ sec->data + (off - sec->base), sec->data + sec->size };
	if (!get_uint(&c, 4, &len))
		return false;
	if (len == 0) {
		*ret_terminator = true;
		return true;
	}
	if (len == 0xffffffff && !get_uint(&c, 8, &len))
		return false;
	if (len > (uint64_t)(c.end - c.p))
		return false;
	*ret_start = c.p;
	*ret_end = c.p + len;
	return true;
}

/* size bytes at off of the file (within its size: the caller checked), into buf. */
static int image_read(const Image *im, uint64_t off, size_t size, uint8_t *buf)
{
	if (im->mem) {
		memcpy(buf, im->mem + off, size);
		return 0;
	}
	while (size > 0) {
		ssize_t n = pread(im->fd, buf, size, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return negative_errno();
		if (n == 0)
			return -EBADMSG; /* truncated since fstat() */
		buf += n;
		off += (uint64_t)n;
		size -= (size_t)n;
	}
	return 0;
}

/*
 * The entry at section offset off of a section read from its file (from->file): its bytes
 * into buf (ENTRY_READ bytes) when they fit, else into *heap (allocated; the caller frees it);
 * *win covers them. An entry that cannot be read (past the section, longer than MAX_ENTRY,
 * the file truncated since) gives an empty window, which reads as a torn entry.
 */
static void entry_load(const Section *from, size_t off, uint8_t *buf, uint8_t **heap, Section *win)
{
	size_t got = off < from->total ? MIN((size_t)ENTRY_READ, from->total - off) : 0;
	Cursor c = { buf, buf + got };
	uint64_t len;
	size_t whole;

	*win = (Section){ .data = buf,
			  .base = off,
			  .vaddr = from->vaddr,
			  .file = from->file,
			  .file_off = from->file_off,
			  .total = from->total };
	if (got < 4 || image_read(from->file, from->file_off + off, got, buf) < 0 ||
	    !get_uint(&c, 4, &len))
		return;
	if (len == 0xffffffff && !get_uint(&c, 8, &len))
		return;
	/* The length field and what it counts. */
	if (len > MAX_ENTRY || len > from->total - off - (size_t)(c.p - buf))
		return;
	whole = (size_t)(c.p - buf) + (size_t)len;
	if (whole <= got) {
		win->size = whole;
		return;
	}
	*heap = malloc(whole);
	if (!*heap ||
	    image_read(from->file, from->file_off + off + got, whole - got, *heap + got) < 0)
		return;
	memcpy(*heap, buf, got);
	win->data = *heap;
	win->size = whole;
}

static int parse_cie(const Section *sec, size_t off, Cie *ret)
{
	const uint8_t *start, *end, *aug, *aug_end = NULL;
	Cie cie = { .offset = off };
	Cursor c;
	uint64_t id, v;
	uint8_t version;
	bool term;

	if (!entry_range(sec, off, &start, &end, &term) || term)
		return -EBADMSG;
	c = (Cursor){ start, end };
	if (!get_uint(&c, 4, &id) || id != 0 || !get_u8(&c, &version) ||
	    (version != 1 && version != 3 && version != 4))
		return -EBADMSG;
	aug = c.p;
	while (c.p < c.end && *c.p)
		c.p++;
	if (c.p >= c.end)
		return -EBADMSG;
	aug_end = c.p++;
	if (version == 4) {
		uint8_t as, ss;

		if (!get_u8(&c, &as) || !get_u8(&c, &ss) || as != 8 || ss != 0)
			return -EBADMSG;
	}
	if (!get_uleb(&c, &cie.code_align) || !get_sleb(&c, &cie.data_align))
		return -EBADMSG;
	if (version == 1) {
		uint8_t r;

		if (!get_u8(&c, &r))
			return -EBADMSG;
		cie.ra_reg = r;
	} else if (!get_uleb(&c, &cie.ra_reg)) {
		return -EBADMSG;
	}
	if (aug < aug_end && *aug == 'z') {
		Cursor a;
		const uint8_t *adata;

		cie.has_z = true;
		if (!get_uleb(&c, &v) || !get_bytes(&c, v, &adata))
			return -EBADMSG;
		a = (Cursor){ adata, adata + v };
		for (const uint8_t *p = aug + 1; p < aug_end; p++) {
			uint8_t enc;
			uint64_t ignored;

			switch (*p) {
			case 'R':
				if (!get_u8(&a, &cie.fde_enc))
					return -EBADMSG;
				break;
			case 'L':
				if (!get_u8(&a, &enc))
					return -EBADMSG;
				break;
			case 'P':
				/* The personality routine: only its size matters here, so it is
				 * read as a plain value (an indirect one need not be followed). */
				if (!get_u8(&a, &enc))
					return -EBADMSG;
				if (enc != DW_EH_PE_omit &&
				    !get_encoded(&a, (uint8_t)(enc & ~DW_EH_PE_indirect), sec,
						 &ignored))
					return -EBADMSG;
				break;
			case 'S':
				cie.signal = true;
				break;
			case 'B':
			case 'G':
				break;
			default:
				/* An unknown augmentation: the 'z' length lets us go on. */
				p = aug_end - 1;
				break;
			}
		}
	} else if (aug < aug_end && !(aug_end - aug == 2 && aug[0] == 'e' && aug[1] == 'h')) {
		return -EOPNOTSUPP; /* an augmentation we cannot skip */
	}
	cie.insns = c.p;
	cie.insns_end = end;
	if (cie.code_align == 0 || cie.ra_reg != REG_RA)
		return -EOPNOTSUPP;
	*ret = cie;
	return 0;
}

typedef struct Builder {
	Entry *entries;
	size_t n, allocated;
	size_t fde_start; /* the first row of the FDE being run */
	uint64_t fdes, refused;
} Builder;

/* Adds a row: 0, -ENOMEM, or -EFBIG past CFI_MAX_ROWS (the whole table is over its bound). */
static int emit(Builder *b, uint64_t pc, const State *s, bool unknown_end)
{
	CfiRow row = { .cfa = CFI_CFA_UNKNOWN, .rbp = s ? s->rbp : CFI_RBP_SAME };

	if (b->n >= CFI_MAX_ROWS)
		return -EFBIG;
	if (s) {
		if (s->signal)
			row.cfa = CFI_CFA_SIGNAL;
		else if (s->ra_undefined)
			row.cfa = CFI_CFA_END;
		else if (s->ra_odd)
			row.cfa = CFI_CFA_UNKNOWN;
		else if (s->cfa == CFI_CFA_RSP || s->cfa == CFI_CFA_RBP)
			row.cfa = s->cfa_reg == REG_RSP	  ? CFI_CFA_RSP
				  : s->cfa_reg == REG_RBP ? CFI_CFA_RBP
							  : CFI_CFA_UNKNOWN;
		else
			row.cfa = s->cfa;
		if (s->cfa_offset < INT32_MIN || s->cfa_offset > INT32_MAX ||
		    s->rbp_offset < INT32_MIN || s->rbp_offset > INT32_MAX)
			row.cfa = CFI_CFA_UNKNOWN;
		row.cfa_offset = (int32_t)s->cfa_offset;
		row.rbp_offset = (int32_t)s->rbp_offset;
	}
	if (GREEDY_REALLOC(b->entries, b->allocated, b->n + 1) < 0)
		return -ENOMEM;
	b->entries[b->n] =
		(Entry){ .pc = pc, .seq = (uint32_t)b->n, .row = row, .unknown_end = unknown_end };
	b->n++;
	return 0;
}

static void set_reg_offset(State *s, uint64_t reg, int64_t off)
{
	if (reg == REG_RBP) {
		s->rbp = CFI_RBP_OFFSET;
		s->rbp_offset = off;
	} else if (reg == REG_RA) {
		s->ra_undefined = false;
		s->ra_odd = off != -8;
	}
}

/* Our notion of "what the CIE said" for a register, for DW_CFA_restore. */
static void restore_reg(State *s, const State *initial, uint64_t reg)
{
	if (reg == REG_RBP) {
		s->rbp = initial->rbp;
		s->rbp_offset = initial->rbp_offset;
	} else if (reg == REG_RA) {
		s->ra_undefined = initial->ra_undefined;
		s->ra_odd = initial->ra_odd;
	}
}

/* A factored offset: operand times the CIE's data alignment, false when it overflows int64 (a
 * hostile file: the FDE is refused rather than read as a wrapped, plausible offset). */
static bool factor(int64_t v, int64_t align, int64_t *ret)
{
	return !__builtin_mul_overflow(v, align, ret);
}

static bool factor_u(uint64_t u, int64_t align, int64_t *ret)
{
	return !__builtin_mul_overflow(u, align, ret);
}

/* DW_CFA_GNU_negative_offset_extended: -(u * align). */
static bool factor_neg(uint64_t u, int64_t align, int64_t *ret)
{
	int64_t v;

	return factor_u(u, align, &v) && !__builtin_sub_overflow((int64_t)0, v, ret);
}

/* Emits the row in effect from *loc, unless the FDE has CFI_MAX_FDE_ROWS already (-E2BIG). */
static int emit_fde_row(Builder *b, uint64_t loc, const State *s)
{
	if (b->n - b->fde_start >= CFI_MAX_FDE_ROWS)
		return -E2BIG;
	return emit(b, loc, s, false);
}

/*
 * Runs a CFA program. With b, emits a row at each advance (the state so far covers
 * [loc, new loc)); without, only updates the state (a CIE's initial instructions). At most
 * *budget instructions, which it counts down: -E2BIG past them or past CFI_MAX_FDE_ROWS.
 */
static int run(const Cie *cie, const Section *sec, const uint8_t *p, const uint8_t *end,
	       uint64_t *loc, State *s, const State *initial, Builder *b, size_t *budget)
{
	State stack[MAX_STATE_STACK];
	unsigned depth = 0;
	Cursor c = { p, end };
	int r;

	while (c.p < c.end) {
		uint8_t op, hi, lo;
		uint64_t reg, u, delta = 0;
		int64_t sv;
		bool advance = false;

		if (*budget == 0)
			return -E2BIG;
		(*budget)--;
		if (!get_u8(&c, &op))
			return -EBADMSG;
		hi = op & CFA_PRIMARY;
		lo = op & CFA_OPERAND;
		if (hi == DW_CFA_advance_loc) {
			delta = lo;
			advance = true;
		} else if (hi == DW_CFA_offset) {
			if (!get_uleb(&c, &u) || !factor_u(u, cie->data_align, &sv))
				return -EBADMSG;
			set_reg_offset(s, lo, sv);
		} else if (hi == DW_CFA_restore) {
			if (initial)
				restore_reg(s, initial, lo);
		} else {
			switch (op) {
			case DW_CFA_nop:
				break;
			case DW_CFA_set_loc:
				if (!get_encoded(&c, cie->fde_enc, sec, &u))
					return -EBADMSG;
				if (b && u >= *loc) {
					r = emit_fde_row(b, *loc, s);
					if (r < 0)
						return r;
					*loc = u;
				}
				break;
			case DW_CFA_advance_loc1:
				if (!get_uint(&c, 1, &delta))
					return -EBADMSG;
				advance = true;
				break;
			case DW_CFA_advance_loc2:
				if (!get_uint(&c, 2, &delta))
					return -EBADMSG;
				advance = true;
				break;
			case DW_CFA_advance_loc4:
				if (!get_uint(&c, 4, &delta))
					return -EBADMSG;
				advance = true;
				break;
			case DW_CFA_offset_extended:
				if (!get_uleb(&c, &reg) || !get_uleb(&c, &u) ||
				    !factor_u(u, cie->data_align, &sv))
					return -EBADMSG;
				set_reg_offset(s, reg, sv);
				break;
			case DW_CFA_offset_extended_sf:
				if (!get_uleb(&c, &reg) || !get_sleb(&c, &sv) ||
				    !factor(sv, cie->data_align, &sv))
					return -EBADMSG;
				set_reg_offset(s, reg, sv);
				break;
			case DW_CFA_GNU_negative_offset_extended:
				if (!get_uleb(&c, &reg) || !get_uleb(&c, &u) ||
				    !factor_neg(u, cie->data_align, &sv))
					return -EBADMSG;
				set_reg_offset(s, reg, sv);
				break;
			case DW_CFA_restore_extended:
				if (!get_uleb(&c, &reg))
					return -EBADMSG;
				if (initial)
					restore_reg(s, initial, reg);
				break;
			case DW_CFA_undefined:
				if (!get_uleb(&c, &reg))
					return -EBADMSG;
				if (reg == REG_RA)
					s->ra_undefined = true;
				else if (reg == REG_RBP)
					s->rbp = CFI_RBP_SAME;
				break;
			case DW_CFA_same_value:
				if (!get_uleb(&c, &reg))
					return -EBADMSG;
				if (reg == REG_RBP)
					s->rbp = CFI_RBP_SAME;
				break;
			case DW_CFA_register: /* we follow no other registers */
				if (!get_uleb(&c, &reg) || !get_uleb(&c, &u))
					return -EBADMSG;
				if (reg == REG_RBP)
					s->rbp = CFI_RBP_SAME;
				else if (reg == REG_RA)
					s->ra_odd = true;
				break;
			case DW_CFA_remember_state:
				if (depth == MAX_STATE_STACK)
					return -E2BIG;
				stack[depth++] = *s;
				break;
			case DW_CFA_restore_state:
				if (depth == 0)
					return -EBADMSG;
				*s = stack[--depth];
				break;
			case DW_CFA_def_cfa:
				if (!get_uleb(&c, &reg) || !get_uleb(&c, &u) || u > INT64_MAX)
					return -EBADMSG;
				/* A register rule; emit() names the register. */
				s->cfa = CFI_CFA_RSP;
				s->cfa_reg = reg;
				s->cfa_offset = (int64_t)u;
				break;
			case DW_CFA_def_cfa_sf:
				if (!get_uleb(&c, &reg) || !get_sleb(&c, &sv) ||
				    !factor(sv, cie->data_align, &sv))
					return -EBADMSG;
				s->cfa = CFI_CFA_RSP;
				s->cfa_reg = reg;
				s->cfa_offset = sv;
				break;
			case DW_CFA_def_cfa_register:
				if (!get_uleb(&c, &reg))
					return -EBADMSG;
				s->cfa_reg = reg;
				if (s->cfa != CFI_CFA_RSP)
					s->cfa = CFI_CFA_UNKNOWN;
				break;
			case DW_CFA_def_cfa_offset:
				if (!get_uleb(&c, &u) || u > INT64_MAX)
					return -EBADMSG;
				s->cfa_offset = (int64_t)u;
				break;
			case DW_CFA_def_cfa_offset_sf:
				if (!get_sleb(&c, &sv) || !factor(sv, cie->data_align, &sv))
					return -EBADMSG;
				s->cfa_offset = sv;
				break;
			case DW_CFA_def_cfa_expression: {
				const uint8_t *e;

				if (!get_uleb(&c, &u) || !get_bytes(&c, u, &e))
					return -EBADMSG;
				if (u == sizeof(plt_expr_head) + 1 + sizeof(plt_expr_tail) &&
				    memcmp(e, plt_expr_head, sizeof(plt_expr_head)) == 0 &&
				    e[sizeof(plt_expr_head)] >= DW_OP_lit0 &&
				    e[sizeof(plt_expr_head)] <= DW_OP_lit31 &&
				    memcmp(e + sizeof(plt_expr_head) + 1, plt_expr_tail,
					   sizeof(plt_expr_tail)) == 0) {
					s->cfa = CFI_CFA_PLT;
					s->cfa_offset = e[sizeof(plt_expr_head)] - DW_OP_lit0;
				} else {
					s->cfa = CFI_CFA_UNKNOWN;
				}
				break;
			}
			case DW_CFA_expression:
			case DW_CFA_val_expression: {
				const uint8_t *e;

				if (!get_uleb(&c, &reg) || !get_uleb(&c, &u) ||
				    !get_bytes(&c, u, &e))
					return -EBADMSG;
				if (reg == REG_RBP)
					s->rbp = CFI_RBP_SAME;
				else if (reg == REG_RA)
					s->ra_odd = true;
				break;
			}
			case DW_CFA_val_offset:
			case DW_CFA_val_offset_sf:
				if (!get_uleb(&c, &reg))
					return -EBADMSG;
				if (op == DW_CFA_val_offset ? !get_uleb(&c, &u)
							    : !get_sleb(&c, &sv))
					return -EBADMSG;
				if (reg == REG_RBP)
					s->rbp = CFI_RBP_SAME;
				else if (reg == REG_RA)
					s->ra_odd = true;
				break;
			case DW_CFA_GNU_args_size:
				if (!get_uleb(&c, &u))
					return -EBADMSG;
				break;
			default:
				return -EOPNOTSUPP;
			}
		}
		if (advance && b) {
			r = emit_fde_row(b, *loc, s);
			if (r < 0)
				return r;
			if (delta > UINT64_MAX / cie->code_align)
				return -EBADMSG;
			*loc += delta * cie->code_align;
		}
	}
	return 0;
}

/* The CIE at off, parsed and its initial instructions run on first use (read from the file if
 * sec does not hold it); NULL for one that does not parse (remembered as such) or past
 * MAX_CIES. The pointer is good until the next call. */
static const Cie *cie_get(CieSet *cies, const Section *sec, size_t off)
{
	_cleanup_free_ uint8_t *heap = NULL;
	uint8_t buf[ENTRY_READ];
	size_t budget = CFI_MAX_FDE_INSNS;
	uint64_t loc = 0;
	Section win;
	Cie *cie;

	for (size_t i = 0; i < cies->n; i++)
		if (cies->v[i].offset == off)
			return cies->v[i].bad ? NULL : &cies->v[i];
	if (cies->n == MAX_CIES || GREEDY_REALLOC(cies->v, cies->allocated, cies->n + 1) < 0)
		return NULL;
	cie = &cies->v[cies->n++];
	/* Read from the file: its own entry, whatever the FDE's bytes hold. */
	if (sec->file) {
		entry_load(sec, off, buf, &heap, &win);
		sec = &win;
	}
	if (parse_cie(sec, off, cie) < 0) {
		*cie = (Cie){ .offset = off, .bad = true };
		return NULL;
	}
	cie->initial = (State){ .cfa = CFI_CFA_UNKNOWN, .rbp = CFI_RBP_SAME };
	if (run(cie, sec, cie->insns, cie->insns_end, &loc, &cie->initial, NULL, NULL, &budget) <
	    0) {
		cie->bad = true;
		return NULL;
	}
	cie->initial.signal = cie->signal;
	/* The instructions were in sec, maybe a window gone with this call. */
	cie->insns = cie->insns_end = NULL;
	return cie;
}

static int entry_cmp(const void *a, const void *b)
{
	const Entry *x = a, *y = b;

	if (x->pc != y->pc)
		return x->pc < y->pc ? -1 : 1;
	/* At one pc a real row beats an FDE-end marker: it sorts last and is kept. */
	if (x->unknown_end != y->unknown_end)
		return x->unknown_end ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static bool row_eq(const CfiRow *a, const CfiRow *b)
{
	return a->cfa == b->cfa && a->rbp == b->rbp && a->cfa_offset == b->cfa_offset &&
	       a->rbp_offset == b->rbp_offset;
}

/*
 * Emits the rows of the entry at section offset off (nothing for a CIE or an entry we cannot
 * read; an unknown row over an FDE we cannot follow or that is over a bound, counted in
 * b->refused) and sets *ret_next to the next entry. 0, -ENOMEM, -EFBIG (CFI_MAX_ROWS), or
 * -ENODATA at the end of the section (terminator or a torn entry).
 */
/*
 * The FDE header of the entry at off: its CIE, its range [*ret_pc, *ret_pc + *ret_range) and in
 * *c its instructions. -ENODATA at the end (or a torn section), -ENOENT for a CIE or an FDE
 * that does not parse; *ret_next is the next entry's offset unless -ENODATA.
 */
static int fde_header(const Section *sec, CieSet *cies, size_t off, size_t *ret_next,
		      const Cie **ret_cie, Cursor *c, uint64_t *ret_pc, uint64_t *ret_range)
{
	const uint8_t *start, *end;
	bool term;
	uint64_t id, pc, range;
	const Cie *cie;
	size_t start_off;

	if (!entry_range(sec, off, &start, &end, &term) || term)
		return -ENODATA;
	*ret_next = sec->base + (size_t)(end - sec->data);
	*c = (Cursor){ start, end };
	/* A CIE (id 0) is parsed when an FDE uses it. The CIE pointer counts back from the field
	 * itself. */
	start_off = sec->base + (size_t)(start - sec->data);
	if (!get_uint(c, 4, &id) || id == 0 || id > (uint64_t)start_off)
		return -ENOENT;
	cie = cie_get(cies, sec, start_off - (size_t)id);
	if (!cie || !get_encoded(c, cie->fde_enc, sec, &pc) ||
	    !get_encoded(c, (uint8_t)(cie->fde_enc & EH_PE_FORMAT), sec, &range) || range == 0 ||
	    pc + range < pc)
		return -ENOENT;
	if (cie->has_z) {
		const uint8_t *ignored;
		uint64_t alen;

		if (!get_uleb(c, &alen) || !get_bytes(c, alen, &ignored))
			return -ENOENT;
	}
	*ret_cie = cie;
	*ret_pc = pc;
	*ret_range = range;
	return 0;
}

static int entry_rows(const Section *sec, CieSet *cies, size_t off, Builder *b, size_t *ret_next)
{
	Cursor c;
	uint64_t pc, range;
	const Cie *cie;
	size_t budget = CFI_MAX_FDE_INSNS;
	uint64_t loc;
	State s;
	int r;

	r = fde_header(sec, cies, off, ret_next, &cie, &c, &pc, &range);
	if (r == -ENODATA)
		return r; /* the end, or a torn section: keep what we have */
	if (r < 0)
		return 0;
	/* The CIE's initial instructions gave the state every row starts from. */
	s = cie->initial;
	loc = pc;
	b->fde_start = b->n;
	b->fdes++;
	r = run(cie, sec, c.p, c.end, &loc, &s, &cie->initial, b, &budget);
	if (r == -ENOMEM || r == -EFBIG)
		return r;
	if (r < 0) {
		/* An FDE we cannot follow, or over a bound: none of its rows, so the unwinder
		 * falls back instead of trusting half a program. */
		b->n = b->fde_start;
		b->refused++;
		r = emit(b, pc, NULL, false);
	} else if (loc < pc + range) {
		r = emit(b, loc, &s, false);
	}
	if (r < 0)
		return r;
	return emit(b, pc + range, NULL, true);
}

static void table_done(Table *t)
{
	free(t->pcs);
	free(t->rows);
	*t = (Table){ 0 };
}

static size_t table_bytes(const Table *t)
{
	return t->n * (sizeof(uint64_t) + sizeof(CfiRow));
}

/* Sorts and compacts the rows a builder collected into t (empty when it has none). */
static int table_build(Builder *b, Table *t)
{
	size_t keep = 0;

	*t = (Table){ 0 };
	if (b->n == 0)
		return 0;
	qsort(b->entries, b->n, sizeof(Entry), entry_cmp);
	t->pcs = malloc(b->n * sizeof(uint64_t));
	t->rows = malloc(b->n * sizeof(CfiRow));
	if (!t->pcs || !t->rows) {
		table_done(t);
		return -ENOMEM;
	}
	for (size_t i = 0; i < b->n; i++) {
		/* Of equal pcs the last (a real row over an end marker) wins; equal rows merge. */
		if (i + 1 < b->n && b->entries[i + 1].pc == b->entries[i].pc)
			continue;
		if (keep > 0 && row_eq(&t->rows[keep - 1], &b->entries[i].row))
			continue;
		t->pcs[keep] = b->entries[i].pc;
		t->rows[keep++] = b->entries[i].row;
	}
	t->n = keep;
	return 0;
}

/* The row at vaddr in t: 0, or -ENOENT when no row (or an unknown one) covers it. */
static int table_lookup(const Table *t, uint64_t vaddr, CfiRow *ret)
{
	size_t lo = 0, hi = t->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->pcs[mid] <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0 || t->rows[lo - 1].cfa == CFI_CFA_UNKNOWN)
		return -ENOENT;
	*ret = t->rows[lo - 1];
	return 0;
}

/* Eager: every FDE of the section, for binaries without an .eh_frame_hdr index. Past
 * CFI_MAX_ROWS the rows so far are kept. */
static int compile(const Section *sec, Cfi **ret)
{
	CieSet cies = { 0 };
	Builder b = { 0 };
	size_t off = 0, next;
	Cfi *cfi;
	int r = 0;

	/* Each entry moves off forward by its length (at least 4): bounded by the size. */
	while (off + 4 <= sec->size) {
		r = entry_rows(sec, &cies, off, &b, &next);
		if (r < 0)
			break;
		off = next;
	}
	if (r == -ENOMEM)
		goto out;
	if (b.n == 0) {
		r = -ENOENT;
		goto out;
	}
	cfi = calloc(1, sizeof(*cfi));
	if (!cfi) {
		r = -ENOMEM;
		goto out;
	}
	cfi->file.fd = -1;
	r = table_build(&b, &cfi->all);
	if (r < 0) {
		free(cfi);
		goto out;
	}
	cfi->decoded_fdes = b.fdes;
	cfi->decoded_rows = b.n;
	cfi->refused_fdes = b.refused;
	*ret = cfi;
out:
	free(b.entries);
	free(cies.v);
	return r;
}

Cfi *cfi_free(Cfi *c)
{
	if (!c)
		return NULL;
	table_done(&c->all);
	for (size_t i = 0; c->cache && i < c->allocated_cache; i++)
		table_done(&c->cache[i].t);
	free(c->cache);
	hash_index_free(c->cache_index);
	/* Only a lazy table without a copy has a descriptor (calloc left 0 in the others). */
	if (c->lazy && !c->data && c->file.fd >= 0)
		close(c->file.fd);
	free(c->data);
	free(c->fde_pcs);
	free(c->fde_offs);
	free(c->cies.v);
	free(c);
	return NULL;
}

int cfi_load_eh_frame(const uint8_t *data, size_t size, uint64_t section_vaddr, Cfi **ret)
{
	Section sec = { .data = data, .size = size, .vaddr = section_vaddr };

	if (size > CFI_MAX_SECTION)
		return -EFBIG;
	return compile(&sec, ret);
}

/*
 * Lazy: keeps the sorted FDE table of .eh_frame_hdr (initial address, FDE offset) and decodes
 * an FDE when a lookup first falls in it, from .eh_frame: *data (taken on success) if not NULL,
 * else read an entry at a time from the file at file_off (a descriptor of our own to it).
 * -EOPNOTSUPP for an index we do not read (an encoding other than the datarel|sdata4 every GNU
 * linker writes, or unsorted).
 */
static int indexed_new(uint8_t **data, const Image *file, uint64_t file_off, size_t size,
		       uint64_t section_vaddr, const uint8_t *hdr, size_t hdr_size,
		       uint64_t hdr_vaddr, Cfi **ret)
{
	_cleanup_(cfi_freep) Cfi *cfi = NULL;
	Section hsec = { .data = hdr, .size = hdr_size, .vaddr = hdr_vaddr };
	Cursor c = { hdr, hdr + hdr_size };
	uint8_t version, ptr_enc, count_enc, table_enc;
	uint64_t eh_ptr, count;
	int r;

	if (size > CFI_MAX_SECTION || hdr_size > CFI_MAX_SECTION)
		return -EFBIG;
	if (!get_u8(&c, &version) || !get_u8(&c, &ptr_enc) || !get_u8(&c, &count_enc) ||
	    !get_u8(&c, &table_enc) || version != 1)
		return -EOPNOTSUPP;
	if (!get_encoded(&c, ptr_enc, &hsec, &eh_ptr) || eh_ptr != section_vaddr ||
	    !get_encoded(&c, count_enc, &hsec, &count))
		return -EOPNOTSUPP;
	/* Relative to the start of .eh_frame_hdr. */
	if (table_enc != (DW_EH_PE_datarel | DW_EH_PE_sdata4) || count == 0 ||
	    count > (uint64_t)(c.end - c.p) / 8)
		return -EOPNOTSUPP;
	if (count > CFI_MAX_FDES)
		return -EFBIG;
	cfi = calloc(1, sizeof(*cfi));
	if (!cfi)
		return -ENOMEM;
	cfi->lazy = true;
	cfi->file.fd = -1;
	cfi->fde_pcs = malloc(count * sizeof(uint64_t));
	cfi->fde_offs = malloc(count * sizeof(uint32_t));
	cfi->lru_head = cfi->lru_tail = cfi->free_head = NO_SLOT;
	if (!cfi->fde_pcs || !cfi->fde_offs)
		return -ENOMEM;
	r = hash_index_new(&cfi->cache_index);
	if (r < 0)
		return r;
	for (size_t i = 0; i < count; i++) {
		uint64_t pc = 0, fde = 0;

		/* Bounded by the count check above: these reads cannot fail. */
		if (!get_uint(&c, 4, &pc) || !get_uint(&c, 4, &fde))
			return -EOPNOTSUPP;
		pc = hdr_vaddr + (uint64_t)(int64_t)(int32_t)pc;
		fde = hdr_vaddr + (uint64_t)(int64_t)(int32_t)fde;
		if (fde < section_vaddr || fde - section_vaddr >= size ||
		    (i > 0 && pc < cfi->fde_pcs[i - 1]))
			return -EOPNOTSUPP;
		cfi->fde_pcs[i] = pc;
		cfi->fde_offs[i] = (uint32_t)(fde - section_vaddr);
	}
	cfi->n_fdes = count;
	if (data && *data) {
		cfi->data = TAKE_PTR(*data);
	} else {
		cfi->file = (Image){ .fd = fcntl(file->fd, F_DUPFD_CLOEXEC, 3),
				     .size = file->size };
		if (cfi->file.fd < 0)
			return negative_errno();
		cfi->file_off = file_off;
	}
	cfi->size = size;
	cfi->vaddr = section_vaddr;
	*ret = TAKE_PTR(cfi);
	return 0;
}

int cfi_load_indexed(const uint8_t *data, size_t size, uint64_t section_vaddr, const uint8_t *hdr,
		     size_t hdr_size, uint64_t hdr_vaddr, Cfi **ret)
{
	_cleanup_free_ uint8_t *copy = NULL;

	if (size > CFI_MAX_SECTION || hdr_size > CFI_MAX_SECTION)
		return -EFBIG;
	copy = malloc(MAX(size, (size_t)1));
	if (!copy)
		return -ENOMEM;
	if (size > 0)
		memcpy(copy, data, size);
	return indexed_new(&copy, NULL, 0, size, section_vaddr, hdr, hdr_size, hdr_vaddr, ret);
}

static bool cached_eq(uint32_t idx, const void *key, void *userdata)
{
	const CachedFde *slot = &((const Cfi *)userdata)->cache[idx];

	return slot->used && slot->off == *(const uint32_t *)key;
}

static uint64_t fde_hash(uint32_t off)
{
	return (uint64_t)off * 0x9E3779B97F4A7C15ULL;
}

static void lru_unlink(Cfi *c, uint32_t k)
{
	CachedFde *e = &c->cache[k];

	if (e->prev != NO_SLOT)
		c->cache[e->prev].next = e->next;
	else
		c->lru_head = e->next;
	if (e->next != NO_SLOT)
		c->cache[e->next].prev = e->prev;
	else
		c->lru_tail = e->prev;
}

static void lru_push_front(Cfi *c, uint32_t k)
{
	CachedFde *e = &c->cache[k];

	e->prev = NO_SLOT;
	e->next = c->lru_head;
	if (c->lru_head != NO_SLOT)
		c->cache[c->lru_head].prev = k;
	c->lru_head = k;
	if (c->lru_tail == NO_SLOT)
		c->lru_tail = k;
}

static void cache_evict_lru(Cfi *c)
{
	uint32_t victim = c->lru_tail;

	if (victim == NO_SLOT)
		return;
	lru_unlink(c, victim);
	(void)hash_index_remove(c->cache_index, fde_hash(c->cache[victim].off), victim);
	c->cache_bytes -= table_bytes(&c->cache[victim].t);
	table_done(&c->cache[victim].t);
	c->cache[victim].used = false;
	c->cache[victim].next = c->free_head;
	c->free_head = victim;
	c->n_cache--;
}

/* A free slot: from the free list, or a new one while fewer than CACHE_FDES exist. */
static uint32_t cache_slot(Cfi *c)
{
	uint32_t k = c->free_head;

	if (k != NO_SLOT) {
		c->free_head = c->cache[k].next;
		return k;
	}
	if (c->allocated_cache >= CACHE_FDES)
		return NO_SLOT;
	if (c->allocated_cache % 64 == 0) {
		CachedFde *n = reallocarray(c->cache, c->allocated_cache + 64, sizeof(CachedFde));

		if (!n)
			return NO_SLOT;
		c->cache = n;
	}
	c->cache[c->allocated_cache] = (CachedFde){ 0 };
	return (uint32_t)c->allocated_cache++;
}

/* The bytes of a lazy table's entry at off: its copy of the section, or the entry read from the
 * file into buf or *heap (entry_load()). */
static void lazy_section(const Cfi *c, size_t off, uint8_t *buf, uint8_t **heap, Section *ret)
{
	Section file = {
		.vaddr = c->vaddr, .file = &c->file, .file_off = c->file_off, .total = c->size
	};

	if (c->data)
		*ret = (Section){ .data = c->data, .size = c->size, .vaddr = c->vaddr };
	else
		entry_load(&file, off, buf, heap, ret);
}

/*
 * The decoded rows of FDE i: from the cache (by FDE offset, so index entries naming one FDE share
 * it), or decoded now and cached, evicting the least recently used until CACHE_FDES slots and
 * CFI_MAX_CACHE_BYTES hold. An FDE we cannot follow is cached as an empty table: decoded once.
 */
static const Table *fde_table(Cfi *c, uint32_t i)
{
	_cleanup_free_ uint8_t *heap = NULL;
	uint8_t buf[ENTRY_READ];
	Section sec;
	uint32_t off = c->fde_offs[i], idx, k;
	Builder b = { 0 };
	CachedFde *slot;
	size_t next, bytes;
	Table t;
	int r;

	if (hash_index_find(c->cache_index, fde_hash(off), cached_eq, &off, c, &idx) == 0) {
		if (c->lru_head != idx) {
			lru_unlink(c, idx);
			lru_push_front(c, idx);
		}
		return &c->cache[idx].t;
	}
	lazy_section(c, off, buf, &heap, &sec);
	r = entry_rows(&sec, &c->cies, off, &b, &next);
	c->decoded_fdes++;
	c->decoded_rows += b.n;
	c->refused_fdes += b.refused;
	/* Not kept: a failed allocation may pass. Anything else (rows, or none) is. */
	if (r == -ENOMEM || table_build(&b, &t) < 0) {
		free(b.entries);
		return NULL;
	}
	free(b.entries);
	bytes = table_bytes(&t);
	/* One FDE's rows (CFI_MAX_FDE_ROWS) fit in CFI_MAX_CACHE_BYTES: this ends. */
	while (c->n_cache > 0 &&
	       (c->n_cache == CACHE_FDES || c->cache_bytes + bytes > CFI_MAX_CACHE_BYTES))
		cache_evict_lru(c);
	k = cache_slot(c);
	if (k == NO_SLOT) { /* out of memory: eviction leaves a slot otherwise */
		table_done(&t);
		return NULL;
	}
	slot = &c->cache[k];
	*slot = (CachedFde){ .off = off, .used = true, .t = t };
	if (hash_index_insert(c->cache_index, fde_hash(off), k) < 0) {
		table_done(&slot->t);
		slot->used = false;
		slot->next = c->free_head;
		c->free_head = k;
		return NULL;
	}
	lru_push_front(c, k);
	c->n_cache++;
	c->cache_bytes += bytes;
	return &slot->t;
}

static void elf_endp(Elf **e)
{
	if (*e)
		elf_end(*e);
}

/* A section header's bytes in the file: 0, -EFBIG over max, -EBADMSG past the file's end. */
static int section_check(const GElf_Shdr *sh, const Image *im, uint64_t max)
{
	if (sh->sh_size > max)
		return -EFBIG;
	if (sh->sh_offset > im->size || sh->sh_size > im->size - sh->sh_offset)
		return -EBADMSG;
	return 0;
}

/*
 * The header of the section named want, its bytes checked to be in the file: -ENOENT when absent
 * or without bytes in the file (SHT_NOBITS, compressed), -EFBIG over CFI_MAX_SECTION, -EBADMSG
 * past the end of the file.
 */
static int section_find(Elf *elf, size_t shstrndx, const char *want, const Image *im,
			GElf_Shdr *ret)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(elf, scn))) {
		const char *name;

		if (!gelf_getshdr(scn, ret) || ret->sh_type == SHT_NOBITS ||
		    (ret->sh_flags & SHF_COMPRESSED))
			continue;
		name = elf_strptr(elf, shstrndx, ret->sh_name);
		if (name && streq(name, want))
			return section_check(ret, im, CFI_MAX_SECTION);
	}
	return -ENOENT;
}

/* The bytes of a section section_find() gave, into a buffer of our own (no bytes are taken
 * from libelf, which would allocate whatever the header claims). */
static int section_copy(const GElf_Shdr *sh, const Image *im, uint8_t **ret)
{
	_cleanup_free_ uint8_t *data = malloc(MAX((size_t)sh->sh_size, (size_t)1));
	int r;

	if (!data)
		return -ENOMEM;
	r = image_read(im, sh->sh_offset, (size_t)sh->sh_size, data);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(data);
	return 0;
}

static int load_elf(Elf *elf, const Image *im, Cfi **ret)
{
	_cleanup_free_ uint8_t *eh = NULL, *hdr = NULL;
	size_t shstrndx, shnum;
	GElf_Shdr strsh, eh_sh, hdr_sh;
	Elf_Scn *scn;
	int r;

	if (elf_kind(elf) != ELF_K_ELF || elf_getshdrstrndx(elf, &shstrndx) < 0 ||
	    elf_getshdrnum(elf, &shnum) < 0)
		return -ENOEXEC;
	/* libelf reads the section headers and the name table whole, as big as they claim. */
	if (shnum > MAX_SECTIONS)
		return -EFBIG;
	scn = elf_getscn(elf, shstrndx);
	if (!scn || !gelf_getshdr(scn, &strsh))
		return -ENOEXEC;
	r = section_check(&strsh, im, MAX_SHSTRTAB);
	if (r < 0)
		return r;
	r = section_find(elf, shstrndx, ".eh_frame", im, &eh_sh);
	if (r < 0)
		return r;
	/* With the linker's index, FDEs are decoded as lookups need them, read from the file
	 * then (an image in memory: from a copy); else all up front. */
	if (section_find(elf, shstrndx, ".eh_frame_hdr", im, &hdr_sh) == 0 &&
	    section_copy(&hdr_sh, im, &hdr) == 0) {
		if (im->mem) {
			r = section_copy(&eh_sh, im, &eh);
			if (r < 0)
				return r;
		}
		r = indexed_new(&eh, im, eh_sh.sh_offset, (size_t)eh_sh.sh_size, eh_sh.sh_addr, hdr,
				(size_t)hdr_sh.sh_size, hdr_sh.sh_addr, ret);
		if (r != -EOPNOTSUPP)
			return r;
	}
	if (!eh) {
		r = section_copy(&eh_sh, im, &eh);
		if (r < 0)
			return r;
	}
	return cfi_load_eh_frame(eh, (size_t)eh_sh.sh_size, eh_sh.sh_addr, ret);
}

int cfi_load_fd(int fd, Cfi **ret)
{
	_cleanup_(elf_endp) Elf *elf = NULL;
	struct stat st;

	if (elf_version(EV_CURRENT) == EV_NONE)
		return -ENOTSUP;
	if (fstat(fd, &st) < 0)
		return negative_errno();
	/* Not ELF_C_READ_MMAP: a file truncated under a mapping would raise SIGBUS. */
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (!elf)
		return -ENOEXEC;
	return load_elf(elf, &(Image){ .fd = fd, .size = (uint64_t)st.st_size }, ret);
}

int cfi_load_memory(const void *image, size_t size, Cfi **ret)
{
	_cleanup_(elf_endp) Elf *elf = NULL;
	_cleanup_free_ char *copy = malloc(MAX(size, (size_t)1));

	if (elf_version(EV_CURRENT) == EV_NONE)
		return -ENOTSUP;
	if (!copy)
		return -ENOMEM;
	memcpy(copy, image, size);
	elf = elf_memory(copy, size);
	if (!elf)
		return -ENOEXEC;
	return load_elf(elf, &(Image){ .fd = -1, .mem = (const uint8_t *)copy, .size = size }, ret);
}

/* Lazy: one past the index of the last FDE starting at or below vaddr (0: none). */
static size_t fde_after(const Cfi *c, uint64_t vaddr)
{
	size_t lo = 0, hi = c->n_fdes;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->fde_pcs[mid] <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int cfi_lookup(Cfi *c, uint64_t vaddr, CfiRow *ret)
{
	const Table *t;
	size_t k;

	if (!c->lazy)
		return table_lookup(&c->all, vaddr, ret);
	/* The last FDE starting at or below vaddr; its table says whether it covers vaddr. */
	k = fde_after(c, vaddr);
	if (k == 0)
		return -ENOENT;
	t = fde_table(c, (uint32_t)(k - 1));
	return t ? table_lookup(t, vaddr, ret) : -ENOENT;
}

int cfi_function_start(Cfi *c, uint64_t vaddr, uint64_t *ret)
{
	_cleanup_free_ uint8_t *heap = NULL;
	uint8_t buf[ENTRY_READ];
	Section sec;
	uint64_t pc, range;
	size_t k, next;
	const Cie *cie;
	Cursor insns;
	int r;

	if (!c->lazy)
		return -EOPNOTSUPP;
	k = fde_after(c, vaddr);
	if (k == 0)
		return -ENOENT;
	/* Its header says how far it reaches (the index has only its start). */
	lazy_section(c, c->fde_offs[k - 1], buf, &heap, &sec);
	r = fde_header(&sec, &c->cies, c->fde_offs[k - 1], &next, &cie, &insns, &pc, &range);
	if (r < 0 || vaddr < pc || vaddr - pc >= range)
		return -ENOENT;
	*ret = pc;
	return 0;
}

size_t cfi_rows(const Cfi *c)
{
	return c->lazy ? c->n_fdes : c->all.n;
}

size_t cfi_memory(const Cfi *c)
{
	size_t m = sizeof(*c) + table_bytes(&c->all);

	if (c->lazy)
		m += (c->data ? c->size : 0) + c->n_fdes * (sizeof(uint64_t) + sizeof(uint32_t)) +
		     c->cies.allocated * sizeof(Cie) +
		     (c->allocated_cache + 63) / 64 * 64 * sizeof(CachedFde) + c->cache_bytes +
		     hash_index_memory(c->cache_index);
	return m;
}

void cfi_stats(const Cfi *c, CfiStats *ret)
{
	*ret = (CfiStats){
		.decoded_fdes = c->decoded_fdes,
		.decoded_rows = c->decoded_rows,
		.refused_fdes = c->refused_fdes,
		.cached_fdes = c->n_cache,
		.cache_bytes = c->cache_bytes,
		.section_bytes = c->data ? c->size : 0,
	};
}
