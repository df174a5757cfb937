/* SPDX-License-Identifier: MIT */
#include <ctype.h>

#include "base/macro.h"
#include "base/procfs.h"
#include "symbolize/kallsyms.h"

/* A symbol while parsing. */
typedef struct KSym {
	uint64_t addr;
	uint32_t name;	 /* offset into names */
	uint32_t module; /* offset into names of "[module]" */
} KSym;

/* Symbols from first on (to the next run's first) are of one module. */
typedef struct ModuleRun {
	uint32_t first;
	uint32_t module; /* offset into names of "[module]" */
} ModuleRun;

/*
 * Sorted by address, 8 bytes a symbol (the running kernel lists over 100,000): the address as
 * an offset from base (all of the kernel's and its modules' text lies within 4 GiB of each
 * other on x86-64; wide holds the addresses if not) and the name; the module by runs.
 */
struct Kallsyms {
	uint64_t base;
	uint32_t *offs;
	uint64_t *wide;
	uint32_t *names_at;
	size_t n;
	ModuleRun *runs;
	size_t n_runs;
	char *names;
	size_t names_len;
	/* The scheduler's and the lock functions' text: [start, end) each, 0 if not listed. */
	uint64_t sched_text[2], lock_text[2];
};

/* Notes the bounds of the text sections the kernel skips in a sleeping task's stack. */
static void note_section(Kallsyms *k, const char *name, size_t len, uint64_t addr)
{
	const struct {
		const char *name;
		uint64_t *at;
	} bounds[] = {
		{ "__sched_text_start", &k->sched_text[0] },
		{ "__sched_text_end", &k->sched_text[1] },
		{ "__lock_text_start", &k->lock_text[0] },
		{ "__lock_text_end", &k->lock_text[1] },
	};

	if (len < 15 || name[0] != '_')
		return;
	for (size_t i = 0; i < ARRAY_SIZE(bounds); i++)
		if (strlen(bounds[i].name) == len && memcmp(bounds[i].name, name, len) == 0)
			*bounds[i].at = addr;
}

Kallsyms *kallsyms_free(Kallsyms *k)
{
	if (!k)
		return NULL;
	free(k->offs);
	free(k->wide);
	free(k->names_at);
	free(k->runs);
	free(k->names);
	free(k);
	return NULL;
}

static uint64_t addr_at(const Kallsyms *k, size_t i)
{
	return k->wide ? k->wide[i] : k->base + k->offs[i];
}

/* From the sorted symbols of the parse to the table kept. */
static int compact(Kallsyms *k, const KSym *syms)
{
	bool narrow = syms[k->n - 1].addr - syms[0].addr <= UINT32_MAX;
	size_t allocated = 0;

	k->base = syms[0].addr;
	k->names_at = malloc(k->n * sizeof(uint32_t));
	if (narrow)
		k->offs = malloc(k->n * sizeof(uint32_t));
	else
		k->wide = malloc(k->n * sizeof(uint64_t));
	if (!k->names_at || (!k->offs && !k->wide))
		return -ENOMEM;
	for (size_t i = 0; i < k->n; i++) {
		if (narrow)
			k->offs[i] = (uint32_t)(syms[i].addr - k->base);
		else
			k->wide[i] = syms[i].addr;
		k->names_at[i] = syms[i].name;
		if (k->n_runs > 0 && k->runs[k->n_runs - 1].module == syms[i].module)
			continue;
		if (GREEDY_REALLOC(k->runs, allocated, k->n_runs + 1) < 0)
			return -ENOMEM;
		k->runs[k->n_runs++] = (ModuleRun){ .first = (uint32_t)i,
						    .module = syms[i].module };
	}
	k->runs = realloc(k->runs, k->n_runs * sizeof(ModuleRun)) ?: k->runs;
	return 0;
}

static int ksym_cmp(const void *a, const void *b)
{
	const KSym *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	return x->name < y->name ? -1 : x->name > y->name;
}

/* Appends s[0..len) plus NUL to the names pool; returns its offset. */
static int add_name(Kallsyms *k, size_t *allocated, const char *s, size_t len, uint32_t *ret)
{
	if (k->names_len + len + 1 > UINT32_MAX)
		return -E2BIG;
	if (GREEDY_REALLOC(k->names, *allocated, k->names_len + len + 1) < 0)
		return -ENOMEM;
	memcpy(k->names + k->names_len, s, len);
	k->names[k->names_len + len] = '\0';
	*ret = (uint32_t)k->names_len;
	k->names_len += len + 1;
	return 0;
}

