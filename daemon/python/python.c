/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "base/hashindex.h"
#include "base/log.h"
#include "base/macro.h"
#include "base/procfs.h"
#include "base/timeutil.h"
#include "python/memreader.h"
#include "python/pycode.h"
#include "python/pylayout.h"
#include "python/python.h"

/* Bounds on what one process can make us do. */
#define RUNTIME_READ 4096u /* bytes of _PyRuntime read for 3.13's debug offsets */
#define CODES_MAX 65536u   /* code objects cached, all processes */
#define CODE_BYTES_MAX (16u << 20)
/* Thread lists are read again on a sample of an unknown thread, at most this often; the
 * interval doubles (up to SCAN_MAX_NS) while the reads find nothing new. */
#define SCAN_MIN_NS (10 * NSEC_PER_MSEC)
#define SCAN_MAX_NS (2 * NSEC_PER_SEC)
#define RESCAN_NS (5 * NSEC_PER_SEC) /* and at least this often, to drop threads gone */
/* A process whose memory no longer reads is kept until its exit event (its samples, queued
 * before that, are still to be named from the cache), or this long if that event was lost. */
#define ORPHAN_NS (30 * NSEC_PER_SEC)
/* Execs of an interpreter whose mappings do not show it yet (libpython not mapped) are looked at
 * again this often, this many times; at most this many at once. */
#define EXEC_RETRY_NS (20 * NSEC_PER_MSEC)
#define EXEC_TRIES 5
#define EXECS_MAX 64

#define LINE_MEMO 8
/* How long a read of a process's memory may take before its reader is killed: microseconds
 * normally, tens of milliseconds on a loaded machine. */
#define MEM_TIMEOUT_NS (250 * NSEC_PER_MSEC)

typedef PyThreadRef PyThread; /* pthread_t, and its thread state */

struct PyProc {
	uint32_t pid;
	uint64_t start_ns;
	int mem_fd;	   /* /proc/PID/mem, bound to the address space it was opened on */
	uint32_t uid;	   /* whose memory it is (the owner of /proc/PID/mem) */
	MemReader *reader; /* reads it (borrowed from Python) */
	PyLayout layout;
	uint32_t layout_index;
	uint64_t runtime, code_type, eval_lo, eval_hi;
	PyThread *threads;
	size_t n_threads;
	uint64_t last_scan_ns, scan_interval_ns;
	uint64_t exec_ns; /* python_exec(): the exec it was found after (CLOCK_BOOTTIME), or 0 */
	uint64_t attached_ns; /* CLOCK_BOOTTIME */
	uint64_t dead_ns;     /* CLOCK_MONOTONIC when its memory was first found unreadable */
	bool dead;	      /* its memory no longer reads: named from the cache only */
	bool exited;	      /* its exit event came: dropped at the next tick */
};

/* An exec python_exec() looks at again. */
typedef struct PendingExec {
	uint32_t pid;
	unsigned tries;
	uint64_t start_ns, exec_ns, next_ns;
} PendingExec;

/* A code object read from a process. */
typedef struct CodeEntry {
	uint64_t hash;
	uint32_t pid;
	uint64_t start_ns;
	uint64_t addr;
	uint32_t ident;
	StrId name, file; /* held; 0 for an object that could not be read */
	uint32_t firstlineno;
	uint8_t *table;
	uint32_t table_len;
	/* The last lines looked up, by offset (direct-mapped): a hot loop's few instructions are
	 * most of the lookups, and a table is decoded from its start each time. */
	uint32_t memo_offset[LINE_MEMO], memo_line[LINE_MEMO];
} CodeEntry;

struct Python {
	Store *store;
	Symbolizer *sym;
	PyMapOps ops;
	StrId module; /* "[python]": the module of Python frames, and the name of unnamed ones */
	PyProc **procs;
	size_t n_procs, allocated_procs;
	struct profq_py_layout layouts[PROFQ_PY_LAYOUTS];
	uint32_t n_layouts;
	CodeEntry *codes;
	size_t n_codes, allocated_codes, code_bytes;
	bool procs_removed; /* since the code cache was last compacted */
	bool sweep;	    /* py_threads may hold entries no followed thread has */
	PendingExec execs[EXECS_MAX];
	size_t n_execs;
	HashIndex *code_index;
	MemReader *reader;
	PythonStats stats;
};

static uint64_t now_boot_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* ---- process memory ---- */

/*
 * Reads the process's memory in the reader's child process: a page of a file on FUSE, which a
 * process can point us at, waits for that file system's daemon (memreader.h). A read that
 * timed out makes the process's memory read no more.
 */
