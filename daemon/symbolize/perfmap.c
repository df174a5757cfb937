/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "base/macro.h"
#include "base/procfs.h"
#include "base/timeutil.h"
#include "symbolize/perfmap.h"

/* Names longer than this make a line malformed. */
#define NAME_MAX_LEN 4096

typedef struct Sym {
	uint64_t start, size;
	uint32_t name; /* offset into names */
	uint32_t seq;  /* line order within one batch */
} Sym;

/* Entries sorted by start, one per start. */
typedef struct SymSet {
	Sym *syms;
	size_t n, allocated;
} SymSet;

/*
 * Entries live in two sorted sets: base, and delta, newer than all of base. Lines appended
 * to the file are merged into delta (small: cheap to merge into), delta into base once it is
 * an eighth of it: a map that grows by a line at a time is not copied whole for each line.
 */
struct PerfMap {
	SymSet base, delta;
	char *names;
	size_t names_len, names_allocated;
	size_t bad;

	/* The file read. */
	bool have_file;
	dev_t dev;
	ino_t ino;
	uint64_t start;	      /* where reading began: what is before it was left unread */
	uint64_t offset;      /* the next byte to read */
	uint64_t seen;	      /* every byte before this was parsed once (bad lines counted) */
	uint64_t refused_end; /* the bytes before this were counted as refused */
	bool sync;	      /* skip to the next line: reading began inside one */
};

static void symset_done(SymSet *s)
{
	free(s->syms);
	*s = (SymSet){ 0 };
}

int perfmap_new(PerfMap **ret)
{
	PerfMap *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	*ret = m;
	return 0;
}

static void perfmap_clear(PerfMap *m)
{
	symset_done(&m->base);
	symset_done(&m->delta);
	m->names = mfree(m->names);
	m->names_len = m->names_allocated = 0;
	m->bad = 0;
}

PerfMap *perfmap_free(PerfMap *m)
{
	if (!m)
		return NULL;
	perfmap_clear(m);
	free(m);
	return NULL;
}

