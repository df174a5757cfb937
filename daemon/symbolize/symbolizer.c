/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <xxhash.h>

#include "base/hashindex.h"
#include "base/macro.h"
#include "base/procfs.h"
#include "base/timeutil.h"
#include "symbolize/demangle.h"
#include "symbolize/dwarfinfo.h"
#include "symbolize/dwarfworker.h"
#include "symbolize/elfsym.h"
#include "symbolize/kallsyms.h"
#include "symbolize/mounts.h"
#include "symbolize/symbolizer.h"
#include "unwind/cfi.h"

/* Binaries larger than this are not read (a hostile or absurd file must not stall us). */
#define BINARY_MAX_SIZE (4ULL << 30)
/* Reload kallsyms for an unknown kernel address at most this often (modules load late). */
#define KALLSYMS_RELOAD_NS (60 * NSEC_PER_SEC)
/* Unreferenced binaries kept for the next process that maps them. */
#define BINARY_KEEP_UNUSED 256
/* libdwfl is closed when no new CU was indexed for this long (dwarfinfo.h). */
#define DWARF_IDLE_NS (10 * NSEC_PER_SEC)

typedef struct AddrEntry {
	uint64_t addr;
	uint32_t first; /* index into the binary's frame pool */
	uint32_t n;
} AddrEntry;

/* Address caches: per binary, plus pseudo-binaries for the kernel and unknown addresses. */
typedef struct AddrCache {
	AddrEntry *entries;
	size_t n_entries, allocated_entries;
	FrameId *pool;
	size_t n_pool, allocated_pool;
	HashIndex *index;
} AddrCache;

/* What reading a file takes: its mode and owners, and whether an ACL says more. */
typedef struct FilePerm {
	uint32_t mode, uid, gid;
	bool acl;
} FilePerm;

/* A debug file's permissions and those of the directories on its path (searched to reach it). */
#define PERM_DIRS_MAX 32
typedef struct FileAccess {
	FilePerm file;
	FilePerm dirs[PERM_DIRS_MAX];
	size_t n_dirs;
	bool complete; /* every directory up to / was read */
} FileAccess;

/* The credentials a process reads files with (real ids: whose profile it is). */
#define CREDS_GROUPS_MAX 64
typedef struct Creds {
	bool known; /* else: a stranger, who reads what anyone may */
	uint32_t uid, gid;
	uint32_t groups[CREDS_GROUPS_MAX];
	size_t n_groups;
} Creds;

/*
 * One file can give several Binaries: the same file changed in place (copied over: same
 * device and inode) is another one; and what a process's owner may not read is not used for
 * them, so a binary can come without its separate debug file, or without anything.
 */
typedef enum BinaryVariant {
	VARIANT_FULL,	 /* all that profqd can read */
	VARIANT_NODEBUG, /* the binary only, no separate debug file */
	VARIANT_DENIED,	 /* nothing: module+offset frames */
	VARIANT_REMOTE,	 /* nothing, the file not even opened (FUSE): module+offset frames */
} BinaryVariant;

typedef struct BinaryKey {
	uint64_t dev, ino;	    /* of the mapped file */
	uint64_t size;		    /* and what it is now, from fstat: */
	int64_t mtime_ns, ctime_ns; /* ctime changes on every write, and cannot be set back */
	uint32_t variant;
	uint32_t pad;
} BinaryKey;

struct Binary {
	BinaryKey key;
	uint64_t hash;
	StrId module;	  /* basename, held */
	ElfSym *syms;	  /* NULL when loading failed */
	Cfi *cfi;	  /* with unwinding on; NULL if the binary has none */
	DwarfInfo *dwarf; /* inlined calls and source lines; NULL without DWARF */
	int error;
	uint32_t refs;
	uint64_t last_used;
	AddrCache cache;
	/* Kept to read the unwind and DWARF tables again after binary_unload(). */
	int fd;
	char *path;
	bool unloaded;
	bool stale; /* the file changed in place since: read nothing more of it */
	/* Its cache holds frames named without DWARF while a CU was being indexed: dropped once
	 * the indexing is over (by symbolizer_work() in process, symbolizer_tick() with the
	 * worker), and every lookup in it until then counts as provisional. */
	bool provisional;
	bool dwarf_done;   /* binary_dwarf_opened() has seen its DWARF open once */
	FilePerm perm;	   /* of the binary */
	FileAccess *debug; /* of its separate debug file, NULL if none is used */
	BinaryKey read_as; /* the file's identity when it was read (fstat of fd) */
};

struct Symbolizer {
	Store *store;

	Binary **binaries;
	size_t n_binaries, allocated_binaries;
	HashIndex *binary_index;
	Binary *vdso;

	Kallsyms *kallsyms;
	char *kallsyms_path;
	int kallsyms_error;
	uint64_t kallsyms_loaded_ns;
	AddrCache kernel_cache;
	bool kernel_cache_stale; /* kallsyms was reloaded: drop the cache at the next trim */
	StrId unknown_module;	 /* "[unknown]" */
	StrId jit_module;	 /* "[jit]" */
	StrId anon_module;	 /* "[anon]" */
	AddrCache unknown_cache;

	FrameId *markers; /* marker frames held */
	size_t n_markers, allocated_markers;

	size_t cache_budget;
	bool want_cfi;
	Mounts *mounts; /* FUSE-backed files are never opened */
	bool want_dwarf;
	char *debug_path;
	uint64_t clock;
	Creds creds; /* of creds_pid, read at creds_ns (monotonic) */
	pid_t creds_pid;
	uint64_t creds_ns;
	SymbolizerStats stats;
	DwarfCounters dwarf_counters;
	DwarfWorker *dwarf_worker; /* NULL: libdw runs here */
	uint64_t provisional;	   /* lookups answered provisionally (symbolizer_provisional()) */
};

/* ---- address caches ---- */

static int addr_cache_init(AddrCache *c)
{
	*c = (AddrCache){ 0 };
	return hash_index_new(&c->index);
}

static void addr_cache_clear(Symbolizer *s, AddrCache *c)
{
	for (size_t i = 0; i < c->n_pool; i++)
		store_frame_unref(s->store, c->pool[i]);
	c->n_pool = c->n_entries = 0;
	if (c->index)
		hash_index_clear(c->index);
}

static void addr_cache_done(Symbolizer *s, AddrCache *c)
{
	addr_cache_clear(s, c);
	free(c->entries);
	free(c->pool);
	hash_index_free(c->index);
	*c = (AddrCache){ 0 };
}

static size_t addr_cache_memory(const AddrCache *c)
{
	return c->allocated_entries * sizeof(AddrEntry) + c->allocated_pool * sizeof(FrameId) +
	       (c->index ? hash_index_memory(c->index) : 0);
}

static uint64_t addr_hash(uint64_t addr)
{
	return XXH3_64bits(&addr, sizeof(addr));
}

static bool addr_eq(uint32_t idx, const void *key, void *userdata)
{
	return ((const AddrCache *)userdata)->entries[idx].addr == *(const uint64_t *)key;
}

