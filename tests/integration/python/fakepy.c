/* SPDX-License-Identifier: MIT */
/*
 * A fake CPython for test_python_hostile.py: exports what profqd looks for in an interpreter
 * (_PyRuntime, _PyEval_EvalFrameDefault, PyCode_Type, Py_Version) with hostile contents, then
 * burns CPU in _PyEval_EvalFrameDefault so that it is sampled.
 *
 *   fakepy SCENARIO TOKEN SECONDS
 *
 * Its version is that of its Py_Version (-DFAKEPY_VERSION, 3.11 by default): 3.11 or 3.12 (the
 * table layouts) or 3.13 (with -DFAKEPY_DEBUG, _Py_DebugOffsets). Prints its pid, then runs.
 * The names it holds are "ok_SCENARIO_TOKEN" and a run of 'A's; nothing else in its memory looks
 * like a function name.
 *
 * Built as an executable (python3.11) or, with -DFAKEPY_LIB, as libpython3.12.so whose
 * fakepy_main() a host program calls. Scenario "mapped" (test_fuse.py) maps the file
 * FAKEPY_MAP names (64 KiB) and puts a code object's name in it.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default"), used))

#ifndef FAKEPY_VERSION
#define FAKEPY_VERSION 0x030b07f0
#endif
/* Static, so that they are there whenever profqd first looks (before main() runs). */
EXPORT uint32_t Py_Version = FAKEPY_VERSION;
#ifdef FAKEPY_DEBUG
/* 3.13: _Py_DebugOffsets as a sane 3.13 has them (the u64 at byte 8 * i), but for the one
 * FAKEPY_DEBUG breaks: 2, the frame's previous out of range; 3, the code object's size. */
EXPORT uint64_t _PyRuntime[1024] __attribute__((aligned(64))) = {
	[0] = 0x7970677562656478ull, /* "xdebugpy" */
	[1] = FAKEPY_VERSION,
	[3] = 8192,
	[5] = 4000,
	[6] = 4096,
	[8] = 0,
	[9] = 8,
	[19] = 304,
	[21] = 8,
	[23] = 72,
	[24] = 152,
	[25] = 160,
	[28] = 80,
	[29] = FAKEPY_DEBUG == 2 ? 1ull << 40 : 8,
	[30] = 0,
	[31] = 56,
	[33] = 74,
	[34] = FAKEPY_DEBUG == 3 ? ~0ull : 208,
	[35] = 112,
	[36] = 120,
	[37] = 128,
	[38] = 136,
	[39] = 68,
	[43] = 200,
	[44] = 16,
	[45] = 8,
	[64] = 40,
	[65] = 16,
	[66] = 32,
	[67] = 40,
	[68] = 32,
	[69] = 16,
	[70] = 40,
};
#else
EXPORT uint64_t _PyRuntime[1024] __attribute__((aligned(64)));
#endif
EXPORT unsigned char PyCode_Type[416] __attribute__((aligned(64)));

/* An address nothing is mapped at (the top of the lower half, not canonical for user code). */
#define UNMAPPED 0x00007ffffff00000ull

typedef struct Layout {
	unsigned rt_interp, interp_next, interp_threads, ts_next, ts_cframe, cf_frame, ts_tid;
	unsigned fr_code, fr_prev, fr_instr, fr_owner;
	unsigned co_ident, co_firstlineno, co_filename, co_name, co_qualname, co_linetable, co_size,
		co_instr;
	unsigned u_length, u_state, u_ascii, u_compact, b_size, b_data;
} Layout;

static const Layout L311 = { 40,  0,   16,  8,	 56,  8,   152, 32, 48, 56, 69, 64, 72,
			     112, 120, 128, 136, 192, 184, 16,	32, 48, 72, 16, 32 };
static const Layout L312 = { 40,  0,   72,  8,	 56,  0,   136, 0,  8,	56, 70, 64, 68,
			     112, 120, 128, 136, 200, 192, 16,	32, 40, 56, 16, 32 };
static const Layout *L;

static void put64(void *base, unsigned off, uint64_t v)
{
	memcpy((char *)base + off, &v, 8);
}

static void put32(void *base, unsigned off, uint32_t v)
{
	memcpy((char *)base + off, &v, 4);
}

static void *obj(size_t size)
{
	void *p = calloc(1, size);

	if (!p)
		abort();
	return p;
}

