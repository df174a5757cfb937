/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include "python/pylayout.h"

#define N PROFQ_PY_NONE

/*
 * Frame owners (enum _frameowner): FRAME_OWNED_BY_CSTACK, the shim frame each call of the
 * evaluation function pushes, exists from 3.12 (value 3); 3.11 marks entry frames with is_entry.
 *
 * The identity bytes (code_ident) are 16 bytes of int fields set when the code object is made
 * and never written after, co_firstlineno among them: never co_warmup (3.11) nor the _co_*
 * caches and counters (3.12+), which the interpreter changes as the code runs.
 *   3.8-3.10  co_nlocals, co_stacksize, co_flags, co_firstlineno          (28..44)
 *   3.11      co_kwonlyargcount, co_stacksize, co_firstlineno, co_nlocalsplus (64..80)
 *   3.12+     co_stacksize, co_firstlineno, co_nlocalsplus, co_framesize  (64..80)
 *
 * The byte offset the BPF walk records is the one each version's PyFrame_GetLineNumber hands to
 * PyCode_Addr2Line, so lines come out as CPython's own, with no instruction of difference:
 *   3.8, 3.9  f_lasti (bytes)
 *   3.10      f_lasti * sizeof(_Py_CODEUNIT)
 *   3.11/3.12 _PyInterpreterFrame_LASTI() * 2 = prev_instr - _PyCode_CODE(code), in bytes
 *   3.13      _PyInterpreterFrame_LASTI() * 2 = instr_ptr - _PyCode_CODE(code), in bytes
 * A frame that has not started has f_lasti -1 (3.8-3.10) or prev_instr one unit before the code
 * (3.11/3.12): a negative offset, for which PyCode_Addr2Line gives co_firstlineno. A caller's
 * prev_instr (3.11/3.12) is the last inline-cache unit of its CALL, not the CALL itself: the
 * same line-table entry, so the same line, but not the CALL's offset (3.13's instr_ptr is).
 */
