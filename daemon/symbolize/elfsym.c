/* SPDX-License-Identifier: MIT */
#include <byteswap.h>
#include <endian.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/macro.h"
#include "symbolize/elfsym.h"

/* A kept function: 16 bytes, as a big C++ binary has 150 000 of them. */
typedef struct Sym {
	uint64_t addr;
	uint32_t size; /* 0: extends to the next symbol */
	uint32_t name; /* NAME_SOURCE bit: which names; the rest: offset into them */
} Sym;

#define NAME_SOURCE (1u << 31)
#define NAME_OFFSET_MAX (NAME_SOURCE - 1)
/* Longer names are cut (C++ names of several KiB exist; such a name is noise in a report). */
#define NAME_MAX_LEN 4095
/* Tables read into memory while loading (libelf reads a section whole): a symbol table past
 * this (1.4M entries) is not read; real ones are a few MiB. Note sections past NOTE_MAX_SIZE
 * are not looked into for the build id. */
#define TABLE_MAX_SIZE (32u << 20)
#define NOTE_MAX_SIZE (64u << 10)

/*
 * Where the names of one symbol table are: read from the file at each lookup (the symbolizer
 * caches what it looks up), so the tables of a big binary (8 MiB of names in node) do not stay
 * in memory; or, for an image in memory, a copy.
 */
typedef struct Names {
	int fd;		 /* -1: the names are in copy */
	uint64_t offset; /* of the string table in the file */
	uint32_t size;	 /* of the string table */
	char *copy;
} Names;

/* Before finish(): with the binding, to pick among symbols at one address. */
typedef struct RawSym {
	uint64_t addr, size;
	uint64_t limit; /* the end of its section (0: unknown): an unsized symbol stops there */
	uint32_t name;
	bool global;
} RawSym;

/*
 * The PLT stubs, n of entsize bytes from addr, named after the symbols of the relocations they
 * jump through (.rela.plt, in order), "NAME@plt" as perf, gdb and objdump show them; and the
 * PLT's header (the lazy binder's entry, header_size bytes from header_addr), ".plt" as perf
 * shows it.
 */
typedef struct Plt {
	uint64_t addr, header_addr;
	uint32_t entsize, n, header_size;
	uint32_t *names; /* per stub: offset into the dynamic string table, 0 if none */
	Names strings;
} Plt;

typedef struct Segment {
	uint64_t offset, filesz, vaddr;
} Segment;

struct ElfSym {
	Sym *syms;
	size_t n_syms;
	Names names[2]; /* the binary's; a separate debug file's (elfsym_add_symbols) */
	char *name_buf; /* the last name looked up */
	size_t name_buf_size;
	Segment *segs;
	size_t n_segs;
	uint8_t build_id[ELFSYM_BUILD_ID_MAX];
	size_t build_id_len;
	bool has_symtab; /* a full .symtab, not only .dynsym */
	Plt plt;
};

static void names_done(Names *n)
{
	if (n->fd >= 0)
		close(n->fd);
	free(n->copy);
	*n = (Names){ .fd = -1 };
}

ElfSym *elfsym_free(ElfSym *e)
{
	if (!e)
		return NULL;
	free(e->syms);
	names_done(&e->names[0]);
	names_done(&e->names[1]);
	names_done(&e->plt.strings);
	free(e->plt.names);
	free(e->name_buf);
	free(e->segs);
	free(e);
	return NULL;
}

static void elf_endp(Elf **elf)
{
	if (*elf)
		elf_end(*elf);
}

typedef struct Builder {
	RawSym *syms;
	size_t n, allocated;
	int fd; /* the file the names can be read from at lookup, -1 if none */
	/* The string table the names point into: in the file (str_buf NULL: not read now, see
	 * names_set()) or in memory. */
	const void *str_buf;
	uint64_t str_size;
	GElf_Shdr strtab_sh;
} Builder;

/*
 * The string table of section index idx into b: only its size when names can be read from the
 * file at lookup (no copy of a table of many MiB made now), else its data. false if it is not a
 * usable string table.
 */
static bool builder_strtab(Elf *elf, size_t idx, Builder *b)
{
	Elf_Scn *scn = elf_getscn(elf, idx);
	Elf_Data *data;
	GElf_Shdr sh;

	if (!scn || !gelf_getshdr(scn, &sh) || sh.sh_type != SHT_STRTAB || sh.sh_size == 0 ||
	    sh.sh_size > NAME_OFFSET_MAX)
		return false;
	b->strtab_sh = sh;
	if (b->fd >= 0 && !(sh.sh_flags & SHF_COMPRESSED)) {
		struct stat st;

		/* Read at lookup, not now: it must lie within the file (libelf checks only what it
		 * reads). */
		if (fstat(b->fd, &st) < 0 || sh.sh_offset > (uint64_t)st.st_size ||
		    sh.sh_size > (uint64_t)st.st_size - sh.sh_offset)
			return false;
		b->str_buf = NULL;
		b->str_size = sh.sh_size;
		return true;
	}
	data = elf_getdata(scn, NULL);
	if (!data || !data->d_buf || data->d_size == 0 || data->d_size > NAME_OFFSET_MAX)
		return false;
	b->str_buf = data->d_buf;
	b->str_size = data->d_size;
	return true;
}

