/* SPDX-License-Identifier: MIT */
/*
 * Writes the seed corpus of the segment fuzzers: small stores written by the real PersistWriter
 * (so the seeds are real segments), one per shape the loader must handle.
 *
 *   gen-corpus OUTDIR    (tests/fuzz/corpus/segment holds the output, checked in)
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "base/macro.h"
#include "base/procfs.h"
#include "store/persist.h"

#define SEC ((int64_t)NSEC_PER_SEC)
#define T0 (1700000000LL * SEC)
#define PERIOD 1001001ULL

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if ((x) < 0) {                                                                     \
			fprintf(stderr, "gen-corpus: %s:%d: %s failed\n", __FILE__, __LINE__, #x); \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

static StrId str(Store *s, const char *v)
{
	StrId id;

	CHECK(store_intern_string(s, v, &id));
	return id;
}

static FrameId frame(Store *s, const char *fn, const char *mod, const char *file, uint32_t line,
		     uint32_t flags, uint64_t addr)
{
	StoreFrame f = { .line = line, .flags = flags, .address = addr };
	FrameId id;

	f.function = fn ? str(s, fn) : 0;
	f.module = mod ? str(s, mod) : 0;
	f.file = file ? str(s, file) : 0;
	CHECK(store_intern_frame(s, &f, &id));
	store_string_unref(s, f.function);
	store_string_unref(s, f.module);
	store_string_unref(s, f.file);
	return id;
}

static StackId stack(Store *s, size_t n, const FrameId *frames)
{
	StackId id;

	CHECK(store_intern_stack(s, frames, n, &id));
	for (size_t i = 0; i < n; i++)
		store_frame_unref(s, frames[i]);
	return id;
}

static ProcId proc(Store *s, uint32_t pid, uint32_t ppid, uint32_t flags, uint64_t start_boot_ns,
		   const char *comm, const char *cmdline)
{
	StoreProc p = { .pid = pid,
			.ppid = ppid,
			.uid = 1000,
			.flags = flags,
			.start_ns = T0 - 10 * SEC + (int64_t)start_boot_ns,
			.boot_id = 0xb007,
			.start_boot_ns = start_boot_ns };
	ProcId id;

	if (flags & PROC_EXITED) {
		p.exit_ns = p.start_ns + 3 * SEC;
		p.exit_code = 256;
	}
	if (flags & PROC_ACCOUNTING) {
		p.user_ns = 2 * NSEC_PER_SEC;
		p.sys_ns = NSEC_PER_SEC / 2;
	}
	p.comm = comm ? str(s, comm) : 0;
	p.cmdline = cmdline ? str(s, cmdline) : 0;
	CHECK(store_proc_add(s, &p, &id));
	store_string_unref(s, p.comm);
	store_string_unref(s, p.cmdline);
	return id;
}

static void add(Store *s, ProcId p, uint32_t tid, const char *thread, StackId st, bool kernel,
		uint32_t n)
{
	StrId t = thread ? str(s, thread) : 0;

	CHECK(store_window_add(s, p, tid, t, st, kernel, n));
	store_string_unref(s, t);
}

static void mem(Store *s, ProcId p, int64_t t, uint64_t anon, uint32_t flags, uint64_t shmem)
{
	CHECK(store_window_add_mem(s, &(MemPoint){ .proc = p,
						   .flags = flags,
						   .time_ns = t,
						   .anon = anon,
						   .file = 1 << 20,
						   .shmem = shmem,
						   .peak = anon + (1 << 20) + shmem,
						   .peak_ns = t }));
}

static void window(Store *s, PersistWriter *w, int i)
{
	CHECK(store_window_close(s));
	CHECK(persist_write_window(w, store_window(s, store_window_count(s) - 1)));
	(void)i;
}

static void open_window(Store *s, int i)
{
	CHECK(store_window_open(s, T0 + i * 2 * SEC, T0 + (i + 1) * 2 * SEC, PERIOD));
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Copies the segments of a scratch state dir to OUT/NAME-N.pqseg. */
static void collect(const char *scratch, const char *out, const char *name)
{
	for (int seq = 1; seq < 16; seq++) {
		char src[PATH_MAX], dst[PATH_MAX];
		char *buf = NULL;
		size_t len;
		FILE *f;

		snprintf(src, sizeof(src), "%s/segments/%016x.pqseg", scratch, seq);
		if (procfs_read_file(src, 1 << 20, &buf, &len) < 0)
			continue;
		snprintf(dst, sizeof(dst), "%s/%s-%d.pqseg", out, name, seq);
		f = fopen(dst, "we");
		if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
			fprintf(stderr, "gen-corpus: cannot write %s\n", dst);
			exit(1);
		}
		free(buf);
	}
	nftw(scratch, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

typedef void (*Scenario)(Store *s, PersistWriter *w);

/* One process, one stack, one window. */
static void tiny(Store *s, PersistWriter *w)
{
	ProcId p = proc(s, 42, 1, 0, 42, "tiny", "tiny --run");
	StackId st = stack(s, 2,
			   (FrameId[]){ frame(s, "leaf", "tiny", "tiny.c", 3, 0, 0x1010),
					frame(s, "main", "tiny", "tiny.c", 9, 0, 0x1100) });

	open_window(s, 0);
	add(s, p, 42, "tiny", st, false, 9);
	window(s, w, 0);
	store_stack_unref(s, st);
	store_proc_unref(s, p);
}

/*
 * Two processes over three windows: kernel, inlined, JIT and unresolved frames, a truncated
 * stack, threads; one process exits, is renamed by exec, gets its accounting; one lives and
 * dies unsampled; one has its start corrected; an empty window.
 */
static void busy(Store *s, PersistWriter *w)
{
	ProcId a = proc(s, 100, 1, PROC_ACCOUNTING, 100, "busy", "busy -j2");
	ProcId b = proc(s, 101, 100, 0, 101, "helper", NULL);
	ProcId k = proc(s, 7, 2, PROC_KTHREAD, 7, "kworker/1:0", NULL);
	ProcId q;
	FrameId main_f = frame(s, "main", "busy", "busy.c", 40, 0, 0x1400);
	StackId s1, s2, s3, s4;
	StoreProc *m;
	StrId comm;

	store_frame_ref(s, main_f);
	store_frame_ref(s, main_f);
	s1 = stack(s, 3,
		   (FrameId[]){ frame(s, "compute", "busy", "busy.c", 12, FRAME_INLINED, 0x1200),
				frame(s, "run", "busy", "busy.c", 20, 0, 0x1210), main_f });
	s2 = stack(s, 4,
		   (FrameId[]){ frame(s, "copy_user_generic", "[kernel.kallsyms]", NULL, 0,
				      FRAME_KERNEL, 0xffffffff81a00000ULL),
				frame(s, "__x64_sys_read", "[kernel.kallsyms]", NULL, 0,
				      FRAME_KERNEL, 0xffffffff81300000ULL),
				frame(s, NULL, "libc.so.6", NULL, 0, 0, 0x114a2c), main_f });
	s3 = stack(s, 2,
		   (FrameId[]){ frame(s, "jit_hot", "[perf-100]", NULL, 0, FRAME_JIT, 0x7f00001000),
				frame(s, NULL, "[unknown]", NULL, 0, FRAME_TRUNCATED, 0) });
	s4 = stack(s, 1, (FrameId[]){ main_f });
	open_window(s, 0);
	add(s, a, 100, "busy", s1, false, 120);
	add(s, a, 103, "busy-worker", s2, true, 31);
	add(s, a, 103, "busy-worker", s2, false, 4);
	add(s, b, 101, "helper", s3, false, 7);
	add(s, k, 7, NULL, s2, true, 2);
	/* Memory points: a's growth, b killed by the OOM killer, then its exit; q only has
	 * points (a process never sampled). */
	mem(s, a, T0 + SEC / 2, 10 << 20, 0, 0);
	mem(s, a, T0 + SEC, 300 << 20, MEM_PEAK_OLD, 0);
	mem(s, b, T0 + SEC + 1, 64 << 20, MEM_OOM_KILL, 1);
	mem(s, b, T0 + SEC + 2, 64 << 20, MEM_EXIT, 1);
	window(s, w, 0);

	/* b execs and exits; q comes and goes unsampled; a's start is corrected. */
	comm = str(s, "helper2");
	store_proc_set_comm(s, b, comm);
	store_string_unref(s, comm);
	m = store_proc_mut(s, b);
	m->flags |= PROC_EXITED | PROC_ACCOUNTING;
	m->exit_ns = T0 + 3 * SEC;
	m->exit_code = 9;
	m->user_ns = 70 * NSEC_PER_MSEC;
	q = proc(s, 102, 100, PROC_EXITED, 102, "quick", "quick");
	CHECK(store_proc_set_start(s, a, 100 + 777, T0 - 10 * SEC + 877));
	open_window(s, 1);
	mem(s, q, T0 + 2 * SEC + 3, 1 << 20, MEM_EXIT, 4096);
	add(s, a, 100, "busy", s1, false, 150);
	add(s, a, 100, "busy", s4, false, 3);
	window(s, w, 1);

	open_window(s, 2);
	store_window_current(s)->idle = 1990;
	store_window_current(s)->lost = 5;
	window(s, w, 2);

	store_stack_unref(s, s1);
	store_stack_unref(s, s2);
	store_stack_unref(s, s3);
	store_stack_unref(s, s4);
	store_proc_unref(s, a);
	store_proc_unref(s, b);
	store_proc_unref(s, k);
	store_proc_unref(s, q);
}

/* Deep stacks: 1024 frames of two functions (recursion), and 200 distinct ones. */
static void deep(Store *s, PersistWriter *w)
{
	ProcId p = proc(s, 300, 1, 0, 300, "deep", "deep");
	FrameId frames[STORE_STACK_MAX];
	FrameId r1 = frame(s, "recurse_a", "deep", "deep.c", 5, 0, 0x2000);
	FrameId r2 = frame(s, "recurse_b", "deep", "deep.c", 9, 0, 0x2100);
	StackId s1, s2;

	for (size_t i = 0; i < STORE_STACK_MAX; i++) {
		frames[i] = i % 2 ? r2 : r1;
		store_frame_ref(s, frames[i]);
	}
	store_frame_unref(s, r1);
	store_frame_unref(s, r2);
	s1 = stack(s, STORE_STACK_MAX, frames);
	for (size_t i = 0; i < 200; i++) {
		char name[32];

		snprintf(name, sizeof(name), "level_%zu", i);
		frames[i] = frame(s, name, "deep", "deep.c", (uint32_t)i + 100, 0, 0x3000 + i);
	}
	s2 = stack(s, 200, frames);
	open_window(s, 0);
	add(s, p, 300, "deep", s1, false, 50);
	add(s, p, 301, "deep-2", s2, false, 60);
	window(s, w, 0);
	store_stack_unref(s, s1);
	store_stack_unref(s, s2);
	store_proc_unref(s, p);
}

/* A pid used twice (two incarnations), the windows in three short segments. */
static void reuse(Store *s, PersistWriter *w)
{
	ProcId old = proc(s, 500, 1, PROC_EXITED | PROC_ACCOUNTING, 500, "first", "first");
	ProcId cur = proc(s, 500, 1, 0, 9500, "second", "second --again");
	StackId st = stack(s, 1, (FrameId[]){ frame(s, "spin", "x", NULL, 0, 0, 0x10) });

	for (int i = 0; i < 3; i++) {
		open_window(s, i);
		add(s, i == 0 ? old : cur, 500, i == 0 ? "first" : "second", st, i == 2, 10 + i);
		window(s, w, i);
	}
	store_stack_unref(s, st);
	store_proc_unref(s, old);
	store_proc_unref(s, cur);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		Scenario fn;
		uint64_t span;
	} scenarios[] = {
		{ "tiny", tiny, 3600 * NSEC_PER_SEC },
		{ "busy", busy, 3600 * NSEC_PER_SEC },
		{ "deep", deep, 3600 * NSEC_PER_SEC },
		{ "reuse", reuse, 2 * NSEC_PER_SEC },
	};
	static const uint8_t header_only[] = {
		'P', 'R', 'O', 'F', 'Q', 'S', 'E', 'G', 1, 0, 0, 0, 32, 0, 0, 0,
		0,   0,	  0,   0,   0,	 0,   0,   0,	0, 0, 0, 0, 0,	0, 0, 0,
	};
	char scratch[PATH_MAX], path[PATH_MAX];
	uint8_t h[sizeof(header_only)];
	FILE *f;

	if (argc != 2) {
		fprintf(stderr, "usage: gen-corpus OUTDIR\n");
		return 2;
	}
	if (mkdir(argv[1], 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "gen-corpus: cannot create %s: %m\n", argv[1]);
		return 1;
	}
	for (size_t i = 0; i < ARRAY_SIZE(scenarios); i++) {
		Store *s = NULL;
		PersistWriter *w = NULL;

		snprintf(scratch, sizeof(scratch), "%s/.scratch-%s", argv[1], scenarios[i].name);
		CHECK(store_new(&s));
		CHECK(persist_writer_new(s, scratch, scenarios[i].span, &w));
		scenarios[i].fn(s, w);
		persist_writer_free(w);
		store_free(s);
		collect(scratch, argv[1], scenarios[i].name);
	}

	/* Header only, and the same as a later format version (CRC made right by hand). */
	memcpy(h, header_only, sizeof(h));
	/* The current version, and the next one (which the loader must refuse). */
	for (int version = SEGMENT_VERSION; version <= SEGMENT_VERSION + 1; version++) {
		h[8] = (uint8_t)version;
		{
			uint32_t c = (uint32_t)crc32(crc32(0L, Z_NULL, 0), h, 28);

			for (int i = 0; i < 4; i++)
				h[28 + i] = (uint8_t)(c >> (8 * i));
		}
		snprintf(path, sizeof(path), "%s/header-%s.pqseg", argv[1],
			 version == SEGMENT_VERSION ? "current" : "next");
		f = fopen(path, "we");
		if (!f || fwrite(h, 1, sizeof(h), f) != sizeof(h) || fclose(f) != 0) {
			fprintf(stderr, "gen-corpus: cannot write %s\n", path);
			return 1;
		}
	}
	return 0;
}
