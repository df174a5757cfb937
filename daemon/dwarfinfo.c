/* SPDX-License-Identifier: MIT */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <fcntl.h>

#include "dwarfinfo.h"
#include "hashindex.h"
#include "macro.h"

#define MAX_DEPTH 128

/* A function or inlined call: its attributes, shared by its address ranges. */
typedef struct DieInfo {
	const char *name;
	const char *linkage;
	const char *decl_file;
	const char *call_file;
	uint32_t decl_line;
	uint32_t call_line;
	bool inlined;
} DieInfo;

/* One address range of a DieInfo, nested in its parent's. */
typedef struct Range {
	uint64_t low, high;
	int32_t parent; /* index of the enclosing range, -1 at the top */
	uint32_t info;
} Range;

typedef struct CuIndex {
	Dwarf_Off offset;
	Range *ranges; /* sorted by (low, -high): a parent before its children */
	size_t n;
	DieInfo *infos;
	size_t n_infos;
} CuIndex;

struct DwarfInfo {
	Dwfl *dwfl;
	Dwfl_Module *mod;
	Dwfl_Callbacks callbacks;
	char *debug_path;
	Dwarf_Addr elf_bias; /* dwfl address = ELF vaddr + elf_bias */
	bool separate;
	char *debug_file;
	CuIndex **cus;
	size_t n_cus, allocated_cus;
	HashIndex *cu_index;
	size_t dies; /* walked so far, for the work bound */
	size_t memory;
};

DwarfInfo *dwarf_info_free(DwarfInfo *d)
{
	if (!d)
		return NULL;
	for (size_t i = 0; i < d->n_cus; i++) {
		free(d->cus[i]->ranges);
		free(d->cus[i]->infos);
		free(d->cus[i]);
	}
	free(d->cus);
	hash_index_free(d->cu_index);
	if (d->dwfl)
		dwfl_end(d->dwfl);
	free(d->debug_path);
	free(d->debug_file);
	free(d);
	return NULL;
}

int dwarf_info_open(int fd, const char *path, const char *debug_path, DwarfInfo **ret)
{
	_cleanup_(dwarf_info_freep) DwarfInfo *d = calloc(1, sizeof(*d));
	const char *mainfile = NULL, *debugfile = NULL;
	Dwarf_Addr dwbias;
	int dfd, r;

	if (!d)
		return -ENOMEM;
	d->debug_path = strdup(debug_path ?: ":.debug:/usr/lib/debug");
	if (!d->debug_path)
		return -ENOMEM;
	r = hash_index_new(&d->cu_index);
	if (r < 0)
		return r;
	d->callbacks = (Dwfl_Callbacks){
		.find_debuginfo = dwfl_standard_find_debuginfo,
		.section_address = dwfl_offline_section_address,
		.debuginfo_path = &d->debug_path,
	};
	d->dwfl = dwfl_begin(&d->callbacks);
	if (!d->dwfl)
		return -ENOMEM;
	/* libdwfl takes the descriptor it is given. */
	dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (dfd < 0)
		return negative_errno();
	d->mod = dwfl_report_offline(d->dwfl, path, path, dfd);
	if (!d->mod) {
		close(dfd);
		return -ENOEXEC;
	}
	dwfl_report_end(d->dwfl, NULL, NULL);
	if (!dwfl_module_getelf(d->mod, &d->elf_bias))
		return -ENOEXEC;
	/* Finds and opens the separate debug file if the binary has no DWARF itself. */
	if (!dwfl_module_getdwarf(d->mod, &dwbias))
		return -ENOENT;
	dwfl_module_info(d->mod, NULL, NULL, NULL, NULL, NULL, &mainfile, &debugfile);
	d->separate = debugfile && mainfile && !streq(debugfile, mainfile);
	if (d->separate && !(d->debug_file = strdup(debugfile)))
		return -ENOMEM;
	*ret = TAKE_PTR(d);
	return 0;
}

static const char *attr_string(Dwarf_Die *die, unsigned name)
{
	Dwarf_Attribute attr;

	return dwarf_attr_integrate(die, name, &attr) ? dwarf_formstring(&attr) : NULL;
}

static uint32_t attr_udata(Dwarf_Die *die, unsigned name)
{
	Dwarf_Attribute attr;
	Dwarf_Word v;

	if (!dwarf_attr(die, name, &attr) || dwarf_formudata(&attr, &v) != 0 || v > UINT32_MAX)
		return 0;
	return (uint32_t)v;
}