/* Copies the cached frames of addr to out: count, or -ENOENT. */
static int addr_cache_get(AddrCache *c, uint64_t addr, FrameId *out, size_t max)
{
	uint32_t idx;
	size_t n;

	if (hash_index_find(c->index, addr_hash(addr), addr_eq, &addr, c, &idx) < 0)
		return -ENOENT;
	n = MIN(c->entries[idx].n, max);
	memcpy(out, c->pool + c->entries[idx].first, n * sizeof(FrameId));
	return (int)n;
}

/* Stores frames (whose references it takes over) for addr. */
static int addr_cache_put(AddrCache *c, uint64_t addr, const FrameId *frames, size_t n)
{
	int r;

	if (c->n_entries >= UINT32_MAX - 1 || c->n_pool + n >= UINT32_MAX)
		return -ENOSPC;
	r = GREEDY_REALLOC(c->entries, c->allocated_entries, c->n_entries + 1);
	if (r < 0)
		return r;
	r = GREEDY_REALLOC(c->pool, c->allocated_pool, c->n_pool + n);
	if (r < 0)
		return r;
	r = hash_index_insert(c->index, addr_hash(addr), (uint32_t)c->n_entries);
	if (r < 0)
		return r;
	c->entries[c->n_entries++] =
		(AddrEntry){ .addr = addr, .first = (uint32_t)c->n_pool, .n = (uint32_t)n };
	memcpy(c->pool + c->n_pool, frames, n * sizeof(FrameId));
	c->n_pool += n;
	return 0;
}

/* Interns frame f, caches it under addr (the cache holds the reference), writes it to out[0]. */
static int intern_and_cache(Symbolizer *s, AddrCache *c, uint64_t addr, const StoreFrame *f,
			    FrameId *out)
{
	FrameId id;
	int r;

	r = store_intern_frame(s->store, f, &id);
	if (r < 0)
		return r;
	r = addr_cache_put(c, addr, &id, 1);
	if (r < 0) {
		store_frame_unref(s->store, id);
		return r;
	}
	out[0] = id;
	return 1;
}

/* ---- lifecycle ---- */

static void binary_free(Symbolizer *s, Binary *b)
{
	if (!b)
		return;
	addr_cache_done(s, &b->cache);
	elfsym_free(b->syms);
	cfi_free(b->cfi);
	dwarf_info_free(b->dwarf);
	store_string_unref(s->store, b->module);
	if (b->fd >= 0)
		close(b->fd);
	free(b->path);
	free(b->debug);
	free(b);
}

int symbolizer_new(Store *store, Symbolizer **ret)
{
	_cleanup_(symbolizer_freep) Symbolizer *s = NULL;
	int r;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->store = store;
	s->cache_budget = 16u << 20;
	s->want_dwarf = true;
	s->kallsyms_error = 1; /* not loaded yet */
	r = hash_index_new(&s->binary_index);
	if (r < 0)
		return r;
	r = mounts_new(&s->mounts);
	if (r < 0)
		return r;
	r = addr_cache_init(&s->kernel_cache);
	if (r < 0)
		return r;
	r = addr_cache_init(&s->unknown_cache);
	if (r < 0)
		return r;
	r = store_intern_string(store, "[unknown]", &s->unknown_module);
	if (r >= 0)
		r = store_intern_string(store, "[jit]", &s->jit_module);
	if (r < 0)
		return r;
	r = store_intern_string(store, "[anon]", &s->anon_module);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(s);
	return 0;
}

Symbolizer *symbolizer_free(Symbolizer *s)
{
	if (!s)
		return NULL;
	for (size_t i = 0; i < s->n_binaries; i++)
		binary_free(s, s->binaries[i]);
	free(s->binaries);
	hash_index_free(s->binary_index);
	mounts_free(s->mounts);
	binary_free(s, s->vdso);
	/* After the binaries, whose DWARF it served. */
	dwarf_worker_free(s->dwarf_worker);
	addr_cache_done(s, &s->kernel_cache);
	addr_cache_done(s, &s->unknown_cache);
	for (size_t i = 0; i < s->n_markers; i++)
		store_frame_unref(s->store, s->markers[i]);
	free(s->markers);
	store_string_unref(s->store, s->unknown_module);
	store_string_unref(s->store, s->jit_module);
	store_string_unref(s->store, s->anon_module);
	kallsyms_free(s->kallsyms);
	free(s->kallsyms_path);
	free(s->debug_path);
	free(s);
	return NULL;
}

int symbolizer_set_kallsyms_path(Symbolizer *s, const char *path)
{
	char *p = strdup(path);

	if (!p)
		return -ENOMEM;
	free(s->kallsyms_path);
	s->kallsyms_path = p;
	return 0;
}

void symbolizer_set_cache_budget(Symbolizer *s, size_t bytes)
{
	s->cache_budget = bytes;
}

void symbolizer_set_headroom(Symbolizer *s, size_t bytes)
{
	s->dwarf_counters.headroom = bytes;
	s->dwarf_counters.limited = true;
}

void symbolizer_set_cfi(Symbolizer *s, bool enabled)
{
	s->want_cfi = enabled;
}

void symbolizer_set_dwarf_slice(Symbolizer *s, uint64_t cpu_ns)
{
	s->dwarf_counters.slice_ns = cpu_ns;
}

int symbolizer_set_dwarf_worker(Symbolizer *s, const DwarfWorkerOptions *o)
{
	int r;

	if (s->dwarf_worker)
		return -EBUSY;
	r = dwarf_worker_new(o, &s->dwarf_counters, &s->dwarf_worker);
	if (r < 0)
		return r;
	s->dwarf_counters.worker = s->dwarf_worker;
	/* Not fatal: the first request tries again. */
	(void)dwarf_worker_start(s->dwarf_worker);
	return 0;
}

void symbolizer_set_dwarf(Symbolizer *s, bool enabled)
{
	s->want_dwarf = enabled;
}

int symbolizer_set_debug_dirs(Symbolizer *s, const char *dirs)
{
	char *p = NULL;

	/* libdwfl's search path: the binary's own directory and .debug/, the system's debug root,
	 * then ours; build-id lookups happen under each absolute root. */
	if (dirs && asprintf(&p, ":.debug:/usr/lib/debug:%s", dirs) < 0)
		return -ENOMEM;
	free(s->debug_path);
	s->debug_path = p;
	return 0;
}

/* ---- binaries ---- */

static const char *basename_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash && slash[1] ? slash + 1 : path;
}

static int binary_new(Symbolizer *s, const char *name, Binary **ret)
{
	_cleanup_free_ Binary *b = calloc(1, sizeof(*b));
	int r;

	if (!b)
		return -ENOMEM;
	r = addr_cache_init(&b->cache);
	if (r < 0)
		return r;
	r = store_intern_string(s->store, name, &b->module);
	if (r < 0) {
		hash_index_free(b->cache.index);
		return r;
	}
	b->refs = 1;
	b->fd = -1;
	*ret = TAKE_PTR(b);
	return 0;
}

