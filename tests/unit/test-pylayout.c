/* SPDX-License-Identifier: MIT */
/*
 * The CPython layouts against the interpreters' own DWARF: for every pyenv build of 3.8 to 3.13
 * installed, each offset of the PyLayout must be the offset of the struct member it stands for
 * in libpython3.N.so.1.0's debug info. 3.13's layout is read from the _Py_DebugOffsets at the
 * start of _PyRuntime in the library's data, as profqd reads it from a process. Versions not
 * installed are skipped, with the reason printed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>

#include "pyenv.h"
#include "python/pylayout.h"

typedef struct Lib {
	int fd;
	Dwarf *dwarf;
	unsigned minor;
} Lib;

static bool lib_open(unsigned minor, Lib *lib)
{
	char prefix[600], path[700];

	if (!pyenv_prefix(minor, prefix, sizeof(prefix))) {
		printf("SKIP 3.%u: no pyenv build of it installed\n", minor);
		return false;
	}
	assert_true(snprintf(path, sizeof(path), "%s/lib/libpython3.%u.so.1.0", prefix, minor) <
		    (int)sizeof(path));
	lib->minor = minor;
	lib->fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(lib->fd >= 0);
	lib->dwarf = dwarf_begin(lib->fd, DWARF_C_READ);
	if (!lib->dwarf) {
		printf("SKIP 3.%u: %s has no DWARF\n", minor, path);
		close(lib->fd);
		return false;
	}
	printf("3.%u: %s\n", minor, path);
	return true;
}

static void lib_close(Lib *lib)
{
	dwarf_end(lib->dwarf);
	close(lib->fd);
}

/* The complete struct named `name` (struct tag or typedef), peeled. */
static bool find_struct(Lib *lib, const char *name, Dwarf_Die *ret)
{
	Dwarf_Off off = 0, next;
	size_t hsize;

	while (dwarf_nextcu(lib->dwarf, off, &next, &hsize, NULL, NULL, NULL) == 0) {
		Dwarf_Die cu, die;

		if (dwarf_offdie(lib->dwarf, off + hsize, &cu) && dwarf_child(&cu, &die) == 0) {
			do {
				int tag = dwarf_tag(&die);
				const char *n = dwarf_diename(&die);
				Dwarf_Die t;

				if (!n || strcmp(n, name) != 0 ||
				    (tag != DW_TAG_structure_type && tag != DW_TAG_typedef) ||
				    dwarf_hasattr(&die, DW_AT_declaration))
					continue;
				if (dwarf_peel_type(&die, &t) != 0 ||
				    dwarf_tag(&t) != DW_TAG_structure_type ||
				    dwarf_hasattr(&t, DW_AT_declaration) || !dwarf_haschildren(&t))
					continue;
				*ret = t;
				return true;
			} while (dwarf_siblingof(&die, &die) == 0);
		}
		off = next;
	}
	return false;
}

/* A member of a struct by name; its offset and DIE. */
static bool find_member(Dwarf_Die *st, const char *name, uint64_t *ret_off, Dwarf_Die *ret)
{
	Dwarf_Die m;

	if (dwarf_child(st, &m) != 0)
		return false;
	do {
		Dwarf_Attribute attr;
		Dwarf_Word off;
		const char *n = dwarf_diename(&m);

		if (dwarf_tag(&m) != DW_TAG_member || !n || strcmp(n, name) != 0)
			continue;
		if (!dwarf_attr(&m, DW_AT_data_member_location, &attr) ||
		    dwarf_formudata(&attr, &off) != 0)
			return false;
		*ret_off = off;
		*ret = m;
		return true;
	} while (dwarf_siblingof(&m, &m) == 0);
	return false;
}