typedef struct CuBuilder {
	Range *ranges;
	size_t n, allocated;
	DieInfo *infos;
	size_t n_infos, allocated_infos;
	Dwarf_Files *files;
	size_t n_files;
} CuBuilder;

/* Records a function or inlined call DIE with its address ranges. */
static int add_die(CuBuilder *b, Dwarf_Die *die, bool inlined)
{
	Dwarf_Addr base, low, high;
	ptrdiff_t off = 0;
	DieInfo info = { .inlined = inlined };
	uint32_t idx = (uint32_t)b->n_infos;
	bool any = false;
	int line;

	while ((off = dwarf_ranges(die, off, &base, &low, &high)) > 0) {
		if (high <= low)
			continue;
		if (GREEDY_REALLOC(b->ranges, b->allocated, b->n + 1) < 0)
			return -ENOMEM;
		b->ranges[b->n++] = (Range){ .low = low, .high = high, .parent = -1, .info = idx };
		any = true;
	}
	if (!any)
		return 0; /* a declaration, or code that was optimised away */
	info.linkage = attr_string(die, DW_AT_linkage_name)
			       ?: attr_string(die, DW_AT_MIPS_linkage_name);
	info.name = attr_string(die, DW_AT_name) ?: info.linkage;
	info.decl_file = dwarf_decl_file(die);
	if (dwarf_decl_line(die, &line) == 0 && line > 0)
		info.decl_line = (uint32_t)line;
	if (inlined) {
		uint32_t f = attr_udata(die, DW_AT_call_file);

		if (b->files && f < b->n_files)
			info.call_file = dwarf_filesrc(b->files, f, NULL, NULL);
		info.call_line = attr_udata(die, DW_AT_call_line);
	}
	if (GREEDY_REALLOC(b->infos, b->allocated_infos, b->n_infos + 1) < 0)
		return -ENOMEM;
	b->infos[b->n_infos++] = info;
	return 0;
}

static int range_cmp(const void *a, const void *b)
{
	const Range *x = a, *y = b;

	if (x->low != y->low)
		return x->low < y->low ? -1 : 1;
	if (x->high != y->high)
		return x->high > y->high ? -1 : 1;	   /* the wider (the parent) first */
	return x->info < y->info ? -1 : x->info > y->info; /* DIE order: the parent first */
}

/* Walks a CU's DIEs (depth first, bounded) into an index of its functions and inlined calls. */
static int cu_build(DwarfInfo *d, Dwarf_Die *cudie, CuIndex **ret)
{
	_cleanup_free_ CuIndex *cu = calloc(1, sizeof(CuIndex));
	CuBuilder b = { 0 };
	Dwarf_Die stack[MAX_DEPTH];
	int32_t open[MAX_DEPTH];
	unsigned depth = 0, n_open = 0;
	int r = 0;

	if (!cu)
		return -ENOMEM;
	cu->offset = dwarf_dieoffset(cudie);
	if (dwarf_getsrcfiles(cudie, &b.files, &b.n_files) != 0)
		b.files = NULL;
	if (dwarf_child(cudie, &stack[0]) == 0) {
		depth = 1;
		while (depth > 0 && r >= 0) {
			Dwarf_Die *die = &stack[depth - 1];
			int tag = dwarf_tag(die);

			if (++d->dies > DWARFINFO_MAX_DIES) {
				r = -E2BIG;
				break;
			}
			if (tag == DW_TAG_subprogram || tag == DW_TAG_inlined_subroutine)
				r = add_die(&b, die, tag == DW_TAG_inlined_subroutine);
			/* Down into children (inlined calls sit in blocks and other calls), else
			 * across to the next sibling, else back up. */
			if (depth < MAX_DEPTH && dwarf_haschildren(die) &&
			    dwarf_child(die, &stack[depth]) == 0) {
				depth++;
				continue;
			}
			while (depth > 0 && dwarf_siblingof(&stack[depth - 1], &stack[depth - 1]) != 0)
				depth--;
		}
	}
	if (r < 0 && r != -E2BIG) {
		free(b.ranges);
		free(b.infos);
		return r;
	}
	/* Nest the ranges: each one's parent is the innermost earlier range containing it. */
	if (b.n > 1)
		qsort(b.ranges, b.n, sizeof(Range), range_cmp);
	for (size_t i = 0; i < b.n; i++) {
		while (n_open > 0 && b.ranges[open[n_open - 1]].high < b.ranges[i].high)
			n_open--;
		while (n_open > 0 && b.ranges[open[n_open - 1]].high <= b.ranges[i].low)
			n_open--;
		b.ranges[i].parent = n_open > 0 ? open[n_open - 1] : -1;
		if (n_open < MAX_DEPTH)
			open[n_open++] = (int32_t)i;
	}
	cu->ranges = b.ranges;
	cu->n = b.n;
	cu->infos = b.infos;
	cu->n_infos = b.n_infos;
	d->memory += sizeof(*cu) + b.allocated * sizeof(Range) + b.allocated_infos * sizeof(DieInfo);
	*ret = TAKE_PTR(cu);
	return 0;
}

