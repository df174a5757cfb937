/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer: CPython code objects and line tables read from a hostile process's memory
 * (daemon/python/). An input is an 8-byte header, then the process's memory, mapped at
 * FUZZ_MEM_BASE:
 *   u8  layout: 0-4 the tables of 3.8-3.12, 5 the layout the memory's first bytes declare as
 *       3.13's _Py_DebugOffsets (else 3.12's), others 3.12's
 *   u8  pad[3]
 *   u32 offset: the byte offset whose line is asked (besides a sweep of the table)
 * The code object is at FUZZ_MEM_BASE + FUZZ_CODE_AT, its type FUZZ_CODE_TYPE. The debug offsets
 * are parsed in every run; what parses is checked against the bounds the BPF walk relies on.
 *
 *   fuzz-pycode -max_total_time=60 CORPUS_DIR tests/fuzz/corpus/pycode
 */
#include <errno.h>
#include <string.h>

#include "fuzz-check.h"
#include "python/pycode.h"

#define FUZZ_MEM_BASE 0x10000ull
#define FUZZ_CODE_AT 1024
#define FUZZ_CODE_TYPE 0x1000ull
#define HEADER 8

typedef struct Mem {
	const uint8_t *data;
	size_t size;
} Mem;

static int mem_read(void *userdata, uint64_t addr, void *buf, size_t len)
{
	const Mem *m = userdata;

	if (addr < FUZZ_MEM_BASE || addr - FUZZ_MEM_BASE > m->size ||
	    len > m->size - (addr - FUZZ_MEM_BASE))
		return -EFAULT;
	memcpy(buf, m->data + (addr - FUZZ_MEM_BASE), len);
	return 0;
}

static void check_layout(const PyLayout *l)
{
	const struct profq_py_layout *b = &l->bpf;

	FUZZ_CHECK(b->frame_read <= PROFQ_PY_FRAME_READ_MAX);
	FUZZ_CHECK(b->frame_previous + 8u <= b->frame_read);
	FUZZ_CHECK(b->frame_code + 8u <= b->frame_read);
	FUZZ_CHECK(b->frame_instr + 8u <= b->frame_read);
	FUZZ_CHECK(b->frame_owner + 1u <= b->frame_read);
	FUZZ_CHECK(b->code_ident + PROFQ_PY_IDENT_LEN <= l->code_size);
	FUZZ_CHECK(l->code_firstlineno >= b->code_ident &&
		   l->code_firstlineno + 4 <= b->code_ident + (uint32_t)PROFQ_PY_IDENT_LEN);
	FUZZ_CHECK(l->code_size <= 4096);
	FUZZ_CHECK(l->line_format == PY_LINES_311);
}

/* Valid UTF-8 with no NUL inside, at most 4 bytes a character and PY_STRING_MAX characters. */
static void check_utf8(const char *s)
{
	size_t chars = 0, i = 0, len = strlen(s);

	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		size_t n = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;

		FUZZ_CHECK(c < 0x80 || (c >= 0xc2 && c <= 0xf4));
		FUZZ_CHECK(i + n <= len);
		for (size_t k = 1; k < n; k++)
			FUZZ_CHECK(((unsigned char)s[i + k] & 0xc0) == 0x80);
		i += n;
		chars++;
	}
	FUZZ_CHECK(chars <= PY_STRING_MAX);
}

static void lines(const PyLayout *l, const uint8_t *table, size_t len, uint32_t offset)
{
	uint64_t span = 2 * (uint64_t)len + 8;

	(void)pycode_line(l, table, len, 7, offset);
	/* 33 offsets over the range the table can cover (each lookup reads the table). */
	for (uint64_t k = 0; k <= 32; k++)
		(void)pycode_line(l, table, len, 7, (uint32_t)(k * span / 32) & ~1u);
	/* A frame not started: the first line, whatever the table. */
	FUZZ_CHECK(pycode_line(l, table, len, 7, (uint32_t)-2) == 7);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	PyLayout from_debug;
	const PyLayout *l = pylayout_for_version(3, 12);
	Mem mem;
	PyCode c;
	uint32_t offset;
	int r;

	if (size < HEADER)
		return 0;
	mem = (Mem){ .data = data + HEADER, .size = size - HEADER };
	memcpy(&offset, data + 4, 4);

	r = pylayout_from_debug_offsets(mem.data, mem.size, &from_debug);
	FUZZ_CHECK(r == 0 || r == -EINVAL || r == -EOPNOTSUPP);
	if (r == 0)
		check_layout(&from_debug);
	if (data[0] < 5)
		l = pylayout_for_version(3, 8 + data[0]);
	else if (data[0] == 5 && r == 0)
		l = &from_debug;
	FUZZ_CHECK(l);

	r = pycode_read(l, mem_read, &mem, FUZZ_MEM_BASE + FUZZ_CODE_AT, FUZZ_CODE_TYPE, &c);
	FUZZ_CHECK(r == 0 || r == -EINVAL || r == -EFAULT || r == -ENOMEM || r == -ESTALE);
	if (r == 0) {
		check_utf8(c.qualname);
		check_utf8(c.filename);
		FUZZ_CHECK(c.linetable_len <= PY_LINETABLE_MAX);
		FUZZ_CHECK((c.linetable_len == 0) == (c.linetable == NULL));
		lines(l, c.linetable, c.linetable_len, offset);
		pycode_done(&c);
	}
	/* The memory itself as a table of each format. */
	for (unsigned v = 8; v <= 12; v++)
		lines(pylayout_for_version(3, v), mem.data, mem.size, offset);
	return 0;
}
