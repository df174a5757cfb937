/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/macro.h"
#include "base/procfs.h"
#include "symbolize/mounts.h"

/* The FUSE control file system's magic (linux/magic.h has no name for it). */
#define FUSECTL_SUPER_MAGIC 0x65735543
/* A namespace's table is read again for an unknown device at most this often. */
#define REREAD_NS NSEC_PER_SEC

/* A device of a mount table: major << 32 | minor, and whether it is FUSE. */
typedef struct Dev {
	uint64_t dev;
	bool fuse;
} Dev;

typedef struct Table {
	uint64_t ns;	  /* inode of the mount namespace */
	uint64_t read_ns; /* when the table was last read (0: never) */
	uint64_t used;	  /* for the least recently used */
	Dev *devs;	  /* sorted by dev, unique */
	size_t n;
} Table;

struct Mounts {
	Table tables[MOUNTS_MAX_NAMESPACES];
	size_t n;
	uint64_t clock; /* use counter */
	MountsStats stats;
	int root; /* O_PATH descriptor of our root directory, -1 if it could not be opened */
};

int mounts_new(Mounts **ret)
{
	Mounts *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	*ret = m;
	return 0;
}

Mounts *mounts_free(Mounts *m)
{
	if (!m)
		return NULL;
	for (size_t i = 0; i < m->n; i++)
		free(m->tables[i].devs);
	if (m->root >= 0)
		close(m->root);
	free(m);
	return NULL;
}

/* The text of a field (up to the next space) at *p, within end; *p moves past it. */
static bool next_field(const char **p, const char *end, const char **ret, size_t *ret_len)
{
	const char *f = *p, *sp;

	if (f >= end)
		return false;
	sp = memchr(f, ' ', (size_t)(end - f));
	*ret = f;
	*ret_len = sp ? (size_t)(sp - f) : (size_t)(end - f);
	*p = sp ? sp + 1 : end;
	return true;
}

static bool parse_devno(const char *f, size_t len, uint32_t *major, uint32_t *minor)
{
	char buf[32], *colon, *e1, *e2;
	unsigned long a, b;

	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, f, len);
	buf[len] = 0;
	colon = strchr(buf, ':');
	if (!colon || colon == buf || !colon[1])
		return false;
	*colon = 0;
	errno = 0;
	a = strtoul(buf, &e1, 10);
	b = strtoul(colon + 1, &e2, 10);
	if (errno || *e1 || *e2 || a > UINT32_MAX || b > UINT32_MAX)
		return false;
	*major = (uint32_t)a;
	*minor = (uint32_t)b;
	return true;
}

void mounts_parse(const char *text, size_t len,
		  void (*add)(void *userdata, uint32_t major, uint32_t minor, bool fuse),
		  void *userdata)
{
	const char *p = text, *end = text + len;

	/* One line per step, each step past a newline or at the end: bounded by len. */
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *lend = nl ? nl : end, *f, *devno = NULL;
		size_t flen, devno_len = 0;
		uint32_t major, minor;
		bool dash = false;

		/* "ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER" */
		for (int field = 0; next_field(&p, lend, &f, &flen); field++) {
			if (field == 2) {
				devno = f;
				devno_len = flen;
			} else if (field >= 6 && flen == 1 && f[0] == '-') {
				dash = true;
				break;
			}
		}
		if (dash && devno && next_field(&p, lend, &f, &flen) &&
		    parse_devno(devno, devno_len, &major, &minor))
			add(userdata, major, minor,
			    (flen == 4 && memcmp(f, "fuse", 4) == 0) ||
				    (flen == 7 && memcmp(f, "fuseblk", 7) == 0) ||
				    (flen > 5 && memcmp(f, "fuse.", 5) == 0));
		p = nl ? nl + 1 : end;
	}
}

typedef struct Collect {
	Dev *devs;
	size_t n, allocated;
	int error;
} Collect;

static void collect(void *userdata, uint32_t major, uint32_t minor, bool fuse)
{
	Collect *c = userdata;

	if (c->error < 0)
		return;
	if (GREEDY_REALLOC(c->devs, c->allocated, c->n + 1) < 0) {
		c->error = -ENOMEM;
		return;
	}
	c->devs[c->n++] = (Dev){ .dev = (uint64_t)major << 32 | minor, .fuse = fuse };
}