static const PyLayout layouts[] = {
	{
		.hexversion = 0x03080000,
		.bpf = { .tstate_frame = 24,
			 .cframe_frame = N,
			 .tstate_thread_id = 176,
			 .frame_previous = 24,
			 .frame_code = 32,
			 .frame_instr = 104,
			 .frame_owner = N,
			 .frame_is_entry = N,
			 .code_instr_base = N,
			 .code_ident = 28,
			 .model = PROFQ_PY_MODEL_FRAMEOBJ,
			 .lasti_scale = 1,
			 .owner_cstack = 0xff,
			 .frame_read = 108 },
		.runtime_interpreters_head = 32,
		.interp_next = 0,
		.interp_threads_head = 8,
		.tstate_next = 8,
		.code_filename = 104,
		.code_name = 112,
		.code_qualname = PY_OFFSET_NONE,
		.code_firstlineno = 40,
		.code_linetable = 120,
		.code_size = 176,
		.unicode_state = 32,
		.unicode_length = 16,
		.unicode_ascii_data = 48,
		.unicode_compact_data = 72,
		.bytes_size = 16,
		.bytes_data = 32,
		.line_format = PY_LINES_LNOTAB,
	},
	{
		.hexversion = 0x03090000,
		.bpf = { .tstate_frame = 24,
			 .cframe_frame = N,
			 .tstate_thread_id = 176,
			 .frame_previous = 24,
			 .frame_code = 32,
			 .frame_instr = 104,
			 .frame_owner = N,
			 .frame_is_entry = N,
			 .code_instr_base = N,
			 .code_ident = 28,
			 .model = PROFQ_PY_MODEL_FRAMEOBJ,
			 .lasti_scale = 1,
			 .owner_cstack = 0xff,
			 .frame_read = 108 },
		.runtime_interpreters_head = 32,
		.interp_next = 0,
		.interp_threads_head = 8,
		.tstate_next = 8,
		.code_filename = 104,
		.code_name = 112,
		.code_qualname = PY_OFFSET_NONE,
		.code_firstlineno = 40,
		.code_linetable = 120,
		.code_size = 176,
		.unicode_state = 32,
		.unicode_length = 16,
		.unicode_ascii_data = 48,
		.unicode_compact_data = 72,
		.bytes_size = 16,
		.bytes_data = 32,
		.line_format = PY_LINES_LNOTAB,
	},
	{
		.hexversion = 0x030a0000,
		.bpf = { .tstate_frame = 24,
			 .cframe_frame = N,
			 .tstate_thread_id = 176,
			 .frame_previous = 24,
			 .frame_code = 32,
			 .frame_instr = 96,
			 .frame_owner = N,
			 .frame_is_entry = N,
			 .code_instr_base = N,
			 .code_ident = 28,
			 .model = PROFQ_PY_MODEL_FRAMEOBJ,
			 .lasti_scale = 2,
			 .owner_cstack = 0xff,
			 .frame_read = 100 },
		.runtime_interpreters_head = 32,
		.interp_next = 0,
		.interp_threads_head = 8,
		.tstate_next = 8,
		.code_filename = 104,
		.code_name = 112,
		.code_qualname = PY_OFFSET_NONE,
		.code_firstlineno = 40,
		.code_linetable = 120,
		.code_size = 176,
		.unicode_state = 32,
		.unicode_length = 16,
		.unicode_ascii_data = 48,
		.unicode_compact_data = 72,
		.bytes_size = 16,
		.bytes_data = 32,
		.line_format = PY_LINES_310,
	},
	{
		.hexversion = 0x030b0000,
		.bpf = { .tstate_frame = 56,
			 .cframe_frame = 8,
			 .tstate_thread_id = 152,
			 .frame_previous = 48,
			 .frame_code = 32,
			 .frame_instr = 56,
			 .frame_owner = 69,
			 .frame_is_entry = 68,
			 .code_instr_base = 184,
			 .code_ident = 64,
			 .model = PROFQ_PY_MODEL_INTERP,
			 .lasti_scale = 1,
			 .owner_cstack = 0xff,
			 .frame_read = 70 },
		.runtime_interpreters_head = 40,
		.interp_next = 0,
		.interp_threads_head = 16,
		.tstate_next = 8,
		.code_filename = 112,
		.code_name = 120,
		.code_qualname = 128,
		.code_firstlineno = 72,
		.code_linetable = 136,
		.code_size = 192,
		.unicode_state = 32,
		.unicode_length = 16,
		.unicode_ascii_data = 48,
		.unicode_compact_data = 72,
		.bytes_size = 16,
		.bytes_data = 32,
		.line_format = PY_LINES_311,
	},
	{
		.hexversion = 0x030c0000,
		.bpf = { .tstate_frame = 56,
			 .cframe_frame = 0,
			 .tstate_thread_id = 136,
			 .frame_previous = 8,
			 .frame_code = 0,
			 .frame_instr = 56,
			 .frame_owner = 70,
			 .frame_is_entry = N,
			 .code_instr_base = 192,
			 .code_ident = 64,
			 .model = PROFQ_PY_MODEL_INTERP,
			 .lasti_scale = 1,
			 .owner_cstack = 3,
			 .frame_read = 71 },
		.runtime_interpreters_head = 40,
		.interp_next = 0,
		.interp_threads_head = 72,
		.tstate_next = 8,
		.code_filename = 112,
		.code_name = 120,
		.code_qualname = 128,
		.code_firstlineno = 68,
		.code_linetable = 136,
		.code_size = 200,
		.unicode_state = 32,
		.unicode_length = 16,
		.unicode_ascii_data = 40,
		.unicode_compact_data = 56,
		.bytes_size = 16,
		.bytes_data = 32,
		.line_format = PY_LINES_311,
	},
};

const PyLayout *pylayout_for_version(unsigned major, unsigned minor)
{
	uint32_t hex = (major << 24) | (minor << 16);

	if (major > 0xff || minor > 0xff)
		return NULL;
	for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++)
		if (layouts[i].hexversion == hex)
			return &layouts[i];
	return NULL;
}

/*
 * _Py_DebugOffsets of 3.13 (Include/internal/pycore_runtime.h): u64 fields, each group led by
 * the size of the structure its offsets are in. The positions below are of the fields in that
 * struct; the layout of the struct changes between minor versions, so only 3.13's is known.
 */