static int64_t member_type_size(Dwarf_Die *m)
{
	Dwarf_Attribute attr;
	Dwarf_Die t, peeled;

	if (!dwarf_attr(m, DW_AT_type, &attr) || !dwarf_formref_die(&attr, &t))
		return -1;
	if (dwarf_peel_type(&t, &peeled) != 0)
		return -1;
	return dwarf_bytesize(&peeled);
}

/* The offset of "a.b.c" in struct `st`; -1 if there is no such member. Its size in *ret_size. */
static int64_t dwarf_offset(Lib *lib, const char *st, const char *path, int64_t *ret_size)
{
	char buf[128], *save = NULL, *name;
	Dwarf_Die die, m;
	uint64_t total = 0;

	if (!find_struct(lib, st, &die))
		fail_msg("3.%u: no struct %s in the DWARF", lib->minor, st);
	snprintf(buf, sizeof(buf), "%s", path);
	for (name = strtok_r(buf, ".", &save); name; name = strtok_r(NULL, ".", &save)) {
		Dwarf_Attribute attr;
		Dwarf_Die t;
		uint64_t off;

		if (dwarf_tag(&die) != DW_TAG_structure_type || !find_member(&die, name, &off, &m))
			return -1;
		total += off;
		if (!dwarf_attr(&m, DW_AT_type, &attr) || !dwarf_formref_die(&attr, &t) ||
		    dwarf_peel_type(&t, &die) != 0)
			return -1;
	}
	if (ret_size)
		*ret_size = member_type_size(&m);
	return (int64_t)total;
}

static int64_t struct_size(Lib *lib, const char *st)
{
	Dwarf_Die die;

	if (!find_struct(lib, st, &die))
		fail_msg("3.%u: no struct %s in the DWARF", lib->minor, st);
	return dwarf_bytesize(&die);
}

/* The value of enumerator `name`, or -1 if the DWARF has none. */
static int64_t enumerator(Lib *lib, const char *name)
{
	Dwarf_Off off = 0, next;
	size_t hsize;

	while (dwarf_nextcu(lib->dwarf, off, &next, &hsize, NULL, NULL, NULL) == 0) {
		Dwarf_Die cu, die, e;

		if (dwarf_offdie(lib->dwarf, off + hsize, &cu) && dwarf_child(&cu, &die) == 0) {
			do {
				if (dwarf_tag(&die) != DW_TAG_enumeration_type ||
				    dwarf_child(&die, &e) != 0)
					continue;
				do {
					const char *n = dwarf_diename(&e);
					Dwarf_Attribute attr;
					Dwarf_Sword v;

					if (n && strcmp(n, name) == 0 &&
					    dwarf_attr(&e, DW_AT_const_value, &attr) &&
					    dwarf_formsdata(&attr, &v) == 0)
						return v;
				} while (dwarf_siblingof(&e, &e) == 0);
			} while (dwarf_siblingof(&die, &die) == 0);
		}
		off = next;
	}
	return -1;
}

#define CHECK(lib, got, st, path)                                                                 \
	do {                                                                                      \
		int64_t want_ = dwarf_offset(lib, st, path, NULL);                                \
		if ((int64_t)(got) != want_)                                                      \
			fail_msg("3.%u: %s is %lld, DWARF has %s.%s at %lld", (lib)->minor, #got, \
				 (long long)(got), st, path, (long long)want_);                   \
	} while (0)

/* Members a code object's identity bytes may cover: ints set at creation, never written. */
static const char *const fixed_code_fields[] = {
	"co_argcount",	"co_posonlyargcount", "co_kwonlyargcount", "co_nlocals",
	"co_stacksize", "co_flags",	      "co_firstlineno",	   "co_nlocalsplus",
	"co_framesize", "co_nplaincellvars",  "co_ncellvars",	   "co_nfreevars",
};

