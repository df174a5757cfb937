/* SPDX-License-Identifier: MIT */
/*
 * Persistence (profqd(8), PERSISTENCE): a Store written window by window with PersistWriter into
 * real segment files in a temporary directory and read back with persist_load into a fresh Store
 * must answer every query the same; damage anywhere loses only what follows it; the writer rotates,
 * expires, survives failed writes and restarts.
 */
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>
#include <cmocka.h>

#include "base/json-util.h"
#include "base/macro.h"
#include "base/procfs.h"
#include "query/query.h"
#include "store/persist.h"
#include "tmpdir.h"

#define SEC ((int64_t)NSEC_PER_SEC)
#define T0 (1700000000LL * SEC)
#define PERIOD 1001001ULL /* 999 Hz */
#define BOOT_ID 0x5eed5eed12345678ULL

/* ---- files ---- */

static char *tmpdir_new(void)
{
	char *dir = tmpdir_new_named("test-persist");

	assert_non_null(dir);
	return dir;
}

static void seg_path(const char *dir, uint64_t seq, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/segments/%016llx.pqseg", dir, (unsigned long long)seq);

	assert_true(n > 0 && (size_t)n < len);
}

/* Size of segment seq, or -1 when there is no such file. */
static off_t seg_size(const char *dir, uint64_t seq)
{
	char path[PATH_MAX];
	struct stat st;

	seg_path(dir, seq, path, sizeof(path));
	if (stat(path, &st) < 0)
		return -1;
	return st.st_size;
}

static size_t seg_count(const char *dir)
{
	size_t n = 0;

	for (uint64_t seq = 1; seq < 64; seq++)
		n += seg_size(dir, seq) >= 0;
	return n;
}

static uint8_t *seg_read(const char *dir, uint64_t seq, size_t *ret_len)
{
	char path[PATH_MAX], *buf = NULL;

	seg_path(dir, seq, path, sizeof(path));
	assert_int_equal(procfs_read_file(path, 1u << 30, &buf, ret_len), 0);
	return (uint8_t *)buf;
}

static void seg_write(const char *dir, uint64_t seq, const uint8_t *buf, size_t len)
{
	char path[PATH_MAX];
	FILE *f;

	seg_path(dir, seq, path, sizeof(path));
	f = fopen(path, "we");
	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* ---- building a store by hand ---- */

static StrId str(Store *s, const char *v)
{
	StrId id;

	assert_int_equal(store_intern_string(s, v, &id), 0);
	return id;
}

/* The frame, without the caller keeping references on its strings. */
static FrameId frame(Store *s, const char *fn, const char *mod, const char *file, uint32_t line,
		     uint32_t flags, uint64_t addr)
{
	StoreFrame f = { .line = line, .flags = flags, .address = addr };
	FrameId id;

	f.function = fn ? str(s, fn) : 0;
	f.module = mod ? str(s, mod) : 0;
	f.file = file ? str(s, file) : 0;
	assert_int_equal(store_intern_frame(s, &f, &id), 0);
	store_string_unref(s, f.function);
	store_string_unref(s, f.module);
	store_string_unref(s, f.file);
	return id;
}

/* The stack; the caller's references on the frames are dropped. */
static StackId stack(Store *s, size_t n, const FrameId *frames)
{
	StackId id;

	assert_int_equal(store_intern_stack(s, frames, n, &id), 0);
	for (size_t i = 0; i < n; i++)
		store_frame_unref(s, frames[i]);
	return id;
}

#define STACK(s, ...) stack(s, ARRAY_SIZE(((FrameId[]){ __VA_ARGS__ })), (FrameId[]){ __VA_ARGS__ })

/* A process; the caller keeps one reference, as the daemon's process table does. */
static ProcId proc(Store *s, const StoreProc *tmpl, const char *comm, const char *cmdline)
{
	StoreProc p = *tmpl;
	ProcId id;

	p.comm = comm ? str(s, comm) : 0;
	p.cmdline = cmdline ? str(s, cmdline) : 0;
	assert_int_equal(store_proc_add(s, &p, &id), 0);
	store_string_unref(s, p.comm);
	store_string_unref(s, p.cmdline);
	return id;
}

static void add(Store *s, ProcId p, uint32_t tid, const char *thread, StackId st, bool kernel,
		uint32_t count)
{
	StrId t = thread ? str(s, thread) : 0;

	assert_int_equal(store_window_add(s, p, tid, t, st, kernel, count), 0);
	store_string_unref(s, t);
}

/* Closes the open window and writes it, as the daemon does. */
static void close_and_write(Store *s, PersistWriter *w)
{
	assert_int_equal(store_window_close(s), 0);
	assert_int_equal(persist_write_window(w, store_window(s, store_window_count(s) - 1)), 0);
}

/* ---- loading ---- */

/* Holds every process loaded (as the daemon holds the exited ones) and notes the problems. */
typedef struct Loaded {
	Store *store;
	uint8_t held[4096];
	unsigned problems;
	char problem_path[PATH_MAX];
	int problem_error;
	size_t problem_good, problem_size;
	PersistLoadStats stats;
} Loaded;

static void on_loaded_proc(void *userdata, ProcId id, const StoreProc *p)
{
	Loaded *l = userdata;

	assert_non_null(p);
	assert_ptr_equal(store_proc(l->store, id), p);
	assert_true(id < sizeof(l->held));
	if (!l->held[id]) {
		l->held[id] = 1;
		store_proc_ref(l->store, id);
	}
}

static void on_problem(void *userdata, const char *path, int error, size_t good, size_t size)
{
	Loaded *l = userdata;

	l->problems++;
	snprintf(l->problem_path, sizeof(l->problem_path), "%s", path);
	l->problem_error = error;
	l->problem_good = good;
	l->problem_size = size;
}

static Loaded *loaded_new(void)
{
	Loaded *l = calloc(1, sizeof(Loaded));

	assert_non_null(l);
	assert_int_equal(store_new(&l->store), 0);
	return l;
}

static const PersistLoadCallbacks *callbacks(Loaded *l)
{
	static PersistLoadCallbacks cb;

	cb = (PersistLoadCallbacks){ .proc = on_loaded_proc, .problem = on_problem, .userdata = l };
	return &cb;
}

static Loaded *load_dir(const char *dir, int64_t not_before)
{
	Loaded *l = loaded_new();

	assert_int_equal(persist_load(l->store, dir, not_before, callbacks(l), &l->stats), 0);
	return l;
}

/* Drops the processes held and the windows: the store must then hold nothing at all. */
static void store_expect_empty_after_release(Store *s, const uint8_t *held, size_t n_held)
{
	while (store_window_count(s) > 0)
		assert_int_equal(store_window_evict(s), 0);
	for (size_t id = 0; id < n_held; id++)
		if (held[id])
			store_proc_unref(s, (ProcId)id);
	assert_int_equal(store_proc_count(s), 0);
	for (size_t id = 1; id < store_stack_id_limit(s); id++)
		assert_null(store_stack(s, (StackId)id, &(size_t){ 0 }));
	for (size_t id = 1; id < store_frame_id_limit(s); id++)
		assert_null(store_frame(s, (FrameId)id));
	for (size_t id = 1; id < store_string_id_limit(s); id++)
		assert_null(store_string(s, (StrId)id));
}

static void loaded_free(Loaded *l)
{
	if (!l)
		return;
	store_expect_empty_after_release(l->store, l->held, sizeof(l->held));
	store_free(l->store);
	free(l);
}

static void loaded_freep(Loaded **l)
{
	loaded_free(*l);
}

#define _cleanup_loaded_ _cleanup_(loaded_freep)

/* ---- comparing two stores by what they hold ---- */

typedef struct Lines {
	char **v;
	size_t n, allocated;
} Lines;

static void lines_add(Lines *l, char *line)
{
	assert_int_equal(GREEDY_REALLOC(l->v, l->allocated, l->n + 1), 0);
	l->v[l->n++] = line;
}

static int line_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted and joined; frees the lines. */
static char *lines_join(Lines *l)
{
	size_t len = 1, off = 0;
	char *out;

	if (l->n > 1)
		qsort(l->v, l->n, sizeof(char *), line_cmp);
	for (size_t i = 0; i < l->n; i++)
		len += strlen(l->v[i]) + 1;
	out = malloc(len);
	assert_non_null(out);
	for (size_t i = 0; i < l->n; i++) {
		size_t k = strlen(l->v[i]);

		memcpy(out + off, l->v[i], k);
		out[off + k] = '\n';
		off += k + 1;
		free(l->v[i]);
	}
	out[off] = '\0';
	free(l->v);
	*l = (Lines){ 0 };
	return out;
}

static const char *s_or(const Store *s, StrId id)
{
	return id ? store_string(s, id) : "(none)";
}

static void print_proc(FILE *f, const Store *s, const StoreProc *p)
{
	fprintf(f,
		"pid=%u ppid=%u uid=%u flags=%u start=%lld exit=%lld comm=%s cmdline=%s user=%llu "
		"sys=%llu cuser=%llu csys=%llu code=%d boot=%llx sboot=%llu cgroup=%s unit=%s "
		"slice=%s "
		"container=%s",
		p->pid, p->ppid, p->uid, p->flags, (long long)p->start_ns, (long long)p->exit_ns,
		s_or(s, p->comm), s_or(s, p->cmdline), (unsigned long long)p->user_ns,
		(unsigned long long)p->sys_ns, (unsigned long long)p->child_user_ns,
		(unsigned long long)p->child_sys_ns, p->exit_code, (unsigned long long)p->boot_id,
		(unsigned long long)p->start_boot_ns, s_or(s, p->cgroup), s_or(s, p->unit),
		s_or(s, p->slice), s_or(s, p->container));
}

static char *entry_line(const Store *s, const WindowEntry *e)
{
	const FrameId *frames;
	char *line = NULL;
	size_t len = 0, n;
	FILE *f = open_memstream(&line, &len);

	assert_non_null(f);
	fprintf(f, "  entry tid=%u thread=%s user=%u kernel=%u proc={", e->tid, s_or(s, e->thread),
		e->user, e->kernel);
	print_proc(f, s, store_proc(s, e->proc));
	fprintf(f, "} stack=");
	frames = store_stack(s, e->stack, &n);
	assert_non_null(frames);
	for (size_t i = 0; i < n; i++) {
		const StoreFrame *fr = store_frame(s, frames[i]);

		assert_non_null(fr);
		fprintf(f, "%s|%s|%s|%u|%u|%llx;", s_or(s, fr->function), s_or(s, fr->module),
			s_or(s, fr->file), fr->line, fr->flags, (unsigned long long)fr->address);
	}
	assert_int_equal(fclose(f), 0);
	return line;
}

/* Everything a query can see in the store, as text independent of the store's ids. */
static char *dump(const Store *s)
{
	Lines procs = { 0 };
	char *out = NULL, *procs_text;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	assert_non_null(f);
	for (size_t i = 0; i < store_window_count(s); i++) {
		const Window *w = store_window(s, i);
		Lines entries = { 0 };
		char *text;

		fprintf(f,
			"window %lld..%lld period=%llu samples=%llu idle=%llu lost=%llu open=%d\n",
			(long long)w->start_ns, (long long)w->end_ns,
			(unsigned long long)w->period_ns, (unsigned long long)w->samples,
			(unsigned long long)w->idle, (unsigned long long)w->lost, w->open);
		for (size_t j = 0; j < w->n_entries; j++)
			lines_add(&entries, entry_line(s, &w->entries[j]));
		text = lines_join(&entries);
		fputs(text, f);
		free(text);
	}
	for (ProcId id = 1; id < store_proc_id_limit(s); id++) {
		const StoreProc *p = store_proc(s, id);
		char *line = NULL;
		size_t n = 0;
		FILE *pf;

		if (!p)
			continue;
		pf = open_memstream(&line, &n);
		assert_non_null(pf);
		fputs("proc ", pf);
		print_proc(pf, s, p);
		assert_int_equal(fclose(pf), 0);
		lines_add(&procs, line);
	}
	procs_text = lines_join(&procs);
	fputs(procs_text, f);
	free(procs_text);
	assert_int_equal(fclose(f), 0);
	return out;
}

static void assert_same_dump(const Store *a, const Store *b)
{
	_cleanup_free_ char *x = dump(a), *y = dump(b);

	if (!streq(x, y))
		fail_msg("stores differ:\n--- written\n%.4000s\n--- loaded\n%.4000s", x, y);
}

static char *answer(const Store *s, const Request *req, int64_t now)
{
	QueryContext ctx = { .store = s, .now_ns = now, .viewer = { 0, true } };
	_cleanup_json_ json_object *a = NULL;
	char *text;

	assert_int_equal(query_answer(&ctx, req, &a), 0);
	assert_non_null(a);
	text = strdup(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN));
	assert_non_null(text);
	return text;
}