/* A compact str object: kind 1, 2 or 4; ascii; length claimed; chars data (n of them). */
static void *str(uint32_t state, uint64_t length, const char *chars, size_t n)
{
	unsigned data = (state & (1u << 6)) ? L->u_ascii : L->u_compact;
	unsigned char *s = obj(data + n * 4 + 8);

	put64(s, L->u_length, length);
	put32(s, L->u_state, state);
	memcpy(s + data, chars, n);
	return s;
}

#define ASCII_STATE ((1u << 2) | (1u << 5) | (1u << 6)) /* kind 1, compact, ascii */

static void *ascii(const char *text)
{
	return str(ASCII_STATE, strlen(text), text, strlen(text));
}

static void *bytes(uint64_t claimed, size_t real, int fill)
{
	unsigned char *b = obj(L->b_data + real + 8);

	put64(b, L->b_size, claimed);
	memset(b + L->b_data, fill, real);
	return b;
}

/* A code object; ident: its identity bytes. */
static void *code(void *name, void *file, void *table, int32_t firstlineno, uint32_t ident)
{
	unsigned char *c = obj(L->co_size + 64);

	put64(c, 0, 1); /* ob_refcnt: alive */
	put64(c, 8, (uint64_t)(uintptr_t)PyCode_Type);
	for (unsigned i = 0; i < 16; i += 4)
		put32(c, L->co_ident + i, ident + i);
	put32(c, L->co_firstlineno, (uint32_t)firstlineno);
	put64(c, L->co_filename, (uint64_t)(uintptr_t)file);
	put64(c, L->co_name, (uint64_t)(uintptr_t)name);
	put64(c, L->co_qualname, (uint64_t)(uintptr_t)name);
	put64(c, L->co_linetable, (uint64_t)(uintptr_t)table);
	return c;
}

static void *frame(void *code_obj, void *previous)
{
	unsigned char *f = obj(128);

	put64(f, L->fr_code, (uint64_t)(uintptr_t)code_obj);
	put64(f, L->fr_prev, (uint64_t)(uintptr_t)previous);
	put64(f, L->fr_instr, (uint64_t)(uintptr_t)code_obj + L->co_instr + 4);
	return f;
}

static void *tstate(uint64_t tid, void *next, void *current_frame)
{
	unsigned char *t = obj(256), *cf = obj(64);

	put64(t, L->ts_next, (uint64_t)(uintptr_t)next);
	put64(t, L->ts_tid, tid);
	put64(t, L->ts_cframe, (uint64_t)(uintptr_t)cf);
	put64(cf, L->cf_frame, (uint64_t)(uintptr_t)current_frame);
	return t;
}

static void *interp(void *threads)
{
	unsigned char *i = obj(256);

	put64(i, L->interp_threads, (uint64_t)(uintptr_t)threads);
	return i;
}

static void set_interp(void *i)
{
	put64((unsigned char *)_PyRuntime, L->rt_interp, (uint64_t)(uintptr_t)i);
}

/* The frame chain of the codes scenario: one frame for each kind of hostile code object,
 * ending in a frame that loops onto itself. */
static void *hostile_codes(const char *ok_name)
{
	static char as[4096];
	void *table = bytes(64 << 10, 64 << 10, 0xff); /* the largest table, all garbage */
	void *file = ascii("/fake/hostile.py");
	void *ok = ascii(ok_name);
	void *codes[16];
	size_t n = 0;
	void *f = NULL;

	memset(as, 'A', sizeof(as));
	codes[n++] = code(ok, file, table, 1, 0x1000);
	codes[n++] = code((void *)UNMAPPED, file, table, 1, 0x2000);   /* name unmapped */
	codes[n++] = code(ok, (void *)(uintptr_t)8, table, 1, 0x3000); /* file at NULL+8 */
	codes[n++] = code(str(ASCII_STATE, 1ull << 62, "x", 1), file, table, 1, 0x4000);
	codes[n++] = code(str((3u << 2) | (1u << 5), 4, "abcd", 4), file, table, 1, 0x5000);
	codes[n++] = code(str((1u << 2), 4, "abcd", 4), file, table, 1, 0x6000); /* not compact */
	codes[n++] = code(str((2u << 2) | (1u << 5) | (1u << 6), 2, "abcd", 4), file, table, 1,
			  0x7000); /* ascii, kind 2 */
	codes[n++] = code(str((4u << 2) | (1u << 5), 1, "\xff\xff\xff\xff", 4), file, table, 1,
			  0x8000); /* beyond U+10FFFF */
	codes[n++] = code(str(ASCII_STATE, 1ull << 39, as, sizeof(as)), file, table, 7,
			  0x9000); /* huge, data for 1024 */
	codes[n++] = code(ok, file, bytes(1ull << 40, 16, 0x80), 1, 0xa000); /* huge table */
	codes[n++] = code(ok, file, (void *)UNMAPPED, 1, 0xb000);	     /* table unmapped */
	codes[n++] = code(ok, file, table, -5, 0xc000);			     /* negative line */
	codes[n] = code(ok, file, table, 3, 0xd000);
	put64(codes[n], 8, 0x4141414141414141ull); /* not of PyCode_Type */
	n++;
	f = frame(codes[0], NULL);
	put64(f, L->fr_prev, (uint64_t)(uintptr_t)f); /* the outermost loops */
	for (size_t i = 0; i < n; i++)
		f = frame(codes[i], f);
	return f;
}