static uint64_t off_hash(Dwarf_Off off)
{
	return (uint64_t)off * 0x9E3779B97F4A7C15ULL;
}

static bool cu_eq(uint32_t idx, const void *key, void *userdata)
{
	return ((const DwarfInfo *)userdata)->cus[idx]->offset == *(const Dwarf_Off *)key;
}

static int cu_get(DwarfInfo *d, Dwarf_Die *cudie, CuIndex **ret)
{
	Dwarf_Off off = dwarf_dieoffset(cudie);
	CuIndex *cu;
	uint32_t idx;
	int r;

	if (hash_index_find(d->cu_index, off_hash(off), cu_eq, &off, d, &idx) == 0) {
		*ret = d->cus[idx];
		return 0;
	}
	r = cu_build(d, cudie, &cu);
	if (r < 0)
		return r;
	r = GREEDY_REALLOC(d->cus, d->allocated_cus, d->n_cus + 1);
	if (r >= 0)
		r = hash_index_insert(d->cu_index, off_hash(off), (uint32_t)d->n_cus);
	if (r < 0) {
		free(cu->ranges);
		free(cu->infos);
		free(cu);
		return r;
	}
	d->cus[d->n_cus++] = cu;
	*ret = cu;
	return 0;
}

int dwarf_info_lookup(DwarfInfo *d, uint64_t vaddr, DwarfFrame *out, size_t max)
{
	Dwarf_Addr dwfl_addr = vaddr + d->elf_bias, bias;
	Dwarf_Die *cudie;
	Dwfl_Line *line;
	CuIndex *cu;
	uint64_t addr;
	size_t lo = 0, hi, n = 0;
	int32_t i;
	int r, lineno = 0;
	const char *file = NULL;

	if (max == 0)
		return -ENOBUFS;
	cudie = dwfl_module_addrdie(d->mod, dwfl_addr, &bias);
	if (!cudie)
		return 0;
	r = cu_get(d, cudie, &cu);
	if (r < 0)
		return r;
	addr = dwfl_addr - bias;
	/* The last range starting at or below addr; the innermost containing one is it or an
	 * ancestor (ranges nest, so whatever contains addr contains it too). */
	hi = cu->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (cu->ranges[mid].low <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return 0;
	for (i = (int32_t)lo - 1; i >= 0 && cu->ranges[i].high <= addr; i = cu->ranges[i].parent)
		;
	if (i < 0)
		return 0;

	line = dwfl_module_getsrc(d->mod, dwfl_addr);
	if (line)
		file = dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL);
	/* Innermost first: each frame's line is where it is, which for an outer frame is the
	 * call site of the frame inlined into it. */
	for (; i >= 0 && n < max; i = cu->ranges[i].parent) {
		const DieInfo *info = &cu->infos[cu->ranges[i].info];

		out[n] = (DwarfFrame){ .function = info->name,
				       .linkage = info->linkage,
				       .file = file,
				       .line = lineno > 0 ? (uint32_t)lineno : 0,
				       .decl_file = info->decl_file,
				       .decl_line = info->decl_line,
				       .inlined = info->inlined };
		n++;
		/* The next frame out is at this one's call site. */
		file = info->call_file;
		lineno = (int)info->call_line;
		if (!info->inlined)
			break;
	}
	return (int)n;
}

size_t dwarf_info_memory(const DwarfInfo *d)
{
	return sizeof(*d) + d->memory + d->allocated_cus * sizeof(CuIndex *) +
	       hash_index_memory(d->cu_index);
}

const char *dwarf_info_debug_file(const DwarfInfo *d)
{
	return d->debug_file;
}