enum {
	DO_VERSION = 8,
	DO_FREE_THREADED = 16,
	DO_RUNTIME_SIZE = 24,
	DO_RUNTIME_INTERPRETERS_HEAD = 40,
	DO_INTERP_SIZE = 48,
	DO_INTERP_NEXT = 64,
	DO_INTERP_THREADS_HEAD = 72,
	DO_TSTATE_SIZE = 152,
	DO_TSTATE_NEXT = 168,
	DO_TSTATE_CURRENT_FRAME = 184,
	DO_TSTATE_THREAD_ID = 192,
	DO_TSTATE_NATIVE_THREAD_ID = 200,
	DO_FRAME_SIZE = 224,
	DO_FRAME_PREVIOUS = 232,
	DO_FRAME_EXECUTABLE = 240,
	DO_FRAME_INSTR_PTR = 248,
	DO_FRAME_OWNER = 264,
	DO_CODE_SIZE = 272,
	DO_CODE_FILENAME = 280,
	DO_CODE_NAME = 288,
	DO_CODE_QUALNAME = 296,
	DO_CODE_LINETABLE = 304,
	DO_CODE_FIRSTLINENO = 312,
	DO_CODE_ADAPTIVE = 344,
	DO_OBJECT_SIZE = 352,
	DO_OBJECT_TYPE = 360,
	DO_BYTES_SIZE = 512,
	DO_BYTES_OB_SIZE = 520,
	DO_BYTES_OB_SVAL = 528,
	DO_UNICODE_SIZE = 536,
	DO_UNICODE_STATE = 544,
	DO_UNICODE_LENGTH = 552,
	DO_UNICODE_ASCII_SIZE = 560,
};

/* The largest structure sizes a sane interpreter declares (3.13: runtime 283 KB, interpreter
 * 195 KB, thread state 304, frame 80, code 208, str 40, bytes 40). */
#define MAX_STATE_SIZE (4u << 20)
#define MAX_OBJECT_SIZE 4096u

typedef struct DebugReader {
	const uint8_t *buf;
	int r;
} DebugReader;

static uint64_t field(const uint8_t *buf, size_t pos)
{
	uint64_t v;

	memcpy(&v, buf + pos, sizeof(v));
	return v;
}

/* An offset of `width` bytes within a structure of the size declared at size_pos, itself at
 * most max_size: the offset, else PY_OFFSET_NONE with d->r set. */
static uint32_t offset_in(DebugReader *d, size_t size_pos, uint64_t max_size, size_t pos,
			  uint64_t width)
{
	uint64_t size = field(d->buf, size_pos), off = field(d->buf, pos);

	if (size > max_size || off > size || width > size - off) {
		d->r = -EINVAL;
		return PY_OFFSET_NONE;
	}
	return (uint32_t)off;
}

/* The identity bytes of a 3.13 code object: co_stacksize, co_firstlineno, co_nlocalsplus,
 * co_framesize, which lie around co_firstlineno and clear of the fields read as pointers. */
static int ident_313(const PyLayout *l, uint16_t *ret)
{
	const uint32_t ptrs[] = { l->code_filename, l->code_name, l->code_qualname,
				  l->code_linetable };
	uint32_t ident;

	if (l->code_firstlineno < 4)
		return -EINVAL;
	ident = l->code_firstlineno - 4;
	if (ident + PROFQ_PY_IDENT_LEN > l->code_size || ident + PROFQ_PY_IDENT_LEN > PROFQ_PY_NONE)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(ptrs) / sizeof(ptrs[0]); i++)
		if (ptrs[i] < ident + PROFQ_PY_IDENT_LEN && ptrs[i] + 8 > ident)
			return -EINVAL;
	/* The bytecode, rewritten as the code runs, lies after them. */
	if (l->bpf.code_instr_base < ident + PROFQ_PY_IDENT_LEN)
		return -EINVAL;
	*ret = (uint16_t)ident;
	return 0;
}

static uint32_t max_u32(uint32_t a, uint32_t b)
{
	return a > b ? a : b;
}