static int mem_read(void *userdata, uint64_t addr, void *buf, size_t len)
{
	PyProc *pp = userdata;
	int r;

	if (pp->dead)
		return -ESRCH;
	r = mem_reader_read(pp->reader, pp->mem_fd, pp->uid, addr, buf, len);
	if (r == -ETIMEDOUT)
		pp->dead = true;
	return r;
}

static int read_u64(PyProc *pp, uint64_t addr, uint64_t *ret)
{
	return mem_read(pp, addr, ret, sizeof(*ret));
}

/* ---- the code cache ---- */

static uint64_t code_hash(uint32_t pid, uint64_t start_ns, uint64_t addr)
{
	uint64_t key[3] = { pid, start_ns, addr };

	return XXH3_64bits(key, sizeof(key));
}

typedef struct CodeKey {
	uint32_t pid;
	uint64_t start_ns, addr;
} CodeKey;

static bool code_eq(uint32_t idx, const void *key, void *userdata)
{
	const CodeEntry *e = &((Python *)userdata)->codes[idx];
	const CodeKey *k = key;

	return e->pid == k->pid && e->start_ns == k->start_ns && e->addr == k->addr;
}

static void code_entry_done(Python *py, CodeEntry *e)
{
	store_string_unref(py->store, e->name);
	store_string_unref(py->store, e->file);
	free(e->table);
}

static size_t code_entry_bytes(const CodeEntry *e)
{
	return sizeof(*e) + e->table_len;
}

static void codes_clear(Python *py)
{
	for (size_t i = 0; i < py->n_codes; i++)
		code_entry_done(py, &py->codes[i]);
	py->n_codes = py->code_bytes = 0;
	hash_index_clear(py->code_index);
}

typedef struct LiveKey {
	uint32_t pid;
	uint64_t start_ns;
} LiveKey;

static int live_cmp(const void *a, const void *b)
{
	const LiveKey *x = a, *y = b;

	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return x->start_ns < y->start_ns ? -1 : x->start_ns > y->start_ns;
}

/* Drops the entries of processes no longer followed (once a tick after one went: a sort of the
 * followed processes and a binary search per entry). */
static void codes_compact(Python *py)
{
	_cleanup_free_ LiveKey *live = NULL;
	size_t kept = 0;

	if (!py->procs_removed || py->n_codes == 0)
		return;
	live = calloc(py->n_procs + 1, sizeof(*live));
	if (!live)
		return;
	for (size_t i = 0; i < py->n_procs; i++)
		live[i] = (LiveKey){ .pid = py->procs[i]->pid, .start_ns = py->procs[i]->start_ns };
	qsort(live, py->n_procs, sizeof(*live), live_cmp);
	py->procs_removed = false;
	hash_index_clear(py->code_index);
	py->code_bytes = 0;
	for (size_t i = 0; i < py->n_codes; i++) {
		CodeEntry *e = &py->codes[i];
		LiveKey k = { .pid = e->pid, .start_ns = e->start_ns };

		if (!bsearch(&k, live, py->n_procs, sizeof(*live), live_cmp)) {
			code_entry_done(py, e);
			continue;
		}
		py->codes[kept] = *e;
		/* Cannot fail: the index held more entries a moment ago. */
		(void)hash_index_insert(py->code_index, e->hash, (uint32_t)kept);
		py->code_bytes += code_entry_bytes(e);
		kept++;
	}
	py->n_codes = kept;
}

/*
 * Reads the code object at addr of pp into a cache entry: without a name (0) when it cannot be
 * read or makes no sense (cached as such: it is not read again for every sample), or when it
 * is not the object the sample saw (ident: that one is gone; -ESTALE, not cached).
 */
static int code_read(Python *py, PyProc *pp, uint64_t addr, uint32_t ident, CodeEntry *ret)
{
	_cleanup_(pycode_done) PyCode code = { 0 };
	int r;

	*ret = (CodeEntry){
		.pid = pp->pid, .start_ns = pp->start_ns, .addr = addr, .ident = ident
	};
	memset(ret->memo_offset, 0xff, sizeof(ret->memo_offset));
	if (pp->dead)
		return -ESRCH;
	/* Read and parsed in the reader's child, identity bytes first: an object that is not the
	 * sampled one (a process can make that so on every sample) is found so before its strings
	 * and line table are read (-ECHILD). */
	r = mem_reader_code(pp->reader, pp->mem_fd, pp->uid, &pp->layout, addr, pp->code_type,
			    ident, &code);
	if (r == -ETIMEDOUT)
		pp->dead = true;
	if (r == -ECHILD) {
		py->stats.code_changed++;
		return -ESTALE;
	}
	py->stats.code_reads++;
	if (r == -ENOMEM)
		return r;
	if (r == -ESTALE || (r >= 0 && code.ident != ident)) {
		py->stats.code_changed++;
		return -ESTALE;
	}
	if (r < 0) {
		py->stats.code_read_errors++;
		return 0;
	}
	ret->firstlineno = code.firstlineno;
	r = store_intern_string(py->store, code.qualname, &ret->name);
	if (r >= 0)
		r = store_intern_string(py->store, code.filename, &ret->file);
	if (r < 0) {
		code_entry_done(py, ret);
		return r;
	}
	ret->table = TAKE_PTR(code.linetable);
	ret->table_len = (uint32_t)code.linetable_len;
	return 0;
}