/*
 * The end of the section holding sym, 0 if unknown. An unsized symbol (_init, hand-written
 * assembly) extends to the next symbol, but not past its section: the PLT after .init is not
 * _init.
 */
static uint64_t section_end(Elf *elf, const GElf_Sym *sym)
{
	Elf_Scn *scn;
	GElf_Shdr sh;

	if (sym->st_shndx == SHN_UNDEF || sym->st_shndx >= SHN_LORESERVE)
		return 0;
	scn = elf_getscn(elf, sym->st_shndx);
	if (!scn || !gelf_getshdr(scn, &sh) || !(sh.sh_flags & SHF_ALLOC) ||
	    sym->st_value < sh.sh_addr || sh.sh_size > UINT64_MAX - sh.sh_addr ||
	    sym->st_value >= sh.sh_addr + sh.sh_size)
		return 0;
	return sh.sh_addr + sh.sh_size;
}

/*
 * Reads the defined functions of one symbol table. Their names are offsets into its string
 * table (b->strtab; each checked to be in bounds and terminated).
 */
static int read_symtab(Elf *elf, Elf_Scn *scn, const GElf_Shdr *sh, Builder *b)
{
	Elf_Data *data;
	size_t n;

	if (sh->sh_entsize == 0 || sh->sh_type == SHT_NOBITS || sh->sh_size > TABLE_MAX_SIZE)
		return 0; /* no table, or more than any binary has: not read into memory */
	/* The string table must exist and be one. */
	if (!builder_strtab(elf, sh->sh_link, b))
		return 0;
	data = elf_getdata(scn, NULL);
	if (!data)
		return 0;
	n = data->d_size / sh->sh_entsize;
	/* A name is not looked for its end here: that costs the rest of the table per symbol (a
	 * table without NULs, quadratic). name_read() stops at the table's end and at NAME_MAX_LEN,
	 * and a copy of the table ends in a NUL of its own. */
	for (size_t i = 0; i < n; i++) {
		GElf_Sym sym;
		int type;

		if (!gelf_getsym(data, (int)i, &sym))
			break;
		type = GELF_ST_TYPE(sym.st_info);
		if ((type != STT_FUNC && type != STT_GNU_IFUNC) || sym.st_shndx == SHN_UNDEF ||
		    sym.st_value == 0 || sym.st_name == 0 || sym.st_name >= b->str_size)
			continue;
		if (b->n >= ELFSYM_MAX_SYMBOLS)
			return -E2BIG;
		if (GREEDY_REALLOC(b->syms, b->allocated, b->n + 1) < 0)
			return -ENOMEM;
		b->syms[b->n++] = (RawSym){ .addr = sym.st_value,
					    .size = sym.st_size,
					    .limit = sym.st_size ? 0 : section_end(elf, &sym),
					    .name = (uint32_t)sym.st_name,
					    .global = GELF_ST_BIND(sym.st_info) != STB_LOCAL };
	}
	return 0;
}

static void read_build_id(Elf *elf, ElfSym *e)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(elf, scn))) {
		Elf_Data *data;
		GElf_Shdr sh;
		GElf_Nhdr nh;
		size_t off = 0, name_off, desc_off;

		/* A note section is small: a huge one is not read into memory. */
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE || sh.sh_size > NOTE_MAX_SIZE)
			continue;
		data = elf_getdata(scn, NULL);
		if (!data)
			continue;
		while ((off = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
			if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
			    memcmp((const char *)data->d_buf + name_off, "GNU", 4) == 0 &&
			    nh.n_descsz > 0 && nh.n_descsz <= ELFSYM_BUILD_ID_MAX) {
				memcpy(e->build_id, (const char *)data->d_buf + desc_off,
				       nh.n_descsz);
				e->build_id_len = nh.n_descsz;
				return;
			}
		}
	}
}

static int read_segments(Elf *elf, ElfSym *e)
{
	size_t n, allocated = 0;

	if (elf_getphdrnum(elf, &n) < 0)
		return -ENOEXEC;
	for (size_t i = 0; i < n && i < 4096; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph))
			return -ENOEXEC;
		if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_X))
			continue;
		if (GREEDY_REALLOC(e->segs, allocated, e->n_segs + 1) < 0)
			return -ENOMEM;
		e->segs[e->n_segs++] = (Segment){ .offset = ph.p_offset,
						  .filesz = ph.p_filesz,
						  .vaddr = ph.p_vaddr };
	}
	return 0;
}