/* Every byte of [ident, ident + 16) lies in one of the fixed fields, co_firstlineno among them. */
static void check_ident(Lib *lib, uint32_t ident)
{
	bool covered[PROFQ_PY_IDENT_LEN] = { false };
	int64_t first = dwarf_offset(lib, "PyCodeObject", "co_firstlineno", NULL);

	assert_true(first >= ident && first + 4 <= ident + PROFQ_PY_IDENT_LEN);
	for (size_t i = 0; i < sizeof(fixed_code_fields) / sizeof(fixed_code_fields[0]); i++) {
		int64_t size, off = dwarf_offset(lib, "PyCodeObject", fixed_code_fields[i], &size);

		for (int64_t b = off; off >= 0 && b < off + size; b++)
			if (b >= ident && b < ident + PROFQ_PY_IDENT_LEN)
				covered[b - ident] = true;
	}
	for (size_t b = 0; b < PROFQ_PY_IDENT_LEN; b++)
		if (!covered[b])
			fail_msg("3.%u: identity byte %zu (offset %u) is not in a fixed field",
				 lib->minor, b, ident + (unsigned)b);
}

static void check_frame_read(Lib *lib, const PyLayout *l, const char *frame)
{
	const char *fields[4] = { NULL };
	int64_t end = 0;

	if (lib->minor <= 10) {
		fields[0] = "f_back", fields[1] = "f_code", fields[2] = "f_lasti";
	} else {
		fields[0] = "previous", fields[1] = lib->minor >= 13 ? "f_executable" : "f_code";
		fields[2] = lib->minor >= 13 ? "instr_ptr" : "prev_instr", fields[3] = "owner";
	}
	for (size_t i = 0; i < 4 && fields[i]; i++) {
		int64_t size, off = dwarf_offset(lib, frame, fields[i], &size);

		assert_true(off >= 0 && size > 0);
		if (off + size > end)
			end = off + size;
	}
	if (lib->minor == 11) {
		int64_t size, off = dwarf_offset(lib, frame, "is_entry", &size);

		if (off + size > end)
			end = off + size;
	}
	assert_int_equal(l->bpf.frame_read, end);
	assert_true(l->bpf.frame_read <= PROFQ_PY_FRAME_READ_MAX);
}

static void check_bpf(Lib *lib, const PyLayout *l)
{
	const struct profq_py_layout *b = &l->bpf;
	unsigned v = lib->minor;
	const char *frame = v <= 10 ? "_frame" : "_PyInterpreterFrame";
	int64_t cstack = enumerator(lib, "FRAME_OWNED_BY_CSTACK");

	/* The thread's pthread_t in every version (3.8-3.10 have no native_thread_id). */
	CHECK(lib, b->tstate_thread_id, "_ts", "thread_id");
	if (v <= 10) {
		CHECK(lib, b->tstate_frame, "_ts", "frame");
		assert_int_equal(b->cframe_frame, PROFQ_PY_NONE);
		CHECK(lib, b->frame_previous, frame, "f_back");
		CHECK(lib, b->frame_code, frame, "f_code");
		CHECK(lib, b->frame_instr, frame, "f_lasti");
		assert_int_equal(b->frame_owner, PROFQ_PY_NONE);
		assert_int_equal(b->model, PROFQ_PY_MODEL_FRAMEOBJ);
		assert_int_equal(b->lasti_scale, v == 10 ? 2 : 1);
		assert_int_equal(b->code_instr_base, PROFQ_PY_NONE);
	} else {
		if (v <= 12) {
			CHECK(lib, b->tstate_frame, "_ts", "cframe");
			CHECK(lib, b->cframe_frame, "_PyCFrame", "current_frame");
		} else {
			CHECK(lib, b->tstate_frame, "_ts", "current_frame");
			assert_int_equal(b->cframe_frame, PROFQ_PY_NONE);
		}
		CHECK(lib, b->frame_previous, frame, "previous");
		CHECK(lib, b->frame_code, frame, v >= 13 ? "f_executable" : "f_code");
		CHECK(lib, b->frame_instr, frame, v >= 13 ? "instr_ptr" : "prev_instr");
		CHECK(lib, b->frame_owner, frame, "owner");
		CHECK(lib, b->code_instr_base, "PyCodeObject", "co_code_adaptive");
		assert_int_equal(b->model, PROFQ_PY_MODEL_INTERP);
	}
	if (v == 11)
		CHECK(lib, b->frame_is_entry, frame, "is_entry");
	else
		assert_int_equal(b->frame_is_entry, PROFQ_PY_NONE);
	assert_int_equal(b->owner_cstack, cstack < 0 ? 0xff : cstack);
	check_ident(lib, b->code_ident);
	check_frame_read(lib, l, frame);
}

