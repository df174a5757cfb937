/* SPDX-License-Identifier: MIT */
#include <curl/curl.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/uio.h>
#include <sys/stat.h>
#include <time.h>

#include "base/log.h"
#include "base/macro.h"
#include "base/timeutil.h"
#include "service/push.h"

/* A spool file: this line, the query string and '\n', then the body. */
#define SPOOL_MAGIC "profq-push 1\n"
#define SPOOL_SUFFIX ".up"
#define SPOOL_TMP_PREFIX ".tmp-"
/* Bounds on what the spool directory may make the thread read or hold. */
#define SPOOL_MAX_FILES 100000u
#define SPOOL_MAX_BODY (64u << 20)
#define QUERY_MAX 4096u

typedef struct Spooled {
	uint64_t seq;	/* the file's name: %016llx.up */
	uint64_t bytes; /* the file's size */
} Spooled;

typedef enum Outcome {
	OUTCOME_SENT,
	OUTCOME_RETRY,
	OUTCOME_REJECTED, /* a 4xx that will not change */
	OUTCOME_BAD,	  /* the spool file is unreadable or malformed */
} Outcome;

struct Pusher {
	char *url;
	char *spool_dir;
	char *credentials;
	PushOptions o;
	int dirfd;
	uint64_t next_seq; /* the loop's only */

	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool started;
	bool stop; /* atomic: read in curl's progress callback without the lock */
	/* Under the lock: the spool, oldest first, entries [head, n); queue[head] is in flight
	 * while in_flight is set and is never dropped then. */
	Spooled *queue;
	size_t head, n, allocated;
	uint64_t queued_bytes;
	bool in_flight;
	PushStats stats;
	bool failing;	     /* the last attempt failed: logged when it began, and when it ends */
	bool logged_reject;  /* a refusal was logged */
	bool logged_write;   /* a spool write failure was logged */
	bool logged_dropped; /* a drop from a full spool was logged */