static int sym_cmp(const void *a, const void *b)
{
	const RawSym *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	/* Among symbols at one address, the preferred one first: global, then sized. */
	if (x->global != y->global)
		return x->global ? -1 : 1;
	if ((x->size != 0) != (y->size != 0))
		return x->size ? -1 : 1;
	return x->name < y->name ? -1 : x->name > y->name;
}

/*
 * Sorts the symbols, keeps the preferred one of each address, and merges them with those e
 * has (whose names are of the other source). The names of raw are of source src.
 */
static int finish(ElfSym *e, RawSym *raw, size_t n, uint32_t src)
{
	size_t keep = 0, i = 0, j = 0, k = 0;
	Sym *syms;

	if (n > 1)
		qsort(raw, n, sizeof(RawSym), sym_cmp);
	for (size_t x = 0; x < n; x++)
		if (keep == 0 || raw[keep - 1].addr != raw[x].addr)
			raw[keep++] = raw[x];
	syms = malloc(MAX(e->n_syms + keep, (size_t)1) * sizeof(Sym));
	if (!syms)
		return -ENOMEM;
	/* Merge by address; at an address both have, the one e has (the binary's own) wins. */
	while (i < e->n_syms || j < keep) {
		if (j == keep || (i < e->n_syms && e->syms[i].addr <= raw[j].addr)) {
			if (j < keep && e->syms[i].addr == raw[j].addr)
				j++;
			syms[k++] = e->syms[i++];
		} else {
			uint64_t size = raw[j].size
						?: (raw[j].limit ? raw[j].limit - raw[j].addr : 0);

			syms[k++] = (Sym){ .addr = raw[j].addr,
					   .size = (uint32_t)MIN(size, (uint64_t)UINT32_MAX),
					   .name = raw[j].name | src };
			j++;
		}
	}
	free(e->syms);
	if (k == 0) {
		free(syms);
		syms = NULL;
	} else {
		syms = realloc(syms, k * sizeof(Sym)) ?: syms;
	}
	e->syms = syms;
	e->n_syms = k;
	return 0;
}

/*
 * Where the names of b's table are: in the file open at fd (kept, duplicated) when the string
 * table is stored there as is; else (an image in memory, a compressed table) a copy.
 */
static int names_set(Names *names, const Builder *b, int fd)
{
	const GElf_Shdr *sh = &b->strtab_sh;

	if (!b->str_buf) {
		if (fd < 0 || sh->sh_offset > UINT64_MAX - sh->sh_size)
			return -EBADMSG;
		names->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		if (names->fd < 0)
			return negative_errno();
		names->offset = sh->sh_offset;
		names->size = (uint32_t)b->str_size;
		return 0;
	}
	/* One byte more, a NUL: the last name ends within the copy. */
	names->copy = malloc(b->str_size + 1);
	if (!names->copy)
		return -ENOMEM;
	memcpy(names->copy, b->str_buf, b->str_size);
	names->copy[b->str_size] = 0;
	names->size = (uint32_t)b->str_size;
	return 0;
}

/* The section named name of type type, NULL if none. */
static Elf_Scn *section_by_name(Elf *elf, size_t shstrndx, const char *name, GElf_Word type,
				GElf_Shdr *ret_sh)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(elf, scn))) {
		const char *n;

		if (!gelf_getshdr(scn, ret_sh) || ret_sh->sh_type != type)
			continue;
		n = elf_strptr(elf, shstrndx, ret_sh->sh_name);
		if (n && streq(n, name))
			return scn;
	}
	return NULL;
}

/*
 * Names the PLT stubs (see Plt) when their layout is the one the linkers write: x86-64 and
 * i386, 16-byte stubs in .plt.sec (IBT) or after a 16-byte header in .plt (with IBT, .plt holds
 * the header and one lazy-binding stub per relocation); AArch64, 16-byte stubs after a 32-byte
 * header. Anything else (another layout, sizes that do not add up) is left unnamed: a wrong
 * name is worse than none.
 */