static int dev_cmp(const void *a, const void *b)
{
	const Dev *x = a, *y = b;

	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	/* A device mounted twice, once as FUSE (it cannot be, but the text is hostile): FUSE
	 * last, so that it is the one kept. */
	return (int)x->fuse - (int)y->fuse;
}

/* Reads pid's mount table into t. */
static void table_read(Mounts *m, Table *t, pid_t pid, uint64_t now_ns)
{
	_cleanup_free_ char *text = NULL;
	char path[64];
	Collect c = { 0 };
	size_t len, keep = 0;

	t->read_ns = now_ns;
	m->stats.tables_read++;
	snprintf(path, sizeof(path), "/proc/%d/mountinfo", (int)pid);
	/* Unreadable (too long, or gone): what was read before stands. */
	if (procfs_read_file(path, MOUNTS_MAX_TABLE, &text, &len) < 0)
		return;
	mounts_parse(text, len, collect, &c);
	if (c.error < 0) {
		free(c.devs);
		return;
	}
	if (c.n > 0)
		qsort(c.devs, c.n, sizeof(Dev), dev_cmp);
	for (size_t i = 0; i < c.n; i++) {
		if (i + 1 < c.n && c.devs[i + 1].dev == c.devs[i].dev)
			continue; /* the last of equal devices: FUSE if any is */
		c.devs[keep++] = c.devs[i];
	}
	free(t->devs);
	t->devs = c.devs;
	t->n = keep;
}

/*
 * A device no mount table of the process lists (a btrfs subvolume inside a mounted one, or a
 * file mapped through a descriptor from another namespace): FUSE if the FUSE control file
 * system, which lists every FUSE connection of the host by device number, has it. Without
 * that file system mounted nothing tells: an anonymous device is then refused.
 */
static bool unlisted_is_fuse(uint32_t major, uint32_t minor)
{
	struct statfs sf;
	struct stat st;
	char path[64];

	if (major != 0)
		return false; /* fuseblk is listed: its device is a real one, mounted by root */
	if (statfs("/sys/fs/fuse/connections", &sf) < 0 || sf.f_type != FUSECTL_SUPER_MAGIC)
		return true;
	/* The kernel's dev_t, as the control file system names connections. */
	snprintf(path, sizeof(path), "/sys/fs/fuse/connections/%u", minor);
	return stat(path, &st) == 0;
}

static const Dev *table_find(const Table *t, uint64_t dev)
{
	size_t lo = 0, hi = t->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->devs[mid].dev == dev)
			return &t->devs[mid];
		if (t->devs[mid].dev < dev)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* The table of ns: kept, or a slot for it (the least recently used one when all are taken). */
static Table *table_of(Mounts *m, uint64_t ns)
{
	Table *t = NULL;

	for (size_t i = 0; i < m->n; i++)
		if (m->tables[i].ns == ns)
			return &m->tables[i];
	if (m->n < MOUNTS_MAX_NAMESPACES) {
		t = &m->tables[m->n++];
	} else {
		t = &m->tables[0];
		for (size_t i = 1; i < m->n; i++)
			if (m->tables[i].used < t->used)
				t = &m->tables[i];
		free(t->devs);
	}
	*t = (Table){ .ns = ns };
	return t;
}

/* dev in the mount table of pid's namespace (read again, at most once a second, when it does
 * not list dev), or NULL; -ESRCH in *ret_error when pid is gone. */
static const Dev *find_in_namespace(Mounts *m, pid_t pid, uint64_t dev, uint64_t now_ns,
				    int *ret_error)
{
	const Dev *d;
	struct stat st;
	char path[64];
	Table *t;

	*ret_error = 0;
	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)pid);
	if (stat(path, &st) < 0) {
		*ret_error = -ESRCH;
		return NULL;
	}
	t = table_of(m, (uint64_t)st.st_ino);
	t->used = ++m->clock;
	d = table_find(t, dev);
	if (!d && (t->read_ns == 0 || now_ns - t->read_ns >= REREAD_NS)) {
		table_read(m, t, pid, now_ns);
		d = table_find(t, dev);
	}
	return d;
}