static void check_layout(Lib *lib, const PyLayout *l)
{
	unsigned v = lib->minor;

	assert_int_equal(l->hexversion, 0x03000000 | v << 16);
	check_bpf(lib, l);
	CHECK(lib, l->runtime_interpreters_head, "pyruntimestate", "interpreters.head");
	CHECK(lib, l->interp_next, "_is", "next");
	CHECK(lib, l->interp_threads_head, "_is", v <= 10 ? "tstate_head" : "threads.head");
	CHECK(lib, l->tstate_next, "_ts", "next");
	CHECK(lib, l->code_filename, "PyCodeObject", "co_filename");
	CHECK(lib, l->code_name, "PyCodeObject", "co_name");
	if (v >= 11)
		CHECK(lib, l->code_qualname, "PyCodeObject", "co_qualname");
	else
		assert_int_equal(l->code_qualname, PY_OFFSET_NONE);
	CHECK(lib, l->code_firstlineno, "PyCodeObject", "co_firstlineno");
	CHECK(lib, l->code_linetable, "PyCodeObject", v <= 9 ? "co_lnotab" : "co_linetable");
	assert_int_equal(l->code_size, struct_size(lib, "PyCodeObject"));
	CHECK(lib, l->unicode_state, "PyASCIIObject", "state");
	CHECK(lib, l->unicode_length, "PyASCIIObject", "length");
	assert_int_equal(l->unicode_ascii_data, struct_size(lib, "PyASCIIObject"));
	assert_int_equal(l->unicode_compact_data, struct_size(lib, "PyCompactUnicodeObject"));
	CHECK(lib, l->bytes_size, "PyBytesObject", "ob_base.ob_size");
	CHECK(lib, l->bytes_data, "PyBytesObject", "ob_sval");
	CHECK(lib, PY_OBJECT_TYPE, "_object", "ob_type");
	assert_int_equal(l->line_format, v <= 9	   ? PY_LINES_LNOTAB
					 : v == 10 ? PY_LINES_310
						   : PY_LINES_311);
}

static void test_tables(void **state)
{
	(void)state;
	for (unsigned v = 8; v <= 12; v++) {
		const PyLayout *l = pylayout_for_version(3, v);
		Lib lib;

		assert_non_null(l);
		if (!lib_open(v, &lib))
			continue;
		check_layout(&lib, l);
		lib_close(&lib);
	}
	assert_null(pylayout_for_version(3, 7));
	assert_null(pylayout_for_version(3, 13));
	assert_null(pylayout_for_version(2, 7));
	assert_null(pylayout_for_version(0x103, 8));
}

