/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>

#include "base/log.h"
#include "base/macro.h"
#include "base/timeutil.h"
#include "service/libcurl.h"
#include "service/push.h"

/*
 * A spool file holds one window's uploads (a batch): this line, then records of a 12-byte
 * header (state, 3 bytes of padding, the query's and the body's lengths, host order) followed
 * by the query and the body. A record's state turns from pending to done (one pwrite) once the
 * backend has answered it for good, so a restart sends only what is left.
 */
#define SPOOL_MAGIC "profq-push 2\n"
#define SPOOL_SUFFIX ".batch"
#define SPOOL_TMP_PREFIX ".tmp-"
#define RECORD_PENDING 'P'
#define RECORD_DONE 'D'
/* Bounds on what the spool directory may make the thread read or hold. */
#define SPOOL_MAX_FILES 100000u
#define SPOOL_MAX_BODY (64u << 20)
#define QUERY_MAX 4096u

typedef struct RecordHeader {
	uint8_t state;
	uint8_t pad[3];
	uint32_t query_len;
	uint32_t body_len;
} RecordHeader;
_Static_assert(sizeof(RecordHeader) == 12, "spool record header");

/* Loaded by the first target (libcurl.h), in the main thread before any push thread. */
static const LibCurl *lib;

typedef struct Spooled {
	uint64_t seq;	  /* the file's name: %016llx.batch */
	uint64_t bytes;	  /* the file's size */
	uint64_t pending; /* uploads not yet answered for good */
} Spooled;

typedef enum Outcome {
	OUTCOME_SENT,
	OUTCOME_RETRY,
	OUTCOME_REJECTED, /* a 4xx that will not change */
} Outcome;

struct Pusher {
	char *url;
	char *spool_dir;
	char *credentials;
	PushOptions o;
	int dirfd;

	/* The loop's alone: the batch being written. */
	uint64_t next_seq;
	int batch_fd; /* -1: none (or failed: its uploads are counted as dropped) */
	bool batch_open;
	uint64_t batch_bytes, batch_n;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool started;
	bool stop; /* atomic: read in curl's progress callback without the lock */
	/* Under the lock: the spool, oldest first, entries [head, n); queue[head] is in flight
	 * while in_flight is set and is never dropped then. */
	Spooled *queue;
	size_t head, n, allocated;
	uint64_t queued_bytes, queued_uploads;
	bool in_flight;
	PushStats stats;
	bool failing;	     /* the last attempt failed: logged when it began, and when it ends */
	bool logged_reject;  /* a refusal was logged */
	bool logged_write;   /* a spool write failure was logged */
	bool logged_dropped; /* a drop from a full spool was logged */
	bool logged_bad;     /* a malformed spool file was logged */

	/* The thread's alone: the batch it reads, and where. */
	CURL *curl;
	uint64_t backoff_ns;
	unsigned seed;
	int read_fd;
	uint64_t read_seq;
	uint64_t read_off;
	uint64_t read_size;
};

static void set_error(Pusher *p, const char *fmt, ...) _printf_(2, 3);
static void set_error(Pusher *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->stats.last_error, sizeof(p->stats.last_error), fmt, ap);
	va_end(ap);
	p->stats.last_error_ns = now_real_ns();
}

static void spool_name(uint64_t seq, char *buf, size_t len)
{
	snprintf(buf, len, "%016" PRIx64 SPOOL_SUFFIX, seq);
}

/* Removes the head of the queue and its file. Under the lock. */
static void pop_head(Pusher *p)
{
	char name[40];

	spool_name(p->queue[p->head].seq, name, sizeof(name));
	(void)unlinkat(p->dirfd, name, 0);
	p->queued_bytes -= p->queue[p->head].bytes;
	p->queued_uploads -= p->queue[p->head].pending;
	if (++p->head == p->n)
		p->head = p->n = 0;
}

/* Drops queue entry i (not the one in flight), its file and its uploads. Under the lock. */
static void drop_entry(Pusher *p, size_t i)
{
	Spooled s = p->queue[i];

	p->stats.dropped += s.pending;
	/* Entries before i move down one: the order stays, the hole is at head. */
	memmove(p->queue + p->head + 1, p->queue + p->head, (i - p->head) * sizeof(Spooled));
	p->queue[p->head] = s;
	pop_head(p);
}