static void key_set_identity(BinaryKey *k, const struct stat *st)
{
	k->size = (uint64_t)st->st_size;
	k->mtime_ns = (int64_t)st->st_mtim.tv_sec * (int64_t)NSEC_PER_SEC + st->st_mtim.tv_nsec;
	k->ctime_ns = (int64_t)st->st_ctim.tv_sec * (int64_t)NSEC_PER_SEC + st->st_ctim.tv_nsec;
}

/* ---- who may read what ---- */

/* The permissions of a file (st), its ACL read through fd, else through path (followed). */
static FilePerm file_perm(const struct stat *st, int fd, const char *path)
{
	FilePerm p = { .mode = st->st_mode & 07777, .uid = st->st_uid, .gid = st->st_gid };
	ssize_t r;

	/* An ACL may give or take away: when there is one (or it cannot be told whether there is),
	 * only the owner's bits are trusted. */
	if (fd >= 0)
		r = fgetxattr(fd, "system.posix_acl_access", NULL, 0);
	else
		r = getxattr(path, "system.posix_acl_access", NULL, 0);
	p.acl = r >= 0 || (errno != ENODATA && errno != ENOTSUP);
	return p;
}

/* May c read (want 4) or search (want 1) what p describes? As the kernel's DAC check does
 * (owner, else group, else other), conservatively with an ACL. Root may. */
static bool perm_allows(const FilePerm *p, const Creds *c, unsigned want)
{
	if (c->known && c->uid == 0)
		return true;
	if (c->known && c->uid == p->uid)
		return ((p->mode >> 6) & want) == want;
	if (p->acl)
		return false;
	if (c->known) {
		bool member = c->gid == p->gid;

		for (size_t i = 0; i < c->n_groups && !member; i++)
			member = c->groups[i] == p->gid;
		if (member)
			return ((p->mode >> 3) & want) == want;
	}
	return (p->mode & want) == want;
}

/*
 * Opens path (absolute, without symbolic links) in process pid's root directory without
 * touching a FUSE file system on the way (mounts_open_in_root_dirs(): the process's mount
 * table says which, and a FUSE mount its owner made over a directory of the path, in their own
 * namespace or ours, would hold the main loop on the lookup); each_dir as there.
 */
static int open_in_root(Symbolizer *s, pid_t pid, const char *path,
			void (*each_dir)(void *userdata, int dirfd), void *userdata)
{
	const char *slash = strrchr(path, '/');
	_cleanup_free_ char *dir = NULL;

	if (path[0] != '/' || !slash[1])
		return -ENOENT;
	dir = strndup(path + 1, slash > path ? (size_t)(slash - path - 1) : 0);
	if (!dir)
		return -ENOMEM;
	return mounts_open_in_root_dirs(s->mounts, pid, dir, slash + 1,
					O_RDONLY | O_NOCTTY | O_NONBLOCK, now_mono_ns(), each_dir,
					userdata);
}

/* The directories above a debug file, as debug_open() walks down to it. */
typedef struct DirWalk {
	FileAccess *a;
	bool incomplete; /* one could not be read, or there were too many */
} DirWalk;

static void dir_walk_note(void *userdata, int dirfd)
{
	DirWalk *w = userdata;
	char path[64];
	struct stat st;

	if (w->a->n_dirs >= PERM_DIRS_MAX || fstat(dirfd, &st) < 0 || !S_ISDIR(st.st_mode)) {
		w->incomplete = true;
		return;
	}
	/* An O_PATH descriptor has no xattr calls: its ACL through the link to it. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", dirfd);
	w->a->dirs[w->a->n_dirs++] = file_perm(&st, -1, path);
}

/*
 * Opens the debug file at real (an absolute path without symbolic links, as the DWARF worker
 * resolved the one it read) as perf maps are opened (mounts_open_in_root()): never on a FUSE
 * file system, whose daemon the main loop would wait for (the worker read it: its daemon may
 * answer the worker and not us), each directory checked before anything is looked up in it, no
 * link followed. Notes in *a who may read the file and search each directory above it, from
 * the descriptors opened on the way (complete only if every one was read); its stat in
 * *ret_st.
 */
static int debug_open(Symbolizer *s, const char *real, FileAccess *a, struct stat *ret_st)
{
	DirWalk w = { .a = a };
	int fd = open_in_root(s, getpid(), real, dir_walk_note, &w);

	if (fd < 0)
		return fd;
	if (fstat(fd, ret_st) < 0) {
		int r = negative_errno();

		close(fd);
		return r;
	}
	a->file = file_perm(ret_st, fd, NULL);
	a->complete = !w.incomplete;
	return fd;
}

static bool access_allows(const FileAccess *a, const Creds *c)
{
	if (c->known && c->uid == 0)
		return true;
	if (!a->complete || !perm_allows(&a->file, c, 4))
		return false;
	for (size_t i = 0; i < a->n_dirs; i++)
		if (!perm_allows(&a->dirs[i], c, 1))
			return false;
	return true;
}

/* Parses the real ids and the groups out of /proc/PID/status. */
static int creds_parse(const char *buf, Creds *ret)
{
	const char *uid = strstr(buf, "\nUid:"), *gid = strstr(buf, "\nGid:"),
		   *groups = strstr(buf, "\nGroups:");
	Creds c = { .known = true };
	char *end;

	if (!uid || !gid)
		return -EBADMSG;
	errno = 0;
	c.uid = (uint32_t)strtoul(uid + 5, &end, 10);
	if (errno || end == uid + 5)
		return -EBADMSG;
	c.gid = (uint32_t)strtoul(gid + 5, &end, 10);
	if (errno || end == gid + 5)
		return -EBADMSG;
	if (groups) {
		const char *p = groups + 8;

		while (c.n_groups < CREDS_GROUPS_MAX) {
			unsigned long g;

			while (*p == ' ' || *p == '\t')
				p++;
			if (*p < '0' || *p > '9')
				break;
			g = strtoul(p, &end, 10);
			if (end == p)
				break;
			c.groups[c.n_groups++] = (uint32_t)g;
			p = end;
		}
	}
	*ret = c;
	return 0;
}

/* The credentials of pid's owner (a stranger's if /proc no longer shows them), read again at
 * most once a second for the mappings of one process read one after the other. */
static const Creds *creds_of(Symbolizer *s, pid_t pid)
{
	_cleanup_free_ char *buf = NULL;
	uint64_t now = now_mono_ns();
	char path[64];

	if (pid == s->creds_pid && now - s->creds_ns < NSEC_PER_SEC)
		return &s->creds;
	s->creds = (Creds){ 0 };
	s->creds_pid = pid;
	s->creds_ns = now;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (procfs_read_file(path, 16384, &buf, NULL) >= 0 && creds_parse(buf, &s->creds) < 0)
		s->creds = (Creds){ 0 };
	return &s->creds;
}

static void binary_dwarf_opened(Symbolizer *s, Binary *b);

/*
 * The unwind and DWARF tables of b from the file open at fd: at load (first), and again when
 * a lookup needs them after binary_unload().
 */
static void binary_load_tables(Symbolizer *s, Binary *b, int fd, const char *path, bool first)
{
	b->unloaded = false;
	/* Unwinding tables are optional: without them the unwinder falls back. */
	if (s->want_cfi && cfi_load_fd(fd, &b->cfi) >= 0 && first)
		s->stats.cfi_binaries++;
	/* DWARF (the binary's, or its debug file's by build id or debuglink): inlined calls and
	 * source lines; and a stripped binary's local functions from the debug file's .symtab. */
	if (s->want_dwarf && !b->dwarf &&
	    dwarf_info_open(fd, path, b->key.variant == VARIANT_NODEBUG ? "" : s->debug_path,
			    &s->dwarf_counters, &b->dwarf) >= 0)
		binary_dwarf_opened(s, b);
}

/*
 * Once b's DWARF is open (at once, or when the worker's answer came; lookups before find no
 * DWARF): what comes with it the first time it opens (whichever load of the tables that is),
 * before any lookup uses it: who may read its debug file, and the debug file's symbols for a
 * stripped binary.
 */
static void binary_dwarf_opened(Symbolizer *s, Binary *b)
{
	_cleanup_free_ FileAccess *access = NULL;
	_cleanup_close_ int dfd = -1;
	const char *dbg;
	struct stat st, dst;
	int r = dwarf_info_opened(b->dwarf);

	if (r == -EINPROGRESS)
		return;
	if (r < 0) {
		b->dwarf = dwarf_info_free(b->dwarf);
		return;
	}
	if (b->dwarf_done)
		return;
	b->dwarf_done = true;
	dbg = dwarf_info_debug_file(b->dwarf);
	if (dbg) {
		/* The separate debug file the DWARF came from, opened here again: who may read it
		 * is decided on what profqd sees, not on what the worker (or libdwfl) said. */
		access = calloc(1, sizeof(FileAccess));
		dfd = access ? debug_open(s, dbg, access, &st) : -ENOMEM;
		if (dfd < 0 || !S_ISREG(st.st_mode) || dwarf_info_debug_stat(b->dwarf, &dst) < 0 ||
		    st.st_dev != dst.st_dev || st.st_ino != dst.st_ino) {
			b->dwarf = dwarf_info_free(b->dwarf);
			return;
		}
	}
	s->stats.dwarf_binaries++;
	if (!dbg)
		return;
	/* Who may read the debug file: checked for each process that maps the binary; if that
	 * cannot be told (not complete), nobody but root. */
	b->debug = TAKE_PTR(access);
	if (!elfsym_has_symtab(b->syms) && (uint64_t)st.st_size <= BINARY_MAX_SIZE)
		(void)elfsym_add_symbols(b->syms, dfd);
}

/* Reads the symbols of the file open at fd into b, after checking what the file is; path names
 * it (and leads libdwfl to its .gnu_debuglink file). */
static void binary_load_fd(Symbolizer *s, Binary *b, int fd, const char *path)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		b->error = negative_errno();
	else if (!S_ISREG(st.st_mode))
		b->error = -EBADFD;
	else if ((uint64_t)st.st_size > BINARY_MAX_SIZE)
		b->error = -EFBIG;
	else
		b->error = elfsym_load_fd(fd, &b->syms);
	if (b->error >= 0) {
		b->perm = file_perm(&st, fd, NULL);
		key_set_identity(&b->read_as, &st);
	}
	if (b->error < 0) {
		s->stats.binary_errors++;
		return;
	}
	b->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	b->path = path ? strdup(path) : NULL;
	binary_load_tables(s, b, fd, path, true);
}