/* The cached code object at addr of pp as the sample saw it (ident): NULL if it cannot be. */
static CodeEntry *code_get(Python *py, PyProc *pp, uint64_t addr, uint32_t ident)
{
	CodeKey key = { .pid = pp->pid, .start_ns = pp->start_ns, .addr = addr };
	uint64_t hash = code_hash(pp->pid, pp->start_ns, addr);
	CodeEntry e;
	uint32_t idx;

	if (hash_index_find(py->code_index, hash, code_eq, &key, py, &idx) == 0) {
		if (py->codes[idx].ident == ident)
			return &py->codes[idx];
		/* Another object at the address since: read it again in place. */
		if (pp->dead || code_read(py, pp, addr, ident, &e) < 0)
			return NULL;
		py->code_bytes -= code_entry_bytes(&py->codes[idx]);
		code_entry_done(py, &py->codes[idx]);
		e.hash = hash;
		py->codes[idx] = e;
		py->code_bytes += code_entry_bytes(&e);
		return &py->codes[idx];
	}
	/* Exited: what it ran is named from the cache only. */
	if (pp->dead || code_read(py, pp, addr, ident, &e) < 0)
		return NULL;
	if (py->n_codes >= CODES_MAX || py->code_bytes + code_entry_bytes(&e) > CODE_BYTES_MAX) {
		codes_clear(py);
		py->stats.code_cache_drops++;
	}
	e.hash = hash;
	if (GREEDY_REALLOC(py->codes, py->allocated_codes, py->n_codes + 1) < 0 ||
	    hash_index_insert(py->code_index, hash, (uint32_t)py->n_codes) < 0) {
		code_entry_done(py, &e);
		return NULL;
	}
	py->codes[py->n_codes] = e;
	py->code_bytes += code_entry_bytes(&e);
	return &py->codes[py->n_codes++];
}

int python_frame(Python *py, PyProc *pp, const struct profq_py_frame *f, FrameId *ret)
{
	StoreFrame frame = { .function = py->module, .module = py->module, .flags = FRAME_PYTHON };
	uint64_t addr = f->code & ~PROFQ_PY_ENTRY;
	CodeEntry *e;
	uint32_t slot = (f->offset >> 1) % LINE_MEMO;

	py->stats.frames_read++;
	e = code_get(py, pp, addr, f->ident);
	if (!e || e->name == 0) {
		py->stats.frames_unnamed++;
		return store_intern_frame(py->store, &frame, ret);
	}
	frame.function = e->name;
	frame.file = frame.decl_file = e->file;
	frame.decl_line = e->firstlineno;
	if (e->memo_offset[slot] != f->offset) {
		e->memo_line[slot] = pycode_line(&pp->layout, e->table, e->table_len,
						 e->firstlineno, f->offset);
		e->memo_offset[slot] = f->offset;
	}
	frame.line = e->memo_line[slot];
	return store_intern_frame(py->store, &frame, ret);
}

/* ---- the BPF maps ---- */

static uint32_t layout_index(Python *py, const struct profq_py_layout *l, int *ret_error)
{
	for (uint32_t i = 0; i < py->n_layouts; i++)
		if (memcmp(&py->layouts[i], l, sizeof(*l)) == 0)
			return i;
	if (py->n_layouts >= PROFQ_PY_LAYOUTS) {
		*ret_error = -ENOSPC;
		return 0;
	}
	*ret_error = py->ops.set_layout(py->ops.userdata, py->n_layouts, l);
	if (*ret_error < 0)
		return 0;
	py->layouts[py->n_layouts] = *l;
	return py->n_layouts++;
}

static void thread_del(Python *py, PyProc *pp, uint64_t thread)
{
	struct profq_py_thread_key k = { .thread = thread, .tgid = pp->pid };

	(void)py->ops.del_thread(py->ops.userdata, &k);
}

static int thread_cmp(const void *a, const void *b)
{
	const PyThread *x = a, *y = b;

	return x->thread < y->thread ? -1 : x->thread > y->thread;
}

/*
 * Reads the thread states of every interpreter of pp and makes the BPF map hold exactly them.
 * Returns how many were new, or -errno (the map keeps what it had).
 */