/* The answers to a set of ps, top and time requests are the same from both stores. */
static void assert_same_answers(const Store *a, const Store *b, int64_t now, const uint32_t *pids,
				size_t n_pids, unsigned *ret_ok)
{
	Request reqs[64];
	size_t n = 0;
	unsigned ok = 0;

	request_init(&reqs[n], COMMAND_PS);
	reqs[n++].limit = REQUEST_LIMIT_MAX;
	request_init(&reqs[n], COMMAND_PS);
	reqs[n].has_since = true;
	reqs[n++].since_ns = 9 * NSEC_PER_SEC;
	request_init(&reqs[n], COMMAND_TOP);
	reqs[n++].limit = REQUEST_LIMIT_MAX;
	request_init(&reqs[n], COMMAND_TOP);
	reqs[n].sort = SORT_TOTAL;
	reqs[n++].limit = REQUEST_LIMIT_MAX;
	for (size_t i = 0; i < n_pids; i++) {
		request_init(&reqs[n], COMMAND_TOP);
		reqs[n].pid = pids[i];
		reqs[n++].limit = REQUEST_LIMIT_MAX;
		request_init(&reqs[n], COMMAND_TIME);
		reqs[n++].pid = pids[i];
		request_init(&reqs[n], COMMAND_TIME);
		reqs[n].pid = pids[i];
		reqs[n++].children = true;
		request_init(&reqs[n], COMMAND_PS);
		reqs[n].pid = pids[i];
		reqs[n++].threads = true;
	}
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *x = answer(a, &reqs[i], now), *y = answer(b, &reqs[i], now);

		if (!streq(x, y))
			fail_msg("%s answers differ:\n--- written\n%.3000s\n--- loaded\n%.3000s",
				 command_to_string(reqs[i].command), x, y);
		ok += strstr(x, "\"error\"") == NULL;
	}
	if (ret_ok)
		*ret_ok = ok;
}

/* ---- a store with one of everything ---- */

typedef struct Rich {
	ProcId procs[5];
	uint32_t pids[4];
	size_t n_pids;
} Rich;

/*
 * Strings in UTF-8 and 64 KiB long, frames with every field and flag, stacks of 1 and 1024
 * frames, processes with every field (running, exited, exited without a sample, a kernel
 * thread, a reused pid), four windows (one after a gap, one empty). Counts are all different
 * so that no answer depends on how ties are broken.
 */