int pylayout_from_debug_offsets(const void *buf, size_t len, PyLayout *ret)
{
	DebugReader d = { .buf = buf };
	PyLayout l = { 0 };
	uint64_t version;
	uint32_t frame_end;
	int r;

	if (len < PY_DEBUG_OFFSETS_MIN || memcmp(buf, PY_DEBUG_COOKIE, 8) != 0)
		return -EINVAL;
	version = field(d.buf, DO_VERSION);
	if ((version >> 16) != 0x030d)
		return -EINVAL;
	if (field(d.buf, DO_FREE_THREADED) != 0)
		return -EOPNOTSUPP;

	l.hexversion = 0x030d0000;
	l.runtime_interpreters_head = offset_in(&d, DO_RUNTIME_SIZE, MAX_STATE_SIZE,
						DO_RUNTIME_INTERPRETERS_HEAD, 8);
	l.interp_next = offset_in(&d, DO_INTERP_SIZE, MAX_STATE_SIZE, DO_INTERP_NEXT, 8);
	l.interp_threads_head = offset_in(&d, DO_INTERP_SIZE, MAX_STATE_SIZE,
					  DO_INTERP_THREADS_HEAD, 8);
	l.tstate_next = offset_in(&d, DO_TSTATE_SIZE, MAX_OBJECT_SIZE, DO_TSTATE_NEXT, 8);
	l.code_size = (uint32_t)field(d.buf, DO_CODE_SIZE);
	l.code_filename = offset_in(&d, DO_CODE_SIZE, MAX_OBJECT_SIZE, DO_CODE_FILENAME, 8);
	l.code_name = offset_in(&d, DO_CODE_SIZE, MAX_OBJECT_SIZE, DO_CODE_NAME, 8);
	l.code_qualname = offset_in(&d, DO_CODE_SIZE, MAX_OBJECT_SIZE, DO_CODE_QUALNAME, 8);
	l.code_linetable = offset_in(&d, DO_CODE_SIZE, MAX_OBJECT_SIZE, DO_CODE_LINETABLE, 8);
	l.code_firstlineno = offset_in(&d, DO_CODE_SIZE, MAX_OBJECT_SIZE, DO_CODE_FIRSTLINENO, 4);
	l.unicode_state = offset_in(&d, DO_UNICODE_SIZE, MAX_OBJECT_SIZE, DO_UNICODE_STATE, 4);
	l.unicode_length = offset_in(&d, DO_UNICODE_SIZE, MAX_OBJECT_SIZE, DO_UNICODE_LENGTH, 8);
	l.unicode_ascii_data = offset_in(&d, DO_UNICODE_SIZE, MAX_OBJECT_SIZE,
					 DO_UNICODE_ASCII_SIZE, 0);
	/* PyCompactUnicodeObject: the PyASCIIObject, then utf8_length and utf8 (3.12+). */
	l.unicode_compact_data = l.unicode_ascii_data + 16;
	l.bytes_size = offset_in(&d, DO_BYTES_SIZE, MAX_OBJECT_SIZE, DO_BYTES_OB_SIZE, 8);
	l.bytes_data = offset_in(&d, DO_BYTES_SIZE, MAX_OBJECT_SIZE, DO_BYTES_OB_SVAL, 1);
	l.line_format = PY_LINES_311;
	/* The object header is not ours to move: pycode reads ob_type at PY_OBJECT_TYPE. */
	if (offset_in(&d, DO_OBJECT_SIZE, MAX_OBJECT_SIZE, DO_OBJECT_TYPE, 8) != PY_OBJECT_TYPE)
		d.r = -EINVAL;

	l.bpf = (struct profq_py_layout){
		.tstate_frame = (uint16_t)offset_in(&d, DO_TSTATE_SIZE, MAX_OBJECT_SIZE,
						    DO_TSTATE_CURRENT_FRAME, 8),
		.cframe_frame = PROFQ_PY_NONE,
		.tstate_thread_id = (uint16_t)offset_in(&d, DO_TSTATE_SIZE, MAX_OBJECT_SIZE,
							DO_TSTATE_THREAD_ID, 8),
		.frame_previous = (uint16_t)offset_in(&d, DO_FRAME_SIZE, PROFQ_PY_FRAME_READ_MAX,
						      DO_FRAME_PREVIOUS, 8),
		.frame_code = (uint16_t)offset_in(&d, DO_FRAME_SIZE, PROFQ_PY_FRAME_READ_MAX,
						  DO_FRAME_EXECUTABLE, 8),
		.frame_instr = (uint16_t)offset_in(&d, DO_FRAME_SIZE, PROFQ_PY_FRAME_READ_MAX,
						   DO_FRAME_INSTR_PTR, 8),
		.frame_owner = (uint16_t)offset_in(&d, DO_FRAME_SIZE, PROFQ_PY_FRAME_READ_MAX,
						   DO_FRAME_OWNER, 1),
		.frame_is_entry = PROFQ_PY_NONE,
		.code_instr_base = (uint16_t)offset_in(&d, DO_CODE_SIZE, MAX_OBJECT_SIZE,
						       DO_CODE_ADAPTIVE, 0),
		.model = PROFQ_PY_MODEL_INTERP,
		.lasti_scale = 1,
		.owner_cstack = 3, /* FRAME_OWNED_BY_CSTACK */
	};
	if (d.r < 0)
		return d.r;
	frame_end = max_u32(max_u32(l.bpf.frame_previous, l.bpf.frame_code), l.bpf.frame_instr) + 8;
	l.bpf.frame_read = (uint8_t)max_u32(frame_end, l.bpf.frame_owner + 1u);
	r = ident_313(&l, &l.bpf.code_ident);
	if (r < 0)
		return r;
	*ret = l;
	return 0;
}
