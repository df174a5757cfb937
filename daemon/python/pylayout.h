/* SPDX-License-Identifier: MIT */
/*
 * PyLayout: where CPython keeps what profq reads of a running interpreter, per version: the
 * offsets the BPF walk of the frame chain needs (struct profq_py_layout, bpf/profq.h) and those
 * profqd reads itself (interpreters, thread states, code objects, strings, bytes).
 *
 * 3.8 to 3.12 come from tables of release builds (x86-64, with the GIL); 3.13 from the
 * _Py_DebugOffsets the interpreter publishes at the start of _PyRuntime, which this module
 * checks against what a sane interpreter can have (the bytes come from a hostile process).
 * Pure data, no state: thread-safe.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "profq.h"

/* PyLayout.line_format: how a code object's line table is encoded. */
enum {
	PY_LINES_LNOTAB = 1, /* 3.8, 3.9: co_lnotab, (byte delta, signed line delta) pairs */
	PY_LINES_310 = 2,    /* 3.10: co_linetable, (byte delta, line delta, -128: none) pairs */
	PY_LINES_311 = 3,    /* 3.11+: the location table, varint entries in code units */
};

/* Offsets profqd reads and the BPF part have no such value. */
#define PY_OFFSET_NONE UINT32_MAX

typedef struct PyLayout {
	uint32_t hexversion;		    /* PY_VERSION_HEX of major.minor: 0x030b0000 */
	struct profq_py_layout bpf;	    /* what the BPF walk needs */
	uint32_t runtime_interpreters_head; /* _PyRuntimeState -> first PyInterpreterState */
	uint32_t interp_next;		    /* PyInterpreterState -> next */
	uint32_t interp_threads_head;	    /* PyInterpreterState -> first PyThreadState */
	uint32_t tstate_next;		    /* PyThreadState -> next */
	uint32_t code_filename;		    /* PyCodeObject fields (pointers, but firstlineno) */
	uint32_t code_name;
	uint32_t code_qualname; /* PY_OFFSET_NONE before 3.11 */
	uint32_t code_firstlineno;
	uint32_t code_linetable;       /* co_lnotab in 3.8/3.9, co_linetable 3.10+ */
	uint32_t code_size;	       /* bytes of PyCodeObject covering every field above */
	uint32_t unicode_state;	       /* PyASCIIObject.state (the kind/compact/ascii bits) */
	uint32_t unicode_length;       /* in code points */
	uint32_t unicode_ascii_data;   /* sizeof(PyASCIIObject): a compact ASCII string's data */
	uint32_t unicode_compact_data; /* sizeof(PyCompactUnicodeObject): other compact strings */
	uint32_t bytes_size;	       /* PyBytesObject ob_size */
	uint32_t bytes_data;	       /* PyBytesObject ob_sval */
	uint8_t line_format;	       /* PY_LINES_* */
} PyLayout;

/* The PyObject header, the same in every version (non-free-threaded). */
#define PY_OBJECT_TYPE 8 /* ob_type */
/* PyASCIIObject.state bits, the same in 3.8 to 3.13. */
#define PY_UNICODE_KIND_SHIFT 2
#define PY_UNICODE_KIND_MASK 7u
#define PY_UNICODE_COMPACT (1u << 5)
#define PY_UNICODE_ASCII (1u << 6)

/* The layout of CPython major.minor from the tables (3.8 to 3.12), NULL for other versions
 * (3.13+ need the interpreter's debug offsets). Static storage. */
const PyLayout *pylayout_for_version(unsigned major, unsigned minor);

/* The cookie at the start of _PyRuntime in 3.13+, and the bytes of _Py_DebugOffsets this module
 * reads. */
#define PY_DEBUG_COOKIE "xdebugpy"
#define PY_DEBUG_OFFSETS_MIN 584

/* 3.13+: the layout from the bytes at the start of _PyRuntime (len: as many as were read, at
 * least PY_DEBUG_OFFSETS_MIN). -EINVAL: not the cookie, too short, a debug-offsets version this
 * module does not know, or an offset beyond the structure size the interpreter declares, or a
 * declared size beyond what a sane interpreter has; -EOPNOTSUPP: a free-threaded build. */
int pylayout_from_debug_offsets(const void *buf, size_t len, PyLayout *ret);