static void rich_build(Store *s, PersistWriter *w, Rich *r)
{
	_cleanup_free_ char *big = malloc(SEGMENT_MAX_STRING + 1);
	FrameId deep[STORE_STACK_MAX];
	StackId s1, s2, s3, s4, s5;
	StoreProc p;

	assert_non_null(big);
	memset(big, 'y', SEGMENT_MAX_STRING);
	big[SEGMENT_MAX_STRING] = '\0';

	s1 = STACK(s,
		   frame(s, "f\xc3\xbcnf_\xe2\x9c\x93", "app", "src/\xc3\xa4pp.c", 20,
			 FRAME_INLINED, 0x1200),
		   frame(s, "main", "app", "src/\xc3\xa4pp.c", 10, 0, 0x1100));
	s2 = STACK(s,
		   frame(s, "do_syscall_64", "[kernel.kallsyms]", NULL, 0, FRAME_KERNEL,
			 0xffffffff81000000ULL),
		   frame(s, NULL, "libc.so.6", NULL, 0, 0, 0x9abc),
		   frame(s, "main", "app", "src/\xc3\xa4pp.c", 10, 0, 0x1100));
	s3 = STACK(s, frame(s, big, "app", NULL, 0, 0, 0x1300));
	for (int i = 0; i < STORE_STACK_MAX - 1; i++) {
		char name[32];

		snprintf(name, sizeof(name), "deep_%04d", i);
		deep[i] = frame(s, name, "app", "deep.c", (uint32_t)i + 1, 0, 0x2000 + (uint64_t)i);
	}
	deep[STORE_STACK_MAX - 1] = frame(s, NULL, "app", NULL, 0, FRAME_TRUNCATED, 0);
	s4 = stack(s, STORE_STACK_MAX, deep);
	s5 = STACK(s, frame(s, "jit_fn", "[perf-77]", NULL, 0, FRAME_JIT, 0x7f0000001000ULL),
		   frame(s, "main", "app", "src/\xc3\xa4pp.c", 10, 0, 0x1100));

	p = (StoreProc){ .pid = 1001,
			 .ppid = 1,
			 .uid = 1000,
			 .flags = PROC_ACCOUNTING,
			 .start_ns = T0 - 100 * SEC,
			 .user_ns = 1234567890,
			 .sys_ns = 98765432,
			 .child_user_ns = 5,
			 .child_sys_ns = 6,
			 .boot_id = BOOT_ID,
			 .start_boot_ns = 555 * NSEC_PER_SEC };
	r->procs[0] = proc(s, &p, "app", "app --flag 'x y' \xc3\xa9");
	assert_int_equal(store_proc_set_cgroup(s, r->procs[0], "/system.slice/app.service"), 0);
	p = (StoreProc){ .pid = 1002,
			 .ppid = 1001,
			 .uid = 0,
			 .flags = PROC_EXITED | PROC_ACCOUNTING,
			 .start_ns = T0 - 2 * SEC,
			 .exit_ns = T0 + 11 * SEC,
			 .exit_code = 0x8b,
			 .user_ns = 3 * NSEC_PER_SEC,
			 .sys_ns = 1,
			 .child_user_ns = 7 * NSEC_PER_SEC,
			 .child_sys_ns = 8,
			 .boot_id = BOOT_ID,
			 .start_boot_ns = 653 * NSEC_PER_SEC + 1 };
	r->procs[1] = proc(s, &p, "child\xe2\x9c\x93", "./child");
	assert_int_equal(
		store_proc_set_cgroup(
			s, r->procs[1],
			"/kubepods/besteffort/pod1/"
			"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
		0);
	p = (StoreProc){ .pid = 1003,
			 .ppid = 1001,
			 .uid = 1000,
			 .flags = PROC_EXITED,
			 .start_ns = T0 + SEC,
			 .exit_ns = T0 + SEC + 3,
			 .exit_code = 9,
			 .boot_id = BOOT_ID,
			 .start_boot_ns = 656 * NSEC_PER_SEC };
	r->procs[2] = proc(s, &p, "quiet", NULL);
	p = (StoreProc){ .pid = 2,
			 .flags = PROC_KTHREAD,
			 .start_ns = T0 - 1000 * SEC,
			 .boot_id = BOOT_ID,
			 .start_boot_ns = 1 };
	r->procs[3] = proc(s, &p, "kworker/0:1", NULL);
	/* pid 1001 again, an earlier incarnation (pid reuse). */
	p = (StoreProc){ .pid = 1001,
			 .ppid = 1,
			 .uid = 1000,
			 .flags = PROC_EXITED,
			 .start_ns = T0 - 300 * SEC,
			 .exit_ns = T0 - 200 * SEC,
			 .boot_id = BOOT_ID,
			 .start_boot_ns = 355 * NSEC_PER_SEC };
	r->procs[4] = proc(s, &p, "app-old", "app --old");
	r->pids[0] = 1001;
	r->pids[1] = 1002;
	r->pids[2] = 1003;
	r->pids[3] = 2;
	r->n_pids = 4;

	assert_int_equal(store_window_open(s, T0, T0 + 2 * SEC, PERIOD), 0);
	add(s, r->procs[0], 1001, "app", s1, false, 700);
	add(s, r->procs[0], 1001, "app", s1, true, 3);
	add(s, r->procs[0], 1004, "worker \xe2\x9c\x93", s2, true, 41);
	add(s, r->procs[0], 1004, "worker \xe2\x9c\x93", s2, false, 2);
	add(s, r->procs[1], 1002, "child", s4, false, 333);
	add(s, r->procs[3], 2, NULL, s2, true, 17);
	add(s, r->procs[4], 1001, "app-old", s5, false, 9);
	store_window_current(s)->idle = 555;
	store_window_current(s)->lost = 4;
	close_and_write(s, w);

	assert_int_equal(store_window_open(s, T0 + 2 * SEC, T0 + 4 * SEC, PERIOD), 0);
	add(s, r->procs[0], 1001, "app", s3, false, 250);
	add(s, r->procs[0], 1001, "app", s5, false, 51);
	add(s, r->procs[1], 1002, "child", s4, true, 88);
	add(s, r->procs[1], 1002, "child-renamed", s1, false, 13);
	close_and_write(s, w);

	/* After a gap, at another rate. */
	assert_int_equal(store_window_open(s, T0 + 10 * SEC, T0 + 12 * SEC, 10 * NSEC_PER_MSEC), 0);
	add(s, r->procs[0], 1001, "app", s1, false, 190);
	add(s, r->procs[1], 1002, "child", s3, false, 23);
	store_window_current(s)->idle = 1;
	close_and_write(s, w);

	/* Nothing but idle. */
	assert_int_equal(store_window_open(s, T0 + 12 * SEC, T0 + 14 * SEC, PERIOD), 0);
	store_window_current(s)->idle = 3996;
	close_and_write(s, w);

	store_stack_unref(s, s1);
	store_stack_unref(s, s2);
	store_stack_unref(s, s3);
	store_stack_unref(s, s4);
	store_stack_unref(s, s5);
}

static void rich_release(Store *s, const Rich *r)
{
	for (size_t i = 0; i < ARRAY_SIZE(r->procs); i++)
		store_proc_unref(s, r->procs[i]);
}

static void round_trip(uint64_t span, size_t want_segments)
{
	_cleanup_tmpdir_ char *dir = tmpdir_new();
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_loaded_ Loaded *l = NULL;
	PersistWriter *w = NULL;
	PersistStats ps;
	uint64_t on_disk = 0;
	unsigned ok;
	Rich r;

	assert_int_equal(store_new(&s), 0);
	assert_int_equal(persist_writer_new(s, dir, span, &w), 0);
	rich_build(s, w, &r);
	persist_stats(w, &ps);
	assert_int_equal(ps.windows_written, 4);
	assert_int_equal(ps.write_errors, 0);
	assert_int_equal(ps.last_error, 0);
	assert_int_equal(ps.segments_created, want_segments);
	assert_int_equal(ps.segments, want_segments);
	assert_int_equal(seg_count(dir), want_segments);
	for (uint64_t seq = 1; seq <= want_segments; seq++)
		on_disk += (uint64_t)seg_size(dir, seq);
	assert_int_equal(ps.disk_bytes, on_disk);
	assert_int_equal(ps.bytes_written, on_disk);
	print_message("%zu segment(s), %llu bytes for 4 windows\n", want_segments,
		      (unsigned long long)on_disk);

	l = load_dir(dir, INT64_MIN);
	assert_int_equal(l->stats.segments, want_segments);
	assert_int_equal(l->stats.windows, 4);
	assert_int_equal(l->stats.windows_skipped, 0);
	assert_int_equal(l->stats.corrupt_segments, 0);
	assert_int_equal(l->stats.bad_segments, 0);
	assert_int_equal(l->stats.bytes, on_disk);
	assert_int_equal(l->problems, 0);
	assert_int_equal(store_window_count(l->store), 4);
	assert_int_equal(store_proc_count(l->store), 5);

	assert_same_dump(s, l->store);
	assert_same_answers(s, l->store, T0 + 20 * SEC, r.pids, r.n_pids, &ok);
	/* Most of the questions have answers (not all errors): the comparison means something. */
	assert_true(ok >= 17);

	/* Spot checks against the values put in. */
	{
		_cleanup_free_ char *dumped = dump(l->store);

		assert_non_null(strstr(dumped,
				       "pid=1002 ppid=1001 uid=0 flags=3 start=1699999998000000000 "
				       "exit=1700000011000000000 comm=child\xe2\x9c\x93 "
				       "cmdline=./child user=3000000000 sys=1 "
				       "cuser=7000000000 csys=8 code=139 "
				       "boot=5eed5eed12345678 sboot=653000000001"));
		assert_non_null(strstr(dumped, "window 1700000000000000000..1700000002000000000 "
					       "period=1001001 samples=1105 idle=555 lost=4"));
		assert_non_null(strstr(
			dumped, "deep_1022|app|deep.c|1023|0|23fe;(none)|app|(none)|0|8|0;"));
		assert_non_null(strstr(dumped, "proc pid=1003 "));
		assert_non_null(strstr(dumped, "cgroup=/system.slice/app.service unit=app.service "
					       "slice=system.slice container=(none)"));
		assert_non_null(
			strstr(dumped, "unit=(none) slice=(none) container=0123456789abcdef"));
	}

	persist_writer_free(w);
	rich_release(s, &r);
}

static void test_round_trip_one_segment(void **state)
{
	(void)state;
	round_trip(3600 * NSEC_PER_SEC, 1);
}

/* Every window in a segment of its own: each segment stands alone. */
static void test_round_trip_many_segments(void **state)
{
	(void)state;
	round_trip(1, 4);
}

/* ---- damage ---- */

/* Three windows of one process in one segment (span: how long segments get). */
static void small_write(const char *dir, uint64_t span, int windows, Store **ret_store,
			ProcId *ret_proc)
{
	Store *s = NULL;
	_cleanup_(persist_writer_freep) PersistWriter *w = NULL;
	StoreProc tmpl = { .pid = 42, .start_ns = T0 - SEC, .boot_id = 1, .start_boot_ns = 7 };
	StackId a, b;
	ProcId p;

	assert_int_equal(store_new(&s), 0);
	assert_int_equal(persist_writer_new(s, dir, span, &w), 0);
	p = proc(s, &tmpl, "small", "small --x");
	a = STACK(s, frame(s, "leaf", "small", "s.c", 3, 0, 0x10),
		  frame(s, "main", "small", "s.c", 1, 0, 0x20));
	b = STACK(s, frame(s, "sys_read", "[kernel.kallsyms]", NULL, 0, FRAME_KERNEL, 0xffff1234),
		  frame(s, "main", "small", "s.c", 1, 0, 0x20));
	for (int i = 0; i < windows; i++) {
		assert_int_equal(store_window_open(s, T0 + i * SEC, T0 + (i + 1) * SEC, PERIOD), 0);
		add(s, p, 42, "small", a, false, 10 + (uint32_t)i);
		if (i % 2)
			add(s, p, 43, "small-2", b, true, 5);
		close_and_write(s, w);
	}
	store_stack_unref(s, a);
	store_stack_unref(s, b);
	*ret_store = s;
	*ret_proc = p;
}

/* The first k windows of a store, as text. */
static char *dump_windows(const Store *s, size_t k)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	assert_non_null(f);
	for (size_t i = 0; i < k; i++) {
		const Window *w = store_window(s, i);
		Lines entries = { 0 };
		char *text;

		fprintf(f, "window %lld..%lld samples=%llu\n", (long long)w->start_ns,
			(long long)w->end_ns, (unsigned long long)w->samples);
		for (size_t j = 0; j < w->n_entries; j++)
			lines_add(&entries, entry_line(s, &w->entries[j]));
		text = lines_join(&entries);
		fputs(text, f);
		free(text);
	}
	assert_int_equal(fclose(f), 0);
	return out;
}