/* Opens m->path in our namespace if it is the file m maps (same device and inode), else
 * -ENOENT. */
static int open_verified(Symbolizer *s, const ProcMap *m)
{
	_cleanup_close_ int fd = open_in_root(s, getpid(), m->path, NULL, NULL);
	struct stat st;

	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0)
		return negative_errno();
	if (st.st_ino != m->inode || major(st.st_dev) != m->dev_major ||
	    minor(st.st_dev) != m->dev_minor)
		return -ENOENT;
	return TAKE_FD(fd);
}

static bool binary_eq(uint32_t idx, const void *key, void *userdata)
{
	const Binary *b = ((const Symbolizer *)userdata)->binaries[idx];

	return memcmp(&b->key, key, sizeof(BinaryKey)) == 0;
}

/* Has the file under b's descriptor changed since b read it (copied over in place)? Then
 * nothing more is read from it: names and tables would be the new file's. */
static bool binary_check_stale(Binary *b)
{
	BinaryKey now = { 0 };
	struct stat st;

	if (b->stale || b->fd < 0)
		return b->stale;
	if (fstat(b->fd, &st) < 0)
		return false;
	key_set_identity(&now, &st);
	if (now.size != b->read_as.size || now.mtime_ns != b->read_as.mtime_ns ||
	    now.ctime_ns != b->read_as.ctime_ns)
		b->stale = true;
	return b->stale;
}

static int binary_add(Symbolizer *s, Binary *b)
{
	int r = GREEDY_REALLOC(s->binaries, s->allocated_binaries, s->n_binaries + 1);

	if (r < 0)
		return r;
	r = hash_index_insert(s->binary_index, b->hash, (uint32_t)s->n_binaries);
	if (r < 0)
		return r;
	s->binaries[s->n_binaries++] = b;
	s->stats.binaries++;
	return 0;
}

static int vdso_binary(Symbolizer *s, Binary **ret)
{
	_cleanup_free_ ProcMap *maps = NULL;
	size_t n = 0;
	uint64_t base = getauxval(AT_SYSINFO_EHDR);
	int r;

	if (s->vdso) {
		*ret = binary_ref(s->vdso);
		return 0;
	}
	r = binary_new(s, "[vdso]", &s->vdso);
	if (r < 0)
		return r;
	/* Every 64-bit process maps the same vDSO image: read our own. */
	r = procfs_read_maps(getpid(), &maps, &n);
	s->vdso->error = -ENOENT;
	if (r >= 0 && base != 0)
		for (size_t i = 0; i < n; i++)
			if (maps[i].path && streq(maps[i].path, "[vdso]") &&
			    maps[i].start == base) {
				const void *image = (const void *)base;
				size_t size = maps[i].end - maps[i].start;

				s->vdso->error = elfsym_load_memory(image, size, &s->vdso->syms);
				if (s->vdso->error >= 0 && s->want_cfi)
					(void)cfi_load_memory(image, size, &s->vdso->cfi);
			}
	if (r >= 0)
		procfs_maps_free(TAKE_PTR(maps), n);
	*ret = binary_ref(s->vdso);
	return 0;
}

/* Opens the file m maps in process pid: the exact mapped file, also when deleted or in another
 * mount namespace; else by its path there; else (the process is gone, a short-lived one known
 * from the sideband) the path in our namespace, if it is still the very file that was mapped. */
