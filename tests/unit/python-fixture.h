/* SPDX-License-Identifier: MIT */
/*
 * A CPython process in a store, as profqd stores one (test-query, test-cli-python): each Python
 * function is a frame (FRAME_PYTHON, module "[python]", the .py file and the line executing,
 * declared at the function's first line) on the leaf side of the frame of the interpreter's
 * evaluation function that ran it (FRAME_PYTHON_EVAL). pid 200 of uid 1000, one closed window
 * [start, start + 10 s), 100 samples; stacks leaf first, Python frames marked [py], evaluation
 * frames [eval]:
 *
 *   40  long_richcompare, list_contains, Worker.parse:12 [py], main:5 [py],
 *       _PyEval_EvalFrameDefault:1200 [eval], PyEval_EvalCode, main (C), __libc_start_main
 *   30  Worker.parse:14 [py], main:5 [py], _PyEval_EvalFrameDefault:1200 [eval], ...
 *   20  PyObject_Malloc, <module> of worker.py:30 [py], _PyEval_EvalFrameDefault:1300 [eval],
 *       builtin_exec, <module> of run.py:20 [py], _PyEval_EvalFrameDefault:1200 [eval], ...
 *   10  [python] (a Python frame that could not be named), _PyEval_EvalFrameDefault:1200 [eval],
 *       ...
 *
 * Worker.parse is declared at worker.py:10, main at run.py:3, each <module> at line 1. Built
 * with python false, the same process as profqd stored it before Python frames: the Python
 * frames left out, the evaluation frames plain native frames.
 */
#pragma once

#include "store/store.h"

#define PY_PID 200
#define PY_UID 1000
#define PY_WORKER "/srv/app/worker.py"
#define PY_RUN "/srv/app/run.py"
#define PY_INTERP "python3.11"

typedef struct PyFixtureFrame {
	const char *function, *module, *file;
	uint32_t line, decl_line, flags;
} PyFixtureFrame;

enum {
	PYF_CMP,
	PYF_CONTAINS,
	PYF_MALLOC,
	PYF_EXEC,
	PYF_EVAL1,
	PYF_EVAL2,
	PYF_EVALCODE,
	PYF_MAIN_C,
	PYF_LIBC,
	PYF_PARSE12,
	PYF_PARSE14,
	PYF_MAIN_PY,
	PYF_MOD_RUN,
	PYF_MOD_WORKER,
	PYF_UNNAMED,
	_PYF_MAX,
};

static const PyFixtureFrame py_fixture_frames[_PYF_MAX] = {
	[PYF_CMP] = { "long_richcompare", PY_INTERP, "Objects/longobject.c", 3000, 2990, 0 },
	[PYF_CONTAINS] = { "list_contains", PY_INTERP, "Objects/listobject.c", 450, 440, 0 },
	[PYF_MALLOC] = { "PyObject_Malloc", PY_INTERP, "Objects/obmalloc.c", 700, 690, 0 },
	[PYF_EXEC] = { "builtin_exec", PY_INTERP, "Python/bltinmodule.c", 1100, 1050, 0 },
	[PYF_EVAL1] = { "_PyEval_EvalFrameDefault", PY_INTERP, "Python/ceval.c", 1200, 700,
			FRAME_PYTHON_EVAL },
	[PYF_EVAL2] = { "_PyEval_EvalFrameDefault", PY_INTERP, "Python/ceval.c", 1300, 700,
			FRAME_PYTHON_EVAL },
	[PYF_EVALCODE] = { "PyEval_EvalCode", PY_INTERP, "Python/ceval.c", 580, 570, 0 },
	[PYF_MAIN_C] = { "main", PY_INTERP, "Programs/python.c", 15, 14, 0 },
	[PYF_LIBC] = { "__libc_start_main", "libc.so.6", NULL, 0, 0, 0 },
	[PYF_PARSE12] = { "Worker.parse", "[python]", PY_WORKER, 12, 10, FRAME_PYTHON },
	[PYF_PARSE14] = { "Worker.parse", "[python]", PY_WORKER, 14, 10, FRAME_PYTHON },
	[PYF_MAIN_PY] = { "main", "[python]", PY_RUN, 5, 3, FRAME_PYTHON },
	[PYF_MOD_RUN] = { "<module>", "[python]", PY_RUN, 20, 1, FRAME_PYTHON },
	[PYF_MOD_WORKER] = { "<module>", "[python]", PY_WORKER, 30, 1, FRAME_PYTHON },
	[PYF_UNNAMED] = { "[python]", "[python]", NULL, 0, 0, FRAME_PYTHON },
};