/* Makes room for one more batch of bytes, dropping the oldest batches that are not in
 * flight. Under the lock. */
static void make_room(Pusher *p, uint64_t bytes)
{
	bool dropped = false;

	for (;;) {
		size_t oldest = p->head + (p->in_flight ? 1 : 0);

		if (oldest >= p->n)
			break;
		if (p->queued_bytes + bytes <= p->o.max_spool && p->n - p->head < SPOOL_MAX_FILES)
			break;
		drop_entry(p, oldest);
		dropped = true;
	}
	if (dropped && !p->logged_dropped) {
		log_warning("The spool of push target '%s' is full: dropped its oldest windows "
			    "(counted in status, logged once).",
			    p->url);
		p->logged_dropped = true;
	}
}

static int queue_append(Pusher *p, uint64_t seq, uint64_t bytes, uint64_t pending)
{
	if (p->head > 0 && p->n == p->allocated) {
		memmove(p->queue, p->queue + p->head, (p->n - p->head) * sizeof(Spooled));
		p->n -= p->head;
		p->head = 0;
	}
	if (GREEDY_REALLOC(p->queue, p->allocated, p->n + 1) < 0)
		return -ENOMEM;
	p->queue[p->n++] = (Spooled){ seq, bytes, pending };
	p->queued_bytes += bytes;
	p->queued_uploads += pending;
	return 0;
}