	/* The thread's alone. */
	CURL *curl;
	uint64_t backoff_ns;
	unsigned seed;
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

/* Drops queue entry i (not the one in flight) and its file. Under the lock. */
static void drop_entry(Pusher *p, size_t i)
{
	char name[32];

	spool_name(p->queue[i].seq, name, sizeof(name));
	(void)unlinkat(p->dirfd, name, 0);
	p->queued_bytes -= p->queue[i].bytes;
	/* Entries before i move up one: the order stays, the hole is at head. */
	memmove(p->queue + p->head + 1, p->queue + p->head, (i - p->head) * sizeof(Spooled));
	p->head++;
	if (p->head == p->n)
		p->head = p->n = 0;
}

/* Makes room for one more upload of bytes, dropping the oldest that are not in flight. Under
 * the lock. */
static void make_room(Pusher *p, uint64_t bytes)
{
	uint64_t dropped = 0;

	for (;;) {
		size_t oldest = p->head + (p->in_flight ? 1 : 0);

		if (oldest >= p->n)
			break;
		if (p->queued_bytes + bytes <= p->o.max_spool && p->n - p->head < SPOOL_MAX_FILES)
			break;
		drop_entry(p, oldest);
		dropped++;
	}
	p->stats.dropped += dropped;
	if (dropped > 0 && !p->logged_dropped) {
		log_warning("The spool of push target '%s' is full: dropped its oldest uploads "
			    "(counted in status, logged once).",
			    p->url);
		p->logged_dropped = true;
	}
}

static int queue_append(Pusher *p, uint64_t seq, uint64_t bytes)
{
	if (p->head > 0 && p->n == p->allocated) {
		memmove(p->queue, p->queue + p->head, (p->n - p->head) * sizeof(Spooled));
		p->n -= p->head;
		p->head = 0;
	}
	if (GREEDY_REALLOC(p->queue, p->allocated, p->n + 1) < 0)
		return -ENOMEM;
	p->queue[p->n++] = (Spooled){ seq, bytes };
	p->queued_bytes += bytes;
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

/* What an earlier run left in the spool: its uploads, oldest first; half-written files go. */
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
		struct stat st;
		uint64_t seq;

		if (strncmp(de->d_name, SPOOL_TMP_PREFIX, strlen(SPOOL_TMP_PREFIX)) == 0) {
			(void)unlinkat(p->dirfd, de->d_name, 0);
			continue;
		}
		if (!parse_spool_name(de->d_name, &seq) ||
		    fstatat(p->dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		r = queue_append(p, seq, (uint64_t)st.st_size);
		if (r < 0)
			break;
		p->next_seq = MAX(p->next_seq, seq + 1);
	}
	closedir(d);
	if (r < 0)
		return r;
	qsort(p->queue, p->n, sizeof(Spooled), compare_spooled);
	make_room(p, 0);
	return 0;
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

int pusher_enqueue(Pusher *p, const char *query, const void *body, size_t len)
{
	const char *magic = SPOOL_MAGIC;
	uint64_t seq = p->next_seq++;
	char tmp[48], name[32];
	size_t qlen = strlen(query);
	struct iovec iov[4] = {
		{ (void *)magic, strlen(magic) },
		{ (void *)query, qlen },
		{ (void *)"\n", 1 },
		{ (void *)body, len },
	};
	size_t total = iov[0].iov_len + qlen + 1 + len;
	int fd, r = 0;
	ssize_t k;

	if (!query_valid(query, qlen) || len > SPOOL_MAX_BODY)
		return -EINVAL;
	snprintf(tmp, sizeof(tmp), SPOOL_TMP_PREFIX "%016" PRIx64, seq);
	spool_name(seq, name, sizeof(name));
	/* No fsync: a killed profqd leaves its writes in the page cache; a power loss may cost
	 * the uploads of the last seconds, as it costs the open window. */
	fd = openat(p->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		r = negative_errno();
	else {
		k = writev(fd, iov, ARRAY_SIZE(iov));
		r = k < 0 ? negative_errno() : (size_t)k != total ? -ENOSPC : 0;
		if (close(fd) < 0 && r == 0)
			r = negative_errno();
		if (r == 0 && renameat(p->dirfd, tmp, p->dirfd, name) < 0)
			r = negative_errno();
		if (r < 0)
			(void)unlinkat(p->dirfd, tmp, 0);
	}

	pthread_mutex_lock(&p->lock);
	if (r < 0) {
		p->stats.dropped++;
		set_error(p, "spool write: %s", strerror(-r));
		if (!p->logged_write)
			log_warning_errno(r,
					  "Failed to spool an upload for '%s' in '%s': %m "
					  "(logged once)",
					  p->url, p->spool_dir);
		p->logged_write = true;
	} else {
		make_room(p, total);
		if (p->queued_bytes + total > p->o.max_spool) {
			/* Larger than the whole spool beside the upload in flight. */
			(void)unlinkat(p->dirfd, name, 0);
			p->stats.dropped++;
		} else {
			r = queue_append(p, seq, total);
			if (r < 0) {
				(void)unlinkat(p->dirfd, name, 0);
				p->stats.dropped++;
			}
		}
		pthread_cond_signal(&p->cond);
	}
	pthread_mutex_unlock(&p->lock);
	return r;
}

/* Reads spool file seq: its query and body in *ret (caller frees), split at *ret_body. */
static int spool_read(Pusher *p, uint64_t seq, char **ret, size_t *ret_len, size_t *ret_body)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	size_t magic = strlen(SPOOL_MAGIC), got = 0;
	const char *nl;
	struct stat st;
	char name[32];

	spool_name(seq, name, sizeof(name));
	fd = openat(p->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0)
		return negative_errno();
	if (fstat(fd, &st) < 0)
		return negative_errno();
	if (!S_ISREG(st.st_mode) || st.st_size < 0 ||
	    (uint64_t)st.st_size > SPOOL_MAX_BODY + QUERY_MAX + magic + 1)
		return -EBADMSG;
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return -ENOMEM;
	while (got < (size_t)st.st_size) {
		ssize_t k = read(fd, buf + got, (size_t)st.st_size - got);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return negative_errno();
		if (k == 0)
			break;
		got += (size_t)k;
	}
	buf[got] = '\0';
	if (got < magic || memcmp(buf, SPOOL_MAGIC, magic) != 0)
		return -EBADMSG;
	nl = memchr(buf + magic, '\n', MIN(got - magic, (size_t)QUERY_MAX + 1));
	if (!nl || !query_valid(buf + magic, (size_t)(nl - buf) - magic))
		return -EBADMSG;
	*ret_body = (size_t)(nl - buf) + 1;
	*ret_len = got;
	*ret = TAKE_PTR(buf);
	return 0;
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
	CURL *c = curl_easy_init();

	if (!c)
		return -ENOMEM;
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)(p->o.connect_timeout_ns / NSEC_PER_MSEC));
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(p->o.timeout_ns / NSEC_PER_MSEC));
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, p);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "profqd/" PROFQ_VERSION);
	if (p->credentials && strchr(p->credentials, ':')) {
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(c, CURLOPT_USERPWD, p->credentials);
	} else if (p->credentials) {
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
		curl_easy_setopt(c, CURLOPT_XOAUTH2_BEARER, p->credentials);
	}
	p->curl = c;
	return 0;
}