static int scan_threads(Python *py, PyProc *pp, uint64_t mono_ns)
{
	_cleanup_free_ PyThread *found = NULL;
	size_t n = 0, added = 0, i = 0, j = 0;
	int r;

	py->stats.thread_scans++;
	pp->last_scan_ns = mono_ns;
	found = calloc(PY_THREADS_MAX, sizeof(*found));
	if (!found)
		return -ENOMEM;
	/* Walked in the reader's child: one round trip for up to thousands of reads. */
	r = pp->dead ? -ESRCH
		     : mem_reader_threads(pp->reader, pp->mem_fd, pp->uid, &pp->layout, pp->runtime,
					  (PyThreadRef *)found, &n);
	if (r < 0) {
		if (r == -ESRCH || r == -EIO || r == -ETIMEDOUT)
			pp->dead = true;
		return r;
	}
	qsort(found, n, sizeof(*found), thread_cmp);
	/* One state per thread (a list that loops names the same ones again). */
	for (i = 0, j = 0; j < n; j++)
		if (i == 0 || found[j].thread != found[i - 1].thread)
			found[i++] = found[j];
	n = i;
	i = j = 0;
	/* Merge the sorted old and new lists: delete what went, set what came or changed. */
	while (i < pp->n_threads || j < n) {
		int c = i == pp->n_threads ? 1
			: j == n	   ? -1
					   : thread_cmp(&pp->threads[i], &found[j]);

		if (c < 0) {
			thread_del(py, pp, pp->threads[i++].thread);
			py->stats.threads--;
			continue;
		}
		if (c == 0 && pp->threads[i].tstate == found[j].tstate) {
			i++, j++;
			continue;
		}
		struct profq_py_thread_key key = { .thread = found[j].thread, .tgid = pp->pid };
		struct profq_py_thread v = { .tstate = found[j].tstate,
					     .start_ns = pp->start_ns,
					     .layout = pp->layout_index };

		if (py->ops.set_thread(py->ops.userdata, &key, &v) < 0) {
			py->stats.map_errors++;
			/* Not in the map: not in the list, so the next scan tries again. */
			found[j].thread = 0;
		} else if (c != 0) {
			py->stats.threads++;
			added++;
		}
		if (c == 0)
			i++;
		j++;
	}
	/* Keep the ones in the map, in order. */
	i = 0;
	for (j = 0; j < n; j++)
		if (found[j].thread)
			found[i++] = found[j];
	free(pp->threads);
	pp->threads = realloc(found, MAX(i, 1) * sizeof(*found)) ?: found;
	found = NULL;
	pp->n_threads = i;
	return (int)added;
}

/* ---- processes ---- */

/* Frees pp; with unmap, takes its entries out of the BPF maps first (not at python_free():
 * the maps may be gone by then). */
static void proc_free(Python *py, PyProc *pp, bool unmap)
{
	if (unmap) {
		for (size_t i = 0; i < pp->n_threads; i++)
			thread_del(py, pp, pp->threads[i].thread);
		(void)py->ops.del_proc(py->ops.userdata, pp->pid);
	}
	py->stats.threads -= pp->n_threads;
	if (pp->mem_fd >= 0)
		close(pp->mem_fd);
	free(pp->threads);
	free(pp);
}

static PyProc *proc_find(const Python *py, uint32_t pid, size_t *ret_idx)
{
	for (size_t i = 0; i < py->n_procs; i++)
		if (py->procs[i]->pid == pid) {
			if (ret_idx)
				*ret_idx = i;
			return py->procs[i];
		}
	return NULL;
}

static void proc_remove(Python *py, size_t idx)
{
	PyProc *pp = py->procs[idx];

	py->procs[idx] = py->procs[--py->n_procs];
	proc_free(py, pp, true);
	py->stats.processes--;
	py->procs_removed = true;
	py->sweep = true;
}

/*
 * "python3.11", "libpython3.11.so.1.0", "python3.12d": the minor version of a CPython 3 binary's
 * name, 0 if it is not one. A 't' after the version (free-threaded builds) sets *ret_ft.
 */
static unsigned name_minor(const char *path, bool *ret_ft)
{
	const char *base = strrchr(path, '/'), *p;
	unsigned minor = 0;

	base = base ? base + 1 : path;
	if (strncmp(base, "lib", 3) == 0)
		base += 3;
	if (strncmp(base, "python3.", 8) != 0)
		return 0;
	for (p = base + 8; *p >= '0' && *p <= '9' && minor < 100; p++)
		minor = minor * 10 + (unsigned)(*p - '0');
	*ret_ft = *p == 't';
	return p == base + 8 ? 0 : minor;
}