static int open_mapped(Symbolizer *s, pid_t pid, const ProcMap *m)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, (int)pid, m->start,
		 m->end);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		fd = open_in_root(s, pid, m->path, NULL, NULL);
	if (fd < 0)
		fd = open_verified(s, m);
	return fd;
}

/* The cached Binary of key k, or a new one read from the file m maps in pid (fd, if opened
 * already; else opened here). */
static int binary_get(Symbolizer *s, const BinaryKey *k, pid_t pid, const ProcMap *m, int *fd,
		      Binary **ret)
{
	uint64_t hash = XXH3_64bits(k, sizeof(*k));
	uint32_t idx;
	Binary *b;
	int r;

	if (hash_index_find(s->binary_index, hash, binary_eq, k, s, &idx) == 0) {
		b = s->binaries[idx];
		b->last_used = ++s->clock;
		*ret = b;
		return 0;
	}
	r = binary_new(s, basename_of(m->path), &b);
	if (r < 0)
		return r;
	b->key = *k;
	b->hash = hash;
	b->last_used = ++s->clock;
	if (k->variant == VARIANT_DENIED) {
		b->error = -EACCES;
	} else if (k->variant == VARIANT_REMOTE) {
		b->error = -EREMOTE;
	} else {
		if (*fd < 0)
			*fd = open_mapped(s, pid, m);
		if (*fd < 0) {
			b->error = *fd;
			s->stats.binary_errors++;
		} else {
			binary_load_fd(s, b, *fd, m->path);
		}
	}
	r = binary_add(s, b);
	if (r < 0) {
		binary_free(s, b);
		return r;
	}
	*ret = b;
	return 0;
}

int symbolizer_binary(Symbolizer *s, pid_t pid, const ProcMap *m, Binary **ret)
{
	BinaryKey k = { .dev = (uint64_t)m->dev_major << 32 | m->dev_minor, .ino = m->inode };
	_cleanup_close_ int fd = -1;
	const Creds *c;
	struct stat st;
	Binary *b;
	int r;

	if (!m->path)
		return -ENOENT;
	if (streq(m->path, "[vdso]"))
		return vdso_binary(s, ret);
	if (m->path[0] != '/' || m->inode == 0)
		return -ENOENT;
	/* A file on a user's FUSE file system is not touched, not even its path: the daemon
	 * behind it may never answer. Its frames are module+offset. */
	if (mounts_check(s->mounts, pid, m->dev_major, m->dev_minor, now_mono_ns()) < 0) {
		k.variant = VARIANT_REMOTE;
		r = binary_get(s, &k, pid, m, &fd, &b);
		if (r < 0)
			return r;
		*ret = binary_ref(b);
		return 0;
	}

	/*
	 * What the file is now: a file copied over in place keeps its inode, not its ctime. A
	 * process mapping the old one keeps its Binary (the caller's reference). The identity is
	 * the inode's: by the path in our namespace when it leads to that inode without leaving
	 * the root's mount (a FUSE file system mounted on the way is never asked; a few us), else
	 * through the process (15 us).
	 */
	if (mounts_stat_in_root_mount(s->mounts, m->path, &st) == 0 && st.st_ino == m->inode &&
	    major(st.st_dev) == m->dev_major && minor(st.st_dev) == m->dev_minor) {
		key_set_identity(&k, &st);
	} else {
		fd = open_mapped(s, pid, m);
		if (fd >= 0 && fstat(fd, &st) == 0)
			key_set_identity(&k, &st);
	}
	r = binary_get(s, &k, pid, m, &fd, &b);
	if (r < 0)
		return r;

	/*
	 * Only what the process's owner could read themselves is used for them: the binary (it
	 * may be execute-only), and its separate debug file with the directories leading to it.
	 * Checked against the modes and owners profqd read (no credentials are switched: profqd
	 * may hold CAP_DAC_READ_SEARCH without CAP_SETUID, and this costs no system call per
	 * check).
	 */
	c = creds_of(s, pid);
	if (b->error >= 0) {
		BinaryVariant v = VARIANT_FULL;

		if (!perm_allows(&b->perm, c, 4))
			v = VARIANT_DENIED;
		else if (b->debug && !access_allows(b->debug, c))
			v = VARIANT_NODEBUG;
		if (v != VARIANT_FULL) {
			k.variant = v;
			r = binary_get(s, &k, pid, m, &fd, &b);
			if (r < 0)
				return r;
		}
	}
	/* The table holds one reference (dropped by trim when unused); the caller another. */
	*ret = binary_ref(b);
	return 0;
}

int symbolizer_binary_from_path(Symbolizer *s, const char *path, Binary **ret)
{
	_cleanup_close_ int fd = -1;
	Binary *b;
	int r;

	r = binary_new(s, basename_of(path), &b);
	if (r < 0)
		return r;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		b->error = negative_errno();
	else
		binary_load_fd(s, b, fd, path);
	/* Not in the table: only the caller holds it. */
	*ret = b;
	return 0;
}

Binary *binary_ref(Binary *b)
{
	if (b)
		b->refs++;
	return b;
}

void binary_unref(Symbolizer *s, Binary *b)
{
	if (!b)
		return;
	/* Cached binaries keep the table's reference; trim frees unused ones. */
	if (--b->refs == 0)
		binary_free(s, b);
}

const char *binary_name(const Symbolizer *s, const Binary *b)
{
	return store_string(s->store, b->module);
}

int binary_error(const Binary *b)
{
	return b->error;
}

/* ---- lookups ---- */

/* Reads b's tables again if memory pressure let them go (binary_unload()). */
static void binary_reload(Symbolizer *s, Binary *b)
{
	if (!b->unloaded || binary_check_stale(b))
		return;
	s->stats.binaries_reloaded++;
	binary_load_tables(s, b, b->fd, b->path, false);
}

Cfi *symbolizer_cfi(Symbolizer *s, Binary *b, const ProcMap *m, uint64_t addr, uint64_t *ret_vaddr)
{
	if (b)
		binary_reload(s, b);
	if (!b || !b->cfi || !b->syms ||
	    elfsym_offset_to_vaddr(b->syms, addr - m->start + m->pgoff, ret_vaddr) < 0)
		return NULL;
	return b->cfi;
}

/* Interns a function name, demangled when it is mangled: the readable one in *ret, the raw
 * one in *ret_symbol when they differ (0 otherwise). */
static int intern_name(Symbolizer *s, const char *raw, StrId *ret, StrId *ret_symbol)
{
	_cleanup_free_ char *readable = demangle(raw);
	int r;

	*ret_symbol = 0;
	r = store_intern_string(s->store, readable ? readable : raw, ret);
	if (r < 0 || !readable)
		return r;
	r = store_intern_string(s->store, raw, ret_symbol);
	if (r < 0) {
		store_string_unref(s->store, *ret);
		*ret = 0;
	}
	return r;
}

/*
 * The frames of ELF address vaddr of b, innermost first: the inlined calls DWARF knows of, then
 * the function (named by the symbol table, the most exact name, else by DWARF); each with its
 * source file and line. Cached, with the references, under vaddr.
 */
