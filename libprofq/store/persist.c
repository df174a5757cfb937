/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "base/macro.h"
#include "base/procfs.h"
#include "base/timeutil.h"
#include "store/persist.h"

#define SEGMENT_SUFFIX ".pqseg"
/* /proc's start times count USER_HZ ticks: 100 per second on Linux. */
#define START_TICK_NS (NSEC_PER_SEC / 100)
/* Segment files larger than this are not read (a hostile or absurd file must not stall us). */
#define SEGMENT_MAX_FILE (1ULL << 30)

typedef struct SegmentFile {
	uint64_t seq;
	int64_t max_end_ns; /* the end of its newest window (estimated by mtime if not ours) */
	uint64_t size;
} SegmentFile;

struct PersistWriter {
	Store *store;
	char *dir; /* DIR/segments */
	int dirfd;
	uint64_t span_ns;

	SegmentFile *files; /* on disk, oldest first; the current one last when fd >= 0 */
	size_t n_files, allocated_files;
	uint64_t next_seq;

	int fd; /* the current segment, or -1 */
	int64_t first_start_ns;

	/* Store id -> segment-local id of what the current segment holds (0: not yet). */
	uint32_t *strs, *frames, *stacks, *procs, *proc_versions;
	size_t n_strs, n_frames, n_stacks, n_procs;
	uint32_t next_id;

	SegmentBuf buf;
	PersistStats stats;
};

static bool segment_name(const char *name, uint64_t *ret_seq)
{
	size_t len = strlen(name);
	uint64_t seq = 0;

	if (len != 16 + strlen(SEGMENT_SUFFIX) || !streq(name + 16, SEGMENT_SUFFIX))
		return false;
	for (size_t i = 0; i < 16; i++) {
		char c = name[i];

		if (c >= '0' && c <= '9')
			seq = seq << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			seq = seq << 4 | (uint64_t)(c - 'a' + 10);
		else
			return false;
	}
	*ret_seq = seq;
	return true;
}

static int file_cmp(const void *a, const void *b)
{
	const SegmentFile *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The segment files of a directory, oldest first. */
static int list_segments(int dirfd, SegmentFile **ret, size_t *ret_n, size_t *ret_allocated)
{
	_cleanup_free_ SegmentFile *files = NULL;
	size_t n = 0, allocated = 0;
	struct dirent *de;
	DIR *d;
	int fd;

	fd = dup(dirfd);
	if (fd < 0)
		return negative_errno();
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return negative_errno();
	}
	rewinddir(d);
	while ((de = readdir(d))) {
		struct stat st;
		uint64_t seq;

		if (!segment_name(de->d_name, &seq))
			continue;
		if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (GREEDY_REALLOC(files, allocated, n + 1) < 0) {
			closedir(d);
			return -ENOMEM;
		}
		files[n++] = (SegmentFile){ .seq = seq,
					    .max_end_ns = (int64_t)st.st_mtim.tv_sec *
								  (int64_t)NSEC_PER_SEC +
							  st.st_mtim.tv_nsec,
					    .size = (uint64_t)st.st_size };
	}
	closedir(d);
	if (n > 1)
		qsort(files, n, sizeof(SegmentFile), file_cmp);
	*ret = TAKE_PTR(files);
	*ret_n = n;
	if (ret_allocated)
		*ret_allocated = allocated;
	return 0;
}