/* Loads buf[0..len) (an exact heap copy) into a fresh store; checks what it holds. */
static size_t load_damaged(const uint8_t *buf, size_t len, const Store *orig, int *ret_r)
{
	_cleanup_free_ uint8_t *copy = malloc(MAX(len, (size_t)1));
	_cleanup_loaded_ Loaded *l = loaded_new();
	SegmentParseResult res = { 0 };
	size_t k;

	assert_non_null(copy);
	memcpy(copy, buf, len);
	*ret_r = persist_load_buffer(l->store, copy, len, INT64_MIN, callbacks(l), &l->stats, &res);
	k = l->stats.windows;
	assert_int_equal(store_window_count(l->store), k);
	assert_true(k <= store_window_count(orig));
	if (k > 0) {
		/* What loaded is exactly the first k windows, nothing made up. */
		_cleanup_free_ char *x = dump_windows(orig, k), *y = dump_windows(l->store, k);

		assert_string_equal(x, y);
	}
	if (*ret_r == 0) {
		assert_true(res.good_bytes <= len);
		assert_true(res.good_bytes >= SEGMENT_HEADER_SIZE);
		assert_true(res.tail_error == 0 || res.tail_error == -EBADMSG);
		assert_int_equal(res.tail_error == 0, res.good_bytes == len);
	}
	/* loaded_free checks that nothing is left once the windows and holds go. */
	return k;
}

static void test_damage_every_byte(void **state)
{
	_cleanup_tmpdir_ char *dir = tmpdir_new();
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_free_ uint8_t *buf = NULL, *copy = NULL;
	_cleanup_free_ size_t *cut = NULL;
	size_t len;
	ProcId p;
	int r;

	(void)state;
	small_write(dir, 3600 * NSEC_PER_SEC, 3, &s, &p);
	buf = seg_read(dir, 1, &len);
	print_message("small segment: %zu bytes for 3 windows\n", len);
	cut = calloc(len + 1, sizeof(size_t));
	copy = malloc(len);
	assert_non_null(cut);
	assert_non_null(copy);

	/* Cut at every length: a header error below 32 bytes, then ever more windows. */
	for (size_t n = 0; n <= len; n++) {
		cut[n] = load_damaged(buf, n, s, &r);
		assert_int_equal(r, n < SEGMENT_HEADER_SIZE ? -EBADMSG : 0);
		if (n > 0)
			assert_true(cut[n] >= cut[n - 1]);
	}
	assert_int_equal(cut[len], 3);
	assert_int_equal(cut[len - 1], 2);

	/* Every bit of every byte: exactly the windows that lie before the damage load. */
	for (size_t i = 0; i < len; i++)
		for (int bit = 0; bit < 8; bit++) {
			size_t k;

			memcpy(copy, buf, len);
			copy[i] ^= (uint8_t)(1u << bit);
			k = load_damaged(copy, len, s, &r);
			assert_int_equal(r, i < SEGMENT_HEADER_SIZE ? -EBADMSG : 0);
			if (k != cut[i])
				fail_msg("bit %d of byte %zu: %zu windows, want %zu", bit, i, k,
					 cut[i]);
		}

	/* Garbage of every length up to the whole, and zeros. */
	for (size_t n = 0; n <= len; n++) {
		for (size_t i = 0; i < n; i++)
			copy[i] = (uint8_t)(i * 131 + n);
		assert_int_equal(load_damaged(copy, n, s, &r), 0);
		assert_int_equal(r, -EBADMSG);
	}
	store_proc_unref(s, p);
}

/* A damaged segment costs its own tail; the next segment in the directory loads whole. */
static void test_damage_then_intact(void **state)
{
	_cleanup_tmpdir_ char *dir = tmpdir_new();
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_free_ uint8_t *first = NULL, *copy = NULL;
	_cleanup_free_ size_t *cut = NULL;
	char path1[PATH_MAX];
	size_t len;
	ProcId p;
	int r;

	(void)state;
	/* Segments of 3 s: windows 0-2 in the first, 3-4 in the second. */
	small_write(dir, 3 * NSEC_PER_SEC, 5, &s, &p);
	assert_int_equal(seg_count(dir), 2);
	first = seg_read(dir, 1, &len);
	seg_path(dir, 1, path1, sizeof(path1));
	cut = calloc(len + 1, sizeof(size_t));
	copy = malloc(len);
	assert_non_null(cut);
	assert_non_null(copy);
	for (size_t n = 0; n <= len; n++)
		cut[n] = load_damaged(first, n, s, &r);

	for (size_t i = 0; i <= len; i++)
		for (int how = 0; how < 2; how++) {
			_cleanup_loaded_ Loaded *l = NULL;
			SegmentParseResult res;
			bool damaged;

			if (how == 0) {
				/* Cut at i: damage unless i is the end of a record. */
				seg_write(dir, 1, first, i);
				damaged = segment_parse(first, i, &(SegmentVisitor){ 0 }, NULL,
							&res) < 0 ||
					  res.good_bytes != i;
			} else {
				/* One bit of byte i flipped. */
				if (i == len)
					continue;
				memcpy(copy, first, len);
				copy[i] ^= (uint8_t)(1u << (i % 8));
				seg_write(dir, 1, copy, len);
				damaged = true;
			}
			l = load_dir(dir, INT64_MIN);
			assert_int_equal(l->stats.segments, 2);
			if (l->stats.windows != cut[i] + 2)
				fail_msg("%s at %zu: %llu windows, want %zu", how ? "flip" : "cut",
					 i, (unsigned long long)l->stats.windows, cut[i] + 2);
			assert_int_equal(
				store_window(l->store, store_window_count(l->store) - 1)->end_ns,
				T0 + 5 * SEC);
			assert_int_equal(l->problems, damaged ? 1 : 0);
			if (!damaged) {
				assert_int_equal(l->stats.corrupt_segments + l->stats.bad_segments,
						 0);
				continue;
			}
			assert_string_equal(l->problem_path, path1);
			assert_int_equal(l->problem_error, -EBADMSG);
			assert_int_equal(l->problem_size, how ? len : i);
			if (i < SEGMENT_HEADER_SIZE) {
				assert_int_equal(l->stats.bad_segments, 1);
				assert_int_equal(l->stats.corrupt_segments, 0);
				assert_int_equal(l->problem_good, 0);
			} else {
				assert_int_equal(l->stats.bad_segments, 0);
				assert_int_equal(l->stats.corrupt_segments, 1);
				assert_true(l->problem_good >= SEGMENT_HEADER_SIZE &&
					    l->problem_good <= i);
			}
		}
	store_proc_unref(s, p);
}

/* A segment of another format version is skipped as such, and the next one loads. */
static void test_version_mismatch(void **state)
{
	_cleanup_tmpdir_ char *dir = tmpdir_new();
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_loaded_ Loaded *l = NULL;
	_cleanup_free_ uint8_t *buf = NULL;
	char path1[PATH_MAX];
	SegmentParseResult res;
	PersistLoadStats st = { 0 };
	size_t len;
	ProcId p;

	(void)state;
	small_write(dir, 3 * NSEC_PER_SEC, 5, &s, &p);
	buf = seg_read(dir, 1, &len);
	/* The next version, with a header CRC that matches: a well-formed segment of a later
	 * profq. */
	buf[8] = SEGMENT_VERSION + 1;
	{
		uint32_t c = (uint32_t)crc32(crc32(0L, Z_NULL, 0), buf, 28);

		for (int i = 0; i < 4; i++)
			buf[28 + i] = (uint8_t)(c >> (8 * i));
	}
	seg_write(dir, 1, buf, len);
	seg_path(dir, 1, path1, sizeof(path1));

	l = load_dir(dir, INT64_MIN);
	assert_int_equal(l->stats.segments, 2);
	assert_int_equal(l->stats.bad_segments, 1);
	assert_int_equal(l->stats.corrupt_segments, 0);
	assert_int_equal(l->stats.windows, 2);
	assert_int_equal(store_window(l->store, 0)->start_ns, T0 + 3 * SEC);
	assert_int_equal(l->problems, 1);
	assert_string_equal(l->problem_path, path1);
	assert_int_equal(l->problem_error, -EPROTONOSUPPORT);
	assert_int_equal(l->problem_good, 0);
	assert_int_equal(l->problem_size, len);
	/* What a caller logs with %m for it. */
	assert_string_equal(strerror(-l->problem_error), "Protocol not supported");

	/* The same from a buffer; nothing loaded. */
	{
		_cleanup_loaded_ Loaded *b = loaded_new();

		assert_int_equal(persist_load_buffer(b->store, buf, len, INT64_MIN, callbacks(b),
						     &st, &res),
				 -EPROTONOSUPPORT);
		assert_int_equal(st.windows, 0);
		assert_int_equal(store_proc_count(b->store), 0);
	}
	store_proc_unref(s, p);
}