/* Opens /proc/PID/mem and checks that the pid is still the incarnation start_ns names. */
static int open_mem(uint32_t pid, uint64_t start_ns)
{
	_cleanup_close_ int fd = -1;
	uint64_t tick = NSEC_PER_SEC / procfs_clock_ticks();
	char path[64];
	ProcStat st;
	int r;

	snprintf(path, sizeof(path), "/proc/%u/mem", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	r = procfs_read_stat((pid_t)pid, &st);
	if (r < 0)
		return r;
	if (st.starttime != start_ns / tick)
		return -ESRCH;
	return TAKE_FD(fd);
}

/* The layout of the interpreter: its Py_Version (3.11+) or the binary's name says which. */
static int find_layout(Python *py, PyProc *pp, unsigned minor, uint64_t version_addr,
		       uint64_t runtime_size)
{
	uint32_t hexversion = 0;
	const PyLayout *l;
	int r;

	if (version_addr && mem_read(pp, version_addr, &hexversion, sizeof(hexversion)) == 0 &&
	    hexversion >> 24 == 3)
		minor = (hexversion >> 16) & 0xff;
	if (minor >= 13) {
		_cleanup_free_ uint8_t *buf = NULL;
		size_t len = MIN(runtime_size ?: RUNTIME_READ, RUNTIME_READ);

		buf = malloc(len);
		if (!buf)
			return -ENOMEM;
		r = mem_read(pp, pp->runtime, buf, len);
		if (r < 0)
			return r;
		r = pylayout_from_debug_offsets(buf, len, &pp->layout);
		if (r == -EOPNOTSUPP)
			py->stats.free_threaded++;
		return r;
	}
	l = pylayout_for_version(3, minor);
	if (!l)
		return -EOPNOTSUPP;
	pp->layout = *l;
	return 0;
}

/* What the BPF program needs to look through the first interpreter's thread list itself:
 * its offsets, if they fit (PROFQ_PY_NONE: it does not). */
static void walk_offsets(PyLayout *l)
{
	bool fit = l->interp_threads_head < PROFQ_PY_NONE && l->tstate_next < PROFQ_PY_NONE;

	l->bpf.interp_threads_head = fit ? (uint16_t)l->interp_threads_head : PROFQ_PY_NONE;
	l->bpf.tstate_next = fit ? (uint16_t)l->tstate_next : PROFQ_PY_NONE;
}

/*
 * Follows the interpreter that binary, mapped by map into process pid, holds, if it is one.
 * start_ns: the process's start as the BPF program reads it (exact; a process first known from
 * /proc has its start to the clock tick only in the table), which its map entries must carry.
 * exec_ns: the exec python_exec() found it after, or 0.
 */
static int attach(Python *py, uint32_t pid, uint64_t start_ns, Binary *binary, const ProcMap *map,
		  unsigned minor, uint64_t exec_ns)
{
	ElfSymbolQuery q[] = {
		{ .name = "_PyRuntime" },
		{ .name = "_PyEval_EvalFrameDefault" },
		{ .name = "PyCode_Type" },
		{ .name = "Py_Version" },
	};
	_cleanup_free_ PyProc *pp = NULL;
	struct profq_py_proc v;
	struct stat st;
	int r;

	r = symbolizer_binary_find(binary, map, q, ARRAY_SIZE(q));
	if (r < 0)
		return r;
	if (!q[0].vaddr || !q[1].vaddr || !q[2].vaddr || !q[1].size)
		return -ENOENT; /* not an interpreter (an extension module, say) */
	pp = calloc(1, sizeof(*pp));
	if (!pp)
		return -ENOMEM;
	*pp = (PyProc){ .pid = pid,
			.start_ns = start_ns,
			.exec_ns = exec_ns,
			.attached_ns = now_boot_ns(),
			.runtime = q[0].vaddr,
			.eval_lo = q[1].vaddr,
			.eval_hi = q[1].vaddr + q[1].size,
			.code_type = q[2].vaddr,
			.scan_interval_ns = SCAN_MIN_NS };
	pp->mem_fd = open_mem(pid, start_ns);
	if (pp->mem_fd < 0) {
		/* Gone already, or not ours to read (no CAP_SYS_PTRACE). */
		py->stats.attach_errors++;
		return pp->mem_fd;
	}
	pp->uid = fstat(pp->mem_fd, &st) == 0 ? st.st_uid : UINT32_MAX;
	pp->reader = py->reader;
	r = find_layout(py, pp, minor, q[3].vaddr, q[0].size);
	if (r < 0) {
		close(pp->mem_fd);
		if (r == -EOPNOTSUPP || r == -EINVAL)
			py->stats.unsupported++;
		return r;
	}
	walk_offsets(&pp->layout);
	pp->layout_index = layout_index(py, &pp->layout.bpf, &r);
	v = (struct profq_py_proc){ .start_ns = pp->start_ns,
				    .layout = pp->layout_index,
				    .interp_head = pp->runtime +
						   pp->layout.runtime_interpreters_head };
	if (r >= 0)
		r = GREEDY_REALLOC(py->procs, py->allocated_procs, py->n_procs + 1);
	if (r >= 0 && py->n_procs >= PROFQ_PY_PROCS)
		r = -ENOSPC;
	if (r >= 0)
		r = py->ops.set_proc(py->ops.userdata, pp->pid, &v);
	if (r < 0) {
		close(pp->mem_fd);
		py->stats.attach_errors++;
		return r;
	}
	py->procs[py->n_procs++] = pp;
	py->stats.processes++;
	py->stats.attached++;
	log_debug("Following the Python %u.%u interpreter of process %u.",
		  pp->layout.hexversion >> 24, (pp->layout.hexversion >> 16) & 0xff, pp->pid);
	(void)scan_threads(py, TAKE_PTR(pp), now_mono_ns());
	return 0;
}

/* The minor version of the CPython binary at path, if profq can read that version: 0 if it is
 * not an interpreter's name, -EOPNOTSUPP (counted) if it is one profq cannot read. */
static int supported_minor(Python *py, const char *path)
{
	bool ft = false;
	unsigned minor = name_minor(path, &ft);

	if (minor == 0)
		return 0;
	if (ft) {
		py->stats.unsupported++;
		py->stats.free_threaded++;
		return -EOPNOTSUPP;
	}
	if (minor < 8) {
		py->stats.unsupported++;
		return -EOPNOTSUPP;
	}
	return (int)minor;
}

/* attach(), saying why not: -ENOENT if the binary holds no interpreter (look on). */
static int try_attach(Python *py, uint32_t pid, uint64_t start_ns, Binary *binary,
		      const ProcMap *map, int minor, uint64_t exec_ns)
{
	int r = attach(py, pid, start_ns, binary, map, (unsigned)minor, exec_ns);

	if (r < 0 && r != -ENOENT)
		log_debug_errno(r, "Not following the Python 3.%d of process %u: %m", minor, pid);
	return r;
}

/* Looks for an interpreter among proc's mappings. */
static void detect(Python *py, Process *proc, uint64_t start_ns)
{
	for (size_t i = 0; i < proc->n_maps; i++) {
		const Mapping *m = &proc->maps[i];
		int minor;

		if (!m->binary || !m->map.path)
			continue;
		minor = supported_minor(py, m->map.path);
		if (minor < 0)
			return;
		if (minor > 0 &&
		    try_attach(py, proc->pid, start_ns, m->binary, &m->map, minor, 0) != -ENOENT)
			return;
	}
}

/* Looks for an interpreter among the mappings of process pid as /proc shows them now: 1 if it
 * is followed, 0 if none is seen (yet), -errno if there is none to follow. */
static int detect_now(Python *py, const PendingExec *e)
{
	ProcMap *maps = NULL;
	size_t n = 0;
	int r;

	r = procfs_read_maps((pid_t)e->pid, &maps, &n);
	if (r < 0)
		return r;
	r = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		Binary *b = NULL;
		int minor;

		if (!maps[i].path || !(maps[i].prot & PROT_EXEC))
			continue;
		minor = supported_minor(py, maps[i].path);
		if (minor < 0)
			r = minor;
		if (minor <= 0 || symbolizer_binary(py->sym, (pid_t)e->pid, &maps[i], &b) < 0)
			continue;
		r = try_attach(py, e->pid, e->start_ns, b, &maps[i], minor, e->exec_ns);
		r = r == -ENOENT ? 0 : r < 0 ? r : 1;
		binary_unref(py->sym, b);
	}
	procfs_maps_free(maps, n);
	return r;
}