static void setup(const char *scenario, const char *tok, uint64_t self)
{
	char ok_name[128];
	void *ok_code, *f;

	snprintf(ok_name, sizeof(ok_name), "ok_%s_%s", scenario, tok);
	ok_code = code(ascii(ok_name), ascii("/fake/ok.py"), bytes(4, 4, 0x80), 10, 0x100);
	if (strcmp(scenario, "frameloop") == 0 || strcmp(scenario, "lib") == 0) {
		/* frame -> previous = itself */
		f = frame(ok_code, NULL);
		put64(f, L->fr_prev, (uint64_t)(uintptr_t)f);
		set_interp(interp(tstate(self, NULL, f)));
	} else if (strcmp(scenario, "unmapped") == 0) {
		set_interp(interp(tstate(self, NULL, frame(ok_code, (void *)UNMAPPED))));
	} else if (strcmp(scenario, "deep") == 0) {
		f = NULL;
		for (int i = 0; i < 500; i++)
			f = frame(ok_code, f);
		set_interp(interp(tstate(self, NULL, f)));
	} else if (strcmp(scenario, "codes") == 0) {
		set_interp(interp(tstate(self, NULL, hostile_codes(ok_name))));
	} else if (strcmp(scenario, "listloop") == 0) {
		/* Interpreters head -> itself; thread states with no thread id, in a loop. */
		void *t = tstate(0, NULL, NULL), *i = interp(t);

		put64(t, L->ts_next, (uint64_t)(uintptr_t)t);
		put64(i, L->interp_next, (uint64_t)(uintptr_t)i);
		set_interp(i);
	} else if (strcmp(scenario, "tidloop") == 0) {
		/* This thread's state in a list that loops onto it. */
		void *t = tstate(self, NULL, frame(ok_code, NULL)), *i = interp(t);

		put64(t, L->ts_next, (uint64_t)(uintptr_t)t);
		put64(i, L->interp_next, (uint64_t)(uintptr_t)i);
		set_interp(i);
	} else if (strcmp(scenario, "mapped") == 0) {
		/* A code object whose name lies in a page of the file FAKEPY_MAP names, mapped
		 * and never touched: whoever reads the name makes the kernel fetch the page from
		 * the file's file system. */
		const char *path = getenv("FAKEPY_MAP");
		int fd = path ? open(path, O_RDONLY) : -1;
		char *m = fd >= 0 ? mmap(NULL, 1 << 16, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;

		if (m == MAP_FAILED)
			abort();
		f = frame(code(m + (8 << 10), ascii("/fake/mapped.py"), bytes(4, 4, 0x80), 1,
			       0x200),
			  frame(ok_code, NULL));
		set_interp(interp(tstate(self, NULL, f)));
	} else if (strcmp(scenario, "long") == 0) {
		/* 100,000 thread states of no thread; this thread's is the last. */
		void *t = tstate(self, NULL, frame(ok_code, NULL));

		for (uint64_t k = 1; k < 100000; k++)
			t = tstate(0, t, NULL);
		set_interp(interp(t));
	}
}

EXPORT __attribute__((noinline)) uint64_t _PyEval_EvalFrameDefault(uint64_t n)
{
	volatile uint64_t x = 0;

	for (uint64_t i = 0; i < n; i++)
		x += i * i;
	return x;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

#ifdef FAKEPY_LIB
EXPORT int fakepy_main(int argc, char **argv)
#else
int main(int argc, char **argv)
#endif
{
	double end;

	if (argc != 4)
		return 2;
	L = (Py_Version >> 16) == 0x030c ? &L312 : &L311;
	setup(argv[1], argv[2], (uint64_t)pthread_self());
	printf("%d\n", getpid());
	fflush(stdout);
	end = now() + atof(argv[3]);
	while (now() < end)
		_PyEval_EvalFrameDefault(1000000);
	return 0;
}