static int read_plt(Elf *elf, int fd, ElfSym *e)
{
	Elf_Scn *rel, *plt, *lazy, *dynsym;
	GElf_Shdr rel_sh, plt_sh, lazy_sh, dynsym_sh;
	Elf_Data *rel_data, *sym_data;
	uint64_t header, lazy_header, entsize = 16; /* header: the stubs' offset in their section */
	_cleanup_free_ uint32_t *names = NULL;
	Builder b = { 0 };
	GElf_Ehdr eh;
	size_t shstrndx, n;
	bool rela = true;
	int r;

	if (!gelf_getehdr(elf, &eh) || elf_getshdrstrndx(elf, &shstrndx) < 0)
		return 0;
	if (eh.e_machine == EM_X86_64 || eh.e_machine == EM_386)
		lazy_header = 16;
	else if (eh.e_machine == EM_AARCH64)
		lazy_header = 32;
	else
		return 0;
	rel = section_by_name(elf, shstrndx, ".rela.plt", SHT_RELA, &rel_sh);
	if (!rel) {
		rel = section_by_name(elf, shstrndx, ".rel.plt", SHT_REL, &rel_sh);
		rela = false;
	}
	if (!rel || rel_sh.sh_entsize == 0)
		return 0;
	n = rel_sh.sh_size / rel_sh.sh_entsize;
	if (n == 0 || n > ELFSYM_MAX_SYMBOLS)
		return 0;
	lazy = section_by_name(elf, shstrndx, ".plt", SHT_PROGBITS, &lazy_sh);
	plt = section_by_name(elf, shstrndx, ".plt.sec", SHT_PROGBITS, &plt_sh);
	if (plt && eh.e_machine != EM_AARCH64) {
		if (!lazy || lazy_sh.sh_size != lazy_header + n * entsize)
			lazy = NULL; /* not the layout above: the header is not named */
		header = 0;
	} else {
		plt = lazy;
		plt_sh = lazy_sh;
		header = lazy_header;
	}
	if (!plt || plt_sh.sh_size != header + n * entsize || plt_sh.sh_addr > UINT64_MAX - header)
		return 0;
	/* The relocations' symbols and their names. */
	dynsym = elf_getscn(elf, rel_sh.sh_link);
	if (!dynsym || !gelf_getshdr(dynsym, &dynsym_sh) || dynsym_sh.sh_type != SHT_DYNSYM)
		return 0;
	b.fd = fd;
	if (!builder_strtab(elf, dynsym_sh.sh_link, &b) || dynsym_sh.sh_entsize == 0 ||
	    dynsym_sh.sh_size > TABLE_MAX_SIZE || rel_sh.sh_size > TABLE_MAX_SIZE)
		return 0;
	rel_data = elf_getdata(rel, NULL);
	sym_data = elf_getdata(dynsym, NULL);
	if (!rel_data || !sym_data)
		return 0;
	names = calloc(n, sizeof(uint32_t));
	if (!names)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		uint64_t info;
		GElf_Rela ra;
		GElf_Rel rl;
		GElf_Sym sym;

		if (rela ? !gelf_getrela(rel_data, (int)i, &ra)
			 : !gelf_getrel(rel_data, (int)i, &rl))
			return 0;
		info = rela ? ra.r_info : rl.r_info;
		/* No symbol (an IRELATIVE to a local ifunc): the stub stays unnamed. */
		if (GELF_R_SYM(info) == 0 || !gelf_getsym(sym_data, (int)GELF_R_SYM(info), &sym) ||
		    sym.st_name == 0 || sym.st_name >= b.str_size)
			continue;
		names[i] = (uint32_t)sym.st_name;
	}
	r = names_set(&e->plt.strings, &b, fd);
	if (r < 0)
		return r;
	e->plt.addr = plt_sh.sh_addr + header;
	e->plt.entsize = (uint32_t)entsize;
	e->plt.n = (uint32_t)n;
	e->plt.names = TAKE_PTR(names);
	if (lazy) {
		e->plt.header_addr = lazy_sh.sh_addr;
		e->plt.header_size = (uint32_t)lazy_header;
	}
	return 0;
}

/* ---- headers, checked before libelf allocates anything for them ---- */

typedef struct Reader {
	int fd;
	uint64_t size;
	bool is64, swap;
} Reader;

/* Reads exactly len bytes at off, which must lie within the file. */
static int read_at(const Reader *rd, uint64_t off, void *buf, size_t len)
{
	ssize_t n;

	if (off > rd->size || len > rd->size - off)
		return -ENOEXEC;
	n = pread(rd->fd, buf, len, (off_t)off);
	if (n < 0)
		return negative_errno();
	return (size_t)n == len ? 0 : -ENOEXEC; /* the file shrank */
}

static uint16_t u16(const Reader *rd, const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return rd->swap ? bswap_16(v) : v;
}

static uint32_t u32(const Reader *rd, const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return rd->swap ? bswap_32(v) : v;
}

static uint64_t u64(const Reader *rd, const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return rd->swap ? bswap_64(v) : v;
}

/* A word of the file's class: 8 bytes in ELF64, 4 in ELF32. */
static uint64_t uword(const Reader *rd, const uint8_t *p)
{
	return rd->is64 ? u64(rd, p) : u32(rd, p);
}

/* The section header fields that matter here. */
typedef struct RawShdr {
	uint32_t name, type;
	uint64_t flags, offset, size;
	uint32_t link, info;
} RawShdr;