static void curl_slist_freep(struct curl_slist **l)
{
	curl_slist_free_all(*l);
}

static void curl_mime_freep(curl_mime **m)
{
	curl_mime_free(*m);
}

/* One attempt at spool file seq. error (PUSH_ERROR_MAX bytes) says why, unless sent. */
static Outcome send_one(Pusher *p, uint64_t seq, uint64_t *ret_bytes, char *error)
{
	_cleanup_(curl_slist_freep) struct curl_slist *headers = NULL;
	_cleanup_(curl_mime_freep) curl_mime *mime = NULL;
	_cleanup_free_ char *buf = NULL, *url = NULL;
	char curl_error[CURL_ERROR_SIZE] = "";
	size_t len, body;
	curl_mimepart *part;
	long status = 0;
	CURLcode cr;
	int r;

	r = spool_read(p, seq, &buf, &len, &body);
	if (r < 0) {
		snprintf(error, PUSH_ERROR_MAX, "spool file %016" PRIx64 ": %s", seq, strerror(-r));
		return r == -ENOMEM ? OUTCOME_RETRY : OUTCOME_BAD;
	}
	buf[body - 1] = '\0';
	if (asprintf(&url, "%s/ingest?%s", p->url, buf + strlen(SPOOL_MAGIC)) < 0) {
		url = NULL;
		snprintf(error, PUSH_ERROR_MAX, "out of memory");
		return OUTCOME_RETRY;
	}
	mime = curl_mime_init(p->curl);
	part = mime ? curl_mime_addpart(mime) : NULL;
	/* curl would wait a second for "100 Continue" before a large body. */
	headers = curl_slist_append(NULL, "Expect:");
	if (!part || !headers || curl_mime_name(part, "profile") != CURLE_OK ||
	    curl_mime_filename(part, "profile.pprof") != CURLE_OK ||
	    curl_mime_type(part, "application/octet-stream") != CURLE_OK ||
	    curl_mime_data(part, buf + body, len - body) != CURLE_OK) {
		snprintf(error, PUSH_ERROR_MAX, "out of memory");
		return OUTCOME_RETRY;
	}
	curl_easy_setopt(p->curl, CURLOPT_URL, url);
	curl_easy_setopt(p->curl, CURLOPT_MIMEPOST, mime);
	curl_easy_setopt(p->curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(p->curl, CURLOPT_ERRORBUFFER, curl_error);
	cr = curl_easy_perform(p->curl);
	curl_easy_setopt(p->curl, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(p->curl, CURLOPT_MIMEPOST, NULL);
	curl_easy_setopt(p->curl, CURLOPT_HTTPHEADER, NULL);
	if (cr != CURLE_OK) {
		snprintf(error, PUSH_ERROR_MAX, "%s",
			 curl_error[0] ? curl_error : curl_easy_strerror(cr));
		return OUTCOME_RETRY;
	}
	curl_easy_getinfo(p->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 200 && status < 300) {
		*ret_bytes = len - body;
		return OUTCOME_SENT;
	}
	snprintf(error, PUSH_ERROR_MAX, "HTTP status %ld", status);
	if (status >= 400 && status < 500 && status != 408 && status != 429)
		return OUTCOME_REJECTED;
	return OUTCOME_RETRY;
}

/* The delay before the next attempt: the backoff with jitter in [backoff/2, backoff]. */
static uint64_t next_delay(Pusher *p)
{
	uint64_t d = MAX(p->backoff_ns, p->o.backoff_min_ns);
	uint64_t half = d / 2;

	p->backoff_ns = MIN(d * 2, p->o.backoff_max_ns);
	return half + ((uint64_t)rand_r(&p->seed) * 1000003u) % (half + 1);
}

/* The outcome of an attempt at the head of the queue. Under the lock. */
static void settle(Pusher *p, Outcome o, uint64_t bytes, const char *error, uint64_t *retry_at)
{
	char name[32];

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
			log_warning("Failed to push to '%s': %s; retrying, %zu uploads queued "
				    "(logged again once it works).",
				    p->url, error, p->n - p->head);
		p->failing = true;
		*retry_at = now_mono_ns() + delay;
		return;
	}
	spool_name(p->queue[p->head].seq, name, sizeof(name));
	(void)unlinkat(p->dirfd, name, 0);
	p->queued_bytes -= p->queue[p->head].bytes;
	if (++p->head == p->n)
		p->head = p->n = 0;
	if (o == OUTCOME_SENT) {
		p->stats.sent++;
		p->stats.sent_bytes += bytes;
		p->stats.last_success_ns = now_real_ns();
		p->backoff_ns = 0;
		if (p->failing)
			log_info("Pushing to '%s' works again.", p->url);
		p->failing = false;
		return;
	}
	set_error(p, "%s", error);
	if (o == OUTCOME_BAD) {
		p->stats.dropped++;
		return;
	}
	p->stats.rejected++;
	if (!p->logged_reject)
		log_warning("Push target '%s' refused an upload: %s; such uploads are dropped "
			    "(counted in status, logged once).",
			    p->url, error);
	p->logged_reject = true;
}

static void *thread_main(void *userdata)
{
	Pusher *p = userdata;
	uint64_t retry_at = 0;

	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		uint64_t now = now_mono_ns(), seq, bytes = 0;
		char error[PUSH_ERROR_MAX] = "";
		struct timespec ts;
		Outcome o;

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
		o = send_one(p, seq, &bytes, error);
		pthread_mutex_lock(&p->lock);
		settle(p, o, bytes, error, &retry_at);
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
		curl_easy_cleanup(p->curl);
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
	pthread_condattr_t ca;
	size_t n;
	int r;

	if (!p)
		return log_error_errno(-ENOMEM, "Failed to set up push target '%s': %m", o->url);
	p->dirfd = -1;
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
	r = curl_setup(p);
	if (r < 0)
		return log_error_errno(r, "Failed to set up libcurl: %m");
	r = -pthread_create(&p->thread, NULL, thread_main, p);
	if (r < 0)
		return log_error_errno(r, "Failed to start the push thread: %m");
	p->started = true;
	*ret = TAKE_PTR(p);
	return 0;
}

void pusher_stats(Pusher *p, PushStats *ret)
{
	pthread_mutex_lock(&p->lock);
	*ret = p->stats;
	ret->queued = p->n - p->head;
	ret->queued_bytes = p->queued_bytes;
	pthread_mutex_unlock(&p->lock);
}

const char *pusher_url(const Pusher *p)
{
	return p->url;
}
