/* SPDX-License-Identifier: MIT */
/*
 * PyCode: a CPython code object read from a process's memory, and the source line of a byte
 * offset in it, for naming the (code address, offset) pairs the BPF walk records.
 *
 * Memory is read through a callback (profqd: pread on /proc/PID/mem; tests and the fuzzer: a
 * buffer). Everything read is hostile: every length is checked and bounded before it is used,
 * strings are cut at PY_STRING_MAX characters and line tables refused beyond PY_LINETABLE_MAX.
 * No state: thread-safe if the callback is.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "python/pylayout.h"

/* Reads len bytes at addr of the process: 0, or -errno (all or nothing). */
typedef int (*PyReadFn)(void *userdata, uint64_t addr, void *buf, size_t len);

#define PY_STRING_MAX 1024	     /* characters of a name kept; longer ones are cut */
#define PY_LINETABLE_MAX (64u << 10) /* bytes of a line table */

typedef struct PyCode {
	char *qualname; /* UTF-8, malloc'd; co_name before 3.11 (no co_qualname) */
	char *filename; /* UTF-8, malloc'd */
	uint32_t firstlineno;
	uint8_t *linetable; /* a copy, malloc'd (NULL when empty) */
	size_t linetable_len;
	uint32_t ident; /* py_ident_hash() of the PROFQ_PY_IDENT_LEN bytes at code_ident */
} PyCode;

/* Reads the code object at addr: its ob_type must be code_type (PyCode_Type's address in the
 * process); then its names (compact str objects, converted to UTF-8, cut at PY_STRING_MAX
 * characters) and line table. -EINVAL: anything inconsistent (wrong type, not a compact string,
 * a length out of bounds, a line table over PY_LINETABLE_MAX); -ESTALE: a freed object (its
 * reference count is no live object's), or one freed or changed while it was read (read again
 * after its strings, its type, name, file and table pointers or identity bytes differ);
 * -ENOMEM; else the read's error.
 * On success *ret owns its strings: pycode_done() frees them. */
int pycode_read(const PyLayout *l, PyReadFn read, void *userdata, uint64_t addr, uint64_t code_type,
		PyCode *ret);
/* Frees what *c owns and clears it; a cleared PyCode is a no-op. */
void pycode_done(PyCode *c);

#define PY_INTERPRETERS_MAX 16 /* interpreters walked in one process */
#define PY_THREADS_MAX 1024    /* thread states read in one process */

/* A thread state of an interpreter: the pthread_t it says it is, and its address. */
typedef struct PyThreadRef {
	uint64_t thread;
	uint64_t tstate;
} PyThreadRef;

/* Walks the interpreters of _PyRuntime at runtime and their thread lists: up to PY_THREADS_MAX
 * steps in all (a list that loops, or through states of no thread, ends there), the states
 * with a thread id into out (PY_THREADS_MAX of them), *ret_n of them. 0, or the read's error. */
int pythreads_read(const PyLayout *l, PyReadFn read, void *userdata, uint64_t runtime,
		   PyThreadRef *out, size_t *ret_n);

/* The source line of the instruction at byte offset `offset` (as the BPF walk records it,
 * pylayout.h) exactly as the version's PyCode_Addr2Line() gives it; a negative offset (as an
 * int32: a frame not started yet) gives firstlineno as CPython does. 0 when the table says the
 * instruction has no line, the offset is past the table, or the table is malformed. Reads no
 * more than len bytes of table. */
uint32_t pycode_line(const PyLayout *l, const uint8_t *table, size_t len, uint32_t firstlineno,
		     uint32_t offset);

/* profq_py_ident_hash() (bpf/profq.h) of the PROFQ_PY_IDENT_LEN bytes at bytes16. */
uint32_t py_ident_hash(const void *bytes16);