static RawShdr raw_shdr(const Reader *rd, const uint8_t *p)
{
	if (rd->is64)
		return (RawShdr){ .name = u32(rd, p),
				  .type = u32(rd, p + 4),
				  .flags = u64(rd, p + 8),
				  .offset = u64(rd, p + 24),
				  .size = u64(rd, p + 32),
				  .link = u32(rd, p + 40),
				  .info = u32(rd, p + 44) };
	return (RawShdr){ .name = u32(rd, p),
			  .type = u32(rd, p + 4),
			  .flags = u32(rd, p + 8),
			  .offset = u32(rd, p + 16),
			  .size = u32(rd, p + 20),
			  .link = u32(rd, p + 24),
			  .info = u32(rd, p + 28) };
}

/* Does a table of n entries of entsize bytes at off fit in the file? */
static bool table_fits(const Reader *rd, uint64_t off, uint64_t n, uint64_t entsize)
{
	return n == 0 || (off <= rd->size && n <= (rd->size - off) / entsize);
}

/* The size a compressed section says it inflates to (0 if it is not one). */
static int inflated_size(const Reader *rd, const RawShdr *sh, const char *name, uint64_t *ret)
{
	uint8_t buf[24];
	int r;

	*ret = 0;
	if (sh->type == SHT_NOBITS)
		return 0;
	if (sh->flags & SHF_COMPRESSED) {
		/* Elf64_Chdr: type, reserved, size, align; Elf32_Chdr: type, size, align. */
		size_t len = rd->is64 ? 24 : 12;

		if (sh->size < len)
			return -ENOEXEC;
		r = read_at(rd, sh->offset, buf, len);
		if (r < 0)
			return r;
		*ret = rd->is64 ? u64(rd, buf + 8) : u32(rd, buf + 4);
		return 0;
	}
	if (name && startswith(name, ".zdebug") && sh->size >= 12) {
		/* GNU style: "ZLIB" and the size, big-endian. */
		r = read_at(rd, sh->offset, buf, 12);
		if (r < 0)
			return r;
		if (memcmp(buf, "ZLIB", 4) == 0) {
			uint64_t be;

			memcpy(&be, buf + 4, sizeof(be));
			*ret = be64toh(be);
		}
	}
	return 0;
}

#define SHSTRTAB_MAX (1u << 20)

int elfsym_check_headers(int fd, ElfHeaders *ret)
{
	_cleanup_free_ uint8_t *shdrs = NULL;
	_cleanup_free_ char *names = NULL;
	uint64_t shoff, phoff, shnum, phnum, shstrndx, names_size = 0;
	uint16_t shentsize, phentsize;
	ElfHeaders h = { 0 };
	uint8_t eh[64];
	struct stat st;
	Reader rd = { .fd = fd };
	int r;

	if (fstat(fd, &st) < 0)
		return negative_errno();
	if (!S_ISREG(st.st_mode))
		return -ENOEXEC;
	rd.size = h.file_size = (uint64_t)st.st_size;
	r = read_at(&rd, 0, eh, EI_NIDENT);
	if (r < 0)
		return r;
	if (memcmp(eh, ELFMAG, SELFMAG) != 0 || eh[EI_VERSION] != EV_CURRENT ||
	    (eh[EI_CLASS] != ELFCLASS32 && eh[EI_CLASS] != ELFCLASS64) ||
	    (eh[EI_DATA] != ELFDATA2LSB && eh[EI_DATA] != ELFDATA2MSB))
		return -ENOEXEC;
	rd.is64 = eh[EI_CLASS] == ELFCLASS64;
	rd.swap = (eh[EI_DATA] == ELFDATA2LSB) != (__BYTE_ORDER == __LITTLE_ENDIAN);
	r = read_at(&rd, 0, eh, rd.is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr));
	if (r < 0)
		return r;
	/* e_phoff and e_shoff follow e_entry; then flags, ehsize, and the table shapes. */
	phoff = uword(&rd, eh + (rd.is64 ? 32 : 28));
	shoff = uword(&rd, eh + (rd.is64 ? 40 : 32));
	{
		const uint8_t *t = eh + (rd.is64 ? 54 : 42);

		phentsize = u16(&rd, t);
		phnum = u16(&rd, t + 2);
		shentsize = u16(&rd, t + 4);
		shnum = u16(&rd, t + 6);
		shstrndx = u16(&rd, t + 8);
	}
	if (shoff != 0 || shnum != 0) {
		size_t want = rd.is64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr);
		uint8_t s0[sizeof(Elf64_Shdr)];
		RawShdr sh0;

		if (shentsize != want || shoff == 0)
			return -ENOEXEC;
		/* Extended numbering: section 0 holds the real counts. */
		r = read_at(&rd, shoff, s0, want);
		if (r < 0)
			return r;
		sh0 = raw_shdr(&rd, s0);
		if (shnum == 0)
			shnum = sh0.size;
		if (shstrndx == SHN_XINDEX)
			shstrndx = sh0.link;
		if (phnum == PN_XNUM)
			phnum = sh0.info;
	}
	if (shnum > ELFSYM_MAX_SECTIONS || phnum > ELFSYM_MAX_SEGMENTS)
		return -E2BIG;
	if (!table_fits(&rd, shoff, shnum, shentsize ?: 1))
		return -ENOEXEC;
	if (phnum > 0 && (phentsize != (rd.is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr)) ||
			  !table_fits(&rd, phoff, phnum, phentsize)))
		return -ENOEXEC;
	h.n_sections = shnum;
	h.n_segments = phnum;
	if (shnum == 0) {
		*ret = h;
		return 0;
	}
	shdrs = malloc(shnum * shentsize);
	if (!shdrs)
		return -ENOMEM;
	r = read_at(&rd, shoff, shdrs, shnum * shentsize);
	if (r < 0)
		return r;
	/* Section names, for the GNU-style compressed sections (.zdebug_*). */
	if (shstrndx > 0 && shstrndx < shnum) {
		RawShdr ss = raw_shdr(&rd, shdrs + shstrndx * shentsize);

		if (ss.type == SHT_STRTAB && !(ss.flags & SHF_COMPRESSED) && ss.size > 0 &&
		    ss.size <= SHSTRTAB_MAX) {
			names = malloc(ss.size + 1);
			if (!names)
				return -ENOMEM;
			if (read_at(&rd, ss.offset, names, ss.size) < 0)
				names = mfree(names);
			else {
				names[ss.size] = 0;
				names_size = ss.size;
			}
		}
	}
	for (uint64_t i = 1; i < shnum; i++) {
		RawShdr sh = raw_shdr(&rd, shdrs + i * shentsize);
		const char *name = names && sh.name < names_size ? names + sh.name : NULL;
		uint64_t size;

		r = inflated_size(&rd, &sh, name, &size);
		if (r < 0)
			return r;
		h.inflated = size > UINT64_MAX - h.inflated ? UINT64_MAX : h.inflated + size;
		h.inflated_max = MAX(h.inflated_max, size);
	}
	*ret = h;
	return 0;
}