/* Local ids as no writer gives them (far beyond the records read, or defined twice) end the
 * segment there, without the loader's id maps growing to match. */
static void test_local_ids(void **state)
{
	static const uint32_t bad[] = { 3000000, UINT32_MAX, 1 };
	(void)state;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		_cleanup_loaded_ Loaded *l = loaded_new();
		SegmentBuf b = { 0 };
		SegmentParseResult res = { 0 };
		PersistLoadStats st = { 0 };
		size_t good;

		segment_put_header(&b, T0);
		segment_put_string(&b, 1, "first");
		segment_put_string(&b, 2, "second");
		good = b.len;
		segment_put_string(&b, bad[i], "bad");
		segment_put_string(&b, 4, "after");
		assert_int_equal(b.error, 0);
		assert_int_equal(persist_load_buffer(l->store, b.data, b.len, INT64_MIN,
						     callbacks(l), &st, &res),
				 0);
		assert_int_equal(res.tail_error, -EBADMSG);
		assert_int_equal(res.good_bytes, good);
		segment_buf_done(&b);
	}
}

/* ---- the writer ---- */

/* One window [T0 + i s, T0 + (i+1) s) with a sample of p on a stack of its own. */
static void one_window(Store *s, PersistWriter *w, ProcId p, int i)
{
	char name[32];
	StackId st;

	snprintf(name, sizeof(name), "fn_%d", i);
	st = STACK(s, frame(s, name, "mod", NULL, 0, 0, (uint64_t)i));
	assert_int_equal(store_window_open(s, T0 + i * SEC, T0 + (i + 1) * SEC, PERIOD), 0);
	add(s, p, 1, "t", st, false, (uint32_t)i + 1);
	store_stack_unref(s, st);
	close_and_write(s, w);
}

static ProcId simple_proc(Store *s, uint32_t pid)
{
	StoreProc t = { .pid = pid, .start_ns = T0 - SEC, .boot_id = 1, .start_boot_ns = pid };

	return proc(s, &t, "simple", NULL);
}

static void test_rotation_and_expiry(void **state)
{
	_cleanup_tmpdir_ char *dir = tmpdir_new();
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_(persist_writer_freep) PersistWriter *w = NULL;
	PersistStats ps;
	ProcId p;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	p = simple_proc(s, 10);
	assert_int_equal(persist_writer_new(s, dir, 3 * NSEC_PER_SEC, &w), 0);
	/* Creates DIR/segments, empty. */
	assert_int_equal(seg_count(dir), 0);
	persist_stats(w, &ps);
	assert_int_equal(ps.segments, 0);

	/* A segment ends once it spans 3 s: windows 0-2, 3-5, 6-8, and 9 in an open fourth. */
	for (int i = 0; i < 10; i++)
		one_window(s, w, p, i);
	persist_stats(w, &ps);
	assert_int_equal(ps.windows_written, 10);
	assert_int_equal(ps.segments_created, 4);
	assert_int_equal(ps.segments, 4);
	assert_int_equal(seg_count(dir), 4);
	for (uint64_t seq = 1; seq <= 3; seq++) {
		_cleanup_loaded_ Loaded *l = loaded_new();
		_cleanup_free_ uint8_t *buf = NULL;
		SegmentParseResult res;
		size_t len;

		/* Each loads on its own, with its three windows. */
		buf = seg_read(dir, seq, &len);
		assert_int_equal(persist_load_buffer(l->store, buf, len, INT64_MIN, callbacks(l),
						     &l->stats, &res),
				 0);
		assert_int_equal(l->stats.windows, 3);
		assert_int_equal(store_window(l->store, 0)->start_ns,
				 T0 + (int64_t)(seq - 1) * 3 * SEC);
	}

	/* Expiry deletes segments whose windows all ended before the cut, oldest first. */
	persist_expire(w, T0 + 3 * SEC);
	assert_int_equal(seg_count(dir), 4);
	persist_expire(w, T0 + 3 * SEC + 1);
	assert_int_equal(seg_size(dir, 1), -1);
	assert_int_equal(seg_count(dir), 3);
	persist_stats(w, &ps);
	assert_int_equal(ps.segments_deleted, 1);
	assert_int_equal(ps.segments, 3);
	assert_int_equal(ps.disk_bytes,
			 (uint64_t)(seg_size(dir, 2) + seg_size(dir, 3) + seg_size(dir, 4)));
	/* Never the segment being written, however old. */
	persist_expire(w, INT64_MAX);
	assert_int_equal(seg_count(dir), 1);
	assert_true(seg_size(dir, 4) > 0);
	persist_stats(w, &ps);
	assert_int_equal(ps.segments_deleted, 3);
	assert_int_equal(ps.segments, 1);
	assert_int_equal(ps.disk_bytes, (uint64_t)seg_size(dir, 4));
	{
		_cleanup_loaded_ Loaded *l = load_dir(dir, INT64_MIN);

		assert_int_equal(l->stats.windows, 1);
		assert_int_equal(store_window(l->store, 0)->start_ns, T0 + 9 * SEC);
	}

	/* Windows 10 and 11 go on in the fourth, which then spans 3 s and ends. */
	one_window(s, w, p, 10);
	assert_int_equal(seg_count(dir), 1);
	one_window(s, w, p, 11);
	persist_expire(w, T0 + 12 * SEC);
	assert_int_equal(seg_count(dir), 1);
	/* Ended, it is no longer the current one. */
	persist_expire(w, T0 + 12 * SEC + 1);
	assert_int_equal(seg_count(dir), 0);
	one_window(s, w, p, 12);
	assert_true(seg_size(dir, 5) > 0);
	persist_stats(w, &ps);
	assert_int_equal(ps.segments_created, 5);
	assert_int_equal(ps.segments_deleted, 4);
	assert_int_equal(ps.segments, 1);
	store_proc_unref(s, p);
}

/* Restarted on the same directory: the old segments are read, never appended to. */
static void test_restart(void **state)
{
	_cleanup_tmpdir_ char *dir = tmpdir_new();
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_loaded_ Loaded *l = NULL, *again = NULL;
	PersistWriter *w = NULL;
	struct timespec old[2] = { { .tv_sec = T0 / SEC - 1000 }, { .tv_sec = T0 / SEC - 1000 } };
	char path1[PATH_MAX];
	off_t size2;
	PersistStats ps;
	ProcId p;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	p = simple_proc(s, 10);
	assert_int_equal(persist_writer_new(s, dir, 3 * NSEC_PER_SEC, &w), 0);
	for (int i = 0; i < 5; i++)
		one_window(s, w, p, i);
	/* kill -9: nothing more is written than what each window wrote. */
	persist_writer_free(w);
	store_proc_unref(s, p);
	size2 = seg_size(dir, 2);

	l = load_dir(dir, INT64_MIN);
	assert_int_equal(l->stats.windows, 5);
	assert_same_dump(s, l->store);
	assert_int_equal(persist_writer_new(l->store, dir, 3 * NSEC_PER_SEC, &w), 0);
	persist_stats(w, &ps);
	assert_int_equal(ps.segments, 2);
	assert_int_equal(ps.disk_bytes, (uint64_t)(seg_size(dir, 1) + size2));
	p = simple_proc(l->store, 11);
	one_window(l->store, w, p, 5);
	/* A new third segment; the second, though it spans less than 3 s, is left as it was. */
	assert_int_equal(seg_size(dir, 2), size2);
	assert_true(seg_size(dir, 3) > 0);
	persist_stats(w, &ps);
	assert_int_equal(ps.segments, 3);
	assert_int_equal(ps.segments_created, 1);

	again = load_dir(dir, INT64_MIN);
	assert_int_equal(again->stats.windows, 6);
	assert_int_equal(again->stats.segments, 3);
	assert_same_dump(l->store, again->store);
	persist_writer_free(w);
	store_proc_unref(l->store, p);

	/* Segments from before a restart expire by their modification time. */
	seg_path(dir, 1, path1, sizeof(path1));
	assert_int_equal(utimensat(AT_FDCWD, path1, old, 0), 0);
	assert_int_equal(persist_writer_new(l->store, dir, 3 * NSEC_PER_SEC, &w), 0);
	persist_expire(w, T0);
	assert_int_equal(seg_size(dir, 1), -1);
	assert_int_equal(seg_count(dir), 2);
	persist_writer_free(w);
	/* ... and the loader does not read them when they are older than asked for. */
	seg_path(dir, 2, path1, sizeof(path1));
	assert_int_equal(utimensat(AT_FDCWD, path1, old, 0), 0);
	{
		_cleanup_loaded_ Loaded *recent = load_dir(dir, T0);

		assert_int_equal(recent->stats.segments, 1);
		assert_int_equal(recent->stats.windows, 1);
		assert_int_equal(store_window(recent->store, 0)->start_ns, T0 + 5 * SEC);
	}
}

