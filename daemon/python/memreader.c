/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/macro.h"
#include "python/memreader.h"
#include "python/pycode.h"
#include "service/sandbox.h"

/* A uid whose processes' memory timed out this many times is read no more. */
#define UID_TIMEOUTS_MAX 2
#define UIDS_MAX 64

enum {
	REQ_READ,
	REQ_CODE,
	REQ_THREADS
};

typedef struct Request {
	uint32_t kind;
	uint32_t ident; /* REQ_CODE: the identity the object must have */
	uint64_t addr, len;
	uint64_t code_type; /* REQ_CODE */
	PyLayout layout;    /* REQ_CODE, REQ_THREADS */
} Request;

typedef struct Answer {
	int64_t result; /* bytes read; 0 or CODE_OTHER; thread states found; or -errno */
} Answer;

/* REQ_CODE: not the object the sample saw (its identity bytes differ), nothing else read. */
#define CODE_OTHER 1

/* A code object: the answer's header, then the names (no NUL) and the line table. */
typedef struct CodeAnswer {
	Answer a;
	uint32_t firstlineno, ident;
	uint32_t qualname_len, filename_len, table_len;
	uint32_t pad;
} CodeAnswer;

/* UTF-8 of PY_STRING_MAX characters. */
#define NAME_BYTES_MAX (4u * PY_STRING_MAX)
#define ANSWER_MAX                                                           \
	MAX(MAX(sizeof(Answer) + MEM_READER_MAX,                             \
		sizeof(CodeAnswer) + 2 * NAME_BYTES_MAX + PY_LINETABLE_MAX), \
	    sizeof(Answer) + PY_THREADS_MAX * sizeof(PyThreadRef))

typedef struct UidTimeouts {
	uint32_t uid, n;
} UidTimeouts;

struct MemReader {
	uint64_t timeout_ns;
	Sandbox child;
	uint8_t *buf; /* an answer, up to ANSWER_MAX bytes */
	UidTimeouts uids[UIDS_MAX];
	size_t n_uids;
	MemReaderStats stats;
};

int mem_reader_new(uint64_t timeout_ns, MemReader **ret)
{
	MemReader *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->buf = malloc(ANSWER_MAX);
	if (!m->buf) {
		free(m);
		return -ENOMEM;
	}
	m->timeout_ns = timeout_ns;
	sandbox_init(&m->child);
	*ret = m;
	return 0;
}

MemReader *mem_reader_free(MemReader *m)
{
	if (!m)
		return NULL;
	sandbox_stop(&m->child, 100 * NSEC_PER_MSEC);
	sandbox_reap(&m->child);
	free(m->buf);
	free(m);
	return NULL;
}

static int child_read(void *userdata, uint64_t addr, void *buf, size_t len)
{
	ssize_t n;

	if (addr > INT64_MAX || len > INT64_MAX - addr)
		return -EFAULT;
	n = pread(*(const int *)userdata, buf, len, (off_t)addr);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EFAULT;
}

/* The child's answer to REQ_CODE (the code object parsed here: a fault in it, or in reading
 * it, costs this process); its size. */
static size_t child_code(int fd, const Request *q, uint8_t *buf)
{
	CodeAnswer h = { 0 };
	uint8_t id[PROFQ_PY_IDENT_LEN];
	PyCode c = { 0 };
	size_t off = sizeof(h);
	int r;

	/* The identity bytes alone first: a process can make the object another one on every
	 * sample, and then that costs one small read. */
	r = child_read(&fd, q->addr + q->layout.bpf.code_ident, id, sizeof(id));
	if (r >= 0 && py_ident_hash(id) != q->ident)
		r = CODE_OTHER;
	else
		r = pycode_read(&q->layout, child_read, &fd, q->addr, q->code_type, &c);
	h.a.result = r;
	if (r == 0) {
		h.firstlineno = c.firstlineno;
		h.ident = c.ident;
		h.qualname_len = (uint32_t)strnlen(c.qualname, NAME_BYTES_MAX);
		h.filename_len = (uint32_t)strnlen(c.filename, NAME_BYTES_MAX);
		h.table_len = (uint32_t)MIN(c.linetable_len, (size_t)PY_LINETABLE_MAX);
		memcpy(buf + off, c.qualname, h.qualname_len);
		off += h.qualname_len;
		memcpy(buf + off, c.filename, h.filename_len);
		off += h.filename_len;
		if (h.table_len)
			memcpy(buf + off, c.linetable, h.table_len);
		off += h.table_len;
	}
	pycode_done(&c);
	memcpy(buf, &h, sizeof(h));
	return r == 0 ? off : sizeof(h);
}

/*
 * The child: answers each request (a descriptor and what to read) until its end of the pair
 * closes. It is a fork of a process with threads: system calls, and glibc's malloc (which
 * makes itself whole in a forked child) for the code objects it parses.
 */