#define PYF_STACK_MAX 9

static const struct {
	uint32_t samples;
	int frames[PYF_STACK_MAX + 1]; /* -1 ends */
} py_fixture_stacks[] = {
	{ 40,
	  { PYF_CMP, PYF_CONTAINS, PYF_PARSE12, PYF_MAIN_PY, PYF_EVAL1, PYF_EVALCODE, PYF_MAIN_C,
	    PYF_LIBC, -1 } },
	{ 30, { PYF_PARSE14, PYF_MAIN_PY, PYF_EVAL1, PYF_EVALCODE, PYF_MAIN_C, PYF_LIBC, -1 } },
	{ 20,
	  { PYF_MALLOC, PYF_MOD_WORKER, PYF_EVAL2, PYF_EXEC, PYF_MOD_RUN, PYF_EVAL1, PYF_EVALCODE,
	    PYF_MAIN_C, PYF_LIBC, -1 } },
	{ 10, { PYF_UNNAMED, PYF_EVAL1, PYF_EVALCODE, PYF_MAIN_C, PYF_LIBC, -1 } },
};

static inline StrId py_fixture_str(Store *s, const char *v)
{
	StrId id = 0;

	if (v)
		assert_int_equal(store_intern_string(s, v, &id), 0);
	return id;
}

/* The store's frame of py_fixture_frames[i] (interned once: the same frame again after). */
static inline FrameId py_fixture_frame(Store *s, int i, bool python)
{
	const PyFixtureFrame *d = &py_fixture_frames[i];
	StoreFrame f = { .line = d->line,
			 .decl_line = d->decl_line,
			 .flags = python ? d->flags : d->flags & ~FRAME_PYTHON_EVAL,
			 .address = 0x1000 + 0x10 * (uint64_t)i };
	FrameId id;

	f.function = py_fixture_str(s, d->function);
	f.module = py_fixture_str(s, d->module);
	f.file = f.decl_file = py_fixture_str(s, d->file);
	assert_int_equal(store_intern_frame(s, &f, &id), 0);
	return id;
}

/* Fills the store (no window open) and returns the process. */
static inline ProcId py_fixture_build(Store *s, int64_t start_ns, uint64_t period_ns, bool python)
{
	StoreProc p = { .pid = PY_PID,
			.ppid = 1,
			.uid = PY_UID,
			.start_ns = start_ns - 60 * (int64_t)NSEC_PER_SEC,
			.start_boot_ns = 1000 };
	FrameId ids[_PYF_MAX];
	ProcId proc;

	for (int i = 0; i < _PYF_MAX; i++)
		if (python || !(py_fixture_frames[i].flags & FRAME_PYTHON))
			ids[i] = py_fixture_frame(s, i, python);
	p.comm = py_fixture_str(s, "python3");
	assert_int_equal(store_proc_add(s, &p, &proc), 0);
	assert_int_equal(store_window_open(s, start_ns, start_ns + 10 * (int64_t)NSEC_PER_SEC,
					   period_ns),
			 0);
	for (size_t k = 0; k < sizeof(py_fixture_stacks) / sizeof(py_fixture_stacks[0]); k++) {
		FrameId frames[PYF_STACK_MAX];
		StackId stack;
		size_t n = 0;

		for (const int *i = py_fixture_stacks[k].frames; *i >= 0; i++)
			if (python || !(py_fixture_frames[*i].flags & FRAME_PYTHON))
				frames[n++] = ids[*i];
		assert_int_equal(store_intern_stack(s, frames, n, &stack), 0);
		assert_int_equal(store_window_add(s, proc, PY_PID, 0, stack, false,
						  py_fixture_stacks[k].samples),
				 0);
	}
	assert_int_equal(store_window_close(s), 0);
	return proc;
}