static int resolve(Symbolizer *s, Binary *b, uint64_t vaddr, FrameId *out, size_t max)
{
	DwarfFrame dw[SYMBOLIZER_MAX_INLINE];
	FrameId ids[SYMBOLIZER_MAX_INLINE];
	const char *symname = NULL;
	uint64_t fn_vaddr = vaddr, start;
	size_t n, done = 0;
	int nd = 0, r = 0;

	binary_reload(s, b);
	if (b->dwarf)
		binary_dwarf_opened(s, b);
	if (b->dwarf && !binary_check_stale(b))
		nd = dwarf_info_lookup(b->dwarf, vaddr, dw, MIN(max, ARRAY_SIZE(dw)));
	if (nd == -EINPROGRESS) {
		/* Named from the symbol table until its CU is indexed (symbolizer_work()). */
		b->provisional = true;
		s->provisional++;
	}
	if (nd < 0)
		nd = 0;
	if (b->syms && !b->stale)
		(void)elfsym_lookup(b->syms, vaddr, &symname, NULL);
	if (!symname && nd == 0) {
		s->stats.unresolved++;
		/* Unnamed (a stripped binary): named by the start of the function its unwind
		 * information (the FDE) says vaddr falls in, so that samples anywhere in one
		 * function add up to one frame. */
		if (b->cfi && !b->stale && cfi_function_start(b->cfi, vaddr, &start) == 0)
			fn_vaddr = start;
	}
	n = nd > 0 ? (size_t)nd : 1;
	for (size_t k = 0; k < n; k++) {
		StoreFrame f = { .module = b->module, .address = fn_vaddr };
		bool outer = k == n - 1;
		const char *name = NULL;

		if (nd > 0) {
			/* Inlined frames have only DWARF's name; the linkage name is the full
			 * one. */
			name = outer && symname ? symname : (dw[k].linkage ?: dw[k].function);
			if (dw[k].file)
				r = store_intern_string(s->store, dw[k].file, &f.file);
			f.line = f.file ? dw[k].line : 0;
			if (r >= 0 && dw[k].decl_file)
				r = store_intern_string(s->store, dw[k].decl_file, &f.decl_file);
			f.decl_line = f.decl_file ? dw[k].decl_line : 0;
			if (dw[k].inlined && !outer)
				f.flags |= FRAME_INLINED;
		} else {
			name = symname;
		}
		if (r >= 0 && name)
			r = intern_name(s, name, &f.function, &f.symbol);
		if (r >= 0)
			r = store_intern_frame(s->store, &f, &ids[k]);
		store_string_unref(s->store, f.function);
		store_string_unref(s->store, f.symbol);
		store_string_unref(s->store, f.file);
		store_string_unref(s->store, f.decl_file);
		if (r < 0)
			break;
		done++;
	}
	if (r >= 0)
		r = addr_cache_put(&b->cache, vaddr, ids, n);
	if (r < 0) {
		for (size_t k = 0; k < done; k++)
			store_frame_unref(s->store, ids[k]);
		return r;
	}
	memcpy(out, ids, n * sizeof(FrameId));
	return (int)n;
}

int symbolizer_user_frames(Symbolizer *s, Binary *b, const ProcMap *m, uint64_t addr,
			   bool return_address, FrameId *out, size_t max)
{
	StoreFrame f = { 0 };
	uint64_t off, vaddr;
	int r;

	if (max == 0)
		return -ENOBUFS;
	s->stats.lookups++;
	if (!b) {
		/* Anonymous executable memory (JIT code without a perf map, trampolines). */
		uint64_t a = addr - (return_address ? 1 : 0);

		r = addr_cache_get(&s->unknown_cache, a, out, max);
		if (r >= 0) {
			s->stats.cache_hits++;
			return r;
		}
		s->stats.unresolved++;
		f = (StoreFrame){ .module = s->anon_module, .address = a };
		return intern_and_cache(s, &s->unknown_cache, a, &f, out);
	}

	off = addr - m->start + m->pgoff;
	if (!b->syms || elfsym_offset_to_vaddr(b->syms, off, &vaddr) < 0)
		vaddr = off;
	if (return_address && vaddr > 0)
		vaddr--;
	/* Its frames named without DWARF stay until symbolizer_tick() drops them: not here, where
	 * the caller may hold frames borrowed from this cache for the stack it is naming (an
	 * answer of the worker taken by a lookup in another binary of the same stack ends a
	 * binary's wait), and dropping them would free those frames under it. */
	r = addr_cache_get(&b->cache, vaddr, out, max);
	if (r >= 0) {
		s->stats.cache_hits++;
		/* It may be one of the frames named without DWARF. */
		if (b->provisional)
			s->provisional++;
		return r;
	}

	return resolve(s, b, vaddr, out, max);
}