static bool hex_field(const char **p, const char *end, uint64_t *ret)
{
	uint64_t v = 0;
	int digits = 0;
	const char *s = *p;

	if (end - s > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	for (; s < end && isxdigit((unsigned char)*s); s++) {
		if (++digits > 16)
			return false;
		v = v << 4 |
		    (uint64_t)(isdigit((unsigned char)*s) ? *s - '0'
							  : tolower((unsigned char)*s) - 'a' + 10);
	}
	if (digits == 0 || s >= end || *s != ' ')
		return false;
	*p = s + 1;
	*ret = v;
	return true;
}

static int sym_cmp(const void *a, const void *b)
{
	const Sym *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Merges newer (sorted, one per start) into older: of one start, the newer entry stays. */
static int symset_merge(SymSet *older, SymSet *newer)
{
	size_t i = 0, j = 0, n = 0, total = older->n + newer->n;
	Sym *out;

	if (newer->n == 0)
		return 0;
	if (older->n == 0) {
		symset_done(older);
		*older = *newer;
		*newer = (SymSet){ 0 };
		return 0;
	}
	out = malloc(total * sizeof(Sym));
	if (!out)
		return -ENOMEM;
	while (i < older->n || j < newer->n) {
		if (j == newer->n ||
		    (i < older->n && older->syms[i].start < newer->syms[j].start)) {
			out[n++] = older->syms[i++];
			continue;
		}
		if (i < older->n && older->syms[i].start == newer->syms[j].start)
			i++;
		out[n++] = newer->syms[j++];
	}
	symset_done(older);
	symset_done(newer);
	*older = (SymSet){ .syms = out, .n = n, .allocated = total };
	return 0;
}

/* Sorts a batch of new lines' entries and keeps, of one start, the last written. */
static void batch_sort(SymSet *b)
{
	size_t keep = 0;

	if (b->n > 1)
		qsort(b->syms, b->n, sizeof(Sym), sym_cmp);
	for (size_t i = 0; i < b->n; i++) {
		if (i + 1 < b->n && b->syms[i + 1].start == b->syms[i].start)
			continue;
		b->syms[keep++] = b->syms[i];
	}
	b->n = keep;
}

/*
 * Adds the complete lines of text (at file offset off) to m; *ret_consumed: up to the end of the
 * last complete line. Malformed lines at or after count_from are counted in *ret_bad (those
 * before were counted when first read).
 */
static int add_text(PerfMap *m, const char *buf, size_t len, uint64_t off, uint64_t count_from,
		    size_t *ret_consumed, uint64_t *ret_bad, uint64_t *ret_entries)
{
	_cleanup_free_ Sym *batch_syms = NULL;
	SymSet batch = { 0 };
	const char *p = buf, *end = buf + len;
	uint64_t bad = 0;
	int r;

	if (m->sync) {
		const char *eol = memchr(p, '\n', len);

		if (!eol) {
			*ret_consumed = len;
			*ret_bad = *ret_entries = 0;
			return 0;
		}
		p = eol + 1;
		m->sync = false;
	}
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p)), *q = p;
		uint64_t start, size;
		size_t name_len;

		/* A last line without its newline is still being written (a write cut at a
		 * buffer's end): neither an entry with half a name nor malformed. It is read
		 * when the file has grown. */
		if (!eol)
			break;
		if (!hex_field(&q, eol, &start) || !hex_field(&q, eol, &size) || q >= eol ||
		    size == 0 || start + size < start || (size_t)(eol - q) > NAME_MAX_LEN ||
		    memchr(q, '\0', (size_t)(eol - q))) {
			if (eol > p) {
				m->bad++;
				if (off + (uint64_t)(p - buf) >= count_from)
					bad++;
			}
			p = eol + 1;
			continue;
		}
		name_len = (size_t)(eol - q);
		if (batch.n >= UINT32_MAX || m->names_len + name_len + 1 > UINT32_MAX)
			return -E2BIG;
		r = GREEDY_REALLOC(batch.syms, batch.allocated, batch.n + 1);
		batch_syms = batch.syms;
		if (r < 0 ||
		    GREEDY_REALLOC(m->names, m->names_allocated, m->names_len + name_len + 1) < 0)
			return -ENOMEM;
		memcpy(m->names + m->names_len, q, name_len);
		m->names[m->names_len + name_len] = '\0';
		/* Names are shown: no control characters. */
		for (size_t i = 0; i < name_len; i++)
			if ((unsigned char)m->names[m->names_len + i] < 0x20)
				m->names[m->names_len + i] = '?';
		batch.syms[batch.n] = (Sym){ .start = start,
					     .size = size,
					     .name = (uint32_t)m->names_len,
					     .seq = (uint32_t)batch.n };
		batch.n++;
		m->names_len += name_len + 1;
		p = eol + 1;
	}
	*ret_entries = batch.n;
	batch_sort(&batch);
	/* The batch is newer than delta, delta newer than base. */
	r = symset_merge(&m->delta, &batch);
	if (r < 0)
		return r;
	batch_syms = NULL; /* merged: delta owns or freed it */
	if (m->delta.n > m->base.n / 8 + 1024) {
		r = symset_merge(&m->base, &m->delta);
		if (r < 0)
			return r;
	}
	*ret_consumed = (size_t)(p - buf);
	*ret_bad = bad;
	return 0;
}

int perfmap_parse(const char *buf, size_t len, PerfMap **ret, size_t *ret_bad)
{
	_cleanup_(perfmap_freep) PerfMap *m = NULL;
	uint64_t bad, entries;
	size_t consumed;
	int r;

	r = perfmap_new(&m);
	if (r < 0)
		return r;
	r = add_text(m, buf, len, 0, 0, &consumed, &bad, &entries);
	if (r < 0)
		return r;
	r = symset_merge(&m->base, &m->delta);
	if (r < 0)
		return r;
	if (ret_bad)
		*ret_bad = m->bad;
	*ret = TAKE_PTR(m);
	return 0;
}

/* The pid of pid in its own namespace (the number in its perf map's name). */
static pid_t ns_pid(pid_t pid)
{
	_cleanup_free_ char *status = NULL;
	char path[64], *line;
	pid_t last = pid;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (procfs_read_file(path, 65536, &status, NULL) < 0)
		return pid;
	line = strstr(status, "\nNSpid:");
	if (!line)
		return pid;
	line += 7;
	for (char *e; *line && *line != '\n';) {
		long v = strtol(line, &e, 10);

		if (e == line)
			break;
		last = (pid_t)v;
		line = e;
	}
	return last;
}

static int open_map(Mounts *mounts, pid_t pid, struct stat *st)
{
	char name[32];
	int fd;

	snprintf(name, sizeof(name), "perf-%d.map", (int)ns_pid(pid));
	fd = mounts_open_in_root(mounts, pid, "tmp", name, O_RDONLY | O_NONBLOCK | O_NOCTTY,
				 now_mono_ns());
	if (fd < 0)
		return fd;
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		return -EBADFD;
	}
	return fd;
}