/* fd: the file elf reads (-1 for an image in memory). */
static int load(Elf *elf, int fd, ElfSym **ret)
{
	_cleanup_(elfsym_freep) ElfSym *e = NULL;
	Elf_Scn *scn = NULL, *symtab = NULL, *dynsym = NULL;
	GElf_Shdr sh, symtab_sh, dynsym_sh;
	Builder b = { .fd = fd };
	int r = 0;

	if (elf_kind(elf) != ELF_K_ELF)
		return -ENOEXEC;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->names[0] = e->names[1] = e->plt.strings = (Names){ .fd = -1 };
	r = read_segments(elf, e);
	if (r < 0)
		return r;
	read_build_id(elf, e);
	while ((scn = elf_nextscn(elf, scn))) {
		if (!gelf_getshdr(scn, &sh))
			continue;
		if (sh.sh_type == SHT_SYMTAB && !symtab) {
			symtab = scn;
			symtab_sh = sh;
		} else if (sh.sh_type == SHT_DYNSYM && !dynsym) {
			dynsym = scn;
			dynsym_sh = sh;
		}
	}
	/* A .symtab holds every function .dynsym does, and the local ones: read one table. */
	if (symtab) {
		e->has_symtab = true;
		r = read_symtab(elf, symtab, &symtab_sh, &b);
	}
	/* No .symtab, or one not read (too big): the dynamic symbols at least. */
	if (r >= 0 && b.n == 0 && dynsym) {
		e->has_symtab = false;
		r = read_symtab(elf, dynsym, &dynsym_sh, &b);
	}
	if (r >= 0 && b.n > 0) {
		r = names_set(&e->names[0], &b, fd);
		if (r >= 0)
			r = finish(e, b.syms, b.n, 0);
	}
	free(b.syms);
	if (r >= 0)
		r = read_plt(elf, fd, e);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(e);
	return 0;
}

int elfsym_load_fd(int fd, ElfSym **ret)
{
	_cleanup_(elf_endp) Elf *elf = NULL;
	ElfHeaders h;
	int r;

	if (elf_version(EV_CURRENT) == EV_NONE)
		return -ENOTSUP;
	r = elfsym_check_headers(fd, &h);
	if (r < 0)
		return r == -E2BIG ? -E2BIG : -ENOEXEC;
	/* Not ELF_C_READ_MMAP: a file truncated under a mapping would raise SIGBUS. */
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (!elf)
		return -ENOEXEC;
	return load(elf, fd, ret);
}