/*
 * An exec python_exec() looks at: 1 if its interpreter is followed now, 0 if its executable is
 * an interpreter's but no mapping shows one yet (look again), -errno if there is nothing to
 * follow (most execs: one readlink() says so).
 */
static int exec_try(Python *py, const PendingExec *e)
{
	char path[64], exe[PATH_MAX];
	size_t idx;
	PyProc *pp;
	ssize_t len;
	int minor;

	/* Found from this exec already. One found from a sample may be the image before the
	 * exec (the sample taken before it): found again. */
	pp = proc_find(py, e->pid, &idx);
	if (pp && pp->start_ns == e->start_ns && pp->exec_ns >= e->exec_ns)
		return 1;
	snprintf(path, sizeof(path), "/proc/%u/exe", e->pid);
	len = readlink(path, exe, sizeof(exe) - 1);
	if (len < 0)
		return negative_errno();
	exe[len] = '\0';
	minor = supported_minor(py, exe);
	if (minor <= 0)
		return minor < 0 ? minor : -ENOENT;
	if (pp)
		proc_remove(py, idx);
	return detect_now(py, e);
}

void python_exec(Python *py, uint32_t pid, uint64_t start_ns, uint64_t exec_ns, uint64_t mono_ns)
{
	PendingExec e = { .pid = pid, .start_ns = start_ns, .exec_ns = exec_ns };
	int r;

	if (!py->sym)
		return;
	r = exec_try(py, &e);
	if (r > 0)
		py->stats.exec_attached++;
	/* Not seen yet: looked at again, as room allows (else its first sample will). */
	if (r != 0 || py->n_execs >= EXECS_MAX)
		return;
	e.tries = 1;
	e.next_ns = mono_ns + EXEC_RETRY_NS;
	py->execs[py->n_execs++] = e;
}