/* Starts reading the file over at start (inside a line unless 0: skipped to the next). */
static void read_from(PerfMap *m, uint64_t start, PerfMapRead *ret)
{
	perfmap_clear(m);
	m->start = start;
	/* From the byte before: if it ends a line, reading begins right at start. */
	m->offset = start > 0 ? start - 1 : 0;
	m->sync = start > 0;
	if (start > m->refused_end) {
		ret->refused += start - m->refused_end;
		m->refused_end = start;
	}
	ret->restarted = true;
}

static int read_at(int fd, char *buf, size_t len, uint64_t off, size_t *ret)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(fd, buf + got, len - got, (off_t)(off + got));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	*ret = got;
	return 0;
}

int perfmap_update(PerfMap *m, Mounts *mounts, pid_t pid, uid_t uid, size_t max_read, size_t cap,
		   PerfMapRead *ret)
{
	_cleanup_free_ char *buf = NULL;
	_cleanup_close_ int fd = -1;
	PerfMapRead res = { 0 };
	uint64_t size, want, bad = 0, entries = 0;
	size_t got, consumed;
	struct stat st;
	int r;

	fd = open_map(mounts, pid, &st);
	if (fd < 0)
		return fd;
	/* Anyone may write /tmp: only the process's own user speaks for it. */
	if (st.st_uid != uid)
		return -EPERM;
	cap = MAX(MIN(cap, (size_t)PERFMAP_MAX_FILE), (size_t)2 * NAME_MAX_LEN);
	max_read = MAX(max_read, (size_t)2 * NAME_MAX_LEN);
	size = (uint64_t)st.st_size;

	if (!m->have_file || st.st_dev != m->dev || st.st_ino != m->ino || size < m->offset ||
	    size < m->start) {
		/* Another file, or one truncated and written again: nothing of it is known. */
		m->have_file = true;
		m->dev = st.st_dev;
		m->ino = st.st_ino;
		m->seen = m->refused_end = 0;
		read_from(m, size > cap ? size - cap / 2 : 0, &res);
	} else if (size - m->start > cap) {
		/* Past the cap: its newest half again. Half, so that it takes as much growth
		 * before the next time, and a line at a time is not the whole read anew. */
		read_from(m, size - cap / 2, &res);
	}

	want = MIN(size - m->offset, (uint64_t)max_read);
	if (want > 0) {
		buf = malloc(want);
		if (!buf)
			return -ENOMEM;
		r = read_at(fd, buf, want, m->offset, &got);
		if (r < 0)
			return r;
		r = add_text(m, buf, got, m->offset, m->seen, &consumed, &bad, &entries);
		if (r < 0)
			return r;
		if (consumed == 0 && got == max_read) {
			/* No line end in a whole read: a line longer than any name, malformed. */
			m->bad++;
			if (m->offset >= m->seen)
				bad++;
			m->sync = true;
			consumed = got;
		}
		m->offset += consumed;
		m->seen = MAX(m->seen, m->offset);
		res.bytes = got;
		res.bad = bad;
		res.entries = entries;
		res.more = got == max_read && m->offset < size;
	}
	if (ret)
		*ret = res;
	return 0;
}

/* The entry of s with the greatest start <= addr, or NULL. */
static const Sym *symset_find(const SymSet *s, uint64_t addr)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->syms[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo == 0 ? NULL : &s->syms[lo - 1];
}

const char *perfmap_lookup(const PerfMap *m, uint64_t addr, uint64_t *ret_offset)
{
	const Sym *b = symset_find(&m->base, addr), *d = symset_find(&m->delta, addr), *s;

	/* As if the two were one set: the greatest start, of one start the newer (delta). */
	s = !b ? d : !d ? b : d->start >= b->start ? d : b;
	if (!s || addr - s->start >= s->size)
		return NULL;
	if (ret_offset)
		*ret_offset = addr - s->start;
	return m->names + s->name;
}

size_t perfmap_count(const PerfMap *m)
{
	/* Of one start in both sets, delta's is current: count it once. */
	size_t n = m->base.n;

	for (size_t i = 0; i < m->delta.n; i++) {
		const Sym *b = symset_find(&m->base, m->delta.syms[i].start);

		if (!b || b->start != m->delta.syms[i].start)
			n++;
	}
	return n;
}

size_t perfmap_bad(const PerfMap *m)
{
	return m->bad;
}

size_t perfmap_memory(const PerfMap *m)
{
	return sizeof(*m) + (m->base.allocated + m->delta.allocated) * sizeof(Sym) +
	       m->names_allocated;
}