int elfsym_load_memory(const void *image, size_t size, ElfSym **ret)
{
	_cleanup_(elf_endp) Elf *elf = NULL;
	_cleanup_free_ char *copy = NULL;

	if (elf_version(EV_CURRENT) == EV_NONE)
		return -ENOTSUP;
	/* elf_memory wants a writable buffer; never hand it the caller's. */
	copy = malloc(size);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, image, size);
	elf = elf_memory(copy, size);
	if (!elf)
		return -ENOEXEC;
	return load(elf, -1, ret);
}

int elfsym_find_names(int fd, ElfSymbolQuery *q, size_t n)
{
	_cleanup_(elf_endp) Elf *elf = NULL;
	Elf_Scn *scn = NULL, *str_scn;
	Elf_Data *data, *strs;
	ElfHeaders h;
	GElf_Shdr sh, str_sh;
	size_t count, found = 0;

	if (elf_version(EV_CURRENT) == EV_NONE)
		return -ENOTSUP;
	if (elfsym_check_headers(fd, &h) < 0)
		return -ENOEXEC;
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (!elf || elf_kind(elf) != ELF_K_ELF)
		return -ENOEXEC;
	while ((scn = elf_nextscn(elf, scn)))
		if (gelf_getshdr(scn, &sh) && sh.sh_type == SHT_DYNSYM)
			break;
	if (!scn || sh.sh_entsize == 0 || sh.sh_size > TABLE_MAX_SIZE)
		return 0;
	str_scn = elf_getscn(elf, sh.sh_link);
	if (!str_scn || !gelf_getshdr(str_scn, &str_sh) || str_sh.sh_type != SHT_STRTAB ||
	    str_sh.sh_size > TABLE_MAX_SIZE)
		return 0;
	data = elf_getdata(scn, NULL);
	strs = elf_getdata(str_scn, NULL);
	if (!data || !strs || !strs->d_buf)
		return 0;
	count = data->d_size / sh.sh_entsize;
	for (size_t i = 0; i < count && found < n; i++) {
		const char *name;
		GElf_Sym sym;

		if (!gelf_getsym(data, (int)i, &sym))
			break;
		if (sym.st_shndx == SHN_UNDEF || sym.st_value == 0 || sym.st_name == 0 ||
		    sym.st_name >= strs->d_size)
			continue;
		/* Compared within the table and for the query's length only: a table without NULs
		 * costs no more than one with. */
		name = (const char *)strs->d_buf + sym.st_name;
		for (size_t j = 0; j < n; j++) {
			size_t len = strlen(q[j].name) + 1;

			if (q[j].vaddr == 0 && len <= strs->d_size - sym.st_name &&
			    memcmp(name, q[j].name, len) == 0) {
				q[j].vaddr = sym.st_value;
				q[j].size = sym.st_size;
				found++;
				break;
			}
		}
	}
	return (int)found;
}

int elfsym_add_symbols(ElfSym *e, int fd)
{
	_cleanup_(elf_endp) Elf *elf = NULL;
	Elf_Scn *scn = NULL;
	Builder b = { .fd = fd };
	ElfHeaders h;
	GElf_Shdr sh;
	int r = 0;

	if (e->names[1].fd >= 0 || e->names[1].copy)
		return -EEXIST;
	if (elf_version(EV_CURRENT) == EV_NONE)
		return -ENOTSUP;
	r = elfsym_check_headers(fd, &h);
	if (r < 0)
		return r;
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (!elf || elf_kind(elf) != ELF_K_ELF)
		return -ENOEXEC;
	while ((scn = elf_nextscn(elf, scn)))
		if (gelf_getshdr(scn, &sh) && sh.sh_type == SHT_SYMTAB) {
			r = read_symtab(elf, scn, &sh, &b);
			break;
		}
	if (r >= 0 && b.n > 0) {
		r = names_set(&e->names[1], &b, fd);
		if (r >= 0)
			r = finish(e, b.syms, b.n, NAME_SOURCE);
		if (r < 0)
			names_done(&e->names[1]);
	}
	free(b.syms);
	return r;
}

bool elfsym_has_symtab(const ElfSym *e)
{
	return e->has_symtab;
}

