/* SPDX-License-Identifier: MIT */
#include <gelf.h>
#include <libelf.h>

#include "elfsym.h"
#include "macro.h"

typedef struct Sym {
	uint64_t addr;
	uint64_t size; /* 0: extends to the next symbol */
	uint32_t name; /* offset into names */
	uint8_t global;
} Sym;

typedef struct Segment {
	uint64_t offset, filesz, vaddr;
} Segment;

struct ElfSym {
	Sym *syms;
	size_t n_syms;
	char *names;
	size_t names_len;
	Segment *segs;
	size_t n_segs;
	uint8_t build_id[ELFSYM_BUILD_ID_MAX];
	size_t build_id_len;
	bool has_symtab; /* a full .symtab, not only .dynsym */
};

ElfSym *elfsym_free(ElfSym *e)
{
	if (!e)
		return NULL;
	free(e->syms);
	free(e->names);
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
	Sym *syms;
	size_t n, allocated;
} Builder;

/*
 * Reads the defined functions of one symbol table. Their names stay offsets into its string
 * table (ret_strtab, checked to be in bounds and terminated) until finish() copies the kept
 * ones.
 */
static int read_symtab(Elf *elf, Elf_Scn *scn, const GElf_Shdr *sh, Builder *b, Elf_Data **ret_strtab)
{
	Elf_Data *data = elf_getdata(scn, NULL), *str;
	GElf_Shdr strsh;
	Elf_Scn *strscn;
	size_t n;

	if (!data || sh->sh_entsize == 0)
		return 0;
	/* The string table must exist and be one. */
	strscn = elf_getscn(elf, sh->sh_link);
	if (!strscn || !gelf_getshdr(strscn, &strsh) || strsh.sh_type != SHT_STRTAB)
		return 0;
	str = elf_getdata(strscn, NULL);
	if (!str || !str->d_buf || str->d_size == 0 || str->d_size > UINT32_MAX)
		return 0;
	n = data->d_size / sh->sh_entsize;
	for (size_t i = 0; i < n; i++) {
		const char *name;
		GElf_Sym sym;
		int type;

		if (!gelf_getsym(data, (int)i, &sym))
			break;
		type = GELF_ST_TYPE(sym.st_info);
		if ((type != STT_FUNC && type != STT_GNU_IFUNC) || sym.st_shndx == SHN_UNDEF ||
		    sym.st_value == 0 || sym.st_name == 0 || sym.st_name >= str->d_size)
			continue;
		name = (const char *)str->d_buf + sym.st_name;
		if (!memchr(name, 0, str->d_size - sym.st_name))
			continue;
		if (b->n >= ELFSYM_MAX_SYMBOLS)
			return -E2BIG;
		if (GREEDY_REALLOC(b->syms, b->allocated, b->n + 1) < 0)
			return -ENOMEM;
		b->syms[b->n++] = (Sym){ .addr = sym.st_value,
					 .size = sym.st_size,
					 .name = (uint32_t)sym.st_name,
					 .global = GELF_ST_BIND(sym.st_info) != STB_LOCAL };
	}
	*ret_strtab = str;
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

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE)
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
	const Sym *x = a, *y = b;

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
 * Sorts the symbols, keeps the preferred one of each address, and copies the kept names out of
 * src (where each name offset points) into an exact buffer of e's own. Takes syms.
 */
static int finish(ElfSym *e, Sym *syms, size_t n, const char *src)
{
	size_t keep = 0, len = 0, off = 0;
	char *names;

	if (n > 1)
		qsort(syms, n, sizeof(Sym), sym_cmp);
	for (size_t i = 0; i < n; i++)
		if (keep == 0 || syms[keep - 1].addr != syms[i].addr)
			syms[keep++] = syms[i];
	for (size_t i = 0; i < keep; i++)
		len += strlen(src + syms[i].name) + 1;
	if (len > UINT32_MAX) {
		free(syms);
		return -E2BIG;
	}
	names = malloc(MAX(len, (size_t)1));
	if (!names) {
		free(syms);
		return -ENOMEM;
	}
	for (size_t i = 0; i < keep; i++) {
		size_t l = strlen(src + syms[i].name) + 1;

		memcpy(names + off, src + syms[i].name, l);
		syms[i].name = (uint32_t)off;
		off += l;
	}
	if (keep == 0) {
		free(syms);
		syms = NULL;
	} else {
		syms = realloc(syms, keep * sizeof(Sym)) ?: syms;
	}
	free(e->syms);
	free(e->names);
	e->syms = syms;
	e->n_syms = keep;
	e->names = names;
	e->names_len = len;
	return 0;
}

static int load(Elf *elf, ElfSym **ret)
{
	_cleanup_(elfsym_freep) ElfSym *e = NULL;
	Elf_Scn *scn = NULL, *symtab = NULL, *dynsym = NULL;
	GElf_Shdr sh, symtab_sh, dynsym_sh;
	Elf_Data *strtab = NULL;
	Builder b = { 0 };
	int r;

	if (elf_kind(elf) != ELF_K_ELF)
		return -ENOEXEC;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
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
		r = read_symtab(elf, symtab, &symtab_sh, &b, &strtab);
	} else if (dynsym) {
		r = read_symtab(elf, dynsym, &dynsym_sh, &b, &strtab);
	}
	if (r < 0) {
		free(b.syms);
		return r;
	}
	if (b.n > 0) {
		r = finish(e, b.syms, b.n, strtab->d_buf);
		if (r < 0)
			return r;
	}
	*ret = TAKE_PTR(e);
	return 0;
}

int elfsym_load_fd(int fd, ElfSym **ret)
{
	_cleanup_(elf_endp) Elf *elf = NULL;

	if (elf_version(EV_CURRENT) == EV_NONE)
		return -ENOTSUP;
	/* Not ELF_C_READ_MMAP: a file truncated under a mapping would raise SIGBUS. */
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (!elf)
		return -ENOEXEC;
	return load(elf, ret);
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
	return load(elf, ret);
}

int elfsym_add_symbols(ElfSym *e, int fd)
{
	_cleanup_(elfsym_freep) ElfSym *other = NULL;
	_cleanup_free_ char *names = NULL;
	Sym *syms;
	int r;

	r = elfsym_load_fd(fd, &other);
	if (r < 0)
		return r;
	if (other->n_syms == 0)
		return 0;
	if (e->names_len + other->names_len > UINT32_MAX)
		return -E2BIG;
	syms = malloc((e->n_syms + other->n_syms) * sizeof(Sym));
	names = malloc(e->names_len + other->names_len);
	if (!syms || !names) {
		free(syms);
		return -ENOMEM;
	}
	memcpy(names, e->names, e->names_len);
	memcpy(names + e->names_len, other->names, other->names_len);
	memcpy(syms, e->syms, e->n_syms * sizeof(Sym));
	for (size_t i = 0; i < other->n_syms; i++) {
		syms[e->n_syms + i] = other->syms[i];
		syms[e->n_syms + i].name += (uint32_t)e->names_len;
	}
	return finish(e, syms, e->n_syms + other->n_syms, names);
}

bool elfsym_has_symtab(const ElfSym *e)
{
	return e->has_symtab;
}

int elfsym_lookup(const ElfSym *e, uint64_t vaddr, const char **ret_name, uint64_t *ret_offset)
{
	size_t lo = 0, hi = e->n_syms;
	const Sym *s;

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
	*ret_name = e->names + s->name;
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
	return sizeof(*e) + e->n_syms * sizeof(Sym) + e->names_len + e->n_segs * sizeof(Segment);
}