/* One window [T0 + i s, T0 + (i+1) s) with samples of p in threads distinct tids. */
static void wide_window(Store *s, ProcId p, int i, uint32_t threads)
{
	StackId st = STACK(s, frame(s, "wide", "mod", NULL, 0, 0, 1));

	assert_int_equal(store_window_open(s, T0 + i * SEC, T0 + (i + 1) * SEC, PERIOD), 0);
	for (uint32_t t = 1; t <= threads; t++)
		add(s, p, t, "t", st, false, t);
	store_stack_unref(s, st);
	assert_int_equal(store_window_close(s), 0);
}

static const Window *last_window(const Store *s)
{
	return store_window(s, store_window_count(s) - 1);
}

/*
 * A failed write (here: the file size limit, EFBIG) leaves the store as it was, is counted and
 * reported, and the next window goes to a new segment; the torn tail it left is skipped on
 * load. Failing to start a segment leaves no file behind.
 */
static void test_write_failure(void **state)
{
	_cleanup_tmpdir_ char *dir = tmpdir_new();
	_cleanup_(store_freep) Store *s = NULL;
	PersistWriter *w = NULL;
	struct rlimit saved, lim;
	void (*old_handler)(int);
	char *before, *after;
	size_t mem_before;
	off_t size1;
	PersistStats ps;
	uint8_t held[16] = { 0 };
	ProcId p;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	p = simple_proc(s, 10);
	held[p] = 1;
	assert_int_equal(persist_writer_new(s, dir, 3600 * NSEC_PER_SEC, &w), 0);
	one_window(s, w, p, 0);
	size1 = seg_size(dir, 1);
	assert_true(size1 > SEGMENT_HEADER_SIZE);

	/* Room for 10 more bytes: the next window is torn. */
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
	old_handler = signal(SIGXFSZ, SIG_IGN);
	lim = saved;
	lim.rlim_cur = (rlim_t)size1 + 10;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	wide_window(s, p, 1, 50);
	before = dump(s);
	mem_before = store_memory(s);
	assert_int_equal(persist_write_window(w, last_window(s)), -EFBIG);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
	after = dump(s);
	assert_string_equal(before, after);
	assert_int_equal(store_memory(s), mem_before);
	free(before);
	free(after);
	persist_stats(w, &ps);
	assert_int_equal(ps.write_errors, 1);
	assert_int_equal(ps.last_error, -EFBIG);
	assert_int_equal(ps.windows_written, 1);
	assert_int_equal(ps.bytes_written, (uint64_t)size1);
	assert_int_equal(seg_size(dir, 1), size1 + 10);

	/* The next window: a new segment, with everything it needs; the error clears. */
	one_window(s, w, p, 2);
	persist_stats(w, &ps);
	assert_int_equal(ps.write_errors, 1);
	assert_int_equal(ps.last_error, 0);
	assert_int_equal(ps.windows_written, 2);
	assert_int_equal(ps.segments_created, 2);
	assert_int_equal(seg_size(dir, 1), size1 + 10);
	assert_true(seg_size(dir, 2) > SEGMENT_HEADER_SIZE);

	/* Not even a header fits: the segment that could not start leaves no file. */
	lim.rlim_cur = 0;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	wide_window(s, p, 3, 2);
	assert_int_equal(persist_write_window(w, last_window(s)), -EFBIG);
	wide_window(s, p, 4, 2);
	assert_int_equal(persist_write_window(w, last_window(s)), -EFBIG);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
	signal(SIGXFSZ, old_handler);
	persist_stats(w, &ps);
	assert_int_equal(ps.write_errors, 3);
	assert_int_equal(ps.last_error, -EFBIG);
	assert_int_equal(seg_size(dir, 3), -1);
	one_window(s, w, p, 5);
	persist_stats(w, &ps);
	assert_int_equal(ps.last_error, 0);
	assert_int_equal(ps.windows_written, 3);
	assert_int_equal(seg_count(dir), 3);
	assert_int_equal(ps.segments, 3);
	assert_int_equal(ps.disk_bytes, (uint64_t)(size1 + seg_size(dir, 2) + seg_size(dir, 4)));

	{
		_cleanup_loaded_ Loaded *l = load_dir(dir, INT64_MIN);

		/* Windows 0, 2 and 5 made it to disk; 1, 3 and 4 only to memory. */
		assert_int_equal(l->stats.windows, 3);
		assert_int_equal(store_window(l->store, 0)->start_ns, T0);
		assert_int_equal(store_window(l->store, 1)->start_ns, T0 + 2 * SEC);
		assert_int_equal(store_window(l->store, 2)->start_ns, T0 + 5 * SEC);
		assert_int_equal(l->stats.corrupt_segments, 1);
		assert_int_equal(l->stats.bad_segments, 0);
		assert_int_equal(l->problems, 1);
		assert_int_equal(l->problem_good, size1);
		assert_int_equal(l->problem_size, size1 + 10);
	}
	assert_int_equal(store_window_count(s), 6);
	persist_writer_free(w);
	/* The writer released all it held, also what it held for the failed segments. */
	store_expect_empty_after_release(s, held, sizeof(held));
}

/* A small tmpfs (needs root), unmounted by the teardown also when the test fails. */
typedef struct SmallFs {
	char *dir;
	char path[PATH_MAX];
	int mount_error;
} SmallFs;

static int small_fs_setup(void **state)
{
	SmallFs *f = calloc(1, sizeof(SmallFs));

	if (!f)
		return -1;
	f->dir = tmpdir_new();
	snprintf(f->path, sizeof(f->path), "%s/fs", f->dir);
	if (mkdir(f->path, 0700) < 0 ||
	    mount("profq-test", f->path, "tmpfs", 0, "size=64k,mode=0700") < 0)
		f->mount_error = errno;
	*state = f;
	return 0;
}

static int small_fs_teardown(void **state)
{
	SmallFs *f = *state;

	if (!f->mount_error)
		(void)umount2(f->path, MNT_DETACH);
	tmpdir_freep(&f->dir);
	free(f);
	return 0;
}

