/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "base/macro.h"
#include "base/procfs.h"
#include "symbolize/perfmap.h"

typedef struct Sym {
	uint64_t start, size;
	uint32_t name; /* offset into names */
	uint32_t seq;  /* line order */
} Sym;

struct PerfMap {
	Sym *syms;
	size_t n;
	char *names;
	size_t names_len;
	size_t bad;
};

PerfMap *perfmap_free(PerfMap *m)
{
	if (!m)
		return NULL;
	free(m->syms);
	free(m->names);
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

int perfmap_parse(const char *buf, size_t len, PerfMap **ret, size_t *ret_bad)
{
	_cleanup_(perfmap_freep) PerfMap *m = calloc(1, sizeof(*m));
	size_t allocated = 0, names_allocated = 0, keep = 0;
	const char *p = buf, *end = buf + len;

	if (!m)
		return -ENOMEM;
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
		    size == 0 || start + size < start || (size_t)(eol - q) > 4096 ||
		    memchr(q, '\0', (size_t)(eol - q))) {
			if (eol > p)
				m->bad++;
			p = eol + 1;
			continue;
		}
		name_len = (size_t)(eol - q);
		if (m->n >= UINT32_MAX || m->names_len + name_len + 1 > UINT32_MAX)
			return -E2BIG;
		if (GREEDY_REALLOC(m->syms, allocated, m->n + 1) < 0 ||
		    GREEDY_REALLOC(m->names, names_allocated, m->names_len + name_len + 1) < 0)
			return -ENOMEM;
		memcpy(m->names + m->names_len, q, name_len);
		m->names[m->names_len + name_len] = '\0';
		/* Names are shown: no control characters. */
		for (size_t i = 0; i < name_len; i++)
			if ((unsigned char)m->names[m->names_len + i] < 0x20)
				m->names[m->names_len + i] = '?';
		m->syms[m->n] = (Sym){ .start = start,
				       .size = size,
				       .name = (uint32_t)m->names_len,
				       .seq = (uint32_t)m->n };
		m->n++;
		m->names_len += name_len + 1;
		p = eol + 1;
	}
	if (m->n > 1)
		qsort(m->syms, m->n, sizeof(Sym), sym_cmp);
	/* Of entries with one start, the last written is current. */
	for (size_t i = 0; i < m->n; i++) {
		if (i + 1 < m->n && m->syms[i + 1].start == m->syms[i].start)
			continue;
		m->syms[keep++] = m->syms[i];
	}
	m->n = keep;
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

static int open_map(pid_t pid, struct stat *st)
{
	char path[96];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/root/tmp/perf-%d.map", (int)pid, (int)ns_pid(pid));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return negative_errno();
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		return -EBADFD;
	}
	return fd;
}

uint64_t perfmap_file_size(pid_t pid)
{
	struct stat st;
	int fd = open_map(pid, &st);

	if (fd < 0)
		return 0;
	close(fd);
	return (uint64_t)st.st_size;
}

int perfmap_load(pid_t pid, uid_t uid, PerfMap **ret, uint64_t *ret_size)
{
	_cleanup_free_ char *buf = NULL;
	_cleanup_close_ int fd = -1;
	struct stat st;
	size_t len;
	int r;

	fd = open_map(pid, &st);
	if (fd < 0)
		return fd;
	/* Anyone may write /tmp: only the process's own user speaks for it. */
	if (st.st_uid != uid)
		return -EPERM;
	if ((uint64_t)st.st_size > PERFMAP_MAX_FILE)
		return -EFBIG;
	r = procfs_read_fd(fd, PERFMAP_MAX_FILE, &buf, &len);
	if (r < 0)
		return r;
	r = perfmap_parse(buf, len, ret, NULL);
	if (r < 0)
		return r;
	if (ret_size)
		*ret_size = len;
	return 0;
}

const char *perfmap_lookup(const PerfMap *m, uint64_t addr, uint64_t *ret_offset)
{
	size_t lo = 0, hi = m->n;
	const Sym *s;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->syms[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	s = &m->syms[lo - 1];
	if (addr - s->start >= s->size)
		return NULL;
	if (ret_offset)
		*ret_offset = addr - s->start;
	return m->names + s->name;
}

size_t perfmap_count(const PerfMap *m)
{
	return m->n;
}

size_t perfmap_bad(const PerfMap *m)
{
	return m->bad;
}

size_t perfmap_memory(const PerfMap *m)
{
	return sizeof(*m) + m->n * sizeof(Sym) + m->names_len;
}