int mounts_check(Mounts *m, pid_t pid, uint32_t major, uint32_t minor, uint64_t now_ns)
{
	uint64_t dev = (uint64_t)major << 32 | minor;
	const Dev *d;
	int error;

	d = find_in_namespace(m, pid, dev, now_ns, &error);
	if (error < 0) {
		if (major == 0)
			m->stats.refused++;
		return major == 0 ? -EREMOTE : 0;
	}
	/* A container's files often lie on a file system only the host mounts (its overlay's
	 * layers): profqd's own namespace may list the device. */
	if (!d)
		d = find_in_namespace(m, getpid(), dev, now_ns, &error);
	if (d ? d->fuse : unlisted_is_fuse(major, minor)) {
		m->stats.refused++;
		return -EREMOTE;
	}
	return 0;
}

/* Whether what fd holds (opened O_PATH) may be looked into: mounts_check() of its device, read
 * from the inode's cached attributes (AT_STATX_DONT_SYNC: FUSE is not asked). */
static int check_fd(Mounts *m, pid_t pid, int fd, uint64_t now_ns)
{
	struct statx stx;

	if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_TYPE, &stx) < 0)
		return negative_errno();
	return mounts_check(m, pid, stx.stx_dev_major, stx.stx_dev_minor, now_ns);
}

static int openat2_(int dirfd, const char *path, uint64_t flags, uint64_t resolve)
{
	struct open_how how = { .flags = flags, .resolve = resolve };
	long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));

	return fd < 0 ? negative_errno() : (int)fd;
}

int mounts_open_in_root(Mounts *m, pid_t pid, const char *dir, const char *name, int flags,
			uint64_t now_ns)
{
	return mounts_open_in_root_dirs(m, pid, dir, name, flags, now_ns, NULL, NULL);
}

int mounts_open_in_root_dirs(Mounts *m, pid_t pid, const char *dir, const char *name, int flags,
			     uint64_t now_ns, void (*each_dir)(void *userdata, int dirfd),
			     void *userdata)
{
	const uint64_t no_links = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_BENEATH;
	_cleanup_close_ int at = -1;
	char path[32], comp[NAME_MAX + 1];
	const char *p = dir;
	int r;

	snprintf(path, sizeof(path), "/proc/%d/root", (int)pid);
	at = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (at < 0)
		return negative_errno();
	r = check_fd(m, pid, at, now_ns);
	if (r < 0)
		return r;
	if (each_dir)
		each_dir(userdata, at);
	/* One directory at a time: each is looked up in its parent's file system, which was
	 * checked, and is checked itself before anything is looked up in it (a mount's root is
	 * reached without asking its file system). */
	while (*p) {
		size_t len = strcspn(p, "/");
		int next;

		if (len > NAME_MAX)
			return -ENAMETOOLONG;
		if (len > 0) {
			memcpy(comp, p, len);
			comp[len] = 0;
			next = openat2_(at, comp, O_PATH | O_DIRECTORY | O_CLOEXEC, no_links);
			if (next < 0)
				return next;
			close(at);
			at = next;
			r = check_fd(m, pid, at, now_ns);
			if (r < 0)
				return r;
			if (each_dir)
				each_dir(userdata, at);
		}
		p += len + (p[len] == '/');
	}
	/* The file itself in the same file system: not a mount point (a FUSE file bound there). */
	return openat2_(at, name, (uint64_t)flags | O_CLOEXEC | O_NOFOLLOW,
			no_links | RESOLVE_NO_XDEV);
}

int mounts_stat_in_root_mount(Mounts *m, const char *path, struct stat *ret)
{
	const uint64_t resolve = RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
	_cleanup_close_ int fd = -1;

	if (path[0] != '/')
		return -EINVAL;
	if (m->root < 0)
		return -EBADF;
	/* From the root's own descriptor: the mount every component must be on. */
	fd = openat2_(m->root, path[1] ? path + 1 : ".", O_PATH | O_CLOEXEC, resolve);
	if (fd < 0)
		return fd;
	return fstat(fd, ret) < 0 ? negative_errno() : 0;
}

void mounts_stats(const Mounts *m, MountsStats *ret)
{
	*ret = m->stats;
	ret->namespaces = m->n;
}

size_t mounts_memory(const Mounts *m)
{
	size_t bytes = sizeof(*m);

	for (size_t i = 0; i < m->n; i++)
		bytes += m->tables[i].n * sizeof(Dev);
	return bytes;
}