int kallsyms_parse(const char *buf, size_t len, Kallsyms **ret)
{
	_cleanup_(kallsyms_freep) Kallsyms *k = NULL;
	_cleanup_free_ KSym *syms = NULL;
	size_t allocated = 0, names_allocated = 0, nonzero = 0;
	const char *p = buf, *end = buf + len;
	uint32_t kernel_module, last_module = 0;
	const char *last_module_s = NULL;
	size_t last_module_len = 0;
	int r;

	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	r = add_name(k, &names_allocated, "[kernel.kallsyms]", 17, &kernel_module);
	if (r < 0)
		return r;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p)), *q, *name, *mod = NULL;
		size_t name_len, mod_len = 0;
		uint64_t addr = 0;
		char type;
		int digits = 0;

		if (!eol)
			eol = end;
		for (q = p; q < eol && isxdigit((unsigned char)*q) && digits < 16; q++, digits++)
			addr = addr << 4 |
			       (uint64_t)(isdigit((unsigned char)*q)
						  ? *q - '0'
						  : tolower((unsigned char)*q) - 'a' + 10);
		/* "addr type name[\t[module]]" */
		if (digits == 0 || eol - q < 4 || q[0] != ' ' || q[2] != ' ')
			goto next;
		type = q[1];
		if (type != 't' && type != 'T' && type != 'w' && type != 'W')
			goto next;
		name = q + 3;
		for (q = name; q < eol && *q != '\t' && *q != ' '; q++)
			;
		name_len = (size_t)(q - name);
		if (name_len == 0)
			goto next;
		if (q < eol && *q == '\t' && q + 1 < eol && q[1] == '[') {
			mod = q + 1;
			mod_len = (size_t)(eol - mod);
		}
		if (addr != 0)
			nonzero++;
		if (!mod)
			note_section(k, name, name_len, addr);
		if (k->n == UINT32_MAX)
			return -E2BIG;
		if (GREEDY_REALLOC(syms, allocated, k->n + 1) < 0)
			return -ENOMEM;
		syms[k->n].addr = addr;
		r = add_name(k, &names_allocated, name, name_len, &syms[k->n].name);
		if (r < 0)
			return r;
		if (!mod) {
			syms[k->n].module = kernel_module;
		} else {
			/* Modules' symbols come in runs: reuse the last module string. */
			if (!last_module_s || last_module_len != mod_len ||
			    memcmp(last_module_s, mod, mod_len) != 0) {
				r = add_name(k, &names_allocated, mod, mod_len, &last_module);
				if (r < 0)
					return r;
				last_module_s = mod;
				last_module_len = mod_len;
			}
			syms[k->n].module = last_module;
		}
		k->n++;
	next:
		p = eol + 1;
	}
	if (k->n > 0 && nonzero == 0)
		return -EPERM; /* kptr_restrict hides the addresses */
	/* No text symbols leaves syms NULL: qsort(NULL, 0, ...) is undefined. */
	if (k->n > 1)
		qsort(syms, k->n, sizeof(KSym), ksym_cmp);
	if (k->n > 0) {
		r = compact(k, syms);
		if (r < 0)
			return r;
	}
	/* Give back what the doubling left over: held for the daemon's life. */
	k->names = realloc(k->names, k->names_len) ?: k->names;
	*ret = TAKE_PTR(k);
	return 0;
}

int kallsyms_load(const char *path, Kallsyms **ret)
{
	_cleanup_free_ char *buf = NULL;
	size_t len;
	int r;

	r = procfs_read_file(path, 256u << 20, &buf, &len);
	if (r < 0)
		return r;
	return kallsyms_parse(buf, len, ret);
}

bool kallsyms_in_sched(const Kallsyms *k, uint64_t addr)
{
	return (addr >= k->sched_text[0] && addr < k->sched_text[1]) ||
	       (addr >= k->lock_text[0] && addr < k->lock_text[1]);
}

/* The module run of symbol i: the last run starting at or before it (the first starts at 0). */
static const ModuleRun *run_of(const Kallsyms *k, size_t i)
{
	size_t lo = 0, hi = k->n_runs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (k->runs[mid].first <= i)
			lo = mid + 1;
		else
			hi = mid;
	}
	return &k->runs[lo - 1];
}

int kallsyms_lookup(const Kallsyms *k, uint64_t addr, const char **ret_name,
		    const char **ret_module)
{
	size_t lo = 0, hi = k->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (addr_at(k, mid) <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* Past the last symbol there is no end to measure against: unknown. */
	if (lo == 0 || lo == k->n)
		return -ENOENT;
	*ret_name = k->names + k->names_at[lo - 1];
	*ret_module = k->names + run_of(k, lo - 1)->module;
	return 0;
}

size_t kallsyms_count(const Kallsyms *k)
{
	return k->n;
}

size_t kallsyms_memory(const Kallsyms *k)
{
	return sizeof(*k) +
	       k->n * ((k->wide ? sizeof(uint64_t) : sizeof(uint32_t)) + sizeof(uint32_t)) +
	       k->n_runs * sizeof(ModuleRun) + k->names_len;
}