/* Disk full for real: ENOSPC, then writes resume. */
static void test_disk_full(void **state)
{
	SmallFs *small = *state;
	const char *fs = small->path;
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_(persist_writer_freep) PersistWriter *w = NULL;
	char filler[PATH_MAX + 16];
	static char page[4096];
	PersistStats ps;
	ProcId p;
	int fd;

	if (small->mount_error) {
		print_message("cannot mount a tmpfs (%s): skipped\n", strerror(small->mount_error));
		skip();
	}
	assert_int_equal(store_new(&s), 0);
	p = simple_proc(s, 10);
	assert_int_equal(persist_writer_new(s, fs, 3600 * NSEC_PER_SEC, &w), 0);
	/* 100 entries: 2.4 KB a window, so every second one needs a new page. */
	wide_window(s, p, 0, 100);
	assert_int_equal(persist_write_window(w, last_window(s)), 0);

	snprintf(filler, sizeof(filler), "%s/filler", fs);
	fd = open(filler, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	while (write(fd, page, sizeof(page)) == sizeof(page))
		;
	assert_int_equal(errno, ENOSPC);
	close(fd);

	for (int i = 1; i <= 4; i++) {
		wide_window(s, p, i, 100);
		if (persist_write_window(w, last_window(s)) < 0)
			continue;
	}
	persist_stats(w, &ps);
	assert_true(ps.write_errors >= 3);
	assert_int_equal(ps.last_error, -ENOSPC);
	assert_string_equal(strerror(-ps.last_error), "No space left on device");
	/* No pile of empty segments from the windows that failed. */
	assert_true(seg_count(fs) <= 2);

	assert_int_equal(unlink(filler), 0);
	wide_window(s, p, 5, 100);
	assert_int_equal(persist_write_window(w, last_window(s)), 0);
	persist_stats(w, &ps);
	assert_int_equal(ps.last_error, 0);
	{
		_cleanup_loaded_ Loaded *l = load_dir(fs, INT64_MIN);

		assert_int_equal(l->stats.windows, ps.windows_written);
		assert_int_equal(store_window(l->store, store_window_count(l->store) - 1)->start_ns,
				 T0 + 5 * SEC);
		assert_int_equal(l->stats.bad_segments, 0);
	}
	w = persist_writer_free(w);
	store_proc_unref(s, p);
}

/*
 * A process record changes after its first window (exit, accounting, exec): the change is
 * written with the next window even when the process has no samples in it, and the loaded
 * record is the latest. A process that never had a sample is written too.
 */
static void proc_updates(uint64_t span)
{
	_cleanup_tmpdir_ char *dir = tmpdir_new();
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_(persist_writer_freep) PersistWriter *w = NULL;
	_cleanup_loaded_ Loaded *l = NULL;
	StoreProc t = { .pid = 100,
			.ppid = 1,
			.uid = 7,
			.start_ns = T0 - SEC,
			.boot_id = 1,
			.start_boot_ns = 100 };
	ProcId p1, p2, p3;
	StackId st;
	StoreProc *m;
	StrId comm;
	off_t grown;

	assert_int_equal(store_new(&s), 0);
	assert_int_equal(persist_writer_new(s, dir, span, &w), 0);
	p1 = proc(s, &t, "before", "before --exec");
	t.pid = 200;
	t.start_boot_ns = 200;
	p2 = proc(s, &t, "other", NULL);
	st = STACK(s, frame(s, "f", "m", NULL, 0, 0, 1));

	assert_int_equal(store_window_open(s, T0, T0 + SEC, PERIOD), 0);
	add(s, p1, 100, "before", st, false, 5);
	add(s, p2, 200, "other", st, false, 6);
	close_and_write(s, w);

	/* p1 execs, then exits; p3 lives and dies between two samples. */
	comm = str(s, "after");
	store_proc_set_comm(s, p1, comm);
	store_string_unref(s, comm);
	m = store_proc_mut(s, p1);
	m->flags |= PROC_EXITED | PROC_ACCOUNTING;
	m->exit_ns = T0 + SEC + SEC / 2;
	m->exit_code = 256;
	m->user_ns = 11;
	m->sys_ns = 12;
	m->child_user_ns = 13;
	m->child_sys_ns = 14;
	t = (StoreProc){ .pid = 300,
			 .ppid = 100,
			 .uid = 7,
			 .flags = PROC_EXITED,
			 .start_ns = T0 + SEC,
			 .exit_ns = T0 + SEC + 1000,
			 .exit_code = 15,
			 .boot_id = 1,
			 .start_boot_ns = 300 };
	p3 = proc(s, &t, "brief", "brief");

	assert_int_equal(store_window_open(s, T0 + SEC, T0 + 2 * SEC, PERIOD), 0);
	add(s, p2, 200, "other", st, false, 7);
	close_and_write(s, w);

	/* Nothing changed: only the window record is written. */
	grown = seg_size(dir, 1);
	assert_int_equal(store_window_open(s, T0 + 2 * SEC, T0 + 3 * SEC, PERIOD), 0);
	add(s, p2, 200, "other", st, false, 8);
	close_and_write(s, w);
	if (span > 3 * NSEC_PER_SEC)
		assert_int_equal(seg_size(dir, 1) - grown, 12 + 60 + 32 + 4);

	l = load_dir(dir, INT64_MIN);
	assert_int_equal(l->stats.windows, 3);
	assert_int_equal(l->stats.corrupt_segments, 0);
	assert_same_dump(s, l->store);
	{
		_cleanup_free_ char *d = dump(l->store);

		assert_non_null(
			strstr(d, "proc pid=100 ppid=1 uid=7 flags=3 start=1699999999000000000 "
				  "exit=1700000001500000000 comm=after cmdline=before --exec "
				  "user=11 sys=12 cuser=13 csys=14 code=256"));
		assert_non_null(strstr(d, "proc pid=300 ppid=100 uid=7 flags=1 "));
	}
	/* Only the first window, but the records as the later windows (and segments) left
	 * them: a history query about an old window shows how its processes ended. */
	{
		_cleanup_loaded_ Loaded *r = loaded_new();
		_cleanup_free_ char *d = NULL;

		assert_int_equal(persist_load_range(r->store, dir, INT64_MIN, T0 + SEC,
						    callbacks(r), &r->stats),
				 0);
		assert_int_equal(r->stats.windows, 1);
		assert_int_equal(r->stats.windows_skipped, 2);
		assert_int_equal(store_window_count(r->store), 1);
		assert_int_equal(store_window(r->store, 0)->start_ns, T0);
		d = dump(r->store);
		assert_non_null(
			strstr(d, "proc pid=100 ppid=1 uid=7 flags=3 start=1699999999000000000 "
				  "exit=1700000001500000000 comm=after cmdline=before --exec "
				  "user=11 sys=12 cuser=13 csys=14 code=256"));
	}
	store_stack_unref(s, st);
	store_proc_unref(s, p1);
	store_proc_unref(s, p2);
	store_proc_unref(s, p3);
}

static void test_proc_updates_one_segment(void **state)
{
	(void)state;
	proc_updates(3600 * NSEC_PER_SEC);
}

static void test_proc_updates_many_segments(void **state)
{
	(void)state;
	proc_updates(1);
}

/*
 * A process first known from /proc has its start to the clock tick; the first sample corrects
 * it (store_proc_set_start). Its later record in the same segment is the same process, not
 * damage: every window after it must still load.
 */
static void test_start_corrected(void **state)
{
	_cleanup_tmpdir_ char *dir = tmpdir_new();
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_(persist_writer_freep) PersistWriter *w = NULL;
	_cleanup_loaded_ Loaded *l = NULL;
	StoreProc t = { .pid = 500,
			.start_ns = T0 - 10 * SEC,
			.boot_id = 1,
			.start_boot_ns = 990 * NSEC_PER_SEC };
	ProcId p, other;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	assert_int_equal(persist_writer_new(s, dir, 3600 * NSEC_PER_SEC, &w), 0);
	/* Known (say, asked about) before its first sample: written with the next window. */
	p = proc(s, &t, "sleeper", NULL);
	other = simple_proc(s, 9);
	one_window(s, w, other, 0);
	assert_int_equal(
		store_proc_set_start(s, p, 990 * NSEC_PER_SEC + 4321, T0 - 10 * SEC + 4321), 0);
	one_window(s, w, p, 1);
	one_window(s, w, p, 2);

	l = load_dir(dir, INT64_MIN);
	assert_int_equal(l->problems, 0);
	assert_int_equal(l->stats.corrupt_segments, 0);
	assert_int_equal(l->stats.windows, 3);
	assert_same_dump(s, l->store);
	store_proc_unref(s, p);
	store_proc_unref(s, other);
}

/*
 * The writer holds what its segment defined: a window evicted from the ring does not free a
 * stack the segment may use again, so its id cannot be reused under the writer; once the
 * segment ends, it goes.
 */
static void test_writer_references(void **state)
{
	_cleanup_tmpdir_ char *dir = tmpdir_new();
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_(persist_writer_freep) PersistWriter *w = NULL;
	_cleanup_loaded_ Loaded *l = NULL;
	_cleanup_free_ char *text0 = NULL, *text1 = NULL;
	char *got;
	uint8_t held[16] = { 0 };
	StackId a, a2, b;
	off_t size;
	ProcId p;

	(void)state;
	assert_int_equal(store_new(&s), 0);
	assert_int_equal(persist_writer_new(s, dir, 3 * NSEC_PER_SEC, &w), 0);
	p = simple_proc(s, 10);
	held[p] = 1;
	a = STACK(s, frame(s, "shared", "mod", "shared.c", 1, 0, 1));
	assert_int_equal(store_window_open(s, T0, T0 + SEC, PERIOD), 0);
	add(s, p, 1, "t", a, false, 1);
	store_stack_unref(s, a);
	close_and_write(s, w);
	text0 = dump_windows(s, 1);
	assert_int_equal(store_window_evict(s), 0);
	/* Only the writer holds it now. */
	assert_non_null(store_stack(s, a, &(size_t){ 0 }));
	b = STACK(s, frame(s, "other", "mod", NULL, 0, 0, 2));
	assert_int_not_equal(b, a);

	size = seg_size(dir, 1);
	a2 = STACK(s, frame(s, "shared", "mod", "shared.c", 1, 0, 1));
	assert_int_equal(a2, a);
	assert_int_equal(store_window_open(s, T0 + SEC, T0 + 2 * SEC, PERIOD), 0);
	add(s, p, 1, "t", a, false, 2);
	store_stack_unref(s, a);
	close_and_write(s, w);
	/* The segment knew the stack: the window record is all that was written. */
	assert_int_equal(seg_size(dir, 1) - size, 12 + 60 + 32 + 4);
	text1 = dump_windows(s, 1);

	assert_int_equal(store_window_open(s, T0 + 2 * SEC, T0 + 3 * SEC, PERIOD), 0);
	add(s, p, 1, "t", b, false, 3);
	store_stack_unref(s, b);
	close_and_write(s, w);
	/* The segment spans 3 s and ends; its references go with it. */
	assert_int_equal(store_window_evict(s), 0);
	assert_null(store_stack(s, a, &(size_t){ 0 }));
	assert_non_null(store_stack(s, b, &(size_t){ 0 }));

	l = load_dir(dir, INT64_MIN);
	assert_int_equal(l->stats.windows, 3);
	got = dump_windows(l->store, 2);
	assert_non_null(strstr(got, text0));
	assert_non_null(strstr(got, text1 + strcspn(text1, "\n") + 1));
	free(got);
	store_expect_empty_after_release(s, held, sizeof(held));
}

/* Bytes this process has read with read(2) and friends (/proc/self/io: rchar). */
static uint64_t bytes_read_by_us(void)
{
	_cleanup_free_ char *text = NULL;
	unsigned long long rchar = 0;
	const char *p;

	assert_int_equal(procfs_read_file("/proc/self/io", 4096, &text, NULL), 0);
	p = strstr(text, "rchar: ");
	assert_non_null(p);
	assert_int_equal(sscanf(p, "rchar: %llu", &rchar), 1);
	return rchar;
}

/* What the loader reads of a directory, and what it leaves alone. */
static void test_load_selection(void **state)
{
	_cleanup_tmpdir_ char *dir = tmpdir_new();
	_cleanup_(store_freep) Store *s = NULL;
	char path[PATH_MAX + 64], target[PATH_MAX];
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len;
	ProcId p;
	int fd;

	(void)state;
	{
		_cleanup_(store_freep) Store *e = NULL;

		assert_int_equal(store_new(&e), 0);
		/* No segments directory: -ENOENT, for the directory and below it. */
		assert_int_equal(persist_load(e, dir, INT64_MIN, NULL, NULL), -ENOENT);
		snprintf(path, sizeof(path), "%s/none", dir);
		assert_int_equal(persist_load(e, path, INT64_MIN, NULL, NULL), -ENOENT);
	}
	small_write(dir, 3 * NSEC_PER_SEC, 5, &s, &p);

	/* Windows that ended before not_before are left out (ends are T0+1 s .. T0+5 s). */
	{
		_cleanup_loaded_ Loaded *l = load_dir(dir, T0 + 2 * SEC + 1);

		assert_int_equal(l->stats.windows, 3);
		assert_int_equal(l->stats.windows_skipped, 2);
		assert_int_equal(store_window(l->store, 0)->start_ns, T0 + 2 * SEC);
	}
	/* And those that start at or after not_after (starts are T0 .. T0+4 s). */
	{
		_cleanup_loaded_ Loaded *l = loaded_new();

		assert_int_equal(persist_load_range(l->store, dir, T0 + SEC + 1, T0 + 3 * SEC,
						    callbacks(l), &l->stats),
				 0);
		assert_int_equal(l->stats.windows, 2);
		assert_int_equal(l->stats.windows_skipped, 3);
		assert_int_equal(store_window(l->store, 0)->start_ns, T0 + SEC);
		assert_int_equal(store_window(l->store, 1)->start_ns, T0 + 2 * SEC);
	}

	/* Other files, a directory, a symlink, a FIFO (which must not block the load). */
	seg_path(dir, 1, target, sizeof(target));
	snprintf(path, sizeof(path), "%s/segments/README", dir);
	assert_int_equal(symlink(target, path), 0);
	snprintf(path, sizeof(path), "%s/segments/0000000000000008.pqseg", dir);
	assert_int_equal(symlink(target, path), 0);
	snprintf(path, sizeof(path), "%s/segments/0000000000000007.pqseg", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/segments/0000000000000006.pqseg", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	/* Copies of a segment under names that are not quite segment names. */
	buf = seg_read(dir, 1, &len);
	for (size_t i = 0; i < 4; i++) {
		static const char *const names[] = { "000000000000000g.pqseg",
						     "00000000000000009.pqseg",
						     "0000000000000009.pqseg.tmp",
						     "000000000000009.pqseg" };
		FILE *f;

		snprintf(path, sizeof(path), "%s/segments/%s", dir, names[i]);
		f = fopen(path, "we");
		assert_non_null(f);
		assert_int_equal(fwrite(buf, 1, len, f), len);
		assert_int_equal(fclose(f), 0);
	}
	{
		_cleanup_loaded_ Loaded *l = load_dir(dir, INT64_MIN);

		assert_int_equal(l->stats.segments, 2);
		assert_int_equal(l->stats.windows, 5);
		assert_int_equal(l->problems, 0);
	}

	/* An empty segment (a crash before its header was written) is bad, the rest loads. */
	seg_write(dir, 10, buf, 0);
	/* A copy of the first segment after the second: its windows overlap, and are skipped. */
	seg_write(dir, 11, buf, len);
	{
		_cleanup_loaded_ Loaded *l = load_dir(dir, INT64_MIN);

		assert_int_equal(l->stats.segments, 4);
		assert_int_equal(l->stats.windows, 5);
		assert_int_equal(l->stats.windows_skipped, 3);
		assert_int_equal(l->stats.bad_segments, 1);
		assert_int_equal(l->problems, 1);
		assert_int_equal(l->problem_error, -EBADMSG);
		assert_int_equal(l->problem_size, 0);
		/* The process is the same incarnation in every segment: one record. */
		assert_int_equal(store_proc_count(l->store), 1);
	}

	/* A file over the size limit is not read at all (not 1 GiB read to be thrown away). */
	seg_path(dir, 12, path, sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)(1ULL << 30) + 1), 0);
	close(fd);
	{
		uint64_t read_before = bytes_read_by_us(), read_after;
		_cleanup_loaded_ Loaded *l = load_dir(dir, INT64_MIN);

		read_after = bytes_read_by_us();
		assert_int_equal(l->stats.windows, 5);
		assert_int_equal(l->stats.bad_segments, 2);
		assert_int_equal(l->problem_error, -EFBIG);
		assert_true(read_after - read_before < (1u << 20));
	}
	store_proc_unref(s, p);
}