/* The name at offset off of names, in names' copy or read into e->name_buf. */
static int name_read(ElfSym *e, const Names *names, uint32_t off, const char **ret)
{
	size_t got = 0, want;

	if (off >= names->size)
		return -EBADMSG;
	want = MIN((size_t)(names->size - off), (size_t)NAME_MAX_LEN);
	if (names->copy) {
		/* The copy ends in a NUL of its own (names_set()); a long name is cut. */
		const char *name = names->copy + off;

		if (strnlen(name, want) < want) {
			*ret = name;
			return 0;
		}
		if (want + 1 > e->name_buf_size) {
			char *buf = realloc(e->name_buf, want + 1);

			if (!buf)
				return -ENOMEM;
			e->name_buf = buf;
			e->name_buf_size = want + 1;
		}
		memcpy(e->name_buf, name, want);
		e->name_buf[want] = 0;
		*ret = e->name_buf;
		return 0;
	}
	/* Most names are short: read 256 bytes, more only when the end is not in them. */
	while (got < want) {
		size_t chunk = MIN(want - got, got == 0 ? (size_t)256 : want - got);
		ssize_t n;

		if (got + chunk + 1 > e->name_buf_size) {
			char *buf = realloc(e->name_buf, got + chunk + 1);

			if (!buf)
				return -ENOMEM;
			e->name_buf = buf;
			e->name_buf_size = got + chunk + 1;
		}
		n = pread(names->fd, e->name_buf + got, chunk, (off_t)(names->offset + off + got));

		if (n < 0)
			return negative_errno();
		if (n == 0)
			return -EBADMSG; /* the file shrank */
		if (memchr(e->name_buf + got, 0, (size_t)n)) {
			got += (size_t)n;
			break;
		}
		got += (size_t)n;
	}
	e->name_buf[got] = 0; /* cut at NAME_MAX_LEN, or the string's own end before */
	*ret = e->name_buf;
	return 0;
}

/* The name of PLT stub i, "NAME@plt", in e->name_buf. */
static int plt_name(ElfSym *e, uint32_t i, const char **ret)
{
	const char *name;
	bool in_buf;
	size_t len;
	int r;

	r = name_read(e, &e->plt.strings, e->plt.names[i], &name);
	if (r < 0)
		return r;
	len = strlen(name);
	in_buf = name == e->name_buf;
	if (len + sizeof("@plt") > e->name_buf_size) {
		char *buf = realloc(e->name_buf, len + sizeof("@plt"));

		if (!buf)
			return -ENOMEM;
		e->name_buf = buf;
		e->name_buf_size = len + sizeof("@plt");
	}
	if (!in_buf)
		memcpy(e->name_buf, name, len);
	memcpy(e->name_buf + len, "@plt", sizeof("@plt"));
	*ret = e->name_buf;
	return 0;
}

int elfsym_lookup(ElfSym *e, uint64_t vaddr, const char **ret_name, uint64_t *ret_offset)
{
	size_t lo = 0, hi = e->n_syms;
	const Sym *s;
	int r;

	if (e->plt.header_size > 0 && vaddr >= e->plt.header_addr &&
	    vaddr - e->plt.header_addr < e->plt.header_size) {
		*ret_name = ".plt";
		if (ret_offset)
			*ret_offset = vaddr - e->plt.header_addr;
		return 0;
	}
	if (e->plt.n > 0 && vaddr >= e->plt.addr &&
	    vaddr - e->plt.addr < (uint64_t)e->plt.n * e->plt.entsize) {
		uint64_t i = (vaddr - e->plt.addr) / e->plt.entsize;

		if (e->plt.names[i] != 0) {
			r = plt_name(e, (uint32_t)i, ret_name);
			if (r < 0)
				return r;
			if (ret_offset)
				*ret_offset = (vaddr - e->plt.addr) % e->plt.entsize;
			return 0;
		}
	}

	/* The last symbol starting at or below vaddr. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (e->syms[mid].addr <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return -ENOENT;
	s = &e->syms[lo - 1];
	if (s->size != 0 && vaddr >= s->addr + s->size)
		return -ENOENT;
	/* An unsized symbol extends to the next one, never past the last. */
	if (s->size == 0 && lo == e->n_syms)
		return -ENOENT;
	r = name_read(e, &e->names[s->name & NAME_SOURCE ? 1 : 0], s->name & NAME_OFFSET_MAX,
		      ret_name);
	if (r < 0)
		return r;
	if (ret_offset)
		*ret_offset = vaddr - s->addr;
	return 0;
}

int elfsym_offset_to_vaddr(const ElfSym *e, uint64_t offset, uint64_t *ret_vaddr)
{
	for (size_t i = 0; i < e->n_segs; i++) {
		const Segment *s = &e->segs[i];

		if (offset >= s->offset && offset - s->offset < s->filesz) {
			*ret_vaddr = offset - s->offset + s->vaddr;
			return 0;
		}
	}
	return -ENOENT;
}

const uint8_t *elfsym_build_id(const ElfSym *e, size_t *ret_len)
{
	*ret_len = e->build_id_len;
	return e->build_id_len ? e->build_id : NULL;
}

size_t elfsym_count(const ElfSym *e)
{
	return e->n_syms;
}

size_t elfsym_memory(const ElfSym *e)
{
	return sizeof(*e) + e->n_syms * sizeof(Sym) + (e->names[0].copy ? e->names[0].size : 0) +
	       (e->names[1].copy ? e->names[1].size : 0) + e->name_buf_size +
	       e->n_segs * sizeof(Segment) + e->plt.n * sizeof(uint32_t) +
	       (e->plt.strings.copy ? e->plt.strings.size : 0);
}