static int open_segments_dir(const char *dir, bool create, char **ret_path)
{
	_cleanup_free_ char *path = NULL;
	int fd;

	if (asprintf(&path, "%s/segments", dir) < 0)
		return -ENOMEM;
	if (create) {
		if (mkdir(dir, 0750) < 0 && errno != EEXIST)
			return negative_errno();
		if (mkdir(path, 0750) < 0 && errno != EEXIST)
			return negative_errno();
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	if (ret_path)
		*ret_path = TAKE_PTR(path);
	return fd;
}

/* ---- lock ---- */

int persist_lock(const char *dir, int *ret_fd)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -1;

	if (asprintf(&path, "%s/" PERSIST_LOCK_FILE, dir) < 0)
		return -ENOMEM;
	if (mkdir(dir, 0750) < 0 && errno != EEXIST)
		return negative_errno();
	/* O_NOFOLLOW: a link planted in the directory must not make us create files elsewhere. */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0640);
	if (fd < 0)
		return negative_errno();
	/* flock() locks belong to the open file: released when the daemon exits, even by kill -9,
	 * so a stale lock file never keeps a restart out. */
	if (flock(fd, LOCK_EX | LOCK_NB) < 0)
		return errno == EWOULDBLOCK ? -EBUSY : negative_errno();
	*ret_fd = TAKE_FD(fd);
	return 0;
}

/* ---- writer ---- */

static void release_maps(PersistWriter *w)
{
	for (size_t i = 0; i < w->n_strs; i++)
		if (w->strs[i])
			store_string_unref(w->store, (StrId)i);
	for (size_t i = 0; i < w->n_frames; i++)
		if (w->frames[i])
			store_frame_unref(w->store, (FrameId)i);
	for (size_t i = 0; i < w->n_stacks; i++)
		if (w->stacks[i])
			store_stack_unref(w->store, (StackId)i);
	for (size_t i = 0; i < w->n_procs; i++)
		if (w->procs[i])
			store_proc_unref(w->store, (ProcId)i);
	/* The maps are NULL until the first window, and memset(NULL, 0, 0) is undefined. */
	if (w->n_strs)
		memset(w->strs, 0, w->n_strs * sizeof(uint32_t));
	if (w->n_frames)
		memset(w->frames, 0, w->n_frames * sizeof(uint32_t));
	if (w->n_stacks)
		memset(w->stacks, 0, w->n_stacks * sizeof(uint32_t));
	if (w->n_procs) {
		memset(w->procs, 0, w->n_procs * sizeof(uint32_t));
		memset(w->proc_versions, 0, w->n_procs * sizeof(uint32_t));
	}
	w->next_id = 1;
}

/* Ends the current segment: later windows go to a new one. */
static void segment_close(PersistWriter *w)
{
	if (w->fd >= 0) {
		close(w->fd);
		w->fd = -1;
	}
	release_maps(w);
}

PersistWriter *persist_writer_free(PersistWriter *w)
{
	if (!w)
		return NULL;
	segment_close(w);
	if (w->dirfd >= 0)
		close(w->dirfd);
	free(w->strs);
	free(w->frames);
	free(w->stacks);
	free(w->procs);
	free(w->proc_versions);
	free(w->files);
	free(w->dir);
	segment_buf_done(&w->buf);
	free(w);
	return NULL;
}

int persist_writer_new(Store *store, const char *dir, uint64_t segment_span_ns, PersistWriter **ret)
{
	_cleanup_(persist_writer_freep) PersistWriter *w = calloc(1, sizeof(*w));
	int r;

	if (!w)
		return -ENOMEM;
	w->store = store;
	w->fd = -1;
	w->next_id = 1;
	w->span_ns = segment_span_ns;
	w->dirfd = open_segments_dir(dir, true, &w->dir);
	if (w->dirfd < 0)
		return w->dirfd;
	r = list_segments(w->dirfd, &w->files, &w->n_files, &w->allocated_files);
	if (r < 0)
		return r;
	w->next_seq = w->n_files ? w->files[w->n_files - 1].seq + 1 : 1;
	*ret = TAKE_PTR(w);
	return 0;
}