static int compare_spooled(const void *a, const void *b)
{
	const Spooled *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Whether name is a spool file's, and its sequence number. */
static bool parse_spool_name(const char *name, uint64_t *ret)
{
	uint64_t seq = 0;

	if (strlen(name) != 16 + strlen(SPOOL_SUFFIX) || !streq(name + 16, SPOOL_SUFFIX))
		return false;
	for (size_t i = 0; i < 16; i++) {
		int c = name[i];
		int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;

		if (v < 0)
			return false;
		seq = seq << 4 | (uint64_t)v;
	}
	*ret = seq;
	return true;
}

static bool query_valid(const char *q, size_t len)
{
	if (len == 0 || len > QUERY_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (q[i] <= ' ' || q[i] >= 0x7f || q[i] == '#')
			return false;
	return true;
}

static int pread_all(int fd, void *buf, size_t n, uint64_t off)
{
	size_t got = 0;

	while (got < n) {
		ssize_t k = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return negative_errno();
		if (k == 0)
			return -EBADMSG;
		got += (size_t)k;
	}
	return 0;
}

/* The record at off of a batch of size bytes: its header, checked against the file. */
static int record_at(int fd, uint64_t off, uint64_t size, RecordHeader *ret)
{
	RecordHeader h;
	int r;

	if (off + sizeof(h) > size)
		return -EBADMSG;
	r = pread_all(fd, &h, sizeof(h), off);
	if (r < 0)
		return r;
	if ((h.state != RECORD_PENDING && h.state != RECORD_DONE) || h.query_len == 0 ||
	    h.query_len > QUERY_MAX || h.body_len > SPOOL_MAX_BODY ||
	    off + sizeof(h) + h.query_len + h.body_len > size)
		return -EBADMSG;
	*ret = h;
	return 0;
}

/* The uploads still pending in a batch file; a malformed tail ends it. */
static uint64_t batch_pending(int fd, uint64_t size)
{
	uint64_t off = strlen(SPOOL_MAGIC), pending = 0;
	char magic[sizeof(SPOOL_MAGIC)];
	RecordHeader h;

	if (pread_all(fd, magic, strlen(SPOOL_MAGIC), 0) < 0 ||
	    memcmp(magic, SPOOL_MAGIC, strlen(SPOOL_MAGIC)) != 0)
		return 0;
	/* Bounded: every record moves off forward by at least its header. */
	while (off < size && record_at(fd, off, size, &h) == 0) {
		pending += h.state == RECORD_PENDING;
		off += sizeof(h) + h.query_len + h.body_len;
	}
	return pending;
}

/* What an earlier run left in the spool: its batches, oldest first; half-written ones go. */
static int spool_scan(Pusher *p)
{
	struct dirent *de;
	DIR *d;
	int fd, r = 0;

	fd = openat(p->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	d = fdopendir(fd);
	if (!d) {
		r = negative_errno();
		close(fd);
		return r;
	}
	while ((de = readdir(d))) {
		_cleanup_close_ int bfd = -1;
		uint64_t seq, pending;
		struct stat st;

		if (strncmp(de->d_name, SPOOL_TMP_PREFIX, strlen(SPOOL_TMP_PREFIX)) == 0) {
			(void)unlinkat(p->dirfd, de->d_name, 0);
			continue;
		}
		if (!parse_spool_name(de->d_name, &seq))
			continue;
		bfd = openat(p->dirfd, de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
		if (bfd < 0 || fstat(bfd, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		pending = batch_pending(bfd, (uint64_t)st.st_size);
		if (pending == 0) {
			(void)unlinkat(p->dirfd, de->d_name, 0);
			continue;
		}
		r = queue_append(p, seq, (uint64_t)st.st_size, pending);
		if (r < 0)
			break;
		p->next_seq = MAX(p->next_seq, seq + 1);
	}
	closedir(d);
	if (r < 0)
		return r;
	if (p->n > 1)
		qsort(p->queue, p->n, sizeof(Spooled), compare_spooled);
	make_room(p, 0);
	return 0;
}

static void tmp_name(uint64_t seq, char *buf, size_t len)
{
	snprintf(buf, len, SPOOL_TMP_PREFIX "%016" PRIx64, seq);
}

static void batch_failed(Pusher *p, int r, uint64_t uploads)
{
	pthread_mutex_lock(&p->lock);
	p->stats.dropped += uploads;
	set_error(p, "spool write: %s", strerror(-r));
	pthread_mutex_unlock(&p->lock);
	if (!p->logged_write)
		log_warning_errno(r, "Failed to spool uploads for '%s' in '%s': %m (logged once)",
				  p->url, p->spool_dir);
	p->logged_write = true;
}

void pusher_batch_begin(Pusher *p)
{
	const char *magic = SPOOL_MAGIC;
	char tmp[48];
	int r = 0;

	p->batch_open = true;
	p->batch_n = 0;
	p->batch_bytes = strlen(magic);
	tmp_name(p->next_seq, tmp, sizeof(tmp));
	p->batch_fd = openat(p->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
			     0600);
	if (p->batch_fd < 0)
		r = negative_errno();
	else if (write(p->batch_fd, magic, strlen(magic)) != (ssize_t)strlen(magic))
		r = -EIO;
	if (r < 0) {
		if (p->batch_fd >= 0)
			close(p->batch_fd);
		p->batch_fd = -1;
		(void)unlinkat(p->dirfd, tmp, 0);
		batch_failed(p, r, 0);
	}
}

int pusher_batch_add(Pusher *p, const char *query, const void *body, size_t len)
{
	size_t qlen = strlen(query);
	RecordHeader h = { .state = RECORD_PENDING,
			   .query_len = (uint32_t)qlen,
			   .body_len = (uint32_t)len };
	struct iovec iov[3] = {
		{ &h, sizeof(h) },
		{ (void *)query, qlen },
		{ (void *)body, len },
	};
	size_t total = sizeof(h) + qlen + len;
	ssize_t k;
	char tmp[48];
	int r;

	if (!p->batch_open)
		return -EINVAL;
	if (!query_valid(query, qlen) || len > SPOOL_MAX_BODY)
		return -EINVAL;
	if (p->batch_fd < 0) {
		batch_failed(p, -EIO, 1);
		return -EIO;
	}
	k = writev(p->batch_fd, iov, ARRAY_SIZE(iov));
	if (k == (ssize_t)total) {
		p->batch_bytes += total;
		p->batch_n++;
		return 0;
	}
	/* The batch is lost: what it held, and this upload. */
	r = k < 0 ? negative_errno() : -ENOSPC;
	close(p->batch_fd);
	p->batch_fd = -1;
	tmp_name(p->next_seq, tmp, sizeof(tmp));
	(void)unlinkat(p->dirfd, tmp, 0);
	batch_failed(p, r, p->batch_n + 1);
	p->batch_n = 0;
	return r;
}

int pusher_batch_commit(Pusher *p)
{
	uint64_t seq = p->next_seq;
	char tmp[48], name[40];
	int r = 0;

	if (!p->batch_open)
		return -EINVAL;
	p->batch_open = false;
	if (p->batch_fd < 0)
		return -EIO; /* counted */
	tmp_name(seq, tmp, sizeof(tmp));
	spool_name(seq, name, sizeof(name));
	/* No fsync: a killed profqd leaves its writes in the page cache; a power loss may cost
	 * the uploads of the last seconds, as it costs the open window. */
	if (close(p->batch_fd) < 0)
		r = negative_errno();
	p->batch_fd = -1;
	if (r == 0 && p->batch_n == 0)
		r = -ENODATA;
	if (r == 0 && renameat(p->dirfd, tmp, p->dirfd, name) < 0)
		r = negative_errno();
	if (r < 0) {
		(void)unlinkat(p->dirfd, tmp, 0);
		if (r != -ENODATA)
			batch_failed(p, r, p->batch_n);
		return r == -ENODATA ? 0 : r;
	}
	p->next_seq++;

	pthread_mutex_lock(&p->lock);
	make_room(p, p->batch_bytes);
	if (p->queued_bytes + p->batch_bytes > p->o.max_spool) {
		/* Larger than the whole spool beside the batch in flight. */
		(void)unlinkat(p->dirfd, name, 0);
		p->stats.dropped += p->batch_n;
	} else {
		r = queue_append(p, seq, p->batch_bytes, p->batch_n);
		if (r < 0) {
			(void)unlinkat(p->dirfd, name, 0);
			p->stats.dropped += p->batch_n;
		}
	}
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	return r;
}

static size_t discard(char *data, size_t size, size_t n, void *userdata)
{
	(void)data;
	(void)userdata;
	return size * n;
}

static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	Pusher *p = userdata;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return __atomic_load_n(&p->stop, __ATOMIC_RELAXED) ? 1 : 0;
}

/* The handle's settings that do not change between uploads. */
static int curl_setup(Pusher *p)
{
	CURL *c = lib->easy_init();

	if (!c)
		return -ENOMEM;
	lib->easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	lib->easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	lib->easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)(p->o.connect_timeout_ns / NSEC_PER_MSEC));
	lib->easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(p->o.timeout_ns / NSEC_PER_MSEC));
	lib->easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	lib->easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	lib->easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	lib->easy_setopt(c, CURLOPT_XFERINFODATA, p);
	lib->easy_setopt(c, CURLOPT_USERAGENT, "profqd/" PROFQ_VERSION);
	if (p->credentials && strchr(p->credentials, ':')) {
		lib->easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		lib->easy_setopt(c, CURLOPT_USERPWD, p->credentials);
	} else if (p->credentials) {
		lib->easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
		lib->easy_setopt(c, CURLOPT_XOAUTH2_BEARER, p->credentials);
	}
	p->curl = c;
	return 0;
}

static void curl_slist_freep(struct curl_slist **l)
{
	lib->slist_free_all(*l);
}

static void curl_mime_freep(curl_mime **m)
{
	lib->mime_free(*m);
}

/* POSTs one upload. error (PUSH_ERROR_MAX bytes) says why, unless sent. */
static Outcome post(Pusher *p, const char *query, const char *body, size_t len, char *error)
{
	_cleanup_(curl_slist_freep) struct curl_slist *headers = NULL;
	_cleanup_(curl_mime_freep) curl_mime *mime = NULL;
	_cleanup_free_ char *url = NULL;
	char curl_error[CURL_ERROR_SIZE] = "";
	curl_mimepart *part;
	long status = 0;
	CURLcode cr;

	if (asprintf(&url, "%s/ingest?%s", p->url, query) < 0) {
		url = NULL;
		snprintf(error, PUSH_ERROR_MAX, "out of memory");
		return OUTCOME_RETRY;
	}
	mime = lib->mime_init(p->curl);
	part = mime ? lib->mime_addpart(mime) : NULL;
	/* curl would wait a second for "100 Continue" before a large body. */
	headers = lib->slist_append(NULL, "Expect:");
	if (!part || !headers || lib->mime_name(part, "profile") != CURLE_OK ||
	    lib->mime_filename(part, "profile.pprof") != CURLE_OK ||
	    lib->mime_type(part, "application/octet-stream") != CURLE_OK ||
	    lib->mime_data(part, body, len) != CURLE_OK) {
		snprintf(error, PUSH_ERROR_MAX, "out of memory");
		return OUTCOME_RETRY;
	}
	lib->easy_setopt(p->curl, CURLOPT_URL, url);
	lib->easy_setopt(p->curl, CURLOPT_MIMEPOST, mime);
	lib->easy_setopt(p->curl, CURLOPT_HTTPHEADER, headers);
	lib->easy_setopt(p->curl, CURLOPT_ERRORBUFFER, curl_error);
	cr = lib->easy_perform(p->curl);
	lib->easy_setopt(p->curl, CURLOPT_ERRORBUFFER, NULL);
	lib->easy_setopt(p->curl, CURLOPT_MIMEPOST, NULL);
	lib->easy_setopt(p->curl, CURLOPT_HTTPHEADER, NULL);
	if (cr != CURLE_OK) {
		snprintf(error, PUSH_ERROR_MAX, "%s",
			 curl_error[0] ? curl_error : lib->easy_strerror(cr));
		return OUTCOME_RETRY;
	}
	lib->easy_getinfo(p->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 200 && status < 300)
		return OUTCOME_SENT;
	snprintf(error, PUSH_ERROR_MAX, "HTTP status %ld", status);
	if (status >= 400 && status < 500 && status != 408 && status != 429)
		return OUTCOME_REJECTED;
	return OUTCOME_RETRY;
}

/* Opens batch seq for reading (unless open already), at its first record. */
static int batch_open_read(Pusher *p, uint64_t seq)
{
	char name[40], magic[sizeof(SPOOL_MAGIC)];
	struct stat st;
	int fd;

	if (p->read_fd >= 0 && p->read_seq == seq)
		return 0;
	if (p->read_fd >= 0)
		close(p->read_fd);
	p->read_fd = -1;
	spool_name(seq, name, sizeof(name));
	fd = openat(p->dirfd, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0)
		return negative_errno();
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    pread_all(fd, magic, strlen(SPOOL_MAGIC), 0) < 0 ||
	    memcmp(magic, SPOOL_MAGIC, strlen(SPOOL_MAGIC)) != 0) {
		close(fd);
		return -EBADMSG;
	}
	p->read_fd = fd;
	p->read_seq = seq;
	p->read_size = (uint64_t)st.st_size;
	p->read_off = strlen(SPOOL_MAGIC);
	return 0;
}

/*
 * The next pending upload of batch seq: its query and body in *ret (caller frees; query
 * NUL-terminated, body at *ret_body for *ret_len bytes). -ENOENT when none is left.
 */
static int batch_next(Pusher *p, uint64_t seq, RecordHeader *ret_h, char **ret, size_t *ret_body)
{
	_cleanup_free_ char *buf = NULL;
	RecordHeader h;
	int r;

	r = batch_open_read(p, seq);
	if (r < 0)
		return r;
	for (;;) {
		if (p->read_off >= p->read_size)
			return -ENOENT;
		r = record_at(p->read_fd, p->read_off, p->read_size, &h);
		if (r < 0)
			return r;
		if (h.state == RECORD_PENDING)
			break;
		p->read_off += sizeof(h) + h.query_len + h.body_len;
	}
	buf = malloc((size_t)h.query_len + 1 + h.body_len);
	if (!buf)
		return -ENOMEM;
	r = pread_all(p->read_fd, buf, h.query_len, p->read_off + sizeof(h));
	if (r >= 0)
		r = pread_all(p->read_fd, buf + h.query_len + 1, h.body_len,
			      p->read_off + sizeof(h) + h.query_len);
	if (r < 0)
		return r;
	buf[h.query_len] = '\0';
	if (!query_valid(buf, h.query_len))
		return -EBADMSG;
	*ret_h = h;
	*ret_body = h.query_len + 1;
	*ret = TAKE_PTR(buf);
	return 0;
}

/* Marks the current record answered for good and moves past it. */
static void batch_mark_done(Pusher *p, const RecordHeader *h)
{
	uint8_t done = RECORD_DONE;

	(void)pwrite(p->read_fd, &done, 1, (off_t)p->read_off);
	p->read_off += sizeof(*h) + h->query_len + h->body_len;
}

/* The delay before the next attempt: the backoff with jitter in [backoff/2, backoff]. */
static uint64_t next_delay(Pusher *p)
{
	uint64_t d = MAX(p->backoff_ns, p->o.backoff_min_ns);
	uint64_t half = d / 2;

	p->backoff_ns = MIN(d * 2, p->o.backoff_max_ns);
	return half + ((uint64_t)rand_r(&p->seed) * 1000003u) % (half + 1);
}

/* The outcome of an attempt at the head batch's next upload. Under the lock. */
static void settle(Pusher *p, Outcome o, uint64_t bytes, const char *error, uint64_t *retry_at)
{
	p->in_flight = false;
	if (o == OUTCOME_RETRY && p->stop) {
		/* Aborted by pusher_free(): sent by the next run, not a failure. */
		return;
	}
	if (o == OUTCOME_RETRY) {
		uint64_t delay = next_delay(p);

		p->stats.failures++;
		set_error(p, "%s", error);
		if (!p->failing)
			log_warning("Failed to push to '%s': %s; retrying, %" PRIu64
				    " uploads queued (logged again once it works).",
				    p->url, error, p->queued_uploads);
		p->failing = true;
		*retry_at = now_mono_ns() + delay;
		return;
	}
	/* The count read at start could be short of what the file holds: never below 0. */
	if (p->queue[p->head].pending > 0) {
		p->queue[p->head].pending--;
		p->queued_uploads--;
	}
	if (o == OUTCOME_SENT) {
		p->stats.sent++;
		p->stats.sent_bytes += bytes;
		p->stats.last_success_ns = now_real_ns();
		p->backoff_ns = 0;
		if (p->failing)
			log_info("Pushing to '%s' works again.", p->url);
		p->failing = false;
	} else {
		set_error(p, "%s", error);
		p->stats.rejected++;
		if (!p->logged_reject)
			log_warning("Push target '%s' refused an upload: %s; such uploads are "
				    "dropped (counted in status, logged once).",
				    p->url, error);
		p->logged_reject = true;
	}
	if (p->queue[p->head].pending == 0)
		pop_head(p);
}

/* The head batch cannot be read (any more): what it still held is lost. Under the lock. */
static void drop_head(Pusher *p, int r)
{
	uint64_t seq = p->queue[p->head].seq;

	p->in_flight = false;
	if (r != -ENOENT) {
		p->stats.dropped += p->queue[p->head].pending;
		set_error(p, "spool file %016" PRIx64 ": %s", seq, strerror(-r));
		if (!p->logged_bad)
			log_warning_errno(r,
					  "Failed to read spool file %016" PRIx64 " of '%s': %m "
					  "(its uploads are dropped; logged once)",
					  seq, p->url);
		p->logged_bad = true;
	}
	pop_head(p);
}

static void *thread_main(void *userdata)
{
	Pusher *p = userdata;
	uint64_t retry_at = 0;

	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		uint64_t now = now_mono_ns(), seq;
		char error[PUSH_ERROR_MAX] = "";
		_cleanup_free_ char *buf = NULL;
		struct timespec ts;
		RecordHeader h;
		size_t body;
		Outcome o;
		int r;

		if (p->head == p->n) {
			pthread_cond_wait(&p->cond, &p->lock);
			continue;
		}
		if (now < retry_at) {
			ts.tv_sec = (time_t)(retry_at / NSEC_PER_SEC);
			ts.tv_nsec = (long)(retry_at % NSEC_PER_SEC);
			pthread_cond_timedwait(&p->cond, &p->lock, &ts);
			continue;
		}
		seq = p->queue[p->head].seq;
		p->in_flight = true;
		pthread_mutex_unlock(&p->lock);
		r = batch_next(p, seq, &h, &buf, &body);
		if (r < 0) {
			pthread_mutex_lock(&p->lock);
			if (r == -ENOMEM) {
				p->in_flight = false;
				retry_at = now_mono_ns() + NSEC_PER_SEC;
			} else
				drop_head(p, r);
			continue;
		}
		o = post(p, buf, buf + body, h.body_len, error);
		if (o != OUTCOME_RETRY)
			batch_mark_done(p, &h);
		pthread_mutex_lock(&p->lock);
		settle(p, o, h.body_len, error, &retry_at);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

Pusher *pusher_free(Pusher *p)
{
	if (!p)
		return NULL;
	if (p->started) {
		pthread_mutex_lock(&p->lock);
		__atomic_store_n(&p->stop, true, __ATOMIC_RELAXED);
		pthread_cond_signal(&p->cond);
		pthread_mutex_unlock(&p->lock);
		pthread_join(p->thread, NULL);
	}
	if (p->curl)
		lib->easy_cleanup(p->curl);
	if (p->batch_fd >= 0)
		close(p->batch_fd);
	if (p->read_fd >= 0)
		close(p->read_fd);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	if (p->dirfd >= 0)
		close(p->dirfd);
	free(p->queue);
	free(p->url);
	free(p->spool_dir);
	if (p->credentials) {
		explicit_bzero(p->credentials, strlen(p->credentials));
		free(p->credentials);
	}
	free(p);
	return NULL;
}

int pusher_new(const PushOptions *o, Pusher **ret)
{
	_cleanup_(pusher_freep) Pusher *p = calloc(1, sizeof(*p));
	const char *why = NULL;
	pthread_condattr_t ca;
	size_t n;
	int r;

	if (!p)
		return log_error_errno(-ENOMEM, "Failed to set up push target '%s': %m", o->url);
	p->dirfd = p->batch_fd = p->read_fd = -1;
	p->o = *o;
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &ca);
	pthread_condattr_destroy(&ca);
	p->url = strdup(o->url);
	p->spool_dir = strdup(o->spool_dir);
	p->credentials = o->credentials ? strdup(o->credentials) : NULL;
	if (!p->url || !p->spool_dir || (o->credentials && !p->credentials))
		return log_error_errno(-ENOMEM, "Failed to set up push target '%s': %m", o->url);
	/* The URL's trailing slashes would double the one before "ingest". */
	for (n = strlen(p->url); n > 0 && p->url[n - 1] == '/'; n--)
		p->url[n - 1] = '\0';
	p->seed = (unsigned)(now_mono_ns() ^ (uint64_t)getpid());

	if (mkdir(p->spool_dir, 0700) < 0 && errno != EEXIST)
		return log_error_errno(negative_errno(),
				       "Failed to create spool directory '%s': %m", p->spool_dir);
	p->dirfd = open(p->spool_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (p->dirfd < 0)
		return log_error_errno(negative_errno(), "Failed to open spool directory '%s': %m",
				       p->spool_dir);
	r = spool_scan(p);
	if (r < 0)
		return log_error_errno(r, "Failed to read spool directory '%s': %m", p->spool_dir);
	if (p->n > p->head)
		log_info("Push target '%s': %zu uploads spooled by an earlier run, sending them "
			 "first.",
			 p->url, p->n - p->head);
	r = libcurl_load(&lib, &why);
	if (r < 0)
		return log_error_errno(r, "Failed to load libcurl for push target '%s': %s", o->url,
				       why);
	r = curl_setup(p);
	if (r < 0)
		return log_error_errno(r, "Failed to set up libcurl: %m");
	r = -pthread_create(&p->thread, NULL, thread_main, p);
	if (r < 0)
		return log_error_errno(r, "Failed to start the push thread: %m");
	p->started = true;
	(void)pthread_setname_np(p->thread, "profqd-push");
	*ret = TAKE_PTR(p);
	return 0;
}

void pusher_stats(Pusher *p, PushStats *ret)
{
	pthread_mutex_lock(&p->lock);
	*ret = p->stats;
	ret->queued = p->queued_uploads;
	ret->queued_bytes = p->queued_bytes;
	pthread_mutex_unlock(&p->lock);
}

const char *pusher_url(const Pusher *p)
{
	return p->url;
}