void python_poll(Python *py, uint64_t mono_ns)
{
	for (size_t i = 0; i < py->n_execs;) {
		PendingExec *e = &py->execs[i];
		int r;

		if (mono_ns < e->next_ns) {
			i++;
			continue;
		}
		r = exec_try(py, e);
		if (r > 0)
			py->stats.exec_attached++;
		if (r == 0 && ++e->tries < EXEC_TRIES) {
			e->next_ns = mono_ns + EXEC_RETRY_NS;
			i++;
			continue;
		}
		*e = py->execs[--py->n_execs];
	}
}

PyProc *python_sample(Python *py, Process *proc, const struct profq_sample *s, uint64_t mono_ns)
{
	PyProc *pp = proc_find(py, proc->pid, NULL);

	if (pp && pp->start_ns != s->start_ns) {
		python_forget(py, proc->pid, false, UINT64_MAX);
		pp = NULL;
	}
	if (!pp) {
		/* Once for each reading of the maps: a library mapped later is seen. */
		if (proc->kthread || proc->exited || !proc->maps_loaded ||
		    proc->python_checked_ns == proc->maps_read_ns)
			return NULL;
		proc->python_checked_ns = proc->maps_read_ns;
		detect(py, proc, s->start_ns);
		pp = proc_find(py, proc->pid, NULL);
		if (!pp)
			return NULL;
	}
	py->stats.samples++;
	if (s->py_flags & PROFQ_PY_THREAD_FOUND) {
		/* In py_threads but not in pp->threads: the next tick makes them one. */
		py->stats.thread_found++;
		py->sweep = true;
	}
	if (s->py_len)
		py->stats.samples_with_frames++;
	if (s->py_flags & PROFQ_PY_READ_ERROR)
		py->stats.walk_errors++;
	if (s->py_flags & PROFQ_PY_TRUNCATED)
		py->stats.walk_truncated++;
	if (s->py_flags & (PROFQ_PY_THREAD_UNKNOWN | PROFQ_PY_THREAD_MISMATCH)) {
		if (s->py_flags & PROFQ_PY_THREAD_UNKNOWN)
			py->stats.thread_unknown++;
		else
			py->stats.thread_mismatch++;
		if (!pp->dead && mono_ns - pp->last_scan_ns >= pp->scan_interval_ns) {
			int r = scan_threads(py, pp, mono_ns);

			pp->scan_interval_ns = r > 0 ? SCAN_MIN_NS
						     : MIN(pp->scan_interval_ns * 2, SCAN_MAX_NS);
		}
	}
	return pp;
}

void python_code_seen(Python *py, uint32_t pid, uint64_t start_ns, const struct profq_py_frame *f)
{
	PyProc *pp = proc_find(py, pid, NULL);

	if (pp && pp->start_ns == start_ns && !pp->dead)
		(void)code_get(py, pp, f->code & ~PROFQ_PY_ENTRY, f->ident);
}

bool python_is_eval(const PyProc *pp, uint64_t addr)
{
	return addr >= pp->eval_lo && addr < pp->eval_hi;
}

void python_forget(Python *py, uint32_t pid, bool exited, uint64_t time_ns)
{
	PyProc *pp;
	size_t idx;

	pp = proc_find(py, pid, &idx);
	if (!pp)
		return;
	/* Found by python_exec() after this exec (read here only now): it is the new image's. */
	if (!exited && pp->exec_ns && pp->attached_ns > time_ns)
		return;
	/* Its last samples come after the exit event (events are drained first): they are named
	 * from the cache until the next tick. */
	if (exited)
		pp->dead = pp->exited = true;
	else
		proc_remove(py, idx);
}

static bool proc_has_thread(const PyProc *pp, uint64_t thread)
{
	PyThread k = { .thread = thread };

	return bsearch(&k, pp->threads, pp->n_threads, sizeof(k), thread_cmp) != NULL;
}