/* Grows a store-id-indexed map so index limit-1 is valid. */
static int map_fit(uint32_t **map, size_t *n, size_t limit, uint32_t **second)
{
	uint32_t *m;

	if (limit <= *n)
		return 0;
	m = realloc(*map, limit * sizeof(uint32_t));
	if (!m)
		return -ENOMEM;
	memset(m + *n, 0, (limit - *n) * sizeof(uint32_t));
	*map = m;
	if (second) {
		m = realloc(*second, limit * sizeof(uint32_t));
		if (!m)
			return -ENOMEM;
		memset(m + *n, 0, (limit - *n) * sizeof(uint32_t));
		*second = m;
	}
	*n = limit;
	return 0;
}

static uint32_t emit_string(PersistWriter *w, StrId id)
{
	uint32_t fid;

	if (id == 0)
		return 0;
	if (w->strs[id])
		return w->strs[id];
	fid = w->next_id++;
	segment_put_string(&w->buf, fid, store_string(w->store, id));
	w->strs[id] = fid;
	store_string_ref(w->store, id);
	return fid;
}

static uint32_t emit_frame(PersistWriter *w, FrameId id)
{
	StoreFrame f;
	uint32_t fid;

	if (w->frames[id])
		return w->frames[id];
	f = *store_frame(w->store, id);
	f.function = emit_string(w, f.function);
	f.module = emit_string(w, f.module);
	f.file = emit_string(w, f.file);
	f.symbol = emit_string(w, f.symbol);
	f.decl_file = emit_string(w, f.decl_file);
	fid = w->next_id++;
	segment_put_frame(&w->buf, fid, &f);
	w->frames[id] = fid;
	store_frame_ref(w->store, id);
	return fid;
}

static uint32_t emit_stack(PersistWriter *w, StackId id)
{
	uint32_t local[STORE_STACK_MAX], fid;
	const FrameId *frames;
	size_t n;

	if (w->stacks[id])
		return w->stacks[id];
	frames = store_stack(w->store, id, &n);
	for (size_t i = 0; i < n; i++)
		local[i] = emit_frame(w, frames[i]);
	fid = w->next_id++;
	segment_put_stack(&w->buf, fid, local, n);
	w->stacks[id] = fid;
	store_stack_ref(w->store, id);
	return fid;
}