/* Tries the lock from another process: persist_lock()'s result there. */
static int lock_in_child(const char *dir)
{
	int status, fd;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		int r = persist_lock(dir, &fd);

		_exit(r == 0 ? 0 : r == -EBUSY ? 1 : 2);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status) == 0 ? 0 : WEXITSTATUS(status) == 1 ? -EBUSY : -EIO;
}

/* One writer per state directory: a second one is refused while the first holds the lock (also
 * from the same process: flock() locks belong to the open file), readers are not, and a holder
 * killed leaves no stale lock behind. */
static void test_lock(void **state)
{
	_cleanup_tmpdir_ char *top = tmpdir_new();
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_free_ char *dir = NULL;
	PersistLoadStats st;
	PersistWriter *w = NULL;
	int fd = -1, fd2 = -1, status;
	pid_t holder;
	int sync[2];
	char c;

	(void)state;
	assert_non_null(top);
	assert_true(asprintf(&dir, "%s/state", top) > 0);
	/* Made if missing, as the writer would. */
	assert_int_equal(persist_lock(dir, &fd), 0);
	assert_true(fd >= 0);
	assert_int_equal(persist_lock(dir, &fd2), -EBUSY);
	assert_int_equal(lock_in_child(dir), -EBUSY);

	/* The holder writes; a reader loads while it holds the lock. */
	assert_int_equal(store_new(&s), 0);
	assert_int_equal(persist_writer_new(s, dir, 3600 * SEC, &w), 0);
	assert_int_equal(store_window_open(s, T0, T0 + 10 * SEC, 10000000), 0);
	assert_int_equal(store_window_close(s), 0);
	assert_int_equal(persist_write_window(w, store_window(s, 0)), 0);
	{
		_cleanup_(store_freep) Store *r = NULL;

		assert_int_equal(store_new(&r), 0);
		assert_int_equal(persist_load(r, dir, 0, NULL, &st), 0);
		assert_int_equal(st.windows, 1);
	}
	persist_writer_free(w);

	/* Released on close. */
	close(fd);
	assert_int_equal(lock_in_child(dir), 0);

	/* A holder killed (kill -9 of a daemon) leaves the lock file, not the lock. */
	assert_int_equal(pipe(sync), 0);
	holder = fork();
	assert_true(holder >= 0);
	if (holder == 0) {
		int r = persist_lock(dir, &fd);

		(void)!write(sync[1], r == 0 ? "y" : "n", 1);
		pause();
		_exit(0);
	}
	assert_int_equal(read(sync[0], &c, 1), 1);
	assert_int_equal(c, 'y');
	assert_int_equal(persist_lock(dir, &fd2), -EBUSY);
	assert_int_equal(kill(holder, SIGKILL), 0);
	assert_int_equal(waitpid(holder, &status, 0), holder);
	close(sync[0]);
	close(sync[1]);
	assert_int_equal(persist_lock(dir, &fd2), 0);
	close(fd2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_one_segment),
		cmocka_unit_test(test_round_trip_many_segments),
		cmocka_unit_test(test_damage_every_byte),
		cmocka_unit_test(test_damage_then_intact),
		cmocka_unit_test(test_version_mismatch),
		cmocka_unit_test(test_local_ids),
		cmocka_unit_test(test_rotation_and_expiry),
		cmocka_unit_test(test_restart),
		cmocka_unit_test(test_write_failure),
		cmocka_unit_test_setup_teardown(test_disk_full, small_fs_setup, small_fs_teardown),
		cmocka_unit_test(test_proc_updates_one_segment),
		cmocka_unit_test(test_proc_updates_many_segments),
		cmocka_unit_test(test_start_corrected),
		cmocka_unit_test(test_writer_references),
		cmocka_unit_test(test_load_selection),
		cmocka_unit_test(test_lock),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