/* The bytes of symbol `name` from the library's file (its section's contents). */
static size_t symbol_bytes(int fd, const char *name, uint8_t *buf, size_t size)
{
	Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
	Elf_Scn *scn = NULL;
	size_t got = 0;

	assert_non_null(elf);
	while (!got && (scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		Elf_Data *data;

		if (!gelf_getshdr(scn, &sh) ||
		    (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM))
			continue;
		data = elf_getdata(scn, NULL);
		for (size_t i = 0; data && i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym sym;
			GElf_Shdr tsh;
			Elf_Scn *target;
			Elf_Data *tdata;

			if (!gelf_getsym(data, (int)i, &sym) ||
			    strcmp(elf_strptr(elf, sh.sh_link, sym.st_name), name) != 0)
				continue;
			target = elf_getscn(elf, sym.st_shndx);
			assert_non_null(target);
			assert_non_null(gelf_getshdr(target, &tsh));
			assert_int_equal(tsh.sh_type, SHT_PROGBITS);
			tdata = elf_getdata(target, NULL);
			assert_non_null(tdata);
			got = size < sym.st_size ? size : sym.st_size;
			assert_true(sym.st_value - tsh.sh_addr + got <= tdata->d_size);
			memcpy(buf, (uint8_t *)tdata->d_buf + (sym.st_value - tsh.sh_addr), got);
			break;
		}
	}
	elf_end(elf);
	return got;
}

static void put64(uint8_t *buf, size_t pos, uint64_t v)
{
	memcpy(buf + pos, &v, 8);
}

static void test_debug_offsets(void **state)
{
	uint8_t buf[4096], bad[4096];
	PyLayout l, l2;
	size_t len;
	Lib lib;

	(void)state;
	if (!lib_open(13, &lib)) {
		skip();
		return;
	}
	elf_version(EV_CURRENT);
	len = symbol_bytes(lib.fd, "_PyRuntime", buf, sizeof(buf));
	assert_true(len >= PY_DEBUG_OFFSETS_MIN);
	assert_int_equal(pylayout_from_debug_offsets(buf, len, &l), 0);
	check_layout(&lib, &l);
	printf("3.13: code_ident %u frame_read %u code_instr_base %u\n", l.bpf.code_ident,
	       l.bpf.frame_read, l.bpf.code_instr_base);

	/* What a hostile process could publish instead. */
	assert_int_equal(pylayout_from_debug_offsets(buf, PY_DEBUG_OFFSETS_MIN - 1, &l2), -EINVAL);
	memcpy(bad, buf, len);
	bad[0] = 'y';
	assert_int_equal(pylayout_from_debug_offsets(bad, len, &l2), -EINVAL);
	memcpy(bad, buf, len);
	put64(bad, 8, 0x030e00f0); /* 3.14: another struct layout */
	assert_int_equal(pylayout_from_debug_offsets(bad, len, &l2), -EINVAL);
	memcpy(bad, buf, len);
	put64(bad, 16, 1); /* free-threaded */
	assert_int_equal(pylayout_from_debug_offsets(bad, len, &l2), -EOPNOTSUPP);
	memcpy(bad, buf, len);
	put64(bad, 248, 80); /* instr_ptr at the frame's end */
	assert_int_equal(pylayout_from_debug_offsets(bad, len, &l2), -EINVAL);
	memcpy(bad, buf, len);
	put64(bad, 224, 1024); /* a frame BPF cannot read at once */
	put64(bad, 248, 1000);
	assert_int_equal(pylayout_from_debug_offsets(bad, len, &l2), -EINVAL);
	memcpy(bad, buf, len);
	put64(bad, 272, 1ull << 40); /* code object size */
	assert_int_equal(pylayout_from_debug_offsets(bad, len, &l2), -EINVAL);
	memcpy(bad, buf, len);
	put64(bad, 312, 2); /* co_firstlineno with no room for the identity bytes */
	assert_int_equal(pylayout_from_debug_offsets(bad, len, &l2), -EINVAL);
	memcpy(bad, buf, len);
	put64(bad, 312, 120); /* identity bytes over co_name */
	assert_int_equal(pylayout_from_debug_offsets(bad, len, &l2), -EINVAL);
	memcpy(bad, buf, len);
	put64(bad, 360, 16); /* ob_type elsewhere */
	assert_int_equal(pylayout_from_debug_offsets(bad, len, &l2), -EINVAL);
	lib_close(&lib);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tables),
		cmocka_unit_test(test_debug_offsets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