int symbolizer_binary_find(Binary *b, const ProcMap *m, ElfSymbolQuery *q, size_t n)
{
	uint64_t vaddr;
	int r;

	if (!b || b->error < 0 || !b->syms || b->fd < 0)
		return b && b->error < 0 ? b->error : -ENOENT;
	if (binary_check_stale(b))
		return -ESTALE;
	/* The load bias: where the mapping is, less the ELF address of its file offset. */
	r = elfsym_offset_to_vaddr(b->syms, m->pgoff, &vaddr);
	if (r < 0)
		return r;
	r = elfsym_find_names(b->fd, q, n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		if (q[i].vaddr)
			q[i].vaddr += m->start - vaddr;
	return r;
}

int symbolizer_flag_frame(Symbolizer *s, FrameId frame, uint32_t flags, FrameId *ret)
{
	const StoreFrame *f = store_frame(s->store, frame);
	StoreFrame copy;

	if (!f)
		return -ENOENT;
	copy = *f;
	copy.flags |= flags;
	return store_intern_frame(s->store, &copy, ret);
}

int symbolizer_jit_frame(Symbolizer *s, const char *name, uint64_t addr, FrameId *ret)
{
	StoreFrame f = { .module = s->jit_module, .address = addr };
	/* JIT addresses mean different code in different processes and over time: the key is
	 * the address and the name. The top bit keeps it apart from the unknown frames' keys
	 * (user addresses). */
	uint64_t key = XXH3_64bits_withSeed(name, strlen(name), addr) | (1ULL << 63);
	int r;

	s->stats.lookups++;
	r = addr_cache_get(&s->unknown_cache, key, ret, 1);
	if (r >= 0) {
		s->stats.cache_hits++;
		return r;
	}
	r = store_intern_string(s->store, name, &f.function);
	if (r < 0)
		return r;
	r = intern_and_cache(s, &s->unknown_cache, key, &f, ret);
	store_string_unref(s->store, f.function);
	return r;
}

int symbolizer_unknown_frame(Symbolizer *s, uint64_t addr, FrameId *ret)
{
	StoreFrame f = { .module = s->unknown_module, .address = addr };
	int r;

	s->stats.lookups++;
	r = addr_cache_get(&s->unknown_cache, addr, ret, 1);
	if (r >= 0) {
		s->stats.cache_hits++;
		return r;
	}
	s->stats.unresolved++;
	return intern_and_cache(s, &s->unknown_cache, addr, &f, ret);
}

static void kallsyms_maybe_load(Symbolizer *s, bool retry)
{
	Kallsyms *k = NULL;
	uint64_t now = now_mono_ns();

	if (s->kallsyms_error == 0 && !retry)
		return;
	if (s->kallsyms_loaded_ns != 0 && now - s->kallsyms_loaded_ns < KALLSYMS_RELOAD_NS)
		return;
	s->kallsyms_loaded_ns = now;
	s->kallsyms_error = kallsyms_load(s->kallsyms_path ?: "/proc/kallsyms", &k);
	if (s->kallsyms_error < 0)
		return;
	kallsyms_free(s->kallsyms);
	s->kallsyms = k;
	s->stats.kernel_symbols = kallsyms_count(k);
	/*
	 * Cached unresolved kernel frames may resolve now, but the frames handed out since the
	 * last trim (earlier frames of the stack being symbolized) must stay valid: the cache goes
	 * at the next symbolizer_trim().
	 */
	if (s->kernel_cache.n_entries > 0)
		s->kernel_cache_stale = true;
}

Mounts *symbolizer_mounts(Symbolizer *s)
{
	return s->mounts;
}

bool symbolizer_kernel_sched(Symbolizer *s, uint64_t addr)
{
	kallsyms_maybe_load(s, false);
	return s->kallsyms && kallsyms_in_sched(s->kallsyms, addr);
}

int symbolizer_kernel_frames(Symbolizer *s, uint64_t addr, bool return_address, FrameId *out,
			     size_t max)
{
	uint64_t a = addr - (return_address ? 1 : 0);
	StoreFrame f = { .address = a, .flags = FRAME_KERNEL };
	const char *name = NULL, *module = NULL;
	StrId fn = 0, mod = 0;
	int r;

	if (max == 0)
		return -ENOBUFS;
	s->stats.lookups++;
	r = addr_cache_get(&s->kernel_cache, a, out, max);
	if (r >= 0) {
		s->stats.cache_hits++;
		return r;
	}
	kallsyms_maybe_load(s, false);
	if (s->kallsyms && kallsyms_lookup(s->kallsyms, a, &name, &module) < 0) {
		kallsyms_maybe_load(s, true);
		if (kallsyms_lookup(s->kallsyms, a, &name, &module) < 0)
			name = module = NULL;
	}
	if (name) {
		r = store_intern_string(s->store, name, &fn);
		if (r < 0)
			return r;
		r = store_intern_string(s->store, module, &mod);
		if (r < 0) {
			store_string_unref(s->store, fn);
			return r;
		}
		f.function = fn;
		f.module = mod;
	} else {
		s->stats.unresolved++;
		r = store_intern_string(s->store, "[kernel.kallsyms]", &mod);
		if (r < 0)
			return r;
		f.module = mod;
	}
	r = intern_and_cache(s, &s->kernel_cache, a, &f, out);
	store_string_unref(s->store, fn);
	store_string_unref(s->store, mod);
	return r;
}

int symbolizer_marker_frame(Symbolizer *s, const char *name, uint32_t flags, FrameId *ret)
{
	StoreFrame f = { .flags = flags };
	FrameId id;
	StrId fn;
	int r;

	r = store_intern_string(s->store, name, &fn);
	if (r < 0)
		return r;
	f.function = fn;
	f.module = s->unknown_module;
	r = store_intern_frame(s->store, &f, &id);
	store_string_unref(s->store, fn);
	if (r < 0)
		return r;
	for (size_t i = 0; i < s->n_markers; i++)
		if (s->markers[i] == id) {
			store_frame_unref(s->store, id); /* already held */
			*ret = id;
			return 0;
		}
	r = GREEDY_REALLOC(s->markers, s->allocated_markers, s->n_markers + 1);
	if (r < 0) {
		store_frame_unref(s->store, id);
		return r;
	}
	s->markers[s->n_markers++] = id;
	*ret = id;
	return 0;
}

/* ---- budget ---- */

static size_t binary_memory(const Binary *b)
{
	return sizeof(Binary) + (b->syms ? elfsym_memory(b->syms) : 0) +
	       (b->cfi ? cfi_memory(b->cfi) : 0) + (b->dwarf ? dwarf_info_memory(b->dwarf) : 0);
}

/* Closes libdwfl where it was not needed for idle_ns (0: everywhere). */
static void release_dwarf(Symbolizer *s, uint64_t idle_ns)
{
	for (size_t i = 0; i < s->n_binaries; i++)
		if (s->binaries[i]->dwarf && dwarf_info_release(s->binaries[i]->dwarf, idle_ns))
			s->stats.dwarf_releases++;
}

static size_t caches_memory(const Symbolizer *s)
{
	size_t m = addr_cache_memory(&s->kernel_cache) + addr_cache_memory(&s->unknown_cache);

	if (s->vdso)
		m += addr_cache_memory(&s->vdso->cache);
	for (size_t i = 0; i < s->n_binaries; i++)
		m += addr_cache_memory(&s->binaries[i]->cache);
	return m;
}

static int binary_lru_cmp(const void *a, const void *b)
{
	const Binary *x = *(Binary *const *)a, *y = *(Binary *const *)b;

	return x->last_used < y->last_used ? -1 : x->last_used > y->last_used;
}

size_t symbolizer_shrink(Symbolizer *s, size_t bytes)
{
	size_t before = symbolizer_memory(s), freed = 0, keep = 0;

	/* libdw's caches first, where opening them again would cost little (see
	 * DWARFINFO_OPEN_AMORTIZE): only new CUs need them. Then the address caches: what is hot
	 * refills at once. */
	release_dwarf(s, 1);
	addr_cache_clear(s, &s->kernel_cache);
	addr_cache_clear(s, &s->unknown_cache);
	if (s->vdso)
		addr_cache_clear(s, &s->vdso->cache);
	for (size_t i = 0; i < s->n_binaries; i++)
		addr_cache_clear(s, &s->binaries[i]->cache);
	s->stats.cache_flushes++;
	freed = before - MIN(before, symbolizer_memory(s));
	if (freed >= bytes)
		return freed;

	/* Then binaries no process maps now, least recently used first. */
	qsort(s->binaries, s->n_binaries, sizeof(Binary *), binary_lru_cmp);
	hash_index_clear(s->binary_index);
	for (size_t i = 0; i < s->n_binaries; i++) {
		Binary *b = s->binaries[i];

		if (b->refs == 1 && freed < bytes) {
			freed += binary_memory(b);
			binary_free(s, b);
			s->stats.binaries_dropped++;
			continue;
		}
		s->binaries[keep] = b;
		/* The index was cleared and is only growing back: cannot need more memory. */
		(void)hash_index_insert(s->binary_index, b->hash, (uint32_t)keep);
		keep++;
	}
	s->n_binaries = keep;
	if (freed >= bytes)
		return freed;

	/* Then libdw everywhere, however dear to open again. */
	release_dwarf(s, 0);
	freed = before - MIN(before, symbolizer_memory(s));

	/* Then the unwind tables of binaries in use, least recently mapped first (the
	 * order above): read again when a sample needs them. */
	for (size_t i = 0; i < s->n_binaries && freed < bytes; i++) {
		Binary *b = s->binaries[i];
		size_t before_b = binary_memory(b);

		/* Only a binary with a descriptor to read them again from (not the vDSO). */
		if (b->unloaded || b->fd < 0)
			continue;
		/* DWARF keeps its CU indexes, a fraction of what libdw held (gone in the step
		 * above), and with them when libdw may open again: dropped and read again, it
		 * would open now, and pressure would close it again, over and over. */
		b->cfi = cfi_free(b->cfi);
		b->unloaded = true;
		s->stats.binaries_unloaded++;
		freed += before_b - MIN(before_b, binary_memory(b));
	}
	return freed;
}

/* b's wait for DWARF is over: the frames its cache named without it go (their next lookups
 * have it). Invalidates frames borrowed from that cache. */
static void binary_provisional_over(Symbolizer *s, Binary *b)
{
	if (b->provisional)
		addr_cache_clear(s, &b->cache);
	b->provisional = false;
}

bool symbolizer_work(Symbolizer *s)
{
	bool more = false;

	for (size_t i = 0; i < s->n_binaries && !more; i++) {
		Binary *b = s->binaries[i];
		int r;

		if (!b->dwarf || !dwarf_info_has_work(b->dwarf))
			continue;
		/* One slice per call: the caller's loop runs in between. */
		r = dwarf_info_work(b->dwarf);
		if (r <= 0)
			binary_provisional_over(s, b);
		more = r == 1;
	}
	return more;
}

bool symbolizer_has_work(const Symbolizer *s)
{
	for (size_t i = 0; i < s->n_binaries; i++)
		if (s->binaries[i]->dwarf && dwarf_info_has_work(s->binaries[i]->dwarf))
			return true;
	return false;
}

uint64_t symbolizer_dwarf_answers(const Symbolizer *s)
{
	return s->dwarf_worker ? dwarf_worker_answered(s->dwarf_worker) : 0;
}

void symbolizer_tick(Symbolizer *s)
{
	if (!s->dwarf_worker)
		return;
	dwarf_worker_tick(s->dwarf_worker);
	/* Between samples: the frames named without DWARF of binaries whose wait is over. */
	for (size_t i = 0; i <= s->n_binaries; i++) {
		Binary *b = i < s->n_binaries ? s->binaries[i] : s->vdso;

		if (b && b->provisional && !(b->dwarf && dwarf_info_building(b->dwarf)))
			binary_provisional_over(s, b);
	}
}

uint64_t symbolizer_provisional(const Symbolizer *s)
{
	return s->provisional;
}

void symbolizer_trim(Symbolizer *s)
{
	size_t unused = 0, keep = 0;

	if (s->kernel_cache_stale) {
		addr_cache_clear(s, &s->kernel_cache);
		s->kernel_cache_stale = false;
	}
	release_dwarf(s, DWARF_IDLE_NS);
	if (caches_memory(s) > s->cache_budget) {
		/* Whole caches go: simple, and what is hot refills within one window. */
		addr_cache_clear(s, &s->kernel_cache);
		addr_cache_clear(s, &s->unknown_cache);
		if (s->vdso)
			addr_cache_clear(s, &s->vdso->cache);
		for (size_t i = 0; i < s->n_binaries; i++)
			addr_cache_clear(s, &s->binaries[i]->cache);
		s->stats.cache_flushes++;
	}

	/* Only the table's reference left: unused. Keep the most recently used ones. */
	for (size_t i = 0; i < s->n_binaries; i++)
		if (s->binaries[i]->refs == 1)
			unused++;
	if (unused <= BINARY_KEEP_UNUSED)
		return;
	qsort(s->binaries, s->n_binaries, sizeof(Binary *), binary_lru_cmp);
	hash_index_clear(s->binary_index);
	for (size_t i = 0; i < s->n_binaries; i++) {
		Binary *b = s->binaries[i];

		if (b->refs == 1 && unused > BINARY_KEEP_UNUSED) {
			unused--;
			binary_free(s, b);
			s->stats.binaries_dropped++;
			continue;
		}
		s->binaries[keep] = b;
		/* The index was cleared and is only growing back: cannot need more memory. */
		(void)hash_index_insert(s->binary_index, b->hash, (uint32_t)keep);
		keep++;
	}
	s->n_binaries = keep;
}

size_t symbolizer_memory(const Symbolizer *s)
{
	size_t m = sizeof(*s) + caches_memory(s) + hash_index_memory(s->binary_index) +
		   s->allocated_binaries * sizeof(Binary *);

	for (size_t i = 0; i < s->n_binaries; i++)
		m += binary_memory(s->binaries[i]);
	if (s->vdso)
		m += binary_memory(s->vdso);
	if (s->kallsyms)
		m += kallsyms_memory(s->kallsyms);
	return m + mounts_memory(s->mounts);
}

static size_t binary_memory_total(const SymbolizerBinaryMemory *m)
{
	return m->symbols + m->cfi + m->dwarf + m->cache;
}

size_t symbolizer_largest(const Symbolizer *s, SymbolizerBinaryMemory *out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n_binaries && max > 0; i++) {
		const Binary *b = s->binaries[i];
		SymbolizerBinaryMemory m = {
			.module = store_string(s->store, b->module),
			.symbols = b->syms ? elfsym_memory(b->syms) : 0,
			.cfi = b->cfi ? cfi_memory(b->cfi) : 0,
			.dwarf = b->dwarf ? dwarf_info_memory(b->dwarf) : 0,
			.cache = addr_cache_memory(&b->cache),
		};
		size_t at = n;

		/* Insertion into the sorted top max. */
		while (at > 0 && binary_memory_total(&out[at - 1]) < binary_memory_total(&m))
			at--;
		if (at >= max)
			continue;
		if (n < max)
			n++;
		memmove(&out[at + 1], &out[at], (n - 1 - at) * sizeof(*out));
		out[at] = m;
	}
	return n;
}

void symbolizer_stats(const Symbolizer *s, SymbolizerStats *ret)
{
	MountsStats ms;

	*ret = s->stats;
	ret->dwarf_opens = s->dwarf_counters.opens;
	ret->dwarf_open_ns = s->dwarf_counters.open_ns;
	ret->dwarf_deferred = s->dwarf_counters.deferred;
	ret->dwarf_refused = s->dwarf_counters.refused;
	ret->dwarf_faults = s->dwarf_counters.faults;
	ret->dwarf_pending = s->dwarf_counters.pending;
	ret->dwarf_slices = s->dwarf_counters.slices;
	if (s->dwarf_worker)
		dwarf_worker_stats(s->dwarf_worker, &ret->dwarf_worker);
	mounts_stats(s->mounts, &ms);
	ret->fuse_refused = ms.refused;
}