static void child_main(int sock, void *userdata)
{
	uint8_t *buf = userdata;

	for (;;) {
		Request q;
		Answer a = { .result = -EBADF };
		size_t size = sizeof(a);
		int fd;
		ssize_t n = sandbox_recv(sock, &q, sizeof(q), 0, &fd);

		if (n <= 0)
			return;
		memcpy(buf, &a, sizeof(a));
		if (n == sizeof(q) && fd >= 0 && q.kind == REQ_CODE) {
			size = child_code(fd, &q, buf);
		} else if (n == sizeof(q) && fd >= 0 && q.kind == REQ_THREADS) {
			size_t found = 0;

			/* The answer: how many, then the thread states. */
			a.result = pythreads_read(&q.layout, child_read, &fd, q.addr,
						  (PyThreadRef *)(buf + sizeof(a)), &found);
			if (a.result == 0)
				a.result = (int64_t)found;
			memcpy(buf, &a, sizeof(a));
			size += a.result > 0 ? found * sizeof(PyThreadRef) : 0;
		} else if (n == sizeof(q) && fd >= 0 && q.kind == REQ_READ &&
			   q.len <= MEM_READER_MAX && q.addr <= INT64_MAX) {
			n = pread(fd, buf + sizeof(a), q.len, (off_t)q.addr);
			a.result = n < 0 ? -errno : n;
			memcpy(buf, &a, sizeof(a));
			size += a.result > 0 ? (size_t)a.result : 0;
		}
		if (fd >= 0)
			close(fd);
		if (send(sock, buf, size, MSG_NOSIGNAL) < 0)
			return;
	}
}

static int child_start(MemReader *m)
{
	/* Nothing of profqd's rights is needed with the descriptors opened for it; room for the
	 * largest answer in one message (the default usually has it). */
	const SandboxOptions o = { .sndbuf = 2 * ANSWER_MAX };
	int r = sandbox_start(&m->child, &o, child_main, m->buf);

	if (r >= 0)
		m->stats.children++;
	return r;
}

static UidTimeouts *uid_entry(MemReader *m, uint32_t uid)
{
	for (size_t i = 0; i < m->n_uids; i++)
		if (m->uids[i].uid == uid)
			return &m->uids[i];
	return NULL;
}

static void uid_timed_out(MemReader *m, uint32_t uid)
{
	UidTimeouts *u = uid_entry(m, uid);

	if (!u && m->n_uids < UIDS_MAX) {
		u = &m->uids[m->n_uids++];
		*u = (UidTimeouts){ .uid = uid };
	}
	if (u)
		u->n++;
}

/* Waits for the child's answer until the deadline (CLOCK_MONOTONIC ns): 1 if it came. */
static int wait_answer(MemReader *m, uint64_t deadline)
{
	struct pollfd p = { .fd = m->child.sock, .events = POLLIN };

	for (;;) {
		struct timespec now, left;
		uint64_t t;
		int n;

		clock_gettime(CLOCK_MONOTONIC, &now);
		t = (uint64_t)now.tv_sec * NSEC_PER_SEC + (uint64_t)now.tv_nsec;
		if (t >= deadline)
			return 0;
		left = (struct timespec){ .tv_sec = (time_t)((deadline - t) / NSEC_PER_SEC),
					  .tv_nsec = (long)((deadline - t) % NSEC_PER_SEC) };
		n = ppoll(&p, 1, &left, NULL);
		if (n > 0)
			return 1;
		if (n < 0 && errno != EINTR)
			return negative_errno();
	}
}

/* Sends q with fd to the child (started if there is none) and waits for its answer, in
 * m->buf: its size, or -errno (the child killed when it took too long). */
