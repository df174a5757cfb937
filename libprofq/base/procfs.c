/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/macro.h"
#include "base/procfs.h"

int procfs_read_fd(int fd, size_t max, char **ret, size_t *ret_len)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, allocated = 0;

	for (;;) {
		size_t want = MIN(len + 65536, max + 1); /* > len, since len <= max here */
		ssize_t n;

		if (GREEDY_REALLOC(buf, allocated, want + 1) < 0)
			return -ENOMEM;
		n = read(fd, buf + len, want - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max)
			return -EFBIG;
	}
	if (!buf && !(buf = malloc(1)))
		return -ENOMEM;
	buf[len] = '\0';
	*ret = TAKE_PTR(buf);
	if (ret_len)
		*ret_len = len;
	return 0;
}

int procfs_read_file(const char *path, size_t max, char **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return negative_errno();
	return procfs_read_fd(fd, max, ret, ret_len);
}

int64_t procfs_self_resident(void)
{
	char buf[128];
	unsigned long size, resident;
	_cleanup_close_ int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC | O_NOCTTY);
	ssize_t n;

	if (fd < 0)
		return negative_errno();
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		return negative_errno();
	buf[n] = '\0';
	if (sscanf(buf, "%lu %lu", &size, &resident) != 2)
		return -EBADMSG;
	return (int64_t)resident * sysconf(_SC_PAGESIZE);
}

static bool parse_hex(const char **p, uint64_t *ret)
{
	uint64_t v = 0;
	const char *s = *p;
	int digits = 0;

	for (; isxdigit((unsigned char)*s); s++, digits++) {
		unsigned d = isdigit((unsigned char)*s)
				     ? (unsigned)(*s - '0')
				     : (unsigned)(tolower((unsigned char)*s) - 'a' + 10);
		if (digits >= 16)
			return false;
		v = v << 4 | d;
	}
	if (digits == 0)
		return false;
	*p = s;
	*ret = v;
	return true;
}

static bool parse_dec(const char **p, uint64_t *ret)
{
	uint64_t v = 0;
	const char *s = *p;

	if (!isdigit((unsigned char)*s))
		return false;
	for (; isdigit((unsigned char)*s); s++) {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (unsigned)(*s - '0');
	}
	*p = s;
	*ret = v;
	return true;
}

static bool expect(const char **p, char c)
{
	if (**p != c)
		return false;
	(*p)++;
	return true;
}

/* "start-end perms offset major:minor inode   path" for one line [line, eol). */
static int parse_maps_line(const char *line, const char *eol, ProcMap *ret)
{
	uint64_t start, end, pgoff, major, minor, inode;
	const char *p = line;
	uint32_t prot = 0;

	if (!parse_hex(&p, &start) || !expect(&p, '-') || !parse_hex(&p, &end) || !expect(&p, ' '))
		return -EINVAL;
	if (eol - p < 5)
		return -EINVAL;
	if (p[0] == 'r')
		prot |= PROT_READ;
	if (p[1] == 'w')
		prot |= PROT_WRITE;
	if (p[2] == 'x')
		prot |= PROT_EXEC;
	p += 4;
	if (!expect(&p, ' ') || !parse_hex(&p, &pgoff) || !expect(&p, ' ') ||
	    !parse_hex(&p, &major) || !expect(&p, ':') || !parse_hex(&p, &minor) ||
	    !expect(&p, ' ') || !parse_dec(&p, &inode))
		return -EINVAL;
	if (p > eol || start >= end || major > UINT32_MAX || minor > UINT32_MAX)
		return -EINVAL;
	while (p < eol && *p == ' ')
		p++;
	*ret = (ProcMap){ .start = start,
			  .end = end,
			  .pgoff = pgoff,
			  .inode = inode,
			  .dev_major = (uint32_t)major,
			  .dev_minor = (uint32_t)minor,
			  .prot = prot };
	if (p < eol) {
		ret->path = strndup(p, (size_t)(eol - p));
		if (!ret->path)
			return -ENOMEM;
	}
	return 0;
}

void procfs_maps_free(ProcMap *maps, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(maps[i].path);
	free(maps);
}

int procfs_parse_maps(const char *buf, size_t len, ProcMap **ret, size_t *ret_n, size_t *ret_bad)
{
	ProcMap *maps = NULL;
	size_t n = 0, allocated = 0, bad = 0;
	const char *p = buf, *end = buf + len;
	_cleanup_free_ char *copy = NULL;

	/*
	 * The line parser stops at the newline; a last line without one would let it read past
	 * len. Give such a buffer its newline in a copy (/proc files always end with one).
	 */
	if (len > 0 && buf[len - 1] != '\n') {
		copy = malloc(len + 1);
		if (!copy)
			return -ENOMEM;
		memcpy(copy, buf, len);
		copy[len] = '\n';
		p = copy;
		end = copy + len + 1;
	}

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		ProcMap m;
		int r;

		if (!eol)
			eol = end;
		r = parse_maps_line(p, eol, &m);
		if (r == -ENOMEM) {
			procfs_maps_free(maps, n);
			return r;
		}
		if (r < 0) {
			if (eol > p)
				bad++;
		} else if (!(m.prot & PROT_EXEC)) {
			free(m.path);
		} else {
			if (GREEDY_REALLOC(maps, allocated, n + 1) < 0) {
				free(m.path);
				procfs_maps_free(maps, n);
				return -ENOMEM;
			}
			maps[n++] = m;
		}
		p = eol + 1;
	}
	*ret = maps;
	*ret_n = n;
	if (ret_bad)
		*ret_bad = bad;
	return 0;
}