/* Writes a process record when the segment has none or an older one. */
static uint32_t emit_proc(PersistWriter *w, ProcId id)
{
	uint32_t version = store_proc_version(w->store, id);
	StrId *strs[STORE_PROC_N_STRINGS];
	SegmentProc sp;

	if (w->procs[id] && w->proc_versions[id] == version)
		return w->procs[id];
	sp = (SegmentProc){ .id = w->procs[id] ?: w->next_id++, .p = *store_proc(w->store, id) };
	store_proc_strings(&sp.p, strs);
	for (size_t i = 0; i < STORE_PROC_N_STRINGS; i++)
		*strs[i] = emit_string(w, *strs[i]);
	segment_put_proc(&w->buf, &sp);
	if (!w->procs[id])
		store_proc_ref(w->store, id);
	w->procs[id] = sp.id;
	w->proc_versions[id] = version;
	return sp.id;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t k = write(fd, p, n);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static int segment_open(PersistWriter *w, int64_t start_ns)
{
	char name[64];
	int r;

	r = GREEDY_REALLOC(w->files, w->allocated_files, w->n_files + 1);
	if (r < 0)
		return r;
	snprintf(name, sizeof(name), "%016" PRIx64 SEGMENT_SUFFIX, w->next_seq);
	w->fd = openat(w->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (w->fd < 0)
		return negative_errno();
	w->files[w->n_files++] = (SegmentFile){ .seq = w->next_seq++, .max_end_ns = start_ns };
	w->first_start_ns = start_ns;
	w->stats.segments_created++;
	segment_put_header(&w->buf, now_real_ns());
	return 0;
}

int persist_write_window(PersistWriter *w, const Window *win)
{
	Store *s = w->store;
	_cleanup_free_ WindowEntry *entries = NULL;
	_cleanup_free_ MemPoint *mem = NULL;
	bool new_segment = w->fd < 0;
	size_t procs = store_proc_id_limit(s);
	int r;

	if (win->open)
		return -EINVAL;
	w->buf.len = 0;
	w->buf.error = 0;
	if (new_segment) {
		r = segment_open(w, win->start_ns);
		if (r < 0)
			goto fail;
	}
	r = map_fit(&w->frames, &w->n_frames, store_frame_id_limit(s), NULL);
	if (r >= 0)
		r = map_fit(&w->stacks, &w->n_stacks, store_stack_id_limit(s), NULL);
	if (r >= 0)
		r = map_fit(&w->procs, &w->n_procs, procs, &w->proc_versions);
	if (r >= 0)
		r = map_fit(&w->strs, &w->n_strs, store_string_id_limit(s), NULL);
	if (r < 0)
		goto fail;
	entries = malloc(MAX(win->n_entries, (size_t)1) * sizeof(WindowEntry));
	if (!entries) {
		r = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < win->n_entries; i++) {
		const WindowEntry *e = &win->entries[i];

		entries[i] = *e;
		entries[i].proc = emit_proc(w, e->proc);
		entries[i].stack = emit_stack(w, e->stack);
		entries[i].thread = emit_string(w, e->thread);
	}
	/* Processes that changed (exits, accounting) or are new, sampled in this window or not. */
	for (ProcId id = 1; id < procs; id++)
		if (store_proc(s, id))
			(void)emit_proc(w, id);
	if (win->n_mem > 0) {
		mem = malloc(win->n_mem * sizeof(MemPoint));
		if (!mem) {
			r = -ENOMEM;
			goto fail;
		}
		for (size_t i = 0; i < win->n_mem; i++) {
			mem[i] = win->mem[i];
			mem[i].proc = emit_proc(w, win->mem[i].proc);
		}
	}
	segment_put_window(&w->buf, win, entries, mem);
	r = w->buf.error;
	if (r < 0)
		goto fail;
	r = write_all(w->fd, w->buf.data, w->buf.len);
	if (r >= 0 && fdatasync(w->fd) < 0)
		r = negative_errno();
	/* A new file's directory entry must be durable too. */
	if (r >= 0 && new_segment && fsync(w->dirfd) < 0)
		r = negative_errno();
	if (r < 0)
		goto fail;

	w->stats.windows_written++;
	w->stats.bytes_written += w->buf.len;
	w->stats.last_error = 0;
	w->files[w->n_files - 1].max_end_ns = win->end_ns;
	w->files[w->n_files - 1].size += w->buf.len;
	/* Bounded segments: the next window starts a new one once this one spans enough. */
	if ((uint64_t)(win->end_ns - w->first_start_ns) >= w->span_ns)
		segment_close(w);
	return 0;
fail:
	/* Whatever reached the file may end torn; the reader skips a torn tail. Start afresh. */
	w->stats.write_errors++;
	w->stats.last_error = r;
	/* A segment this call started holds no window: leave no file for every later load to
	 * report as damaged (one per window while the disk is full). */
	if (new_segment && w->fd >= 0) {
		char name[64];

		snprintf(name, sizeof(name), "%016" PRIx64 SEGMENT_SUFFIX,
			 w->files[w->n_files - 1].seq);
		(void)unlinkat(w->dirfd, name, 0);
		w->n_files--;
	}
	segment_close(w);
	return r;
}

void persist_rotate(PersistWriter *w)
{
	segment_close(w);
}

bool persist_segment_holds(const PersistWriter *w, int64_t end_ns)
{
	return w->fd >= 0 && w->first_start_ns < end_ns;
}

void persist_expire(PersistWriter *w, int64_t not_before_ns)
{
	size_t keep = 0, current = w->fd >= 0 ? w->n_files - 1 : SIZE_MAX;

	for (size_t i = 0; i < w->n_files; i++) {
		char name[64];

		if (i != current && w->files[i].max_end_ns < not_before_ns) {
			snprintf(name, sizeof(name), "%016" PRIx64 SEGMENT_SUFFIX, w->files[i].seq);
			if (unlinkat(w->dirfd, name, 0) == 0 || errno == ENOENT) {
				w->stats.segments_deleted++;
				continue;
			}
		}
		w->files[keep++] = w->files[i];
	}
	w->n_files = keep;
}

int64_t persist_expire_bytes(PersistWriter *w, uint64_t max_bytes)
{
	size_t current = w->fd >= 0 ? w->n_files - 1 : SIZE_MAX, first = 0;
	int64_t gone = INT64_MIN;
	uint64_t total = 0;

	for (size_t i = 0; i < w->n_files; i++)
		total += w->files[i].size;
	/* Oldest first; the current segment stays whatever its size. */
	while (total > max_bytes && first < w->n_files && first != current) {
		char name[64];

		snprintf(name, sizeof(name), "%016" PRIx64 SEGMENT_SUFFIX, w->files[first].seq);
		if (unlinkat(w->dirfd, name, 0) < 0 && errno != ENOENT)
			break;
		w->stats.segments_deleted++;
		total -= w->files[first].size;
		gone = MAX(gone, w->files[first].max_end_ns);
		first++;
	}
	/* Nothing to move when nothing went (files is NULL while there are none). */
	if (first > 0)
		memmove(w->files, w->files + first, (w->n_files - first) * sizeof(SegmentFile));
	w->n_files -= first;
	return gone;
}

void persist_stats(const PersistWriter *w, PersistStats *ret)
{
	*ret = w->stats;
	ret->segments = w->n_files;
	ret->disk_bytes = 0;
	for (size_t i = 0; i < w->n_files; i++)
		ret->disk_bytes += w->files[i].size;
}

/* ---- loader ---- */

/*
 * Segment-local id -> store id, for one segment; holds a reference on each store id. The
 * writer numbers definitions 1, 2, 3... in the order it writes them (one counter for every
 * kind), so a direct array serves; a local id beyond twice the records read so far cannot
 * come from it, and is refused before it could make the array large.
 */
typedef struct IdMap {
	uint32_t *ids; /* by local id; 0: undefined */
	size_t allocated;
} IdMap;

typedef struct Loader {
	Store *store;
	IdMap strs, frames, stacks, procs;
	size_t records; /* definitions read from this segment */
	int64_t not_before_ns, not_after_ns;
	const PersistLoadCallbacks *cb;
	PersistLoadStats *stats;
	WindowEntry *entries;
	size_t allocated_entries;
	MemPoint *mem;
	size_t allocated_mem;
} Loader;

#define FID_SLACK 1024

/* The store id of fid; 0 when the segment has not defined it. */
static uint32_t map_get(const IdMap *m, uint32_t fid)
{
	return fid < m->allocated ? m->ids[fid] : 0;
}

/* Adds fid -> id, taking over a reference on id. -EEXIST if fid is already defined, -EBADMSG
 * if no writer could have given it. */
static int map_put(Loader *l, IdMap *m, uint32_t fid, uint32_t id)
{
	if (fid == 0 || fid > 2 * l->records + FID_SLACK)
		return -EBADMSG;
	if (fid >= m->allocated) {
		size_t n = MAX((size_t)fid + 1, MAX(m->allocated * 2, (size_t)FID_SLACK));
		uint32_t *ids = realloc(m->ids, n * sizeof(uint32_t));

		if (!ids)
			return -ENOMEM;
		memset(ids + m->allocated, 0, (n - m->allocated) * sizeof(uint32_t));
		m->ids = ids;
		m->allocated = n;
	}
	if (m->ids[fid])
		return -EEXIST;
	m->ids[fid] = id;
	l->records++;
	return 0;
}

static void map_done(IdMap *m, void (*unref)(Store *s, uint32_t id), Store *s)
{
	for (size_t i = 0; i < m->allocated; i++)
		if (m->ids[i])
			unref(s, m->ids[i]);
	free(m->ids);
	*m = (IdMap){ 0 };
}

/* A reference to an optional string: 0 stays 0, an undefined one is an error. */
static int opt_string(Loader *l, uint32_t fid, StrId *ret)
{
	if (fid == 0) {
		*ret = 0;
		return 0;
	}
	*ret = map_get(&l->strs, fid);
	return *ret ? 0 : -EBADMSG;
}

static int on_string(void *userdata, uint32_t fid, const char *str, size_t len)
{
	Loader *l = userdata;
	_cleanup_free_ char *s = strndup(str, len);
	StrId id;
	int r;

	if (!s)
		return -ENOMEM;
	r = store_intern_string(l->store, s, &id);
	if (r < 0)
		return r;
	r = map_put(l, &l->strs, fid, id);
	if (r < 0)
		store_string_unref(l->store, id);
	return r == -EEXIST ? -EBADMSG : r;
}

static int on_frame(void *userdata, uint32_t fid, const StoreFrame *f)
{
	Loader *l = userdata;
	StoreFrame g = *f;
	FrameId id;
	int r;

	if (opt_string(l, f->function, &g.function) < 0 ||
	    opt_string(l, f->module, &g.module) < 0 || opt_string(l, f->file, &g.file) < 0 ||
	    opt_string(l, f->symbol, &g.symbol) < 0 ||
	    opt_string(l, f->decl_file, &g.decl_file) < 0)
		return -EBADMSG;
	r = store_intern_frame(l->store, &g, &id);
	if (r < 0)
		return r;
	r = map_put(l, &l->frames, fid, id);
	if (r < 0)
		store_frame_unref(l->store, id);
	return r == -EEXIST ? -EBADMSG : r;
}

static int on_stack(void *userdata, uint32_t fid, const uint32_t *frames, size_t n)
{
	Loader *l = userdata;
	FrameId ids[STORE_STACK_MAX];
	StackId id;
	int r;

	for (size_t i = 0; i < n; i++) {
		ids[i] = map_get(&l->frames, frames[i]);
		if (!ids[i])
			return -EBADMSG;
	}
	r = store_intern_stack(l->store, ids, n, &id);
	if (r < 0)
		return r;
	r = map_put(l, &l->stacks, fid, id);
	if (r < 0)
		store_stack_unref(l->store, id);
	return r == -EEXIST ? -EBADMSG : r;
}

static int on_proc(void *userdata, const SegmentProc *sp)
{
	Loader *l = userdata;
	StoreProc p = sp->p;
	ProcId id = map_get(&l->procs, sp->id);
	StrId *strs[STORE_PROC_N_STRINGS], *cur_strs[STORE_PROC_N_STRINGS];
	StoreProc *cur;
	int r;

	store_proc_strings(&p, strs);
	for (size_t i = 0; i < STORE_PROC_N_STRINGS; i++)
		if (opt_string(l, *strs[i], strs[i]) < 0)
			return -EBADMSG;
	/* A record made from /proc knew the start only to the clock tick (10 ms); a later one,
	 * in a later segment, the exact one: the same process. */
	if (!id && p.start_boot_ns % START_TICK_NS != 0 &&
	    store_proc_find(l->store, p.pid, p.boot_id,
			    p.start_boot_ns / START_TICK_NS * START_TICK_NS, &id) == 0) {
		if (store_proc_set_start(l->store, id, p.start_boot_ns, p.start_ns) < 0 ||
		    map_put(l, &l->procs, sp->id, id) < 0) {
			store_proc_unref(l->store, id);
			return -EBADMSG;
		}
	}
	/* A later record of the same process (here, or in a later segment) updates it. */
	if (!id && store_proc_find(l->store, p.pid, p.boot_id, p.start_boot_ns, &id) == 0) {
		r = map_put(l, &l->procs, sp->id, id);
		if (r < 0) {
			store_proc_unref(l->store, id);
			return r;
		}
	}
	if (id) {
		cur = store_proc_mut(l->store, id);
		if (cur->pid != p.pid || cur->boot_id != p.boot_id)
			return -EBADMSG; /* one segment-local id, two processes */
		if (l->cb && l->cb->keep_record && l->cb->keep_record(l->cb->userdata, id))
			return 0;
		/* The writer's record after store_proc_set_start() corrected the start (a record
		 * made from /proc knows it only to the clock tick): the same process. */
		if (cur->start_boot_ns != p.start_boot_ns) {
			if (store_proc_set_start(l->store, id, p.start_boot_ns, p.start_ns) < 0)
				return -EBADMSG;
			cur = store_proc_mut(l->store, id);
		}
		store_proc_strings(cur, cur_strs);
		for (size_t i = 0; i < STORE_PROC_N_STRINGS; i++) {
			store_string_ref(l->store, *strs[i]);
			store_string_unref(l->store, *cur_strs[i]);
		}
		*cur = p;
	} else {
		r = store_proc_add(l->store, &p, &id);
		if (r < 0)
			return r == -EEXIST ? -EBADMSG : r;
		r = map_put(l, &l->procs, sp->id, id);
		if (r < 0) {
			store_proc_unref(l->store, id);
			return r == -EEXIST ? -EBADMSG : r;
		}
	}
	if (l->cb && l->cb->proc)
		l->cb->proc(l->cb->userdata, id, store_proc(l->store, id));
	return 0;
}

static int on_window(void *userdata, const SegmentWindow *sw)
{
	Loader *l = userdata;
	Window w = { .start_ns = sw->start_ns,
		     .end_ns = sw->end_ns,
		     .period_ns = sw->period_ns,
		     .samples = sw->samples,
		     .records = sw->records,
		     .idle = sw->idle,
		     .lost = sw->lost,
		     .n_entries = sw->n_entries };
	int r;

	if (GREEDY_REALLOC(l->entries, l->allocated_entries, MAX(sw->n_entries, (size_t)1)) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < sw->n_entries; i++) {
		WindowEntry *e = &l->entries[i];

		segment_window_entry(sw, i, e);
		e->proc = map_get(&l->procs, e->proc);
		e->stack = map_get(&l->stacks, e->stack);
		if (!e->proc || !e->stack || opt_string(l, e->thread, &e->thread) < 0)
			return -EBADMSG;
	}
	if (sw->n_mem > 0 && GREEDY_REALLOC(l->mem, l->allocated_mem, sw->n_mem) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < sw->n_mem; i++) {
		segment_window_mem(sw, i, &l->mem[i]);
		l->mem[i].proc = map_get(&l->procs, l->mem[i].proc);
		if (!l->mem[i].proc)
			return -EBADMSG;
	}
	w.mem = l->mem;
	w.n_mem = sw->n_mem;
	if (w.end_ns < l->not_before_ns || w.start_ns >= l->not_after_ns) {
		l->stats->windows_skipped++;
		return 0;
	}
	w.entries = l->entries;
	r = store_window_import(l->store, &w);
	if (r == -EINVAL) {
		/* Out of order (overlaps a window already loaded): keep the first. */
		l->stats->windows_skipped++;
		return 0;
	}
	if (r < 0)
		return r;
	l->stats->windows++;
	return 0;
}

static void unref_string(Store *s, uint32_t id)
{
	store_string_unref(s, id);
}

static void unref_frame(Store *s, uint32_t id)
{
	store_frame_unref(s, id);
}

static void unref_stack(Store *s, uint32_t id)
{
	store_stack_unref(s, id);
}

static void unref_proc(Store *s, uint32_t id)
{
	store_proc_unref(s, id);
}

static int load_buffer(Store *store, const uint8_t *buf, size_t len, int64_t not_before_ns,
		       int64_t not_after_ns, const PersistLoadCallbacks *cb,
		       PersistLoadStats *stats, SegmentParseResult *ret)
{
	static const SegmentVisitor visitor = {
		.string = on_string,
		.frame = on_frame,
		.stack = on_stack,
		.proc = on_proc,
		.window = on_window,
	};
	Loader l = { .store = store,
		     .not_before_ns = not_before_ns,
		     .not_after_ns = not_after_ns,
		     .cb = cb,
		     .stats = stats };
	int r;

	r = segment_parse(buf, len, &visitor, &l, ret);
	/* The segment's definitions were held only for its own references. */
	map_done(&l.strs, unref_string, store);
	map_done(&l.frames, unref_frame, store);
	map_done(&l.stacks, unref_stack, store);
	map_done(&l.procs, unref_proc, store);
	free(l.entries);
	free(l.mem);
	return r;
}

int persist_load_buffer(Store *store, const uint8_t *buf, size_t len, int64_t not_before_ns,
			const PersistLoadCallbacks *cb, PersistLoadStats *stats,
			SegmentParseResult *ret)
{
	return load_buffer(store, buf, len, not_before_ns, INT64_MAX, cb, stats, ret);
}

int persist_load(Store *store, const char *dir, int64_t not_before_ns,
		 const PersistLoadCallbacks *cb, PersistLoadStats *ret)
{
	return persist_load_range(store, dir, not_before_ns, INT64_MAX, cb, ret);
}

int persist_load_range(Store *store, const char *dir, int64_t not_before_ns, int64_t not_after_ns,
		       const PersistLoadCallbacks *cb, PersistLoadStats *ret)
{
	_cleanup_free_ SegmentFile *files = NULL;
	_cleanup_close_ int dirfd = -1;
	PersistLoadStats stats = { 0 };
	size_t n;
	int r;

	dirfd = open_segments_dir(dir, false, NULL);
	if (dirfd < 0)
		return dirfd;
	r = list_segments(dirfd, &files, &n, NULL);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *buf = NULL;
		_cleanup_close_ int fd = -1;
		SegmentParseResult res = { 0 };
		char name[64], path[PATH_MAX];
		size_t len = 0;

		snprintf(name, sizeof(name), "%016" PRIx64 SEGMENT_SUFFIX, files[i].seq);
		snprintf(path, sizeof(path), "%s/segments/%s", dir, name);
		/* Whole segments older than the retention are not worth reading. */
		if (files[i].max_end_ns < not_before_ns)
			continue;
		stats.segments++;
		/* Reading a file only to find it too large would cost that much memory first. */
		r = files[i].size > SEGMENT_MAX_FILE ? -EFBIG : 0;
		if (r >= 0) {
			fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
			r = fd < 0 ? negative_errno()
				   : procfs_read_fd(fd, SEGMENT_MAX_FILE, &buf, &len);
		}
		if (r >= 0)
			r = load_buffer(store, (const uint8_t *)buf, len, not_before_ns,
					not_after_ns, cb, &stats, &res);
		if (r == -ENOMEM)
			return r;
		if (r < 0) {
			stats.bad_segments++;
			if (cb && cb->problem)
				cb->problem(cb->userdata, path, r, 0, len);
			if (r == -EPROTONOSUPPORT && cb && cb->version)
				cb->version(cb->userdata, path, res.version);
			continue;
		}
		stats.bytes += len;
		if (res.tail_error) {
			stats.corrupt_segments++;
			if (cb && cb->problem)
				cb->problem(cb->userdata, path, res.tail_error, res.good_bytes,
					    len);
		}
		if (cb && cb->segment_done)
			cb->segment_done(cb->userdata);
	}
	if (ret)
		*ret = stats;
	return 0;
}