/*
 * Takes out of py_threads the entries no followed thread has: those the BPF program added
 * (python_stack() in bpf/profq.bpf.c) for threads since gone, or of processes no longer
 * followed. A process with an entry it does not know has its thread list read first (once), so
 * that live threads keep theirs. Bounded by the map's size.
 */
static void sweep_threads(Python *py, uint64_t mono_ns)
{
	_cleanup_free_ struct profq_py_thread_key *gone = NULL;
	struct profq_py_thread_key k, prev;
	struct profq_py_thread v;
	size_t n = 0, allocated = 0;

	py->sweep = false;
	if (!py->ops.next_thread)
		return;
	for (size_t steps = 0; steps < PROFQ_PY_THREADS; steps++) {
		PyProc *pp;

		if (py->ops.next_thread(py->ops.userdata, steps ? &prev : NULL, &k, &v) < 0)
			break;
		prev = k;
		pp = proc_find(py, k.tgid, NULL);
		if (pp && pp->start_ns == v.start_ns && !proc_has_thread(pp, k.thread) &&
		    !pp->dead && pp->last_scan_ns != mono_ns)
			(void)scan_threads(py, pp, mono_ns);
		if (pp && pp->start_ns == v.start_ns && proc_has_thread(pp, k.thread))
			continue;
		if (GREEDY_REALLOC(gone, allocated, n + 1) < 0)
			break;
		gone[n++] = k;
	}
	for (size_t i = 0; i < n; i++)
		if (py->ops.del_thread(py->ops.userdata, &gone[i]) >= 0)
			py->stats.threads_swept++;
}

void python_tick(Python *py, uint64_t mono_ns)
{
	for (size_t i = 0; i < py->n_procs;) {
		PyProc *pp = py->procs[i];
		uint64_t v;

		/* Gone: its exit event came, or its memory no longer reads and the event did not
		 * come for long (lost). Until then its samples queued before the event are named
		 * from the cache. */
		if (!pp->dead && read_u64(pp, pp->runtime, &v) < 0)
			pp->dead = true;
		if (pp->dead && pp->dead_ns == 0)
			pp->dead_ns = mono_ns;
		if (pp->exited || (pp->dead && mono_ns - pp->dead_ns >= ORPHAN_NS)) {
			proc_remove(py, i);
			continue;
		}
		if (pp->dead) {
			i++;
			continue;
		}
		if (mono_ns - pp->last_scan_ns >= RESCAN_NS)
			(void)scan_threads(py, pp, mono_ns);
		i++;
	}
	if (py->sweep)
		sweep_threads(py, mono_ns);
	codes_compact(py);
}

size_t python_shrink(Python *py)
{
	size_t before = py->code_bytes;

	codes_clear(py);
	return before;
}

size_t python_memory(const Python *py)
{
	size_t n = sizeof(*py) + py->allocated_codes * sizeof(CodeEntry) +
		   hash_index_memory(py->code_index) + py->allocated_procs * sizeof(PyProc *);

	n += py->code_bytes - py->n_codes * sizeof(CodeEntry);
	for (size_t i = 0; i < py->n_procs; i++)
		n += sizeof(PyProc) + MAX(py->procs[i]->n_threads, 1) * sizeof(PyThread);
	return n;
}

void python_stats(const Python *py, PythonStats *ret)
{
	MemReaderStats ms;

	*ret = py->stats;
	ret->code_cache_entries = py->n_codes;
	mem_reader_stats(py->reader, &ms);
	ret->mem_reads = ms.reads;
	ret->mem_timeouts = ms.timeouts;
	ret->mem_readers = ms.children;
	ret->mem_readers_stuck = ms.stuck;
}

int python_new(Store *store, Symbolizer *sym, const PyMapOps *ops, Python **ret)
{
	_cleanup_(python_freep) Python *py = NULL;
	int r;

	py = calloc(1, sizeof(*py));
	if (!py)
		return -ENOMEM;
	py->store = store;
	py->sym = sym;
	py->ops = *ops;
	r = hash_index_new(&py->code_index);
	if (r < 0)
		return r;
	r = mem_reader_new(MEM_TIMEOUT_NS, &py->reader);
	if (r < 0)
		return r;
	r = store_intern_string(store, "[python]", &py->module);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(py);
	return 0;
}

Python *python_free(Python *py)
{
	if (!py)
		return NULL;
	while (py->n_procs > 0)
		proc_free(py, py->procs[--py->n_procs], false);
	free(py->procs);
	codes_clear(py);
	free(py->codes);
	hash_index_free(py->code_index);
	mem_reader_free(py->reader);
	store_string_unref(py->store, py->module);
	free(py);
	return NULL;
}