int procfs_parse_stat(const char *buf, ProcStat *ret)
{
	const char *open = strchr(buf, '('), *close = strrchr(buf, ')'), *p;
	uint64_t field[52];
	ProcStat st = { 0 };
	size_t n;

	if (!open || !close || close < open)
		return -EINVAL;
	n = MIN((size_t)(close - open - 1), sizeof(st.comm) - 1);
	memcpy(st.comm, open + 1, n);
	st.comm[n] = '\0';
	p = close + 1;
	if (!expect(&p, ' ') || !*p || !isalpha((unsigned char)*p))
		return -EINVAL;
	st.state = *p++;
	/* Fields 4..22 (1-based, as in proc(5)); field[i] holds field i. */
	for (int i = 4; i <= 22; i++) {
		bool neg = false;

		if (!expect(&p, ' '))
			return -EINVAL;
		if (*p == '-') {
			/* Only a few fields (priority, nice, tty_pgrp) can be negative; keep 0. */
			neg = true;
			p++;
		}
		if (!parse_dec(&p, &field[i]))
			return -EINVAL;
		if (neg)
			field[i] = 0;
	}
	if (field[4] > UINT32_MAX || field[20] > UINT32_MAX)
		return -EINVAL;
	st.ppid = (uint32_t)field[4];
	st.utime = field[14];
	st.stime = field[15];
	st.cutime = field[16];
	st.cstime = field[17];
	st.num_threads = (uint32_t)field[20];
	st.starttime = field[22];
	*ret = st;
	return 0;
}

/* "\t1000\t1000\t1000\t1000\n": exactly four decimal ids. */
static bool parse_ids(const char *p, uint32_t ret[4])
{
	for (int i = 0; i < 4; i++) {
		uint64_t v;

		if (!expect(&p, '\t') || !parse_dec(&p, &v) || v > UINT32_MAX)
			return false;
		ret[i] = (uint32_t)v;
	}
	return *p == '\n' || *p == '\0';
}

int procfs_parse_status(const char *buf, ProcStatus *ret)
{
	ProcStatus st = { 0 };
	unsigned seen = 0;

	for (const char *line = buf; *line;) {
		const char *eol = strchrnul(line, '\n');

		if (startswith(line, "Uid:")) {
			if ((seen & 1) || !parse_ids(line + 4, st.uid))
				return -EINVAL;
			seen |= 1;
		} else if (startswith(line, "Gid:")) {
			if ((seen & 2) || !parse_ids(line + 4, st.gid))
				return -EINVAL;
			seen |= 2;
		} else if (startswith(line, "CapEff:")) {
			const char *p = line + 7;

			if ((seen & 4) || !expect(&p, '\t') || !parse_hex(&p, &st.cap_eff) ||
			    (*p != '\n' && *p != '\0'))
				return -EINVAL;
			seen |= 4;
		}
		line = *eol ? eol + 1 : eol;
	}
	if (seen != 7)
		return -EINVAL;
	*ret = st;
	return 0;
}

void procfs_cmdline_to_string(char *buf, size_t len)
{
	while (len > 0 && buf[len - 1] == '\0')
		len--;
	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '\0')
			buf[i] = ' ';
		else if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = '?';
	}
	buf[len] = '\0';
}

int procfs_read_stat(pid_t pid, ProcStat *ret)
{
	_cleanup_free_ char *buf = NULL;
	char path[64];
	int r;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	r = procfs_read_file(path, 4096, &buf, NULL);
	if (r < 0)
		return r;
	return procfs_parse_stat(buf, ret);
}

int procfs_read_status(pid_t pid, ProcStatus *ret)
{
	_cleanup_free_ char *buf = NULL;
	char path[64];
	int r;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	r = procfs_read_file(path, 16384, &buf, NULL);
	if (r < 0)
		return r;
	return procfs_parse_status(buf, ret);
}

int procfs_read_cmdline(pid_t pid, char **ret)
{
	_cleanup_free_ char *buf = NULL;
	_cleanup_close_ int fd = -1;
	char path[64];
	ssize_t n;

	/* Only the first 4 KiB: enough to recognize a command, bounded for hostile ones. */
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	buf = malloc(4097);
	if (!buf)
		return -ENOMEM;
	do
		n = read(fd, buf, 4096);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return negative_errno();
	buf[n] = '\0';
	procfs_cmdline_to_string(buf, (size_t)n);
	*ret = TAKE_PTR(buf);
	return 0;
}

int procfs_read_maps(pid_t pid, ProcMap **ret, size_t *ret_n)
{
	_cleanup_free_ char *buf = NULL;
	char path[64];
	size_t len;
	int r;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	r = procfs_read_file(path, 64u << 20, &buf, &len);
	if (r < 0)
		return r;
	return procfs_parse_maps(buf, len, ret, ret_n, NULL);
}

uint64_t procfs_clock_ticks(void)
{
	static uint64_t ticks;

	if (ticks == 0) {
		long t = sysconf(_SC_CLK_TCK);
		ticks = t > 0 ? (uint64_t)t : 100;
	}
	return ticks;
}