static ssize_t exchange(MemReader *m, int fd, uint32_t uid, const Request *q)
{
	struct timespec now;
	ssize_t n;
	int r;

	if (m->child.pid == 0) {
		r = child_start(m);
		if (r < 0)
			return r;
	}
	r = sandbox_send(m->child.sock, q, sizeof(*q), fd, 0);
	if (r < 0) {
		if (r == -EBADF)
			return r; /* fd is no descriptor */
		/* The child is gone (killed by someone): the next read starts another. */
		sandbox_stop(&m->child, 0);
		return -EIO;
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	r = wait_answer(m, (uint64_t)now.tv_sec * NSEC_PER_SEC + (uint64_t)now.tv_nsec +
				   m->timeout_ns);
	if (r <= 0) {
		if (r == 0) {
			m->stats.timeouts++;
			uid_timed_out(m, uid);
		}
		sandbox_stop(&m->child, 0);
		return r < 0 ? r : -ETIMEDOUT;
	}
	m->stats.reads++;
	n = recv(m->child.sock, m->buf, ANSWER_MAX, 0);
	if (n < (ssize_t)sizeof(Answer)) {
		sandbox_stop(&m->child, 0);
		return -EIO;
	}
	return n;
}

/* An answer's errno, from the child: one, or -EIO. */
static int answer_error(int64_t result)
{
	return result < 0 && result >= -4095 ? (int)result : -EIO;
}

static bool uid_refused(MemReader *m, int fd, uint32_t uid)
{
	const UidTimeouts *u = uid_entry(m, uid);

	return fd < 0 || (u && u->n >= UID_TIMEOUTS_MAX);
}

static int read_once(MemReader *m, int fd, uint32_t uid, uint64_t addr, void *buf, size_t len)
{
	Request q = { .kind = REQ_READ, .addr = addr, .len = len };
	ssize_t n = exchange(m, fd, uid, &q);
	Answer a;

	if (n < 0)
		return (int)n;
	memcpy(&a, m->buf, sizeof(a));
	if (a.result < 0)
		return answer_error(a.result);
	if ((uint64_t)a.result != len || (size_t)n != sizeof(Answer) + len)
		return -EFAULT;
	memcpy(buf, m->buf + sizeof(Answer), len);
	return 0;
}

int mem_reader_read(MemReader *m, int fd, uint32_t uid, uint64_t addr, void *buf, size_t len)
{
	int r;

	if (uid_refused(m, fd, uid))
		return fd < 0 ? -EBADF : -ETIMEDOUT;
	if (addr > INT64_MAX || len > INT64_MAX - addr)
		return -EFAULT;
	while (len > 0) {
		size_t n = MIN(len, (size_t)MEM_READER_MAX);

		r = read_once(m, fd, uid, addr, buf, n);
		if (r < 0)
			return r;
		addr += n;
		buf = (uint8_t *)buf + n;
		len -= n;
	}
	return 0;
}

/* A copy of the n bytes at *p of the answer, NUL-terminated; *p moves past them. */
static char *answer_string(const uint8_t **p, uint32_t n)
{
	char *s = malloc((size_t)n + 1);

	if (s) {
		memcpy(s, *p, n);
		s[n] = '\0';
	}
	*p += n;
	return s;
}

int mem_reader_code(MemReader *m, int fd, uint32_t uid, const PyLayout *l, uint64_t addr,
		    uint64_t code_type, uint32_t ident, PyCode *ret)
{
	Request q = {
		.kind = REQ_CODE, .ident = ident, .addr = addr, .code_type = code_type, .layout = *l
	};
	const uint8_t *p;
	CodeAnswer h;
	ssize_t n;

	*ret = (PyCode){ 0 };
	if (uid_refused(m, fd, uid))
		return fd < 0 ? -EBADF : -ETIMEDOUT;
	n = exchange(m, fd, uid, &q);
	if (n < 0)
		return (int)n;
	memcpy(&h, m->buf, MIN((size_t)n, sizeof(h)));
	if (h.a.result == CODE_OTHER)
		return -ECHILD;
	if (h.a.result != 0)
		return answer_error(h.a.result);
	/* The child read hostile memory: its answer is checked like any input. */
	if ((size_t)n < sizeof(h) || h.qualname_len > NAME_BYTES_MAX ||
	    h.filename_len > NAME_BYTES_MAX || h.table_len > PY_LINETABLE_MAX ||
	    (size_t)n != sizeof(h) + h.qualname_len + h.filename_len + h.table_len)
		return -EIO;
	p = m->buf + sizeof(h);
	ret->qualname = answer_string(&p, h.qualname_len);
	ret->filename = answer_string(&p, h.filename_len);
	if (h.table_len) {
		ret->linetable = malloc(h.table_len);
		if (ret->linetable)
			memcpy(ret->linetable, p, h.table_len);
	}
	if (!ret->qualname || !ret->filename || (h.table_len && !ret->linetable)) {
		pycode_done(ret);
		return -ENOMEM;
	}
	ret->linetable_len = h.table_len;
	ret->firstlineno = h.firstlineno;
	ret->ident = h.ident;
	return 0;
}

int mem_reader_threads(MemReader *m, int fd, uint32_t uid, const PyLayout *l, uint64_t runtime,
		       PyThreadRef *out, size_t *ret_n)
{
	Request q = { .kind = REQ_THREADS, .addr = runtime, .layout = *l };
	ssize_t n;
	Answer a;

	*ret_n = 0;
	if (uid_refused(m, fd, uid))
		return fd < 0 ? -EBADF : -ETIMEDOUT;
	n = exchange(m, fd, uid, &q);
	if (n < 0)
		return (int)n;
	memcpy(&a, m->buf, sizeof(a));
	if (a.result < 0)
		return answer_error(a.result);
	if (a.result > PY_THREADS_MAX ||
	    (size_t)n != sizeof(a) + (size_t)a.result * sizeof(PyThreadRef))
		return -EIO;
	memcpy(out, m->buf + sizeof(a), (size_t)a.result * sizeof(PyThreadRef));
	*ret_n = (size_t)a.result;
	return 0;
}

void mem_reader_stats(const MemReader *m, MemReaderStats *ret)
{
	*ret = m->stats;
	ret->stuck = m->child.n_stuck;
}
